"""evaluate + report on a small trained run: files, plots, and what the report states."""
import json

from pipeline.evaluate import evaluate
from pipeline.report import write_report
from pipeline.config import load_scenario
from pipeline.train import train
from tests.pipeline.test_train import data_h5  # noqa: F401  (module fixture)


def test_evaluate_and_report(data_h5, tmp_path):  # noqa: F811
    run = train(load_scenario("1", ["network=mini", "crop=64", "init=random",
                                    "feature_layer=inception_3a/output"]),
                data_h5, runs_root=str(tmp_path), progress=False)
    metrics = evaluate(run, data_h5, tta=True)
    assert metrics["tta"] and metrics["n"] > 0
    for name in ("evaluation.json", "roc.png", "confusion.png", "learning_curves.png",
                 "test_predictions.npz"):
        assert (run / name).exists(), name
    saved = json.loads((run / "evaluation.json").read_text())
    assert set(saved) >= {"accuracy", "sensitivity", "specificity", "auc", "kappa", "confusion"}
    html_path = write_report(run)
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 3  # self-contained: plots inlined
    md = (run / "report.md").read_text()
    assert "randomly initialised GoogLeNet" in md  # says which weights were used
    assert "| train |" in md and "seed: 0" in md and "Linear classifier" not in md
    assert "%.3f" % saved["auc"] in md
