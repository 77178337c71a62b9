"""A built network as an ONNX model, and its forward pass on ONNX Runtime.

``onnx_model(spec, net, input_shape, outputs)`` writes the network as the project
describes it (``models.googlenet``: a list of ``LayerSpec``; the weights of ``net``,
in Caffe's layout as ``models.caffe_import.get_blobs`` gives them, the blob shapes of
``net``), keeping only the layers the requested ``outputs`` need. ``export_onnx``
writes it to a file (opset 17, input ``data``: N x ``input_shape``, Caffe's input
convention of ``googlenet.to_caffe_input``; outputs named after the spec's blobs).
``compile_forward_onnx`` runs it on ONNX Runtime with the call convention of
``googlenet.compile_forward``: x -> [one array per name].

Each Caffe layer type, as ``models.layers`` computes it:

- Convolution: ``Conv`` (+ ``Relu`` when the spec fuses Caffe's in-place ReLU). Both
  cross-correlate, so W (out, in, kh, kw) goes in as it is: ``CaffeConv2DLayer``
  calls ``conv2d(filter_flip=False)`` and ignores Lasagne's ``flip_filters``.
- Pooling: Caffe's ceil-mode size (``caffe_ops.caffe_pooled_size``, including its
  rule that drops a last window starting in the padding) is computed here and
  written as explicit, possibly asymmetric, pads in floor mode, which gives exactly
  that many windows whatever a runtime's ``ceil_mode`` does. MAX: ``MaxPool`` (pads
  never win, as in Caffe). AVE: ``AveragePool`` where every window is whole; else
  zero ``Pad``, ``AveragePool`` over k x k, then times k*k / Caffe's divisor (the
  window clipped to H + pad: ``caffe_ops.caffe_ave_divisors``), the Theano layer's
  own computation. A global pool (kernel_size 0) over a square blob:
  ``GlobalAveragePool`` / ``GlobalMaxPool``.
- LRN (ACROSS_CHANNELS): Caffe's form, x / (k + alpha/n sum x^2)^beta, as ``lrn``
  writes it (a banded 1x1 ``Conv`` for the window sum; ONNX's ``LRN`` op is slower on
  ONNX Runtime).
- Concat: ``Concat`` on axis 1. Dropout: ``Identity`` (inference). InnerProduct:
  ``Flatten`` + ``Gemm`` with Caffe's W (out, in), transB (+ ``Relu``). Softmax:
  ``Softmax`` on axis 1.

A layer type without a mapping is an ``UnsupportedLayer`` error naming the layer.
``onnx`` and ``onnxruntime`` are imported only by the functions that need them.
"""
import os

import numpy as np

from .caffe_import import get_blobs
from .caffe_ops import caffe_ave_divisors, caffe_pooled_size
from .fileio import atomic_write_bytes
from .googlenet import LayerSpec, UnknownLayer

OPSET = 17
KNOWN_TYPES = ("Convolution", "InnerProduct", "Pooling", "LRN", "Concat", "Dropout", "Softmax")


class UnsupportedLayer(ValueError):
    """A layer the exporter has no ONNX mapping for; the message names it."""


def spec_of(net):
    """The ``LayerSpec`` list of a net built by ``googlenet.build`` (for callers that
    hold only the net); what the exporter reads of it equals the spec it was built
    from. A global pool comes back with its kernel (the blob's height), which exports
    the same. Layers of other classes keep their class name as type (the exporter
    then refuses them by name)."""
    import lasagne
    from lasagne.layers import ConcatLayer, DenseLayer, DropoutLayer, NonlinearityLayer
    from .layers import CaffeConv2DLayer, CaffeLRNLayer, CaffePool2DLayer
    names = {id(layer): name for name, layer in net.items()}
    spec = []
    for name, layer in net.items():
        if name == "data":
            continue
        inputs = getattr(layer, "input_layers", None) or [layer.input_layer]
        bottom = tuple(names[id(i)] for i in inputs)
        relu = getattr(layer, "nonlinearity", None) is lasagne.nonlinearities.rectify
        if isinstance(layer, CaffeConv2DLayer):
            kh, kw = layer.filter_size
            if kh != kw or layer.stride[0] != layer.stride[1] or layer.pad[0] != layer.pad[1]:
                raise UnsupportedLayer("%s: a non-square convolution has no spec" % name)
            spec.append(LayerSpec(name, "Convolution", bottom, dict(
                num_output=layer.num_filters, kernel_size=kh, stride=layer.stride[0],
                pad=layer.pad[0], relu=relu)))
        elif isinstance(layer, DenseLayer):
            spec.append(LayerSpec(name, "InnerProduct", bottom,
                                  dict(num_output=layer.num_units, relu=relu)))
        elif isinstance(layer, CaffePool2DLayer):
            spec.append(LayerSpec(name, "Pooling", bottom, dict(
                pool=layer.pool, kernel_size=layer.kernel_size, stride=layer.stride,
                pad=layer.pad)))
        elif isinstance(layer, CaffeLRNLayer):
            spec.append(LayerSpec(name, "LRN", bottom, dict(
                local_size=layer.n, alpha=layer.alpha * layer.n, beta=layer.beta, k=layer.k)))
        elif isinstance(layer, ConcatLayer) and layer.axis == 1:
            spec.append(LayerSpec(name, "Concat", bottom, {}))
        elif isinstance(layer, DropoutLayer):
            spec.append(LayerSpec(name, "Dropout", bottom, dict(dropout_ratio=layer.p)))
        elif isinstance(layer, NonlinearityLayer) and \
                layer.nonlinearity is lasagne.nonlinearities.softmax:
            spec.append(LayerSpec(name, "Softmax", bottom, {}))
        else:
            spec.append(LayerSpec(name, type(layer).__name__, bottom, {}))
    return spec


