"""Cross-validation by patient: folds, out-of-fold predictions, one feature extraction."""
import json

import numpy as np

from pipeline.cv import cross_validate
from pipeline.data.dataset import Dataset, fold_splits
from pipeline.data.splits import kfold_by_patient, patient_of
from tests.pipeline.test_evaluate import FEATURES_MINI
from tests.pipeline.test_train import cv_h5 as data_h5  # noqa: F401  (module fixture)

#: scenario 1 on the mini network: its own feature layer, the top one (pool5/7x7_s1)
TOP_MINI = ["network=mini", "crop=64", "init=random"]


def test_folds_keep_patients_whole_and_test_every_image_once():
    rng = np.random.RandomState(0)
    names, levels = [], []
    for p in range(101):
        worst = int(rng.choice(5))
        names += ["%d_left" % p, "%d_right" % p]
        levels += [worst, max(0, worst - int(rng.rand() < 0.5))]
    of = kfold_by_patient(names, levels, 5, seed=0)
    by_patient = {}
    for name, fold in zip(names, of):
        by_patient.setdefault(patient_of(name), set()).add(int(fold))
    assert all(len(f) == 1 for f in by_patient.values())  # no patient in two folds
    sizes = np.bincount(of, minlength=5) // 2
    assert sizes.max() - sizes.min() <= 1  # 101 patients: 21, 20, 20, 20, 20
    tested = np.zeros(len(names), int)
    for fold in range(5):
        codes = fold_splits(names, levels, 5, fold)
        tested += codes == 2
        assert set(codes[of == fold]) == {2} and set(codes[of == (fold + 1) % 5]) == {1}
    assert (tested == 1).all()  # every image out of fold exactly once


def test_cross_validation_pools_every_image_out_of_fold(data_h5, tmp_path, monkeypatch):  # noqa: F811
    import pipeline.learn.features as features
    extractions = []
    original = features.forward_function

    def counting(net, names, *args, **kwargs):
        if names == ["features/global_pool"]:
            extractions.append(1)
        return original(net, names, *args, **kwargs)

    monkeypatch.setattr(features, "forward_function", counting)
    summary = cross_validate("1", FEATURES_MINI, data_h5, None, str(tmp_path), folds=3,
                             resamples=200, progress=False)
    assert len(extractions) == 1  # one feature extraction serves every fold
    everything = Dataset(data_h5, "all")
    [out] = tmp_path.glob("cv-1-k3-*")
    with np.load(out / "oof_predictions.npz") as oof:
        assert sorted(oof["names"]) == sorted(everything.names)  # each image once
    assert summary["images"] == len(everything) and len(summary["per_fold"]) == 3
    aucs = [f["auc"] for f in summary["per_fold"]]
    assert summary["mean"]["auc"] == np.mean(aucs)
    assert json.loads((out / "summary.json").read_text())["runs"] == summary["runs"]
    assert (out / "cv_roc.png").exists()
    again = cross_validate("1", FEATURES_MINI, data_h5, None, str(tmp_path), folds=3,
                           resamples=200, progress=False)
    assert again["runs"] == summary["runs"]  # finished folds are reused, not retrained


