"""Monte-Carlo dropout (Gal & Ghahramani, ICML 2016) at the classifier of a net whose
``loss3/classifier`` follows a dropout layer, as GoogLeNet's follows
``pool5/drop_7x7_s1`` (ratio 0.4) on the pooled ``pool5/7x7_s1`` (N x 1024 x 1 x 1).

A stochastic pass keeps each unit of the dropout's input with probability
``q = 1 - ratio`` and scales it by ``1 / q``: Caffe's inverted dropout, which is what
Lasagne's ``DropoutLayer(rescale=True)`` does when the net trains. Here the keep masks
are given (0/1 float32 arrays of the dropout input's shape, ``draw_masks``), so a pass
is an explicit computation and the same masks give the same numbers.

Everything below the dropout is deterministic, so T passes cost one ``trunk`` pass
(data -> the dropout's input) and T ``head`` passes (masked input -> ``prob``);
``compile_full`` is the same computation in one graph from the data (what T full
passes would cost), the reference the trunk-reuse path is checked against.
"""
import zlib

import numpy as np

import lasagne

from .googlenet import UnknownLayer


def dropout_below(spec, classifier="loss3/classifier"):
    """(the dropout layer's name, its ratio) directly below ``classifier``;
    UnknownLayer when there is none (e.g. a linear classifier on features)."""
    by_name = {layer.name: layer for layer in spec}
    if classifier not in by_name:
        raise UnknownLayer("no layer %s in the network" % classifier)
    below = by_name[by_name[classifier].bottom[0]]
    if below.type != "Dropout":
        raise UnknownLayer("%s has no dropout below it (its input is %s, a %s layer): MC "
                           "dropout needs one" % (classifier, below.name, below.type))
    return below.name, float(below.params["dropout_ratio"])


def _head_output(net, spec, keep_input):
    """``prob`` with the dropout layer's output replaced by ``keep_input`` (an expression)."""
    name, _ = dropout_below(spec)
    return lasagne.layers.get_output(net["prob"], {net[name]: keep_input}, deterministic=True)


def compile_trunk(net, spec):
    """data (N x 3 x H x W) -> [the dropout's input (N x K x 1 x 1)], test mode."""
    from .device import function
    name, _ = dropout_below(spec)
    below = net[name].input_layer
    return function([net["data"].input_var],
                    [lasagne.layers.get_output(below, deterministic=True)], "MC-dropout trunk")


def compile_head(net, spec):
    """(the dropout's input x, keep masks m, both M x K x 1 x 1) -> [prob (M x C)] with
    the dropout's output ``x * m / q``: one stochastic pass per row."""
    import theano.tensor as T
    from .device import function
    _, ratio = dropout_below(spec)
    x, m = T.tensor4("pooled"), T.tensor4("keep_masks")
    q = np.float32(1 - ratio)
    return function([x, m], [_head_output(net, spec, x * m / q)], "MC-dropout head")


def compile_full(net, spec):
    """(data, keep masks) -> [prob]: one stochastic pass through the whole net per row
    (the reference for ``compile_trunk`` + ``compile_head``)."""
    import theano.tensor as T
    from .device import function
    name, ratio = dropout_below(spec)
    m = T.tensor4("keep_masks")
    below = lasagne.layers.get_output(net[name].input_layer, deterministic=True)
    return function([net["data"].input_var, m],
                    [_head_output(net, spec, below * m / np.float32(1 - ratio))],
                    "MC-dropout full pass")


def draw_masks(names, passes, shape, ratio, seed=0):
    """passes x N x ``shape`` keep masks (float32 0/1, kept with probability 1 - ratio),
    image n's drawn from (seed, CRC32 of ``names[n]``): an image gets the same masks
    whatever batch or order it comes in."""
    out = np.empty((passes, len(names)) + tuple(shape), np.float32)
    for n, name in enumerate(names):
        rng = np.random.RandomState([seed, zlib.crc32(str(name).encode())])
        out[:, n] = rng.random_sample((passes,) + tuple(shape)) >= ratio
    return out


def mc_probs(trunk, head, batches, passes, ratio, seed=0):
    """passes x N x C class probabilities of N images, each pass averaged over the
    rotations of test-time augmentation. ``batches`` yields (names, [one Caffe input
    batch per rotation]); a pass uses one mask per image for all its rotations."""
    out = []
    for names, inputs in batches:
        pooled = [trunk(x)[0] for x in inputs]  # per rotation: N x K x 1 x 1
        masks = draw_masks(names, passes, pooled[0].shape[1:], ratio, seed)
        flat = masks.reshape((-1,) + masks.shape[2:])
        probs = np.mean([head(np.tile(p, (passes, 1, 1, 1)), flat)[0] for p in pooled], axis=0)
        out.append(probs.reshape(passes, len(names), -1))
    return np.concatenate(out, axis=1)
