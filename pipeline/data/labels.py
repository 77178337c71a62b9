"""Labels of a data directory in Kaggle's layout: which CSV, which image folder, and
the ``image,level`` rows, each bad row an InputError naming its file and line."""
import csv
import os
import re

from ..errors import InputError

IMAGE_EXTS = (".jpeg", ".jpg", ".png", ".tif", ".tiff")
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
