"""referral (make evaluate|cv|predict UNCERTAINTY=): the referral evaluation of MC-dropout
and ensemble runs of the mini network, on their own test split, pooled over a
cross-validation's folds and on other data, each checked against a hand computation;
each bad input one line before any image is read."""
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.cli import main
from pipeline.evaluate import evaluate
from pipeline.evidence.referral import binary_entropy, kept, refer_cut
from pipeline.recipe.config import load_scenario
from pipeline.referral import evaluate_referral
from pipeline.train import train
from tests.pipeline.test_train import MINI, cv_h5  # noqa: F401


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


def test_the_own_confidence_baseline_is_the_runs_evaluated_score_by_hand(mini_runs,  # noqa
                                                                          cv_h5):  # noqa: F811
    """The baseline: the binary entropy of the run's own evaluation (dropout off, its
    TTA), the 20 % most unsure of it referred, the AUC of the rest; by hand."""
    run = mini_runs[0]
    r = evaluate_referral(run, cv_h5, "mc:6", resamples=40, progress=False)
    evaluated = np.load(run / "predictions.npz")
    with np.load(run / "referral-mc6-1rot.npz") as npz:
        assert list(npz["test_names"]) == list(evaluated["names"])
        s = evaluated["score"].astype(np.float64)
        own = -(s * np.log2(s) + (1 - s) * np.log2(1 - s))
        np.testing.assert_allclose(npz["test_own"], own, rtol=1e-9)
        truth, p = npz["test_levels"] >= 2, npz["test_p"]
        order = np.argsort(-own, kind="stable")
        keep = np.ones(len(own), bool)
        keep[order[:int(np.floor(0.2 * len(own) + 0.5))]] = False
        assert r["headline"]["auc_own"]["value"] == pytest.approx(
            roc_auc_score(truth[keep], p[keep]))
    h = r["headline"]
    assert h["difference_own"]["value"] == pytest.approx(
        h["auc_kept"]["value"] - h["auc_own"]["value"])
    assert "the network's own confidence" in h["verdict_own"]
    sd = evaluate_referral(run, cv_h5, "mc:6", resamples=40, progress=False, measure="sd")
    assert (run / "referral-mc6-1rot-sd.json").exists() and sd["headline"]["measure"] == "sd"
    assert sd["headline"]["auc_kept"]["value"] == sd["curves"]["sd"]["auc"]["value"][4]


def patient_disjoint_parts(tmp_path):
    """A generated data set split by patient into ``train`` (what a run learns from) and
    ``other`` (images it never saw), each preprocessed alike; and ``leak``: the other
    part plus one image of the training part."""
    import csv
    import shutil
    from pipeline.data.synthetic import make_dataset
    from pipeline.preprocess import preprocess
    rows = make_dataset(str(tmp_path / "all"), patients=44, width=300, height=200, seed=11)
    parts = {"train": rows[:60], "other": rows[60:], "leak": rows[60:] + rows[:1]}
    out = {}
    for name, part in parts.items():
        (tmp_path / name / "images").mkdir(parents=True)
        for image, _ in part:
            shutil.copy(tmp_path / "all" / "images" / (image + ".jpeg"),
                        tmp_path / name / "images")
        with open(tmp_path / name / "labels.csv", "w", newline="") as f:
            csv.writer(f).writerows([("image", "level")] + list(part))
        preprocess(str(tmp_path / name), str(tmp_path / (name + ".h5")), size=72,
                   progress=False)
        out[name] = str(tmp_path / (name + ".h5"))
    return out


