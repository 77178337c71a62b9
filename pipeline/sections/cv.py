"""Cross-validation by patient: one row per design, the ROC curves of its folds."""
import os

from .common import SCENARIO_NAMES, display, fmt, made_by


def cv_section(cv, runs_root):
    """Every cross-validation of the data: one row per design (scenario, overrides, folds,
    evaluation settings), each with the ROC curves of its folds."""
    from ..evidence.claims import cv_design_of, settings_text
    if not cv:
        return []
    md = ["## Cross-validation by patient", "",
          "| scenario | folds | evaluated | AUC per fold | mean ± sd | pooled out-of-fold AUC "
          "| images | summary |", "|---|---|---|---|---|---|---|---|"]
    entries = [(scenario, c) for scenario, items in sorted(cv.items()) for c in items]
    for scenario, c in entries:
        s = c["summary"]
        md.append("| %s | %d | %s | %s | %.3f ± %.3f | %s | %d | `%s` |" % (
            display(scenario + (" [%s]" % ", ".join(s["overrides"]) if s.get("overrides")
                                else "")), s["folds"], settings_text(cv_design_of(c)),
            ", ".join("%.3f" % f["auc"] for f in s["per_fold"]), s["mean"]["auc"],
            s["sd"]["auc"], fmt(s["pooled_auc"]["auc"]), s["images"], c["dir"].name))
    md += made_by([], [c for _, c in entries])
    md += [""] + ["![%s: ROC of each fold (%s)](%s)" % (
        SCENARIO_NAMES.get(scenario, scenario), c["dir"].name,
        os.path.relpath(c["dir"] / "cv_roc.png", runs_root)) for scenario, c in entries]
    return md + [""]


def section(report):
    return cv_section(report.cv, report.runs_root)
