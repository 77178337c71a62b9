"""pipeline.runs.evaluated: runs grouped by scenario and overrides, by hand."""
from pathlib import Path

from pipeline.recipe.config import load_scenario
from pipeline.runs.evaluated import group, overrides_of


def run(config, name):
    return {"config": config, "dir": Path(name)}


def test_runs_with_overrides_are_their_own_group_and_never_the_claims():
    plain = [run(load_scenario("4", ["seed=%d" % s]), "4-%d" % s) for s in (1, 0)]
    short = run(load_scenario("4", ["epochs=1"]), "4-short")
    fold = run(load_scenario("4", ["folds=5", "fold=0"]), "4-fold")
    assert overrides_of(short["config"]) == ("epochs=1",)
    assert overrides_of(plain[0]["config"]) == ()  # the seed repeats a run, it is no override
    groups, primary = group(plain + [short, fold])
    assert sorted(groups) == ["4", "4 [epochs=1]"]  # cross-validation folds apart
    assert [r["dir"].name for r in groups["4"]] == ["4-0", "4-1"]  # by seed
    assert primary == {"4": "4"}


def test_a_seed_run_again_is_one_member_not_another_seed():
    """A second finished run of seed 0 counted as another seed: '2 + 1 runs', 'mean ± sd
    of 2', 'ensemble of 2'."""
    first = run(load_scenario("4"), "4-20261201-100000")
    again = run(load_scenario("4"), "4-20261202-100000")
    other = run(load_scenario("4", ["seed=1"]), "4-20261201-120000")
    groups, _ = group([again, other, first])
    assert [r["dir"].name for r in groups["4"]] == ["4-20261202-100000", "4-20261201-120000"]
