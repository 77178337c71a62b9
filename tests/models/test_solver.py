"""Caffe's SGD solver: learning-rate policies, solver.prototxt, steps against NumPy,
and frozen layers (lr_mult 0) left out of the gradient graph."""
import math

import numpy as np
import pytest
import theano
import theano.tensor as T

import lasagne
from models import googlenet
from models.solver import layer_multipliers, learning_rate, read_solver_prototxt, sgd_updates


@pytest.mark.parametrize("policy,extra,it,expected", [
    ("fixed", {}, 123, 0.01),
    ("step", {"gamma": 0.1, "stepsize": 10}, 25, 0.01 * 0.1 ** 2),
    ("exp", {"gamma": 0.9}, 3, 0.01 * 0.729),
    ("inv", {"gamma": 1e-4, "power": 0.75}, 1000, 0.01 * 1.1 ** -0.75),
    ("multistep", {"gamma": 0.5, "stepvalue": [5, 8, 20]}, 8, 0.01 * 0.25),
    ("poly", {"power": 0.5, "max_iter": 100}, 75, 0.01 * 0.5),
    ("sigmoid", {"gamma": -0.1, "stepsize": 50}, 60, 0.01 / (1 + math.exp(1.0))),
])
def test_learning_rate_policies(policy, extra, it, expected):
    solver = dict(base_lr=0.01, lr_policy=policy, **extra)
    assert learning_rate(solver, it) == pytest.approx(expected, rel=1e-12)


def test_read_solver_prototxt(tmp_path):
    path = tmp_path / "solver.prototxt"
    path.write_text('net: "train_val.prototxt"\n# BVLC quick_solver\nbase_lr: 0.01\n'
                    'lr_policy: "multistep"\nstepvalue: 100\nstepvalue: 200\ngamma: 0.1\n'
                    'momentum: 0.9\nweight_decay: 0.0002  # L2\nmax_iter: 2400000\n'
                    'solver_mode: GPU\n')
    s = read_solver_prototxt(str(path))
    assert s["base_lr"] == 0.01 and s["lr_policy"] == "multistep"
    assert s["stepvalue"] == [100, 200] and s["max_iter"] == 2400000
    assert s["weight_decay"] == 0.0002 and s["solver_mode"] == "GPU"
    path.write_text("base_lr 0.01\n")
    with pytest.raises(ValueError, match="solver.prototxt:1"):
        read_solver_prototxt(str(path))


def small_net():
    """data (6) -> fc1 (5, ReLU, frozen) -> fc2 (3) -> softmax."""
    lasagne.random.set_rng(np.random.RandomState(4))
    spec = [googlenet.inner_product("fc1", "data", 5, relu="relu1"),
            googlenet.inner_product("fc2", "fc1", 3, bias=0.1)]
    return googlenet.build(spec, input_shape=(6,))


