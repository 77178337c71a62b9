"""Preprocess: fundus images (or natural photographs) + labels -> one chunked HDF5
image store.

Input: a directory with the images (in ``images/``, ``train/`` or the directory
itself, ``.jpeg``/``.jpg``/``.png``/``.tif``) and ``labels.csv`` or
``trainLabels.csv`` with columns ``image,level`` (Kaggle's layout) or
``image,class`` (class-labelled data, e.g. the embedded Caltech-101 subset).

For each fundus image: decode at reduced size (JPEG draft mode), crop to the
retina (drop the black border), pad to a square, resize to ``size`` x ``size``,
optionally subtract a Gaussian-blurred copy (local contrast normalisation, as
the Kaggle winners did). Class-labelled photographs are warped to ``size`` x
``size`` as Caffe prepares ImageNet, never retina-cropped (attrs ``crop``).
Stored as uint8 RGB; Caffe's BGR/mean handling happens at batch time.

HDF5 layout: ``images`` (N, size, size, 3) uint8, contiguous; ``level``
(N,) int8: the DR level, or for class data the class index (attrs ``classes``:
the class names as JSON); ``name``, ``patient`` (N,) strings; ``split`` (N,)
int8 (0 train, 1 val, 2 test); ``ok`` (N,) bool (False: the image could not be
read, listed in attrs ``failed``); attrs ``source``: the images' folder,
relative to the store's. The split is by patient (Kaggle's
``10_left`` and ``10_right`` are patient ``10``), stratified by the patient's
worst level (or class).

The file is built as ``OUT.partial`` (with a journal of the images done,
see ``Partial``) and renamed when complete. A killed run resumes from the
partial file, after checking every image it claims against its checksum; a
second process on the same output is refused while the first runs. An
uninterrupted run makes the same bytes from the same images and settings
wherever and whenever it runs (no absolute paths, times or random tokens in the
file), so that the file's SHA1, which every run records as the data's identity,
matches across clones. A resumed run makes the same arrays in other bytes (HDF5
lays its metadata out by the file's open-close history): runs on it are not
matched with runs on an uninterrupted store elsewhere.
"""
import json
import multiprocessing
import os
import sys
import time

import h5py
import numpy as np

from tqdm import tqdm

from models.fileio import exclusive, sha1_of

from .data.images import read_image
from .data.labels import find_inputs, read_labels
from .data.splits import split_by_patient
from .data.store import Partial, source_folder, write_error_reason
from .errors import InputError


def _work(task):
    index, path, size, lcn, crop = task
    image, error = read_image(path, size, lcn, crop)
    return index, image, error and "%s: %s" % (os.path.basename(path), error)


def _config(labels_path, size, lcn, seed, fractions):
    return {"labels_sha1": sha1_of(labels_path), "size": size, "lcn": bool(lcn),
            "seed": seed, "fractions": json.dumps(list(fractions))}


def _same(stored, value):
    """Whether an HDF5 attribute read back equals the ``value`` written."""
    return stored is not None and np.array_equal(np.asarray(stored), np.asarray(value))


def preprocess(data_dir, out, size=256, lcn=False, seed=0, fractions=(0.7, 0.15, 0.15),
               workers=None, progress=True, reuse=False):
    """Build the HDF5 store ``out`` from ``data_dir``; returns a summary dict
    (``reuse``: None, and nothing done, when ``out`` is a finished store made from
    these labels with these settings).

    A second process on the same ``out`` is refused (fileio.Busy). A write
    error stops the run with an InputError naming the file; the partial store
    is kept and the next run resumes it.
    """
    labels_path, images_dir = find_inputs(data_dir)
    rows, classes = read_labels(labels_path, images_dir)
    if classes and lcn:
        raise InputError("%s: local contrast normalisation (LCN) is for fundus photographs, "
                         "not class-labelled data" % labels_path)
    splits = split_by_patient([r[0] for r in rows], [r[1] for r in rows], fractions, seed)
    config = _config(labels_path, size, lcn, seed, fractions)
    # Where the images came from, relative to the store's folder: a clone elsewhere
    # makes the same bytes (its SHA1 is the data's identity in every run).
    here = os.path.dirname(os.path.abspath(out))
    config["source"] = os.path.relpath(os.path.abspath(data_dir), here)
    config["crop"] = "warp" if classes else "retina"
    if classes:
        config["classes"] = json.dumps(classes)
    if reuse and os.path.isfile(out):
        with h5py.File(out, "r") as f:
            stored = dict(f.attrs)
        if stored.get("source") is not None:
            stored["source"] = os.path.relpath(source_folder(out, stored["source"]), here)
        if all(_same(stored.get(k), v) for k, v in config.items()):
            print("preprocess: %s is made from these labels with these settings: reused" % out)
            return None
    os.makedirs(here, exist_ok=True)
    # The workers are forked first, so that they hold neither the lock nor the HDF5 file.
    with multiprocessing.get_context("fork").Pool(workers or os.cpu_count() or 1) as pool, \
            exclusive(out + ".lock", out):
        partial = Partial(out)
        try:
            if not partial.resume(rows, config):
                partial.create(rows, config, splits)
            tasks = [(i, rows[i][2], size, lcn, config["crop"]) for i in range(len(rows))
                     if i not in partial.entries]
            _run(partial, pool, tasks, len(rows), progress)
            ok, failed, counts = partial.finish(out, rows, splits)
        except (OSError, RuntimeError) as e:  # h5py raises RuntimeError when a flush fails
            raise InputError("%s: write failed (%s); the partial file is kept and the same "
                             "command resumes it" % (partial.path, write_error_reason(e)))
        finally:
            partial.close()
    summary = {"images": len(rows), "stored": int(ok.sum()), "failed": failed, "counts": counts}
    print("preprocess: %d images stored, %d skipped as unreadable; per split and %s: %s"
          % (summary["stored"], len(failed), "class" if classes else "level", json.dumps(counts)))
    return summary


def _run(partial, pool, tasks, total, progress, commit_every=32, commit_seconds=2.0):
    """Decode ``tasks`` in the worker ``pool`` and store them in ``partial``."""
    pending, last = [], time.time()
    with tqdm(total=total, initial=total - len(tasks), unit="img", desc="preprocess",
              disable=not progress) as bar:
        for i, image, error in pool.imap_unordered(_work, tasks, chunksize=4):
            if image is None:
                tqdm.write("preprocess: skipped unreadable image %s" % error, file=sys.stderr)
                pending.append({"i": int(i), "error": error})
            else:
                pending.append(partial.store(i, image))
            bar.update(1)
            if len(pending) >= commit_every or time.time() - last > commit_seconds:
                partial.commit(pending)
                last = time.time()
        partial.commit(pending)
