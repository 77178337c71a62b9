"""Scenario configuration: the TOML files of ``scenarios/``, overrides, and the
one schema every command checks a config against before it creates anything.

A scenario is a small TOML file; ``key=value`` overrides (value in TOML syntax,
dotted keys for tables: ``solver.base_lr=0.001``) are applied on top, then a
Caffe ``solver_prototxt`` if one is named. ``validate`` checks the result
against ``SCHEMA``: unknown keys, wrong types, values outside their choices
or ranges, and keys a method needs are each a one-line InputError naming the
key.
"""
import difflib
import numbers
import tomllib
from pathlib import Path

from models.googlenet import NETWORKS
from models.solver import read_solver_prototxt

from ..data.subsets import size_kind
from ..errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
#: the readings file of ``make ambiguities`` (pipeline.ambiguities), beside the scenarios
AMBIGUITIES = SCENARIOS / "ambiguities.toml"
#: the grid of ``make fourcases`` (pipeline.fourcases), beside the scenarios
FOURCASES = SCENARIOS / "fourcases.toml"
#: the files of ``scenarios/`` that are no scenario
NOT_SCENARIOS = (AMBIGUITIES, FOURCASES)
LR_POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")


class Key(object):
    """One config key: its kind (``str``, ``int``, ``number``, ``bool``,
    ``list[str]``, ``list[int]``, ``pair``: two numbers), allowed values
    ``choices``, and bounds ``low`` <= value (< ``below`` or <= ``high``)."""

    def __init__(self, kind, choices=None, low=None, high=None, below=None):
        self.kind, self.choices, self.low, self.high, self.below = kind, choices, low, high, below

    def problem(self, value):
        """Why ``value`` does not fit, or None."""
        kind = self.kind
        if kind.startswith("list[") or kind == "pair":
            item = Key("number" if kind == "pair" else kind[5:-1], self.choices, self.low,
                       self.high, self.below)
            if not isinstance(value, list) or (kind == "pair" and len(value) != 2):
                return "expected %s, got %r" % (
                    "a list of two numbers" if kind == "pair" else "a list", value)
            return next((p for p in map(item.problem, value) if p), None)
        if not _is(kind, value):
            return "expected %s, got %r" % (_NAMES[kind], value)
        if self.choices is not None and value not in self.choices:
            return "%r is not one of %s" % (value, ", ".join(map(str, self.choices)))
        if self.low is not None and value < self.low:
            return "%r is below %s" % (value, self.low)
        if self.high is not None and value > self.high:
            return "%r is above %s" % (value, self.high)
        if self.below is not None and value >= self.below:
            return "%r is not below %s" % (value, self.below)
        return None


_NAMES = {"str": "a string", "int": "an integer", "number": "a number", "bool": "true or false"}


def _is(kind, value):
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # TOML's true is no number
    if kind == "int":
        return isinstance(value, numbers.Integral)
    return isinstance(value, numbers.Real)


SCHEMA = {
    "scenario": Key("str"),
    "description": Key("str"),
    "method": Key("str", ("finetune", "features")),
    "network": Key("str", tuple(NETWORKS)),
    "init": Key("str", ("pretrained", "random")),
    "target": Key("str", ("binary", "levels", "classes")),
    # class-labelled data: the data's class names (set from the data, CLASS_DATA)
    "classes": Key("list[str]"),
    # the training part cut to a nested, stratified subset (data.subsets): a fraction in
    # (0, 1] or a count of images per class or level
    "train_size": Key("number", low=0),
    # SGD steps per epoch when not ceil(training images / batch): the four-cases grid
    # gives a subset the steps of its full training part (pipeline.fourcases)
    "steps_per_epoch": Key("int", low=1),
    "threshold": Key("int", low=1, high=4),
    "balance": Key("str", ("sampling", "loss_weights", "none")),
    "crop": Key("int", low=1),
    "seed": Key("int", low=0),
    "epochs": Key("int", low=1),
    "batch_size": Key("int", low=1),
    # cross-validation by patient (pipeline.cv): this run is fold ``fold`` of ``folds``
    # (test that fold, validate on the next, train on the rest: three at least)
    "folds": Key("int", low=3),
    "fold": Key("int", low=0),
    # finetune
    "freeze": Key("list[str]"),
    "aux_heads": Key("bool"),
    "rotations": Key("list[int]", (0, 90, 180, 270)),
    "flip": Key("bool"),  # also mirror each training image left-right with probability 1/2
    "new_lr_mult": Key("pair", low=0),
    "new_decay_mult": Key("pair", low=0),
    # features
    "feature_layer": Key("str"),
    "classifier": Key("str", ("logistic", "svm", "theano")),
    "C": Key("number", low=0),
    # Caffe's SGD solver
    "solver_prototxt": Key("str"),
    "solver.base_lr": Key("number", low=0),
    "solver.lr_policy": Key("str", LR_POLICIES),
    "solver.gamma": Key("number"),
    "solver.power": Key("number"),
    "solver.stepsize": Key("int", low=1),
    "solver.stepvalue": Key("list[int]", low=0),
    "solver.max_iter": Key("int", low=1),
    "solver.momentum": Key("number", low=0, below=1),
    "solver.weight_decay": Key("number", low=0),
    # SolverParameter fields a solver.prototxt may hold that change nothing here
    # (testing, display, snapshots, device: the pipeline does those its own way)
    **{"solver." + k: Key(kind) for k, kind in (
        ("net", "str"), ("train_net", "str"), ("test_net", "str"), ("test_iter", "int"),
        ("test_interval", "int"), ("test_initialization", "str"), ("display", "int"),
        ("average_loss", "int"), ("snapshot", "int"), ("snapshot_prefix", "str"),
        ("snapshot_after_train", "str"), ("solver_mode", "str"), ("device_id", "int"),
        ("random_seed", "int"), ("debug_info", "str"))},
    # ... and those that would change the result: only Caffe's SGD is implemented
    "solver.type": Key("str", ("SGD",)),
    "solver.solver_type": Key("str", ("SGD",)),
    "solver.iter_size": Key("int", (1,)),
    "solver.regularization_type": Key("str", ("L2",)),
}

