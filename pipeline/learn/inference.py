"""Inference with imported Caffe weights: the ``forward`` fidelity probe and ``classify``;
``forward_function``: the engine that runs a trained network's inference passes."""
import logging
import os

import numpy as np
from PIL import Image

from models import googlenet
from models.caffe_import import load_caffemodel
from models.device import on_gpu
from models.fileio import atomic_savez

from ..data.dataset import caffe_batch, prefetched
from ..errors import InputError

DEFAULT_BLOBS = ("loss3/classifier", "prob")
#: ``DRT_INFERENCE``'s values; unset or empty: ONNX Runtime on the CPU where it imports
ENGINES = ("theano", "onnx")

log = logging.getLogger(__name__)


def inference_engine():
    """``theano`` or ``onnx``: the engine of ``forward_function``. ``DRT_INFERENCE``
    forces one; else ONNX Runtime when the device is the CPU (``models.device``) and
    ``onnx`` and ``onnxruntime`` import, the Theano forward on a GPU or without them."""
    asked = os.environ.get("DRT_INFERENCE", "").strip().lower()
    if asked and asked not in ENGINES:
        raise InputError("DRT_INFERENCE=%s: expected %s (or nothing: ONNX Runtime on the CPU)"
                         % (asked, " or ".join(ENGINES)))
    if asked == "onnx" and not onnx_importable():
        raise InputError("DRT_INFERENCE=onnx: onnx and onnxruntime do not import here "
                         "(pip install -r requirements.txt)")
    if asked:
        return asked
    return "onnx" if not on_gpu() and onnx_importable() else "theano"


def onnx_importable():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def forward_function(net, names, spec=None, threads=None):
    """A function data -> [outputs of the named layers] of ``net``, test mode, with the
    call convention of ``googlenet.compile_forward``: on ONNX Runtime from an in-memory
    ONNX export of ``spec`` (default: read back from ``net``) with ``net``'s current
    weights when ``inference_engine()`` says ``onnx``, else (and, unless forced, for a
    layer the exporter does not know) the Theano forward. ``threads``: ONNX Runtime's
    (default OMP_NUM_THREADS, as Theano's)."""
    if inference_engine() == "onnx":
        from models.onnx_export import UnsupportedLayer, compile_forward_onnx, spec_of
        try:
            return compile_forward_onnx(spec or spec_of(net), net, net["data"].shape[1:],
                                        list(names), threads)
        except UnsupportedLayer as e:
            if os.environ.get("DRT_INFERENCE", "").strip().lower() == "onnx":
                raise InputError("DRT_INFERENCE=onnx: %s" % e)
            log.warning("inference on Theano: %s", e)
    return googlenet.compile_forward(net, list(names))


def mc_trunk(net, spec):
    """MC dropout's trunk on the inference engine: data -> [the input of the dropout
    below ``loss3/classifier``, N x K x 1 x 1], test mode: ``models.mc_dropout
    .compile_trunk``'s function, run once per image before the stochastic passes."""
    from models.mc_dropout import dropout_below
    name, _ = dropout_below(spec)
    bottom = {layer.name: layer for layer in spec}[name].bottom[0]
    return forward_function(net, [bottom], spec)


def load_net(weights, allow_missing=False):
    """Deploy GoogLeNet (1000 classes) with the weights of a .caffemodel; a file
    that lacks any of its layers is an error unless ``allow_missing``."""
    net = googlenet.build(googlenet.googlenet_spec())
    load_caffemodel(net, weights, allow_missing=allow_missing)
    return net


def load_input_blob(path):
    """An N x 3 x 224 x 224 float32 array in Caffe's input convention from a .npy file."""
    try:
        blob = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError("%s: cannot read as a .npy array (%s)" % (path, e))
    expected = googlenet.INPUT_SHAPE
    if blob.ndim != 4 or tuple(blob.shape[1:]) != expected:
        raise InputError("%s: array has shape %s, expected N x %s" % (
            path, tuple(blob.shape), " x ".join(map(str, expected))))
    return blob.astype(np.float32)


