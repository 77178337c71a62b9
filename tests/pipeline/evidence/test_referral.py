"""Referral: the curves against scikit-learn and hand cases, a simulation with a known
answer (uncertainty where the labels are noisy beats random referral; on pure noise it
does not), and the referral evaluation of MC-dropout and ensemble runs of the mini
network, each bad input one line before any image is read."""
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.cli import main
from pipeline.recipe.config import load_scenario
from pipeline.errors import InputError
from pipeline.evaluate import evaluate, evaluate_referral
from pipeline.evidence.referral import (kept, measures, parse_uncertainty, refer_cut,
                                        referral_curves)
from pipeline.train import train
from tests.pipeline.test_train import MINI, cv_h5  # noqa: F401


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


@pytest.fixture(scope="module")
def mini_runs(cv_h5, tmp_path_factory):  # noqa: F811
    """Two seeds of scenario 4 on the mini network, and a scenario-1 run (a linear
    classifier on features: no dropout), all evaluated."""
    runs = tmp_path_factory.mktemp("referral_runs")
    made = [train(load_scenario("4", MINI + ["seed=%d" % s]), cv_h5, runs_root=str(runs),
                  progress=False) for s in (0, 1)]
    made.append(train(load_scenario("1", ["network=mini", "crop=64", "init=random",
                                          "feature_layer=inception_3a/output"]),
                      cv_h5, runs_root=str(runs), progress=False))
    for run in made:
        evaluate(run, cv_h5, resamples=50, progress=False)
    return made


def test_mc_referral_is_written_seeded_and_reused(mini_runs, cv_h5):  # noqa: F811
    run = mini_runs[0]
    first = evaluate_referral(run, cv_h5, "mc:8", resamples=60, progress=False)
    assert (run / "referral-mc8-1rot.png").read_bytes()[:4] == b"\x89PNG"
    assert first["count"] == 8 and first["measure"] == "entropy" and first["n"] == len(
        np.load(run / "predictions.npz")["score"])
    with np.load(run / "referral-mc8-1rot.npz") as npz:
        test_p, val_names = npz["test_p"], npz["val_names"]
        assert npz["test_sd"].max() > 0  # the passes differ
    assert len(val_names) and first["refer"]["test_referred"] <= first["n"]
    again = evaluate_referral(run, cv_h5, "mc:8", resamples=60, progress=False)
    assert json.dumps(again["curves"]) == json.dumps(first["curves"])
    with np.load(run / "referral-mc8-1rot.npz") as npz:
        np.testing.assert_array_equal(npz["test_p"], test_p)
    other = evaluate_referral(run, cv_h5, "mc:8", tta=True, resamples=60, progress=False)
    assert (run / "referral-mc8-4rot.json").exists() and other["settings"]["tta"]
    assert json.loads((run / "referral-mc8-1rot.json").read_text())["settings"]["tta"] is False


def test_the_ensemble_is_the_mean_of_its_seeds_evaluations(mini_runs, cv_h5):  # noqa: F811
    result = evaluate_referral(mini_runs[0], cv_h5, "ensemble", resamples=60, progress=False)
    assert result["count"] == 2 and sorted(result["members"]) == sorted(map(str, mini_runs[:2]))
    scores = [np.load(r / "predictions.npz")["score"] for r in mini_runs[:2]]
    with np.load(mini_runs[0] / "referral-ensemble2-1rot.npz") as npz:
        np.testing.assert_allclose(npz["test_p"], np.mean(scores, axis=0))
        np.testing.assert_allclose(npz["test_sd"], np.std(scores, axis=0))


@pytest.mark.parametrize("which, text, problem", [
    (0, "mc:1", "at least 2 passes"),
    (2, "mc:10", "no dropout below it"),
    (2, "ensemble", "needs several seeds of this recipe"),
])
def test_bad_referral_input_is_one_line_before_any_image(mini_runs, cv_h5, which, text,  # noqa
                                                         problem, capsys):
    assert main(["evaluate", "--run", str(mini_runs[which]), "--data", cv_h5,
                 "--uncertainty", text]) == 2
    err = capsys.readouterr().err.strip()
    assert problem in err and len(err.splitlines()) == 1, err


def test_cv_referral_pools_every_image_each_at_its_folds_cuts(cv_h5, tmp_path):  # noqa: F811
    from pipeline.cv import cross_validate
    from pipeline.report import write_report
    summary = cross_validate("4", MINI, cv_h5, None, str(tmp_path), folds=3, resamples=40,
                             progress=False, uncertainty="mc:4")
    out = next(tmp_path.glob("cv-4-k3-*"))
    result = json.loads((out / "referral-mc4-1rot.json").read_text())
    assert result["n"] == summary["images"] and result["folds"] == 3
    folds = [np.load("%s/referral-mc4-1rot.npz" % run) for run in summary["runs"]]
    cuts = [json.loads(open("%s/referral-mc4-1rot.json" % run).read())["operating_point"]["cut"]
            for run in summary["runs"]]
    p = np.concatenate([f["test_p"] for f in folds])
    truth = np.concatenate([f["test_levels"] for f in folds]) >= 2
    decided = np.concatenate([f["test_p"] >= c for f, c in zip(folds, cuts)])
    assert sorted(np.concatenate([f["test_names"] for f in folds])) == sorted(
        np.load(out / "oof_predictions.npz")["names"])
    assert result["curves"]["entropy"]["auc"]["value"][0] == pytest.approx(roc_auc_score(truth, p))
    assert result["curves"]["entropy"]["sensitivity"]["value"][0] == pytest.approx(
        (decided & truth).sum() / truth.sum())
    md = write_report(tmp_path, cv_h5, resamples=40).with_suffix(".md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 3-fold CV of 4"))
    assert "MC dropout, 4 passes" in row and "| %d |" % summary["images"] in row


def test_mc_on_a_feature_scenario_is_refused_before_anything_trains(cv_h5, tmp_path):  # noqa
    assert main(["cv", "--scenario", "1", "--set", "network=mini", "--set", "crop=64",
                 "--set", "init=random", "--data", cv_h5, "--runs", str(tmp_path),
                 "--folds", "3", "--uncertainty", "mc:5"]) == 2
    assert not list(tmp_path.iterdir())


def test_an_ensemble_takes_one_run_per_seed(mini_runs, cv_h5, tmp_path):  # noqa: F811
    """A second run of seed 0 beside the first (a rerun) is not a third member."""
    import shutil
    from pipeline.learn.uncertainty import ensemble_members
    twin = mini_runs[0].parent / (mini_runs[0].name + "-2")
    shutil.copytree(mini_runs[0], twin)
    try:
        assert ensemble_members(mini_runs[0]) == sorted([mini_runs[0], mini_runs[1]])
        assert ensemble_members(mini_runs[1]) == sorted([twin, mini_runs[1]])
    finally:
        shutil.rmtree(twin)
