"""The four transfer-learning cases as evidence: metrics of class data (K classes,
each image its own unit), paired differences between two recipes on the same
images, the verdict on the recipe a case's lesson recommends, and where the order
of two recipes flips along the training-set size.

Conventions: ``probs`` is N x K class probabilities (rows sum to 1), ``truth`` N ints
in 0..K-1; intervals are 95 % bootstrap percentiles over images drawn with
replacement (``stats.resample_indices`` with each image its own patient). Fundus
data (AUC, whole patients) has ``stats.paired_difference`` instead.
"""
import numpy as np

from .metrics import accuracy, confusion, mean_class_accuracy
from .stats import RESAMPLES, interval, resample_indices

#: the metrics the bootstrap here reports, each a function of (predicted, truth)
CLASS_METRICS = ("accuracy", "mean_class_accuracy")


def metric_of(name, pred, truth):
    if name == "accuracy":
        return accuracy(pred, truth)
    if name == "mean_class_accuracy":
        return mean_class_accuracy(pred, truth)
    raise KeyError(name)


def class_metrics(probs, truth):
    """{"accuracy", "mean_class_accuracy", "log_loss" (mean -log p of the true class,
    p clipped at 1e-15), "confusion" (K x K list, row true, column predicted), "n"}."""
    probs, truth = np.asarray(probs, float), np.asarray(truth, int)
    pred = probs.argmax(axis=1)
    p_true = np.clip(probs[np.arange(len(truth)), truth], 1e-15, None)
    return {"accuracy": accuracy(pred, truth),
            "mean_class_accuracy": mean_class_accuracy(pred, truth),
            "log_loss": float(-np.mean(np.log(p_true))),
            "confusion": confusion(truth, pred, probs.shape[1]).tolist(),
            "n": int(len(truth))}


def image_resamples(n, resamples, seed):
    """``resamples`` index arrays of n images drawn with replacement (each its own unit)."""
    return resample_indices(np.arange(n), resamples, seed)


def bootstrap_class(probs, truth, resamples=RESAMPLES, seed=0):
    """{metric: {"value", "ci": [lo, hi], "undefined": 0}} for accuracy and mean class
    accuracy, 95 % intervals over images, and the settings under "bootstrap" (the
    shape of ``stats.bootstrap``'s result, its unit "image")."""
    truth = np.asarray(truth, int)
    pred = np.asarray(probs).argmax(axis=1)
    reps = {m: [] for m in CLASS_METRICS}
    for idx in image_resamples(len(truth), resamples, seed):
        for m in CLASS_METRICS:
            reps[m].append(metric_of(m, pred[idx], truth[idx]))
    out = {m: {"value": metric_of(m, pred, truth), "ci": interval(reps[m]),
               "undefined": int(np.isnan(reps[m]).sum())} for m in CLASS_METRICS}
    out["bootstrap"] = {"resamples": resamples, "seed": seed, "unit": "image",
                        "images": int(len(truth))}
    return out


def paired_accuracy_difference(a, b, truth, resamples=RESAMPLES, seed=0, metric="accuracy"):
    """``metric`` (accuracy or mean_class_accuracy) of recipe A minus recipe B on the
    same N images: ``a`` and ``b`` are lists of N x K probabilities, one per run
    (seed); the difference is that of the means over runs, its 95 % interval from
    the same image resamples applied to both. Returns {"value", "ci", "resamples",
    "seed", "runs": [len(a), len(b)]}, as ``stats.paired_difference``."""
    truth = np.asarray(truth, int)
    preds = []
    for side in (a, b):
        side = [np.asarray(p).argmax(axis=1) for p in side]
        if not side or any(len(p) != len(truth) for p in side):
            raise ValueError("paired difference: each side needs runs on the same %d images"
                             % len(truth))
        preds.append(side)

    def diff(idx):
        return (np.mean([metric_of(metric, p[idx], truth[idx]) for p in preds[0]])
                - np.mean([metric_of(metric, p[idx], truth[idx]) for p in preds[1]]))

    reps = [diff(idx) for idx in image_resamples(len(truth), resamples, seed)]
    return {"value": float(diff(np.arange(len(truth)))), "ci": interval(reps),
            "resamples": resamples, "seed": seed, "runs": [len(a), len(b)]}


def _interval_text(d):
    return "%.3f (95 %% CI %.3f to %.3f)" % (d["value"], d["ci"][0], d["ci"][1])


