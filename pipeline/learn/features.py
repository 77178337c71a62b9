"""Features (scenarios 1, 3): one activation blob, globally pooled, extracted
once into HDF5; a linear classifier (scikit-learn logistic / SVM, or a new
InnerProduct trained by the project's Caffe SGD solver) on top.
"""
import os
import time
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

import lasagne
from models import googlenet
from models.caffe_import import load_caffemodel
from models.fileio import atomic_path, sha1_of
from models.solver import learning_rate

from ..data.dataset import Dataset, class_weights, open_split
from ..errors import InputError
from ..evidence.metrics import validation_row
from ..recipe.config import num_classes
from .finetune import compile_training, finish
from .inference import forward_function


def extract_features(config, env, input_shape, net, cache_dir, view=(0, False)):
    """Globally pooled ``feature_layer`` activations of every usable image of the
    data, extracted once and cached in HDF5 under a name made of the data's and
    weights' checksums (from ``env``), the network, layer and crop: every split,
    fold and seed of a scenario reads the same file. ``view``: (quarter-turn degrees,
    mirrored) of the images, a file of its own (evaluation's TTA). Returns (the cache
    path, {"index": image index in the data file, "features": N x F})."""
    data_path = env["data"]
    degrees, mirrored = view
    key = "%s-%s-%s-%s-%s-%d%s%s" % (Path(data_path).stem, env["data_sha1"][:10],
                                     (env.get("weights_sha1") or "random")[:10],
                                     config.get("network", "googlenet"),
                                     config["feature_layer"].replace("/", "_"), input_shape[1],
                                     "-rot%d" % degrees if degrees else "",
                                     "-mirrored" if mirrored else "")
    path = Path(cache_dir) / (key + ".h5")
    if not path.exists():
        fn = forward_function(net, ["features/global_pool"])
        data = Dataset(data_path, "all")
        feats = []
        for start in tqdm(range(0, len(data), 32), desc="features", unit="batch"):
            pos = np.arange(start, min(start + 32, len(data)))
            x = data.batch(pos, input_shape[1], np.full(len(pos), degrees // 90),
                           np.full(len(pos), True) if mirrored else None)
            feats.append(fn(x)[0].reshape(len(pos), -1))
        with atomic_path(str(path)) as tmp, h5py.File(tmp, "w") as out:
            out["index"] = data.index
            out["features"] = np.concatenate(feats)
        data.close()
    with h5py.File(path, "r") as f:
        return path, {"index": f["index"][:], "features": f["features"][:]}


def cached_predictor(config, env, net, crop):
    """A stand-in for ``inference.predict`` of a feature run whose trunk is the
    pre-trained network, or None (a random trunk is its seed's own): (data path, Dataset,
    rotations, flips) -> class probabilities from the cached features of each view
    (extracted once per data file and view, for every run on it), the run's classifier
    applied in NumPy. Equal to the network's forward pass to float32 rounding."""
    if config.get("method") != "features" or not env.get("weights_sha1") or \
            config.get("init", "pretrained") != "pretrained":
        return None
    W = net["loss3/classifier"].W.get_value().astype(np.float64)  # F x K
    b = net["loss3/classifier"].b.get_value().astype(np.float64)

    def forward(data_path, data, rotations=(0,), flips=(False,)):
        where = {"data": str(data_path), "data_sha1": sha1_of(data_path),
                 "weights_sha1": env["weights_sha1"]}
        views = [(degrees, flip) for flip in flips for degrees in rotations]
        probs = 0
        for view in views:
            _, cache = extract_features(config, where, (3, crop, crop), net,
                                        features_dir(data_path), view)
            probs = probs + softmax_rows(features_of(cache, data) @ W + b)
        return (probs / len(views)).astype(np.float32)
    return forward


def features_of(cache, data):
    """The rows of the cached features for the images of Dataset ``data``."""
    row = {int(i): k for k, i in enumerate(cache["index"])}
    return cache["features"][[row[int(i)] for i in data.index]]


def fit_linear(config, X, y, num_classes):
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


def build_features_net(config, num_classes, weights):
    """(spec, input_shape, net): the network cut after ``feature_layer``, globally
    pooled, with a new ``loss3/classifier``; the rest from ``weights`` when
    ``init`` is pretrained."""
    lasagne.random.set_rng(np.random.RandomState(config.get("seed", 0)))
    base = googlenet.NETWORKS[config.get("network", "googlenet")](1000)
    spec = googlenet.features_spec(base, config["feature_layer"], num_classes)
    crop = config.get("crop", 224)
    input_shape = (3, crop, crop)
    net = googlenet.build(spec, input_shape=input_shape)
    if config.get("init", "pretrained") == "pretrained":
        if not weights:
            raise InputError("scenario %s needs pre-trained weights (WEIGHTS=...)" % config["scenario"])
        load_caffemodel(net, weights, skip=["loss3/classifier"])
    return spec, input_shape, net


def train_features(config, env, built, run_dir, cache_dir):
    """Extract (or reuse) the features, fit the linear classifier, publish the run."""
    start = time.time()
    data_path = env["data"]
    train, val = open_split(data_path, "train", config), open_split(data_path, "val", config)
    spec, input_shape, net = built
    path, cache = extract_features(config, env, input_shape, net, cache_dir)
    feats = {"train": features_of(cache, train), "val": features_of(cache, val)}
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


def prepare_features(config, data_path, weights):
    """Extract (or find) the cached features ``config``'s runs on ``data_path`` will
    read: sweeps do this once, before their tasks start."""
    pretrained = config.get("init", "pretrained") == "pretrained"
    _, input_shape, net = build_features_net(config, num_classes(config),
                                             weights if pretrained else None)
    env = {"data": os.path.abspath(data_path), "data_sha1": sha1_of(data_path),
           "weights_sha1": sha1_of(weights) if pretrained else None}
    path, _ = extract_features(config, env, input_shape, net, features_dir(data_path))
    return path


def features_dir(data_path):
    """Where the features of a preprocessed file are cached: ``features/`` beside it."""
    return Path(data_path).parent / "features"
