"""The reproduction report: claims with verdicts, tables with intervals, self-contained."""
import re

import pytest

from pipeline.recipe.config import load_scenario
from pipeline.errors import InputError
from pipeline.evaluate import evaluate
from pipeline.evidence.claims import verdict
from pipeline.report import write_report
from pipeline.train import train
from tests.pipeline.test_evaluate import FEATURES_MINI
from tests.pipeline.test_train import MINI, data_h5  # noqa: F401  (module fixture)


def test_report_across_scenarios(data_h5, tmp_path):  # noqa: F811
    with pytest.raises(InputError, match="no evaluated run"):
        write_report(tmp_path, data_h5)
    runs = [train(load_scenario("1", FEATURES_MINI), data_h5, runs_root=str(tmp_path),
                  progress=False)]
    runs += [train(load_scenario(s, MINI + ["seed=%d" % seed]), data_h5,
                   runs_root=str(tmp_path), progress=False)
             for s, seed in (("4", 0), ("4", 1), ("scratch", 0))]
    # a run of scenario 4 with one more override: shown apart, never mixed into the claims
    runs.append(train(load_scenario("4", MINI + ["solver.base_lr=0.001"]), data_h5,
                      runs_root=str(tmp_path), progress=False))
    for run in runs:
        evaluate(run, data_h5, resamples=100)
    page = write_report(tmp_path, data_h5, resamples=100).read_text()
    md = (tmp_path / "report-data.md").read_text()
    claims = md[md.index("## The post's claims"):md.index("## Results per scenario")]
    row = re.search(r"\| Pre-trained initialisation beats random initialisation \| 4 vs scratch "
                    r"\| ΔAUC ([-+]\d\.\d{3}) \[([-+]\d\.\d{3}), ([-+]\d\.\d{3})\] "
                    r"\(test split, \d+ images, 2 \+ 1 runs, no TTA, cut: sensitivity >= 0\.87\) "
                    r"\| \*\*(.+)\*\* \|", claims)
    assert row, claims
    lo, hi = float(row.group(2)), float(row.group(3))
    assert lo <= float(row.group(1)) <= hi and row.group(4) == verdict("better", 0, [lo, hi])
    assert "| 4 vs 1 | ΔAUC" in claims and "| 3 vs 1 | not measured" in claims
    assert "mean ± sd of 2" in md  # two seeds of scenario 4
    assert md.count("| ensemble of 2 |") == 2  # and the two as one model, argmax and cut
    assert "| Beyond the post: a patient's other eye helps" in claims
    assert md.count('solver.base_lr=0.001] | 0 |') == 2  # its own rows, argmax and cut tables
    assert md.count("### ") == 5  # details of each run
    assert page.count("data:image/png;base64,") == 1 + 4  # ROC overlay, fine-tuning curves
    assert page.index("claims</h2>") < page.index("Results per scenario") < \
        page.index("<h2>Runs</h2>")


def test_report_uses_each_runs_threshold(data_h5, tmp_path):  # noqa: F811
    """Runs whose referable DR is level >= 1 (any DR): claims and curves on that truth (the
    report used level >= 2 in its curves, CV and external rows)."""
    from sklearn.metrics import roc_auc_score
    from pipeline.runs.evaluated import group, load_runs
    from pipeline.sections.scenarios import roc_curves
    from models.fileio import sha1_of
    runs = [train(load_scenario(s, MINI + ["threshold=1"]), data_h5, runs_root=str(tmp_path),
                  progress=False) for s in ("4", "scratch")]
    for run in runs:
        evaluate(run, data_h5, resamples=50)
    write_report(tmp_path, data_h5, resamples=50)
    md = (tmp_path / "report-data.md").read_text()
    assert "referable DR = level >= 1." in md
    groups, primary = group(load_runs(tmp_path, sha1_of(data_h5)))
    by_scenario = {s: groups[label] for s, label in primary.items()}
    aucs = {}
    for label, score, truth, _ in roc_curves(by_scenario):
        levels = by_scenario["4" if label.startswith("4") else "scratch"][0]["predictions"]["levels"]
        assert (truth == (levels >= 1)).all() and truth.any() and not truth.all()
        aucs[label[0]] = roc_auc_score(levels >= 1, score)
    row = re.search(r"4 vs scratch \| ΔAUC ([-+]\d\.\d{3})", md)
    assert abs(float(row.group(1)) - (aucs["4"] - aucs["s"])) < 1.5e-3
