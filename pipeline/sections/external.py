"""External validation: runs evaluated on every image of another dataset, beside
their own test split."""
import re

from ..evidence.claims import referable
from ..render.plots import plot_reliability
from ..runs.evaluated import read_npz
from .common import fmt


def external_section(external, runs_root, stem):
    md = []
    for name, items in sorted(external.items()):
        md += ["## External validation: %s" % name, "",
               "Every usable image of `%s`, preprocessed as the training data, at the operating "
               "point chosen on the run's own validation split. Side by side with the run's own "
               "test split, to show the shift." % name, "",
               "| run | data | images | AUC | sensitivity at cut | specificity at cut | "
               "kappa at cut |", "|---|---|---|---|---|---|---|"]
        curves = []
        for run, ext, where in items:
            own = run["evaluation"]
            for label, e in (("own test split", own), (name, ext)):
                at = e["at_operating_point"]
                md.append("| %s | %s | %d | %s | %s | %s | %s |" % (
                    run["dir"].name, label, e["n"], fmt(e["argmax"]["auc"]),
                    fmt(at["sensitivity"]), fmt(at["specificity"]), fmt(at["kappa"])))
            p = read_npz(where / "predictions.npz")
            curves.append(("%s, %s" % (run["config"]["scenario"], name), p["score"],
                           referable(p, run["config"])))
            curves.append(("%s, own test split" % run["config"]["scenario"],
                           run["predictions"]["score"],
                           referable(run["predictions"], run["config"])))
        figure = "%s-calibration-%s.png" % (stem, re.sub(r"[^\w.-]", "_", name))
        plot_reliability(curves, str(runs_root / figure))
        md += ["", "![Calibration: own test split and %s](%s)" % (name, figure), ""]
    return md


def section(report):
    return external_section(report.external, report.runs_root, report.stem)
