"""Put .caffemodel weights into a Lasagne net built by ``models.googlenet.build``.

Blobs are matched to layers by Caffe layer name. Conventions:

- Convolution: Caffe W (out, in, kh, kw) is used as is (the layers
  cross-correlate, so no flip); bias (out,).
- InnerProduct: Caffe W (out, in) is transposed to Lasagne's (in, out).
- Legacy V1 blobs carry 4-D shapes padded with leading 1s, e.g. IP weights
  (1, 1, out, in) and biases (1, 1, 1, out); leading 1s are ignored when
  comparing shapes.

Converted blobs are cached under ``weights/cache`` keyed by the file's SHA1,
so a second load skips the protobuf parse.
"""
import logging
import os
from pathlib import Path

import numpy as np

from .caffemodel import CaffeModelError, read_caffemodel
from .fileio import atomic_savez, sha1_of
from .googlenet import param_layers
from .layers import CaffeConv2DLayer

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def save_blobs(path, blobs, **extra):
    """Write {layer: [arrays]} (and ``extra`` arrays) atomically to an .npz file,
    one array per blob under ``layer#index``."""
    arrays = {"%s#%d" % (name, i): a for name, layer_blobs in blobs.items()
              for i, a in enumerate(layer_blobs)}
    atomic_savez(path, **arrays, **extra)


def load_blobs(npz):
    """{layer: [arrays]} from an open .npz written by ``save_blobs``."""
    keys = [k for k in npz.files if "#" in k]
    blobs = {}
    for key in sorted(keys, key=lambda k: int(k.rsplit("#", 1)[1])):
        blobs.setdefault(key.rsplit("#", 1)[0], []).append(npz[key])
    return blobs


def read_caffemodel_cached(path, cache_dir=WEIGHTS_DIR / "cache", check=None):
    """``read_caffemodel(path)`` through an .npz cache named after the file's SHA1.

    ``check(blobs)``, when given, runs on the blobs before they are returned;
    a file it rejects (CaffeModelError) is never written to the cache.
    """
    if not os.path.isfile(path):
        raise CaffeModelError("%s: weights file not found" % path)
    digest = sha1_of(path)
    cached = Path(cache_dir) / ("%s-%s.npz" % (Path(path).stem, digest[:16]))
    if cached.exists():
        with np.load(cached) as npz:
            blobs = load_blobs(npz)
        if check:
            check(blobs)
        return blobs
    blobs = read_caffemodel(path)
    if check:
        check(blobs)
    try:
        save_blobs(cached, blobs)
    except OSError as e:  # a read-only checkout still loads, only slower
        log.warning("could not cache converted weights in %s: %s", cache_dir, e)
    return blobs


def caffe_shapes(layer):
    """The (weights, bias) shapes Caffe stores for a Lasagne conv/dense layer."""
    W = layer.W.get_value(borrow=True).shape
    if isinstance(layer, CaffeConv2DLayer):
        return [W, (W[0],)]
    return [(W[1], W[0]), (W[1],)]


def _strip_ones(shape):
    shape = tuple(shape)
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return shape


def to_lasagne(path, layer, arrays):
    """Caffe blobs of ``layer`` as Lasagne (W, b) arrays; CaffeModelError on a mismatch."""
    expected = caffe_shapes(layer)
    if len(arrays) != 2:
        raise CaffeModelError("%s: layer %s has %d blobs, expected 2 (weights, bias)"
                              % (path, layer.name, len(arrays)))
    out = []
    for kind, array, shape in zip(("weights", "bias"), arrays, expected):
        if _strip_ones(array.shape) != _strip_ones(shape):
            raise CaffeModelError("%s: layer %s: %s blob has shape %s, the network expects %s"
                                  % (path, layer.name, kind, tuple(array.shape), shape))
        out.append(array.reshape(shape).astype(np.float32))
    W, b = out
    if not isinstance(layer, CaffeConv2DLayer):
        W = np.ascontiguousarray(W.T)
    return W, b


def set_blobs(net, blobs, source, skip=()):
    """Set ``net``'s conv / dense parameters from Caffe-layout ``blobs``; returns
    the layers left at their fillers (absent from ``blobs`` or in ``skip``)."""
    fresh = []
    for layer in param_layers(net):
        if layer.name in skip or layer.name not in blobs:
            fresh.append(layer.name)
            continue
        W, b = to_lasagne(source, layer, blobs[layer.name])
        layer.W.set_value(W)
        layer.b.set_value(b)
    return fresh


def get_blobs(net):
    """{layer: [W, b]} of ``net`` in Caffe's layout (dense W transposed to (out, in))."""
    blobs = {}
    for layer in param_layers(net):
        W = layer.W.get_value()
        if not isinstance(layer, CaffeConv2DLayer):
            W = np.ascontiguousarray(W.T)
        blobs[layer.name] = [W, layer.b.get_value()]
    return blobs


def optional_layers(net, blobs):
    """Layers of ``net`` a file may lack: the auxiliary heads (``loss1/*``,
    ``loss2/*``) when the file has none of them, as a deploy file has not."""
    aux = ("loss1/", "loss2/")
    if any(name.startswith(aux) for name in blobs):
        return set()
    return {layer.name for layer in param_layers(net) if layer.name.startswith(aux)}


def load_caffemodel(net, path, skip=(), allow_missing=False, cache_dir=WEIGHTS_DIR / "cache"):
    """Set the parameters of ``net`` from the .caffemodel at ``path``.

    Layers in ``skip`` (the ones a scenario replaces) keep the fillers they
    were built with (Caffe's xavier / constant), and so do the auxiliary heads
    when the file is a deploy file without them. Any other layer the file
    lacks is a CaffeModelError listing them, unless ``allow_missing``. The
    layers left at their fillers, and file layers the net does not have, are
    each listed in one log line. Returns the layers left at their fillers.
    """
    fresh = []

    def check(blobs):
        fresh[:] = set_blobs(net, blobs, path, skip)
        missing = [name for name in fresh
                   if name not in skip and name not in optional_layers(net, blobs)]
        if missing and not allow_missing:
            raise CaffeModelError(
                "%s: lacks %d layers the network needs: %s (a file of another network? "
                "--allow-missing starts them from Caffe's fillers)"
                % (path, len(missing), ", ".join(missing)))
        unused = sorted(set(blobs) - set(net))
        if unused:
            log.info("%s: %d layers in the file are not in the network: %s",
                     path, len(unused), ", ".join(unused))

    read_caffemodel_cached(path, cache_dir, check=check)
    if fresh:
        log.info("%s: %d layers initialised as Caffe would (xavier weights, constant "
                 "bias), not from the file: %s", path, len(fresh), ", ".join(fresh))
    return fresh
