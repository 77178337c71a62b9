"""evaluate: intervals, the operating point chosen on validation, external data."""
import json

import numpy as np
import pytest

from models import googlenet
from models.model_io import load_model
from pipeline.config import load_scenario
from pipeline.dataset import Dataset
from pipeline.errors import InputError
from pipeline.evaluate import evaluate
from pipeline.inference import predict
from pipeline.preprocess import preprocess
from pipeline.stats import choose_cut
from pipeline.synthetic import make_dataset
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
    assert (point["cut"], point["val_sensitivity"], point["val_specificity"]) == (cut, sens, spec)
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
    make_dataset(str(tmp_path / "other"), patients=15, width=320, height=240, seed=9)
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
