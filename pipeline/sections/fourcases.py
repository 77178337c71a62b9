"""The four transfer-learning cases, measured (``make fourcases``): the learning curves of
both datasets, the four-cases table and the lesson's claims beside the post's."""
import json

from .common import SCENARIO_NAMES, fmt


def _diff(d):
    return "%+.3f [%+.3f, %+.3f]" % ((d["value"],) + tuple(d["ci"]))


def _metric(name):
    return "AUC, referable DR" if name == "auc" else "accuracy"


def _over_estimate(timing, tolerance=0.25):
    """A sentence naming the cells whose runs recorded more than ``tolerance`` over their
    estimate (run beside other work, or an estimate that does not hold), and the rest's
    total beside its estimate."""
    over = [t for t in timing if t["seconds"] > (1 + tolerance) * t["estimate_seconds"]]
    if not over:
        return []
    rest = [t for t in timing if t not in over]
    return ["", "Cells that recorded more than %d %% over their estimate: %s. The other %d "
            "cells recorded %.0f min against %.0f min estimated." % (
                100 * tolerance, "; ".join("%s (%.1f min, estimate %.1f)" % (
                    t["cell"], t["seconds"] / 60, t["estimate_seconds"] / 60) for t in over),
                len(rest), sum(t["seconds"] for t in rest) / 60,
                sum(t["estimate_seconds"] for t in rest) / 60)]


def fourcases_section(summary, figure=None):
    """Markdown of ``fourcases.json``: what ran, the curves, the table, the claims."""
    md = ["", "## The four cases, measured", "",
          "The post's decision rule crosses dataset size with similarity to ImageNet. `make "
          "fourcases` (`scenarios/fourcases.toml`) runs every scenario on data similar to "
          "ImageNet and on data unlike it, at nested, stratified, patient-whole subsets of "
          "each fold's training part (%s), by %d-fold cross-validation, seed%s %s; every size "
          "is scored on the same out-of-fold images, so differences between recipes and "
          "sizes are paired. A fine-tuning on a subset takes as many SGD steps as its "
          "fold's full training part (the post gives no rule; equal epochs would starve the "
          "small sizes of steps)." % (
              ", ".join(summary["sizes"]), summary["folds"],
              "s" if len(summary["seeds"]) > 1 else "", ", ".join(map(str, summary["seeds"])))]
    md += ["", "Every size here is small by the lesson's own scale (it calls two thousand "
           "images small and a million large; the how-to draws the line at about %d): the "
           "large cells are this command on larger data (`DATA_DIFFERENT=data/kaggle` with "
           "`DEVICE=cuda` or on a cluster), not a claim of this report." % summary["large_from"]]
    if summary["missing"]:
        md += ["", "Not yet run (the same command resumes them): %s." % "; ".join(
            summary["missing"])]
    if figure:
        md += ["", "![Learning curves: the metric against training images](%s)" % figure]
    every = ["", "### Every recipe at every size", "",
             "The curves' points: the pooled out-of-fold metric with its 95 % interval and the "
             "training images (mean over folds).", "",
             "| data | recipe | " + " | ".join(summary["sizes"]) + " |",
             "|---|---|" + "---|" * len(summary["sizes"])]
    for d in summary["datasets"]:
        for scenario, curve in d["curves"].items():
            by = {c["size"]: c for c in curve}
            every.append("| %s, %s | %s | %s |" % (d["title"], _metric(d["metric"]),
                                                SCENARIO_NAMES.get(scenario, scenario),
                                                " | ".join("%s (%.0f img)" % (
                                                    fmt(by[s]), by[s]["train_images"])
                                                    if s in by else "-"
                                                    for s in summary["sizes"])))
    md += ["", "### The four-cases table", "",
           "For each dataset and size: the recipe the lesson recommends, every other recipe's "
           "paired difference from it (95 % bootstrap interval: over patients for the fundus "
           "data, over images for the photographs), and the verdict: **beaten** when some "
           "other recipe's advantage has its interval wholly above 0; **not beaten** when "
           "every other recipe's advantage stays below the margin (upper ends); otherwise "
           "inconclusive. (Picking the best on the same images and measuring the lesson's "
           "distance from it would bias every verdict against the lesson.)", "",
           "| data | size (training images) | the lesson's recipe | others minus it | "
           "verdict |", "|---|---|---|---|---|"]
    for row in summary["cells"]:
        md.append("| %s | %s (%.0f) | %s | %s | **%s**: %s |" % (
            row["dataset"], row["size"], row["train_images"],
            SCENARIO_NAMES.get(row["lesson"], row["lesson"]),
            "; ".join("%s %s" % (s, _diff(d)) for s, d in row.get("others", {}).items())
            or "-", row["verdict"], row["text"].split(": ", 1)[-1]))
    md += ["", "### The lesson's claims", "",
           "Each claim decided at every size both sides ran (margin: %s), with the "
           "crossover: the two neighbouring sizes at which the paired difference's interval "
           "excludes 0 with opposite signs." % "; ".join(
               "%g %s on %s" % (d["margin"], _metric(d["metric"]), d["name"])
               for d in summary["datasets"]), "",
           "| claim | A minus B by size | verdict | crossover |", "|---|---|---|---|"]
    for claim in summary["claims"]:
        cross = claim["crossover"]
        md.append("| %s (%s vs %s) | %s | %s | %s |" % (
            claim["text"], claim["a"], claim["b"],
            "; ".join("%s: %s %s" % (p["size"], _diff(p["difference"]), p["verdict"])
                      for p in claim["sizes"]) or "-", claim["overall"],
            "-" if len(claim["sizes"]) < 2 else
            "none found in the sizes measured" if cross is None else
            "between %d and %d training images" % (cross["below"], cross["above"])))
    md += ["", "The runs of the cells above recorded %.0f min of training and evaluation on "
           "%s; the plan estimates at most %.0f min for them from nothing on the reference "
           "machine class (2 cores). Plan: %s." % (
               summary["seconds"] / 60, ", ".join(summary.get("cpus", [])) or "an unrecorded CPU",
               summary["estimate_seconds"] / 60, summary["plan"])]
    md += _over_estimate(summary.get("timing", []))
    md += ["", "*Made by: %s.*" % "; ".join(
               "`%s`" % c for c in summary.get("made_by", []) + [summary["command"]])]
    return md + every + [""]


def section(report):
    path = report.runs_root / "fourcases" / "fourcases.json"
    if not path.exists():
        return []
    figure = "fourcases/size_curves.png" if (path.parent / "size_curves.png").exists() else None
    return fourcases_section(json.loads(path.read_text()), figure)
