"""An independent check of the Caltech-101 subset's "similar data" result: BVLC
GoogLeNet features from OpenCV's own Caffe importer, classified by scikit-learn.

Nothing of ``pipeline/`` or ``models/`` is used: the network is BVLC's deploy
GoogLeNet, its prototxt written below from BVLC's ``models/bvlc_googlenet/
deploy.prototxt`` (cut after ``pool5/7x7_s1``, the layers the features need), read
with the real weights by ``cv2.dnn.readNetFromCaffe``.

Preprocessing, as Caffe prepares ImageNet: each image decoded by OpenCV (BGR,
uint8), warped to 256×256 (``cv2.resize``, bilinear, aspect ignored), the central
224×224 cropped, and BVLC's per-channel mean B=104, G=117, R=123 subtracted (the
GoogLeNet deploy's, not the 256×256 mean image); the blob is (N, 3, 224, 224)
float32, BGR.

Features, per image:
  - ``pool5/7x7_s1``: (1024,), the 7×7 average pool before the classifier;
  - ``inception_4a/output`` averaged over its 14×14 positions: (512,), taken from a
    global average pooling layer added to the prototxt (``inception_4a/gap``).

Classifier: StandardScaler + LogisticRegression(max_iter=5000) fitted on the
training folds of a 5-fold StratifiedKFold (shuffle, random_state=0). Reported:
the accuracy of all out-of-fold predictions pooled, and the mean ± sd (ddof=1) of
the five folds' accuracies; "two per class" trains on 2 images per class of each
training fold (the first 2 of ``RandomState(fold).permutation`` of that class's
training images) and tests on the same held-out fold.

    .venv/bin/python -m tools.caltech_check --data ../shared/data/caltech101-subset \\
        --data data/caltech --out /tmp/caltech_check.json
"""
import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = (Path(os.environ.get("SHARED", ROOT.parent / "shared")) / "weights"
           / "bvlc_googlenet_deploy_v1.caffemodel")
MEAN_BGR = (104.0, 117.0, 123.0)
WARP, CROP = 256, 224
#: feature name -> the OpenCV layer whose output it is
FEATURES = {"pool5/7x7_s1": "pool5/7x7_s1", "inception_4a/output (pooled)": "inception_4a/gap"}
LAYERS = tuple(FEATURES.values())

#: BVLC GoogLeNet's inception modules: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
INCEPTION = [("3a", (64, 96, 128, 16, 32, 32)), ("3b", (128, 128, 192, 32, 96, 64)),
             ("4a", (192, 96, 208, 16, 48, 64)), ("4b", (160, 112, 224, 24, 64, 64)),
             ("4c", (128, 128, 256, 24, 64, 64)), ("4d", (112, 144, 288, 32, 64, 64)),
             ("4e", (256, 160, 320, 32, 128, 128)), ("5a", (256, 160, 320, 32, 128, 128)),
             ("5b", (384, 192, 384, 48, 128, 128))]


