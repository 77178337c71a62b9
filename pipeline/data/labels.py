"""Labels of a data directory in Kaggle's layout: which CSV, which image folder, and
the rows, each bad row an InputError naming its file and line.

Two kinds of labels: ``image,level`` (DR grades 0-4, fundus photographs) and
``image,class`` (class names, e.g. natural photographs: a softmax over the data's
classes, numbered in sorted name order)."""
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
        raise InputError("%s: no labels.csv or trainLabels.csv (columns image,level or "
                         "image,class)" % data_dir)
    for sub in ("images", "train"):
        if os.path.isdir(os.path.join(data_dir, sub)):
            return labels, os.path.join(data_dir, sub)
    return labels, data_dir


def read_labels(labels_path, images_dir):
    """([(name, label, image path)], classes) from an ``image,level`` or ``image,class`` CSV.

    ``classes`` is None for levels (label: the level 0-4), else the sorted class
    names (label: the index of the row's class in them). A header with both
    columns or neither, a row naming an image that is not in ``images_dir``, a
    level outside 0-4, an empty class or a repeated image is an InputError naming
    the file and line.
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
        kind = _label_column(labels_path, header)
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2:
                raise InputError("%s:%d: expected image,%s, got %r"
                                 % (labels_path, lineno, kind, ",".join(row)))
            name, label = row[0].strip(), row[1].strip()
            if kind == "level" and not re.fullmatch(r"[0-4]", label):
                raise InputError("%s:%d: level %r of %s is not one of 0-4"
                                 % (labels_path, lineno, label, name))
            if kind == "class" and not label:
                raise InputError("%s:%d: image %s has an empty class" % (labels_path, lineno, name))
            if name not in files:
                raise InputError("%s:%d: image %s not found in %s"
                                 % (labels_path, lineno, name, images_dir))
            if name in seen:
                raise InputError("%s:%d: image %s is listed twice" % (labels_path, lineno, name))
            seen.add(name)
            rows.append((name, label, files[name]))
    if not rows:
        raise InputError("%s: no labelled images" % labels_path)
    if kind == "level":
        return [(n, int(label), p) for n, label, p in rows], None
    classes = sorted({label for _, label, _ in rows})
    if len(classes) < 2:
        raise InputError("%s: one class only (%s); a classifier needs two at least"
                         % (labels_path, classes[0]))
    return [(n, classes.index(label), p) for n, label, p in rows], classes


def _label_column(labels_path, header):
    """``level`` or ``class``: the label column of a header that starts with ``image``."""
    columns = set(header[1:])
    if header[:1] != ["image"] or len(columns & {"level", "class"}) != 1 \
            or header[1] not in ("level", "class"):
        both = "both level and class" if {"level", "class"} <= columns else None
        raise InputError("%s:1: header is %s, expected image,level (DR grades) or image,class "
                         "(class names)%s" % (labels_path, ascii(",".join(header)),
                                              "; it has " + both if both else ""))
    return header[1]
