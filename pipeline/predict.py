"""Predict: screen new fundus images with a trained, evaluated run.

Each image is preprocessed as the run's training data was (retina crop, size,
local contrast normalisation when the run's data had it), centre-cropped as the
run's network expects, and scored with the run's evaluation's test-time
augmentation. The CSV has, per image: ``image`` (the file's path), ``p_referable``
(P(referable DR)), ``referable`` (1 at or above the cut the run chose on its
validation split), for a 5-level run ``expected_level`` (sum k p_k), ``level`` (the
expected level graded at the cut-points the run tuned on validation, as a Kaggle
submission grades it) and ``p_level0..4``, and ``patient_referable`` (1 if either eye is referable) where
both ``<id>_left`` and ``<id>_right`` of a patient are given.

``--uncertainty mc:T|ensemble`` (``learn.uncertainty``, ``evidence.referral``): the scores are the mean of T
MC-dropout passes (or of the seeds of the run's recipe), ``referable`` is decided at the
cut the run's referral evaluation chose on validation for that mean, and the CSV adds
``uncertainty`` (the predictive entropy in bits), ``p_sd`` (the sd of the samples),
``refer_to_grader`` (1 at or above the uncertainty that refers ``--refer`` of the
validation images, default 20 %) and ``patient_refer_to_grader`` (either eye referred).
The run needs that referral evaluation (``make evaluate UNCERTAINTY=...``) first.

``--heatmaps DIR``: per image a PNG of the cropped fundus with the class-activation
map of the referable class over it (``models.cam``; from the unrotated image).

A run that is unfinished, not evaluated, of the mini network, or whose model does
not fit its config is one line and exit 2 before any image is read; an unreadable
or non-image file is reported by name, skipped and counted (exit 1).
"""
import csv
import io
import json
import os
import sys
import time
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from models.cam import compile_cam, referable_rows
from models.fileio import atomic_write_bytes
from models.model_io import load_model

from .data.dataset import caffe_batch, centre_crop, rotations
from .data.images import read_image
from .data.labels import IMAGE_EXTS
from .data.splits import patient_of
from .errors import InputError
from .evidence.grading import expected_grade, levels_at
from .evidence.metrics import referable_score
from .learn.inference import forward_function, mc_trunk, tta_probs
from .recipe.config import num_classes


