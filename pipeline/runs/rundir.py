"""Run directories: what a run was started with, which directory to resume, the
locks that keep two processes out of one directory, and publishing results.

A run directory ``runs/{scenario}-{timestamp}[-n]`` holds config.json and
environment.json from its start; a later ``train`` resumes it only when the
config, the data's SHA1 and the weights' SHA1 are all the ones asked for now.
While a process trains in it, it holds ``.lock`` there; directories are
found or made under ``runs/.lock``, so two processes never pick the same one.
"""
import contextlib
import csv
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

from models.fileio import atomic_path, atomic_write_bytes, exclusive, sha1_of

from ..errors import InputError

METRIC_FIELDS = ["epoch", "iteration", "lr", "train_loss", "train_accuracy", "val_loss",
                 "val_accuracy", "val_kappa", "val_auc", "val_mean_class_accuracy", "seconds",
                 "data_wait"]


def command_line():
    """The command that started this process, as its user typed it: ``make <goals>
    <VAR=value ...>`` when the Makefile started it (it exports ``DRT_MAKE_COMMAND``, the
    outermost make's goals and command-line variables), else ``python -m pipeline ...``."""
    made = re.findall(r"(?:\\ |\S)+", os.environ.get("DRT_MAKE_COMMAND", ""))
    if made:  # make lists the command line's variables last first
        words = [w for w in made if "=" not in w] + [w for w in made if "=" in w][::-1]
        return " ".join(re.sub(r"^(\w+)=(.*\\ .*)$", lambda m: "%s='%s'" % (
            m.group(1), m.group(2).replace("\\ ", " ")), word) for word in words)
    return " ".join(["python -m pipeline"] + sys.argv[1:])


def environment(config, data, data_sha1, weights, weights_sha1):
    """What a reviewer needs to rerun: versions, flags, device, inputs and their checksums."""
    import importlib
    import numpy as np
    from models import blas
    from models.device import describe
    env = {"command": command_line(), "argv": sys.argv, "python": platform.python_version(),
           "platform": platform.platform(), "cpus": os.cpu_count(), "numpy": np.__version__}
    for name, module in (("scipy", "scipy"), ("theano", "theano"), ("lasagne", "lasagne"),
                         ("h5py", "h5py"), ("pillow", "PIL"), ("scikit-learn", "sklearn")):
        try:  # the offline GPU bundle has no scipy or scikit-learn
            env[name] = importlib.import_module(module).__version__
        except ImportError:
            env[name] = "not installed"
    env.update({"theano_flags": os.environ.get("THEANO_FLAGS", ""),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "device": describe(),
                "blas": blas.describe(),
                "seed": config.get("seed"), "data": os.path.abspath(data), "data_sha1": data_sha1})
    if weights_sha1:
        env.update(weights=os.path.abspath(weights), weights_sha1=weights_sha1)
    env["code"] = code_version()
    return env


def code_version():
    """The project's git commit, with "+changes" when the work tree differs from it."""
    import subprocess
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return (commit or "unknown (not a git checkout)") + ("+changes" if dirty.strip() else "")


def same_start(run_dir, config, data_sha1, weights_sha1, device=None, by_recipe=False):
    """Whether ``run_dir`` was started with this config, data and weights (and, given
    ``device``, on that device: a run is resumed only where it started, so that it
    ends as an uninterrupted run there would). ``by_recipe``: whether it computed what
    ``config`` asks for under any scenario name (``config.recipe``)."""
    from ..recipe.config import recipe
    try:
        started = json.loads((run_dir / "config.json").read_text())
        env = json.loads((run_dir / "environment.json").read_text())
    except (OSError, ValueError):
        return False
    same = recipe(started) == recipe(config) if by_recipe else started == config
    return (same and env.get("data_sha1") == data_sha1
            and env.get("weights_sha1") == weights_sha1
            and (device is None or device_of(env) == device))


def device_of(env):
    """The device a run's environment record names (runs before DEVICE existed: cpu)."""
    return env.get("device", {}).get("device", "cpu")


def new_run_dir(runs_root, scenario):
    """A fresh ``{scenario}-{timestamp}`` directory, ``-2``, ``-3``... when taken."""
    base = runs_root / ("%s-%s" % (scenario, time.strftime("%Y%m%d-%H%M%S")))
    for n in range(1, 1000):
        run_dir = base if n == 1 else base.with_name("%s-%d" % (base.name, n))
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise FileExistsError(base)


def candidates(runs_root, scenario):
    """The run directories of ``scenario`` under ``runs_root``, newest name first."""
    return sorted((p for p in Path(runs_root).glob("%s-*" % scenario)
                   if p.is_dir() and not p.is_symlink()), reverse=True)


def finished_run(config, runs_root, env, name=None, reuse_from=()):
    """A finished run of this config, data and weights, or None: ``runs_root/name`` if
    it is one; else the newest such run in ``runs_root`` or ``reuse_from`` (folders of
    runs; links included), started under this scenario name or, computing the same
    (``same_start(..., by_recipe=True)``), under another."""
    if name and (Path(runs_root) / name / "DONE").exists() and same_start(
            Path(runs_root) / name, config, env["data_sha1"], env.get("weights_sha1")):
        return Path(runs_root) / name
    seen, found = set(), []
    for root in [Path(runs_root)] + [Path(r) for r in reuse_from]:
        for candidate in sorted(root.glob("*"), reverse=True) if root.is_dir() else []:
            real = candidate.resolve()
            if real in seen or not (real / "DONE").exists():
                continue
            seen.add(real)
            if same_start(real, config, env["data_sha1"], env.get("weights_sha1"),
                          by_recipe=True):
                exact = same_start(real, config, env["data_sha1"], env.get("weights_sha1"))
                found.append((not exact, real))
    return min(found, key=lambda f: f[0])[1] if found else None