def needed(spec, outputs):
    """The layers of ``spec`` that ``outputs`` depend on, in the spec's order."""
    by_name = {layer.name: layer for layer in spec}
    unknown = [n for n in outputs if n not in by_name]
    if unknown:
        raise UnknownLayer("no such layer in the network: %s" % ", ".join(unknown))
    keep, todo = set(), list(outputs)
    while todo:
        name = todo.pop()
        if name in keep or name not in by_name:
            continue
        keep.add(name)
        todo.extend(by_name[name].bottom)
    return [layer for layer in spec if layer.name in keep]


def pool_geometry(name, size, kernel, stride, pad):
    """(output size, pad at the end) along one axis: Caffe's ceil-mode size as floor
    mode over [pad, size, end pad]. An end pad below 0 (a window that would need
    cutting, kernel < stride) has no such form and is refused by name."""
    out = caffe_pooled_size(size, kernel, stride, pad)
    end = (out - 1) * stride + kernel - size - pad
    if end < 0:
        raise UnsupportedLayer("%s: pooling kernel %d stride %d pad %d on %d leaves input "
                               "cells after the last window; no ONNX form is exported"
                               % (name, kernel, stride, pad, size))
    return out, end


def _shape(net, name):
    return tuple(net[name].output_shape[1:])


