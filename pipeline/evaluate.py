"""Evaluate a trained run on the test split: metrics, ROC, confusion matrix."""
import json
from pathlib import Path

import numpy as np

from models import googlenet
from models.fileio import atomic_savez, atomic_write_bytes
from models.model_io import load_model

from .dataset import Dataset
from .errors import InputError
from .metrics import roc_points, screening_metrics
from .plots import plot_confusion, plot_roc
from .inference import predict


def evaluate(run_dir, data_path, split="test", tta=False):
    """Writes ``evaluation.json``, ``roc.png``, ``confusion.png`` into ``run_dir``."""
    run_dir = Path(run_dir)
    model = run_dir / "model.npz"
    if not model.exists():
        raise InputError("%s: no trained model (run make train)" % model)
    config = json.loads((run_dir / "config.json").read_text())
    target, threshold = config["target"], config.get("threshold", 2)
    data = Dataset(data_path, split, target, threshold)
    if len(data) == 0:
        raise InputError("%s: the %s split is empty" % (data_path, split))
    _, input_shape, net = load_model(str(model))
    fn = googlenet.compile_forward(net, ["prob"])
    rotations = (0, 90, 180, 270) if tta else (0,)
    probs = predict(fn, data, input_shape[1], rotations=rotations)
    metrics = screening_metrics(probs, data.levels, target, threshold)
    metrics.update(split=split, tta=tta, data=str(Path(data_path).resolve()))
    fpr, tpr = roc_points(probs, data.levels, target, threshold)
    plot_roc(fpr, tpr, metrics["auc"], str(run_dir / "roc.png"), "(%s split)" % split)
    labels = ["no", "referable"] if target == "binary" else [str(i) for i in range(5)]
    plot_confusion(metrics["confusion"], labels, str(run_dir / "confusion.png"), "(%s)" % split)
    atomic_savez(run_dir / "test_predictions.npz", probs=probs, levels=data.levels,
                 names=np.array(data.names))
    atomic_write_bytes(run_dir / "evaluation.json", json.dumps(metrics, indent=2).encode())
    print("evaluate: %s" % ", ".join("%s=%.4g" % (k, metrics[k]) for k in
                                      ("accuracy", "sensitivity", "specificity", "auc", "kappa")))
    return metrics
