"""The ONNX export run on ONNX Runtime against the Theano forward and, independently,
OpenCV's Caffe importer, within the bounds of ``test_fidelity``; Caffe's pooling
against its NumPy loop; ``pipeline.learn.inference.forward_function``'s engine."""
import numpy as np
import pytest

from models import googlenet
from models.caffe_import import load_caffemodel, set_blobs
from models.caffe_ops import caffe_pooled_size
from models.model_io import export_caffe
from tests.conftest import opencv_forward, random_caffe_layers
from tests.models.test_fidelity import HEAD, INTERMEDIATE, assert_matches_caffe
from tests.models.test_layers import caffe_pool

pytest.importorskip("onnxruntime")
from models.onnx_export import (UnsupportedLayer, compile_forward_onnx,  # noqa: E402
                                export_onnx, onnx_model, spec_of)


def random_net(spec, input_shape, seed):
    """``spec`` built for ``input_shape`` with ``random_caffe_layers``' weights."""
    net = googlenet.build(spec, input_shape=input_shape)
    set_blobs(net, {name: arrays for name, _, arrays in random_caffe_layers(spec, seed)},
              "random")
    return net


def three_ways(tmp_path, spec, net, input_shape, data, names):
    """(ONNX Runtime, Theano, OpenCV) blobs ``names`` of ``net`` on ``data``."""
    onnx = dict(zip(names, compile_forward_onnx(spec, net, input_shape, names)(data)))
    theano = dict(zip(names, googlenet.compile_forward(net, names)(data)))
    caffemodel, prototxt = export_caffe(spec, net, input_shape, str(tmp_path))
    cv = opencv_forward(prototxt, caffemodel, data, names, spec=spec)
    show(onnx, theano, cv)
    return onnx, theano, cv


def show(onnx, theano, cv):
    """The differences, for ``pytest -s``."""
    for name in onnx:
        print("%-24s max|onnx-theano| %.3g  max|onnx-opencv| %.3g  max|blob| %.3g" % (
            name, np.abs(onnx[name] - theano[name]).max(), np.abs(onnx[name] - cv[name]).max(),
            np.abs(cv[name]).max()))


def test_googlenet_equals_theano_and_opencv(tmp_path, random_googlenets):
    prototxt, files = random_googlenets
    spec = googlenet.googlenet_spec()
    net = googlenet.build(spec)
    load_caffemodel(net, str(files[2][0]))
    data = np.random.RandomState(102).normal(0, 60, (2, 3, 224, 224)).astype(np.float32)
    names = INTERMEDIATE + HEAD
    onnx = dict(zip(names, compile_forward_onnx(spec, net, googlenet.INPUT_SHAPE,
                                                names)(data)))
    theano = dict(zip(names, googlenet.compile_forward(net, names)(data)))
    cv = opencv_forward(prototxt, files[2][0], data, names)
    show(onnx, theano, cv)
    assert 0.01 < cv["prob"].max() < 0.9  # neither one-hot nor flat
    assert_matches_caffe(onnx, theano)
    assert_matches_caffe(onnx, cv)


def test_mini_network_equals_theano_and_opencv(tmp_path):
    spec, shape = googlenet.mini_spec(), (3, 64, 64)
    net = random_net(spec, shape, 21)
    data = np.random.RandomState(3).normal(0, 60, (3,) + shape).astype(np.float32)
    names = ["pool1/norm1", "inception_3a/output", "pool5/7x7_s1"] + HEAD
    onnx, theano, cv = three_ways(tmp_path, spec, net, shape, data, names)
    assert_matches_caffe(onnx, theano)
    assert_matches_caffe(onnx, cv)


def test_features_network_equals_theano_and_opencv(tmp_path):
    """A linear classifier on globally pooled inception_4a/output (scenario 3), on
    128 x 128 inputs: other ceil-mode overhangs than at 224; the spec read back from
    the net (what ``forward_function`` does without one)."""
    spec = googlenet.features_spec(googlenet.googlenet_spec(), "inception_4a/output", 2)
    shape = (3, 128, 128)
    net = random_net(spec, shape, 22)
    data = np.random.RandomState(4).normal(0, 60, (2,) + shape).astype(np.float32)
    names = ["pool2/3x3_s2", "inception_4a/output", "features/global_pool"] + HEAD
    onnx, theano, cv = three_ways(tmp_path, spec_of(net), net, shape, data, names)
    for name in ("pool2/3x3_s2", "inception_4a/output", "features/global_pool"):
        err = np.abs(onnx[name] - theano[name]).max() / np.abs(theano[name]).max()
        assert err <= 3e-5, (name, err)
        err = np.abs(onnx[name] - cv[name]).max() / np.abs(cv[name]).max()
        assert err <= 3e-5, (name, err)
    assert_matches_caffe(onnx, theano)
    assert_matches_caffe(onnx, cv)


@pytest.mark.parametrize("spec_fn", [googlenet.mini_spec, googlenet.googlenet_spec,
                                     lambda: googlenet.features_spec(
                                         googlenet.googlenet_spec(), "inception_4a/output", 2)])
def test_spec_read_back_from_the_net_exports_the_same_graph(spec_fn):
    spec = spec_fn()
    net = googlenet.build(spec)
    ours, back = (onnx_model(s, net, googlenet.INPUT_SHAPE).graph for s in (spec, spec_of(net)))
    assert [n.SerializeToString() for n in ours.node] == [n.SerializeToString()
                                                          for n in back.node]


