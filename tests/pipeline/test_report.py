"""The reproduction report: claims with verdicts, tables with intervals, self-contained."""
import re

import pytest

from pipeline.config import load_scenario
from pipeline.errors import InputError
from pipeline.evaluate import evaluate
from pipeline.claims import verdict
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
    from pipeline.evaluated_runs import group, load_runs
    from pipeline.report import roc_curves
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


def test_gallery_cases_by_hand():
    from pipeline.report import gallery_cases
    score = [0.9, 0.8, 0.2, 0.1, 0.7, 0.3, 0.95, 0.05]
    truth = [1, 1, 1, 0, 0, 0, 1, 1]
    cases = gallery_cases(score, truth, cut=0.5)
    assert cases["true positive"] == [0, 1, 6] and cases["false positive"] == [4]
    assert cases["false negative"] == [2, 7]  # the right kinds, each at most three
    assert gallery_cases(score, truth, 0.5) == cases  # a fixed seed


def test_kaggle_test_scores_stand_beside_the_leaderboard(tmp_path):
    import json
    from pipeline.report import kaggle_test_section
    assert kaggle_test_section([{"dir": tmp_path, "config": {"target": "levels"}}]) == []
    out = tmp_path / "4-levels-x" / "kaggle-test" / "test"
    out.mkdir(parents=True)
    part = {"images": 10, "kappa": {"value": 0.7012, "ci": [0.6, 0.8]},
            "auc_referable": {"value": 0.9, "ci": [0.85, 0.95]}}
    (out / "score.json").write_text(json.dumps({"Public": dict(part, images=3),
                                                "Private": part}))
    md = kaggle_test_section([{"dir": tmp_path / "4-levels-x", "config": {"target": "levels"}}])
    assert ("| 4-levels-x (levels) | test: 13 | 0.701 [0.600, 0.800] | 0.701 [0.600, 0.800] "
            "| 0.900 [0.850, 0.950] |") in md
    # Kaggle's private board scored its Private part, about 80 % of the 53,576 images
    assert "| Kaggle 2015, 1st, Graham | Private: ~80 % of 53,576 | | 0.8496 | |" in md
    assert any(line.startswith("| Voets et al. 2019") and "0.951 [0.947, 0.956]" in line
               for line in md)


def fake_evaluated_run(path, seed, tta, score, levels, rule=("sensitivity", 0.87)):
    """A run as evaluated_runs loads it, evaluated with ``tta`` and ``rule``."""
    import numpy as np
    path.mkdir()
    (path / "metrics.csv").write_text("epoch,seconds\n1,5\n")
    metric = {"value": 0.5, "ci": [0.4, 0.6]}
    block = {m: metric for m in ("auc", "sensitivity", "specificity", "accuracy", "kappa")}
    names = np.array(["p%d" % i for i in range(len(score))])
    return {"dir": path, "config": {"seed": seed, "threshold": 2, "target": "binary"},
            "evaluation": {"n": len(score), "tta": tta,
                           "settings": {"tta": tta, "rule": list(rule)},
                           "argmax": block, "at_operating_point": block,
                           "operating_point": {"rule": rule[0], "target": rule[1], "cut": 0.5,
                                               "val_sensitivity": 0.9,
                                               "val_specificity": 0.8}},
            "predictions": {"names": names, "patients": names, "score": np.asarray(score),
                            "levels": np.asarray(levels),
                            "probs": np.column_stack([1 - np.asarray(score), score])}}


def test_seeds_evaluated_differently_are_not_pooled_and_each_row_says_how(tmp_path):
    """The header took the first run's TTA and rule for every row, and the seeds' mean
    and ensemble pooled runs evaluated with and without TTA."""
    import numpy as np
    from pipeline.report import scenario_tables
    rng = np.random.RandomState(0)
    levels = rng.randint(0, 5, 40)
    score = rng.uniform(0, 1, 40)
    runs = [fake_evaluated_run(tmp_path / "a", 0, True, score, levels),
            fake_evaluated_run(tmp_path / "b", 1, False, score, levels)]
    md = "\n".join(scenario_tables({"4": runs}, resamples=20))
    assert "4-rotation TTA" not in md.split("| scenario |")[0].replace(
        "evaluated differently: each row says how", "")  # the header claims no one setting
    assert "| 0 (4-rotation TTA, cut: sensitivity >= 0.87) |" in md
    assert "| 1 (no TTA, cut: sensitivity >= 0.87) |" in md
    assert "not pooled: not comparable: 4-rotation TTA in one, no TTA in the other" in md
    assert "| mean ± sd" not in md and "ensemble of" not in md
    alike = [fake_evaluated_run(tmp_path / "c", 0, True, score, levels),
             fake_evaluated_run(tmp_path / "d", 1, True, score, levels)]
    md = "\n".join(scenario_tables({"4": alike}, resamples=20))
    assert "(40 images; 4-rotation TTA, cut: sensitivity >= 0.87)" in md
    assert "mean ± sd of 2" in md and "| 0 |" in md


def test_a_claim_between_runs_evaluated_with_other_rules_is_not_comparable(tmp_path):
    import numpy as np
    from pipeline.claims import claim_rows
    rng = np.random.RandomState(1)
    levels = rng.randint(0, 5, 40)
    a = fake_evaluated_run(tmp_path / "a", 0, True, rng.uniform(0, 1, 40), levels)
    b = fake_evaluated_run(tmp_path / "b", 0, True, rng.uniform(0, 1, 40), levels,
                           rule=("youden", None))
    a["config"]["scenario"], b["config"]["scenario"] = "4", "scratch"
    row = claim_rows({"4": [a], "scratch": [b]}, {}, 20)[0]
    assert row[3] == "not measured" and row[2] == (
        "not comparable: cut: sensitivity >= 0.87 in one, cut: Youden's J in the other")


def test_each_section_names_the_commands_its_runs_recorded_and_their_time(tmp_path):
    """The README said it was made by commands that could not make it; now each section
    lists what its runs recorded, and the time beside the plan's estimate for them."""
    import numpy as np
    from pipeline.report import made_by, timing_line
    from pipeline.estimate import estimate_seconds
    rng = np.random.RandomState(0)
    runs = [fake_evaluated_run(tmp_path / n, 0, True, rng.uniform(0, 1, 20), rng.randint(0, 5, 20))
            for n in ("a", "b")]
    runs[0]["env"] = {"command": "make reproduce WEIGHTS=w"}
    runs[1]["env"] = {"command": "make train SCENARIO=4"}
    for run in runs:
        run["evaluation"].update(command="make reproduce WEIGHTS=w", seconds=20.0)
    assert made_by(runs) == ["", "*Made by: `make reproduce WEIGHTS=w`; `make train SCENARIO=4`.*"]
    data = tmp_path / "d.h5"
    import h5py
    with h5py.File(data, "w") as f:
        f.attrs["counts"] = '{"train": [50, 0, 0, 0, 20], "val": [10, 0, 0, 0, 5], "test": [10, 0, 0, 0, 5]}'
    for run in runs:
        run["config"] = load_scenario("4")
    line = timing_line(runs, data)
    estimate = 2 * estimate_seconds([load_scenario("4")], {"train": 70, "val": 15, "test": 15}, True)
    assert line.startswith("These 2 runs took 10 s to train and 40 s to evaluate")
    assert "at most %.0f s for them" % estimate in line and "took longer" not in line