def load_run(run_dir):
    """(config, evaluation, preprocessing {size, lcn}, spec, input shape, net) of a finished,
    evaluated run, each problem an InputError naming the file."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise InputError("%s: not a run directory (no config.json)" % run_dir)
    if not (run_dir / "DONE").exists():
        raise InputError("%s: unfinished run (no DONE): finish it with make train first" % run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    if config.get("network") == "mini":
        raise InputError("%s: a run of the mini network (for tests), not a screening model"
                         % run_dir)
    if not (run_dir / "evaluation.json").exists():
        raise InputError("%s: not evaluated, so no operating point: run make evaluate RUN=%s"
                         % (run_dir, run_dir))
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    env = json.loads((run_dir / "environment.json").read_text())
    try:
        with h5py.File(env["data"], "r") as f:
            preprocessing = {"size": int(f.attrs["size"]), "lcn": bool(f.attrs["lcn"]),
                             "crop": f.attrs.get("crop", "retina")}
    except (OSError, KeyError) as e:
        raise InputError("%s: the run's training data %s cannot be read (%s): its "
                         "preprocessing is unknown" % (run_dir, env["data"], e))
    spec, input_shape, net = load_model(str(run_dir / "model.npz"))
    outputs = net["loss3/classifier"].output_shape[1]
    if outputs != num_classes(config) or input_shape[1] != config["crop"]:
        raise InputError("%s: the model (%d outputs, crop %d) does not fit config.json (target "
                         "%s, crop %d)" % (run_dir / "model.npz", outputs, input_shape[1],
                                           config["target"], config["crop"]))
    return config, evaluation, preprocessing, spec, input_shape, net


def image_files(paths):
    """(images, others): the image files among ``paths`` (files, or folders walked in
    sorted order), and the files that are not images."""
    images, others = [], []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found = [os.path.join(root, f) for f in sorted(files) if not f.startswith(".")]
                for f in found:
                    (images if f.lower().endswith(IMAGE_EXTS) else others).append(f)
        elif os.path.isfile(path):
            (images if path.lower().endswith(IMAGE_EXTS) else others).append(path)
        else:
            raise InputError("%s: no such file or folder" % path)
    return images, others


def patient_decisions(names, decided):
    """{image stem: 1/0} for the images whose fellow eye is given too: 1 if either eye
    is referable."""
    stems = [os.path.splitext(os.path.basename(n))[0] for n in names]
    eyes = {}
    for stem, d in zip(stems, decided):
        if stem.endswith(("_left", "_right")):
            eyes.setdefault(patient_of(stem), []).append((stem, d))
    return {stem: int(any(d for _, d in pair)) for pair in eyes.values() if len(pair) == 2
            for stem, _ in pair}


def referral_of(run_dir, evaluation, uncertainty, refer, measure="entropy"):
    """(the referral evaluation, its validation uncertainties' cut for ``refer`` by
    ``measure``, the ensemble's members) of ``uncertainty``; InputError when it was not
    made, or made for an ensemble of other seeds than the run has now."""
    from .evidence.referral import check_measure, label_of, parse_uncertainty, refer_cut
    from .learn.uncertainty import ensemble_of
    mode, passes = parse_uncertainty(uncertainty)
    check_measure(measure)
    if not 0 < refer < 1:
        raise InputError("REFER=%s: the fraction of images to refer must be in (0, 1)" % refer)
    members = ensemble_of(run_dir) if mode == "ensemble" else [Path(run_dir)]
    label = label_of(mode, passes or len(members), evaluation["settings"]["tta"], measure)
    path = Path(run_dir) / (label + ".json")
    again = "make evaluate RUN=%s UNCERTAINTY=%s%s" % (
        run_dir, uncertainty, " MEASURE=%s" % measure if measure != "entropy" else "")
    if not path.exists():
        raise InputError("%s: no referral evaluation %s: run %s first" % (run_dir, path.name,
                                                                          again))
    referral = json.loads(path.read_text())
    recorded = referral["settings"]["members"]
    if [m.name for m in members] != recorded:
        raise InputError("%s: the ensemble is now %s, its referral cut was chosen for %s: run "
                         "%s again" % (run_dir, ", ".join(m.name for m in members),
                                       ", ".join(recorded), again))
    with np.load(path.with_suffix(".npz")) as npz:
        cut = refer_cut(npz["val_" + measure], refer)
    return referral, cut, members


def scorer(config, evaluation, input_shape, net, spec, referral=None, members=()):
    """A function (images N x S x S x 3, names) -> (class probabilities N x C, samples
    S x N of P(referable) or None): the run's evaluation, or, given the ``referral``
    evaluation and its ``members`` (``referral_of``), its mean under MC dropout (seeded
    per image name as evaluation is) or over the ensemble's seeds."""
    crop, turns = input_shape[1], rotations(evaluation["settings"]["tta"])
    threshold = config.get("threshold", 2)
    if not referral:
        fn = forward_function(net, ["prob"], spec)
        return lambda images, names: (tta_probs(fn, images, crop, turns), None)
    if referral["mode"] == "mc":
        from models.mc_dropout import compile_head, dropout_below, mc_probs
        trunk, head = mc_trunk(net, spec), compile_head(net, spec)
        ratio = dropout_below(spec)[1]

        def score(images, names):
            inputs = [caffe_batch(images, crop, np.full(len(images), d // 90)) for d in turns]
            probs = mc_probs(trunk, head, [(names, inputs)], referral["count"], ratio,
                             referral["settings"]["seed"])
            return probs.mean(axis=0), np.array([referable_score(p, config["target"],
                                                                 threshold) for p in probs])
        return score
    fns = [forward_function(r[-1], ["prob"], r[3]) for r in map(load_run, members)]

    def ensemble(images, names):
        probs = np.array([tta_probs(fn, images, crop, turns) for fn in fns])
        return probs.mean(axis=0), np.array([referable_score(p, config["target"], threshold)
                                             for p in probs])
    return ensemble


def predict_files(run_dir, paths, out=None, heatmaps=None, batch_size=16, progress=True,
                  uncertainty=None, refer=0.2, measure="entropy"):
    """Writes the CSV (``out``, default ``predictions-<run>.csv``) and, with ``heatmaps``,
    one PNG per image; returns (the CSV path, images scored, files skipped, img/s).
    ``uncertainty``: ``mc:T`` or ``ensemble`` (the module docstring)."""
    config, evaluation, prep, spec, input_shape, net = load_run(run_dir)
    if config["target"] == "classes":
        if uncertainty:
            raise InputError("%s: a run on class-labelled data: referral (UNCERTAINTY=) is "
                             "for referable DR" % run_dir)
        return predict_classes(run_dir, paths, out, heatmaps, batch_size, progress,
                               (config, evaluation, prep, spec, input_shape, net))
    referral, refer_at, members = (referral_of(run_dir, evaluation, uncertainty, refer, measure)
                                   if uncertainty else (None, None, ()))
    files, skipped = image_files(paths)
    for other in skipped:
        print("predict: skipped %s: not an image file" % other, file=sys.stderr)
    out = Path(out or "predictions-%s.csv" % Path(run_dir).resolve().name)
    crop = input_shape[1]
    threshold = config.get("threshold", 2)
    score_of = scorer(config, evaluation, input_shape, net, spec, referral, members)
    rows = referable_rows(num_classes(config), threshold)
    cam_fn = compile_cam(net, spec, rows) if heatmaps else None
    if heatmaps:
        from .render.plots import plot_heatmap
        os.makedirs(heatmaps, exist_ok=True)
    names, probs, samples = [], [], []
    start = time.perf_counter()
    failed = [len(skipped)]
    for chunk, images in readable(files, prep, batch_size, progress, failed):
        p, drawn = score_of(images, [os.path.splitext(os.path.basename(c))[0] for c in chunk])
        names += chunk
        probs.append(p)
        samples.append(drawn)
        if heatmaps:
            maps = cam_fn(caffe_batch(images, crop))[0]
            for path, rgb, cam, score in zip(chunk, centre_crop(images, crop), maps,
                                             referable_score(p, config["target"], threshold)):
                stem = os.path.splitext(os.path.basename(path))[0]
                plot_heatmap(rgb, cam, os.path.join(heatmaps, stem + ".png"),
                             "%s: P(referable) %.3f" % (stem, score))
    seconds = time.perf_counter() - start
    probs = np.concatenate(probs) if probs else np.zeros((0, num_classes(config)))
    if referral:
        samples = np.concatenate(samples, axis=1) if samples else np.zeros((2, 0))
        point = dict(evaluation["operating_point"], cut=referral["operating_point"]["cut"])
        write_csv(out, names, probs, config, point, samples, refer_at, measure)
    else:
        write_csv(out, names, probs, config, evaluation["operating_point"])
    return out, len(names), failed[0], len(names) / seconds if seconds else 0.0


def readable(files, prep, batch_size, progress, failed):
    """Yield (paths, images N x S x S x 3) of ``files`` in batches, each unreadable file
    reported by name, skipped and counted in ``failed[0]``."""
    with tqdm(total=len(files), unit="img", desc="predict", disable=not progress) as bar:
        for begin in range(0, len(files), batch_size):
            chunk, images = [], []
            for path in files[begin:begin + batch_size]:
                image, error = read_image(path, prep["size"], prep["lcn"], prep["crop"])
                if error:
                    tqdm.write("predict: skipped unreadable image %s: %s" % (path, error),
                               file=sys.stderr)
                    failed[0] += 1
                else:
                    images.append(image)
                    chunk.append(path)
            bar.update(len(files[begin:begin + batch_size]))
            if chunk:
                yield chunk, np.stack(images)


def predict_classes(run_dir, paths, out, heatmaps, batch_size, progress, loaded):
    """``predict_files`` for a run on class-labelled data: per image a probability per
    class (``p_<class>``), the predicted ``class`` and, with ``heatmaps``, the
    class-activation map of the predicted class; scored as the run was evaluated (with
    TTA: the mean over the image and its mirror)."""
    from models.cam import compile_class_maps
    config, evaluation, prep, spec, input_shape, net = loaded
    files, skipped = image_files(paths)
    for other in skipped:
        print("predict: skipped %s: not an image file" % other, file=sys.stderr)
    out = Path(out or "predictions-%s.csv" % Path(run_dir).resolve().name)
    crop, classes = input_shape[1], config["classes"]
    fn = forward_function(net, ["prob"], spec)
    maps_fn = compile_class_maps(net, spec) if heatmaps else None
    if heatmaps:
        from .render.plots import plot_heatmap
        os.makedirs(heatmaps, exist_ok=True)
    flips = (False, True) if evaluation["settings"]["tta"] else (False,)
    names, probs, start = [], [], time.perf_counter()
    failed = [len(skipped)]
    for chunk, images in readable(files, prep, batch_size, progress, failed):
        p = tta_probs(fn, images, crop, flips=flips)
        names += chunk
        probs.append(p)
        if heatmaps:
            maps = maps_fn(caffe_batch(images, crop))[0]
            for path, rgb, m, row in zip(chunk, centre_crop(images, crop), maps, p):
                stem = os.path.splitext(os.path.basename(path))[0]
                c = int(row.argmax())
                plot_heatmap(rgb, m[c], os.path.join(heatmaps, stem + ".png"),
                             "%s: %s, p %.3f" % (stem, classes[c], row[c]),
                             "predicted-class map (logit units)")
    seconds = time.perf_counter() - start
    probs = np.concatenate(probs) if probs else np.zeros((0, len(classes)))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["image", "class"] + ["p_%s" % c for c in classes])
    for name, p in zip(names, probs):
        writer.writerow([name, classes[int(p.argmax())]] + ["%.6f" % v for v in p])
    atomic_write_bytes(out, text.getvalue().encode())
    return out, len(names), failed[0], len(names) / seconds if seconds else 0.0


def write_csv(out, names, probs, config, point, samples=None, refer_at=None,
              measure="entropy"):
    """The CSV of the module docstring; ``point``: the run's operating point (its cut on
    P(referable) and, for a 5-level run, its tuned cut-points; under uncertainty, that of
    the referral evaluation); ``samples``: S x N P(referable) of the passes or seeds,
    ``refer_at``: the uncertainty (``measure``) from which an image is referred."""
    from .evidence.referral import measures
    cut, cuts = point["cut"], point.get("cuts")
    score = referable_score(probs, config["target"], config.get("threshold", 2))
    decided = score >= cut
    patients = patient_decisions(names, decided)
    levels = config["target"] == "levels"
    header = ["image", "p_referable", "referable"]
    header += ["expected_level", "level"] + ["p_level%d" % k for k in range(5)] if levels else []
    extra = {}
    if samples is not None:
        m = measures(samples)
        referred = m[measure] >= refer_at
        extra = {"uncertainty": m[measure], "p_sd": m["sd"], "refer_to_grader": referred}
        header += list(extra)
        referred_patients = patient_decisions(names, referred)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header + ["patient_referable"] + (["patient_refer_to_grader"] if extra
                                                      else []))
    for i, (name, s, d, p) in enumerate(zip(names, score, decided, probs)):
        row = [name, "%.6f" % s, int(d)]
        if levels:
            grade = float(expected_grade(p[None])[0])
            row += ["%.4f" % grade, int(levels_at([grade], cuts)[0])] + ["%.6f" % v for v in p]
        if extra:
            row += ["%.6f" % extra["uncertainty"][i], "%.6f" % extra["p_sd"][i],
                    int(extra["refer_to_grader"][i])]
        stem = os.path.splitext(os.path.basename(name))[0]
        row.append(patients.get(stem, ""))
        writer.writerow(row + ([referred_patients.get(stem, "")] if extra else []))
    atomic_write_bytes(out, text.getvalue().encode())

