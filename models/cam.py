"""Class-activation maps (Zhou et al., CVPR 2016) of a net whose classifier follows a
global average pool, as GoogLeNet's ``loss3/classifier`` follows ``pool5/7x7_s1``
(a 7x7 AVE pool of the 7x7 ``inception_5b/output``).

For such a net the logit of class c is exactly the spatial mean of its map plus
the bias: ``z_c = mean_xy(M_c) + b_c`` with ``M_c(x, y) = sum_k W[k, c] A_k(x, y)``,
``A`` the pooled blob (N x K x H x W) and ``W`` the classifier's weights (K x C,
Lasagne's layout). Dropout between them is the identity at test time.

The map shown is that of the log-odds of referable DR,
``L = log sum_{c in R} e^z_c - log sum_{c in N} e^z_c`` (R: the referable classes,
N: the others). Per image, each class's map is weighted by ``dL/dz_c``: its softmax
share within its group, ``s_c = e^z_c / sum_{group} e^z``, positive in R and
negative in N. Since ``log sum_G e^z = sum_G s_c z_c + H(s_G)`` (``H`` the entropy of
the shares), the identity is exact:

    L = mean_xy(M) + sum_R s_c b_c - sum_N s_c b_c + H(s_R) - H(s_N),
    M = sum_R s_c M_c - sum_N s_c M_c.

For a binary head (one class per group, ``s = 1``, ``H = 0``) ``M = M_1 - M_0`` and
the constant is ``b_1 - b_0``. Red (M > 0) raises the log-odds, blue lowers it.
"""
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
    """(classes for, classes against) referable DR: binary, class 1 against class 0;
    5 levels, the levels >= ``threshold`` against the others."""
    if num_classes == 2:
        return [1], [0]
    return list(range(threshold, num_classes)), list(range(threshold))


def _shares(logits, group):
    """N x len(group): the softmax of ``logits`` (N x C) within ``group``, and its entropy."""
    z = logits[:, group]
    z = z - z.max(axis=1, keepdims=True)
    e = T.exp(z)
    s = e / e.sum(axis=1, keepdims=True)
    log_s = z - T.log(e.sum(axis=1, keepdims=True))
    return s, -(s * log_s).sum(axis=1)


def compile_cam(net, spec, rows):
    """A Theano function data -> (maps N x H x W, offsets N, log-odds N) in test mode:
    the map of the log-odds of ``rows`` (``referable_rows``) and the per-image constant
    with ``maps.mean((1, 2)) + offsets == log-odds`` (the module docstring's identity);
    the log-odds are the network's own, from its logits."""
    from .device import function
    blob, pool = cam_layers(spec)
    if net[pool].output_shape[2:] != (1, 1):
        raise UnknownLayer("%s is not a global pool" % pool)
    classifier = net["loss3/classifier"]
    maps, logits = lasagne.layers.get_output([net[blob], classifier], deterministic=True)
    pos, neg = rows
    s_pos, h_pos = _shares(logits, pos)
    s_neg, h_neg = _shares(logits, neg)
    weights = T.concatenate([s_pos, -s_neg], axis=1)  # N x C': dL/dz per image
    W = classifier.W[:, pos + neg]  # K x C'
    per_image = T.dot(weights, W.T)  # N x K
    cam = (maps * per_image[:, :, None, None]).sum(axis=1)  # N x H x W
    offset = T.dot(weights, classifier.b[pos + neg]) + h_pos - h_neg
    z_pos, z_neg = logits[:, pos], logits[:, neg]
    log_odds = (T.log(T.exp(z_pos - z_pos.max(axis=1, keepdims=True)).sum(axis=1))
                + z_pos.max(axis=1)
                - T.log(T.exp(z_neg - z_neg.max(axis=1, keepdims=True)).sum(axis=1))
                - z_neg.max(axis=1))
    return function([net["data"].input_var], [cam, offset, log_odds], "class-activation map")


def compile_class_maps(net, spec):
    """A Theano function data -> (maps N x C x H x W, biases C) in test mode: every class's
    own map ``M_c`` (Zhou et al.'s CAM), with ``maps.mean((2, 3)) + biases`` equal to the
    logits; for class-labelled data, where no class is "referable"."""
    from .device import function
    blob, pool = cam_layers(spec)
    if net[pool].output_shape[2:] != (1, 1):
        raise UnknownLayer("%s is not a global pool" % pool)
    classifier = net["loss3/classifier"]
    maps = lasagne.layers.get_output(net[blob], deterministic=True)  # N x K x H x W
    per_class = T.tensordot(maps, classifier.W, axes=[[1], [0]])  # N x H x W x C
    return function([net["data"].input_var], [per_class.dimshuffle(0, 3, 1, 2),
                                              classifier.b], "class maps")