def test_sgd_steps_equal_caffe_formulas_in_numpy():
    net = small_net()
    rng = np.random.RandomState(0)
    net["fc1"].b.set_value(rng.normal(0, 0.5, 5).astype(np.float32))
    x, y = T.matrix(), T.ivector()
    z = lasagne.layers.get_output(net["fc2"], x)
    loss = T.nnet.categorical_crossentropy(T.nnet.softmax(z), y).mean()
    mults = layer_multipliers(net, frozen=["fc1"])
    solver = {"base_lr": 0.1, "lr_policy": "step", "gamma": 0.5, "stepsize": 2}
    momentum, wd = 0.9, 0.01
    rate = theano.shared(np.float32(0))
    updates, _ = sgd_updates(loss, mults, rate, momentum, wd)
    step = theano.function([x, y], loss, updates=updates)

    # NumPy, in Caffe's layout (IP weights (out, in)), from the formulas alone.
    W1, b1 = net["fc1"].W.get_value().T.astype(np.float64), net["fc1"].b.get_value().astype(np.float64)
    W2, b2 = net["fc2"].W.get_value().T.astype(np.float64), net["fc2"].b.get_value().astype(np.float64)
    W1_start = net["fc1"].W.get_value().copy()
    hW, hb = np.zeros_like(W2), np.zeros_like(b2)
    for it in range(5):
        xs = rng.normal(size=(8, 6)).astype(np.float32)
        ys = rng.randint(0, 3, 8).astype(np.int32)
        r = learning_rate(solver, it)
        rate.set_value(np.float32(r))
        step(xs, ys)
        h = np.maximum(xs @ W1.T + b1, 0)
        logits = h @ W2.T + b2
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        d = (p - np.eye(3)[ys]) / len(ys)  # d(mean CE)/d logits
        gW, gb = d.T @ h, d.sum(axis=0)
        hW = momentum * hW + r * 1 * (gW + wd * 1 * W2)  # weights: lr_mult 1, decay_mult 1
        hb = momentum * hb + r * 2 * (gb + wd * 0 * b2)  # biases: lr_mult 2, decay_mult 0
        W2, b2 = W2 - hW, b2 - hb
        np.testing.assert_allclose(net["fc2"].W.get_value().T, W2, atol=1e-6)
        np.testing.assert_allclose(net["fc2"].b.get_value(), b2, atol=1e-6)
    np.testing.assert_array_equal(net["fc1"].W.get_value(), W1_start)  # frozen, bit for bit


def test_default_and_new_layer_multipliers():
    net = googlenet.build(googlenet.mini_spec(2), input_shape=(3, 64, 64))
    mults = {p.name: (lr, dm) for p, lr, dm in layer_multipliers(
        net, frozen=["conv1/", "conv2/"], new_layers=["loss3/classifier"])}
    assert mults["conv1/7x7_s2.W"] == (0, 1) and mults["conv2/3x3.b"][0] == 0
    assert mults["inception_3a/1x1.W"] == (1, 1) and mults["inception_3a/1x1.b"] == (2, 0)
    assert mults["loss3/classifier.W"] == (10, 1) and mults["loss3/classifier.b"] == (20, 0)


def test_frozen_layers_are_absent_from_the_gradient_graph():
    net = googlenet.build(googlenet.mini_spec(2), input_shape=(3, 64, 64))
    x, y = net["data"].input_var, T.ivector()
    z = lasagne.layers.get_output(net["loss3/classifier"])
    loss = T.nnet.categorical_crossentropy(T.nnet.softmax(z), y).mean()
    mults = layer_multipliers(net, frozen=["conv1/", "conv2/"], new_layers=["loss3/classifier"])
    updates, histories = sgd_updates(loss, mults, theano.shared(np.float32(0.01)), 0.9, 5e-4)
    fn = theano.function([x, y], loss, updates=updates)
    frozen = [net["conv1/7x7_s2"].W, net["conv1/7x7_s2"].b, net["conv2/3x3"].W, net["conv2/3x3"].b]
    assert not any(p in histories for p in frozen)
    ops = [type(node.op).__name__ for node in fn.maker.fgraph.toposort()]
    convs = [l for l in googlenet.param_layers(net) if isinstance(l, googlenet.CaffeConv2DLayer)]
    assert ops.count("CorrMM_gradWeights") == len(convs) - 2  # none for conv1, conv2
    # conv1 is the first layer: no gradient flows into its input or output at all.
    assert ops.count("CorrMM_gradInputs") <= len(convs) - 2
    before = [p.get_value().copy() for p in frozen]
    trained_before = net["inception_3a/1x1"].W.get_value().copy()
    data = np.random.RandomState(1).normal(0, 50, (4, 3, 64, 64)).astype(np.float32)
    for _ in range(3):
        fn(data, np.array([0, 1, 1, 0], np.int32))
    for p, b in zip(frozen, before):
        np.testing.assert_array_equal(p.get_value(), b)
    assert not np.array_equal(net["inception_3a/1x1"].W.get_value(), trained_before)
