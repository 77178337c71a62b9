"""Cross-validation by patient: ``folds`` runs of one scenario, each a full run
directory (config keys ``folds``/``fold``: test = that fold, val = the next,
train = the rest; folds stratified by each patient's worst level), each
evaluated on its test fold, so that every usable image is predicted out of
fold exactly once.

The summary, ``runs/cv-{scenario}-k{folds}-{design}/`` (``design``: the first 8 hex
digits of the SHA1 of the whole config, seed and overrides included, and of the
evaluation's TTA and operating rule, so that no other design overwrites it):
``summary.json`` (the config, the overrides, the settings, the SHA1 of the fold
assignment, per-fold metrics, their mean and sd, and the pooled out-of-fold AUC with
its patient-bootstrap interval), ``oof_predictions.npz``, ``cv_roc.png`` (the folds'
ROC curves overlaid). Feature scenarios extract their features once for all
folds (``pipeline.features`` caches them for every image of the data).
"""
import hashlib
import json
from pathlib import Path

import h5py
import numpy as np

from models.fileio import atomic_savez, atomic_write_bytes, sha1_of

from .data.splits import kfold_by_patient
from .evaluate import evaluate
from .evidence.grading import cv_grading
from .evidence.referral import check_planned
from .evidence.stats import DEFAULT_RULE, METRICS, RESAMPLES, bootstrap
from .recipe.config import load_scenario
from .referral import cv_referral
from .render.plots import plot_roc
from .runs.evaluated import overrides_of, read_npz
from .runs.rundir import command_line, val_predictions_path
from .train import train


def design_sha1(config, tta, rule):
    """The SHA1 of what a cross-validation computes: its config (folds included, the fold
    itself left out), its TTA and its operating rule."""
    what = {k: v for k, v in config.items() if k != "fold"}
    return hashlib.sha1(json.dumps([what, bool(tta), list(rule)], sort_keys=True)
                        .encode()).hexdigest()


def cv_dir(runs_root, config, tta, rule):
    return Path(runs_root) / ("cv-%s-k%d-%s" % (config["scenario"], config["folds"],
                                                design_sha1(config, tta, rule)[:8]))


def fold_assignment(data_path, folds):
    """(names, levels, fold, usable) of every image of ``data_path``: the folds as
    ``Dataset`` deals them (over every stored image), and which images are usable."""
    with h5py.File(data_path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["name"][:]]
        levels, usable = f["level"][:], f["ok"][:].astype(bool)
    return names, levels, kfold_by_patient(names, levels, folds), usable


def fold_assignment_sha1(data_path, folds):
    """The SHA1 of the fold of every image of ``data_path`` ("name<TAB>fold" lines): equal
    for every scenario and seed on the same data (the folds' shuffle has its own seed)."""
    names, _, of, _ = fold_assignment(data_path, folds)
    return hashlib.sha1("\n".join("%s\t%d" % p for p in zip(names, of)).encode()).hexdigest()


def check_folds(data_path, folds, configs):
    """InputError, in one line, when ``folds`` cannot stratify the data: more folds than
    the patients of a level (by each patient's worst level), or a fold whose patients
    are all of one class for a config's positive class (``threshold``)."""
    from .errors import InputError
    from .data.splits import worst_levels
    if not Path(data_path).is_file():
        raise InputError("%s: no preprocessed data (make preprocess DATA=...)" % data_path)
    if folds < 3:
        raise InputError("%d folds: cross-validation needs at least 3 (test, validation and "
                         "training folds)" % folds)
    names, levels, of, usable = fold_assignment(data_path, folds)
    worst = worst_levels([n for n, u in zip(names, usable) if u], levels[usable])
    counts = [sum(1 for v in worst.values() if v == level) for level in range(5)]
    small = [(level, n) for level, n in enumerate(counts) if 0 < n < folds]
    if small:
        raise InputError("%s: %d folds, but level %d has only %d patients (patients per "
                         "level 0-4: %s)" % (data_path, folds, small[0][0], small[0][1],
                                             ", ".join(map(str, counts))))
    for threshold in sorted({c.get("threshold", 2) for c in configs}):
        for k in range(folds):
            fold = (of == k) & usable
            positive = int((levels[fold] >= threshold).sum())
            if positive in (0, int(fold.sum())):
                raise InputError("%s: fold %d of %d has %s images only (referable DR = level "
                                 ">= %d: %d of its %d images)" % (
                                     data_path, k, folds, "positive" if positive else "negative",
                                     threshold, positive, int(fold.sum())))


