"""Preprocess: fundus images + labels -> one chunked HDF5 image store.

Input: a directory with the images (in ``images/``, ``train/`` or the directory
itself, ``.jpeg``/``.jpg``/``.png``/``.tif``) and ``labels.csv`` or
``trainLabels.csv`` with columns ``image,level`` (Kaggle's layout).

For each image: decode at reduced size (JPEG draft mode), crop to the retina
(drop the black border), pad to a square, resize to ``size`` x ``size``,
optionally subtract a Gaussian-blurred copy (local contrast normalisation, as
the Kaggle winners did). Stored as uint8 RGB; Caffe's BGR/mean handling happens
at batch time.

HDF5 layout: ``images`` (N, size, size, 3) uint8, contiguous; ``level``
(N,) int8; ``name``, ``patient`` (N,) strings; ``split`` (N,) int8 (0 train,
1 val, 2 test); ``ok`` (N,) bool (False: the image could not be read, listed in
attrs ``failed``). The split is by patient (Kaggle's ``10_left`` and
``10_right`` are patient ``10``), stratified by the patient's worst level.

The file is built as ``OUT.partial`` (with a journal of the images done,
see ``Partial``) and renamed when complete. A killed run resumes from the
partial file, after checking every image it claims against its checksum; a
second process on the same output is refused while the first runs.
"""
import csv
import errno
import hashlib
import json
import multiprocessing
import os
import re
import sys
import time
import uuid

import h5py
import numpy as np
from h5py import h5d, h5p, h5s, h5t
from PIL import Image, ImageFilter
from tqdm import tqdm

