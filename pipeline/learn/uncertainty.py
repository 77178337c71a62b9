"""Uncertainty per image: the samples of P(referable) under MC dropout's passes (the
trunk once, T classifier passes) and a seed ensemble's members."""
import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from .inference import mc_trunk


def ensemble_members(run_dir):
    """The finished runs beside ``run_dir`` that differ from it in the seed alone (the
    same recipe, fold, data and weights), one per seed (``run_dir`` for its own, else
    the newest), sorted."""
    from ..recipe.config import recipe
    from ..runs.rundir import is_view

    def key(path):
        config = json.loads((path / "config.json").read_text())
        env = json.loads((path / "environment.json").read_text())
        return ([kv for kv in recipe(config) if kv[0] != "seed"],
                env.get("data_sha1"), env.get("weights_sha1"))

    def seed(path):
        return json.loads((path / "config.json").read_text()).get("seed", 0)

    run_dir = Path(run_dir).resolve()
    ours = key(run_dir)
    by_seed = {}
    for p in sorted(run_dir.parent.iterdir()):  # names end in their start time
        if p.is_dir() and not p.is_symlink() and not is_view(p) and (p / "DONE").exists() \
                and (p / "config.json").exists() and key(p) == ours:
            by_seed[seed(p)] = p
    by_seed[seed(run_dir)] = run_dir
    return sorted(by_seed.values())


def ensemble_of(run_dir):
    """``ensemble_members``, an InputError when there are fewer than two."""
    members = ensemble_members(run_dir)
    if len(members) < 2:
        raise InputError("%s: UNCERTAINTY=ensemble needs several seeds of this recipe beside "
                         "it (make train SEEDS=0,1,2); there is one" % run_dir)
    return members


def mc_samples(run_dir, config, data, tta, passes, seed, desc, progress=True):
    """passes x N samples of P(referable) of the images of ``data`` (a Dataset) under MC
    dropout, with a progress bar (images x rotations)."""
    from tqdm import tqdm

    from models.mc_dropout import compile_head, dropout_below, mc_probs
    from models.model_io import load_model

    from ..data.dataset import caffe_batch
    from ..data.dataset import rotations
    from ..evidence.metrics import referable_score
    spec, input_shape, net = load_model(str(Path(run_dir) / "model.npz"))
    _, ratio = dropout_below(spec)
    trunk, head = mc_trunk(net, spec), compile_head(net, spec)
    crop, turns = input_shape[1], rotations(tta)
    with tqdm(total=len(data) * len(turns), unit="img", desc=desc, leave=False,
              disable=not progress) as bar:
        def batches(size=32):
            for start in range(0, len(data), size):
                positions = np.arange(start, min(start + size, len(data)))
                images = data.images(positions)
                inputs = []
                for degrees in turns:
                    inputs.append(caffe_batch(images, crop, np.full(len(positions),
                                                                    degrees // 90)))
                yield [data.names[i] for i in positions], inputs
                bar.update(len(positions) * len(turns))  # once mc_probs has scored them
        probs = mc_probs(trunk, head, batches(), passes, ratio, seed)
    return np.array([referable_score(p, config["target"], config.get("threshold", 2))
                     for p in probs])


def check_mc(run_dir):
    """InputError, before any image is read, when the run's network has no dropout
    below its classifier (the feature scenarios' linear classifiers)."""
    from models.googlenet import UnknownLayer
    from models.mc_dropout import dropout_below
    from models.model_io import load_spec
    try:
        dropout_below(load_spec(str(Path(run_dir) / "model.npz")))
    except UnknownLayer as e:
        raise InputError("%s: UNCERTAINTY=mc: %s" % (Path(run_dir) / "model.npz", e))
