"""Caffe's .caffemodel binary format (both generations) and deploy.prototxt text.

The few messages needed are declared at run time with protobuf's descriptor
API, with the field numbers of Caffe's ``caffe.proto``:

- NetParameter: name=1, layers=2 (V1LayerParameter), layer=100 (LayerParameter)
- LayerParameter (V2): name=1, type=2 (string), bottom=3, top=4, blobs=7
- V1LayerParameter: bottom=2, top=3, name=4, type=5 (enum), blobs=6
- BlobProto: num=1, channels=2, height=3, width=4, data=5, diff=6, shape=7,
  double_data=8; BlobShape: dim=1

``read_caffemodel`` returns {layer name: [blob arrays]} whichever generation
the file is; ``write_caffemodel`` writes either. Errors are ``CaffeModelError``
whose message names the file and the problem on one line.
"""
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from .fileio import atomic_write_bytes

#: V1LayerParameter.LayerType values used by GoogLeNet.
V1_TYPES = {"Concat": 3, "Convolution": 4, "Dropout": 6, "InnerProduct": 14,
            "LRN": 15, "Pooling": 17, "ReLU": 18, "Softmax": 20,
            "SoftmaxWithLoss": 21, "Split": 22}
V1_TYPE_NAMES = {v: k for k, v in V1_TYPES.items()}


class CaffeModelError(ValueError):
    """A .caffemodel that cannot be used; the message names the file."""


def _messages():
    F = descriptor_pb2.FieldDescriptorProto
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="drt_caffe.proto", package="drt_caffe", syntax="proto2")

    def message(name, fields):
        msg = file_proto.message_type.add(name=name)
        for field_name, number, ftype, label, type_name, packed in fields:
            f = msg.field.add(name=field_name, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = ".drt_caffe." + type_name
            if packed:
                f.options.packed = True

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("BlobShape", [("dim", 1, F.TYPE_INT64, rep, None, True)])
    message("BlobProto", [
        ("num", 1, F.TYPE_INT32, opt, None, False),
        ("channels", 2, F.TYPE_INT32, opt, None, False),
        ("height", 3, F.TYPE_INT32, opt, None, False),
        ("width", 4, F.TYPE_INT32, opt, None, False),
        ("data", 5, F.TYPE_FLOAT, rep, None, True),
        ("diff", 6, F.TYPE_FLOAT, rep, None, True),
        ("shape", 7, F.TYPE_MESSAGE, opt, "BlobShape", False),
        ("double_data", 8, F.TYPE_DOUBLE, rep, None, True),
    ])
    message("LayerParameter", [
        ("name", 1, F.TYPE_STRING, opt, None, False),
        ("type", 2, F.TYPE_STRING, opt, None, False),
        ("bottom", 3, F.TYPE_STRING, rep, None, False),
        ("top", 4, F.TYPE_STRING, rep, None, False),
        ("blobs", 7, F.TYPE_MESSAGE, rep, "BlobProto", False),
    ])
    # The V1 type is an enum in caffe.proto; on the wire an enum is a varint,
    # so an int32 field reads and writes the same bytes.
    message("V1LayerParameter", [
        ("bottom", 2, F.TYPE_STRING, rep, None, False),
        ("top", 3, F.TYPE_STRING, rep, None, False),
        ("name", 4, F.TYPE_STRING, opt, None, False),
        ("type", 5, F.TYPE_INT32, opt, None, False),
        ("blobs", 6, F.TYPE_MESSAGE, rep, "BlobProto", False),
    ])
    message("NetParameter", [
        ("name", 1, F.TYPE_STRING, opt, None, False),
        ("layers", 2, F.TYPE_MESSAGE, rep, "V1LayerParameter", False),
        ("layer", 100, F.TYPE_MESSAGE, rep, "LayerParameter", False),
    ])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName("drt_caffe." + name))
            for name in ("BlobShape", "BlobProto", "LayerParameter",
                         "V1LayerParameter", "NetParameter")}


MESSAGES = _messages()
NetParameter = MESSAGES["NetParameter"]


def blob_to_array(blob):
    """A BlobProto as a float32 array in its declared shape (``shape`` if set,
    else the legacy num/channels/height/width, which is always 4-D)."""
    values = blob.data if len(blob.data) else blob.double_data
    data = np.asarray(values, dtype=np.float32)
    if blob.HasField("shape"):
        shape = tuple(blob.shape.dim)
    else:
        shape = (blob.num, blob.channels, blob.height, blob.width)
    if int(np.prod(shape)) != data.size:
        raise ValueError("blob holds %d values but declares shape %s" % (data.size, shape))
    return data.reshape(shape)


