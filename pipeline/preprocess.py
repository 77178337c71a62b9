"""Preprocess: fundus images + labels -> one chunked HDF5 image store.

Input: a directory with the images (in ``images/``, ``train/`` or the directory
itself, ``.jpeg``/``.jpg``/``.png``/``.tif``) and ``labels.csv`` or
``trainLabels.csv`` with columns ``image,level`` (Kaggle's layout).

For each image: decode at reduced size (JPEG draft mode), crop to the retina
(drop the black border), pad to a square, resize to ``size`` x ``size``,
optionally subtract a Gaussian-blurred copy (local contrast normalisation, as
the Kaggle winners did). Stored as uint8 RGB; Caffe's BGR/mean handling happens
at batch time.

HDF5 layout: ``images`` (N, size, size, 3) uint8, chunked per image; ``level``
(N,) int8; ``name``, ``patient`` (N,) strings; ``split`` (N,) int8 (0 train,
1 val, 2 test); ``ok`` (N,) bool (False: the image could not be read, listed in
attrs ``failed``). The split is by patient (Kaggle's ``10_left`` and
``10_right`` are patient ``10``), stratified by the patient's worst level.

The file is built as ``OUT.partial`` and renamed when complete; a killed run
resumes from the partial file.
"""
import csv
import json
import multiprocessing
import os
import re
import sys

import h5py
import numpy as np
from PIL import Image, ImageFilter
from tqdm import tqdm

from models.fileio import sha1_of

from .errors import InputError

IMAGE_EXTS = (".jpeg", ".jpg", ".png", ".tif", ".tiff")
SPLITS = ("train", "val", "test")
LABEL_FILES = ("labels.csv", "trainLabels.csv")


def find_inputs(data_dir):
    """(labels csv, images directory) of a data directory in Kaggle's layout."""
    labels = next((os.path.join(data_dir, n) for n in LABEL_FILES
                   if os.path.exists(os.path.join(data_dir, n))), None)
    if labels is None:
        raise InputError("%s: no labels.csv or trainLabels.csv (columns image,level)" % data_dir)
    for sub in ("images", "train"):
        if os.path.isdir(os.path.join(data_dir, sub)):
            return labels, os.path.join(data_dir, sub)
    return labels, data_dir


