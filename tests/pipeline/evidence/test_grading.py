"""pipeline.evidence.grading: 5-level kappa by hand and against scikit-learn; the cut-point search
against an exhaustive grid."""
import itertools

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from pipeline.evidence.grading import (expected_grade, grading, kappa, kappa_with_interval, levels_at,
                              tune_cuts)


def test_kappa_of_a_hand_worked_five_by_five():
    # truth 0 1 2 3 4 4, predicted 0 2 2 3 3 4: observed off-diagonal cells (1,2) and (4,3)
    truth, pred = [0, 1, 2, 3, 4, 4], [0, 2, 2, 3, 3, 4]
    # weights (i-j)^2: observed sum 1 + 1 = 2; expected: rows (1,1,1,1,2)/6 x cols
    # (1,0,2,2,1)/6 times 6 images
    rows, cols = np.array([1, 1, 1, 1, 2]), np.array([1, 0, 2, 2, 1])
    i, j = np.indices((5, 5))
    expected = (np.outer(rows, cols) / 6.0 * (i - j) ** 2).sum()
    assert kappa(truth, pred) == pytest.approx(1 - 2 / expected)
    assert kappa(truth, pred) == pytest.approx(cohen_kappa_score(truth, pred, weights="quadratic"))


def test_kappa_against_scikit_learn_on_random_gradings():
    rng = np.random.RandomState(0)
    for _ in range(20):
        truth = rng.randint(0, 5, 80)
        pred = np.clip(truth + rng.randint(-2, 3, 80), 0, 4)
        assert kappa(truth, pred) == pytest.approx(
            cohen_kappa_score(truth, pred, weights="quadratic"), abs=1e-12)


def test_levels_and_expected_grade_by_hand():
    probs = np.array([[1, 0, 0, 0, 0], [0, 0.5, 0.5, 0, 0], [0, 0, 0, 0, 1.0]])
    np.testing.assert_allclose(expected_grade(probs), [0, 1.5, 4])
    assert levels_at([0.2, 0.5, 1.49, 1.5, 3.9, 9], [0.5, 1.5, 2.5, 3.5]).tolist() == \
        [0, 1, 1, 2, 4, 4]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_search_finds_the_best_cut_points_of_an_exhaustive_grid(seed):
    rng = np.random.RandomState(seed)
    truth = rng.randint(0, 5, 22)
    grade = np.round(truth + rng.normal(0, 0.9, 22), 2)  # a noisy continuous grade
    cuts, best = tune_cuts(grade, truth)
    assert kappa(truth, levels_at(grade, cuts)) == pytest.approx(best)
    values = np.unique(grade)
    candidates = np.concatenate([[values[0] - 0.5], (values[:-1] + values[1:]) / 2,
                                 [values[-1] + 0.5]])
    grid = max(kappa(truth, levels_at(grade, c))
               for c in itertools.combinations_with_replacement(candidates, 4))
    assert best == pytest.approx(grid, abs=1e-9), (best, grid)
    assert best >= kappa(truth, levels_at(grade, [0.5, 1.5, 2.5, 3.5]))
    assert (np.diff(cuts) >= 0).all() and tune_cuts(grade, truth)[0].tolist() == cuts.tolist()


def test_grading_figures_and_their_intervals():
    rng = np.random.RandomState(4)
    levels = rng.randint(0, 5, 60)
    probs = np.eye(5)[np.clip(levels + rng.randint(-1, 2, 60), 0, 4)] * 0.8 + 0.04
    patients = np.repeat(np.arange(30), 2)
    out = grading(probs, levels, patients, [0.5, 1.5, 2.5, 3.5], resamples=200)
    for key in ("kappa_argmax", "kappa_tuned"):
        lo, hi = out[key]["ci"]
        assert lo <= out[key]["value"] <= hi
    assert np.array(out["confusion_argmax"]).sum() == 60 and len(out["confusion_tuned"]) == 5
    same = kappa_with_interval(levels, levels, patients, resamples=50)
    assert same == {"value": 1.0, "ci": [1.0, 1.0], "undefined": 0}


