"""Imports run one way: no circle among the modules of models/, pipeline/ (and its
packages) and tools/, counting the imports inside functions too (a late import that
dodges a loop is still a loop); and pipeline's layers only ever import downwards."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path, package):
    """The project modules ``path`` imports, as dotted names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from .x import y
                base = package if node.module is None else package + "." + node.module
                names = [base + "." + a.name for a in node.names] if node.module is None \
                    else [base]
            else:
                names = [node.module] + [node.module + "." + a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n and n.split(".")[0] in ("models", "pipeline", "tools"))
    return found


def graph():
    modules = {}
    for package in ("models", "pipeline", "tools"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if path.stem == "__init__" else parts)] = path
    edges = {}
    for name, path in modules.items():
        package = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
        edges[name] = {m for m in imports_of(path, package) if m in modules and m != name}
    return edges


def test_no_import_circle():
    edges = graph()
    assert "models.caffe_ops" in edges["models.layers"]  # the graph is really read
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"
    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


#: pipeline's layers, lowest first: a module imports only from its own layer or lower
#: ones. The stages (``pipeline/X.py`` for ``make X``, and the command line) are the top:
#: no helper imports a stage.
LAYERS = ("pipeline.errors", "pipeline.data", "pipeline.recipe", "pipeline.runs",
          "pipeline.evidence", "pipeline.render", "pipeline.learn", "pipeline.sections")


def layer_of(module):
    """The index of ``module``'s layer in LAYERS; the stages' is len(LAYERS)."""
    for k, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return k
    return len(LAYERS)


def upward_imports(edges):
    return sorted("%s -> %s" % (a, b) for a, targets in edges.items() for b in targets
                  if a.startswith("pipeline.") and b.startswith("pipeline.")
                  and layer_of(b) > layer_of(a))


def test_pipeline_layers_import_only_downwards():
    edges = graph()
    assert "pipeline.evidence.stats" in edges["pipeline.evidence.claims"]  # packages are read
    assert "pipeline.sections.claims" in edges["pipeline.sections"]
    assert not upward_imports(edges)


def test_an_import_from_a_helper_into_a_stage_is_caught():
    edges = graph()
    edges["pipeline.evidence.referral"] = edges["pipeline.evidence.referral"] | {"pipeline.evaluate"}
    edges["pipeline.data.dataset"] = edges["pipeline.data.dataset"] | {"pipeline.learn.inference"}
    assert upward_imports(edges) == ["pipeline.data.dataset -> pipeline.learn.inference",
                                     "pipeline.evidence.referral -> pipeline.evaluate"]
