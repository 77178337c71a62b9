"""predict: the same scores as evaluate on the same images, per-patient decisions,
heatmaps, and each bad input refused before any image is read."""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.recipe.config import load_scenario
from pipeline.evaluate import evaluate
from pipeline.preprocess import preprocess
from pipeline.train import train


@pytest.fixture(scope="module")
def evaluated_run(synthetic_dir, tmp_path_factory):
    """A GoogLeNet run (scenario 3's linear classifier on inception_4a, random weights)
    on the generated fundus images, evaluated on its test split."""
    d = tmp_path_factory.mktemp("predict")
    preprocess(str(synthetic_dir), str(d / "data.h5"), size=256, progress=False)
    run = train(load_scenario("3", ["init=random"]), str(d / "data.h5"),
                runs_root=str(d / "runs"), progress=False)
    evaluate(run, str(d / "data.h5"), resamples=50, progress=False)
    return run


def copied(names, synthetic_dir, tmp_path):
    """A folder ``tmp_path/new`` with the generated images ``names`` copied into it."""
    folder = tmp_path / "new"
    folder.mkdir()
    for name in names:
        shutil.copy(synthetic_dir / "images" / (name + ".jpeg"), folder)
    return folder


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predict_on_a_folder_gives_evaluates_scores(evaluated_run, synthetic_dir, tmp_path,
                                                    capsys):
    with np.load(evaluated_run / "predictions.npz") as p:
        names, scores = list(p["names"]), p["score"]
    folder, out = copied(names, synthetic_dir, tmp_path), tmp_path / "p.csv"
    assert main(["predict", "--run", str(evaluated_run), str(folder), "--out", str(out),
                 "--heatmaps", str(tmp_path / "maps")]) == 0
    assert "%d images scored, 0 files skipped" % len(names) in capsys.readouterr().out
    rows = {r["image"].rsplit("/", 1)[1][:-5]: r for r in read_csv(out)}
    assert sorted(rows) == sorted(names)
    got = np.array([float(rows[n]["p_referable"]) for n in names])
    np.testing.assert_allclose(got, scores, atol=2e-6)
    cut = json.loads((evaluated_run / "evaluation.json").read_text())["operating_point"]["cut"]
    assert [int(rows[n]["referable"]) for n in names] == [int(s >= cut) for s in scores]
    for n in names:  # either eye referable: the patient is
        eye = "right" if n.endswith("_left") else "left"
        other = n.rsplit("_", 1)[0] + "_" + eye
        expected = str(max(int(rows[n]["referable"]), int(rows[other]["referable"]))) \
            if other in rows else ""
        assert rows[n]["patient_referable"] == expected
    pngs = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert pngs == sorted(n + ".png" for n in names)
    assert (tmp_path / "maps" / pngs[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unreadable_and_non_image_files_are_named_skipped_and_counted(evaluated_run,
                                                                      synthetic_dir, tmp_path,
                                                                      capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(synthetic_dir / "images" / "1_left.jpeg", folder)
    (folder / "2_left.jpeg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (folder / "notes.txt").write_text("hello")
    out = tmp_path / "p.csv"
    assert main(["predict", "--run", str(evaluated_run), str(folder), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "1 images scored, 2 files skipped" in captured.out
    assert "skipped unreadable image %s" % (folder / "2_left.jpeg") in captured.err
    assert "skipped %s: not an image file" % (folder / "notes.txt") in captured.err
    assert [r["image"] for r in read_csv(out)] == [str(folder / "1_left.jpeg")]


def broken(run, tmp_path, change):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    change(copy)
    return copy


def edit_config(**values):
    def change(run):
        config = json.loads((run / "config.json").read_text())
        config.update(values)
        (run / "config.json").write_text(json.dumps(config))
    return change


@pytest.mark.parametrize("change, message", [
    (lambda run: (run / "DONE").unlink(), "unfinished run (no DONE)"),
    (lambda run: (run / "evaluation.json").unlink(), "not evaluated, so no operating point"),
    (edit_config(network="mini"), "a run of the mini network"),
    (edit_config(crop=200), "model.npz: the model (2 outputs, crop 224) does not fit "
                            "config.json (target binary, crop 200)"),
    (edit_config(target="levels"), "does not fit config.json (target levels"),
])
def test_a_run_that_cannot_screen_is_one_line_before_any_image(evaluated_run, tmp_path,
                                                               capsys, change, message):
    run = broken(evaluated_run, tmp_path, change)
    out = tmp_path / "p.csv"
    assert main(["predict", "--run", str(run), str(tmp_path / "nowhere.jpeg"), "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not out.exists(), err


def test_a_five_level_csv_gives_the_expected_level_and_the_tuned_level(tmp_path):
    """``level`` is the grade a submission would use: the expected level at the run's tuned
    cut-points (by hand here), not the expected level itself."""
    import numpy as np
    from pipeline.predict import write_csv
    probs = np.array([[0.1, 0.2, 0.4, 0.2, 0.1], [0.7, 0.2, 0.1, 0, 0], [0, 0, 0.1, 0.3, 0.6]])
    point = {"cut": 0.5, "cuts": [0.5, 1.0, 2.2, 3.0]}  # expected levels 2.0, 0.4, 3.5
    out = tmp_path / "p.csv"
    write_csv(out, ["a_left.png", "a_right.png", "b.png"], probs,
              {"target": "levels", "threshold": 2}, point)
    rows = read_csv(out)
    assert [r["expected_level"] for r in rows] == ["2.0000", "0.4000", "3.5000"]
    assert [r["level"] for r in rows] == ["2", "0", "4"]  # 2.0 reaches 0.5 and 1.0 only
    assert [r["referable"] for r in rows] == ["1", "0", "1"]  # P(level >= 2): 0.7, 0.1, 1.0
    assert [r["patient_referable"] for r in rows] == ["1", "1", ""]


@pytest.fixture(scope="module")
def dropout_run(synthetic_dir, tmp_path_factory):
    """A GoogLeNet run with dropout below its classifier (scenario 4, random weights, one
    epoch of the classifier alone), evaluated, with a 5-pass MC-dropout referral and one
    of the ensemble of it and its seed-1 twin."""
    from pipeline.referral import evaluate_referral
    d = tmp_path_factory.mktemp("predict_mc")
    preprocess(str(synthetic_dir), str(d / "data.h5"), size=256, progress=False)
    run, other = [train(load_scenario("4", ["init=random", "epochs=1", "batch_size=8",
                                            "aux_heads=false", 'freeze=["conv", "inception"]',
                                            "seed=%d" % seed]),
                        str(d / "data.h5"), runs_root=str(d / "runs"), progress=False)
                  for seed in (0, 1)]
    for r in (run, other):
        evaluate(r, str(d / "data.h5"), resamples=50, progress=False)
    evaluate_referral(run, str(d / "data.h5"), "mc:5", resamples=50, progress=False)
    evaluate_referral(run, str(d / "data.h5"), "ensemble", resamples=50, progress=False)
    return run


def test_predict_under_mc_dropout_gives_the_referral_evaluations_numbers(dropout_run,
                                                                         synthetic_dir,
                                                                         tmp_path):
    """The same image gets the same masks in predict as in evaluate (seeded by its name),
    so the mean score and the uncertainty equal the referral evaluation's; an image is
    referred at the uncertainty that refers 20 % (REFER) of the validation images."""
    with np.load(dropout_run / "referral-mc5-1rot.npz") as npz:
        names, p, entropy, sd = (list(npz["test_names"]), npz["test_p"], npz["test_entropy"],
                                 npz["test_sd"])
        val_entropy = np.sort(npz["val_entropy"])
    folder, out = copied(names, synthetic_dir, tmp_path), tmp_path / "p.csv"
    assert main(["predict", "--run", str(dropout_run), str(folder), "--out", str(out),
                 "--uncertainty", "mc:5", "--refer", "0.5"]) == 0
    rows = {r["image"].rsplit("/", 1)[1][:-5]: r for r in read_csv(out)}
    np.testing.assert_allclose([float(rows[n]["p_referable"]) for n in names], p, atol=2e-6)
    np.testing.assert_allclose([float(rows[n]["uncertainty"]) for n in names], entropy,
                               atol=2e-6)
    np.testing.assert_allclose([float(rows[n]["p_sd"]) for n in names], sd, atol=2e-6)
    assert sd.max() > 0
    cut = json.loads((dropout_run / "referral-mc5-1rot.json").read_text())[
        "operating_point"]["cut"]
    assert [int(rows[n]["referable"]) for n in names] == [int(s >= cut) for s in p]
    refer_at = val_entropy[int(np.ceil(0.5 * len(val_entropy))) - 1 + (
        len(val_entropy) % 2 == 0)]  # the higher median: half the validation images referred
    assert [int(rows[n]["refer_to_grader"]) for n in names] == [int(e >= refer_at)
                                                                for e in entropy]
    for n in names:
        other = n.rsplit("_", 1)[0] + ("_right" if n.endswith("_left") else "_left")
        expected = str(max(int(rows[n]["refer_to_grader"]), int(rows[other][
            "refer_to_grader"]))) if other in rows else ""
        assert rows[n]["patient_refer_to_grader"] == expected


def test_predict_with_the_ensemble_gives_the_mean_of_its_seeds_scores(dropout_run,
                                                                      synthetic_dir, tmp_path):
    members = json.loads((dropout_run / "referral-ensemble2-1rot.json").read_text())["members"]
    scores = []
    for member in members:
        with np.load("%s/predictions.npz" % member) as p:
            names = list(p["names"])
            scores.append(p["score"])
    folder, out = copied(names, synthetic_dir, tmp_path), tmp_path / "p.csv"
    assert main(["predict", "--run", str(dropout_run), str(folder), "--out", str(out),
                 "--uncertainty", "ensemble"]) == 0
    rows = {r["image"].rsplit("/", 1)[1][:-5]: r for r in read_csv(out)}
    np.testing.assert_allclose([float(rows[n]["p_referable"]) for n in names],
                               np.mean(scores, axis=0), atol=2e-6)
    np.testing.assert_allclose([float(rows[n]["p_sd"]) for n in names],
                               np.std(scores, axis=0), atol=2e-6)


def test_predict_refuses_an_ensemble_that_changed_since_its_referral(dropout_run, tmp_path,
                                                                     capsys):
    """A seed trained again after the referral evaluation (a newer run of seed 1) changed
    the ensemble predict scores with, silently, not the one its referral cut was chosen
    for: now one line, nothing written."""
    import shutil
    members = json.loads((dropout_run / "referral-ensemble2-1rot.json").read_text())["members"]
    seed1 = next(Path(m) for m in members if Path(m) != dropout_run)
    third = seed1.parent / (seed1.name + "-2")  # its rerun: the newest run of seed 1
    shutil.copytree(seed1, third)
    try:
        out = tmp_path / "p.csv"
        assert main(["predict", "--run", str(dropout_run), str(tmp_path / "x.jpeg"),
                     "--out", str(out), "--uncertainty", "ensemble"]) == 2
        err = capsys.readouterr().err
        assert "the ensemble is now" in err and third.name in err and err.count("\n") == 1
        assert not out.exists()
    finally:
        shutil.rmtree(third)


@pytest.mark.parametrize("args, message", [
    (["--uncertainty", "mc:7"], "no referral evaluation referral-mc7-1rot.json: run make "
                                "evaluate"),
    (["--uncertainty", "mc:5", "--refer", "1.5"], "REFER=1.5: the fraction"),
])
def test_predict_without_its_referral_evaluation_is_one_line(dropout_run, tmp_path, capsys,
                                                             args, message):
    out = tmp_path / "p.csv"
    assert main(["predict", "--run", str(dropout_run), str(tmp_path / "nowhere.jpeg"),
                 "--out", str(out)] + args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not out.exists(), err


def test_a_class_run_predicts_what_evaluate_scored_with_a_map_of_the_predicted_class(
        tmp_path):
    """Class-labelled photographs: per image a probability per class equal to evaluate's
    on the same test images (the same Caffe warp), the predicted class, and the heatmap
    of that class."""
    from tests.pipeline.test_fourcases import class_dir
    from pipeline.data.dataset import data_classes
    from pipeline.predict import predict_files
    photos = class_dir(tmp_path / "photos", per_class=6)
    preprocess(str(photos), str(tmp_path / "photos.h5"), size=256, progress=False)
    classes = data_classes(str(tmp_path / "photos.h5"))
    run = train(load_scenario("3", ["init=random"], classes=classes), str(tmp_path / "photos.h5"),
                runs_root=str(tmp_path / "runs"), progress=False)
    evaluate(run, str(tmp_path / "photos.h5"), tta=True, resamples=20, progress=False)
    scored = np.load(Path(run) / "predictions.npz")
    files = [str(photos / "images" / (n + ".jpg")) for n in scored["names"]]
    out, n, failed, _ = predict_files(run, files, tmp_path / "p.csv", tmp_path / "maps",
                                      progress=False)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert n == len(files) and failed == 0
    probs = np.array([[float(r["p_%s" % c]) for c in classes] for r in rows])
    np.testing.assert_allclose(probs, scored["probs"], atol=1e-5)
    assert [r["class"] for r in rows] == [classes[k] for k in scored["probs"].argmax(axis=1)]
    assert len(list((tmp_path / "maps").glob("*.png"))) == len(files)


def test_class_maps_average_to_the_logits():
    """Zhou et al.'s identity for every class: mean_xy(M_c) + b_c = z_c."""
    from models import googlenet
    from models.cam import compile_class_maps
    spec = googlenet.mini_spec(4)
    net = googlenet.build(spec, input_shape=(3, 64, 64))
    x = np.random.RandomState(0).randn(3, 3, 64, 64).astype(np.float32) * 50
    maps, biases = compile_class_maps(net, spec)(x)
    logits = googlenet.compile_forward(net, ["loss3/classifier"])(x)[0]
    assert maps.shape[:2] == (3, 4)
    np.testing.assert_allclose(maps.mean(axis=(2, 3)) + biases, logits, rtol=1e-4, atol=1e-4)
