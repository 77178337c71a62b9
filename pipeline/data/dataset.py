"""Reading the preprocessed HDF5 store: splits, targets, batches in Caffe's convention,
and ``prefetched``, which makes the next batches while the current step runs."""
import json
import queue
import threading
import time

import h5py
import numpy as np

from models.googlenet import to_caffe_input

from ..errors import InputError
from .splits import SPLITS, kfold_by_patient, patient_of
from .subsets import training_subset


def data_classes(path):
    """The class names of class-labelled preprocessed data ``path``, or None for DR levels."""
    try:
        with h5py.File(path, "r") as f:
            classes = f.attrs.get("classes")
    except OSError as e:
        raise InputError("%s: cannot open the preprocessed data (%s)" % (path, e))
    return json.loads(classes) if classes is not None else None


def fold_splits(names, levels, folds, fold, seed=0):
    """Split code per image (0 train, 1 val, 2 test) for ``fold`` of ``folds``-fold
    cross-validation by patient: test is that fold, val the next one, train the rest."""
    of = kfold_by_patient(names, levels, folds, seed)
    return np.where(of == fold, 2, np.where(of == (fold + 1) % folds, 1, 0)).astype(np.int8)


class Dataset(object):
    """The usable (``ok``) images of one split of a preprocessed HDF5 file.

    ``split``: train, val, test (the file's patient split, or, with ``folds``,
    that of ``fold`` of a cross-validation by patient) or all. ``targets``: class
    per image (``target`` None: binary for DR levels, classes for class data), ``levels`` (0-4), ``binary`` (level >= ``threshold``, i.e.
    referable DR) or, for class-labelled data, ``classes`` (the class index;
    ``levels`` then holds it too). ``train_size`` (the train split only): the
    nested, stratified, patient-whole subset of ``data.subsets.training_subset``
    (a fraction, or images per class or level). Images are read lazily, in index
    order.
    """

    def __init__(self, path, split, target=None, threshold=2, folds=None, fold=None,
                 train_size=None):
        try:
            self.file = h5py.File(path, "r")
        except OSError as e:
            raise InputError("%s: cannot open the preprocessed data (%s)" % (path, e))
        f = self.file
        if split not in SPLITS + ("all",):
            raise ValueError("split must be one of %s or all" % (SPLITS,))
        names = np.array([n.decode() if isinstance(n, bytes) else n for n in f["name"][:]])
        levels = f["level"][:]
        keep = f["ok"][:]
        if split != "all":
            codes = fold_splits(names, levels, folds, fold) if folds else f["split"][:]
            keep = keep & (codes == SPLITS.index(split))
        self.index = np.flatnonzero(keep)
        if train_size is not None and split == "train":
            self.index = self.index[training_subset(names[self.index], levels[self.index],
                                                    train_size)]
        self.levels = levels[self.index].astype(np.int64)
        self.names = names[self.index].tolist()
        self.patients = [patient_of(n) for n in self.names]
        classes = f.attrs.get("classes")
        self.classes = json.loads(classes) if classes is not None else None
        if target is None:  # as the data are labelled
            target = "classes" if self.classes else "binary"
        if (target == "classes") != (self.classes is not None):
            raise InputError("%s: target %s does not apply to %s" % (
                path, target, "class-labelled data (target classes)" if self.classes
                else "DR levels (target binary or levels)"))
        self.target, self.threshold = target, threshold
        if target == "classes":
            self.targets = self.levels.astype(np.int32)
            self.num_classes = len(self.classes)
        elif target == "binary":
            self.targets = (self.levels >= threshold).astype(np.int32)
            self.num_classes = 2
        elif target == "levels":
            self.targets = self.levels.astype(np.int32)
            self.num_classes = 5
        else:
            raise ValueError("target must be binary, levels or classes, not %r" % target)
        self.image_size = f["images"].shape[1]

    def __len__(self):
        return len(self.index)

    def images(self, positions):
        """uint8 N x S x S x 3 RGB images at ``positions`` (indices into this split)."""
        rows = self.index[np.asarray(positions)]
        unique, inverse = np.unique(rows, return_inverse=True)  # h5py wants increasing indices
        return self.file["images"][unique][inverse]

    def batch(self, positions, crop, rotations=None, flips=None):
        """``caffe_batch`` of the images at ``positions``."""
        return caffe_batch(self.images(positions), crop, rotations, flips)

    def close(self):
        self.file.close()


def centre_crop(images, crop):
    """The centre ``crop`` x ``crop`` of N x S x S x 3 images."""
    off = (images.shape[1] - crop) // 2
    return images[:, off:off + crop, off:off + crop]


def caffe_batch(images, crop, rotations=None, flips=None):
    """Caffe input (N x 3 x crop x crop, BGR minus mean) of the centre ``crop`` of
    N x S x S x 3 uint8 RGB images, each mirrored left-right where ``flips[i]``, then
    rotated by ``rotations[i]`` quarter turns (counter-clockwise)."""
    images = centre_crop(np.asarray(images), crop)
    if flips is not None:
        images = np.stack([im[:, ::-1] if f else im for im, f in zip(images, flips)])
    if rotations is not None:
        images = np.stack([np.rot90(im, k) for im, k in zip(images, rotations)])
    return to_caffe_input(images)


def open_split(path, split, config):
    """The Dataset of ``split`` as ``config`` defines it (target, threshold, folds)."""
    return Dataset(path, split, config["target"], config.get("threshold", 2),
                   config.get("folds"), config.get("fold"), config.get("train_size"))


def balanced_positions(targets, n, rng):
    """``n`` positions drawn class-balanced: a class uniformly, then an image of it."""
    classes = np.unique(targets)
    by_class = {c: np.flatnonzero(targets == c) for c in classes}
    chosen = rng.choice(classes, size=n)
    return np.array([rng.choice(by_class[c]) for c in chosen])


def class_weights(targets, num_classes):
    """Loss weights that balance the classes: N / (K * count), mean 1 over the data."""
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = len(targets) / (present.sum() * counts[present])
    return weights.astype(np.float32)


def prefetched(make, items, depth=2):
    """Yield ``(make(item), seconds waited for it)`` for each of ``items``, in order.

    A background thread runs ``make`` up to ``depth`` items ahead (a bounded
    queue), so reading, rotating and converting the next batch overlaps the
    current step: Theano's GPU functions release the GIL while they wait for
    the device, NumPy while it copies. The results are exactly the sequential
    ones; an exception in ``make`` is raised here, at its item. Closing the
    generator (or leaving the loop) stops the thread.
    """
    results = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work():
        for item in items:
            try:
                result = (make(item), None)
            except BaseException as e:  # handed to the consumer, at its item
                result = (None, e)
            while not stop.is_set():
                try:
                    results.put(result, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set() or result[1] is not None:
                return

    worker = threading.Thread(target=work, name="prefetch", daemon=True)
    worker.start()
    try:
        for _ in items:
            start = time.perf_counter()
            value, error = results.get()
            waited = time.perf_counter() - start
            if error is not None:
                raise error
            yield value, waited
    finally:
        stop.set()
        while worker.is_alive():
            try:
                results.get(timeout=0.1)
            except queue.Empty:
                pass


def rotations(tta):
    """The quarter-turn angles of an evaluation with (without) 4-rotation TTA."""
    return (0, 90, 180, 270) if tta else (0,)
