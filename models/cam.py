"""Class-activation maps (Zhou et al., CVPR 2016) of a net whose classifier follows a
global average pool, as GoogLeNet's ``loss3/classifier`` follows ``pool5/7x7_s1``
(a 7x7 AVE pool of the 7x7 ``inception_5b/output``).

For such a net the logit of class c is exactly the spatial mean of its map plus
the bias: ``z_c = mean_xy(M_c) + b_c`` with ``M_c(x, y) = sum_k W[k, c] A_k(x, y)``,
``A`` the pooled blob (N x K x H x W) and ``W`` the classifier's weights (K x C,
Lasagne's layout). Dropout between them is the identity at test time. A softmax
sees only differences of logits, so the map shown is that of a difference: for a
binary head ``M_1 - M_0``, whose mean plus ``b_1 - b_0`` is the log-odds of
referable DR.
"""
import numpy as np
import theano.tensor as T

import lasagne

from .googlenet import UnknownLayer


def cam_layers(spec, classifier="loss3/classifier"):
    """(the name of the pooled blob, the name of the global pool) feeding ``classifier``
    through dropout. UnknownLayer when the classifier does not follow a global
    average pool (then it has no exact map)."""
    by_name = {layer.name: layer for layer in spec}
    if classifier not in by_name:
        raise UnknownLayer("no layer %s in the network" % classifier)
    bottom = by_name[classifier].bottom[0]
    while by_name[bottom].type == "Dropout":
        bottom = by_name[bottom].bottom[0]
    pool = by_name[bottom]
    p = pool.params
    if pool.type != "Pooling" or p.get("pool") != "AVE" or p.get("pad", 0) or \
            p.get("stride", 1) != 1:
        raise UnknownLayer("%s does not follow a global average pool" % classifier)
    return pool.bottom[0], pool.name


def referable_rows(num_classes, threshold=2):
    """(rows for, rows against): the classifier outputs whose maps add up to the referable
    class's evidence. Binary: class 1 against class 0, so the map's mean plus the bias is
    the log-odds z1 - z0 of referable DR; 5 levels: the mean of levels >= ``threshold``
    against the mean of the others."""
    if num_classes == 2:
        return [1], [0]
    return list(range(threshold, num_classes)), list(range(threshold))


def _contrast(values, rows):
    """The mean over ``rows[0]`` minus the mean over ``rows[1]`` of the last axis."""
    pos, neg = rows
    return values[..., pos].mean(axis=-1) - values[..., neg].mean(axis=-1)


def compile_cam(net, spec, rows):
    """A Theano function data -> (maps N x H x W, logits N) in test mode: the map of the
    ``referable_rows`` contrast and the same contrast of the logits the network computes."""
    from .device import function
    blob, pool = cam_layers(spec)
    if net[pool].output_shape[2:] != (1, 1):
        raise UnknownLayer("%s is not a global pool" % pool)
    classifier = net["loss3/classifier"]
    maps, logits = lasagne.layers.get_output([net[blob], classifier], deterministic=True)
    W = _contrast(classifier.W, rows)  # K
    cam = T.tensordot(maps, W, axes=[[1], [0]])  # N x H x W
    return function([net["data"].input_var], [cam, _contrast(logits, rows)],
                    "class-activation map")


def bias_of(net, rows):
    """The ``referable_rows`` contrast of ``loss3/classifier``'s bias."""
    return float(_contrast(net["loss3/classifier"].b.get_value(), rows))
