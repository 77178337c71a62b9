"""MC dropout: a pass is the classifier on masked, 1/q-scaled pooled features (by hand,
in NumPy), the trunk-reuse path equals full passes, and the masks are training's
inverted dropout, seeded per image."""
import numpy as np
import pytest

import lasagne
from models import googlenet
from models.mc_dropout import (compile_full, compile_head, compile_trunk, draw_masks,
                               dropout_below, mc_probs)


@pytest.fixture(scope="module")
def mini():
    """The mini network (2 classes, 3 x 64 x 64) with random weights, the classifier's
    scaled up so that the passes differ visibly."""
    lasagne.random.set_rng(np.random.RandomState(4))
    spec = googlenet.mini_spec(2)
    net = googlenet.build(spec, input_shape=(3, 64, 64))
    W = net["loss3/classifier"].W
    W.set_value(W.get_value() * 20)
    net["loss3/classifier"].b.set_value(np.array([0.3, -0.2], np.float32))
    return spec, net


def images(n, seed=0):
    return np.random.RandomState(seed).normal(0, 40, (n, 3, 64, 64)).astype(np.float32)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_a_pass_is_the_classifier_on_the_kept_features_scaled_by_one_over_q(mini):
    spec, net = mini
    assert dropout_below(spec) == ("pool5/drop_7x7_s1", 0.4)
    x = images(5)
    pooled = googlenet.compile_forward(net, ["pool5/7x7_s1"])(x)[0]  # N x K x 1 x 1
    masks = (np.random.RandomState(1).rand(*pooled.shape) >= 0.4).astype(np.float32)
    W, b = net["loss3/classifier"].W.get_value(), net["loss3/classifier"].b.get_value()
    by_hand = softmax((pooled * masks / 0.6).reshape(5, -1).astype(np.float64) @ W + b)
    got = compile_head(net, spec)(pooled, masks)[0]
    np.testing.assert_allclose(got, by_hand, rtol=1e-5, atol=1e-6)
    # a mask changes the answer: the test would see a pass that ignores it
    assert np.abs(got - compile_head(net, spec)(pooled, np.ones_like(masks))[0]).max() > 1e-3


def test_the_trunk_reuse_path_equals_full_passes_to_float32_rounding(mini):
    spec, net = mini
    x0, names, passes = images(4, seed=2), ["a", "b", "c", "d"], 6
    x90 = np.ascontiguousarray(np.rot90(x0, 1, axes=(2, 3)))
    trunk, head, full = compile_trunk(net, spec), compile_head(net, spec), compile_full(net, spec)
    got = mc_probs(trunk, head, [(names[:3], [x0[:3], x90[:3]]), (names[3:], [x0[3:], x90[3:]])],
                   passes, 0.4, seed=7)
    assert got.shape == (passes, 4, 2)
    masks = draw_masks(names, passes, (trunk(x0)[0].shape[1], 1, 1), 0.4, seed=7)
    reference = np.array([(full(x0, masks[t])[0] + full(x90, masks[t])[0]) / 2
                          for t in range(passes)])
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6)
    assert got.std(axis=0).max() > 1e-3  # the passes do differ


def test_masks_are_trainings_inverted_dropout_and_seeded_per_image(mini):
    spec, net = mini
    # training's own dropout (Lasagne's DropoutLayer, as finetune builds it) keeps a unit
    # as x / q or drops it: the scale the masks are given
    import theano
    layer = net["pool5/drop_7x7_s1"]
    pooled = np.abs(images(8)[:, :, :4, :4]).astype(np.float32) + 1
    x = theano.tensor.tensor4()
    out = theano.function([x], lasagne.layers.get_output(layer, {layer.input_layer: x},
                                                          deterministic=False))(pooled)
    kept = out != 0
    np.testing.assert_allclose(out[kept], pooled[kept] / 0.6, rtol=1e-6)
    assert 0.5 < kept.mean() < 0.7
    masks = draw_masks(["x", "y", "z"], 50, (1024, 1, 1), 0.4, seed=3)
    assert set(np.unique(masks)) == {0.0, 1.0} and abs(masks.mean() - 0.6) < 0.01
    again = draw_masks(["z", "x"], 50, (1024, 1, 1), 0.4, seed=3)  # other order, batch
    np.testing.assert_array_equal(again[:, 0], masks[:, 2])
    np.testing.assert_array_equal(again[:, 1], masks[:, 0])
    assert (draw_masks(["x"], 50, (1024, 1, 1), 0.4, seed=4) != masks[:, :1]).any()


def test_a_classifier_without_dropout_below_it_is_refused():
    spec = googlenet.features_spec(googlenet.mini_spec(2), "inception_3a/output", 2)
    with pytest.raises(googlenet.UnknownLayer, match="no dropout below it"):
        dropout_below(spec)
