"""Referring what the network is unsure of: the referral evaluations of runs and
cross-validations."""
import os

from .common import made_by


def referral_section(runs, runs_root, data_sha1):
    """Referral of the most uncertain test images (``evidence.referral``): per
    cross-validation (its pooled out-of-fold images) and per run, and per uncertainty, the
    AUC kept at 20 % referred against random referral, what was referred, and the curves."""
    from ..evidence.referral import describe, load_cv_referrals, load_referrals
    found = [("%d-fold CV of %s, out of fold" % (r["folds"], r["scenario"]), r)
             for r in load_cv_referrals(runs_root, data_sha1)]
    found += [(run["dir"].name, r) for run in runs
              for r in load_referrals(run["dir"], run["env"]["data_sha1"])]
    if not found:
        return []

    def f(x):
        return "%.3f [%.3f, %.3f]" % ((x["value"],) + tuple(x["ci"]))
    md = ["", "## Referring what the network is unsure of", "",
          "Each test image gets an uncertainty, the predictive entropy of its mean P(referable) "
          "over T MC-dropout passes (dropout on below the classifier, as in training) or over "
          "the seeds of an ensemble; the most uncertain are sent to a human grader and the "
          "rest are scored. AUC of the images kept, with the 20 % most uncertain referred, "
          "beside random referral of as many, and their difference by a paired patient "
          "bootstrap (same resamples, a random referral drawn in each). The last column: "
          "the levels (0-4) of the images the run's own referral cut (the uncertainty that "
          "refers 20 % of the validation images) refers, and of those it keeps.", "",
          "| run | uncertainty | test images | AUC, every image | AUC, 20 % referred | "
          "random referral | difference | verdict | levels referred / kept |",
          "|---|---|---|---|---|---|---|---|---|"]
    for name, r in found:
        h, refer = r["headline"], r["refer"]
        md.append("| %s | %s | %d | %s | %s | %s | %+.3f [%+.3f, %+.3f] | **%s** | %s / %s |" % (
            name, describe(r), r["n"], f(h["auc_all"]), f(h["auc_kept"]),
            f(h["auc_random"]), h["difference"]["value"], h["difference"]["ci"][0],
            h["difference"]["ci"][1], h["verdict"], refer["levels_referred"],
            refer["levels_kept"]))
    md += made_by([], records=[r for _, r in found])
    for name, r in found:
        md += ["", "![Referral curves of %s, %s](%s)" % (
            name, describe(r), os.path.relpath(r["path"].with_suffix(".png"), runs_root))]
    return md


def section(report):
    return referral_section(report.split_runs, report.runs_root, report.data_sha1)