def deploy_prototxt(batch=1):
    """BVLC GoogLeNet's deploy prototxt up to ``pool5/7x7_s1`` (Caffe V2 text format),
    plus ``inception_4a/gap``, a global average pool of ``inception_4a/output``."""
    lines = ['name: "GoogleNet"', 'input: "data"',
             "input_shape { dim: %d dim: 3 dim: %d dim: %d }" % (batch, CROP, CROP)]

    def layer(name, type_, bottoms, top, param=""):
        lines.append('layer { name: "%s" type: "%s" %s top: "%s" %s }' % (
            name, type_, " ".join('bottom: "%s"' % b for b in bottoms), top, param))

    def conv(name, bottom, relu, n, k, stride=1, pad=0):
        layer(name, "Convolution", [bottom], name, "convolution_param { num_output: %d "
              "kernel_size: %d stride: %d pad: %d }" % (n, k, stride, pad))
        layer(relu, "ReLU", [name], name)  # in place, as in BVLC's prototxt
        return name

    def pool(name, bottom, kind, k, stride, pad=0):
        layer(name, "Pooling", [bottom], name, "pooling_param { pool: %s kernel_size: %d "
              "stride: %d pad: %d }" % (kind, k, stride, pad))
        return name

    def lrn(name, bottom):
        layer(name, "LRN", [bottom], name,
              "lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 }")
        return name

    x = conv("conv1/7x7_s2", "data", "conv1/relu_7x7", 64, 7, 2, 3)
    x = lrn("pool1/norm1", pool("pool1/3x3_s2", x, "MAX", 3, 2))
    x = conv("conv2/3x3_reduce", x, "conv2/relu_3x3_reduce", 64, 1)
    x = lrn("conv2/norm2", conv("conv2/3x3", x, "conv2/relu_3x3", 192, 3, 1, 1))
    x = pool("pool2/3x3_s2", x, "MAX", 3, 2)
    for module, (c1, r3, c3, r5, c5, cp) in INCEPTION:
        m = "inception_%s/" % module
        b1 = conv(m + "1x1", x, m + "relu_1x1", c1, 1)
        b3 = conv(m + "3x3_reduce", x, m + "relu_3x3_reduce", r3, 1)
        b3 = conv(m + "3x3", b3, m + "relu_3x3", c3, 3, 1, 1)
        b5 = conv(m + "5x5_reduce", x, m + "relu_5x5_reduce", r5, 1)
        b5 = conv(m + "5x5", b5, m + "relu_5x5", c5, 5, 1, 2)
        bp = pool(m + "pool", x, "MAX", 3, 1, 1)
        bp = conv(m + "pool_proj", bp, m + "relu_pool_proj", cp, 1)
        layer(m + "output", "Concat", [b1, b3, b5, bp], m + "output")
        x = m + "output"
        if module == "4a":
            layer("inception_4a/gap", "Pooling", [x], "inception_4a/gap",
                  "pooling_param { pool: AVE global_pooling: true }")
        if module in ("3b", "4e"):
            x = pool("pool%d/3x3_s2" % (int(module[0])), x, "MAX", 3, 2)
    pool("pool5/7x7_s1", x, "AVE", 7, 1)
    return "\n".join(lines) + "\n"


def load_net(weights=WEIGHTS):
    """``cv2.dnn.Net`` of :func:`deploy_prototxt` with the caffemodel ``weights``,
    OpenCV's own CPU backend, layer fusion off (each layer as Caffe computes it)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "deploy.prototxt")
        with open(path, "w") as f:
            f.write(deploy_prototxt())
        net = cv2.dnn.readNetFromCaffe(path, str(weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    net.enableFusion(False)
    return net


def read_labels(data):
    """(paths, classes) of ``data``'s ``labels.csv`` (``image,class``), in its order;
    each image is ``data/images/<image>.jpg``."""
    with open(os.path.join(data, "labels.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return ([os.path.join(data, "images", r["image"] + ".jpg") for r in rows],
            np.array([r["class"] for r in rows]))


def center_crop(path):
    """One image as the network sees it before the mean: (224, 224, 3) uint8 BGR."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise IOError("cannot decode %s" % path)
    img = cv2.resize(img, (WARP, WARP), interpolation=cv2.INTER_LINEAR)
    o = (WARP - CROP) // 2
    return img[o:o + CROP, o:o + CROP]


def forward(net, paths, layers=LAYERS, batch=32, progress=True):
    """{layer: float32 array (N, C, H, W)} of OpenCV's forward pass on the images."""
    outs = {name: [] for name in layers}
    for i in tqdm(range(0, len(paths), batch), desc="forward", unit="batch",
                  disable=not progress):
        blob = cv2.dnn.blobFromImages([center_crop(p) for p in paths[i:i + batch]],
                                      1.0, (CROP, CROP), MEAN_BGR, swapRB=False, crop=False)
        net.setInput(blob)
        for name, out in zip(layers, net.forward(list(layers))):
            outs[name].append(out.copy())
    return {name: np.concatenate(v) for name, v in outs.items()}


