"""Referral, the part of ``make evaluate``, ``make cv`` and ``make predict`` with
``UNCERTAINTY=mc:T|ensemble``: the uncertainty of every image of a run's test split
(``evaluate_referral``), of other data at the run's own validation cuts (an external
validation), or of a cross-validation's pooled out-of-fold images (``cv_referral``);
each beside the network's own confidence and random referral.

The measures, the curves and their reading are ``evidence.referral``; the MC passes
and ensemble members ``learn.uncertainty``; this module runs them on runs and data.
"""
import json
import time
from pathlib import Path

import numpy as np

from models.fileio import atomic_savez, atomic_write_bytes, sha1_of

from .data.dataset import Dataset, open_split
from .errors import InputError
from .evaluate import check_disjoint, check_same_preprocessing, evaluate, out_dir_of
from .evidence.combine import aligned
from .evidence.referral import (DEFAULT_MEASURE, HEADLINE, MEASURES, binary_entropy,
                                check_measure, describe, headline_text, label_of, measures,
                                parse_uncertainty, refer_cut, referral_curves)
from .evidence.stats import DEFAULT_RULE, RESAMPLES, choose_cut
from .learn.uncertainty import check_mc, ensemble_of, mc_samples
from .render.plots import plot_referral
from .runs.evaluated import read_npz
from .runs.rundir import command_line, val_predictions_path


def predictions_of(run, data_path, tta, rule, resamples, split):
    """The evaluated predictions of ``run`` (made, or reused, with these settings): the
    validation split of its own data (``split`` "val"), or on ``data_path`` its test split
    (its own data) or every image (other data)."""
    run = Path(run)
    evaluation = evaluate(run, data_path, tta=tta, rule=rule, resamples=resamples, reuse=True)
    if split == "val":
        return read_npz(val_predictions_path(run, tta))
    return read_npz(out_dir_of(run, data_path, evaluation["external"]) / "predictions.npz")


def ensemble_samples(members, data_path, tta, rule, resamples, split):
    """seeds x N samples of P(referable) from each member's own evaluation
    (``predictions_of``), and those predictions, each in the first member's order."""
    got = [predictions_of(m, data_path, tta, rule, resamples, split) for m in members]
    names = list(got[0]["names"])
    try:
        if any(len(g["names"]) != len(names) for g in got):
            raise KeyError(names[0])
        got = [aligned(g, names) for g in got]
    except KeyError:
        raise InputError("%s: the seeds were evaluated on other images" % members[0].parent)
    return np.array([g["score"] for g in got]), got


def check_uncertainty(run_dir, data_path, uncertainty):
    """(mode, passes or seeds, member runs) of ``uncertainty`` for ``run_dir`` on
    ``data_path`` (its own data, or other data that shares no image with it); each
    problem one InputError, before any image is scored."""
    mode, passes = parse_uncertainty(uncertainty)
    run_dir = Path(run_dir).resolve()
    if not (run_dir / "model.npz").exists():
        raise InputError("%s: no trained model (run make train)" % (run_dir / "model.npz"))
    if not Path(data_path).is_file():
        raise InputError("%s: no preprocessed data (make preprocess DATA=...)" % data_path)
    env = json.loads((run_dir / "environment.json").read_text())
    if sha1_of(data_path) != env["data_sha1"]:
        check_same_preprocessing(data_path, env["data"])
        check_disjoint(run_dir, env, data_path)
    if mode == "mc":
        check_mc(run_dir)
        return mode, passes, [run_dir]
    members = ensemble_of(run_dir)
    return mode, len(members), members


def referral_split(run_dir, config, mode, count, members, data, data_path, split, tta, rule,
                   resamples, seed, progress):
    """The samples' measures of one split (``data``: its Dataset; ``data_path``: where
    the predictions of the run's own evaluation of it are) with its names, levels,
    patients, and ``own``: the binary entropy of the run's evaluated P(referable)."""
    info = {"names": np.array(data.names), "levels": data.levels,
            "patients": np.array(data.patients)}
    if mode == "mc":
        samples = mc_samples(run_dir, config, data, tta, count, seed,
                             "referral: %s, %d passes" % (split, count), progress)
        own = aligned(predictions_of(run_dir, data_path, tta, rule, resamples, split),
                      info["names"])
    else:  # the run is a member: its own evaluation is among theirs
        samples, got = ensemble_samples(members, data_path, tta, rule, resamples, split)
        if list(got[0]["names"]) != list(info["names"]):
            raise InputError("%s: the ensemble was evaluated on other images" % run_dir)
        own = got[list(members).index(run_dir)]
    return dict(measures(samples), own=binary_entropy(own["score"]), **{
        k: np.asarray(v) for k, v in info.items()})


