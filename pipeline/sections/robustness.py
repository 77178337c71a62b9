"""How much the unstated choices matter: every claim decided again under each reading
of what the post leaves unsaid (``make ambiguities``)."""
from pathlib import Path

import numpy as np

from ..evidence.stats import RESAMPLES
from ..render.plots import plot_intervals
from .common import fmt, made_by


def ambiguity_section(runs_root, stem, resamples=RESAMPLES, decided=None):
    """How far each claim's verdict moves across the readings of what the post leaves
    unsaid (the ambiguity plan in ``runs_root`` or a folder of it: ``make ambiguities``):
    a robustness line per claim, then every reading's figures and verdicts. ``decided``
    ({claim: the claims table's row}): the verdict shown "by default", so that a claim
    has one default verdict in the report (the grid's own default row, on the test
    split, is in the table of every reading)."""
    from ..evidence.robustness import find_plans, reading_of, reading_runs, robustness, verdicts
    from ..evidence.claims import CLAIMS
    plans = find_plans(runs_root)
    if not plans:
        return []
    plan = plans[0]
    spec, cells = plan["ambiguities"], reading_runs(plan)
    table = verdicts(spec, cells, resamples)
    main = spec["scenario"]
    done = sum(len(r) for r in cells.values())
    views = len(plan.get("views", []))
    md = ["", "## How much the unstated choices matter", "",
          "The post leaves %d choices open (`%s`). Each reading below is scenario %s with that "
          "one thing changed from the default (and the claims' other scenarios changed too "
          "where the reading concerns them: %s), %s; every claim is decided again under each "
          "reading by the same paired bootstrap on the test split, evaluated %s. %d of %d "
          "runs are finished and evaluated%s (`%s`)." % (
              len(spec["ambiguities"]), Path(plan["file"]).name, main,
              ", ".join(a["name"] for a in spec["ambiguities"] if a["partners"]) or "none",
              "seed " + ", ".join(map(str, plan["seeds"])) if len(plan["seeds"]) < 2 else
              "seeds %s (figures are their means)" % ", ".join(map(str, plan["seeds"])),
              "with 4-rotation TTA" if plan["tta"] else "without test-time augmentation "
              "(`TTA=0`)", done, len(plan["tasks"]) + views,
              " (%d of them the default's runs evaluated another way, not trained again)"
              % views if views else "", Path(plan["runs"]).name), "",
          "| claim | by default (as the claims table decides it) | under every reading that "
          "changes one of its scenarios (test split) |", "|---|---|---|"]
    decided = decided or {}
    md += ["| %s | **%s**%s | %s |" % (
        claim[0], decided[claim[0]]["verdict"] if claim[0] in decided else table[0][2][i][0],
        " (%d images)" % decided[claim[0]]["images"] if decided.get(claim[0], {}).get("images")
        else "", robustness(spec, table, i)) for i, claim in enumerate(CLAIMS)]
    md += made_by([], plans=[plan])
    md += ["", "### Every reading", ""]
    md += ["- **%s**: \"%s\" - %s" % (a["name"], a["quote"], a["why"])
           for a in spec["ambiguities"]]
    md += ["- **%s** (nothing to run): \"%s\" - %s" % (n["name"], n["quote"], n["why"])
           for n in spec["notes"]]
    md += ["", "Scenario %s's test AUC and its kappa (referable DR at the operating point "
           "chosen on validation), with 95 %% patient-bootstrap intervals; its ΔAUC against "
           "the default by a paired bootstrap; then each claim's verdict and ΔAUC (C1-C%d in "
           "the order of the table above; - where the reading changes neither of its "
           "scenarios, so the default's verdict stands)." % (main, len(CLAIMS)), "",
           "| ambiguity | reading | runs | test AUC | kappa | ΔAUC vs default | %s |" % " | ".join(
               "C%d" % (i + 1) for i in range(len(CLAIMS))),
           "|---|---|---|---|---|---|%s" % ("---|" * len(CLAIMS))]
    by_reading = {(a, k): v for a, k, v in table}
    default_runs = cells.get((None, 0, main), [])
    bars = []
    for amb in spec["ambiguities"]:
        for k, reading in enumerate(amb["readings"]):
            runs = cells.get((amb["name"], k, main) if k else (None, 0, main), [])
            if runs and (k or not bars):
                bars.append(("%s: %s" % (amb["name"], reading["name"]) if k else
                             "default (scenario %s as it is)" % main,) + auc_bar(runs))
            claims = by_reading[(amb["name"], k) if k else (None, 0)]
            md.append("| %s | %s%s | %d | %s | %s | %s | %s |" % (
                amb["name"] if k == 0 else "", reading_of(spec, amb["name"], k)["name"],
                " (default)" if k == 0 else "", len(runs),
                reading_figure(runs, "auc"), reading_figure(runs, "kappa"),
                "" if k == 0 else reading_difference(runs, default_runs, resamples),
                " | ".join(verdict_cell(v, e) if touched or k == 0 else "-"
                           for v, e, touched in claims)))
    if bars:
        plot_intervals(bars, str(Path(runs_root) / (stem + "-readings.png")),
                       "test AUC, referable DR (of each reading's own positive class)",
                       "scenario %s under each reading (95 %% intervals; seeds: mean ± sd)"
                       % main, reference=bars[0][1] if bars[0][0].startswith("default") else None)
        md += ["", "![Scenario %s's test AUC under each reading](%s-readings.png)" % (
            main, stem)]
    return md + [""]


def verdict_cell(verdict, evidence):
    """'**holds** +0.161 [+0.036, +0.295]', or why there is no verdict, in short."""
    if verdict == "not applicable":
        return "not applicable (the same config on both sides)"
    if verdict == "not measured":
        return "not comparable" if "not comparable" in evidence else "not run yet"
    return "**%s** %s" % (verdict, evidence.split(" (")[0].replace("ΔAUC ", ""))


def auc_bar(runs):
    """(value, (low, high)) of a reading's test AUC: one run's interval, or the mean ±
    sd of several seeds."""
    values = [r["evaluation"]["argmax"]["auc"] for r in runs]
    if len(values) == 1:
        return values[0]["value"], tuple(values[0]["ci"])
    v = [x["value"] for x in values]
    return float(np.mean(v)), (np.mean(v) - np.std(v, ddof=1), np.mean(v) + np.std(v, ddof=1))


def reading_figure(runs, metric):
    """A reading's test figure: the run's value with its interval, or the mean ± sd of
    several seeds; a 5-level run adds its tuned quadratic kappa."""
    if not runs:
        return "not run yet"
    where = "argmax" if metric == "auc" else "at_operating_point"
    values = [r["evaluation"][where][metric] for r in runs]
    text = fmt(values[0]) if len(runs) == 1 else "%.3f ± %.3f" % (
        np.mean([v["value"] for v in values]), np.std([v["value"] for v in values], ddof=1))
    levels = runs[0]["evaluation"].get("levels")
    if metric == "kappa" and levels:
        text += "; 5 levels, tuned: %s" % fmt(levels["kappa_tuned"])
    return text


def reading_difference(runs, default_runs, resamples):
    """ΔAUC of a reading's runs against the default's on the same test images."""
    from ..evidence.claims import side_by_side
    if not runs or not default_runs:
        return ""
    said, d = side_by_side(runs, default_runs, resamples, evaluated_alike=False)
    return said if d is None else "%+.3f [%+.3f, %+.3f]" % (d["value"], d["ci"][0], d["ci"][1])


def section(report):
    decided = {r["claim"]: r for r in report.claims[0]}
    return ambiguity_section(report.runs_root, report.stem, report.resamples, decided)
