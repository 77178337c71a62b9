"""Imports run one way: no circle among the modules of models/ and pipeline/, counting
the imports inside functions too (a late import that dodges a loop is still a loop)."""
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
        for path in sorted((ROOT / package).glob("*.py")):
            name = package + ("" if path.stem == "__init__" else "." + path.stem)
            modules[name] = path
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