def evaluate_referral(run_dir, data_path, uncertainty, tta=False, rule=None,
                      resamples=RESAMPLES, seed=0, reuse=False, progress=True,
                      measure=DEFAULT_MEASURE):
    """The referral evaluation of ``run_dir`` on the test split of its own data, or on
    every image of other data (an external validation: the run's own validation cuts),
    written beside it (other data: in ``external/<name>/``) as ``<label>.json`` / ``.npz``
    / ``.png`` (``label_of``); returns the dict. ``uncertainty``: ``mc:T`` or ``ensemble``
    (``parse_uncertainty``); ``measure``: the uncertainty the headline refers by."""
    rule = tuple(rule or DEFAULT_RULE)
    check_measure(measure)
    mode, count, members = check_uncertainty(run_dir, data_path, uncertainty)
    run_dir = Path(run_dir).resolve()
    config = json.loads((run_dir / "config.json").read_text())
    env = json.loads((run_dir / "environment.json").read_text())
    data_sha1 = sha1_of(data_path)
    external = data_sha1 != env["data_sha1"]
    out_dir = out_dir_of(run_dir, data_path, external)
    label = label_of(mode, count, tta, measure)
    settings = {"data_sha1": data_sha1, "tta": tta, "rule": list(rule),
                "resamples": resamples, "seed": seed, "mode": mode, "count": count,
                "members": [m.name for m in members], "measure": measure,
                "external": external}
    done = out_dir / (label + ".json")
    if reuse and done.exists() and done.stat().st_mtime >= (run_dir / "model.npz").stat().st_mtime:
        previous = json.loads(done.read_text())
        if previous.get("settings") == settings:
            return previous
    started = time.perf_counter()
    splits = {}
    for split, path in (("val", env["data"]), ("test", data_path)):
        data = Dataset(path, "all") if split == "test" and external else \
            open_split(path, split, config)
        splits[split] = referral_split(run_dir, config, mode, count, members, data,
                                       data_path, split, tta, rule, resamples, seed, progress)
        data.close()
    threshold = config.get("threshold", 2)
    val, test = splits["val"], splits["test"]
    try:
        cut, sens, spec = choose_cut(val["p"], val["levels"] >= threshold, *rule)
    except ValueError as e:
        raise InputError("%s: validation split: %s" % (env["data"], e))
    truth = test["levels"] >= threshold
    result = referral_curves(test["p"], truth, cut, {m: test[m] for m in MEASURES},
                             test["patients"], resamples, seed, measure=measure,
                             own=test["own"])
    u_cut = refer_cut(val[measure], HEADLINE)
    referred = test[measure] >= u_cut
    result.update({
        "run": str(run_dir), "data": str(Path(data_path).resolve()), "mode": mode,
        "count": count, "members": [str(m) for m in members], "measure": measure,
        "external": external, "settings": settings, "command": command_line(),
        "n": int(len(truth)), "patients": len(set(test["patients"].tolist())),
        "operating_point": {"rule": rule[0], "target": rule[1], "cut": cut,
                            "val_sensitivity": sens, "val_specificity": spec},
        "refer": {"fraction": HEADLINE, "cut": u_cut, "val_images": int(len(val["p"])),
                  "test_referred": int(referred.sum()),
                  "levels_referred": np.bincount(test["levels"][referred], minlength=5).tolist(),
                  "levels_kept": np.bincount(test["levels"][~referred], minlength=5).tolist()},
    })
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_savez(out_dir / (label + ".npz"),
                 **{"%s_%s" % (split, k): v for split, d in splits.items() for k, v in d.items()})
    where = Path(data_path).stem if external else "test"
    plot_referral(result, str(out_dir / (label + ".png")),
                  "%s, %s (%d %s images)" % (run_dir.name, describe(result), len(truth), where))
    result["seconds"] = time.perf_counter() - started
    atomic_write_bytes(done, json.dumps(result, indent=2).encode())
    print("referral %s%s: %s" % (run_dir.name, " on " + where if external else "",
                                 headline_text(result)))
    return result


