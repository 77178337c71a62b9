"""A trained model on disk: the network spec and its weights in Caffe's layout.

``model.npz`` holds ``spec`` (JSON), ``input_shape`` and one array per blob
(``layer#0`` weights, ``layer#1`` bias, as in a .caffemodel). ``export_caffe``
writes a net as a V2 .caffemodel plus deploy.prototxt.
"""
import json
import os

import numpy as np

from .caffe_import import get_blobs, load_blobs, save_blobs, set_blobs
from .caffemodel import spec_to_prototxt, write_caffemodel
from .fileio import atomic_write_bytes
from .googlenet import LayerSpec, build


def spec_to_json(spec):
    return json.dumps([[l.name, l.type, list(l.bottom), l.params] for l in spec])


def spec_from_json(text):
    return [LayerSpec(name, type_, tuple(bottom), params)
            for name, type_, bottom, params in json.loads(text)]


def save_model(path, spec, net, input_shape):
    save_blobs(path, get_blobs(net), spec=np.array(spec_to_json(spec)),
               input_shape=np.array(input_shape))


def load_spec(path):
    """The network spec of a ``model.npz``, without building the net."""
    with np.load(path) as npz:
        return spec_from_json(str(npz["spec"]))


def load_model(path, input_var=None):
    """(spec, input_shape, net with the saved weights) of a ``model.npz``."""
    with np.load(path) as npz:
        spec = spec_from_json(str(npz["spec"]))
        input_shape = tuple(int(d) for d in npz["input_shape"])
        blobs = load_blobs(npz)
    net = build(spec, input_var=input_var, input_shape=input_shape)
    set_blobs(net, blobs, path)
    return spec, input_shape, net


def export_caffe(spec, net, input_shape, out_dir):
    """``out_dir/model.caffemodel`` (V2) and ``out_dir/deploy.prototxt`` of a built net."""
    types = {l.name: l.type for l in spec}
    blobs = get_blobs(net)
    os.makedirs(out_dir, exist_ok=True)
    caffemodel = os.path.join(out_dir, "model.caffemodel")
    write_caffemodel(caffemodel, [(name, types[name], arrays) for name, arrays in blobs.items()])
    prototxt = os.path.join(out_dir, "deploy.prototxt")
    atomic_write_bytes(prototxt, spec_to_prototxt(spec, input_shape=input_shape).encode())
    return caffemodel, prototxt
