"""Train: the four transfer-learning scenarios (and ``scratch``), run as Caffe runs them.

A scenario is a small TOML file in ``scenarios/`` (overridable: ``key=value``,
``solver.base_lr=0.001``). Two methods:

- ``finetune`` (2, 4, scratch): GoogLeNet with new classifiers, per-layer
  lr/decay multipliers (frozen layers: lr_mult 0), Caffe's SGD solver,
  class-balanced sampling or loss weights, rotations as augmentation,
  validation every epoch, atomic checkpoints (every epoch and at SIGINT/SIGTERM)
  from which a rerun resumes bit-identically.
- ``features`` (1, 3): one activation blob, globally pooled, extracted once
  into HDF5; a linear classifier (scikit-learn logistic / SVM, or a new
  InnerProduct trained by the same SGD solver) on top.

A run directory ``runs/{scenario}-{timestamp}`` gets config.json,
environment.json, metrics.csv, checkpoint.npz, model.npz (the network with
its new head, Caffe layout), model.caffemodel + deploy.prototxt, and
learning_curves.png; ``runs/{scenario}-latest`` points at the last complete run.
"""
import csv
import json
import os
import platform
import signal
import sys
import time
import tomllib
from pathlib import Path

import h5py
import numpy as np
import theano
import theano.tensor as T
from tqdm import tqdm

import lasagne
from models import googlenet
from models.caffe_import import load_caffemodel
from models.fileio import atomic_path, atomic_write_bytes, sha1_of
from models.model_io import export_caffe, save_model
from models.solver import layer_multipliers, learning_rate, read_solver_prototxt, sgd_updates

from .dataset import Dataset, balanced_positions, class_weights
from .errors import InputError
from .metrics import screening_metrics

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
CLASSIFIERS = ("loss3/classifier", "loss1/classifier", "loss2/classifier")
METRIC_FIELDS = ["epoch", "iteration", "lr", "train_loss", "train_accuracy", "val_loss",
                 "val_accuracy", "val_kappa", "val_auc", "seconds"]


# ---------------------------------------------------------------- configuration

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


def load_scenario(name, overrides=()):
    """The scenario's config dict, with ``overrides`` ("key=value") applied."""
    path = Path(name) if str(name).endswith(".toml") else SCENARIOS / ("%s.toml" % name)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.toml")))
        raise InputError("%s: no such scenario (known: %s)" % (path, known))
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise InputError("%s: %s" % (path, e))
    config["scenario"] = path.stem
    for item in overrides:
        key, value = parse_override(item)
        target = config
        *parents, last = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[last] = value
    if config.get("solver_prototxt"):
        try:
            config["solver"] = dict(config.get("solver", {}),
                                    **read_solver_prototxt(config["solver_prototxt"]))
        except (OSError, ValueError) as e:
            raise InputError("%s: %s" % (config["solver_prototxt"], e))
    return config


def environment(config, data, weights):
    """What a reviewer needs to rerun: versions, flags, inputs and their checksums."""
    import PIL
    import scipy
    import sklearn
    env = {"command": " ".join(sys.argv), "python": platform.python_version(),
           "platform": platform.platform(), "cpus": os.cpu_count(),
           "numpy": np.__version__, "scipy": scipy.__version__, "theano": theano.__version__,
           "lasagne": lasagne.__version__, "h5py": h5py.__version__, "pillow": PIL.__version__,
           "scikit-learn": sklearn.__version__, "theano_flags": os.environ.get("THEANO_FLAGS", ""),
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "seed": config.get("seed"),
           "data": os.path.abspath(data), "data_sha1": sha1_of(data)}
    if weights and config.get("init") == "pretrained":
        env.update(weights=os.path.abspath(weights), weights_sha1=sha1_of(weights))
    return env


def find_or_make_run_dir(config, runs_root):
    """An unfinished run of the same config (to resume), else a new directory."""
    runs_root = Path(runs_root)
    for candidate in sorted(runs_root.glob("%s-2*" % config["scenario"]), reverse=True):
        try:
            same = json.loads((candidate / "config.json").read_text()) == config
        except (OSError, ValueError):
            continue
        if same and not (candidate / "DONE").exists():
            return candidate
    run_dir = runs_root / ("%s-%s" % (config["scenario"], time.strftime("%Y%m%d-%H%M%S")))
    run_dir.mkdir(parents=True, exist_ok=False)
    atomic_write_bytes(run_dir / "config.json", json.dumps(config, indent=2).encode())
    return run_dir