def test_referral_on_other_data_is_an_external_validation_at_the_runs_own_cuts(tmp_path):
    """make evaluate RUN=... DATA=other_dir UNCERTAINTY=mc:T: every image of data the run
    never saw, at the run's own validation cut and referral cut, with both baselines,
    checked by hand; data sharing an image with the training data is one line."""
    from pipeline.data.dataset import Dataset
    from pipeline.report import write_report
    data = patient_disjoint_parts(tmp_path)
    run = train(load_scenario("4", MINI), data["train"], runs_root=str(tmp_path / "runs"),
                progress=False)
    assert main(["evaluate", "--run", str(run), "--data", data["other"], "--resamples", "40",
                 "--uncertainty", "mc:5"]) == 0
    where = run / "external" / "other"
    r = json.loads((where / "referral-mc5-1rot.json").read_text())
    assert r["external"] and r["n"] == len(Dataset(data["other"], "all")) == 28
    with np.load(where / "referral-mc5-1rot.npz") as npz:
        truth, p, u = npz["test_levels"] >= 2, npz["test_p"], npz["test_entropy"]
        assert r["refer"]["cut"] == refer_cut(npz["val_entropy"], 0.2)  # the run's own val
        assert len(npz["val_p"]) == len(Dataset(data["train"], "val"))
        assert r["headline"]["auc_all"]["value"] == pytest.approx(roc_auc_score(truth, p))
        assert r["headline"]["auc_kept"]["value"] == pytest.approx(
            roc_auc_score(truth[kept(u, 0.2)], p[kept(u, 0.2)]))
        external = np.load(where / "predictions.npz")
        own = binary_entropy(external["score"])
        np.testing.assert_allclose(npz["test_own"], own)
        assert r["headline"]["auc_own"]["value"] == pytest.approx(
            roc_auc_score(truth[kept(own, 0.2)], p[kept(own, 0.2)]))
    assert r["refer"]["test_referred"] == int((u >= r["refer"]["cut"]).sum())
    evaluate(run, data["train"], resamples=40, progress=False)  # the report's own runs
    md = write_report(tmp_path / "runs", data["train"], resamples=40).with_suffix(".md")
    text = md.read_text()
    assert "### Referral on other data" in text and "| %s on other |" % run.name in text
    assert "need not carry over" in text
    # other data with one of the run's training images: refused in one line, nothing scored
    code = main(["evaluate", "--run", str(run), "--data", data["leak"], "--uncertainty", "mc:5"])
    assert code == 2 and not (run / "external" / "leak").exists()


def test_a_leaked_image_is_named(tmp_path, capsys):
    """By name or by pixels: the same image under another name is refused too."""
    import shutil
    from pipeline.preprocess import preprocess
    data = patient_disjoint_parts(tmp_path)
    run = train(load_scenario("4", MINI + ["epochs=1"]), data["train"],
                runs_root=str(tmp_path / "runs"), progress=False)
    assert main(["evaluate", "--run", str(run), "--data", data["leak"], "--uncertainty",
                 "mc:3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "1 image(s) also in the data of run" in err and \
        len(err.splitlines()) == 1, err
    renamed = tmp_path / "renamed"
    shutil.copytree(tmp_path / "other", renamed)
    first = sorted((tmp_path / "train" / "images").iterdir())[0]
    shutil.copy(first, renamed / "images" / "999_left.jpeg")
    with open(renamed / "labels.csv", "a") as f:
        f.write("999_left,0\n")
    preprocess(str(renamed), str(tmp_path / "renamed.h5"), size=72, progress=False)
    assert main(["evaluate", "--run", str(run), "--data", str(tmp_path / "renamed.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "999_left as %s" % first.stem in err, err


def test_cv_referral_rows_name_the_seed_and_the_overrides():
    from pipeline.referral import cv_label
    a = {"folds": 5, "scenario": "4", "overrides": [], "seed": 0}
    b = dict(a, seed=1)
    c = dict(a, overrides=["epochs=1"])
    assert cv_label(a) == "5-fold CV of 4, seed 0, out of fold"
    assert cv_label(c) == "5-fold CV of 4 [epochs=1], seed 0, out of fold"
    assert len({cv_label(a), cv_label(b), cv_label(c)}) == 3


def test_folds_whose_ensembles_differ_are_refused(cv_h5, tmp_path):  # noqa: F811
    """Fold 1 with a third seed: its referral file is another label; pooling it under
    fold 0's label read a missing or stale file. Now one line."""
    import shutil
    from pipeline.cv import cross_validate
    from pipeline.errors import InputError
    from pipeline.referral import cv_referral
    short = MINI + ["epochs=1"]
    summaries = [cross_validate("4", short + ["seed=%d" % s], cv_h5, None, str(tmp_path),
                                folds=3, resamples=20, progress=False) for s in (0, 1)]
    runs = [__import__("pathlib").Path(r) for r in summaries[0]["runs"]]
    extra = runs[1].parent / (runs[1].name + "-seed2")
    shutil.copytree(runs[1], extra)
    config = json.loads((extra / "config.json").read_text())
    (extra / "config.json").write_text(json.dumps(dict(config, seed=2)))
    out = next(tmp_path.glob("cv-4-k3-*"))
    with pytest.raises(InputError, match="fold 1's ensemble has 3 seeds, fold 0's 2"):
        cv_referral(out, runs, cv_h5, "ensemble", resamples=20, progress=False)