def test_another_design_gets_its_own_summary_and_claims_pair_only_equal_designs(
        data_h5, tmp_path):  # noqa: F811
    """`make cv SCENARIO=1 SET=classifier=svm` overwrote cv-1-k5, and a 10-fold CV sorted
    before a 5-fold one was paired with it: every design is kept apart, and a claim pairs
    only CVs of the same folds, fold assignment, positive class, TTA and rule."""
    from models.fileio import sha1_of
    from pipeline.evidence.claims import claim_rows
    from pipeline.runs.evaluated import load_cv
    kwargs = dict(resamples=50, progress=False)
    plain = cross_validate("1", TOP_MINI, data_h5, None, str(tmp_path), folds=3, **kwargs)
    svm = cross_validate("1", TOP_MINI + ["classifier=svm"], data_h5, None, str(tmp_path),
                         folds=3, **kwargs)
    tta = cross_validate("1", TOP_MINI, data_h5, None, str(tmp_path), folds=3, tta=True,
                         **kwargs)
    four = cross_validate("1", TOP_MINI, data_h5, None, str(tmp_path), folds=4, **kwargs)
    dirs = sorted(p.parent.name for p in tmp_path.glob("cv-*/summary.json"))
    assert len(dirs) == 4 and len({plain["design_sha1"], svm["design_sha1"], tta["design_sha1"],
                                   four["design_sha1"]}) == 4
    assert set(svm["overrides"]) - set(plain["overrides"]) == {'classifier="svm"'}
    assert plain["folds_sha1"] == svm["folds_sha1"] == tta["folds_sha1"] != four["folds_sha1"]
    three = cross_validate("3", TOP_MINI + ["feature_layer=inception_3a/output"], data_h5, None,
                           str(tmp_path), folds=3, **kwargs)
    assert three["folds_sha1"] == plain["folds_sha1"]  # one assignment for every scenario
    cv = load_cv(tmp_path, sha1_of(data_h5))
    rows = [r for r in claim_rows({}, cv, 50) if r[1] == "3 vs 1"]
    assert len(rows) == 1, rows  # only the plain 3-fold CV of 1 has 3's design and overrides
    assert "3-fold CV, out-of-fold, %d images, 30 patients, no TTA" % three["images"] in rows[0][2]


def test_the_folds_never_repoint_the_scenarios_latest_run(data_h5, tmp_path):  # noqa: F811
    """`make cv SCENARIO=1` pointed runs/1-latest at its last fold, so `make evaluate
    RUN=runs/1-latest` then evaluated one fold."""
    from pipeline.recipe.config import load_scenario
    from pipeline.train import train
    own = train(load_scenario("1", TOP_MINI), data_h5, runs_root=str(tmp_path), progress=False)
    assert (tmp_path / "1-latest").resolve() == own.resolve()
    cross_validate("1", TOP_MINI, data_h5, None, str(tmp_path), folds=3, resamples=20,
                   progress=False)
    assert (tmp_path / "1-latest").resolve() == own.resolve()


def test_more_folds_than_a_levels_patients_is_one_line_before_anything_trains(
        data_h5, tmp_path):  # noqa: F811
    """30 patients, 4 of the smallest worst level (2): 5 folds cannot stratify."""
    import pytest
    from pipeline.errors import InputError
    with pytest.raises(InputError, match=r"5 folds, but level 2 has only 4 patients \(patients "
                                         r"per level 0-4: 9, 5, 4, 5, 7\)"):
        cross_validate("1", TOP_MINI, data_h5, None, str(tmp_path), folds=5, progress=False)
    assert not list(tmp_path.iterdir())  # nothing written
    from pipeline.cv import check_folds
    with pytest.raises(InputError, match=r"fold 0 of 4 has negative images only \(referable DR "
                                         r"= level >= 5: 0 of its \d+ images\)"):
        check_folds(data_h5, 4, [{"threshold": 5}])  # no level reaches 5
    check_folds(data_h5, 4, [{"threshold": 2}])  # 4 folds can


def test_a_five_level_cv_grades_every_image_at_cut_points_of_other_folds(data_h5, tmp_path):  # noqa: F811
    from pipeline.report import write_report
    from tests.pipeline.test_train import MINI
    summary = cross_validate("4-levels", MINI, data_h5, None, str(tmp_path), folds=3,
                             resamples=50, progress=False)
    g = summary["levels"]
    assert g["images"] == summary["images"] == sum(g["graded_per_level"])
    assert len(g["per_fold"]) == 3 and all(len(f["cuts"]) == 4 for f in g["per_fold"])
    lo, hi = g["kappa_tuned"]["ci"]
    assert np.isnan(g["kappa_tuned"]["value"]) or lo <= g["kappa_tuned"]["value"] <= hi
    write_report(tmp_path, data_h5, resamples=50)
    md = (tmp_path / "report-data.md").read_text()
    assert "### Five levels by cross-validation" in md and "| 4-levels" in md
