"""pipeline.evidence.robustness: the claims decided again under each reading, on constructed
evaluations with known answers: a verdict that flips under one reading is reported
there, a claim no reading touches keeps the default's, another positive class is not
compared."""
import numpy as np

from pipeline.ambiguities import load
from pipeline.evidence.robustness import partners, robustness, verdicts
from tests.pipeline.test_ambiguities import SMALL, write


def test_the_partners_are_the_other_scenarios_of_the_claims_in_their_order():
    assert partners("4") == ["scratch", "1", "3", "2"]


def fake_run(names, levels, score, threshold=2, freeze=None, tta=True, data_sha1="d0"):
    """A run evaluated on ``names``, trained on the data with SHA1 ``data_sha1``; its config
    differs from every other fake run's unless ``freeze`` is given (then it is the config
    of scenario 4 with that ``freeze``)."""
    config = {"threshold": threshold, "freeze": freeze if freeze is not None else
              ["unique-%d" % next(_COUNTER)]}
    return {"config": config, "env": {"data_sha1": data_sha1},
            "evaluation": {"settings": {"tta": tta, "rule": ["sensitivity", 0.87]}},
            "predictions": {"names": np.array(names), "patients": np.array(names),
                            "levels": np.asarray(levels), "score": np.asarray(score)}}


_COUNTER = __import__("itertools").count()


def test_a_verdict_that_flips_under_one_reading_is_reported_there(tmp_path):
    spec = load(write(tmp_path, SMALL))
    rng = np.random.RandomState(0)
    n = 120
    levels = rng.randint(0, 5, n)
    names = ["p%d" % i for i in range(n)]
    truth = levels >= 2
    good = truth + rng.normal(0, 0.3, n)       # AUC about 0.99
    fair = truth + rng.normal(0, 1.0, n)       # about 0.76
    noise = rng.normal(0, 1.0, n)              # about 0.5
    bad = -good                                # about 0.01
    run = lambda s: [fake_run(names, levels, s)]  # noqa: E731
    cells = {(None, 0, "4"): run(good), (None, 0, "scratch"): run(noise),
             (None, 0, "1"): run(fair), (None, 0, "3"): run(good), (None, 0, "2"): run(good),
             ("lr", 1, "4"): run(bad), ("lr", 2, "4"): run(good)}
    for s, score in (("4", good), ("scratch", noise), ("1", fair), ("3", good), ("2", good)):
        cells[("prep", 1, s)] = run(score)
    table = verdicts(spec, cells, resamples=300)
    default = [v for v, _, _ in table[0][2]]
    assert default == ["holds"] * 4
    lr1 = dict(((a, k), v) for a, k, v in table)[("lr", 1)]
    assert [v for v, _, _ in lr1][:2] == ["does not hold"] * 2  # 4 is now noise
    assert lr1[3][0] == "does not hold"                         # 4 vs 2, margin 0.05
    assert not lr1[2][2]  # 3 vs 1: neither changed by lr
    # the default is not one of the readings that change the claim's scenarios
    assert robustness(spec, table, 0) == ("holds under 2 of 3 readings; does not hold under "
                                          "1 of 3 readings; does not hold when lr = larger")
    assert robustness(spec, table, 2) == "holds under 1 of 1 readings"


def test_a_reading_of_another_positive_class_is_not_compared_with_the_default(tmp_path):
    spec = load(write(tmp_path, SMALL))
    levels = np.arange(40) % 5
    names = ["p%d" % i for i in range(40)]
    cells = {(None, 0, s): [fake_run(names, levels, levels / 4.0)]
             for s in ("4", "scratch", "1", "3", "2")}
    cells[("lr", 1, "4")] = [fake_run(names, levels, levels / 4.0, threshold=1)]
    table = verdicts(spec, cells, resamples=100)
    lr1 = dict(((a, k), v) for a, k, v in table)[("lr", 1)]
    assert lr1[0][0] == "not measured" and "not comparable" in lr1[0][1]
    assert robustness(spec, table, 0) == ("3 not measured (not run yet, or another positive "
                                          "class)")


def test_a_reading_that_makes_both_sides_one_config_is_not_applicable_and_not_counted(tmp_path):
    """The reading 'nothing frozen' turns scenario 4 into scenario 2 key for key: under it
    the claim '4 vs 2' compares a config with itself, which must not count as 'holds'."""
    spec = load(write(tmp_path, SMALL))
    rng = np.random.RandomState(1)
    levels = rng.randint(0, 5, 100)
    names = ["p%d" % i for i in range(100)]
    good = (levels >= 2) + rng.normal(0, 0.3, 100)
    cells = {(None, 0, s): [fake_run(names, levels, good)] for s in ("4", "scratch", "1", "3")}
    cells[(None, 0, "2")] = [fake_run(names, levels, good, freeze=[])]
    cells[("lr", 1, "4")] = [fake_run(names, levels, good, freeze=[])]  # scenario 2's config
    cells[("lr", 2, "4")] = [fake_run(names, levels, good + rng.normal(0, 0.05, 100))]
    table = verdicts(spec, cells, resamples=200)
    lr1 = dict(((a, k), v) for a, k, v in table)[("lr", 1)]
    assert lr1[3][0] == "not applicable" and "same config" in lr1[3][1]
    line = robustness(spec, table, 3)
    assert line.startswith("holds under 1 of 1 readings"), line
    assert "not applicable when lr = larger (both sides the same config; not counted)" in line


def test_runs_evaluated_with_another_tta_are_not_comparable(tmp_path):
    spec = load(write(tmp_path, SMALL))
    levels = np.arange(60) % 5
    names = ["p%d" % i for i in range(60)]
    cells = {(None, 0, s): [fake_run(names, levels, levels / 4.0)]
             for s in ("4", "scratch", "1", "3", "2")}
    cells[("lr", 1, "4")] = [fake_run(names, levels, levels / 4.0, tta=False)]
    lr1 = dict(((a, k), v) for a, k, v in verdicts(spec, cells, resamples=50))[("lr", 1)]
    assert lr1[0][0] == "not measured"
    assert "not comparable: no TTA in one, 4-rotation TTA in the other" in lr1[0][1]
