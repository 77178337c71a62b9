"""The post's claims, each decided on the largest evidence there is, and the other
evidence beside them."""
import json
from pathlib import Path

from ..evidence.claims import CLAIM_SCENARIOS, both_eyes_row
from ..runs.evaluated import val_predictions
from .common import made_by


def cv_progress(runs_root):
    """A line for each cross-validation sweep in ``runs_root`` (``make reproduce CV=k``)
    that has not finished: which fold runs are missing; no verdict is drawn from it."""
    md = []
    for path in sorted(Path(runs_root).glob("*/sweep.json")):
        plan = json.loads(path.read_text())
        if "ambiguities" in plan or not plan.get("folds"):
            continue
        missing = [t["name"] for t in plan["tasks"]
                   if not (Path(plan["runs"]) / t["name"] / "DONE").exists()]
        if missing:
            md += ["", "The %d-fold cross-validation in `%s` is not finished: %d of %d fold "
                   "runs missing (%s), so no verdict is drawn from it yet." % (
                       plan["folds"], path.parent.name, len(missing), len(plan["tasks"]),
                       ", ".join(missing))]
    return md


def section(report):
    """The claims table (``claims.headline``: CV where both sides were cross-validated
    alike, else the test split), the both-eyes row, what made it, then the rest."""
    md = ["## The post's claims", "",
          "Decided on AUC, by a paired bootstrap of the difference between the two "
          "scenarios on the same images: holds when the interval is above 0 (for 'no worse': "
          "above minus the margin), does not hold when it is below, inconclusive otherwise. "
          "Each claim is decided on the largest evidence there is: the pooled out-of-fold "
          "predictions of every image where both scenarios were cross-validated alike, else "
          "the test split. With several seeds, the difference is that of their mean AUCs "
          "(cross-validation: of the seeds' ensembles).", "",
          "| claim | scenarios | evidence | verdict |", "|---|---|---|---|"]
    shown, others = report.claims
    by_scenario, cv = report.by_scenario, report.cv
    rows = [(r["claim"], r["scenarios"], r["evidence"], r["verdict"]) for r in shown]
    if "4" in by_scenario:
        rows.append(both_eyes_row("4", by_scenario["4"][0], val_predictions(by_scenario["4"][0]),
                                  report.resamples))
    md += ["| %s | %s | %s | **%s** |" % row for row in rows]
    md += cv_progress(report.runs_root)
    md += made_by([r for s in CLAIM_SCENARIOS for r in by_scenario.get(s, [])],
                  [c for s in CLAIM_SCENARIOS for c in cv.get(s, [])])
    if others:
        md += ["", "### The other evidence: the single test split, other designs", "",
               "Each claim's comparisons not in the table above (it shows the largest "
               "evidence): on the single test split, or by another cross-validation design.", "",
               "| claim | scenarios | evidence | verdict |", "|---|---|---|---|"]
        md += ["| %(claim)s | %(scenarios)s | %(evidence)s | **%(verdict)s** |" % r
               for r in others]
    return md
