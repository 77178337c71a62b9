"""The report of class-labelled data (``make report DATA=data/caltech``): no referable
class, so none of the post's DR sections; every run's accuracy and mean per-class
accuracy with their intervals over images, and its log-loss."""
from ..runs.evaluated import train_seconds
from .common import fmt


def section(report):
    classes = report.classes
    md = ["# Transfer learning on class-labelled data: reproduction report", "",
          "Data: `%s` (%d usable images in %d classes: %s; SHA1 %s). Every interval is a 95 %% "
          "bootstrap interval over images, %d resamples, seeded. The post's claims are about "
          "referable DR: on this data, `make fourcases` decides the lesson's (below, where "
          "it has run)." % (report.data_path.name, report.usable, len(classes),
                            ", ".join(classes), report.data_sha1[:12], report.resamples), "",
          "## Every run", "",
          "| run | scenario | fold | seed | test images | accuracy | mean per-class accuracy "
          "| log-loss | training s |", "|---|---|---|---|---|---|---|---|---|"]
    for run in report.runs:
        config, e = run["config"], run["evaluation"]
        md.append("| %s | %s | %s | %s | %d | %s | %s | %.3f | %.0f |" % (
            run["dir"].name, config["scenario"],
            "%d of %d" % (config["fold"], config["folds"]) if "folds" in config else "-",
            config.get("seed", 0), e["n"], fmt(e["argmax"]["accuracy"]),
            fmt(e["argmax"]["mean_class_accuracy"]), e["log_loss"],
            train_seconds(run["dir"])))
    return md + [""]
