"""evidence.referral: the curves against scikit-learn and hand cases, a simulation with a
known answer (uncertainty where the labels are noisy beats random referral; on pure noise
it does not), and the network's own confidence as the baseline that matters."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.errors import InputError
from pipeline.evidence.referral import (binary_entropy, kept, measures, n_referred,
                                        parse_uncertainty, refer_cut, referral_curves)
from pipeline.evidence.stats import resample_indices


def simulation(n, noisy, seed):
    """n images (pairs of eyes per patient) and 20 samples of P(referable) each. With
    ``noisy``, the truth is random exactly where x is near 0.5 and the samples spread
    there (the known answer: those images are the ones to refer); else truth and samples
    are pure noise."""
    rng = np.random.RandomState(seed)
    x = rng.rand(n)
    ambiguous = np.abs(x - 0.5) < 0.2
    if noisy:
        truth = np.where(ambiguous, rng.rand(n) < 0.5, x > 0.5)
        spread = np.where(ambiguous, 2.5, 0.3)
        logits = 6 * (x - 0.5) + spread * rng.normal(size=(20, n))
    else:
        truth = rng.rand(n) < 0.5
        logits = rng.normal(size=(20, n))
    return 1 / (1 + np.exp(-logits)), truth, np.repeat(np.arange(n // 2), 2)


def test_referral_by_uncertainty_beats_random_where_the_labels_are_noisy_not_on_noise():
    samples, truth, patients = simulation(400, True, 0)
    m = measures(samples)
    r = referral_curves(m["p"], truth, 0.5, {"entropy": m["entropy"], "sd": m["sd"]},
                        patients, resamples=300)
    h = r["headline"]
    assert h["verdict"] == "beats random referral", h
    assert h["auc_kept"]["value"] > h["auc_random"]["value"] + 0.03
    assert r["curves"]["sd"]["auc"]["value"][4] > r["curves"]["random"]["auc"]["value"][4]
    samples, truth, patients = simulation(400, False, 1)
    m = measures(samples)
    h = referral_curves(m["p"], truth, 0.5, {"entropy": m["entropy"]}, patients,
                        resamples=300)["headline"]
    assert h["verdict"] == "not distinguishable from random referral at this size", h
    assert h["difference"]["ci"][0] < 0 < h["difference"]["ci"][1]


def test_the_curves_at_each_fraction_are_the_kept_images_metrics():
    samples, truth, patients = simulation(200, True, 2)
    m = measures(samples)
    r = referral_curves(m["p"], truth, 0.5, {"entropy": m["entropy"]}, patients, resamples=50)
    assert r["fractions"][0] == 0 and r["fractions"][-1] == 0.5 and len(r["fractions"]) == 11
    for i, f in enumerate(r["fractions"]):
        keep = np.argsort(-m["entropy"], kind="stable")[int(round(f * 200)):]
        assert r["curves"]["entropy"]["auc"]["value"][i] == pytest.approx(
            roc_auc_score(truth[keep], m["p"][keep]))
        kept_truth, decided = truth[keep], m["p"][keep] >= 0.5
        assert r["curves"]["entropy"]["sensitivity"]["value"][i] == pytest.approx(
            (decided & kept_truth).sum() / kept_truth.sum())
    # random referral keeps a random subset: its mean AUC is the AUC of all, about
    assert r["curves"]["random"]["auc"]["value"][0] == pytest.approx(roc_auc_score(truth, m["p"]))
    assert abs(r["curves"]["random"]["auc"]["value"][6] - roc_auc_score(truth, m["p"])) < 0.02


def test_measures_kept_and_the_referral_cut_by_hand():
    m = measures([[0.5, 0.9, 0.0], [0.5, 0.7, 0.0]])
    np.testing.assert_allclose(m["p"], [0.5, 0.8, 0.0])
    np.testing.assert_allclose(m["sd"], [0.0, 0.1, 0.0], atol=1e-12)
    h = -(0.8 * np.log2(0.8) + 0.2 * np.log2(0.2))
    np.testing.assert_allclose(m["entropy"], [1.0, h, 0.0], atol=1e-9)
    assert kept([0.1, 0.9, 0.5, 0.2], 0.5).tolist() == [True, False, False, True]
    assert kept([0.3, 0.3, 0.3, 0.3], 0.25).tolist() == [False, True, True, True]
    u = np.arange(10) / 10.0
    assert refer_cut(u, 0.2) == 0.8 and (u >= refer_cut(u, 0.2)).sum() == 2
    assert refer_cut(u, 0) == float("inf")


@pytest.mark.parametrize("text, problem", [("mc:1", "at least 2 passes"),
                                           ("mc", "expected mc:T"), ("bootstrap", "expected")])
def test_a_bad_uncertainty_is_one_line(text, problem):
    with pytest.raises(InputError, match=problem):
        parse_uncertainty(text)
    assert parse_uncertainty("mc:20") == ("mc", 20)


def test_passes_equal_to_the_networks_own_score_add_nothing_to_its_own_confidence():
    """The entropy of any decent score removes the middle of the distribution: fifty
    identical passes (sd 0, no MC information) 'beat random referral', and against the
    network's own confidence they are exactly +0.000 [+0.000, +0.000]."""
    rng = np.random.RandomState(3)
    p = 1 / (1 + np.exp(-2.5 * rng.normal(size=404)))  # a calibrated, decent classifier
    truth, patients = rng.rand(404) < p, np.arange(404)
    m = measures(np.tile(p, (50, 1)))
    assert m["sd"].max() < 1e-12  # the mean of equal floats, to their rounding
    r = referral_curves(m["p"], truth, 0.5, {"entropy": m["entropy"], "sd": m["sd"]},
                        patients, resamples=200, own=binary_entropy(p))
    h = r["headline"]
    assert h["verdict"] == "beats random referral", h  # why random referral is not enough
    d = h["difference_own"]
    assert "%+.3f [%+.3f, %+.3f]" % (d["value"], *d["ci"]) == "+0.000 [+0.000, +0.000]"
    assert max(abs(d["value"]), *map(abs, d["ci"])) < 1e-12 and d["undefined"] == 0
    assert h["verdict_own"] == ("not distinguishable from the network's own confidence at "
                                "this size")
    assert h["auc_own"]["value"] == h["auc_kept"]["value"]
    np.testing.assert_allclose(r["curves"]["own confidence"]["auc"]["value"],
                               r["curves"]["entropy"]["auc"]["value"])


