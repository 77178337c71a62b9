"""pipeline.evidence.fourcases against scikit-learn, hand computations and
simulations with a known answer: class metrics, paired differences of accuracy, the
cell verdicts and a planted crossover."""
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, log_loss

from pipeline.evidence import fourcases as fc
from pipeline.evidence.stats import interval, resample_indices

K = 10


def probs_of(pred, rng, k=K):
    """N x k probabilities whose argmax is ``pred``."""
    p = rng.dirichlet(np.ones(k), len(pred)) * 0.5
    p[np.arange(len(pred)), pred] += 1.0
    return p / p.sum(axis=1, keepdims=True)


def recipe(truth, correct, rng):
    """Probabilities of a recipe right on the images where ``correct`` holds and wrong
    (another class) elsewhere."""
    wrong = (truth + rng.randint(1, K, len(truth))) % K
    return probs_of(np.where(correct, truth, wrong), rng)


def test_class_metrics_equal_scikit_learns():
    rng = np.random.RandomState(0)
    truth = rng.randint(0, K, 400)
    probs = rng.dirichlet(np.ones(K), 400)
    probs[np.arange(400), truth] += rng.uniform(0, 0.6, 400)
    probs[:, 3] *= 0.01  # class 3 never predicted
    probs /= probs.sum(axis=1, keepdims=True)
    pred = probs.argmax(axis=1)
    assert 3 not in pred and 3 in truth
    m = fc.class_metrics(probs, truth)
    assert m["n"] == 400
    assert m["accuracy"] == pytest.approx(accuracy_score(truth, pred))
    assert m["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(truth, pred))
    assert m["log_loss"] == pytest.approx(log_loss(truth, probs, labels=range(K)))
    assert m["confusion"] == confusion_matrix(truth, pred, labels=range(K)).tolist()


def test_mean_class_accuracy_is_over_the_classes_in_the_truth():
    rng = np.random.RandomState(1)
    truth = rng.randint(0, K, 300)
    truth[truth == 7] = 0  # class 7 absent from the truth, predicted now and then
    pred = np.where(rng.rand(300) < 0.6, truth, rng.randint(0, K, 300))
    assert 7 in pred
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        expected = balanced_accuracy_score(truth, pred)
    m = fc.class_metrics(probs_of(pred, rng), truth)
    assert m["mean_class_accuracy"] == pytest.approx(expected)
    assert sum(map(sum, m["confusion"])) == 300 and m["confusion"][7][7] == 0


def test_bootstrap_class_has_stats_bootstraps_shape():
    rng = np.random.RandomState(2)
    truth = rng.randint(0, K, 200)
    probs = recipe(truth, rng.rand(200) < 0.7, rng)
    out = fc.bootstrap_class(probs, truth, resamples=200, seed=5)
    assert out["bootstrap"] == {"resamples": 200, "seed": 5, "unit": "image", "images": 200}
    for m in ("accuracy", "mean_class_accuracy"):
        lo, hi = out[m]["ci"]
        assert lo < out[m]["value"] < hi and out[m]["undefined"] == 0
    reps = [np.mean(probs[idx].argmax(axis=1) == truth[idx])
            for idx in resample_indices(np.arange(200), 200, 5)]
    assert out["accuracy"]["ci"] == interval(reps)


def test_paired_accuracy_difference_by_hand():
    truth = np.array([0, 1, 2, 1])
    eye = np.eye(3) * 0.7 + 0.1
    a = [eye[[0, 1, 2, 0]], eye[[0, 1, 2, 1]]]  # accuracies 3/4 and 1 -> mean 7/8
    b = [eye[[0, 0, 0, 0]]]  # accuracy 1/4
    out = fc.paired_accuracy_difference(a, b, truth, resamples=50, seed=7)
    assert out["value"] == pytest.approx(7 / 8 - 1 / 4)
    assert out["runs"] == [2, 1] and out["resamples"] == 50 and out["seed"] == 7
    reps = []  # the same draws, done naively
    for idx in resample_indices(np.arange(4), 50, 7):
        mean_a = np.mean([np.mean(r.argmax(axis=1)[idx] == truth[idx]) for r in a])
        reps.append(mean_a - np.mean(b[0].argmax(axis=1)[idx] == truth[idx]))
    assert out["ci"] == pytest.approx([np.percentile(reps, 2.5), np.percentile(reps, 97.5)])
    same = fc.paired_accuracy_difference(b, b, truth, resamples=20)
    assert same["value"] == 0 and same["ci"] == [0.0, 0.0]
    # mean class accuracy, recalls of classes 0, 1, 2: A's runs (1 + 1/2 + 1) / 3 and 1;
    # B's (1 + 0 + 0) / 3
    mca = fc.paired_accuracy_difference(a, b, truth, resamples=20, metric="mean_class_accuracy")
    assert mca["value"] == pytest.approx((5 / 6 + 1) / 2 - 1 / 3)
    with pytest.raises(ValueError, match="same 4 images"):
        fc.paired_accuracy_difference([eye[[0, 1]]], b, truth, resamples=5)


def simulated_differences(planted, n=500, resamples=300, seed=0):
    """The paired difference A - B at each size, on n synthetic images, for planted
    accuracy differences: B right on 60 % of images, A on 60 % + the planted one
    (a planted 0: A is B, the difference exactly 0)."""
    rng = np.random.RandomState(seed)
    out = []
    for k, delta in enumerate(planted):
        truth = rng.randint(0, K, n)
        b = recipe(truth, rng.rand(n) < 0.6, rng)
        a = b if delta == 0 else recipe(truth, rng.rand(n) < 0.6 + delta, rng)
        out.append(fc.paired_accuracy_difference([a], [b], truth, resamples, seed=k))
    return out


def test_a_planted_crossover_is_found_between_the_right_sizes():
    sizes = [50, 100, 200, 400, 800, 1600, 3200]
    diffs = simulated_differences([-0.2, -0.2, -0.2, 0, 0.2, 0.2, 0.2])
    found = fc.crossover(sizes, diffs)
    assert (found["below"], found["above"], found["between"]) == (200, 800, [400])
    assert (found["leader_below"], found["leader_above"]) == ("B", "A")
    assert [row["sign"] for row in found["intervals"]] == [-1, -1, -1, 0, 1, 1, 1]
    assert [row["size"] for row in found["intervals"]] == sizes
    assert fc.crossover(sizes[:3] + sizes[4:], diffs[:3] + diffs[4:])["between"] == []


def test_no_crossover_where_the_order_never_flips():
    sizes = [100, 200, 400, 800]
    assert fc.crossover(sizes, simulated_differences([0.1] * 4, seed=1)) is None
    assert fc.crossover(sizes, simulated_differences([0] * 4, seed=2)) is None
    unsure = [{"value": v, "ci": [v - 0.1, v + 0.1]} for v in (-0.05, 0.05, -0.05, 0.05)]
    assert fc.crossover(sizes, unsure) is None


def test_crossover_takes_the_first_flip_and_checks_its_sizes():
    d = {s: {"value": s * 0.1, "ci": [s * 0.1 - 0.05, s * 0.1 + 0.05]} for s in (-1, 0, 1)}
    found = fc.crossover([1, 2, 3, 4, 5], [d[1], d[0], d[-1], d[0], d[1]])
    assert (found["below"], found["above"], found["between"]) == (1, 3, [2])
    assert (found["leader_below"], found["leader_above"]) == ("A", "B")
    with pytest.raises(ValueError, match="ascend"):
        fc.crossover([2, 1], [d[1], d[-1]])
    with pytest.raises(ValueError, match="2 sizes but 1"):
        fc.crossover([1, 2], [d[1]])


def diff(value, lo, hi):
    return {"value": value, "ci": [lo, hi]}


def test_cell_verdict_beaten_names_the_largest_lower_end_and_the_margin():
    out = fc.cell_verdict("fine-tune", {"top features": diff(0.05, 0.01, 0.09),
                                        "earlier features": diff(0.04, 0.03, 0.05),
                                        "scratch": diff(-0.2, -0.3, -0.1)}, 0.02)
    assert out["verdict"] == "beaten" and out["by"] == "earlier features"
    assert out["difference"] == 0.04 and out["ci"] == [0.03, 0.05]
    assert out["beyond_margin"] and out["lower_beyond_margin"]
    assert out["text"] == ("fine-tune is beaten: earlier features is better by 0.040 "
                           "(95 % CI 0.030 to 0.050), by more than the margin 0.02, even at "
                           "the interval's lower end.")
    out = fc.cell_verdict("fine-tune", {"top features": diff(0.05, 0.01, 0.09)}, 0.02)
    assert out["beyond_margin"] and not out["lower_beyond_margin"]
    assert out["text"].endswith("by more than the margin 0.02, though the interval's lower "
                                "end is not.")
    out = fc.cell_verdict("fine-tune", {"top features": diff(0.015, 0.01, 0.02)}, 0.02)
    assert out["verdict"] == "beaten" and not out["beyond_margin"]
    assert out["text"].endswith("but by no more than the margin 0.02.")


def test_cell_verdict_not_beaten_and_inconclusive():
    out = fc.cell_verdict("top features", {"fine-tune": diff(-0.01, -0.03, 0.015),
                                           "scratch": diff(-0.2, -0.3, -0.1)}, 0.02)
    assert out["verdict"] == "not beaten"
    assert out["text"] == ("top features is not beaten: no other recipe is better by the "
                           "margin 0.02 (the largest upper end, 0.015, is fine-tune's).")
    out = fc.cell_verdict("top features", {"fine-tune": diff(0.0, -0.03, 0.025),
                                           "earlier": diff(0.01, -0.01, 0.04),
                                           "scratch": diff(-0.2, -0.3, -0.1)}, 0.02)
    assert out["verdict"] == "inconclusive" and out["by"] == "earlier"
    assert sorted(out["reaching"]) == ["earlier", "fine-tune"]
    assert out["text"] == ("Inconclusive for top features: no recipe is surely better, but "
                           "earlier could be better by the margin 0.02 or more: 0.010 "
                           "(95 % CI -0.010 to 0.040).")
    nan = fc.cell_verdict("a", {"b": diff(float("nan"), float("nan"), float("nan"))}, 0.02)
    assert nan["verdict"] == "inconclusive" and nan["by"] == "b"
    with pytest.raises(ValueError, match="no other recipe"):
        fc.cell_verdict("a", {}, 0.02)
