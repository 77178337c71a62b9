"""Beyond a single image of a single run: several runs as one model (an ensemble), and
both eyes of a patient (fusion), each fitted on the validation split only and applied
unchanged to the test split.

Predictions are the dicts of ``predictions.npz`` / ``val_predictions.npz`` (``probs``,
``score``, ``levels``, ``names``, ``patients``).
"""
import numpy as np



def aligned(predictions, names):
    """The rows of ``predictions`` in the order of ``names`` (KeyError if one is missing)."""
    row = {str(n): i for i, n in enumerate(predictions["names"])}
    index = [row[str(n)] for n in names]
    return {k: np.asarray(v)[index] for k, v in predictions.items()}


def ensemble(members):
    """One prediction dict from several runs' on the same images: the mean of their
    probabilities (and so of the referable scores, which are sums of them)."""
    names = list(members[0]["names"])
    parts = [aligned(m, names) for m in members]
    out = dict(parts[0])
    out["probs"] = np.mean([p["probs"] for p in parts], axis=0)
    out["score"] = np.mean([p["score"] for p in parts], axis=0)
    return out


def fellow_scores(names, scores):
    """The other eye's score per image (``<id>_left`` / ``<id>_right``); NaN without one."""
    by_name = {str(n): float(s) for n, s in zip(names, scores)}
    out = []
    for n in map(str, names):
        other = (n[:-5] + "_right" if n.endswith("_left") else n[:-6] + "_left"
                 if n.endswith("_right") else None)
        out.append(by_name.get(other, np.nan) if other else np.nan)
    return np.array(out)


def _logit(p):
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_fusion(names, score, truth):
    """Logistic-regression weights (w_own, w_other, bias) on [logit(this eye's score),
    logit(the fellow eye's)], fitted on the (validation) images that have both eyes.
    None when there are too few such images, or a single class among them."""
    from sklearn.linear_model import LogisticRegression
    score = np.asarray(score, np.float64)
    other = fellow_scores(names, score)
    both = ~np.isnan(other)
    truth = np.asarray(truth, bool)[both]
    if both.sum() < 10 or truth.all() or not truth.any():
        return None
    X = np.column_stack([_logit(score[both]), _logit(other[both])])
    model = LogisticRegression(C=1.0).fit(X, truth)
    return [float(model.coef_[0][0]), float(model.coef_[0][1]), float(model.intercept_[0])]


def fused_scores(predictions, weights):
    """The fused P(referable) per image; an image without its fellow eye keeps its own."""
    score = np.asarray(predictions["score"], np.float64)
    other = fellow_scores(predictions["names"], score)
    both = ~np.isnan(other)
    out = score.copy()
    z = weights[0] * _logit(score[both]) + weights[1] * _logit(other[both]) + weights[2]
    out[both] = 1 / (1 + np.exp(-z))
    return out

