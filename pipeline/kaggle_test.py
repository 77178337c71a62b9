"""Kaggle's official test set: a submission file, and its score when the solution is given.

``make kaggle-test RUN=… DATA=<folder of test images> [SOLUTION=retinopathy_solution.csv]``:
every image of the folder (``test/`` inside it, or the folder itself) is preprocessed
the run's way (``predict.load_run``), scored with the run's test-time augmentation
and graded:

- a 5-level run (``scenarios/4-levels.toml``): the cut-points its evaluation tuned on
  the validation split, on the expected level;
- a binary run: level 2 when referable at its operating point, else 0 (Kaggle's
  5-level kappa of such a submission measures the binary decision only).

Work goes in chunks of ``CHUNK`` images, each written atomically to
``RUN/kaggle-test/<data>/chunks/``; a killed run resumes at the first missing chunk
and ends with the same files as an uninterrupted one (the plan, checked on resume,
is the sorted image list, the model's SHA1 and the settings). Memory holds one chunk.
An unreadable image is named and counted, graded 0 (every test image must be in
the submission exactly once) and left out of the AUC (it has no score of its own). Then ``submission.csv`` (``image,level``) and, with
the solution file (``image,level,Usage``, Usage Public or Private), ``score.json``:
5-level quadratic weighted kappa and the referable AUC per Usage, with 95 %
patient-bootstrap intervals.
"""
import csv
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.fileio import atomic_savez, atomic_write_bytes, exclusive, sha1_of

from .data.dataset import rotations
from .data.images import read_image
from .data.labels import IMAGE_EXTS
from .data.splits import patient_of
from .errors import InputError
from .evidence.grading import expected_grade, kappa_with_interval, levels_at
from .evidence.metrics import referable_score
from .evidence.stats import RESAMPLES, bootstrap
from .learn.inference import forward_function, tta_probs

CHUNK = 256
USAGES = ("Public", "Private")


def test_images(data_dir):
    """{name: path} of the images of a Kaggle test folder (``test/`` or itself)."""
    folder = Path(data_dir) / "test" if (Path(data_dir) / "test").is_dir() else Path(data_dir)
    if not folder.is_dir():
        raise InputError("%s: no such folder of test images" % data_dir)
    images = {p.stem: str(p) for p in sorted(folder.iterdir())
              if p.suffix.lower() in IMAGE_EXTS}
    if not images:
        raise InputError("%s: no test images (.jpeg) in it" % folder)
    return images


def read_solution(path, names):
    """{name: (level, usage)} of Kaggle's solution file, checked against the test images:
    each refusal one line naming the file."""
    rows = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"image", "level", "Usage"} <= set(
                    reader.fieldnames):
                raise InputError("%s:1: expected the columns image,level,Usage" % path)
            for lineno, row in enumerate(reader, start=2):
                if row["level"] not in ("0", "1", "2", "3", "4"):
                    raise InputError("%s:%d: level %r of %s is not one of 0-4"
                                     % (path, lineno, row["level"], row["image"]))
                if row["Usage"] not in USAGES:
                    raise InputError("%s:%d: Usage %r of %s is not Public or Private"
                                     % (path, lineno, row["Usage"], row["image"]))
                if row["image"] in rows:
                    raise InputError("%s:%d: image %s is listed twice" % (path, lineno,
                                                                         row["image"]))
                rows[row["image"]] = (int(row["level"]), row["Usage"])
    except OSError as e:
        raise InputError("%s: cannot read the solution file (%s)" % (path, e.strerror))
    missing = sorted(set(names) - set(rows))
    unknown = sorted(set(rows) - set(names))
    if missing or unknown:
        raise InputError("%s: does not cover the test images: %d missing (first %s), %d not "
                         "among them (first %s)" % (path, len(missing), missing[:1] or "-",
                                                    len(unknown), unknown[:1] or "-"))
    return rows


def check_submission(path, names):
    """The levels of a submission file, refusing missing, duplicate or unknown images and
    levels other than 0-4 (one line naming the file)."""
    levels = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        if next(reader, None) != ["image", "level"]:
            raise InputError("%s:1: expected the header image,level" % path)
        for lineno, row in enumerate(reader, start=2):
            if len(row) != 2 or row[1] not in ("0", "1", "2", "3", "4"):
                raise InputError("%s:%d: expected image,level with a level 0-4, got %r"
                                 % (path, lineno, ",".join(row)))
            if row[0] in levels:
                raise InputError("%s:%d: image %s is listed twice" % (path, lineno, row[0]))
            if row[0] not in names:
                raise InputError("%s:%d: image %s is not a test image" % (path, lineno, row[0]))
            levels[row[0]] = int(row[1])
    missing = sorted(set(names) - set(levels))
    if missing:
        raise InputError("%s: %d test images missing (first %s)" % (path, len(missing),
                                                                    missing[0]))
    return levels


def grades(probs, config, point):
    """Levels 0-4 of each image (the module docstring's rule)."""
    if config["target"] == "levels":
        return levels_at(expected_grade(probs), point["cuts"])
    score = referable_score(probs, "binary")
    return np.where(score >= point["cut"], 2, 0)