def cv_label(summary):
    """How a CV's referral row is named: '5-fold CV of 4 [epochs=1], seed 1, out of
    fold' (its overrides and seed, so that two CVs never print one label)."""
    overrides = summary.get("overrides") or []
    return "%d-fold CV of %s%s, seed %s, out of fold" % (
        summary["folds"], summary["scenario"],
        " [%s]" % ", ".join(overrides) if overrides else "", summary.get("seed", 0))


def cv_referral(out_dir, runs, data_path, uncertainty, tta=False, rule=None,
                resamples=RESAMPLES, seed=0, progress=True, measure=DEFAULT_MEASURE):
    """The referral of the pooled out-of-fold test images of a cross-validation's fold
    ``runs`` (each evaluated by ``evaluate_referral``, reused when made alike): every
    image scored by the fold that held it out, decided at that fold's cut and referred at
    that fold's referral cut; written into ``out_dir`` (the CV's summary folder) as for a
    run. Folds whose ensembles have other numbers of seeds are refused (one design
    only). Returns the dict."""
    started = time.perf_counter()
    folds = [evaluate_referral(run, data_path, uncertainty, tta=tta, rule=rule,
                               resamples=resamples, seed=seed, reuse=True, progress=progress,
                               measure=measure)
             for run in runs]
    counts = [f["count"] for f in folds]
    if len(set(counts)) > 1:
        k = next(i for i, c in enumerate(counts) if c != counts[0])
        raise InputError("%s: UNCERTAINTY=%s: fold %d's ensemble has %d seeds, fold 0's %d: "
                         "train the same seeds for every fold" % (
                             Path(runs[k]).name, uncertainty, k, counts[k], counts[0]))
    parts = [read_npz(Path(run) / (label_of(f["mode"], f["count"], tta, measure) + ".npz"))
             for run, f in zip(runs, folds)]
    label = label_of(folds[0]["mode"], counts[0], tta, measure)
    pooled = {k: np.concatenate([p["test_" + k] for p in parts])
              for k in ("p", "sd", "entropy", "own", "names", "levels", "patients")}
    each = [len(p["test_p"]) for p in parts]
    cuts = np.repeat([f["operating_point"]["cut"] for f in folds], each)
    refer_at = np.repeat([f["refer"]["cut"] for f in folds], each)
    truth = pooled["levels"] >= json.loads((Path(runs[0]) / "config.json").read_text()).get(
        "threshold", 2)
    result = referral_curves(pooled["p"], truth, cuts, {m: pooled[m] for m in MEASURES},
                             pooled["patients"], resamples, seed, measure=measure,
                             own=pooled["own"])
    referred = pooled[measure] >= refer_at
    summary = json.loads((Path(out_dir) / "summary.json").read_text())
    result.update({
        "cv": str(out_dir), "folds": len(runs), "scenario": summary["scenario"],
        "label": cv_label(summary),
        "design_sha1": summary["design_sha1"], "data": str(Path(data_path).resolve()),
        "mode": folds[0]["mode"], "count": counts[0], "members": [str(r) for r in runs],
        "measure": measure, "command": command_line(), "n": int(len(truth)),
        "patients": len(set(pooled["patients"].tolist())),
        "settings": dict(folds[0]["settings"], data_sha1=sha1_of(data_path), members=[
            Path(r).name for r in runs]),
        "operating_point": {"rule": folds[0]["operating_point"]["rule"],
                            "target": folds[0]["operating_point"]["target"],
                            "cuts": [f["operating_point"]["cut"] for f in folds]},
        "refer": {"fraction": HEADLINE, "cuts": [f["refer"]["cut"] for f in folds],
                  "test_referred": int(referred.sum()),
                  "levels_referred": np.bincount(pooled["levels"][referred],
                                                 minlength=5).tolist(),
                  "levels_kept": np.bincount(pooled["levels"][~referred], minlength=5).tolist()},
    })
    out_dir = Path(out_dir)
    atomic_savez(out_dir / (label + ".npz"), **{"test_" + k: v for k, v in pooled.items()},
                 test_cut=cuts, test_refer_at=refer_at)
    plot_referral(result, str(out_dir / (label + ".png")), "%s, %d-fold CV, out of fold, %s "
                  "(%d images)" % (out_dir.name, len(runs), describe(result), len(truth)))
    result["seconds"] = time.perf_counter() - started
    atomic_write_bytes(out_dir / (label + ".json"), json.dumps(result, indent=2).encode())
    print("referral %s: %s" % (out_dir.name, headline_text(result)))
    return result