REQUIRED = {"finetune": ("target",), "features": ("target", "feature_layer", "classifier")}
SGD_NEEDS = ("epochs", "batch_size", "solver.base_lr", "solver.lr_policy")
POLICY_NEEDS = {"step": ("solver.stepsize",), "multistep": ("solver.stepvalue",),
                "sigmoid": ("solver.stepsize",), "poly": ("solver.power",),
                "inv": ("solver.gamma", "solver.power"), "exp": ("solver.gamma",)}


def flatten(config, prefix=""):
    """{dotted key: value} of a nested config."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, prefix + key + "."))
        else:
            out[prefix + key] = value
    return out


#: config keys that name a run and do not change what it computes
NAME_KEYS = ("scenario", "description")
#: config keys that repeat a run (another seed, another fold of a cross-validation)
REPEAT_KEYS = ("seed", "fold", "folds")


def recipe(config, repeats=True):
    """What a run computes, as a sorted tuple of (dotted key, value): ``config`` without
    its names (``NAME_KEYS``), and without ``REPEAT_KEYS`` unless ``repeats``. Two
    configs with the same recipe train the same network, whatever the scenario is called."""
    drop = NAME_KEYS + (() if repeats else REPEAT_KEYS)
    return tuple(sorted((k, repr(v)) for k, v in flatten(config).items() if k not in drop))


def validate(config, source, origins=None):
    """Check ``config`` against ``SCHEMA``; InputError "where: key: problem", where
    being ``origins[key]`` (e.g. the override that set it) or else ``source``."""
    flat = flatten(config)
    origins = origins or {}

    def fail(key, problem):
        raise InputError("%s: %s: %s" % (origins.get(key, source), key, problem))

    for key, value in flat.items():
        if key not in SCHEMA:
            near = difflib.get_close_matches(key, list(SCHEMA), n=1)
            fail(key, "unknown key" + (" (did you mean %s?)" % near[0] if near else ""))
        problem = SCHEMA[key].problem(value)
        if problem:
            fail(key, problem)
    method = flat.get("method")
    if method is None:
        fail("method", "missing (finetune or features)")
    needs = REQUIRED[method]
    if method == "finetune" or flat.get("classifier") == "theano":  # Caffe SGD runs
        needs += SGD_NEEDS + POLICY_NEEDS.get(flat.get("solver.lr_policy"), ())
    for key in needs:
        if key not in flat:
            fail(key, "missing (method %s needs it)" % method)
    if ("folds" in flat) != ("fold" in flat):
        fail("fold" if "folds" in flat else "folds", "missing (folds and fold go together)")
    if flat.get("fold", 0) >= flat.get("folds", 1 << 30):
        fail("fold", "%r is not below folds (%r)" % (flat["fold"], flat["folds"]))
    if (flat.get("target") == "classes") != ("classes" in flat):
        fail("target", "classes is the target of class-labelled data only (DATA with a "
             "labels.csv image,class)" if "classes" not in flat else
             "%r with class names set: class-labelled data take target classes"
             % flat.get("target"))
    if "train_size" in flat:
        try:
            size_kind(flat["train_size"])
        except InputError as e:
            fail("train_size", str(e))
    _check_layers(flat, fail)


def _check_layers(flat, fail):
    """Layer names in the config must name layers of the network."""
    network = flat.get("network", "googlenet")
    names = [layer.name for layer in NETWORKS[network](2, aux_heads=True)]
    if "feature_layer" in flat and flat["feature_layer"] not in names:
        near = difflib.get_close_matches(flat["feature_layer"], names, n=1)
        fail("feature_layer", "%r is no layer of %s%s" % (
            flat["feature_layer"], network, " (did you mean %s?)" % near[0] if near else ""))
    for prefix in flat.get("freeze", []):
        if not any(name.startswith(prefix) for name in names):
            fail("freeze", "%r is the start of no layer name of %s" % (prefix, network))


def num_classes(config):
    """Outputs of the new classifiers: 2 for ``binary`` (referable or not), 5 for
    ``levels``, the data's classes for ``classes``."""
    if config["target"] == "classes":
        return len(config["classes"])
    return 2 if config["target"] == "binary" else 5