def kaggle_test(run_dir, data_dir, solution=None, progress=True, chunk=CHUNK):
    """Writes the submission (and score.json with ``solution``); returns (their directory,
    the number of unreadable images)."""
    from .predict import load_run
    config, evaluation, prep, _, input_shape, net = load_run(run_dir)
    images = test_images(data_dir)
    names = sorted(images)
    truth = read_solution(solution, names) if solution else None  # checked before the work
    out = Path(run_dir) / "kaggle-test" / Path(data_dir).resolve().name
    chunks = out / "chunks"
    plan = {"images": len(names), "names_sha1": sha1_text("\n".join(names)),
            "model_sha1": sha1_of(Path(run_dir) / "model.npz"),
            "tta": evaluation["settings"]["tta"], "chunk": chunk, "preprocessing": prep}
    with exclusive(str(out) + ".lock", out):
        if (out / "plan.json").exists() and json.loads((out / "plan.json").read_text()) != plan:
            raise InputError("%s: started with other images, model or settings; remove it to "
                             "start again" % out)
        chunks.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "plan.json", json.dumps(plan, indent=1).encode())
        predict_chunks(net, names, images, chunks, input_shape[1], prep,
                       rotations(plan["tta"]), progress, chunk)
        parts = [np.load(chunks / ("%05d.npz" % k)) for k in range(n_chunks(len(names), chunk))]
        probs = np.concatenate([p["probs"] for p in parts])
        failed = [str(n) for p in parts for n in p["failed"]]
        levels = grades(probs, config, evaluation["operating_point"])
        levels[np.isin(names, failed)] = 0
        atomic_savez(out / "predictions.npz", names=np.array(names), probs=probs,
                     levels=levels, failed=np.array(failed, dtype=str))
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["image", "level"])
        writer.writerows(zip(names, levels.tolist()))
        atomic_write_bytes(out / "submission.csv", text.getvalue().encode())
        check_submission(out / "submission.csv", set(names))
        if truth:
            score = score_submission(names, probs, levels, truth, config, failed)
            atomic_write_bytes(out / "score.json", json.dumps(score, indent=2).encode())
    for name in failed:
        print("kaggle-test: unreadable image %s graded 0" % images[name], file=sys.stderr)
    return out, len(failed)


def n_chunks(n, chunk):
    return (n + chunk - 1) // chunk


def sha1_text(text):
    import hashlib
    return hashlib.sha1(text.encode()).hexdigest()


def predict_chunks(net, names, images, chunks, crop, prep, turns, progress, chunk, batch=16):
    """Each missing chunk's probabilities (and unreadable names), written atomically."""
    fn = None
    start = time.perf_counter()
    done = 0
    with tqdm(total=len(names), unit="img", desc="kaggle-test", disable=not progress) as bar:
        for k in range(n_chunks(len(names), chunk)):
            part = names[k * chunk:(k + 1) * chunk]
            path = chunks / ("%05d.npz" % k)
            if path.exists():
                bar.update(len(part))
                continue
            fn = fn or forward_function(net, ["prob"])
            probs, failed = [], []
            for b in range(0, len(part), batch):
                pixels = []
                for name in part[b:b + batch]:
                    image, error = read_image(images[name], prep["size"], prep["lcn"])
                    if error:  # graded 0; a black image keeps the batch's shape
                        failed.append(name)
                        image = np.zeros((prep["size"], prep["size"], 3), np.uint8)
                    pixels.append(image)
                pixels = np.stack(pixels)
                probs.append(tta_probs(fn, pixels, crop, turns))
                bar.update(len(pixels))
                done += len(pixels)
            atomic_savez(path, probs=np.concatenate(probs), failed=np.array(failed, dtype=str))
    if done and progress:
        print("kaggle-test: %.1f img/s (%d-rotation TTA)" % (
            done / (time.perf_counter() - start), len(turns)), file=sys.stderr)


def score_submission(names, probs, levels, truth, config, failed=()):
    """Per Usage: 5-level kappa and the referable AUC with patient-bootstrap intervals.
    An unreadable image (``failed``) is in the kappa as the 0 it was graded, but has no
    score of its own: it is left out of the AUC and counted (``auc_unreadable_left_out``)."""
    true = np.array([truth[n][0] for n in names])
    usage = np.array([truth[n][1] for n in names])
    patients = np.array([patient_of(n) for n in names])
    threshold = config.get("threshold", 2)
    score = referable_score(probs, config["target"], threshold)
    readable = ~np.isin(names, list(failed))
    out = {"resamples": RESAMPLES, "unit": "patient"}
    for u in USAGES:
        m = usage == u
        if not m.any():
            continue
        a = m & readable
        out[u] = {"images": int(m.sum()),
                  "kappa": kappa_with_interval(true[m], levels[m], patients[m]),
                  "auc_referable": bootstrap(score[a], true[a] >= threshold,
                                             score[a] >= 0.5, patients[a],
                                             metrics=("auc",))["auc"],
                  "auc_unreadable_left_out": int((m & ~readable).sum())}
    return out
