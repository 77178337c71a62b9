"""Screening metrics: accuracy, sensitivity, specificity, ROC AUC, quadratic weighted kappa.

NumPy only (the tests hold them to scikit-learn's and to hand-worked cases):
training imports this, and the offline GPU bundle has no scipy or scikit-learn.
"""
import numpy as np


def average_ranks(values):
    """1-based ranks of ``values``, ties given the mean of their ranks."""
    _, inverse, counts = np.unique(np.asarray(values), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return (last - (counts - 1) / 2.0)[inverse]


def auc(score, truth):
    """ROC AUC as the Mann-Whitney statistic (ties count one half); NaN with one class."""
    truth = np.asarray(truth, bool)
    n1 = int(truth.sum())
    n0 = len(truth) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((average_ranks(score)[truth].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def confusion(truth, pred, k):
    """k x k counts: row the true class, column the predicted one."""
    return np.bincount(np.asarray(truth, int) * k + np.asarray(pred, int),
                       minlength=k * k).reshape(k, k)


def accuracy(pred, truth):
    """The fraction of images whose predicted class (N ints) is the true one."""
    return float(np.mean(np.asarray(pred) == np.asarray(truth)))


def mean_class_accuracy(pred, truth):
    """The mean over the classes present in ``truth`` of each one's recall."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    return float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))


def quadratic_kappa(truth, pred, k):
    """Cohen's kappa with quadratic weights over classes 0..k-1: 1 - sum(w O) / sum(w E)."""
    observed = confusion(truth, pred, k).astype(float)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    i, j = np.indices((k, k))
    w = (i - j) ** 2
    return float(1 - (w * observed).sum() / (w * expected).sum())


def referable_score(probs, target, threshold=2):
    """P(referable DR) from class probabilities: p(1) for binary, sum p(level >= threshold)."""
    return probs[:, 1] if target == "binary" else probs[:, threshold:].sum(axis=1)


def referable_decision(probs, target, threshold=2):
    """The argmax decision "referable DR" per image: class 1 for binary, a level
    >= threshold for levels."""
    return probs.argmax(axis=1) >= (1 if target == "binary" else threshold)


def screening_metrics(probs, levels, target, threshold=2):
    """Metrics of class probabilities ``probs`` (N x K) against true ``levels`` (0-4).

    accuracy / kappa / confusion are over the K classes of the target;
    sensitivity, specificity and AUC are for referable DR (level >= threshold).
    """
    levels = np.asarray(levels)
    truth = (levels >= threshold).astype(int) if target == "binary" else levels
    pred = probs.argmax(axis=1)
    referable = (levels >= threshold).astype(int)
    pred_referable = referable_decision(probs, target, threshold).astype(int)
    k = probs.shape[1]
    out = {"n": int(len(levels)), "accuracy": float((pred == truth).mean()),
           "kappa": quadratic_kappa(truth, pred, k) if len(set(truth) | set(pred)) > 1 else 0.0,
           "confusion": confusion(truth, pred, k).tolist()}
    tp = int(((pred_referable == 1) & (referable == 1)).sum())
    tn = int(((pred_referable == 0) & (referable == 0)).sum())
    out["sensitivity"] = tp / max(1, int(referable.sum()))
    out["specificity"] = tn / max(1, int((1 - referable).sum()))
    score = referable_score(probs, target, threshold)
    out["auc"] = auc(score, referable)
    return out


def validation_row(probs, data, config):
    """The validation columns of ``metrics.csv`` for ``probs`` over a Dataset split
    (class-labelled data: loss, accuracy and mean per-class accuracy)."""
    loss = -np.mean(np.log(np.clip(probs[np.arange(len(probs)), data.targets], 1e-12, None)))
    if config["target"] == "classes":
        pred = probs.argmax(axis=1)
        return {"val_loss": float(loss), "val_accuracy": accuracy(pred, data.targets),
                "val_mean_class_accuracy": mean_class_accuracy(pred, data.targets)}
    m = screening_metrics(probs, data.levels, config["target"], config.get("threshold", 2))
    return {"val_loss": float(loss), "val_accuracy": m["accuracy"], "val_kappa": m["kappa"],
            "val_auc": m["auc"]}