def features(net, paths, batch=32, progress=True):
    """{feature name: (N, C) float32}, C = 1024 for ``pool5/7x7_s1``, 512 for the
    pooled ``inception_4a/output`` (see :data:`FEATURES`)."""
    raw = forward(net, paths, LAYERS, batch, progress)
    return {name: raw[layer].reshape(len(paths), -1) for name, layer in FEATURES.items()}


def two_per_class(train, y, fold, k=2):
    """The first ``k`` of ``RandomState(fold).permutation`` of each class's images in
    ``train`` (indices into ``y``), classes in sorted order."""
    rng = np.random.RandomState(fold)
    return np.concatenate([rng.permutation(train[y[train] == c])[:k]
                           for c in np.unique(y[train])])


def cross_validate(X, y, folds=5, seed=0, per_class=None):
    """Out-of-fold accuracy of StandardScaler + LogisticRegression(max_iter=5000) on
    ``X`` (N, C), labels ``y`` (N,): {"accuracy": pooled over the N predictions,
    "fold_mean", "fold_sd" (ddof=1), "folds": [each fold's accuracy], "n"}. With
    ``per_class`` it trains on that many images per class of each training fold."""
    pred = np.empty_like(y)
    fold_acc = []
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(cv.split(X, y)):
        if per_class:
            train = two_per_class(train, y, fold, per_class)
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        clf.fit(X[train], y[train])
        pred[test] = clf.predict(X[test])
        fold_acc.append(float(np.mean(pred[test] == y[test])))
    return {"accuracy": float(np.mean(pred == y)), "fold_mean": float(np.mean(fold_acc)),
            "fold_sd": float(np.std(fold_acc, ddof=1)), "folds": fold_acc, "n": int(len(y))}


def check(data, net, batch=32, progress=True):
    """Both feature sets × (all training images, two per class) on one data folder."""
    t0 = time.time()
    paths, y = read_labels(data)
    feats = features(net, paths, batch, progress)
    t1 = time.time()
    results = {name: {"all": cross_validate(X, y),
                      "two_per_class": cross_validate(X, y, per_class=2)}
               for name, X in feats.items()}
    return {"data": str(data), "n": len(y), "classes": int(len(np.unique(y))),
            "seconds_features": round(t1 - t0, 1), "seconds": round(time.time() - t0, 1),
            "results": results}


def table(reports):
    """The accuracies as a plain text table, one row per data folder and feature set."""
    rows = ["%-45s %-30s %-22s %-22s" % ("data", "features", "all: pooled (fold m±sd)",
                                         "2/class: pooled (m±sd)")]
    for r in reports:
        for name, res in r["results"].items():
            rows.append("%-45s %-30s %-22s %-22s" % (r["data"], name, *(
                "%.3f (%.3f±%.3f)" % (s["accuracy"], s["fold_mean"], s["fold_sd"])
                for s in (res["all"], res["two_per_class"]))))
    return "\n".join(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", action="append", required=True,
                   help="a folder with labels.csv (image,class) and images/<image>.jpg")
    p.add_argument("--weights", default=str(WEIGHTS))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    t0 = time.time()
    net = load_net(args.weights)
    reports = [check(d, net, args.batch) for d in args.data]
    print(table(reports))
    result = {"settings": {
        "weights": args.weights, "warp": WARP, "crop": CROP, "mean_bgr": MEAN_BGR,
        "decode": "cv2.imread BGR", "resize": "cv2.resize INTER_LINEAR, aspect ignored",
        "cv": "StratifiedKFold(5, shuffle=True, random_state=0)",
        "classifier": "StandardScaler + LogisticRegression(max_iter=5000)",
        "two_per_class": "first 2 of RandomState(fold).permutation per class"},
        "opencv": cv2.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__,
        "seconds": round(time.time() - t0, 1), "datasets": reports}
    print("%.0f s in all" % result["seconds"])
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
