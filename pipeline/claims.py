"""The post's claims as comparisons of test AUC between two scenarios, and their
verdicts: a paired patient bootstrap of the difference on the same images (the
test split, and the pooled out-of-fold predictions where both were cross-validated)."""
import numpy as np

from .combine import aligned, fellow_scores, fit_fusion, fused_scores
from .stats import paired_difference


#: The post's claims, as comparisons of test AUC between two scenarios.
#: kind "better": A beats B; "no worse": A is at most ``margin`` below B.
CLAIMS = [
    ("Pre-trained initialisation beats random initialisation", "4", "scratch", "better", 0),
    ("For data unlike ImageNet, fine-tuning beats a linear classifier on the top features",
     "4", "1", "better", 0),
    ("For data unlike ImageNet, features from earlier layers beat the top features",
     "3", "1", "better", 0),
    ("Freezing the first two layers costs nothing (no worse than fine-tuning everything, "
     "margin 0.05 AUC)", "4", "2", "no worse", 0.05),
]
def verdict(kind, margin, ci):
    lo, hi = ci
    if kind == "better":
        return "holds" if lo > 0 else "does not hold" if hi < 0 else "inconclusive at this size"
    return ("holds" if lo > -margin else "does not hold" if hi < -margin
            else "inconclusive at this size")


def referable(predictions, config):
    """Each image's truth, referable DR, by the run's own target: level >= its threshold."""
    return np.asarray(predictions["levels"]) >= config.get("threshold", 2)


def scores(predictions):
    """A (score, decision) pair for ``paired_difference`` (AUC uses the scores only)."""
    return predictions["score"], predictions["score"] >= 0.5


def claim_rows(by_scenario, cv, resamples):
    """(claim, scenarios, evidence, verdict) rows: paired differences of test AUC, on
    the test split and, where both scenarios were cross-validated, out of fold."""
    rows = []
    for text, a, b, kind, margin in CLAIMS:
        evidence = []
        thresholds = {r["config"].get("threshold", 2) for s in (a, b) for r in by_scenario.get(s, [])}
        thresholds |= {c["summary"].get("threshold", 2) for s in (a, b) for c in [cv.get(s)] if c}
        if len(thresholds) > 1:
            rows.append((text, "%s vs %s" % (a, b), "not comparable: referable DR is level >= "
                         + " in one, >= ".join(map(str, sorted(thresholds))) + " in the other",
                         "not measured"))
            continue
        if a in by_scenario and b in by_scenario:
            pa, pb = by_scenario[a][0]["predictions"], by_scenario[b][0]["predictions"]
            if list(pa["names"]) == list(pb["names"]):
                truth = referable(pa, by_scenario[a][0]["config"])
                d = paired_difference([scores(r["predictions"]) for r in by_scenario[a]],
                                      [scores(r["predictions"]) for r in by_scenario[b]],
                                      truth, pa["patients"], "auc", resamples)
                evidence.append(("test split, %d images, %d + %d runs" % (
                    len(truth), len(by_scenario[a]), len(by_scenario[b])), d))
        if a in cv and b in cv:
            oa, ob = cv[a]["oof"], cv[b]["oof"]
            if sorted(ob["names"]) == sorted(oa["names"]):  # the same images, aligned by name
                truth = referable(oa, cv[a]["summary"])
                d = paired_difference([scores(oa)], [scores(aligned(ob, oa["names"]))], truth,
                                      oa["patients"], "auc", resamples)
                evidence.append(("%d-fold CV, out-of-fold, %d images" % (
                    cv[a]["summary"]["folds"], len(truth)), d))
        if not evidence:
            rows.append((text, "%s vs %s" % (a, b), "not measured: evaluate both scenarios on "
                         "this data", "not measured"))
        for where, d in evidence:
            rows.append((text, "%s vs %s" % (a, b),
                         "ΔAUC %+.3f [%+.3f, %+.3f] (%s)" % (d["value"], d["ci"][0], d["ci"][1],
                                                             where),
                         verdict(kind, margin, d["ci"])))
    return rows


BOTH_EYES = ("Beyond the post: a patient's other eye helps (this eye's and the fellow eye's "
             "scores in a logistic model fitted on validation, against this eye alone)")


def both_eyes_row(scenario, run, val, resamples):
    """The claims-table row of both-eye fusion for the first run of ``scenario``, given its
    validation predictions ``val`` (None: evaluated before they were kept)."""
    where = "%s, both eyes vs one" % scenario
    if val is None:
        return (BOTH_EYES, where, "not measured: evaluate the run again (its validation "
                "predictions are not kept)", "not measured")
    config, test = run["config"], run["predictions"]
    weights = fit_fusion(val["names"], val["score"], referable(val, config))
    if weights is None:
        return (BOTH_EYES, where, "not measured: fewer than 10 validation images whose "
                "fellow eye (`<id>_left` / `<id>_right`) is there too, or one class only",
                "not measured")
    fused, truth = fused_scores(test, weights), referable(test, config)
    d = paired_difference([(fused, fused >= 0.5)], [(test["score"], test["score"] >= 0.5)],
                          truth, test["patients"], "auc", resamples)
    paired = int((~np.isnan(fellow_scores(test["names"], test["score"]))).sum())
    return (BOTH_EYES, where, "ΔAUC %+.3f [%+.3f, %+.3f] (test split, %d images, %d with "
            "their fellow eye; first seed; weights own %.2f, fellow %.2f)" % (
                d["value"], d["ci"][0], d["ci"][1], len(truth), paired, weights[0],
                weights[1]), verdict("better", 0, d["ci"]))