def cross_validate(scenario, overrides, data_path, weights, runs_root="runs", folds=5, tta=False,
                   rule=DEFAULT_RULE, resamples=RESAMPLES, progress=True, uncertainty=None,
                   reuse_from=(), measure="entropy"):
    """Train (or reuse: from ``runs_root`` or the folders ``reuse_from``) and evaluate
    every fold, then write the summary; returns its dict.
    ``uncertainty`` (``mc:T``, ``ensemble``): also the referral of the pooled out-of-fold
    images (``referral.cv_referral``)."""
    configs = [load_scenario(scenario, list(overrides) + ["folds=%d" % folds, "fold=%d" % k])
               for k in range(folds)]  # all checked before the first fold trains
    check_folds(data_path, folds, configs)
    if uncertainty:
        check_planned(configs[0], uncertainty)
    runs, evaluations = [], []
    for config in configs:
        run = train(config, data_path, weights, runs_root, progress=progress, reuse=True,
                    reuse_from=reuse_from)
        if run is None:
            return None  # stopped by a signal; the fold resumes on the next call
        runs.append(run)
        evaluations.append(evaluate(run, data_path, tta=tta, rule=rule, resamples=resamples,
                                    reuse=True))
    parts = [np.load(Path(run) / "predictions.npz") for run in runs]
    pooled = {k: np.concatenate([p[k] for p in parts]) for k in ("score", "levels", "names",
                                                                  "patients")}
    threshold = configs[0].get("threshold", 2)
    truth = pooled["levels"] >= threshold
    seed = configs[0].get("seed", 0)
    out = cv_dir(runs_root, configs[0], tta, rule)
    per_fold = [{m: e["argmax"][m]["value"] for m in METRICS} for e in evaluations]
    summary = {
        "scenario": configs[0]["scenario"], "folds": folds, "seed": seed, "tta": tta,
        "rule": list(rule), "threshold": threshold,
        "overrides": list(overrides_of(configs[0])), "command": command_line(),
        "config": {k: v for k, v in configs[0].items() if k != "fold"},
        "design_sha1": design_sha1(configs[0], tta, rule),
        "folds_sha1": fold_assignment_sha1(data_path, folds),
        "data": str(Path(data_path).resolve()), "data_sha1": sha1_of(data_path),
        "runs": [str(r) for r in runs], "per_fold": per_fold,
        "mean": {m: float(np.mean([f[m] for f in per_fold])) for m in METRICS},
        "sd": {m: float(np.std([f[m] for f in per_fold], ddof=1)) for m in METRICS},
        "pooled_auc": bootstrap(pooled["score"], truth, pooled["score"] >= 0.5,
                                pooled["patients"], resamples, metrics=("auc",)),
        "images": int(len(truth)),
    }
    if configs[0]["target"] == "levels":  # cut-points tuned on other folds' validation
        summary["levels"] = cv_grading(
            [(read_npz(val_predictions_path(run, tta)), read_npz(Path(run) / "predictions.npz"))
             for run in runs], resamples)
    out.mkdir(parents=True, exist_ok=True)
    atomic_savez(out / "oof_predictions.npz", **pooled)
    plot_roc([("fold %d" % k, p["score"], p["levels"] >= threshold, None)
              for k, p in enumerate(parts)], str(out / "cv_roc.png"),
             "(%s, %d-fold CV)" % (summary["scenario"], folds))
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    auc = summary["pooled_auc"]["auc"]
    print("cv %s: AUC per fold %s, mean %.3f +- %.3f; pooled out-of-fold AUC %.3f [%.3f, %.3f] "
          "(%d images)" % (summary["scenario"], ", ".join("%.3f" % f["auc"] for f in per_fold),
                           summary["mean"]["auc"], summary["sd"]["auc"], auc["value"],
                           auc["ci"][0], auc["ci"][1], summary["images"]))
    if uncertainty:
        cv_referral(out, runs, data_path, uncertainty, tta=tta, rule=rule, resamples=resamples,
                    progress=progress, measure=measure)
    return summary