def lrn(x, name, channels, size, alpha, beta, k, node, const):
    """Caffe's LRN across channels, x / (k + alpha/n sum_window x^2)^beta, as ONNX
    Runtime runs it fastest: the window sum of squares a 1x1 ``Conv`` with a banded
    C x C matrix of alpha/n (bias k); beta = 0.75 as sqrt(b) sqrt(sqrt(b)), as
    ``layers.CaffeLRNLayer`` computes it (ONNX Runtime's ``LRN`` takes a power per
    element: 2.2x the time at inception's norm2, 16 x 192 x 56 x 56)."""
    band = np.zeros((channels, channels, 1, 1), np.float32)
    for c in range(channels):
        band[c, max(0, c - size // 2):c + size // 2 + 1] = alpha / size
    squares = node("Mul", [x, x], name + "#sq")
    base = node("Conv", [squares, const(name + "#band", band),
                         const(name + "#k", np.full(channels, k, np.float32))], name + "#base",
                kernel_shape=[1, 1])
    if beta == 0.75:
        root = node("Sqrt", [base], name + "#root")
        den = node("Mul", [root, node("Sqrt", [root], name + "#root4")], name + "#den")
    else:
        den = node("Pow", [base, const(name + "#beta", np.array(beta, np.float32))],
                   name + "#den")
    return node("Div", [x, den], name)


def onnx_model(spec, net, input_shape, outputs=("prob",)):
    """An ``onnx.ModelProto`` of ``spec`` with ``net``'s weights and blob shapes, its
    graph from ``data`` to the ``outputs`` blobs (only the layers they need)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    for layer in spec:
        if layer.type not in KNOWN_TYPES:
            raise UnsupportedLayer("layer %s: Caffe layer type %s has no ONNX export (known: "
                                   "%s)" % (layer.name, layer.type, ", ".join(KNOWN_TYPES)))
    outputs = list(outputs)
    layers = needed(spec, outputs)
    blobs = get_blobs(net)
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    for layer in layers:
        p, name, x = layer.params, layer.name, layer.bottom[0]
        if layer.type in ("Convolution", "InnerProduct"):
            if name not in blobs:
                raise UnsupportedLayer("layer %s: not a parameter layer of the net" % name)
            W, b = blobs[name]
            top = name + "#pre_relu" if p.get("relu") else name
            if layer.type == "Convolution":
                k, s, pad = p["kernel_size"], p["stride"], p["pad"]
                if W.shape[2:] != (k, k):
                    raise UnsupportedLayer("layer %s: the net's weights %s do not match kernel "
                                           "%d" % (name, W.shape, k))
                node("Conv", [x, const(name + "#0", W), const(name + "#1", b)], top,
                     kernel_shape=[k, k], strides=[s, s], pads=[pad, pad, pad, pad])
            else:
                flat = node("Flatten", [x], name + "#flat", axis=1)
                node("Gemm", [flat, const(name + "#0", W), const(name + "#1", b)], top,
                     transB=1)
            if p.get("relu"):
                node("Relu", [top], name)
        elif layer.type == "Pooling":
            _, h, w = _shape(net, x)
            kernel = p["kernel_size"] or h  # 0: global, as googlenet.build reads it
            s, pad, mode = p["stride"], p["pad"], p["pool"]
            if mode not in ("MAX", "AVE"):
                raise UnsupportedLayer("layer %s: pool %s has no ONNX export" % (name, mode))
            if kernel == h == w and pad == 0:  # one window: the whole blob
                node("GlobalMaxPool" if mode == "MAX" else "GlobalAveragePool", [x], name)
                continue
            oh, end_h = pool_geometry(name, h, kernel, s, pad)
            ow, end_w = pool_geometry(name, w, kernel, s, pad)
            geometry = dict(kernel_shape=[kernel, kernel], strides=[s, s])
            if mode == "MAX":
                node("MaxPool", [x], name, pads=[pad, pad, end_h, end_w], **geometry)
            elif not (pad or end_h or end_w):
                node("AveragePool", [x], name, **geometry)
            else:
                padded = node("Pad", [x, const(name + "#pads", np.array(
                    [0, 0, pad, pad, 0, 0, end_h, end_w], np.int64))], name + "#padded")
                summed = node("AveragePool", [padded], name + "#mean", **geometry)
                div = np.outer(caffe_ave_divisors(h, kernel, s, pad),
                               caffe_ave_divisors(w, kernel, s, pad))
                assert div.shape == (oh, ow)
                scale = (kernel * kernel / div).astype(np.float32)[None, None]
                node("Mul", [summed, const(name + "#scale", scale)], name)
        elif layer.type == "LRN":
            lrn(x, name, _shape(net, x)[0], int(p["local_size"]), float(p["alpha"]),
                float(p["beta"]), float(p.get("k", 1.0)), node, const)
        elif layer.type == "Concat":
            node("Concat", list(layer.bottom), name, axis=1)
        elif layer.type == "Dropout":
            node("Identity", [x], name)
        elif layer.type == "Softmax":
            node("Softmax", [x], name, axis=1)

    graph = helper.make_graph(
        nodes, "dr-transfer",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT,
                                       ["N"] + [int(d) for d in input_shape])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N"] + list(_shape(net, n)))
         for n in outputs],
        initializer=inits)
    opset = helper.make_opsetid("", OPSET)
    model = helper.make_model(graph, opset_imports=[opset], producer_name="dr-transfer",
                              ir_version=helper.find_min_ir_version_for([opset]))
    onnx.checker.check_model(model)
    return model


def export_onnx(spec, net, input_shape, path, outputs=("prob",)):
    """``path``: the ONNX model of ``spec`` with ``net``'s weights (``onnx_model``),
    written atomically; returns ``path``."""
    atomic_write_bytes(path, onnx_model(spec, net, input_shape, outputs).SerializeToString())
    return path


def default_threads():
    """The threads Theano's OpenMP uses (``models.compat`` sets OMP_NUM_THREADS to the
    CPU count unless it is set): ONNX Runtime gets as many."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def onnx_session(model, threads=None, profile_prefix=None):
    """An ONNX Runtime CPU session of ``model`` (a ModelProto or its bytes), every graph
    optimisation on, ``threads`` intra-op threads (default: ``default_threads()``);
    ``profile_prefix``: ONNX Runtime's profiler on, its JSON file named from it."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def compile_forward_onnx(spec, net, input_shape, outputs=("prob",), threads=None):
    """``googlenet.compile_forward``'s function on ONNX Runtime: x (N x ``input_shape``)
    -> [the ``outputs`` blobs], test mode, from an in-memory export of ``spec`` with
    ``net``'s current weights (later changes to ``net`` are not seen)."""
    outputs = list(outputs)
    session = onnx_session(onnx_model(spec, net, input_shape, outputs), threads)

    def forward(x):
        return session.run(outputs, {"data": np.ascontiguousarray(x, dtype=np.float32)})
    return forward
