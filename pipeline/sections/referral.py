"""Referring what the network is unsure of: the referral evaluations of runs and
cross-validations, and of runs on other data (external validation)."""
import os
from pathlib import Path

from .common import fmt, made_by


def _d(x):
    return "%+.3f [%+.3f, %+.3f]" % ((x["value"],) + tuple(x["ci"]))


HEADER = ("| run | uncertainty | images | AUC, every image | AUC, 20 % referred | by own "
          "confidence | difference | verdict | by random referral | difference | verdict | "
          "levels referred / kept |")


def referral_row(name, r):
    """One row of the referral tables: the AUC kept by the uncertainty, beside the
    network's own confidence and random referral (an evaluation made before the
    own-confidence baseline says so)."""
    from ..evidence.referral import describe
    h, refer = r["headline"], r["refer"]
    own = (fmt(h["auc_own"]), _d(h["difference_own"]), "**%s**" % h["verdict_own"]) \
        if "auc_own" in h else ("-", "-", "not measured (made before this baseline: "
                                          "evaluate it again)")
    return "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | **%s** | %s / %s |" % (
        (name, describe(r), r["n"], fmt(h["auc_all"]), fmt(h["auc_kept"])) + own
        + (fmt(h["auc_random"]), _d(h["difference"]), h["verdict"], refer["levels_referred"],
           refer["levels_kept"]))


def referral_section(runs, runs_root, data_sha1):
    """Referral of the most uncertain test images (``evidence.referral``): per
    cross-validation (its pooled out-of-fold images) and per run, and per uncertainty, the
    AUC kept at 20 % referred against the network's own confidence and random referral,
    what was referred, and the curves; then the runs' referral on other data."""
    from ..evidence.referral import describe, load_cv_referrals, load_referrals
    found = [(r.get("label") or "%d-fold CV of %s, out of fold" % (r["folds"], r["scenario"]), r)
             for r in load_cv_referrals(runs_root, data_sha1)]
    found += [(run["dir"].name, r) for run in runs
              for r in load_referrals(run["dir"], run["env"]["data_sha1"])]
    external = [("%s on %s" % (run["dir"].name, folder.name), r) for run in runs
                for folder in sorted(Path(run["dir"]).glob("external/*"))
                for r in load_referrals(folder, None)]
    if not found and not external:
        return []
    md = ["", "## Referring what the network is unsure of", "",
          "Each test image gets an uncertainty over T MC-dropout passes (dropout on below the "
          "classifier, as in training) or over the seeds of an ensemble: the predictive "
          "entropy of its mean P(referable), or the passes' sd where the row says so "
          "(`MEASURE=sd`). The most uncertain are sent to a human grader and the rest are "
          "scored: the AUC of the images kept with the 20 % most uncertain referred, beside "
          "two baselines that refer as many, the network's own confidence (the entropy of "
          "its evaluated P(referable), dropout off: it removes the middle of the score "
          "distribution, which raises the AUC kept for any decent classifier) and random "
          "referral; each difference by a paired patient bootstrap (same resamples). The "
          "last column: the levels (0-4) of the images the run's own referral cut (the "
          "uncertainty that refers 20 % of the validation images) refers, and of those it "
          "keeps.", ""]
    if found:
        md += [HEADER, "|---" * 12 + "|"] + [referral_row(name, r) for name, r in found]
    if external:
        md += ["", "### Referral on other data", "",
               "The runs above applied to every image of another dataset (none of them in "
               "the run's own data, by name or pixels), at their own validation cuts: where the "
               "referral was chosen is not where it is used. A gain measured on one camera "
               "and one clinic need not carry over.", "",
               HEADER, "|---" * 12 + "|"] + [referral_row(name, r) for name, r in external]
    md += made_by([], records=[r for _, r in found + external])
    for name, r in found + external:
        md += ["", "![Referral curves of %s, %s](%s)" % (
            name, describe(r), os.path.relpath(r["path"].with_suffix(".png"), runs_root))]
    return md


def section(report):
    return referral_section(report.split_runs, report.runs_root, report.data_sha1)