def cell_verdict(lesson, others, margin):
    """Whether the recipe a case's lesson recommends is beaten in one cell.

    ``lesson``: that recipe's name; ``others``: {recipe: {"value", "ci": [lo, hi]}},
    each the paired difference OTHER minus LESSON. The rule:

    * "beaten": some other recipe's interval lies wholly above 0; named is the one
      with the largest lower end ("by", "difference", "ci"), with whether its value
      exceeds ``margin`` ("beyond_margin") and whether even its lower end does
      ("lower_beyond_margin");
    * "not beaten": every other recipe's upper end is below ``margin``;
    * "inconclusive": otherwise; "reaching" lists the recipes whose upper end reaches
      the margin (a NaN interval counts as reaching), "by" the one reaching furthest.

    Returns {"verdict", "text" (one sentence), ...the fields above}.
    """
    if not others:
        raise ValueError("verdict on %s: no other recipe to compare with" % lesson)
    lower = {r: d["ci"][0] for r, d in others.items()}
    upper = {r: d["ci"][1] for r, d in others.items()}
    winners = [r for r in others if lower[r] > 0]
    if winners:
        by = max(winners, key=lambda r: lower[r])
        d = others[by]
        beyond, lower_beyond = bool(d["value"] > margin), bool(d["ci"][0] > margin)
        how = ("by more than the margin %g, even at the interval's lower end" % margin
               if lower_beyond else
               "by more than the margin %g, though the interval's lower end is not" % margin
               if beyond else "but by no more than the margin %g" % margin)
        return {"verdict": "beaten", "by": by, "difference": d["value"], "ci": d["ci"],
                "beyond_margin": beyond, "lower_beyond_margin": lower_beyond,
                "text": "%s is beaten: %s is better by %s, %s." % (
                    lesson, by, _interval_text(d), how)}
    reaching = [r for r in others if not upper[r] < margin]
    if not reaching:
        top = max(others, key=lambda r: upper[r])
        return {"verdict": "not beaten", "margin": margin,
                "text": "%s is not beaten: no other recipe is better by the margin %g "
                        "(the largest upper end, %.3f, is %s's)." % (
                            lesson, margin, upper[top], top)}
    by = max(reaching, key=lambda r: (not np.isnan(upper[r]), upper[r]))
    return {"verdict": "inconclusive", "by": by, "reaching": reaching, "margin": margin,
            "text": "Inconclusive for %s: no recipe is surely better, but %s could be better "
                    "by the margin %g or more: %s." % (lesson, by, margin,
                                                       _interval_text(others[by]))}


def sign_of(d):
    """+1 when the interval of ``d`` lies wholly above 0, -1 wholly below, 0 otherwise
    (it includes 0, or is undefined)."""
    lo, hi = d["ci"]
    return 1 if lo > 0 else -1 if hi < 0 else 0


def crossover(sizes, differences):
    """Where the order of recipes A and B flips along the training-set size.

    ``sizes`` ascending; ``differences``: per size {"value", "ci"} of A minus B. The
    rule: the sizes whose interval excludes 0 are signed (+ A better, - B better);
    the crossover is the first pair of neighbours among the signed sizes with
    opposite signs, "below" the smaller size and "above" the larger; the unsigned
    sizes strictly between them (intervals including 0) are "between". Returns
    {"below", "above", "between", "leader_below" ("A" or "B"), "leader_above",
    "intervals": [{"size", "value", "ci", "sign"} for every size]}, or None when the
    order never flips.
    """
    if len(sizes) != len(differences):
        raise ValueError("crossover: %d sizes but %d differences" % (len(sizes), len(differences)))
    if any(s >= t for s, t in zip(sizes, sizes[1:])):
        raise ValueError("crossover: sizes must ascend, not %s" % list(sizes))
    intervals = [{"size": s, "value": d["value"], "ci": list(d["ci"]), "sign": sign_of(d)}
                 for s, d in zip(sizes, differences)]
    signed = [i for i, row in enumerate(intervals) if row["sign"]]
    for i, j in zip(signed, signed[1:]):
        if intervals[i]["sign"] != intervals[j]["sign"]:
            leader = {1: "A", -1: "B"}
            return {"below": sizes[i], "above": sizes[j], "between": list(sizes[i + 1:j]),
                    "leader_below": leader[intervals[i]["sign"]],
                    "leader_above": leader[intervals[j]["sign"]], "intervals": intervals}
    return None
