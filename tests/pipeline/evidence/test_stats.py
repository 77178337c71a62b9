"""Evaluation statistics against known answers: bootstrap coverage on simulated
scores of known AUC, patient resampling, paired differences, the operating point."""
import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from pipeline.evidence import stats


def test_auc_equals_scikit_learn_with_ties():
    rng = np.random.RandomState(0)
    truth = rng.rand(300) < 0.3
    score = np.round(rng.normal(truth * 0.8, 1.0), 1)  # rounded: many ties
    assert stats.auc(score, truth) == pytest.approx(roc_auc_score(truth, score), abs=1e-12)
    assert np.isnan(stats.auc(score, np.zeros(300, bool)))


def test_interval_covers_the_true_auc_about_95_percent_of_the_time():
    """Binormal scores, positives N(d, 1) and negatives N(0, 1): AUC = Phi(d / sqrt 2)."""
    d = 1.0
    true_auc = norm.cdf(d / np.sqrt(2))
    covered = []
    for sim in range(150):
        rng = np.random.RandomState(1000 + sim)
        truth = np.r_[np.ones(30, bool), np.zeros(30, bool)]
        score = rng.normal(truth * d, 1.0)
        out = stats.bootstrap(score, truth, score >= 0.5, np.arange(60), resamples=400, seed=sim,
                              metrics=("auc",))
        lo, hi = out["auc"]["ci"]
        covered.append(lo <= true_auc <= hi)
    assert 0.88 <= np.mean(covered) <= 0.99, np.mean(covered)


def test_patient_resampling_keeps_both_eyes_together():
    patients = np.repeat(["p%d" % i for i in range(20)], 2)  # p0 p0 p1 p1 ...
    for idx in stats.resample_indices(patients, resamples=50, seed=3):
        assert len(idx) == 40
        drawn = patients[idx]
        for p in set(drawn):
            assert (idx[drawn == p] % 2 == 0).sum() == (idx[drawn == p] % 2 == 1).sum()
    score = np.linspace(0, 1, 40)
    out = stats.bootstrap(score, np.arange(40) >= 20, score >= 0.5, patients, resamples=50)
    assert out["bootstrap"] == {"resamples": 50, "seed": 0, "unit": "patient",
                                "patients": 20, "images": 40}


def test_paired_difference():
    rng = np.random.RandomState(0)
    truth = rng.rand(120) < 0.5
    patients = np.repeat(np.arange(60), 2)
    same = [(rng.rand(120), rng.rand(120) < 0.5)]
    zero = stats.paired_difference(same, same, truth, patients, resamples=300)
    assert zero["value"] == 0 and zero["ci"] == [0.0, 0.0]
    for metric in ("auc", "kappa", "sensitivity"):
        good = [(truth + rng.normal(0, 0.5, 120), truth ^ (rng.rand(120) < 0.1))
                for _ in range(2)]  # two runs (seeds) of a good model
        better = stats.paired_difference(good, same, truth, patients, metric, resamples=300)
        assert better["value"] > 0.2 and better["ci"][0] > 0 and better["runs"] == [2, 1]
        worse = stats.paired_difference(same, good, truth, patients, metric, resamples=300)
        assert worse["ci"][1] < 0


def test_operating_point_on_a_hand_worked_example():
    score = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    truth = [0, 0, 1, 0, 1, 0, 1, 1]
    # sensitivity >= 0.75: cut 0.5 keeps 3 of 4 positives and clears 3 of 4 negatives
    assert stats.choose_cut(score, truth, "sensitivity", 0.75) == (0.5, 0.75, 0.75)
    # Youden: cuts 0.3, 0.5 and 0.7 all give J = 0.5; 0.3 has the highest sensitivity
    assert stats.choose_cut(score, truth, "youden") == (0.3, 1.0, 0.5)
    assert stats.choose_cut(score, truth, "sensitivity", 1.0) == (0.3, 1.0, 0.5)
    with pytest.raises(ValueError, match="both classes"):
        stats.choose_cut(score, [1] * 8)


def test_decision_metrics_by_hand():
    score = np.array([0.9, 0.8, 0.4, 0.3, 0.6])
    m = stats.decision_metrics(score, [1, 1, 1, 0, 0], score >= 0.5)
    assert (m["sensitivity"], m["specificity"], m["accuracy"]) == (2 / 3, 0.5, 0.6)
    # kappa: po = 0.6, pe = (3/5)(3/5) + (2/5)(2/5) = 0.52 -> (0.6 - 0.52) / 0.48
    assert m["kappa"] == pytest.approx(0.08 / 0.48)
    assert m["auc"] == pytest.approx(5 / 6)  # 5 of the 6 (pos, neg) pairs ordered right
