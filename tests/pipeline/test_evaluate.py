"""evaluate: intervals, the operating point chosen on validation, external data."""
import json
import re

import numpy as np
import pytest

from models import googlenet
from models.model_io import load_model
from pipeline.recipe.config import load_scenario
from pipeline.data.dataset import Dataset
from pipeline.errors import InputError
from pipeline.evaluate import evaluate
from pipeline.learn.inference import predict
from pipeline.preprocess import preprocess
from pipeline.evidence.stats import choose_cut
from pipeline.data.synthetic import make_dataset
from pipeline.train import train
from tests.pipeline.test_train import data_h5  # noqa: F401  (module fixture)

FEATURES_MINI = ["network=mini", "crop=64", "init=random", "feature_layer=inception_3a/output"]


@pytest.fixture(scope="module")
def features_run(data_h5, tmp_path_factory):  # noqa: F811
    return train(load_scenario("1", FEATURES_MINI), data_h5,
                 runs_root=str(tmp_path_factory.mktemp("runs")), progress=False)


def test_evaluation_has_intervals_and_a_cut_chosen_on_validation(features_run, data_h5):  # noqa: F811
    result = evaluate(features_run, data_h5, resamples=300)
    saved = json.loads((features_run / "evaluation.json").read_text())
    assert saved["argmax"] == result["argmax"] and not saved["external"]
    assert saved["bootstrap"]["resamples"] == 300 and saved["bootstrap"]["unit"] == "patient"
    for block in ("argmax", "at_operating_point"):
        for metric in ("auc", "sensitivity", "specificity", "accuracy", "kappa"):
            m = saved[block][metric]
            assert m["ci"][0] <= m["value"] <= m["ci"][1], (block, metric, m)
    # the cut is what choose_cut gives on the validation split, computed here independently
    _, input_shape, net = load_model(str(features_run / "model.npz"))
    val = Dataset(data_h5, "val")
    probs = predict(googlenet.compile_forward(net, ["prob"]), val, input_shape[1])
    cut, sens, spec = choose_cut(probs[:, 1], val.levels >= 2, "sensitivity", 0.87)
    point = saved["operating_point"]
    # the run's forward may be ONNX Runtime's (learn.inference.forward_function): equal to
    # the Theano forward's to float32 rounding
    assert point["cut"] == pytest.approx(cut, rel=1e-4)
    assert (point["val_sensitivity"], point["val_specificity"]) == (sens, spec)
    with np.load(features_run / "predictions.npz") as p:
        test = Dataset(data_h5, "test")
        assert list(p["names"]) == test.names and saved["n"] == len(test)
        decided = p["score"] >= cut
        truth = p["levels"] >= 2
        assert saved["at_operating_point"]["sensitivity"]["value"] == pytest.approx(
            (decided & truth).sum() / truth.sum())
    for name in ("roc.png", "confusion.png", "calibration.png"):
        assert (features_run / name).exists()


def test_external_data_is_evaluated_whole_at_the_runs_own_cut(features_run, data_h5,  # noqa: F811
                                                             tmp_path):
    internal = evaluate(features_run, data_h5, resamples=200, reuse=True)
    make_dataset(str(tmp_path / "other"), patients=15, width=320, height=240, seed=9,
                 first=101)
    other = tmp_path / "other.h5"
    preprocess(str(tmp_path / "other"), str(other), size=72, progress=False)
    result = evaluate(features_run, str(other), resamples=200)
    assert result["external"] and result["split"] == "all"
    assert result["n"] == len(Dataset(str(other), "all")) == 30  # every image, whatever its split
    assert result["operating_point"]["cut"] == internal["operating_point"]["cut"]
    assert (features_run / "external" / "other" / "evaluation.json").exists()
    assert (features_run / "external" / "other" / "calibration.png").exists()
    preprocess(str(tmp_path / "other"), str(tmp_path / "small.h5"), size=64, progress=False)
    with pytest.raises(InputError, match="preprocessed with .*'size': 64.* the run's training "
                                         "data with .*'size': 72"):
        evaluate(features_run, str(tmp_path / "small.h5"))


def test_an_evaluation_is_reused_only_with_the_same_settings(features_run, data_h5):  # noqa: F811
    first = evaluate(features_run, data_h5, resamples=200)
    stamp = (features_run / "evaluation.json").stat().st_mtime_ns
    assert evaluate(features_run, data_h5, resamples=200, reuse=True) == first
    assert (features_run / "evaluation.json").stat().st_mtime_ns == stamp
    again = evaluate(features_run, data_h5, resamples=200, rule=("youden", None), reuse=True)
    assert again["operating_point"]["rule"] == "youden"


def test_a_run_kept_without_its_model_gives_its_evaluation_only_with_the_same_settings(
        features_run, data_h5, tmp_path):  # noqa: F811
    """A run restored from its kept evidence (runs.kept): evaluate(reuse=True) returns the
    kept evaluation; other settings need the model, and say so in one line."""
    from pipeline.runs.kept import keep
    first = evaluate(features_run, data_h5, resamples=200, reuse=True)
    restored = keep(features_run, tmp_path)
    assert not (restored / "model.npz").exists()
    assert evaluate(restored, data_h5, resamples=200, reuse=True) == first
    for other in (dict(resamples=100, reuse=True), dict(resamples=200)):
        with pytest.raises(InputError, match="model.npz: no trained model") as e:
            evaluate(restored, data_h5, **other)
        assert "\n" not in str(e.value)