def write_metrics(run_dir, rows):
    with atomic_path(str(run_dir / "metrics.csv")) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, METRIC_FIELDS)
            writer.writeheader()
            writer.writerows(rows)


def finish(run_dir, config, spec, net, input_shape, rows):
    """model.npz, the Caffe export, the learning curves, DONE, and the -latest link."""
    from .plots import plot_learning_curves
    save_model(str(run_dir / "model.npz"), spec, net, input_shape)
    export_caffe(spec, net, input_shape, str(run_dir))
    write_metrics(run_dir, rows)
    plot_learning_curves(rows, str(run_dir / "learning_curves.png"), config["scenario"])
    atomic_write_bytes(run_dir / "DONE", time.strftime("%Y-%m-%d %H:%M:%S\n").encode())
    link = run_dir.parent / ("%s-latest" % config["scenario"])
    tmp = run_dir.parent / (".%s-latest.tmp" % config["scenario"])
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


# ------------------------------------------------------------------ evaluation

def predict(fn, data, crop, batch_size=32, rotations=(0,)):
    """Class probabilities over a whole split, averaged over ``rotations`` (degrees)."""
    probs = 0
    for degrees in rotations:
        parts = []
        for start in range(0, len(data), batch_size):
            pos = np.arange(start, min(start + batch_size, len(data)))
            parts.append(fn(data.batch(pos, crop, np.full(len(pos), degrees // 90)))[0])
        probs = probs + np.concatenate(parts)
    return probs / len(rotations)


def validation_row(probs, data, config):
    m = screening_metrics(probs, data.levels, config["target"], config.get("threshold", 2))
    loss = -np.mean(np.log(np.clip(probs[np.arange(len(data)), data.targets], 1e-12, None)))
    return {"val_loss": float(loss), "val_accuracy": m["accuracy"], "val_kappa": m["kappa"],
            "val_auc": m["auc"]}


# -------------------------------------------------------------------- finetune

def build_finetune_net(config, num_classes, weights):
    lasagne.random.set_rng(np.random.RandomState(config.get("seed", 0)))
    aux = config.get("aux_heads", False) and config.get("network", "googlenet") == "googlenet"
    spec = googlenet.NETWORKS[config.get("network", "googlenet")](num_classes, aux_heads=aux)
    crop = config.get("crop", 224)
    input_shape = (3, crop, crop)
    net = googlenet.build(spec, input_shape=input_shape)
    heads = [h for h in CLASSIFIERS if h in net]
    if config.get("init", "pretrained") == "pretrained":
        if not weights:
            raise InputError("scenario %s needs pre-trained weights (WEIGHTS=...)" % config["scenario"])
        load_caffemodel(net, weights, skip=heads)
    return spec, input_shape, net, heads


def compile_training(net, heads, config):
    """(train_fn(x, y, w) -> [loss, accuracy], rate shared var, histories, frozen params)."""
    solver = config["solver"]
    x = net["data"].input_var
    y, w = T.ivector("labels"), T.vector("loss_weights")
    logits = lasagne.layers.get_output([net[h] for h in heads], deterministic=False)
    losses = [T.sum(w * T.nnet.categorical_crossentropy(T.nnet.softmax(z), y)) / T.sum(w)
              for z in logits]
    loss = losses[0] + 0.3 * sum(losses[1:])  # Caffe's loss_weight 0.3 for the aux heads
    accuracy = T.mean(T.eq(T.argmax(logits[0], axis=1), y))
    mults = layer_multipliers(net, frozen=config.get("freeze", []), new_layers=heads,
                              new_mults=(tuple(config.get("new_lr_mult", (10, 20))),
                                         tuple(config.get("new_decay_mult", (1, 0)))))
    rate = theano.shared(np.float32(0), name="rate")
    updates, histories = sgd_updates(loss, mults, rate, solver.get("momentum", 0.9),
                                     solver.get("weight_decay", 0.0))
    fn = theano.function([x, y, w], [loss, accuracy], updates=updates)
    frozen = [p for p, lr, _ in mults if lr == 0]
    return fn, rate, histories, frozen


def dropout_states(net):
    """The shared random states of the dropout layers (after the train graph is built)."""
    return [state for layer in net.values() if isinstance(layer, lasagne.layers.DropoutLayer)
            for state, *_ in getattr(layer._srng, "state_updates", [])]


def epoch_plan(config, train, epoch, iterations):
    """(positions, quarter turns) of every batch of ``epoch``: drawn from (seed, epoch)
    alone, so a run resumed mid-epoch replays exactly the same batches."""
    rng = np.random.RandomState([config.get("seed", 0), epoch])
    n = iterations * config["batch_size"]
    if config.get("balance") == "sampling":
        positions = balanced_positions(train.targets, n, rng)
    else:
        positions = np.concatenate([rng.permutation(len(train))
                                    for _ in range(-(-n // len(train)))])[:n]
    turns = rng.choice([d // 90 for d in config.get("rotations", [0])], size=n)
    return positions.reshape(iterations, -1), turns.reshape(iterations, -1)


def save_checkpoint(path, state):
    with atomic_path(str(path)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **state)


def finetune(config, data_path, weights, run_dir, progress=True):
    train = Dataset(data_path, "train", config["target"], config.get("threshold", 2))
    val = Dataset(data_path, "val", config["target"], config.get("threshold", 2))
    spec, input_shape, net, heads = build_finetune_net(config, train.num_classes, weights)
    crop = input_shape[1]
    train_fn, rate, histories, _ = compile_training(net, heads, config)
    infer = googlenet.compile_forward(net, ["prob"])
    params = lasagne.layers.get_all_params(list(net.values()))
    history_vars = list(histories.values())
    states = dropout_states(net)
    weights_of_class = (class_weights(train.targets, train.num_classes)
                        if config.get("balance") == "loss_weights"
                        else np.ones(train.num_classes, np.float32))
    iterations = -(-len(train) // config["batch_size"])
    solver = dict(config["solver"])
    solver.setdefault("max_iter", iterations * config["epochs"])
    checkpoint = run_dir / "checkpoint.npz"
    epoch, it_in_epoch, rows, sums = 0, 0, [], np.zeros(3)
    if checkpoint.exists():  # resume: every value the next step depends on
        with np.load(checkpoint) as ck:
            for i, p in enumerate(params):
                p.set_value(ck["param%d" % i])
            for i, h in enumerate(history_vars):
                h.set_value(ck["history%d" % i])
            for i, s in enumerate(states):
                s.set_value(ck["dropout%d" % i])
            epoch, it_in_epoch = int(ck["epoch"]), int(ck["it_in_epoch"])
            rows, sums = json.loads(str(ck["rows"])), ck["sums"]
        print("train: resuming %s at epoch %d, iteration %d" % (run_dir, epoch + 1, it_in_epoch))

    def state():
        s = {"param%d" % i: p.get_value() for i, p in enumerate(params)}
        s.update({"history%d" % i: h.get_value() for i, h in enumerate(history_vars)})
        s.update({"dropout%d" % i: d.get_value() for i, d in enumerate(states)})
        s.update(epoch=epoch, it_in_epoch=it_in_epoch, rows=json.dumps(rows), sums=sums)
        return s

    stop = []
    handlers = {sig: signal.signal(sig, lambda *_: stop.append(1))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while epoch < config["epochs"]:
            start = time.time()
            positions, turns = epoch_plan(config, train, epoch, iterations)
            bar = tqdm(total=iterations, initial=it_in_epoch, disable=not progress,
                       desc="epoch %d/%d" % (epoch + 1, config["epochs"]), unit="batch")
            while it_in_epoch < iterations:
                if stop:
                    save_checkpoint(checkpoint, state())
                    print("train: stopped; checkpoint saved, run again to resume", file=sys.stderr)
                    return None
                it = epoch * iterations + it_in_epoch
                rate.set_value(np.float32(learning_rate(solver, it)))
                pos = positions[it_in_epoch]
                y = train.targets[pos]
                loss, acc = train_fn(train.batch(pos, crop, turns[it_in_epoch]), y,
                                     weights_of_class[y])
                sums += (loss * len(pos), acc * len(pos), len(pos))
                it_in_epoch += 1
                bar.update(1)
                bar.set_postfix(loss="%.3f" % (sums[0] / sums[2]), acc="%.2f" % (sums[1] / sums[2]))
            bar.close()
            row = {"epoch": epoch + 1, "iteration": (epoch + 1) * iterations,
                   "lr": learning_rate(solver, (epoch + 1) * iterations - 1),
                   "train_loss": sums[0] / sums[2], "train_accuracy": sums[1] / sums[2]}
            row.update(validation_row(predict(infer, val, crop), val, config))
            row["seconds"] = round(time.time() - start, 1)
            rows.append(row)
            print("epoch %d: %s" % (epoch + 1, ", ".join(
                "%s=%.4g" % (k, v) for k, v in row.items() if k not in ("epoch",))))
            epoch, it_in_epoch, sums = epoch + 1, 0, np.zeros(3)
            save_checkpoint(checkpoint, state())
            write_metrics(run_dir, rows)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    finish(run_dir, config, spec, net, input_shape, rows)
    return run_dir


# -------------------------------------------------------------------- features

def extract_features(config, env, spec, input_shape, net, cache_dir):
    """Globally pooled ``feature_layer`` activations of every split, cached in HDF5
    under a name made of the data's and weights' checksums (from ``env``)."""
    data_path = env["data"]
    key = "%s-%s-%s-%s-%d" % (Path(data_path).stem, env["data_sha1"][:10],
                              env.get("weights_sha1", "random")[:10],
                              config["feature_layer"].replace("/", "_"), config.get("seed", 0))
    path = Path(cache_dir) / (key + ".h5")
    if not path.exists():
        fn = googlenet.compile_forward(net, ["features/global_pool"])
        crop = input_shape[1]
        with atomic_path(str(path)) as tmp, h5py.File(tmp, "w") as out:
            for split in ("train", "val", "test"):
                data = Dataset(data_path, split, config["target"], config.get("threshold", 2))
                feats = []
                for start in tqdm(range(0, len(data), 32), desc="features " + split, unit="batch"):
                    pos = np.arange(start, min(start + 32, len(data)))
                    feats.append(fn(data.batch(pos, crop))[0].reshape(len(pos), -1))
                out[split] = np.concatenate(feats) if feats else np.zeros((0, 1), np.float32)
                data.close()
    with h5py.File(path, "r") as f:
        return {split: f[split][:] for split in ("train", "val", "test")}, path


def fit_linear(config, X, y, num_classes, Xval=None, yval=None):
    """(W (K x F), b (K,)) of a linear softmax classifier on features X.

    logistic / svm: scikit-learn on standardised features, folded back into
    W and b of the raw features. theano: an InnerProduct trained by Caffe SGD.
    """
    balanced = config.get("balance", "none") != "none"
    if config["classifier"] in ("logistic", "svm"):
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC
        scaler = StandardScaler().fit(X)
        weight = "balanced" if balanced else None
        if config["classifier"] == "logistic":
            model = LogisticRegression(C=config.get("C", 1.0), class_weight=weight, max_iter=5000)
        else:
            model = LinearSVC(C=config.get("C", 1.0), class_weight=weight, max_iter=20000)
        model.fit(scaler.transform(X), y)
        coef, intercept = model.coef_, model.intercept_
        if coef.shape[0] == 1:  # binary: softmax over (0, z) is the logistic sigmoid
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.array([0.0, intercept[0]])
        W = coef / scaler.scale_
        b = intercept - (coef * scaler.mean_ / scaler.scale_).sum(axis=1)
        return W.astype(np.float32), b.astype(np.float32)
    if config["classifier"] != "theano":
        raise InputError("classifier must be logistic, svm or theano, not %r" % config["classifier"])
    lasagne.random.set_rng(np.random.RandomState(config.get("seed", 0)))
    spec = [googlenet.inner_product("loss3/classifier", "data", num_classes, bias=0.0)]
    mean, std = X.mean(axis=0), X.std(axis=0) + 1e-6
    net = googlenet.build(spec, input_shape=(X.shape[1],))
    heads = ["loss3/classifier"]
    train_fn, rate, _, _ = compile_training(net, heads, dict(config, freeze=[]))
    Xs, rng = ((X - mean) / std).astype(np.float32), np.random.RandomState(config.get("seed", 0))
    weights = class_weights(y, num_classes) if balanced else np.ones(num_classes, np.float32)
    iterations = -(-len(X) // config["batch_size"])
    solver = dict(config["solver"], max_iter=iterations * config["epochs"])
    for epoch in range(config["epochs"]):
        for i in range(iterations):
            rate.set_value(np.float32(learning_rate(solver, epoch * iterations + i)))
            pos = rng.randint(0, len(X), config["batch_size"])
            train_fn(Xs[pos], y[pos].astype(np.int32), weights[y[pos]])
    W = net["loss3/classifier"].W.get_value().T / std
    b = net["loss3/classifier"].b.get_value() - (W * mean).sum(axis=1)
    return W.astype(np.float32), b.astype(np.float32)


def softmax_rows(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def train_features(config, env, weights, run_dir, cache_dir):
    start = time.time()
    data_path = env["data"]
    lasagne.random.set_rng(np.random.RandomState(config.get("seed", 0)))
    train = Dataset(data_path, "train", config["target"], config.get("threshold", 2))
    val = Dataset(data_path, "val", config["target"], config.get("threshold", 2))
    base = googlenet.NETWORKS[config.get("network", "googlenet")](1000)
    spec = googlenet.features_spec(base, config["feature_layer"], train.num_classes)
    crop = config.get("crop", 224)
    input_shape = (3, crop, crop)
    net = googlenet.build(spec, input_shape=input_shape)
    if config.get("init", "pretrained") == "pretrained":
        if not weights:
            raise InputError("scenario %s needs pre-trained weights (WEIGHTS=...)" % config["scenario"])
        load_caffemodel(net, weights, skip=["loss3/classifier"])
    feats, path = extract_features(config, env, spec, input_shape, net, cache_dir)
    print("train: features %s from %s" % (feats["train"].shape, path))
    W, b = fit_linear(config, feats["train"], train.targets, train.num_classes)
    net["loss3/classifier"].W.set_value(np.ascontiguousarray(W.T))
    net["loss3/classifier"].b.set_value(b)
    train_probs = softmax_rows(feats["train"] @ W.T + b)
    picked = train_probs[np.arange(len(train)), train.targets]
    row = {"epoch": 1, "iteration": 1, "lr": 0.0,
           "train_loss": float(-np.mean(np.log(np.clip(picked, 1e-12, None)))),
           "train_accuracy": float((train_probs.argmax(axis=1) == train.targets).mean())}
    row.update(validation_row(softmax_rows(feats["val"] @ W.T + b), val, config))
    row["seconds"] = round(time.time() - start, 1)
    print("train: %s" % ", ".join("%s=%.4g" % (k, v) for k, v in row.items()))
    finish(run_dir, config, spec, net, input_shape, [row])
    return run_dir


def train(config, data_path, weights=None, runs_root="runs", progress=True):
    """Run (or resume) ``config`` on the preprocessed ``data_path``; returns the run
    directory, or None when stopped by a signal (the checkpoint is saved)."""
    if not os.path.exists(data_path):
        raise InputError("%s: no preprocessed data (run make preprocess)" % data_path)
    if weights and config.get("init") == "pretrained" and not os.path.exists(weights):
        raise InputError("%s: weights file not found (make weights, or WEIGHTS=...)" % weights)
    run_dir = find_or_make_run_dir(config, runs_root)
    env_path = run_dir / "environment.json"
    if env_path.exists():  # a resumed run keeps what it started with
        env = json.loads(env_path.read_text())
    else:
        env = environment(config, data_path, weights)
        atomic_write_bytes(env_path, json.dumps(env, indent=2).encode())
    print("train: scenario %s (%s) in %s" % (config["scenario"], config.get("description", ""),
                                            run_dir))
    if config["method"] == "features":
        return train_features(config, env, weights, run_dir, Path(data_path).parent / "features")
    return finetune(config, data_path, weights, run_dir, progress)