def forward(weights, blob_path, out_path, names=DEFAULT_BLOBS, batch_size=16,
            allow_missing=False):
    """Run the net on the input blob and save the named blobs, Caffe's shapes, to .npz."""
    data = load_input_blob(blob_path)
    net = load_net(weights, allow_missing)
    fn = googlenet.compile_forward(net, list(names))
    chunks = [fn(data[i:i + batch_size]) for i in range(0, len(data), batch_size)]
    outputs = {name: np.concatenate([c[k] for c in chunks]) for k, name in enumerate(names)}
    atomic_savez(out_path, **outputs)
    return outputs


def caffe_centre_crop(path, resize=256, crop=224):
    """Caffe's test-time preprocessing of one image file: resize to
    ``resize`` x ``resize``, centre crop ``crop``; returns H x W x 3 uint8 RGB."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB").resize((resize, resize), Image.BILINEAR)
    except (OSError, ValueError) as e:
        raise InputError("%s: cannot read image (%s)" % (path, e))
    offset = (resize - crop) // 2
    return np.asarray(image)[offset:offset + crop, offset:offset + crop]


def read_synsets(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def default_synsets(weights):
    candidate = os.path.join(os.path.dirname(os.path.abspath(weights)), "synset_words.txt")
    return candidate if os.path.exists(candidate) else None


def classify(weights, images, synsets=None, top=5, batch_size=16, allow_missing=False):
    """Top-``top`` (class index, probability) per readable image, and the errors.

    Returns ([(image, [(index, label, prob)...])...], [error lines]).
    """
    labels = read_synsets(synsets) if synsets else None
    crops, names, errors = [], [], []
    for path in images:
        try:
            crops.append(caffe_centre_crop(path))
            names.append(path)
        except InputError as e:
            errors.append(str(e))
    results = []
    if crops:
        net = load_net(weights, allow_missing)
        fn = googlenet.compile_forward(net, ["prob"])
        probs = np.concatenate([
            fn(googlenet.to_caffe_input(np.stack(crops[i:i + batch_size])))[0]
            for i in range(0, len(crops), batch_size)])
        for name, p in zip(names, probs):
            best = np.argsort(-p)[:top]
            results.append((name, [(int(i), labels[i] if labels else str(i), float(p[i]))
                                   for i in best]))
    return results, errors


def tta_probs(fn, images, crop, rotations=(0,), flips=(False,)):
    """Class probabilities of ``fn`` (a compiled ``prob``) for N x S x S x 3 uint8 images
    in memory, centre-cropped, averaged over ``rotations`` (degrees) and ``flips``
    (True: mirrored left-right), as ``predict`` averages a Dataset's."""
    return np.mean([fn(caffe_batch(images, crop, np.full(len(images), degrees // 90),
                                   np.full(len(images), True) if flip else None))[0]
                    for flip in flips for degrees in rotations], axis=0)


def predict(fn, data, crop, batch_size=32, rotations=(0,), desc="predict", progress=True,
            flips=(False,)):
    """Class probabilities of ``fn`` (a compiled ``prob``) over a whole Dataset split,
    averaged over ``rotations`` (degrees) and ``flips`` (False: as is, True: mirrored
    left-right); a progress bar (images x views) on stderr."""
    from tqdm import tqdm
    views = [(degrees, flip) for flip in flips for degrees in rotations]
    probs = 0
    with tqdm(total=len(data) * len(views), unit="img", desc=desc, leave=False,
              disable=not progress) as bar:
        for degrees, flip in views:
            batches = prefetched(lambda start: data.batch(
                np.arange(start, min(start + batch_size, len(data))), crop,
                np.full(min(batch_size, len(data) - start), degrees // 90),
                np.full(min(batch_size, len(data) - start), True) if flip else None),
                range(0, len(data), batch_size))
            out = []
            for x, _ in batches:
                out.append(fn(x)[0])
                bar.update(len(x))
            probs = probs + np.concatenate(out)
    return probs / len(views)
