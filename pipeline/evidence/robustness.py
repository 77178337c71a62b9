"""The claims' verdicts under every reading of the post's ambiguities, read back from
the runs of an ambiguity plan (``pipeline.ambiguities`` plans it, ``pipeline.sweep``
runs it): which runs each claim is decided on under each reading, the verdicts, and
one robustness line per claim (for ``report.ambiguity_section``)."""
import json
from pathlib import Path

from ..runs.evaluated import load_run
from .claims import CLAIMS, claim_rows


def partners(scenario):
    """Every scenario of the post's claims except ``scenario`` itself, in the claims'
    order: those a reading with ``partners = true`` changes too."""
    out = []
    for _, a, b, _, _ in CLAIMS:
        out += [s for s in (a, b) if s != scenario and s not in out]
    return out


def reading_of(spec, ambiguity, k):
    """Reading ``k`` (0: the default) of the ambiguity named ``ambiguity``."""
    return next(a for a in spec["ambiguities"] if a["name"] == ambiguity)["readings"][k]


def find_plans(runs_root):
    """The ambiguity plans in ``runs_root`` or a folder of it (``runs/ambiguities``)."""
    root = Path(runs_root)
    out = []
    for path in [root / "sweep.json"] + sorted(root.glob("*/sweep.json")):
        if path.is_file():
            plan = json.loads(path.read_text())
            if "ambiguities" in plan:
                out.append(plan)
    return out


def reading_runs(plan):
    """{(ambiguity or None, reading, scenario): finished evaluated runs, by seed} of an
    ambiguity plan (tasks not yet finished or evaluated are absent)."""
    out = {}
    for task in plan["tasks"] + plan.get("views", []):
        run = load_run(Path(plan["runs"]) / task["name"])
        if run:
            out.setdefault((task["ambiguity"], task["reading"], task["scenario"]), []).append(run)
    return out


def scenarios_of(spec, amb):
    """The scenarios a reading of ambiguity table ``amb`` changes, in order: the file's
    scenario and, with ``partners``, the claims' others."""
    main = spec["scenario"]
    return [main] + (partners(main) if amb["partners"] else [])


def changed_scenarios(spec, ambiguity):
    """The scenarios a reading of the ambiguity named ``ambiguity`` changes (None: the
    default, none)."""
    if ambiguity is None:
        return set()
    return set(scenarios_of(spec, next(a for a in spec["ambiguities"]
                                       if a["name"] == ambiguity)))


def under_reading(spec, cells, ambiguity, k):
    """{scenario: runs} the claims are decided on under reading ``k`` of ``ambiguity``:
    the reading's runs where it changes the scenario, the default's elsewhere."""
    changed = changed_scenarios(spec, ambiguity)
    out = {}
    for s in [spec["scenario"]] + partners(spec["scenario"]):
        runs = cells.get((ambiguity, k, s) if s in changed else (None, 0, s))
        if runs:
            out[s] = runs
    return out


def verdicts(spec, cells, resamples):
    """Every reading's claims, given the runs ``cells`` of ``reading_runs``: [(ambiguity
    or None, k, [(verdict, evidence, touched) per claim])], the default first;
    ``touched``: the reading changes one of the claim's two scenarios (an untouched
    claim keeps the default's verdict)."""
    readings = [(None, 0)] + [(a["name"], k) for a in spec["ambiguities"]
                              for k in range(1, len(a["readings"]))]
    out = []
    for ambiguity, k in readings:
        rows = claim_rows(under_reading(spec, cells, ambiguity, k), {}, resamples)
        changed = changed_scenarios(spec, ambiguity)
        out.append((ambiguity, k, [(verdict, evidence, bool({a, b} & changed))
                                   for (_, a, b, _, _), (_, _, evidence, verdict)
                                   in zip(CLAIMS, rows)]))
    return out


def robustness(spec, table, claim):
    """One line for claim number ``claim`` of ``verdicts``' ``table``: how many of the
    measured readings that change one of its scenarios (the default not counted) give
    each verdict, which ones differ from the default's, how many are not measured (yet),
    and which are not applicable (both sides the same config: left out of the count)."""
    default = table[0][2][claim][0]
    touched = [(a, k, v[claim][0]) for a, k, v in table[1:] if v[claim][2]]
    applicable = [t for t in touched if t[2] != "not applicable"]
    measured = [t for t in applicable if t[2] != "not measured"]
    counts = {}
    for _, _, verdict in measured:
        counts[verdict] = counts.get(verdict, 0) + 1
    parts = ["%s under %d of %d readings" % (v, n, len(measured))
             for v, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    if default != "not measured":
        parts += ["%s when %s = %s" % (verdict, a, reading_of(spec, a, k)["name"])
                  for a, k, verdict in measured if verdict != default]
    if len(measured) < len(applicable):
        parts.append("%d not measured (not run yet, or another positive class)"
                     % (len(applicable) - len(measured)))
    parts += ["not applicable when %s = %s (both sides the same config; not counted)"
              % (a, reading_of(spec, a, k)["name"]) for a, k, v in touched
              if v == "not applicable"]
    return "; ".join(parts) or "no reading changes its scenarios"