def read_labels(labels_path, images_dir):
    """[(name, level, image path)] from an ``image,level`` CSV.

    A row naming an image that is not in ``images_dir``, a level outside 0-4,
    or a repeated image is an InputError naming the file and line.
    """
    files = {}
    for entry in os.listdir(images_dir):
        stem, ext = os.path.splitext(entry)
        if ext.lower() in IMAGE_EXTS:
            files[stem] = os.path.join(images_dir, entry)
    rows, seen = [], set()
    with open(labels_path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header[:2] != ["image", "level"]:
            raise InputError("%s:1: header is %s, expected image,level" % (labels_path, ",".join(header)))
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2:
                raise InputError("%s:%d: expected image,level, got %r" % (labels_path, lineno, ",".join(row)))
            name, level = row[0].strip(), row[1].strip()
            if not re.fullmatch(r"[0-4]", level):
                raise InputError("%s:%d: level %r of %s is not one of 0-4"
                                 % (labels_path, lineno, level, name))
            if name not in files:
                raise InputError("%s:%d: image %s not found in %s"
                                 % (labels_path, lineno, name, images_dir))
            if name in seen:
                raise InputError("%s:%d: image %s is listed twice" % (labels_path, lineno, name))
            seen.add(name)
            rows.append((name, int(level), files[name]))
    if not rows:
        raise InputError("%s: no labelled images" % labels_path)
    return rows


def patient_of(name):
    """Kaggle's ``10_left`` / ``10_right`` are patient ``10``; other names are their own."""
    return re.sub(r"_(left|right)$", "", name)


def split_by_patient(names, levels, fractions=(0.7, 0.15, 0.15), seed=0):
    """Split code per image (0 train, 1 val, 2 test): whole patients, stratified by
    each patient's worst level, shuffled with ``seed``."""
    patient_level = {}
    for name, level in zip(names, levels):
        p = patient_of(name)
        patient_level[p] = max(level, patient_level.get(p, 0))
    rng = np.random.RandomState(seed)
    patient_split = {}
    bounds = np.cumsum(fractions) / np.sum(fractions)
    for level in range(5):
        group = sorted(p for p, l in patient_level.items() if l == level)
        rng.shuffle(group)
        cuts = np.round(bounds * len(group)).astype(int)
        for i, p in enumerate(group):
            patient_split[p] = int(np.searchsorted(cuts, i, side="right"))
    return np.array([patient_split[patient_of(n)] for n in names], dtype=np.int8)


def retina_box(rgb, threshold=20):
    """(top, bottom, left, right) of the retina: rows/columns where more than
    1 % of pixels are brighter than ``threshold`` (the black border is not)."""
    mask = rgb.max(axis=2) > threshold
    rows = np.flatnonzero(mask.mean(axis=1) > 0.01)
    cols = np.flatnonzero(mask.mean(axis=0) > 0.01)
    if len(rows) == 0 or len(cols) == 0:
        return 0, rgb.shape[0], 0, rgb.shape[1]
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def crop_retina(rgb, size):
    """Crop to the retina, pad to a centred square with black, resize to ``size``."""
    top, bottom, left, right = retina_box(rgb)
    crop = rgb[top:bottom, left:right]
    side = max(crop.shape[:2])
    square = np.zeros((side, side, 3), np.uint8)
    y, x = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
    return np.asarray(Image.fromarray(square).resize((size, size), Image.BICUBIC))


def local_contrast(rgb, sigma_fraction=1 / 30.0):
    """4 (x - blur(x)) + 128, blur Gaussian with sigma = size * ``sigma_fraction``;
    outside the retina circle (radius 0.95 size/2) set to 128 (neutral grey)."""
    size = rgb.shape[0]
    blurred = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(size * sigma_fraction)))
    out = np.clip(4.0 * (rgb.astype(np.float32) - blurred) + 128, 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2.0
    out[xx ** 2 + yy ** 2 > (0.95 * size / 2) ** 2] = 128
    return out


def load_image(path, size, lcn=False):
    """The preprocessed size x size x 3 uint8 image of one file (OSError if unreadable)."""
    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft("RGB", (size, size))  # decode at 1/2..1/8 scale, still >= size
        rgb = np.asarray(image.convert("RGB"))
    out = crop_retina(rgb, size)
    return local_contrast(out) if lcn else out


def _work(task):
    index, path, size, lcn = task
    try:
        return index, load_image(path, size, lcn), None
    except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for corrupt files
        return index, None, "%s: %s" % (os.path.basename(path), e)


def _config(labels_path, size, lcn, seed, fractions):
    return {"labels_sha1": sha1_of(labels_path), "size": size, "lcn": bool(lcn),
            "seed": seed, "fractions": json.dumps(list(fractions))}


def _open_partial(partial, rows, config, splits):
    """The partial HDF5 file: resumed when its config matches, else created."""
    if os.path.exists(partial):
        try:
            f = h5py.File(partial, "r+")
            if all(f.attrs.get(k) == v for k, v in config.items()) and len(f["ok"]) == len(rows):
                return f
            f.close()
        except OSError:
            pass
        print("preprocess: %s is stale or unreadable, starting over" % partial, file=sys.stderr)
        os.unlink(partial)
    f = h5py.File(partial, "w")
    n, size = len(rows), config["size"]
    f.create_dataset("images", (n, size, size, 3), np.uint8, chunks=(1, size, size, 3))
    f.create_dataset("level", data=np.array([r[1] for r in rows], np.int8))
    strings = h5py.string_dtype()
    f.create_dataset("name", data=np.array([r[0] for r in rows], object), dtype=strings)
    f.create_dataset("patient", data=np.array([patient_of(r[0]) for r in rows], object),
                     dtype=strings)
    f.create_dataset("split", data=splits)
    f.create_dataset("ok", (n,), bool)
    f.create_dataset("done", (n,), bool)
    f.attrs.update(config)
    f.attrs["split_names"] = json.dumps(SPLITS)
    f.attrs["failed"] = json.dumps([])
    return f


def preprocess(data_dir, out, size=256, lcn=False, seed=0, fractions=(0.7, 0.15, 0.15),
               workers=None, progress=True):
    """Build the HDF5 store ``out`` from ``data_dir``; returns a summary dict."""
    labels_path, images_dir = find_inputs(data_dir)
    rows = read_labels(labels_path, images_dir)
    splits = split_by_patient([r[0] for r in rows], [r[1] for r in rows], fractions, seed)
    config = _config(labels_path, size, lcn, seed, fractions)
    config["source"] = os.path.abspath(data_dir)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    partial = out + ".partial"
    f = _open_partial(partial, rows, config, splits)
    try:
        done = f["done"][:]
        failed = json.loads(f.attrs["failed"])
        tasks = [(i, rows[i][2], size, lcn) for i in np.flatnonzero(~done)]
        workers = workers or os.cpu_count() or 1
        with multiprocessing.get_context("fork").Pool(workers) as pool, tqdm(
                total=len(rows), initial=len(rows) - len(tasks), unit="img",
                desc="preprocess", disable=not progress) as bar:
            for count, (i, image, error) in enumerate(
                    pool.imap_unordered(_work, tasks, chunksize=4), start=1):
                if image is None:
                    failed.append(error)
                    print("preprocess: skipped unreadable image %s" % error, file=sys.stderr)
                    f.attrs["failed"] = json.dumps(failed)
                else:
                    f["images"][i] = image
                    f["ok"][i] = True
                f["done"][i] = True
                bar.update(1)
                if count % 64 == 0:
                    f.flush()
        ok = f["ok"][:]
        counts = {name: np.bincount(f["level"][:][ok & (splits == k)], minlength=5).tolist()
                  for k, name in enumerate(SPLITS)}
        f.attrs["counts"] = json.dumps(counts)
    finally:
        f.close()
    os.replace(partial, out)
    summary = {"images": len(rows), "stored": int(ok.sum()), "failed": failed, "counts": counts}
    print("preprocess: %d images stored, %d skipped as unreadable; per split and level: %s"
          % (summary["stored"], len(failed), json.dumps(counts)))
    return summary
