"""Scenario configs: every shipped scenario is valid, and every kind of bad
value is one line naming the key, before anything is created."""
import pytest

from pipeline.cli import main
from pipeline.recipe.config import SCHEMA, load_scenario
from pipeline.errors import InputError


def test_shipped_scenarios_are_valid_and_overrides_apply():
    for name in ("1", "2", "3", "4", "scratch"):
        assert load_scenario(name)["method"] in ("features", "finetune")
    config = load_scenario("4", ["solver.base_lr=0.001", "epochs=20", "freeze=[]"])
    assert config["solver"]["base_lr"] == 0.001 and config["epochs"] == 20 and config["freeze"] == []
    with pytest.raises(InputError, match="no such scenario"):
        load_scenario("7")


@pytest.mark.parametrize("override, message", [
    ("epochs=abc", "--set epochs=abc: epochs: expected an integer, got 'abc'"),
    ('solver.lr_policy="bogus"', "solver.lr_policy: 'bogus' is not one of fixed, step"),
    ("target=bogus", "target: 'bogus' is not one of binary, levels"),
    ("epoch=1", "--set epoch=1: epoch: unknown key (did you mean epochs?)"),
    ("network=resnet", "network: 'resnet' is not one of googlenet, mini"),
    ("epochs=0", "epochs: 0 is below 1"),
    ("epochs=2.5", "epochs: expected an integer, got 2.5"),
    ("aux_heads=1", "aux_heads: expected true or false, got 1"),
    ("seed=true", "seed: expected an integer, got True"),
    ("solver.momentum=1.0", "solver.momentum: 1.0 is not below 1"),
    ("solver.base_lr=-0.1", "solver.base_lr: -0.1 is below 0"),
    ("rotations=[0, 45]", "rotations: 45 is not one of 0, 90, 180, 270"),
    ("new_lr_mult=[10]", "new_lr_mult: expected a list of two numbers"),
    ('freeze=["conv9/"]', "freeze: 'conv9/' is the start of no layer name of googlenet"),
    ("solver.lr_policy=multistep", "solver.stepvalue: missing (method finetune needs it)"),
    ("threshold=5", "threshold: 5 is above 4"),
    ("epochs.x=1", "epochs is not a table"),
    ("folds=5", "fold: missing (folds and fold go together)"),
    ("fold=5", "folds: missing"),
])
def test_bad_overrides_are_one_line_naming_the_key(override, message):
    with pytest.raises(InputError) as e:
        load_scenario("4", [override])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_fold_must_be_below_folds():
    with pytest.raises(InputError, match="fold: 5 is not below folds"):
        load_scenario("4", ["folds=5", "fold=5"])
    with pytest.raises(InputError, match="folds: 2 is below 3"):  # no fold left to train on
        load_scenario("4", ["folds=2", "fold=0"])
    assert load_scenario("4", ["folds=5", "fold=4"])["fold"] == 4


def test_feature_layer_must_be_a_layer_of_the_network():
    with pytest.raises(InputError, match="feature_layer: 'inception_9z/output' is no layer of "
                                         "googlenet"):
        load_scenario("3", ["feature_layer=inception_9z/output"])
    load_scenario("3", ["network=mini", "feature_layer=inception_3a/output"])


def test_solver_prototxt_keys_are_checked_too(tmp_path):
    good = tmp_path / "good.prototxt"
    good.write_text('net: "train_val.prototxt"\ntest_iter: 10\ndisplay: 20\nbase_lr: 0.001\n'
                    'lr_policy: "step"\nstepsize: 100\nsnapshot_prefix: "x"\nsolver_mode: GPU\n')
    config = load_scenario("4", ["solver_prototxt=%r" % str(good)])
    assert config["solver"]["base_lr"] == 0.001 and config["solver"]["stepsize"] == 100
    bad = tmp_path / "adam.prototxt"
    bad.write_text('base_lr: 0.001\nlr_policy: "fixed"\ntype: "Adam"\n')
    with pytest.raises(InputError, match=r"adam.prototxt: solver.type: 'Adam' is not one of SGD"):
        load_scenario("4", ["solver_prototxt=%r" % str(bad)])
    (tmp_path / "typo.prototxt").write_text("base_lr: 0.001\nlr_polcy: \"fixed\"\n")
    with pytest.raises(InputError, match="solver.lr_polcy: unknown key"):
        load_scenario("4", ["solver_prototxt=%r" % str(tmp_path / "typo.prototxt")])


def test_every_key_of_the_shipped_scenarios_is_in_the_schema():
    import tomllib
    from pipeline.recipe.config import flatten, scenario_files
    paths = scenario_files()
    assert {p.stem for p in paths} == {"1", "2", "3", "4", "4-levels", "scratch"}
    for path in paths:  # "base" names the scenario a file changes
        assert set(flatten(tomllib.loads(path.read_text()))) - {"base"} <= set(SCHEMA), path
    with pytest.raises(InputError, match="no such scenario .*readings file of make ambig"):
        load_scenario("ambiguities")


def test_a_scenario_based_on_another_changes_only_what_it_sets(tmp_path, monkeypatch):
    from pipeline.recipe import config as cfg
    four, levels = load_scenario("4"), load_scenario("4-levels")
    assert levels["target"] == "levels" and four["target"] == "binary"
    assert {k: v for k, v in levels.items() if k not in ("target", "description", "scenario")} \
        == {k: v for k, v in four.items() if k not in ("target", "description", "scenario")}
    assert "base" not in levels and levels["scenario"] == "4-levels"
    monkeypatch.setattr(cfg, "SCENARIOS", tmp_path)
    (tmp_path / "a.toml").write_text('base = "b"\n')
    (tmp_path / "b.toml").write_text('base = "a"\n')
    with pytest.raises(InputError, match="base = 'a' is no other scenario"):
        load_scenario("a")
    (tmp_path / "c.toml").write_text('base = "nothing"\n')
    with pytest.raises(InputError, match="c.toml: base = 'nothing' is no other scenario"):
        load_scenario("c")


def test_train_refuses_a_bad_config_before_making_anything(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["train", "--scenario", "4", "--data", str(tmp_path / "missing.h5"),
                 "--runs", str(runs), "--set", "epoch=1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "epoch: unknown key" in err
    assert not runs.exists()