def test_mc_information_beyond_the_score_beats_its_own_confidence_in_a_simulation():
    """Where the passes spread exactly on the images whose labels are noise, the sd finds
    them and the score alone cannot: the known answer of the simulation."""
    rng = np.random.RandomState(4)
    n = 600
    p = rng.uniform(0.02, 0.98, n)
    truth = rng.rand(n) < p
    noisy = rng.rand(n) < 0.2  # labels of these images are coin flips
    truth[noisy] = rng.rand(noisy.sum()) < 0.5
    spread = np.where(noisy, 0.3, 0.01)
    samples = np.clip(p + spread * rng.normal(size=(30, n)), 0, 1)
    m = measures(samples)
    r = referral_curves(m["p"], truth, 0.5, {"entropy": m["entropy"], "sd": m["sd"]},
                        np.arange(n), resamples=200, measure="sd", own=binary_entropy(p))
    assert r["headline"]["measure"] == "sd"
    assert r["headline"]["auc_kept"]["value"] == r["curves"]["sd"]["auc"]["value"][4]
    assert r["headline"]["verdict_own"] == "beats the network's own confidence", r["headline"]


def test_the_referral_cut_refers_as_many_validation_images_as_kept_does():
    """61 validation images, 20 %: the cut referred 13 (21.3 %), kept() 12."""
    u = np.random.RandomState(0).rand(61)
    assert n_referred(61, 0.2) == 12 == (~kept(u, 0.2)).sum() == (u >= refer_cut(u, 0.2)).sum()
    for n in (10, 37, 404):
        v = np.random.RandomState(n).rand(n)
        for f in (0.05, 0.1, 0.25, 0.5):
            assert (v >= refer_cut(v, f)).sum() == (~kept(v, f)).sum() == n_referred(n, f)


def test_fractions_round_half_up_and_a_tie_refers_the_earlier_image():
    """round() is banker's rounding: 5 % of 10 referred none, of 50 two."""
    assert (~kept(np.arange(10.0), 0.05)).sum() == 1
    assert (~kept(np.arange(50.0), 0.05)).sum() == 3
    assert (~kept(np.arange(30.0), 0.05)).sum() == 2  # 1.5
    assert kept([0.3, 0.3, 0.3, 0.3], 0.25).tolist() == [False, True, True, True]


def test_resamples_where_the_kept_auc_is_undefined_are_counted():
    """Two positives among ten patients: resamples drawing neither leave the AUC
    undefined; they are counted, as stats.bootstrap counts them, not dropped silently."""
    truth = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], bool)
    score = np.linspace(0.9, 0.1, 10)
    patients = np.arange(10)
    r = referral_curves(score, truth, 0.5, {"entropy": binary_entropy(score)}, patients,
                        resamples=300, seed=2)
    one_class = sum(len(set(truth[idx].tolist())) < 2
                    for idx in resample_indices(patients, 300, 2))
    assert one_class > 0
    assert r["curves"]["entropy"]["auc"]["undefined"][0] == one_class
    assert r["headline"]["auc_all"]["undefined"] == one_class
    assert r["headline"]["difference"]["undefined"] >= one_class
