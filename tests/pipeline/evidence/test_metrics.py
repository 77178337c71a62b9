"""Screening metrics against hand-computed cases and scikit-learn."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.evidence.metrics import screening_metrics


def one_hot(pred, k):
    return np.eye(k)[pred] * 0.8 + 0.2 / k


def qwk_by_hand(truth, pred, k):
    """Quadratic weighted kappa from its definition: 1 - sum(w O) / sum(w E)."""
    O = np.zeros((k, k))
    for t, p in zip(truth, pred):
        O[t, p] += 1
    E = np.outer(O.sum(axis=1), O.sum(axis=0)) / O.sum()
    w = np.array([[(i - j) ** 2 for j in range(k)] for i in range(k)]) / (k - 1) ** 2
    return 1 - (w * O).sum() / (w * E).sum()


def test_binary_screening_metrics_by_hand():
    levels = np.array([0, 0, 1, 2, 3, 4, 0, 2])  # referable: 2, 3, 4, 2 -> 4 positives
    pred = np.array([0, 1, 0, 1, 1, 0, 0, 1])   # TP 3, FN 1, TN 3, FP 1
    m = screening_metrics(one_hot(pred, 2), levels, "binary")
    assert m["sensitivity"] == 0.75 and m["specificity"] == 0.75 and m["accuracy"] == 0.75
    assert m["confusion"] == [[3, 1], [1, 3]]
    assert m["kappa"] == pytest.approx(qwk_by_hand((levels >= 2).astype(int), pred, 2))


def test_levels_kappa_and_auc():
    rng = np.random.RandomState(0)
    levels = rng.randint(0, 5, 200)
    probs = rng.dirichlet(np.ones(5), 200)
    probs[np.arange(200), levels] += rng.uniform(0, 1, 200)  # informative, not perfect
    probs /= probs.sum(axis=1, keepdims=True)
    m = screening_metrics(probs, levels, "levels")
    assert m["kappa"] == pytest.approx(qwk_by_hand(levels, probs.argmax(axis=1), 5))
    referable = (levels >= 2).astype(int)
    score = probs[:, 2:].sum(axis=1)
    pos, neg = score[referable == 1], score[referable == 0]
    mann_whitney = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert m["auc"] == pytest.approx(mann_whitney)
    assert m["auc"] == pytest.approx(roc_auc_score(referable, score))
    assert sum(map(sum, m["confusion"])) == 200


def test_numpy_kappa_confusion_and_auc_equal_scikit_learns():
    from sklearn.metrics import cohen_kappa_score, confusion_matrix
    from pipeline.evidence.metrics import auc, confusion, quadratic_kappa
    rng = np.random.RandomState(3)
    for k in (2, 3, 5):
        truth, pred = rng.randint(0, k, 97), rng.randint(0, k, 97)
        pred[:40] = truth[:40]
        assert quadratic_kappa(truth, pred, k) == pytest.approx(
            cohen_kappa_score(truth, pred, weights="quadratic", labels=list(range(k))), abs=1e-12)
        np.testing.assert_array_equal(confusion(truth, pred, k),
                                      confusion_matrix(truth, pred, labels=list(range(k))))
    score = rng.randint(0, 6, 300) / 5.0  # many ties
    truth = rng.rand(300) < 0.3
    assert auc(score, truth) == pytest.approx(roc_auc_score(truth, score), abs=1e-12)


def test_the_validation_row_of_class_data_is_scikit_learns():
    from types import SimpleNamespace
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss
    from pipeline.evidence.metrics import validation_row
    rng = np.random.RandomState(1)
    probs = rng.dirichlet(np.ones(4), size=60)
    targets = rng.randint(0, 4, 60)
    row = validation_row(probs, SimpleNamespace(targets=targets, levels=targets),
                         {"target": "classes"})
    assert row["val_accuracy"] == pytest.approx(accuracy_score(targets, probs.argmax(axis=1)))
    assert row["val_mean_class_accuracy"] == pytest.approx(
        balanced_accuracy_score(targets, probs.argmax(axis=1)))
    assert row["val_loss"] == pytest.approx(log_loss(targets, probs, labels=range(4)))
