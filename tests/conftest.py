"""Shared fixtures: random-weight GoogLeNet caffemodels (V1 and V2), the
OpenCV oracle, and the real weights / fundus images of ../shared when present."""
import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path

import models  # noqa: F401,I001  (first: the BLAS kernels and Theano's flags)
import numpy as np
import pytest
from models import googlenet
from models.caffe_import import caffe_shapes
from models.caffemodel import spec_to_prototxt, write_caffemodel
from pipeline.data.synthetic import make_dataset

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SHARED", ROOT.parent / "shared")).resolve()
REAL_WEIGHTS = SHARED / "weights" / "bvlc_googlenet_deploy_v1.caffemodel"
SYNSETS = SHARED / "weights" / "synset_words.txt"
FUNDUS_SAMPLE = ROOT / "data" / "sample"  # embedded (data/sample/SOURCE.md)

# The tests run make as a user types it: nothing of an outer `make test` (its command,
# level, flags) leaks into the commands that the runs made here record.
for _name in ("DRT_MAKE_COMMAND", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
    os.environ.pop(_name, None)

needs_real_weights = pytest.mark.skipif(not REAL_WEIGHTS.exists(),
                                        reason="no real BVLC weights in %s" % REAL_WEIGHTS)


def random_caffe_layers(spec, seed):
    """(name, type, [W, b]) in Caffe's layout for every param layer of ``spec``,
    He-scaled normal weights and small random biases (not the project's fillers).
    Classifiers are scaled down so that the softmax is not one-hot."""
    rng = np.random.RandomState(seed)
    net = googlenet.build(spec)
    layers = []
    for layer in googlenet.param_layers(net):
        w_shape, b_shape = caffe_shapes(layer)
        fan_in = int(np.prod(w_shape[1:]))
        scale = 0.01 if layer.name.endswith("classifier") else 1.0
        W = rng.normal(0, scale * np.sqrt(2.0 / fan_in), w_shape).astype(np.float32)
        b = rng.normal(0, 0.1, b_shape).astype(np.float32)
        caffe_type = "Convolution" if len(w_shape) == 4 else "InnerProduct"
        layers.append((layer.name, caffe_type, [W, b]))
    return layers


@pytest.fixture(scope="session")
def random_googlenets(tmp_path_factory):
    """Deploy prototxt + two random-weight caffemodels: V1 (seed 11), V2 (seed 12)."""
    d = tmp_path_factory.mktemp("random_googlenet")
    spec = googlenet.googlenet_spec()
    (d / "deploy.prototxt").write_text(spec_to_prototxt(spec))
    files = {}
    for version, seed in ((1, 11), (2, 12)):
        layers = random_caffe_layers(spec, seed)
        path = d / ("random_v%d.caffemodel" % version)
        write_caffemodel(str(path), layers, version=version)
        files[version] = (path, layers)
    return d / "deploy.prototxt", files


def opencv_layer_for_blob(spec, blob):
    """The OpenCV (Caffe) layer whose output is the final value of Caffe blob ``blob``:
    a conv's in-place ReLU, the dropout's bottom, else the layer itself."""
    for layer in spec:
        if layer.name == blob:
            if layer.params.get("relu"):
                return layer.params["relu"]
            if layer.type == "Dropout":
                return layer.bottom[0]
            return blob
    raise KeyError(blob)


def opencv_forward(prototxt, caffemodel, data, blobs, spec=None):
    """OpenCV's independent Caffe implementation: {blob: array} for ``data``."""
    import cv2
    spec = spec or googlenet.googlenet_spec()
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    net.enableFusion(False)
    net.setInput(np.ascontiguousarray(data, dtype=np.float32))
    outs = net.forward([opencv_layer_for_blob(spec, b) for b in blobs])
    return dict(zip(blobs, outs))


@contextlib.contextmanager
def small_filesystem(path, size):
    """An ext4 filesystem of ``size`` bytes (1 KiB blocks, no journal, no blocks kept
    for root) mounted at ``path`` from a loop device; the test skips where that
    cannot be done (not root, no loop devices)."""
    image = path.with_suffix(".img")
    with open(image, "wb") as f:
        f.truncate(size)
    path.mkdir()
    made = shutil.which("mkfs.ext4") and subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-m", "0", "-b", "1024", "-O", "^has_journal", str(image)],
        capture_output=True).returncode == 0
    if not made or os.geteuid() != 0 or subprocess.run(
            ["mount", "-o", "loop", str(image), str(path)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small loop filesystem here (needs root and loop devices)")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)
        image.unlink()


def fill(directory):
    """Write a file into ``directory`` until its filesystem is full."""
    with open(os.path.join(directory, "filler"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    """A small generated dataset in Kaggle's layout (20 patients, both eyes)."""
    d = tmp_path_factory.mktemp("synthetic")
    make_dataset(str(d), patients=20, width=360, height=240, seed=3)
    return d