def reusable(config, data_path, weights, runs_root, name=None, reuse_from=()):
    """Whether ``train(reuse=True, name=name, reuse_from=reuse_from)`` would reuse a
    finished run of ``config`` on this data and weights (``finished_run``), asked by a
    plan before anything trains: False while the data file, or the pretrained weights
    a config needs, are not there yet."""
    sha1s = input_sha1s(config, data_path, weights)
    if sha1s is None:
        return False
    env = {"data_sha1": sha1s[0], "weights_sha1": sha1s[1]}
    return finished_run(config, runs_root, env, name, reuse_from) is not None


def input_sha1s(config, data_path, weights):
    """(data SHA1, weights SHA1 or None when ``config`` starts from no weights), as a run
    of ``config`` records them; None while the data file, or weights it needs, are not
    there yet."""
    pretrained = config.get("init", "pretrained") == "pretrained"
    if not os.path.isfile(data_path) or (pretrained and not (weights and
                                                             os.path.isfile(weights))):
        return None
    return sha1_of(data_path), sha1_of(weights) if pretrained else None


def open_run(stack, config, runs_root, env, name=None):
    """The run directory to train in, locked for the life of ``stack`` (an ExitStack):
    the unfinished run started with the same config, data and weights, else a new
    one; with ``name``, exactly ``runs_root/name`` (an error if it was started with
    anything else). Raises fileio.Busy when another process is training that run."""
    runs_root = Path(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    with exclusive(str(runs_root / ".lock"), runs_root, wait=True):  # held for a moment
        if name:
            return _open_named(stack, config, runs_root / name, env)
        for candidate in candidates(runs_root, config["scenario"]):
            if (not (candidate / "DONE").exists()
                    and same_start(candidate, config, env["data_sha1"], env.get("weights_sha1"),
                                   device_of(env))):
                stack.enter_context(exclusive(str(candidate / ".lock"),
                                              "run %s (the same config, data and weights)"
                                              % candidate))
                return candidate, json.loads((candidate / "environment.json").read_text())
        return _start(stack, config, new_run_dir(runs_root, config["scenario"]), env)


def _start(stack, config, run_dir, env):
    stack.enter_context(exclusive(str(run_dir / ".lock"), "run %s" % run_dir))
    atomic_write_bytes(run_dir / "config.json", json.dumps(config, indent=2).encode())
    atomic_write_bytes(run_dir / "environment.json", json.dumps(env, indent=2).encode())
    return run_dir, env


def _open_named(stack, config, run_dir, env):
    if not (run_dir / "config.json").exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        return _start(stack, config, run_dir, env)
    if not same_start(run_dir, config, env["data_sha1"], env.get("weights_sha1")):
        raise InputError("%s: started with another config, data or weights; remove it or "
                         "choose another name" % run_dir)
    started = json.loads((run_dir / "environment.json").read_text())
    if not (run_dir / "DONE").exists() and device_of(started) != device_of(env):
        raise InputError("%s: started on DEVICE=%s; resume it there, or choose another name"
                         % (run_dir, device_of(started)))
    stack.enter_context(exclusive(str(run_dir / ".lock"), "run %s" % run_dir))
    return run_dir, json.loads((run_dir / "environment.json").read_text())


def write_metrics(run_dir, rows):
    with atomic_path(str(run_dir / "metrics.csv")) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, METRIC_FIELDS)
            writer.writeheader()
            writer.writerows(rows)


def point_latest(run_dir, config):
    """Make ``{scenario}-latest`` beside ``run_dir`` point at it (atomically); never to a
    fold of a cross-validation (``make evaluate RUN=runs/1-latest`` is the scenario's own
    split, not one fold's)."""
    if "folds" in config:
        return
    scenario = config["scenario"]
    link = run_dir.parent / ("%s-latest" % scenario)
    tmp = run_dir.parent / (".%s-latest.%d.tmp" % (scenario, os.getpid()))
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


#: what a view of a run shares with it: the trained run, not its evaluations
VIEW_FILES = ("DONE", "config.json", "environment.json", "model.npz", "metrics.csv",
              "learning_curves.png")


def link_view(run_dir, view_dir, config=None):
    """``view_dir``: the finished run ``run_dir`` (its files linked, not copied) with room
    for evaluations of its own, so that one trained run is evaluated in two ways (with
    and without TTA) side by side; with ``config``, under that config (another scenario
    name for the same recipe: its own ``config.json``). Idempotent; the links point at
    the resolved run."""
    real = Path(run_dir).resolve()
    if not (real / "DONE").exists():
        raise InputError("%s: not a finished run to view" % run_dir)
    view_dir = Path(view_dir)
    view_dir.mkdir(parents=True, exist_ok=True)
    if config is not None and not (view_dir / "config.json").exists():
        atomic_write_bytes(view_dir / "config.json", json.dumps(config, indent=2).encode())
    for name in VIEW_FILES:
        if (real / name).exists() and not os.path.lexists(view_dir / name):
            with contextlib.suppress(FileExistsError):
                os.symlink(real / name, view_dir / name)
    return view_dir


def is_view(run_dir):
    """Whether ``run_dir`` is another evaluation of a run (``link_view`` without a config
    of its own), not a run of its own."""
    return (Path(run_dir) / "config.json").is_symlink()


def val_predictions_path(run_dir, tta):
    from ..data.dataset import rotations
    """Where the validation predictions of an evaluation with (without) TTA are kept."""
    return Path(run_dir) / ("val_predictions-%drot.npz" % len(rotations(tta)))
