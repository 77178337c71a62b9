"""BVLC GoogLeNet, declared once as Caffe layers and built in Lasagne.

``googlenet_spec()`` is the network as data: a list of ``LayerSpec`` in the
order of BVLC's ``train_val.prototxt``, every layer named exactly as there
(``conv1/7x7_s2``, ``inception_4d/5x5_reduce``, ``loss3/classifier``...).
``build()`` turns any such list into Lasagne layers; ``models.caffemodel``
writes the same list as a ``deploy.prototxt``.

Conventions: input ``data`` is N x 3 x 224 x 224 float32, BGR, 0-255, minus
the mean (104, 117, 123). Caffe's in-place ReLUs are fused into their
Convolution / InnerProduct layer (the ReLU's Caffe name is kept in the spec
for the prototxt), so a layer's output is the Caffe blob of the same name
after the ReLU, as Caffe leaves it.
"""
from collections import OrderedDict, namedtuple

import numpy as np

import lasagne
from lasagne.layers import (ConcatLayer, DenseLayer, DropoutLayer, InputLayer,
                            NonlinearityLayer)
from lasagne.nonlinearities import rectify, softmax

from .layers import CaffeConv2DLayer, CaffeLRNLayer, CaffePool2DLayer

MEAN_BGR = (104.0, 117.0, 123.0)
INPUT_SHAPE = (3, 224, 224)

#: name: the Caffe layer (and top blob) name; type: the Caffe layer type;
#: bottom: tuple of bottom blob names; params: dict of the layer's settings.
LayerSpec = namedtuple("LayerSpec", "name type bottom params")

#: Layers with parameters, i.e. those a .caffemodel holds blobs for.
PARAM_TYPES = ("Convolution", "InnerProduct")



class UnknownLayer(LookupError):
    """A layer name the user gave is not in the network; the message is one line."""

def conv(name, bottom, num_output, kernel_size, stride=1, pad=0, relu=None,
         bias=0.2):
    """Convolution (xavier weights, constant bias ``bias``), optionally + ReLU."""
    return LayerSpec(name, "Convolution", (bottom,), dict(
        num_output=num_output, kernel_size=kernel_size, stride=stride, pad=pad,
        relu=relu, bias_filler=bias))


def inner_product(name, bottom, num_output, relu=None, bias=0.2):
    return LayerSpec(name, "InnerProduct", (bottom,), dict(
        num_output=num_output, relu=relu, bias_filler=bias))


def pooling(name, bottom, pool, kernel_size, stride=1, pad=0):
    return LayerSpec(name, "Pooling", (bottom,), dict(
        pool=pool, kernel_size=kernel_size, stride=stride, pad=pad))


def lrn(name, bottom):
    return LayerSpec(name, "LRN", (bottom,), dict(local_size=5, alpha=1e-4, beta=0.75))


def dropout(name, bottom, ratio):
    return LayerSpec(name, "Dropout", (bottom,), dict(dropout_ratio=ratio))


def inception(name, bottom, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj):
    """One inception module; ``name/output`` concatenates 1x1, 3x3, 5x5, pool_proj."""
    p = name + "/"
    return [
        conv(p + "1x1", bottom, n1x1, 1, relu=p + "relu_1x1"),
        conv(p + "3x3_reduce", bottom, n3x3_reduce, 1, relu=p + "relu_3x3_reduce"),
        conv(p + "3x3", p + "3x3_reduce", n3x3, 3, pad=1, relu=p + "relu_3x3"),
        conv(p + "5x5_reduce", bottom, n5x5_reduce, 1, relu=p + "relu_5x5_reduce"),
        conv(p + "5x5", p + "5x5_reduce", n5x5, 5, pad=2, relu=p + "relu_5x5"),
        pooling(p + "pool", bottom, "MAX", 3, 1, 1),
        conv(p + "pool_proj", p + "pool", pool_proj, 1, relu=p + "relu_pool_proj"),
        LayerSpec(p + "output", "Concat",
                  (p + "1x1", p + "3x3", p + "5x5", p + "pool_proj"), {}),
    ]


def aux_head(n, bottom, num_classes):
    """Auxiliary classifier ``loss{n}/*`` (train_val only), on a 14x14 blob."""
    p = "loss%d/" % n
    return [
        pooling(p + "ave_pool", bottom, "AVE", 5, 3),
        conv(p + "conv", p + "ave_pool", 128, 1, relu=p + "relu_conv"),
        inner_product(p + "fc", p + "conv", 1024, relu=p + "relu_fc"),
        dropout(p + "drop_fc", p + "fc", 0.7),
        inner_product(p + "classifier", p + "drop_fc", num_classes, bias=0.0),
    ]