def read_caffemodel(path):
    """{layer name: [blob arrays]} for every layer with blobs, V1 or V2 file.

    Raises CaffeModelError (naming ``path``) for a file that is missing,
    not a protobuf NetParameter, truncated, or holds no layer blobs.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise CaffeModelError("%s: cannot read weights file (%s)" % (path, e.strerror))
    net = NetParameter()
    try:
        net.ParseFromString(raw)
    except DecodeError as e:
        raise CaffeModelError("%s: not a valid .caffemodel, truncated or corrupt "
                              "(protobuf: %s)" % (path, e))
    layers = [(l.name, l.blobs) for l in net.layers] + [(l.name, l.blobs) for l in net.layer]
    blobs = {}
    for name, layer_blobs in layers:
        if not len(layer_blobs):
            continue
        try:
            blobs[name] = [blob_to_array(b) for b in layer_blobs]
        except ValueError as e:
            raise CaffeModelError("%s: layer %s: %s" % (path, name, e))
    if not blobs:
        raise CaffeModelError("%s: not a .caffemodel: no layer with weights in it "
                              "(%d bytes)" % (path, len(raw)))
    return blobs


def write_caffemodel(path, layers, version=2, net_name="GoogleNet"):
    """Write ``layers``, a list of (name, caffe type, [arrays]), as a .caffemodel.

    version=2: ``layer`` records with string types and ``shape`` blobs.
    version=1: ``layers`` records with enum types and legacy 4-D blob shapes
    (left-padded with 1s, as Caffe wrote them, e.g. IP weights (1, 1, out, in)).
    The file is written atomically.
    """
    net = NetParameter(name=net_name)
    for name, caffe_type, arrays in layers:
        if version == 1:
            record = net.layers.add(name=name, type=V1_TYPES[caffe_type])
        else:
            record = net.layer.add(name=name, type=caffe_type)
        for array in arrays:
            array = np.asarray(array, dtype=np.float32)
            blob = record.blobs.add()
            if version == 1:
                if array.ndim > 4:
                    raise ValueError("%s: V1 blobs are at most 4-D" % name)
                blob.num, blob.channels, blob.height, blob.width = \
                    (1,) * (4 - array.ndim) + array.shape
            else:
                blob.shape.dim.extend(array.shape)
            blob.data.extend(array.ravel().tolist())
    atomic_write_bytes(path, net.SerializeToString())


def spec_to_prototxt(spec, name="GoogleNet", batch_size=1, input_shape=(3, 224, 224)):
    """A Caffe deploy.prototxt (V2 text format) for a ``models.googlenet`` spec.

    Fused ReLUs are written back as Caffe's in-place ReLU layers under their
    Caffe names; dropout is in place on its bottom, as in BVLC's prototxt.
    """
    dims = " ".join("dim: %d" % d for d in (batch_size,) + tuple(input_shape))
    lines = ['name: "%s"' % name, 'input: "data"', "input_shape { %s }" % dims]
    top_of = {}

    def layer(name, type_, bottoms, top, body=""):
        lines.append('layer { name: "%s" type: "%s" %s top: "%s" %s}' % (
            name, type_, " ".join('bottom: "%s"' % b for b in bottoms), top, body))

    for l in spec:
        p = l.params
        bottoms = [top_of.get(b, b) for b in l.bottom]
        top = l.name
        if l.type == "Convolution":
            body = ("convolution_param { num_output: %d pad: %d kernel_size: %d stride: %d } "
                    % (p["num_output"], p["pad"], p["kernel_size"], p["stride"]))
        elif l.type == "InnerProduct":
            body = "inner_product_param { num_output: %d } " % p["num_output"]
        elif l.type == "Pooling" and not p["kernel_size"]:
            body = "pooling_param { pool: %s global_pooling: true } " % p["pool"]
        elif l.type == "Pooling":
            body = ("pooling_param { pool: %s kernel_size: %d stride: %d pad: %d } "
                    % (p["pool"], p["kernel_size"], p["stride"], p["pad"]))
        elif l.type == "LRN":
            body = ("lrn_param { local_size: %d alpha: %r beta: %r } "
                    % (p["local_size"], p["alpha"], p["beta"]))
        elif l.type == "Dropout":
            body = "dropout_param { dropout_ratio: %r } " % p["dropout_ratio"]
            top = bottoms[0]  # in place, as in BVLC's prototxt
        else:
            body = ""
        layer(l.name, l.type, bottoms, top, body)
        top_of[l.name] = top
        if p.get("relu"):
            layer(p["relu"], "ReLU", [top], top)
    return "\n".join(lines) + "\n"
