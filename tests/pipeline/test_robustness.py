"""pipeline.robustness: the claims decided again under each reading, on constructed
evaluations with known answers: a verdict that flips under one reading is reported
there, a claim no reading touches keeps the default's, another positive class is not
compared."""
import numpy as np

from pipeline.ambiguities import load
from pipeline.robustness import partners, robustness, verdicts
from tests.pipeline.test_ambiguities import SMALL, write


def test_the_partners_are_the_other_scenarios_of_the_claims_in_their_order():
    assert partners("4") == ["scratch", "1", "3", "2"]


def fake_run(names, levels, score, threshold=2):
    return {"config": {"threshold": threshold},
            "predictions": {"names": np.array(names), "patients": np.array(names),
                            "levels": np.asarray(levels), "score": np.asarray(score)}}


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
    assert robustness(spec, table, 0) == ("holds under 3 of 4 readings; does not hold under "
                                          "1 of 4 readings; does not hold when lr = larger")
    assert robustness(spec, table, 2) == "holds under 2 of 2 readings"


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
    assert robustness(spec, table, 0) == ("inconclusive at this size under 1 of 1 readings; "
                                          "3 not measured (not run yet, or another positive "
                                          "class)")