# (1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool_proj) per module, from BVLC.
INCEPTION_CHANNELS = OrderedDict([
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
])

#: Auxiliary heads: loss1 on inception_4a, loss2 on inception_4d.
AUX_HEADS = {"4a": 1, "4d": 2}


def googlenet_spec(num_classes=1000, aux_heads=False):
    """BVLC GoogLeNet as a list of ``LayerSpec`` (deploy net, plus loss1/loss2 heads
    when ``aux_heads``). ``num_classes`` sets every classifier's outputs."""
    spec = [
        conv("conv1/7x7_s2", "data", 64, 7, stride=2, pad=3, relu="conv1/relu_7x7"),
        pooling("pool1/3x3_s2", "conv1/7x7_s2", "MAX", 3, 2),
        lrn("pool1/norm1", "pool1/3x3_s2"),
        conv("conv2/3x3_reduce", "pool1/norm1", 64, 1, relu="conv2/relu_3x3_reduce"),
        conv("conv2/3x3", "conv2/3x3_reduce", 192, 3, pad=1, relu="conv2/relu_3x3"),
        lrn("conv2/norm2", "conv2/3x3"),
        pooling("pool2/3x3_s2", "conv2/norm2", "MAX", 3, 2),
    ]
    bottom = "pool2/3x3_s2"
    for module, channels in INCEPTION_CHANNELS.items():
        spec += inception("inception_" + module, bottom, *channels)
        bottom = "inception_%s/output" % module
        if aux_heads and module in AUX_HEADS:
            spec += aux_head(AUX_HEADS[module], bottom, num_classes)
        if module in ("3b", "4e"):
            pool_name = "pool3/3x3_s2" if module == "3b" else "pool4/3x3_s2"
            spec.append(pooling(pool_name, bottom, "MAX", 3, 2))
            bottom = pool_name
    spec += [
        pooling("pool5/7x7_s1", bottom, "AVE", 7, 1),
        dropout("pool5/drop_7x7_s1", "pool5/7x7_s1", 0.4),
        inner_product("loss3/classifier", "pool5/drop_7x7_s1", num_classes, bias=0.0),
        LayerSpec("prob", "Softmax", ("loss3/classifier",), {}),
    ]
    return spec


def mini_spec(num_classes=1000, aux_heads=False):
    """A small GoogLeNet-shaped net (stem, one inception module, global pool,
    ``loss3/classifier``) with BVLC's layer names, for fast tests and demos
    on small inputs (e.g. 3 x 64 x 64). It has no auxiliary heads."""
    return [
        conv("conv1/7x7_s2", "data", 8, 7, stride=2, pad=3, relu="conv1/relu_7x7"),
        pooling("pool1/3x3_s2", "conv1/7x7_s2", "MAX", 3, 2),
        lrn("pool1/norm1", "pool1/3x3_s2"),
        conv("conv2/3x3", "pool1/norm1", 16, 3, pad=1, relu="conv2/relu_3x3"),
        pooling("pool2/3x3_s2", "conv2/3x3", "MAX", 3, 2),
    ] + inception("inception_3a", "pool2/3x3_s2", 8, 8, 8, 4, 4, 4) + [
        LayerSpec("pool5/7x7_s1", "Pooling", ("inception_3a/output",),
                  dict(pool="AVE", kernel_size=0, stride=1, pad=0)),  # 0: global
        dropout("pool5/drop_7x7_s1", "pool5/7x7_s1", 0.4),
        inner_product("loss3/classifier", "pool5/drop_7x7_s1", num_classes, bias=0.0),
        LayerSpec("prob", "Softmax", ("loss3/classifier",), {}),
    ]


NETWORKS = {"googlenet": googlenet_spec, "mini": mini_spec}


def features_spec(spec, layer, num_classes):
    """``spec`` cut after ``layer``, then a global AVE pool ``features/global_pool``
    (kernel 0 = the whole blob), a new ``loss3/classifier`` and ``prob``: the
    network of a linear classifier on that layer's activations."""
    names = [l.name for l in spec]
    if layer not in names:
        raise UnknownLayer("no layer %s in the network" % layer)
    keep = spec[:names.index(layer) + 1]
    # Aux heads are never needed below a feature layer.
    keep = [l for l in keep if not l.name.startswith(("loss1/", "loss2/"))]
    return keep + [
        LayerSpec("features/global_pool", "Pooling", (layer,),
                  dict(pool="AVE", kernel_size=0, stride=1, pad=0)),
        inner_product("loss3/classifier", "features/global_pool", num_classes, bias=0.0),
        LayerSpec("prob", "Softmax", ("loss3/classifier",), {}),
    ]