def test_resamples_where_kappa_is_undefined_are_left_out_and_counted():
    """Two patients graded 0 and right, a third with levels 4 and 2 graded 3 and 2: a
    resample without the third patient has one grade only, where kappa is undefined.
    Counted as 0 (as before) they pulled the interval's lower end to 0; every defined
    resample here is above 0.5 (the third patient alone: 1 - 0.5 / 1.5 = 0.667)."""
    from pipeline.evidence.stats import resample_indices
    truth, pred, patients = [0, 0, 0, 0, 4, 2], [0, 0, 0, 0, 3, 2], ["a", "a", "b", "b", "c", "c"]
    out = kappa_with_interval(truth, pred, patients, resamples=400, seed=3)
    without_c = sum(4 not in np.asarray(truth)[idx]
                    for idx in resample_indices(patients, 400, 3))
    assert out["undefined"] == without_c > 0
    assert out["ci"][0] > 0.5 and out["value"] == pytest.approx(
        cohen_kappa_score(truth, pred, weights="quadratic", labels=range(5)))
    assert np.isnan(kappa([2, 2, 2], [2, 2, 2]))


@pytest.mark.parametrize("seed", range(12))
def test_of_equally_good_cut_points_the_search_keeps_the_lowest(seed):
    """The docstring's tie rule, checked where the search stops: moving any one cut-point
    to a lower candidate (within its neighbours) makes kappa worse, never equal."""
    rng = np.random.RandomState(seed)
    truth = rng.randint(0, 5, 14)
    grade = np.round(truth + rng.normal(0, 1.2, 14), 1)
    cuts, best = tune_cuts(grade, truth)
    values = np.unique(grade)
    candidates = np.concatenate([[values[0] - 0.5], (values[:-1] + values[1:]) / 2,
                                 [values[-1] + 0.5]])
    for i in range(4):
        low = cuts[i - 1] if i else -np.inf
        for c in candidates[(candidates >= low) & (candidates < cuts[i])]:
            trial = cuts.copy()
            trial[i] = c
            assert kappa(truth, levels_at(grade, trial)) < best - 1e-12, (i, c, cuts)


def test_bands_count_each_level_and_flag_a_collapsed_one():
    """The issue's cut-points 1.21 / 2.057 / 2.077 / 3.23: level 2's band is 0.02 wide."""
    from pipeline.evidence.grading import bands
    grade = [0.1, 1.5, 2.06, 2.5, 3.0, 3.9, 4.0]
    out = bands([1.21, 2.057, 2.077, 3.23], grade)
    assert [b["images"] for b in out] == [1, 1, 1, 2, 2]
    assert [b["narrow"] for b in out] == [False, False, True, False, False]
    assert out[2]["width"] == pytest.approx(0.02) and out[0]["width"] is None
    assert out[0]["low"] is None and out[4]["high"] is None and out[1]["low"] == 1.21


def test_cv_grading_never_tunes_a_folds_cut_points_on_its_own_images():
    """Fold k's test images are the validation images of fold k-1's run only. Here those
    validation predictions are poisoned (each image's grade far from its level): fold k's
    cut-points must be those tuned on the other runs' validation predictions, and the
    poison, were it used, would move them."""
    from pipeline.evidence.grading import cv_grading
    rng = np.random.RandomState(0)

    def part(n, noise, flip=False):
        levels = rng.randint(0, 5, n)
        shown = (4 - levels) if flip else levels
        probs = np.eye(5)[np.clip(shown + rng.randint(-noise, noise + 1, n), 0, 4)] * 0.7 + 0.06
        return {"probs": probs, "levels": levels, "patients": np.arange(n) + rng.randint(1e6)}
    k = 4
    vals = [part(40, 1, flip=(j == 0)) for j in range(k)]  # run 0 validated on fold 1: poison
    tests = [part(30, 1) for _ in range(k)]
    out = cv_grading(list(zip(vals, tests)), resamples=50)
    assert out["images"] == 120 and len(out["per_fold"]) == k
    clean = [vals[j] for j in range(k) if j != 0]
    expected, _ = tune_cuts(np.concatenate([expected_grade(v["probs"]) for v in clean]),
                            np.concatenate([v["levels"] for v in clean]))
    assert out["per_fold"][1]["cuts"] == expected.tolist()  # fold 1: run 0 left out
    poisoned, _ = tune_cuts(np.concatenate([expected_grade(v["probs"]) for v in vals]),
                            np.concatenate([v["levels"] for v in vals]))
    assert poisoned.tolist() != expected.tolist()  # so the test can fail
    assert all(f["tuning_images"] == 120 for f in out["per_fold"])
    graded = sum(np.array(f["bands"][i]["images"]) for f in out["per_fold"] for i in [0])
    assert sum(out["graded_per_level"]) == 120 and graded == out["graded_per_level"][0]