#: what a scenario becomes on class-labelled data (natural photographs): a softmax over
#: the data's classes, and the augmentation that suits photographs (left-right mirroring;
#: 90-degree rotations are the fundus recipe's and a reading of scenarios/ambiguities.toml)
CLASS_DATA = {"target": "classes", "rotations": [0], "flip": True}


def for_classes(config, classes, path):
    """``config`` on class-labelled data with ``classes`` (CLASS_DATA applied, the
    classes recorded); a scenario whose target cannot apply is refused by name."""
    if config.get("target") == "levels":
        raise InputError("%s: scenario %s grades five DR levels; it cannot apply to "
                         "class-labelled data" % (path, path.stem))
    out = merged(config, CLASS_DATA)
    out["classes"] = list(classes)
    return out


def parse_override(text):
    """``key=value`` (value in TOML syntax, else a string) -> (dotted key, value)."""
    if "=" not in text:
        raise InputError("override %r is not key=value" % text)
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads("v = " + raw)["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def merged(base, ours):
    """``ours`` over ``base``, tables merged key by key."""
    out = dict(base)
    for key, value in ours.items():
        out[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(
            base.get(key), dict) else value
    return out


def read_scenario_file(path, seen=()):
    """A scenario file's table; ``base = "4"`` takes scenario 4's file and changes only
    what this one sets (a chain of bases is followed; a loop is an error)."""
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise InputError("%s: %s" % (path, e))
    base = config.pop("base", None)
    if base is None:
        return config
    base_path = SCENARIOS / ("%s.toml" % base)
    if not isinstance(base, str) or not base_path.exists() or base_path in seen:
        raise InputError("%s: base = %r is no other scenario of %s" % (path, base, SCENARIOS))
    return merged(read_scenario_file(base_path, tuple(seen) + (path,)), config)


def scenario_files():
    """The scenario files of ``scenarios/``."""
    return sorted(p for p in SCENARIOS.glob("*.toml") if p not in NOT_SCENARIOS)


def load_scenario(name, overrides=(), classes=None):
    """The scenario's config dict, with ``overrides`` ("key=value") applied and the
    whole checked by ``validate``. ``classes``: the class names of class-labelled data
    the config is for (``for_classes`` applies before the overrides)."""
    path = Path(name) if str(name).endswith(".toml") else SCENARIOS / ("%s.toml" % name)
    if not path.exists() or path.resolve() in NOT_SCENARIOS:
        known = ", ".join(sorted(p.stem for p in scenario_files()))
        raise InputError("%s: no such scenario (known: %s)%s" % (
            path, known, "; it is the %s" % (
                "readings file of make ambiguities" if path.resolve() == AMBIGUITIES
                else "grid of make fourcases") if path.exists() else ""))
    config = read_scenario_file(path)
    config["scenario"] = path.stem
    if classes:
        config = for_classes(config, classes, path)
    origins = {}
    for item in overrides:
        key, value = parse_override(item)
        origins[key] = "--set " + item
        target = config
        *parents, last = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                raise InputError("--set %s: %s is not a table" % (item, parent))
        target[last] = value
    prototxt = config.get("solver_prototxt")
    if prototxt:
        if not isinstance(prototxt, str):
            validate(config, path, origins)  # reports the type
        try:
            settings = read_solver_prototxt(prototxt)
        except (OSError, ValueError) as e:
            raise InputError("%s: %s" % (prototxt, e))
        config["solver"] = dict(config.get("solver", {}), **settings)
        origins.update(("solver." + k, prototxt) for k in settings)
    validate(config, path, origins)
    return config
