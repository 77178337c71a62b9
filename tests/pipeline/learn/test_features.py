"""pipeline.learn.features: a linear classifier on a layer's pooled activations."""
import numpy as np

from models.model_io import load_model
from pipeline.recipe.config import load_scenario
from pipeline.learn.features import fit_linear
from pipeline.train import train
from tests.pipeline.test_train import data_h5  # noqa: F401  (module fixture)


def test_features_scenario_runs_end_to_end(data_h5, tmp_path):
    run = train(load_scenario("3", ["network=mini", "crop=64", "init=random",
                                    "feature_layer=inception_3a/output"]),
                data_h5, runs_root=str(tmp_path), progress=False)
    assert (run / "DONE").exists()
    spec, _, net = load_model(str(run / "model.npz"))
    assert spec[-3].name == "features/global_pool" and net["loss3/classifier"].num_units == 2


def test_logistic_and_theano_classifiers_agree():
    rng = np.random.RandomState(0)
    centres = rng.normal(0, 1, (2, 40))
    y = rng.randint(0, 2, 600)
    X = (centres[y] + rng.normal(0, 2.5, (600, 40))).astype(np.float32) * 30 + 5
    base = {"balance": "loss_weights", "seed": 0, "C": 1.0, "epochs": 20, "batch_size": 32,
            "solver": {"base_lr": 0.01, "lr_policy": "fixed", "momentum": 0.9,
                       "weight_decay": 0.0005}}
    scores = {}
    for clf in ("logistic", "theano"):
        W, b = fit_linear(dict(base, classifier=clf), X[:400], y[:400], 2)
        scores[clf] = ((X[400:] @ W.T + b).argmax(axis=1) == y[400:]).mean()
    assert min(scores.values()) > 0.8, scores
    assert abs(scores["logistic"] - scores["theano"]) < 0.05, scores
