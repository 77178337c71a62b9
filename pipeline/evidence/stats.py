"""Evaluation statistics: patient-level bootstrap intervals, paired differences
between two models on the same images, and the operating point chosen on the
validation split.

Everything here works on the screening decision: ``score`` is P(referable DR)
per image, ``referable`` its truth (level >= threshold), ``patients`` the
patient of each image. Resampling draws whole patients (both eyes stay
together), ``resamples`` times (2,000 by default) from a seeded generator;
intervals are the 2.5 and 97.5 percentiles of the replicates where the metric
is defined (AUC needs both classes; kappa some disagreement to expect), and the
replicates left out are counted (``undefined``).
"""
import numpy as np

from .metrics import auc, quadratic_kappa

METRICS = ("auc", "sensitivity", "specificity", "accuracy", "kappa")
RESAMPLES = 2000
#: the operating point chosen on the validation split unless another is asked for
DEFAULT_RULE = ("sensitivity", 0.87)


def decision_metrics(score, truth, decided, metrics=METRICS):
    """``metrics`` of the referable decisions ``decided`` against ``truth``; AUC from
    the scores."""
    truth, decided = np.asarray(truth, bool), np.asarray(decided, bool)
    pos, neg = truth.sum(), (~truth).sum()
    out = {}
    for m in metrics:
        if m == "auc":
            out[m] = auc(score, truth)
        elif m == "sensitivity":
            out[m] = float((decided & truth).sum() / pos) if pos else float("nan")
        elif m == "specificity":
            out[m] = float((~decided & ~truth).sum() / neg) if neg else float("nan")
        elif m == "accuracy":
            out[m] = float((decided == truth).mean())
        elif m == "kappa":  # binary: quadratic weights are Cohen's; undefined (NaN) when
            # one class is all there is, in the truth and the decisions together
            both = len(set(truth.tolist()) | set(decided.tolist())) > 1
            out[m] = quadratic_kappa(truth, decided, 2) if both else float("nan")
        else:
            raise KeyError(m)
    return out


def patient_groups(patients):
    """Index arrays of the images of each patient, in first-seen order."""
    _, first, inverse = np.unique(np.asarray(patients), return_index=True, return_inverse=True)
    order = np.argsort(first)  # patients in the order they first appear
    return [np.flatnonzero(inverse == k) for k in order]


def resample_indices(patients, resamples=RESAMPLES, seed=0):
    """Yield ``resamples`` image index arrays, each of whole patients drawn with replacement."""
    groups = patient_groups(patients)
    rng = np.random.RandomState(seed)
    for _ in range(resamples):
        yield np.concatenate([groups[k] for k in rng.randint(0, len(groups), len(groups))])


def interval(values):
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return [float("nan"), float("nan")]
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def bootstrap(score, truth, decided, patients, resamples=RESAMPLES, seed=0, metrics=METRICS):
    """{metric: {"value", "ci": [lo, hi]}} of the decisions ``decided``, with 95 %
    patient-level bootstrap intervals, and the resampling settings under "bootstrap"."""
    score, truth, decided = np.asarray(score), np.asarray(truth, bool), np.asarray(decided, bool)
    point = decision_metrics(score, truth, decided, metrics)
    reps = {m: [] for m in metrics}
    for idx in resample_indices(patients, resamples, seed):
        for m, v in decision_metrics(score[idx], truth[idx], decided[idx], metrics).items():
            reps[m].append(v)
    out = {m: {"value": point[m], "ci": interval(reps[m]),
               "undefined": int(np.isnan(reps[m]).sum())} for m in metrics}
    out["bootstrap"] = {"resamples": resamples, "seed": seed, "unit": "patient",
                        "patients": len(patient_groups(patients)), "images": int(len(score))}
    return out


def paired_difference(a, b, truth, patients, metric="auc", resamples=RESAMPLES, seed=0):
    """``metric`` of model A minus that of model B on the same images, with a 95 %
    interval from the same patient resamples applied to both.

    ``a`` and ``b`` are lists of (score, decided) pairs, one per run (seed) of
    each model: the difference is that of the means over runs. Returns
    {"value", "ci", "resamples", "seed", "runs": [len(a), len(b)]}.
    """
    truth = np.asarray(truth, bool)
    a = [(np.asarray(s), np.asarray(d, bool)) for s, d in a]
    b = [(np.asarray(s), np.asarray(d, bool)) for s, d in b]

    def mean(runs, idx):
        return np.mean([decision_metrics(s[idx], truth[idx], d[idx], (metric,))[metric]
                        for s, d in runs])

    def diff(idx):
        return mean(a, idx) - mean(b, idx)

    reps = [diff(idx) for idx in resample_indices(patients, resamples, seed)]
    return {"value": float(diff(np.arange(len(truth)))), "ci": interval(reps),
            "resamples": resamples, "seed": seed, "runs": [len(a), len(b)]}


def choose_cut(score, truth, rule="sensitivity", target=0.87):
    """The decision threshold on P(referable), chosen on validation data.

    ``rule="sensitivity"``: the highest specificity whose sensitivity is at least
    ``target`` (ties: the higher sensitivity); ``"youden"``: the highest
    sensitivity + specificity - 1 (ties: the higher sensitivity). Candidates are
    the scores themselves (decision ``score >= cut``). Returns (cut, sens, spec).
    """
    score, truth = np.asarray(score, float), np.asarray(truth, bool)
    if truth.all() or not truth.any():
        raise ValueError("choosing an operating point needs both classes in the data")
    best = None
    for cut in np.unique(score):
        decided = score >= cut
        sens = (decided & truth).sum() / truth.sum()
        spec = (~decided & ~truth).sum() / (~truth).sum()
        if rule == "sensitivity":
            if sens < target:
                continue
            key = (spec, sens)
        elif rule == "youden":
            key = (sens + spec - 1, sens)
        else:
            raise ValueError("operating point rule must be sensitivity or youden, not %r" % rule)
        if best is None or key > best[0]:
            best = (key, float(cut), float(sens), float(spec))
    return best[1:]
