"""Every run evaluated on the data, and each one's inputs, config and curves."""
import json

from ..runs.evaluated import train_seconds
from .common import fmt


def all_runs_table(runs):
    md = ["## Every run", "", "%d runs evaluated on this data (cross-validation folds "
          "included; each fold's test images are that fold)." % len(runs), "",
          "| run | scenario | fold | seed | test images | AUC | training s |",
          "|---|---|---|---|---|---|---|"]
    for run in runs:
        config, e = run["config"], run["evaluation"]
        md.append("| %s | %s | %s | %s | %d | %s | %.0f |" % (
            run["dir"].name, config["scenario"],
            "%d of %d" % (config["fold"], config["folds"]) if "folds" in config else "-",
            config.get("seed", 0), e["n"], fmt(e["argmax"]["auc"]), train_seconds(run["dir"])))
    return md + [""]


def run_details(runs):
    md = ["## Runs", ""]
    for run in runs:
        env, config, e = run["env"], run["config"], run["evaluation"]
        weights = ("%s (SHA1 %s)" % (env["weights"], env["weights_sha1"]) if env.get("weights")
                   else "none: random initialisation (Caffe's xavier fillers)")
        fold = " (fold %d of %d)" % (config["fold"], config["folds"]) if "folds" in config else ""
        md += ["### %s: scenario %s, seed %s%s" % (run["dir"].name, config["scenario"],
                                                  config.get("seed", 0), fold), "",
               "*%s*" % config.get("description", ""), "",
               "- weights: %s" % weights,
               "- data: %s (SHA1 %s)" % (env["data"], env["data_sha1"]),
               "- test: %d images; argmax: %s" % (e["n"], ", ".join(
                   "%s %s" % (m.replace("_", " "), fmt(e["argmax"][m]))
                   for m in (("accuracy", "mean_class_accuracy") if "classes" in config
                             else ("auc", "kappa")))),
               "- training: %.0f s on %s CPUs, Theano %s, Lasagne %s" % (
                   train_seconds(run["dir"]), env.get("cpus"), env.get("theano"),
                   env.get("lasagne")), ""]
        if config["method"] == "finetune":  # a feature run has one point, no curve
            md += ["![learning curves of %s](%s/learning_curves.png)" % (run["dir"].name,
                                                                         run["dir"].name), ""]
        md += ["```json", json.dumps(config, indent=2), "```", ""]
    return md


def every_run(report):
    return all_runs_table(report.runs)


def details(report):
    return run_details(report.split_runs)
