"""The project's forward pass against OpenCV's independent Caffe implementation,
on random-weight GoogLeNets the project never trained, in both file formats."""
import numpy as np
import pytest

from models import googlenet
from pipeline.cli import main
from tests.conftest import REAL_WEIGHTS, needs_real_weights, opencv_forward

INTERMEDIATE = ["conv1/7x7_s2", "pool1/3x3_s2", "pool1/norm1", "conv2/3x3", "conv2/norm2",
                "pool2/3x3_s2", "inception_3a/pool", "inception_3a/output",
                "inception_4d/5x5_reduce", "inception_4e/output", "pool4/3x3_s2",
                "inception_5b/output", "pool5/7x7_s1"]
HEAD = ["loss3/classifier", "prob"]


def run_forward(tmp_path, weights, data, names):
    np.save(tmp_path / "in.npy", data)
    rc = main(["forward", "--weights", str(weights), "--blob", str(tmp_path / "in.npy"),
               "--out", str(tmp_path / "out.npz"), "--layers", ",".join(names)])
    assert rc == 0
    with np.load(tmp_path / "out.npz") as npz:
        return {name: npz[name] for name in names}


def assert_matches_caffe(ours, ref):
    logit, prob = ours["loss3/classifier"], ours["prob"]
    assert logit.shape == ref["loss3/classifier"].shape and logit.ndim == 2
    assert np.abs(prob - ref["prob"]).max() <= 1e-5
    assert np.abs(logit - ref["loss3/classifier"]).max() <= 1e-5 * np.abs(ref["loss3/classifier"]).max()
    for name in INTERMEDIATE:
        if name in ours:
            assert ours[name].shape == ref[name].shape, name
            err = np.abs(ours[name] - ref[name]).max() / np.abs(ref[name]).max()
            assert err <= 3e-5, (name, err)


@pytest.mark.parametrize("version", [1, 2])
def test_forward_equals_opencv_caffe(tmp_path, random_googlenets, version):
    prototxt, files = random_googlenets
    weights, _ = files[version]
    data = np.random.RandomState(100 + version).normal(0, 60, (3, 3, 224, 224)).astype(np.float32)
    names = INTERMEDIATE + HEAD
    ours = run_forward(tmp_path, weights, data, names)
    ref = opencv_forward(prototxt, weights, data, names)
    # The test means something only if the softmax is neither one-hot nor flat.
    assert 0.01 < ref["prob"].max() < 0.9
    assert_matches_caffe(ours, ref)


def test_flipped_filters_would_be_caught(random_googlenets):
    """Sanity of the oracle test: a net whose filters are flipped differs from Caffe."""
    from models.caffe_import import load_caffemodel
    prototxt, files = random_googlenets
    weights, _ = files[2]
    net = googlenet.build(googlenet.googlenet_spec())
    load_caffemodel(net, str(weights))
    layer = net["conv1/7x7_s2"]
    layer.W.set_value(layer.W.get_value()[:, :, ::-1, ::-1].copy())
    fn = googlenet.compile_forward(net, ["conv1/7x7_s2"])
    data = np.random.RandomState(5).normal(0, 60, (1, 3, 224, 224)).astype(np.float32)
    ref = opencv_forward(prototxt, weights, data, ["conv1/7x7_s2"])["conv1/7x7_s2"]
    assert np.abs(fn(data)[0] - ref).max() > 1e-2 * np.abs(ref).max()


@needs_real_weights
def test_real_weights_equal_opencv_caffe(tmp_path, random_googlenets):
    prototxt, _ = random_googlenets
    data = np.random.RandomState(7).uniform(-120, 130, (2, 3, 224, 224)).astype(np.float32)
    ours = run_forward(tmp_path, REAL_WEIGHTS, data, HEAD + ["inception_4e/output"])
    ref = opencv_forward(prototxt, REAL_WEIGHTS, data, HEAD + ["inception_4e/output"])
    assert_matches_caffe(ours, ref)
