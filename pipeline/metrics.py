"""Screening metrics: accuracy, sensitivity, specificity, ROC AUC, quadratic weighted kappa."""
import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, roc_auc_score


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
           "kappa": float(cohen_kappa_score(truth, pred, weights="quadratic", labels=list(range(k))))
           if len(set(truth) | set(pred)) > 1 else 0.0,
           "confusion": confusion_matrix(truth, pred, labels=list(range(k))).tolist()}
    tp = int(((pred_referable == 1) & (referable == 1)).sum())
    tn = int(((pred_referable == 0) & (referable == 0)).sum())
    out["sensitivity"] = tp / max(1, int(referable.sum()))
    out["specificity"] = tn / max(1, int((1 - referable).sum()))
    score = referable_score(probs, target, threshold)
    out["auc"] = float(roc_auc_score(referable, score)) if 0 < referable.sum() < len(referable) \
        else float("nan")
    return out


def validation_row(probs, data, config):
    """The validation columns of ``metrics.csv`` for ``probs`` over a Dataset split."""
    m = screening_metrics(probs, data.levels, config["target"], config.get("threshold", 2))
    loss = -np.mean(np.log(np.clip(probs[np.arange(len(data)), data.targets], 1e-12, None)))
    return {"val_loss": float(loss), "val_accuracy": m["accuracy"], "val_kappa": m["kappa"],
            "val_auc": m["auc"]}
