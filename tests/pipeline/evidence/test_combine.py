"""pipeline.evidence.combine: the ensemble mean by hand; both-eye fusion on simulations with a
known answer (it must help where the fellow eye carries signal, not hurt where not)."""
import numpy as np

from pipeline.evidence.combine import ensemble, fellow_scores, fit_fusion, fused_scores
from pipeline.evidence.metrics import auc


def test_the_ensemble_is_the_mean_of_the_runs_aligned_by_name():
    a = {"names": np.array(["1_left", "1_right"]), "probs": np.array([[0.8, 0.2], [0.4, 0.6]]),
         "score": np.array([0.2, 0.6]), "levels": np.array([0, 3])}
    b = {"names": np.array(["1_right", "1_left"]), "probs": np.array([[0.2, 0.8], [0.6, 0.4]]),
         "score": np.array([0.8, 0.4]), "levels": np.array([3, 0])}
    e = ensemble([a, b])
    assert list(e["names"]) == ["1_left", "1_right"] and list(e["levels"]) == [0, 3]
    np.testing.assert_allclose(e["probs"], [[0.7, 0.3], [0.3, 0.7]])
    np.testing.assert_allclose(e["score"], [0.3, 0.7])


def test_the_fellow_eye_by_name():
    other = fellow_scores(["3_left", "3_right", "4_left", "IDRiD_001"], [0.1, 0.9, 0.5, 0.7])
    np.testing.assert_allclose(other[:2], [0.9, 0.1])
    assert np.isnan(other[2]) and np.isnan(other[3])


def simulate(n_patients, seed):
    """Both eyes of a patient referable together, each eye's score the patient's signal
    plus its own noise: two looks at one disease."""
    rng = np.random.RandomState(seed)
    patient = rng.rand(n_patients) < 0.4
    names, truth, score = [], [], []
    for p in range(n_patients):
        for eye in ("left", "right"):
            names.append("%d_%s" % (p, eye))
            truth.append(patient[p])
            z = (1.0 if patient[p] else -1.0) * 0.6 + rng.normal(0, 1.5)
            score.append(1 / (1 + np.exp(-z)))
    return np.array(names), np.array(truth), np.array(score)


def test_fusion_helps_where_the_fellow_eye_carries_signal():
    gains = []
    for seed in range(5):
        names, truth, score = simulate(300, seed)  # same disease, independent noise
        weights = fit_fusion(names[:200], score[:200], truth[:200])
        test = {"names": names[200:], "score": score[200:]}
        gains.append(auc(fused_scores(test, weights), truth[200:]) - auc(score[200:],
                                                                          truth[200:]))
    assert min(gains) > 0.02, gains  # averaging two noisy looks at one disease


def test_fusion_does_not_hurt_where_the_eyes_are_independent():
    rng = np.random.RandomState(1)
    losses = []
    for seed in range(5):
        names, _, score = simulate(300, seed)
        truth = rng.rand(len(names)) < 0.4  # each eye its own truth: the fellow tells nothing
        z = np.where(truth, 1.2, -1.2) + rng.normal(0, 1.5, len(names))
        score = 1 / (1 + np.exp(-z))
        weights = fit_fusion(names[:400], score[:400], truth[:400])
        test = {"names": names[400:], "score": score[400:]}
        losses.append(auc(score[400:], truth[400:]) - auc(fused_scores(test, weights),
                                                          truth[400:]))
        assert abs(weights[1]) < 0.5 * abs(weights[0])  # the fellow eye is given little weight
    assert max(losses) < 0.02, losses


def test_an_eye_without_its_fellow_keeps_its_score():
    test = {"names": np.array(["1_left", "2_left", "2_right"]), "score": np.array([0.3, 0.2, 0.9])}
    out = fused_scores(test, [1.0, 1.0, 0.0])
    assert out[0] == 0.3 and out[1] > 0.2 and out[2] < 0.9 + 1e-9