def test_an_external_evaluation_with_another_tta_leaves_the_runs_validation_scores(
        features_run, data_h5, tmp_path):  # noqa: F811
    """Ensembles and both-eye fusion read the run's validation scores: they must stay
    those of the run's own (4-rotation) evaluation when external data is evaluated
    without TTA, which needs its own validation scores for its operating point."""
    from pipeline.runs.evaluated import load_run, val_predictions
    evaluate(features_run, data_h5, tta=True, resamples=50, progress=False)
    before = val_predictions(load_run(features_run))
    make_dataset(str(tmp_path / "other"), patients=10, width=320, height=240, seed=4,
                 first=101)
    preprocess(str(tmp_path / "other"), str(tmp_path / "other.h5"), size=72, progress=False)
    external = evaluate(features_run, str(tmp_path / "other.h5"), tta=False, resamples=50,
                        progress=False)
    assert external["operating_point"]["tta"] is False
    after = val_predictions(load_run(features_run))
    np.testing.assert_array_equal(after["score"], before["score"])
    # the score of one rotation is another number: the test above could fail
    _, input_shape, net = load_model(str(features_run / "model.npz"))
    one = predict(googlenet.compile_forward(net, ["prob"]), Dataset(data_h5, "val"),
                  input_shape[1])[:, 1]
    assert not np.allclose(one, before["score"])


def test_a_five_level_run_gets_kappa_at_cut_points_tuned_on_validation(data_h5, tmp_path):  # noqa: F811
    """The cut-points are tune_cuts' on the validation split's expected levels, computed
    here independently, and the report shows Kaggle's yardstick with them."""
    from pipeline.evidence.grading import expected_grade, kappa, levels_at, tune_cuts
    from pipeline.report import write_report
    from tests.pipeline.test_train import MINI
    run = train(load_scenario("4-levels", MINI), data_h5, runs_root=str(tmp_path),
                progress=False)
    result = evaluate(run, data_h5, resamples=100, progress=False)
    _, input_shape, net = load_model(str(run / "model.npz"))
    fn = googlenet.compile_forward(net, ["prob"])
    val = Dataset(data_h5, "val")
    cuts, best = tune_cuts(expected_grade(predict(fn, val, input_shape[1])), val.levels)
    point = result["operating_point"]
    # the run's forward may be ONNX Runtime's: cut-points (midpoints of expected grades)
    # equal to float32 rounding
    np.testing.assert_allclose(point["cuts"], cuts, rtol=1e-5)
    assert point["val_kappa_tuned"] == pytest.approx(best, abs=1e-9)
    test = Dataset(data_h5, "test")
    probs = predict(fn, test, input_shape[1])
    g = result["levels"]
    assert g["kappa_tuned"]["value"] == pytest.approx(
        kappa(test.levels, levels_at(expected_grade(probs), cuts)), abs=1e-9)
    assert g["kappa_argmax"]["value"] == kappa(test.levels, probs.argmax(axis=1))
    assert np.array(g["confusion_tuned"]).sum() == len(test)
    write_report(tmp_path, data_h5, resamples=100)
    md = (tmp_path / "report-data.md").read_text()
    assert "## Five levels, as Kaggle scored them" in md
    assert re.search(r"\| 4-levels: scenario 4 on five levels \[.*\] \| 0 \| %.3f \[.*\] \| "
                     r"%.3f \[" % (g["kappa_argmax"]["value"], g["kappa_tuned"]["value"]), md)


def test_a_feature_run_on_pretrained_weights_is_scored_from_cached_features_as_by_its_network(
        random_googlenets, tmp_path):
    """The cached features of each view (rotation, mirror), the classifier applied in
    NumPy, give the network's own forward pass of every view to float32 rounding."""
    from models import googlenet
    from models.model_io import load_model
    from pipeline.evaluate import inference
    from pipeline.data.dataset import Dataset
    from pipeline.data.synthetic import make_dataset
    from pipeline.learn.inference import predict
    from pipeline.preprocess import preprocess
    _, files = random_googlenets
    make_dataset(str(tmp_path / "raw"), patients=10, width=300, height=200, seed=9)
    preprocess(str(tmp_path / "raw"), str(tmp_path / "d.h5"), size=240, progress=False)
    run = train(load_scenario("3"), str(tmp_path / "d.h5"), weights=str(files[1][0]),
                runs_root=str(tmp_path / "runs"), progress=False)
    config = json.loads((run / "config.json").read_text())
    env = json.loads((run / "environment.json").read_text())
    _, shape, net = load_model(str(run / "model.npz"))
    data = Dataset(str(tmp_path / "d.h5"), "test")
    cached = inference(config, env, net, shape[1], progress=False)
    fn = googlenet.compile_forward(net, ["prob"])
    for rotations, flips in (((0,), (False,)), ((0, 90, 180, 270), (False,)),
                             ((0,), (False, True))):
        np.testing.assert_allclose(
            cached(str(tmp_path / "d.h5"), data, rotations, flips),
            predict(fn, data, shape[1], rotations=rotations, flips=flips, progress=False),
            rtol=1e-4, atol=1e-6)
    assert len(list((tmp_path / "features").glob("*.h5"))) == 5  # one file per view
