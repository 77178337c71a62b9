"""models.caffe_import: weights from a .caffemodel into the Lasagne net, and their cache."""
import logging

import numpy as np
import pytest

from models import googlenet
from models.caffe_import import load_caffemodel, read_caffemodel_cached
from models.caffemodel import CaffeModelError, read_caffemodel, write_caffemodel
from tests.conftest import REAL_WEIGHTS, needs_real_weights, random_caffe_layers


def test_shape_mismatch_names_layer_and_shapes(tmp_path, random_googlenets):
    _, files = random_googlenets
    layers = [(n, t, [a.copy() for a in arrays]) for n, t, arrays in files[2][1]]
    name, t, (W, b) = layers[5]
    layers[5] = (name, t, [W[:, :-1], b])
    path = tmp_path / "bad.caffemodel"
    write_caffemodel(str(path), layers)
    net = googlenet.build(googlenet.googlenet_spec())
    with pytest.raises(CaffeModelError) as e:
        load_caffemodel(net, str(path), cache_dir=tmp_path)
    msg = str(e.value)
    assert str(path) in msg and name in msg
    assert str(tuple(W[:, :-1].shape)) in msg and str(tuple(W.shape)) in msg


def test_absent_layers_keep_fillers_and_are_logged_once(tmp_path, random_googlenets, caplog):
    _, files = random_googlenets
    path, layers = files[2]
    net = googlenet.build(googlenet.googlenet_spec(aux_heads=True))
    before = net["loss2/fc"].W.get_value().copy()
    with caplog.at_level(logging.INFO):
        fresh = load_caffemodel(net, str(path), cache_dir=tmp_path)
    assert fresh == ["loss1/conv", "loss1/fc", "loss1/classifier",
                     "loss2/conv", "loss2/fc", "loss2/classifier"]
    lines = [r.getMessage() for r in caplog.records if "initialised" in r.getMessage()]
    assert len(lines) == 1 and "loss2/classifier" in lines[0]
    np.testing.assert_array_equal(net["loss2/fc"].W.get_value(), before)
    conv1 = dict((n, a) for n, _, a in layers)["conv1/7x7_s2"]
    np.testing.assert_array_equal(net["conv1/7x7_s2"].W.get_value(), conv1[0])


def test_cache_gives_the_same_blobs(tmp_path, random_googlenets):
    _, files = random_googlenets
    path = str(files[1][0])
    first = read_caffemodel_cached(path, tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    second = read_caffemodel_cached(path, tmp_path)
    assert list(first) == list(second)
    for name in first:
        for a, b in zip(first[name], second[name]):
            np.testing.assert_array_equal(a, b)


@needs_real_weights
def test_real_weights_load_into_the_deploy_net(tmp_path):
    net = googlenet.build(googlenet.googlenet_spec())
    assert load_caffemodel(net, str(REAL_WEIGHTS), cache_dir=tmp_path) == []
    blobs = read_caffemodel(str(REAL_WEIGHTS))
    assert len(blobs) == 58
    assert blobs["loss3/classifier"][0].shape == (1, 1, 1000, 1024)
    W = net["loss3/classifier"].W.get_value()
    np.testing.assert_array_equal(W, blobs["loss3/classifier"][0][0, 0].T)


def test_a_file_lacking_needed_layers_is_an_error_and_is_not_cached(tmp_path, random_googlenets):
    _, files = random_googlenets
    _, layers = files[2]
    path = tmp_path / "partial.caffemodel"
    dropped = ("inception_4a/1x1", "conv2/3x3")
    write_caffemodel(str(path), [l for l in layers if l[0] not in dropped], version=2)
    cache = tmp_path / "cache"
    net = googlenet.build(googlenet.googlenet_spec())
    with pytest.raises(CaffeModelError) as e:
        load_caffemodel(net, str(path), cache_dir=cache)
    assert "lacks 2 layers the network needs: conv2/3x3, inception_4a/1x1" in str(e.value)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert not cache.exists() or not list(cache.iterdir())  # a rejected file is not cached
    fresh = load_caffemodel(net, str(path), allow_missing=True, cache_dir=cache)
    assert fresh == ["conv2/3x3", "inception_4a/1x1"]
    # a file that has some auxiliary heads must have all of them
    aux = googlenet.build(googlenet.googlenet_spec(aux_heads=True))
    with_loss1 = tmp_path / "loss1.caffemodel"
    extra = [(name, kind, arrays) for name, kind, arrays in
             random_caffe_layers(googlenet.googlenet_spec(aux_heads=True), 3)
             if name.startswith("loss1/")]
    write_caffemodel(str(with_loss1), layers + extra, version=2)
    with pytest.raises(CaffeModelError, match="lacks 3 layers .*: loss2/conv, loss2/fc, "
                                              "loss2/classifier"):
        load_caffemodel(aux, str(with_loss1), cache_dir=cache)
    assert load_caffemodel(aux, str(with_loss1), skip=["loss2/conv", "loss2/fc",
                                                       "loss2/classifier"], cache_dir=cache)


def test_rejected_shapes_are_not_cached(tmp_path, random_googlenets):
    _, files = random_googlenets
    _, layers = files[2]
    path = tmp_path / "wrong.caffemodel"
    wrong = [(n, k, [a[:, :-1] if n == "conv1/7x7_s2" else a for a in arrays[:1]] + arrays[1:])
             for n, k, arrays in layers]
    write_caffemodel(str(path), wrong, version=2)
    with pytest.raises(CaffeModelError, match="conv1/7x7_s2"):
        load_caffemodel(googlenet.build(googlenet.googlenet_spec()), str(path),
                        cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
