"""Five-level grading as Kaggle's 2015 competition scored it: quadratic weighted kappa
over levels 0-4.

A 5-level run's probabilities give a continuous grade, the expected level
``sum_k k p_k``; four cut-points on it, chosen on the validation split to maximise
quadratic weighted kappa, turn it into levels (level = how many cut-points the
grade reaches). The search is deterministic: coordinate ascent from
(0.5, 1.5, 2.5, 3.5), each cut-point in turn moved to the best of the midpoints
between consecutive distinct validation grades that keep the cut-points in order
(ties: the lowest of the equally good, the current cut-point among them), until a
full round changes nothing. The same cut-points are
then applied unchanged to the test split and to external data.
"""
import numpy as np

from .metrics import confusion, quadratic_kappa
from .stats import RESAMPLES, interval, resample_indices

LEVELS = 5
START = (0.5, 1.5, 2.5, 3.5)
#: a level whose band of expected grades is narrower than this is flagged: cut-points
#: tuned that close together all but merge two levels (a collapsed level)
NARROW_BAND = 0.25


def expected_grade(probs):
    """N x 5 probabilities -> the expected level per image."""
    return np.asarray(probs, np.float64) @ np.arange(LEVELS)


def levels_at(grade, cuts):
    """The level of each grade: how many of the (sorted) cut-points it reaches."""
    return np.searchsorted(np.asarray(cuts), np.asarray(grade), side="right")


def kappa(truth, pred):
    """Quadratic weighted kappa over levels 0-4; NaN where it is undefined (a single level
    is all there is, in the truth and the grades together: no disagreement to expect)."""
    if len(set(np.asarray(truth).tolist()) | set(np.asarray(pred).tolist())) < 2:
        return float("nan")
    return quadratic_kappa(truth, pred, LEVELS)


def tune_cuts(grade, truth, start=START, rounds=50):
    """Cut-points maximising kappa of ``levels_at(grade, cuts)`` against ``truth``
    (the search of the module docstring). Returns (cuts, kappa)."""
    grade, truth = np.asarray(grade, np.float64), np.asarray(truth)
    values = np.unique(grade)
    candidates = np.concatenate([[values[0] - 0.5], (values[:-1] + values[1:]) / 2,
                                 [values[-1] + 0.5]])

    def score(cuts):  # an undefined kappa is no better than any defined one
        k = kappa(truth, levels_at(grade, cuts))
        return -np.inf if np.isnan(k) else k

    cuts = np.array(start, np.float64)
    for _ in range(rounds):
        changed = False
        for i in range(len(cuts)):
            low = cuts[i - 1] if i else -np.inf
            high = cuts[i + 1] if i + 1 < len(cuts) else np.inf
            best, choice = score(cuts), cuts[i]
            for c in candidates[(candidates >= low) & (candidates <= high)]:  # ascending
                trial = cuts.copy()
                trial[i] = c
                k = score(trial)
                # the best; of equal ones the lowest, the current cut included
                if k > best + 1e-12 or (k >= best - 1e-12 and c < choice):
                    best, choice = k, c
            if choice != cuts[i]:
                cuts[i], changed = choice, True
        if not changed:
            break
    return cuts, float(kappa(truth, levels_at(grade, cuts)))


def kappa_with_interval(truth, pred, patients, resamples=RESAMPLES, seed=0):
    """{"value", "ci", "undefined"}: 5-level kappa with a 95 % patient-bootstrap interval
    over the resamples where it is defined; ``undefined``: how many were left out."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    reps = [kappa(truth[idx], pred[idx]) for idx in resample_indices(patients, resamples, seed)]
    return {"value": kappa(truth, pred), "ci": interval(reps),
            "undefined": int(np.isnan(reps).sum())}


def bands(cuts, grade):
    """Each level's band of expected grades under ``cuts``, its width (the middle
    levels'), how many of ``grade`` fall in it, and whether it is narrower than
    ``NARROW_BAND``: [{level, low, high, width, images, narrow}]."""
    edges = [-np.inf] + [float(c) for c in cuts] + [np.inf]
    graded = levels_at(grade, cuts)
    out = []
    for k in range(LEVELS):
        width = edges[k + 1] - edges[k]
        out.append({"level": k, "low": None if k == 0 else edges[k],
                    "high": None if k == LEVELS - 1 else edges[k + 1],
                    "width": None if np.isinf(width) else width,
                    "images": int((graded == k).sum()),
                    "narrow": bool(not np.isinf(width) and width < NARROW_BAND)})
    return out


def grading(probs, levels, patients, cuts, resamples=RESAMPLES, seed=0):
    """The 5-level figures of ``probs`` against true ``levels``: kappa at the argmax and
    at ``cuts`` with intervals, and both 5 x 5 confusion matrices (row: true level)."""
    argmax = np.asarray(probs).argmax(axis=1)
    tuned = levels_at(expected_grade(probs), cuts)
    return {"cuts": [float(c) for c in cuts], "bands": bands(cuts, expected_grade(probs)),
            "kappa_argmax": kappa_with_interval(levels, argmax, patients, resamples, seed),
            "kappa_tuned": kappa_with_interval(levels, tuned, patients, resamples, seed),
            "confusion_argmax": confusion(levels, argmax, LEVELS).tolist(),
            "confusion_tuned": confusion(levels, tuned, LEVELS).tolist()}


def cv_grading(folds, resamples=RESAMPLES, seed=0):
    """Five levels under cross-validation, cut-points never tuned on the images they
    grade: ``folds`` is, per fold k in order, (its validation predictions, its test
    predictions), each a dict of probs, levels, patients. Fold k's run validated on
    fold k+1, so fold k's test images are in the validation part of fold k-1's run
    only: fold k is graded with cut-points tuned on the pooled validation predictions
    of every fold's run but k-1's. Returns the pooled figures (``grading``'s, on every
    image out of fold) with each fold's cut-points and bands."""
    k = len(folds)
    probs, levels, patients, graded, per_fold = [], [], [], [], []
    for i, (_, test) in enumerate(folds):
        tuning = [folds[j][0] for j in range(k) if j != (i - 1) % k]
        cuts, val_kappa = tune_cuts(
            np.concatenate([expected_grade(v["probs"]) for v in tuning]),
            np.concatenate([v["levels"] for v in tuning]))
        grade = expected_grade(test["probs"])
        per_fold.append({"cuts": [float(c) for c in cuts], "val_kappa_tuned": val_kappa,
                         "tuning_images": int(sum(len(v["levels"]) for v in tuning)),
                         "bands": bands(cuts, grade)})
        probs.append(test["probs"])
        levels.append(test["levels"])
        patients.append(test["patients"])
        graded.append(levels_at(grade, cuts))
    probs, levels = np.concatenate(probs), np.concatenate(levels)
    patients, graded = np.concatenate(patients), np.concatenate(graded)
    argmax = probs.argmax(axis=1)
    return {"per_fold": per_fold, "images": int(len(levels)),
            "kappa_argmax": kappa_with_interval(levels, argmax, patients, resamples, seed),
            "kappa_tuned": kappa_with_interval(levels, graded, patients, resamples, seed),
            "confusion_tuned": confusion(levels, graded, LEVELS).tolist(),
            "graded_per_level": np.bincount(graded, minlength=LEVELS).tolist()}