def test_unknown_layer_type_is_named(tmp_path):
    spec = googlenet.mini_spec()
    net = googlenet.build(spec, input_shape=(3, 64, 64))
    bad = [l._replace(type="BatchNorm") if l.name == "pool1/norm1" else l for l in spec]
    with pytest.raises(UnsupportedLayer, match="pool1/norm1.*BatchNorm"):
        export_onnx(bad, net, (3, 64, 64), str(tmp_path / "model.onnx"))
    assert not (tmp_path / "model.onnx").exists()


def test_unknown_output_is_named():
    spec = googlenet.mini_spec()
    net = googlenet.build(spec, input_shape=(3, 64, 64))
    with pytest.raises(googlenet.UnknownLayer, match="loss9"):
        onnx_model(spec, net, (3, 64, 64), ["prob", "loss9/fc"])


@pytest.mark.parametrize("h,w,k,s,p", [(13, 12, 3, 2, 0), (7, 8, 3, 2, 1), (14, 14, 5, 3, 0),
                                       (6, 7, 3, 1, 1), (10, 9, 3, 3, 1), (112, 112, 3, 2, 0),
                                       (9, 11, 2, 2, 1), (3, 5, 3, 3, 2)])
@pytest.mark.parametrize("mode", ["MAX", "AVE"])
def test_pooling_is_caffes(h, w, k, s, p, mode):
    """Ceil-mode overhang, padding, and (9 x 11, 3 x 5) Caffe's dropped last window."""
    spec = [googlenet.pooling("pool", "data", mode, k, s, p)]
    net = googlenet.build(spec, input_shape=(3, h, w))
    x = np.random.RandomState(h * w).normal(size=(2, 3, h, w)).astype(np.float32) - 3
    ours = compile_forward_onnx(spec, net, (3, h, w), ["pool"])(x)[0]
    ref = caffe_pool(x, k, s, p, mode)
    assert ours.shape == ref.shape == (2, 3) + net["pool"].output_shape[2:]
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


def test_googlenet_pools_never_drop_a_window():
    """No GoogLeNet pooling (224 x 224) starts a window in the padding; the stride-2
    MAX pools overhang by one cell (ceil mode), which the end pads give."""
    net = googlenet.build(googlenet.googlenet_spec(aux_heads=True))
    for layer in googlenet.googlenet_spec(aux_heads=True):
        if layer.type == "Pooling":
            p, size = layer.params, net[layer.bottom[0]].output_shape[2]
            k, s, pad = p["kernel_size"] or size, p["stride"], p["pad"]
            ceil = -(-(size + 2 * pad - k) // s) + 1
            assert caffe_pooled_size(size, k, s, pad) == ceil, layer.name


def test_forward_function_picks_the_engine(monkeypatch):
    from pipeline.errors import InputError
    from pipeline.learn import inference
    spec = googlenet.mini_spec()
    net = random_net(spec, (3, 64, 64), 5)
    monkeypatch.setattr(googlenet, "compile_forward", lambda net, names: "theano")
    for asked in ("", "onnx"):
        monkeypatch.setenv("DRT_INFERENCE", asked)
        fn = inference.forward_function(net, ["prob"])  # spec read back from the net
        x = np.zeros((2, 3, 64, 64), np.float32)
        out = fn(x)
        assert isinstance(out, list) and out[0].shape == (2, 1000)
        assert np.allclose(out[0].sum(axis=1), 1)
    monkeypatch.setenv("DRT_INFERENCE", "theano")
    assert inference.forward_function(net, ["prob"], spec) == "theano"
    monkeypatch.setenv("DEVICE", "cuda")
    monkeypatch.setenv("DRT_INFERENCE", "")
    assert inference.inference_engine() == "theano"
    monkeypatch.setenv("DEVICE", "cpu")
    monkeypatch.setenv("DRT_INFERENCE", "tensorrt")
    with pytest.raises(InputError, match="DRT_INFERENCE=tensorrt"):
        inference.inference_engine()
    monkeypatch.setenv("DRT_INFERENCE", "")
    bad = [l._replace(type="BatchNorm") if l.name == "pool1/norm1" else l for l in spec]
    assert inference.forward_function(net, ["prob"], bad) == "theano"  # falls back
    monkeypatch.setenv("DRT_INFERENCE", "onnx")
    with pytest.raises(InputError, match="pool1/norm1"):
        inference.forward_function(net, ["prob"], bad)


def test_mc_dropouts_trunk_runs_on_the_engine_and_equals_theanos(monkeypatch):
    """``inference.mc_trunk`` on ONNX Runtime gives ``compile_trunk``'s pooled features
    (N x K x 1 x 1) within the fidelity bounds, and the MC passes built on it give those
    built on the Theano trunk (the same seeded masks)."""
    from models.mc_dropout import compile_head, compile_trunk, mc_probs
    from pipeline.learn import inference
    monkeypatch.setenv("DRT_INFERENCE", "onnx")
    spec = googlenet.mini_spec(2)
    net = random_net(spec, (3, 64, 64), 6)
    x = np.random.RandomState(7).normal(0, 60, (3, 3, 64, 64)).astype(np.float32)
    ours, theirs = inference.mc_trunk(net, spec)(x)[0], compile_trunk(net, spec)(x)[0]
    assert ours.shape == theirs.shape == (3, 8 + 8 + 4 + 4, 1, 1)
    assert np.abs(ours - theirs).max() <= 3e-5 * np.abs(theirs).max()
    batches = [(["a", "b", "c"], [x])]
    head = compile_head(net, spec)
    on_engine = mc_probs(inference.mc_trunk(net, spec), head, batches, 4, 0.4, seed=1)
    on_theano = mc_probs(compile_trunk(net, spec), head, batches, 4, 0.4, seed=1)
    assert on_engine.shape == (4, 3, 2) and np.abs(on_engine - on_theano).max() <= 1e-5