from models.fileio import exclusive, fsync_path, sha1_of

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
    # utf-8-sig: spreadsheet programs save "CSV UTF-8" with a byte-order mark
    with open(labels_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header[:2] != ["image", "level"]:
            raise InputError("%s:1: header is %s, expected image,level"
                             % (labels_path, ascii(",".join(header))))
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


def kfold_by_patient(names, levels, folds, seed=0):
    """Fold (0..folds-1) of each image: whole patients, dealt round-robin within each
    worst level after a seeded shuffle, so every fold is stratified by level."""
    patient_level = {}
    for name, level in zip(names, levels):
        p = patient_of(name)
        patient_level[p] = max(level, patient_level.get(p, 0))
    rng = np.random.RandomState(seed)
    patient_fold, dealt = {}, 0
    for level in range(5):
        group = sorted(p for p, l in patient_level.items() if l == level)
        rng.shuffle(group)
        for p in group:  # continue the deal across levels: fold sizes differ by one at most
            patient_fold[p] = dealt % folds
            dealt += 1
    return np.array([patient_fold[patient_of(n)] for n in names], dtype=np.int8)


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


def pixels_sha1(image):
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def mismatched(images, entries):
    """Indices of journal ``entries`` whose stored pixels in ``images`` differ from
    the checksum journalled for them."""
    return [i for i, e in sorted(entries.items())
            if "sha1" in e and pixels_sha1(images[i]) != e["sha1"]]


class Partial(object):
    """The store under construction: ``OUT.partial`` (HDF5) and its journal
    ``OUT.partial.journal``.

    The journal is the only record of which images are done. Its first line
    is a token also stored in the HDF5 file (the two belong together); then
    one JSON line per image, ``{"i": index, "sha1": of the pixels}`` or
    ``{"i": index, "error": why it was skipped}``. Lines are appended only
    after the pixels they name have been flushed and fsynced, so a kill at any
    instant leaves each image either stored and journalled, or not journalled.
    ``images`` is contiguous and allocated when the file is made (its disk
    space reserved at once), so writing pixels never changes HDF5 metadata.
    """

    FINISH_SPACE = 1 << 20  # bytes free before the final flags and counts are written

    def __init__(self, out):
        self.path, self.journal_path = out + ".partial", out + ".partial.journal"
        self.file = self.journal = None
        self.entries = {}

    def create(self, rows, config, splits):
        n, size = len(rows), config["size"]
        for path in (self.path, self.journal_path):
            if os.path.exists(path):
                os.unlink(path)
        token = uuid.uuid4().hex
        with h5py.File(self.path, "w") as f:
            dcpl = h5p.create(h5p.DATASET_CREATE)
            dcpl.set_layout(h5d.CONTIGUOUS)
            dcpl.set_alloc_time(h5d.ALLOC_TIME_EARLY)
            dcpl.set_fill_time(h5d.FILL_TIME_NEVER)
            h5d.create(f.id, b"images", h5t.NATIVE_UINT8, h5s.create_simple((n, size, size, 3)),
                       dcpl=dcpl)
            f.create_dataset("level", data=np.array([r[1] for r in rows], np.int8))
            strings = h5py.string_dtype()
            f.create_dataset("name", data=np.array([r[0] for r in rows], object), dtype=strings)
            f.create_dataset("patient", data=np.array([patient_of(r[0]) for r in rows], object),
                             dtype=strings)
            f.create_dataset("split", data=splits)
            f.create_dataset("ok", data=np.zeros(n, bool))  # allocated now, written at the end
            f.attrs.update(config)
            f.attrs["split_names"] = json.dumps(SPLITS)
            f.attrs["token"] = token
        try:
            self._reserve()
        except OSError as e:
            os.unlink(self.path)
            raise InputError("%s: cannot reserve %.0f MB for the images (%s); free space and run "
                             "again" % (self.path, n * size * size * 3 / 1e6, _reason(e)))
        with open(self.journal_path, "w") as j:
            j.write(token + "\n")
        fsync_path(self.journal_path)
        self._open()

    def resume(self, rows, config):
        """Open an existing partial store if it is this job's and sound; returns
        True when resumed, False (with a message) when it has to start over."""
        if not os.path.exists(self.path):
            return False
        why = self._check(rows, config)
        if why is None:
            self._reserve()  # no space now is a write error: the partial is kept
            return True
        self.close()
        self.entries = {}
        print("preprocess: %s: %s; starting over" % (self.path, why), file=sys.stderr)
        return False

    def _check(self, rows, config):
        try:
            with open(self.journal_path) as j:
                lines = j.read().split("\n")
        except OSError:
            return "no journal beside it (left by an older version or another program)"
        try:
            self._open()
            f = self.file
            if any(f.attrs.get(k) != v for k, v in config.items()) or len(f["ok"]) != len(rows):
                return "made from other labels or settings"
            if f.attrs.get("token") != lines[0]:
                return "its journal does not match it"
            if lines[-1]:  # a torn last line (killed mid-write): not trusted, ended
                self.journal.write("\n")
            for line in lines[1:]:
                try:
                    entry = json.loads(line)
                    self.entries[int(entry["i"])] = entry
                except (ValueError, KeyError, TypeError):
                    continue
            bad = mismatched(f["images"], self.entries)
        except OSError as e:
            return "unreadable (%s)" % str(e).splitlines()[0]
        for i in bad:
            del self.entries[i]
        print("preprocess: resuming %s: %d images verified%s" % (
            self.path, len(self.entries),
            ", %d whose stored pixels did not match their journal done again" % len(bad)
            if bad else ""), file=sys.stderr)
        return None

    def _reserve(self):
        """Allocate the disk blocks of the images: no space shows now, not hours in."""
        fd = os.open(self.path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _open(self):
        self.file = h5py.File(self.path, "r+")
        self.journal = open(self.journal_path, "a")

    def store(self, i, image):
        self.file["images"][i] = image
        return {"i": int(i), "sha1": pixels_sha1(image)}

    def commit(self, pending):
        """Make the pixels of ``pending`` durable, then journal them."""
        if not pending:
            return
        self.file.flush()
        os.fsync(self.file.id.get_vfd_handle())
        self.journal.write("".join(json.dumps(e) + "\n" for e in pending))
        self.journal.flush()
        os.fsync(self.journal.fileno())
        for e in pending:
            self.entries[e["i"]] = e
        del pending[:]

    def finish(self, out, rows, splits):
        """Write the flags and counts, close, and rename the store to ``out``.

        These are the only writes of HDF5 metadata after the file was made, and a
        failed metadata write can leave an HDF5 file unreadable: they start only
        when the disk has room to spare (the journal keeps the work otherwise).
        """
        free = os.statvfs(self.path)
        if free.f_bavail * free.f_frsize < self.FINISH_SPACE:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
        f = self.file
        ok = np.zeros(len(rows), bool)
        ok[[i for i, e in self.entries.items() if "sha1" in e]] = True
        failed = [e["error"] for _, e in sorted(self.entries.items()) if "error" in e]
        f["ok"][:] = ok
        counts = {name: np.bincount(f["level"][:][ok & (splits == k)], minlength=5).tolist()
                  for k, name in enumerate(SPLITS)}
        f.attrs["counts"] = json.dumps(counts)
        f.attrs["failed"] = json.dumps(failed)
        f.flush()  # raises on a write error, where close() would only warn
        self.close()
        with h5py.File(self.path, "r") as f:  # read back what the final file will hold
            bad = mismatched(f["images"], self.entries)
            if bad or not np.array_equal(f["ok"][:], ok):
                raise InputError("%s: %d images read back differently from what was written; "
                                 "the disk may be failing" % (self.path, len(bad)))
        fsync_path(self.path)
        os.replace(self.path, out)
        fsync_path(os.path.dirname(os.path.abspath(out)))
        os.unlink(self.journal_path)
        return ok, failed, counts

    def close(self):
        for handle in (self.journal, self.file):
            try:
                if handle is not None:
                    handle.close()
            except (OSError, RuntimeError):
                pass  # the error that brought us here is the one to report
        self.file = self.journal = None


def preprocess(data_dir, out, size=256, lcn=False, seed=0, fractions=(0.7, 0.15, 0.15),
               workers=None, progress=True):
    """Build the HDF5 store ``out`` from ``data_dir``; returns a summary dict.

    A second process on the same ``out`` is refused (fileio.Busy). A write
    error stops the run with an InputError naming the file; the partial store
    is kept and the next run resumes it.
    """
    labels_path, images_dir = find_inputs(data_dir)
    rows = read_labels(labels_path, images_dir)
    splits = split_by_patient([r[0] for r in rows], [r[1] for r in rows], fractions, seed)
    config = _config(labels_path, size, lcn, seed, fractions)
    config["source"] = os.path.abspath(data_dir)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    # The workers are forked first, so that they hold neither the lock nor the HDF5 file.
    with multiprocessing.get_context("fork").Pool(workers or os.cpu_count() or 1) as pool, \
            exclusive(out + ".lock", out):
        partial = Partial(out)
        try:
            if not partial.resume(rows, config):
                partial.create(rows, config, splits)
            tasks = [(i, rows[i][2], size, lcn) for i in range(len(rows))
                     if i not in partial.entries]
            _run(partial, pool, tasks, len(rows), progress)
            ok, failed, counts = partial.finish(out, rows, splits)
        except (OSError, RuntimeError) as e:  # h5py raises RuntimeError when a flush fails
            raise InputError("%s: write failed (%s); the partial file is kept and the same "
                             "command resumes it" % (partial.path, _reason(e)))
        finally:
            partial.close()
    summary = {"images": len(rows), "stored": int(ok.sum()), "failed": failed, "counts": counts}
    print("preprocess: %d images stored, %d skipped as unreadable; per split and level: %s"
          % (summary["stored"], len(failed), json.dumps(counts)))
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


def _reason(error):
    """The cause of a write error in a few words (h5py's messages run over many lines)."""
    if getattr(error, "errno", None):
        return os.strerror(error.errno)
    text = str(error)
    match = re.search(r"error message = '([^']+)'", text)
    return match.group(1) if match else text.splitlines()[0]