class CaffeXavier(lasagne.init.Initializer):
    """Caffe's ``xavier`` filler: U(-a, a), a = sqrt(3 / fan_in).

    fan_in is in*kh*kw for conv weights (out, in, kh, kw) and ``in`` for
    Lasagne dense weights (in, out).
    """

    def sample(self, shape):
        fan_in = np.prod(shape[1:]) if len(shape) == 4 else shape[0]
        a = np.sqrt(3.0 / fan_in)
        rng = lasagne.random.get_rng()
        return rng.uniform(-a, a, size=shape).astype("float32")


def build(spec, input_var=None, batch_size=None, input_shape=INPUT_SHAPE):
    """Lasagne layers for ``spec``, as an OrderedDict keyed by Caffe layer name.

    The input layer is ``data`` (batch_size x ``input_shape``). Parameters
    start from Caffe's fillers (xavier weights, constant biases); use
    ``models.caffe_import.load_caffemodel`` to put trained weights in.
    """
    net = OrderedDict()
    net["data"] = InputLayer((batch_size,) + tuple(input_shape), input_var=input_var, name="data")
    for layer in spec:
        bottoms = [net[b] for b in layer.bottom]
        p = layer.params
        if layer.type == "Convolution":
            lasagne_layer = CaffeConv2DLayer(
                bottoms[0], p["num_output"], p["kernel_size"], stride=p["stride"],
                pad=p["pad"], W=CaffeXavier(), b=lasagne.init.Constant(p["bias_filler"]),
                nonlinearity=rectify if p["relu"] else None, name=layer.name)
        elif layer.type == "InnerProduct":
            lasagne_layer = DenseLayer(
                bottoms[0], p["num_output"], W=CaffeXavier(),
                b=lasagne.init.Constant(p["bias_filler"]),
                nonlinearity=rectify if p["relu"] else None, name=layer.name)
        elif layer.type == "Pooling":
            # kernel_size 0 means global pooling (Caffe's global_pooling: true)
            kernel = p["kernel_size"] or bottoms[0].output_shape[2]
            lasagne_layer = CaffePool2DLayer(bottoms[0], kernel, p["stride"],
                                             p["pad"], p["pool"], name=layer.name)
        elif layer.type == "LRN":
            lasagne_layer = CaffeLRNLayer(bottoms[0], p["local_size"], p["alpha"],
                                          p["beta"], name=layer.name)
        elif layer.type == "Concat":
            lasagne_layer = ConcatLayer(bottoms, axis=1, name=layer.name)
        elif layer.type == "Dropout":
            lasagne_layer = DropoutLayer(bottoms[0], p=p["dropout_ratio"], rescale=True,
                                         name=layer.name)
        elif layer.type == "Softmax":
            lasagne_layer = NonlinearityLayer(bottoms[0], softmax, name=layer.name)
        else:
            raise ValueError("%s: unsupported Caffe layer type %s" % (layer.name, layer.type))
        net[layer.name] = lasagne_layer
    return net


def param_layers(net):
    """The Convolution / InnerProduct layers of a built net, in order."""
    return [layer for layer in net.values()
            if isinstance(layer, (CaffeConv2DLayer, DenseLayer))]


def to_caffe_input(rgb):
    """H x W x 3 uint8 RGB image(s) (or N x H x W x 3) to Caffe's input
    convention: N x 3 x H x W float32, BGR, 0-255, minus ``MEAN_BGR``."""
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim == 3:
        rgb = rgb[None]
    bgr = rgb[..., ::-1] - np.asarray(MEAN_BGR, dtype=np.float32)
    return np.ascontiguousarray(bgr.transpose(0, 3, 1, 2))


def compile_forward(net, names):
    """A Theano function data -> [outputs of the named layers], test mode
    (dropout off). Names are Caffe layer / blob names of ``net``."""
    from .device import function
    unknown = [n for n in names if n not in net]
    if unknown:
        raise UnknownLayer("no such layer in the network: %s" % ", ".join(unknown))
    outputs = lasagne.layers.get_output([net[n] for n in names], deterministic=True)
    return function([net["data"].input_var], outputs, "forward function")
