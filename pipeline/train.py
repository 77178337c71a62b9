"""Train: the four transfer-learning scenarios (and ``scratch``), run as Caffe runs them.

The config (``recipe.config``, already validated) picks the method:
``finetune`` (2, 4, scratch; ``pipeline.finetune``) or ``features`` (1, 3;
``pipeline.features``). Everything that can be wrong with the inputs (data,
weights, the weights against the network) is found before a run directory
is made; then the run directory (``runs.rundir``) is the unfinished one
started with the same config, data and weights, or a new one.

A run directory ``runs/{scenario}-{timestamp}`` gets config.json,
environment.json, metrics.csv, checkpoint.npz, model.npz (the network with
its new head, Caffe layout), model.caffemodel + deploy.prototxt, and
learning_curves.png; ``runs/{scenario}-latest`` points at the last complete run.
"""
import contextlib
import os
from pathlib import Path

from models.fileio import sha1_of

from .data.dataset import data_classes
from .errors import InputError
from .learn.features import build_features_net, features_dir, train_features
from .learn.finetune import build_finetune_net, finetune
from .recipe.config import num_classes
from .runs.rundir import (environment, finished_run, link_view, new_run_dir, open_run,
                          point_latest, same_start)


def train(config, data_path, weights=None, runs_root="runs", progress=True, reuse=False,
          name=None, reuse_from=()):
    """Run (or resume) ``config`` on the preprocessed ``data_path``; returns the run
    directory, or None when stopped by a signal (the checkpoint is saved).

    ``reuse``: a finished run of the same config, data and weights, in ``runs_root``
    or the folders ``reuse_from``, is returned as it is (``runs.finished_run``: one
    that computed the same under another scenario name too) instead of training anew,
    and made ``{scenario}-latest`` when it is this scenario's own.
    ``name``: the run directory is ``runs_root/name`` (sweeps name theirs); a run
    reused from elsewhere is linked there.
    """
    if not os.path.exists(data_path):
        raise InputError("%s: no preprocessed data (run make preprocess)" % data_path)
    classes = data_classes(data_path)
    if config.get("classes") != classes:
        raise InputError("%s: %s; scenario %s was made for %s (make the config with the data's "
                         "classes: DATA=...)" % (
                             data_path, "classes %s" % ", ".join(classes) if classes
                             else "DR levels", config["scenario"],
                             "classes %s" % ", ".join(config["classes"])
                             if config.get("classes") else "DR levels"))
    pretrained = config.get("init", "pretrained") == "pretrained"
    if pretrained and weights and not os.path.exists(weights):
        raise InputError("%s: weights file not found (make weights, or WEIGHTS=...)" % weights)
    features = config["method"] == "features"
    # builds the net and loads the weights: a file that does not fit fails here
    built = (build_features_net if features else build_finetune_net)(
        config, num_classes(config), weights if pretrained else None)
    weights_sha1 = sha1_of(weights) if pretrained else None
    env = environment(config, data_path, sha1_of(data_path), weights, weights_sha1)
    done = reuse and finished_run(config, runs_root, env, name, reuse_from)
    if done:
        print("train: %s is a finished run of this config, data and weights: reused" % done)
        link = Path(runs_root) / name if name else None
        if not same_start(done, config, env["data_sha1"], weights_sha1):
            # the same computation under another scenario name: a view of it under this
            # config, so that it is reported as this scenario's run
            done = link_view(done, link or new_run_dir(Path(runs_root), config["scenario"]),
                             config)
        elif link and not os.path.lexists(link):
            link.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another task linked it first
                os.symlink(os.path.relpath(done, link.parent), link)
        if link and link.resolve() == done.resolve():
            done = link
        point_latest(done, config)
        return done
    with contextlib.ExitStack() as stack:
        run_dir, env = open_run(stack, config, runs_root, env, name)
        print("train: scenario %s (%s) in %s" % (config["scenario"],
                                                config.get("description", ""), run_dir))
        if features:
            return train_features(config, env, built, run_dir, features_dir(data_path))
        return finetune(config, data_path, built, run_dir, progress)
