"""Evaluate a trained run, with 95 % patient-level bootstrap intervals.

On the run's own data: the test split (of the run's fold, under
cross-validation). The operating point, a threshold on P(referable DR), is
chosen on the validation split before the test split is looked at (default:
the highest specificity with sensitivity >= 0.87; or Youden's J) and the test
metrics are given both at it and at the argmax decision.

On any other preprocessed dataset (external validation): every usable image,
whatever its split, at the operating point chosen on the run's own validation
split; results go to ``RUN/external/<dataset>/``.

Writes ``evaluation.json``, ``predictions.npz`` and the plots ``roc.png``,
``confusion.png``, ``calibration.png``.

Class-labelled data (target ``classes``) have no referable class and no operating
point: accuracy and mean per-class accuracy with 95 % intervals over images, the
multi-class log-loss and the confusion matrix (``evaluate_classes``).
"""
import json
import time
from pathlib import Path

import h5py
import numpy as np

from models.fileio import atomic_savez, atomic_write_bytes, sha1_of
from models.model_io import load_model

from .data.dataset import Dataset, open_split, rotations
from .errors import InputError
from .evidence.fourcases import bootstrap_class, class_metrics
from .evidence.grading import expected_grade, grading, tune_cuts
from .evidence.metrics import referable_decision, referable_score, screening_metrics
from .evidence.stats import DEFAULT_RULE, RESAMPLES, bootstrap, choose_cut
from .learn.features import cached_predictor
from .learn.inference import forward_function, predict
from .render.plots import plot_confusion, plot_reliability, plot_roc
from .runs.rundir import command_line, val_predictions_path

#: what an evaluation.json holds changed (validation scores kept per TTA, undefined
#: kappas left out): an evaluation of an older version is made again, never reused
EVALUATION_VERSION = 2


def out_dir_of(run_dir, data_path, external):
    return run_dir / "external" / Path(data_path).stem if external else run_dir


def check_same_preprocessing(data_path, train_path):
    """External data must be preprocessed as the run's training data was."""
    keys = ("size", "lcn")
    with h5py.File(data_path, "r") as f, h5py.File(train_path, "r") as g:
        ours, theirs = [{k: f.attrs.get(k) for k in keys}, {k: g.attrs.get(k) for k in keys}]
    if ours != theirs:
        raise InputError("%s: preprocessed with %s, the run's training data with %s; run "
                         "preprocess with the same --size/--lcn" % (data_path, ours, theirs))


#: (the run's data SHA1, other data's SHA1) pairs found disjoint in this process: an
#: ensemble's members and a referral's evaluations read every image of both files once
_DISJOINT = set()


def check_disjoint(run_dir, env, data_path):
    """InputError when other data ``data_path`` shares an image with the run's own data
    (any split: what it learnt from, chose its cuts on, or was tested on), by name or by
    its preprocessed pixels."""
    from .data.store import pixels_sha1
    pair = (sha1_of(env["data"]), sha1_of(data_path))
    if pair in _DISJOINT:
        return

    def checksums(path, chunk=256):
        data = Dataset(path, "all")
        for start in range(0, len(data), chunk):
            positions = np.arange(start, min(start + chunk, len(data)))
            for k, image in zip(positions, data.images(positions)):
                yield data.names[k], pixels_sha1(image)
        data.close()
    seen = {}
    for name, sha1 in checksums(env["data"]):
        seen[name] = seen[sha1] = name
    shared = [(name, seen.get(name) or seen.get(sha1)) for name, sha1 in checksums(data_path)]
    shared = [(a, b) for a, b in shared if b]
    if shared:
        raise InputError("%s: %d image(s) also in the data of run %s (e.g. %s as %s): "
                         "external validation needs images the run never saw"
                         % (data_path, len(shared), Path(run_dir).name, shared[0][0],
                            shared[0][1]))
    _DISJOINT.add(pair)


def decisions(probs, levels, config):
    """(P(referable), truth, argmax decision) per image, all for referable DR."""
    threshold = config.get("threshold", 2)
    return (referable_score(probs, config["target"], threshold), np.asarray(levels) >= threshold,
            referable_decision(probs, config["target"], threshold))


def operating_point(infer, run_dir, config, env, tta, rule):
    """The cut on P(referable) chosen on the run's validation split (reused from
    the run's own evaluation.json when made with the same rule and TTA)."""
    own = run_dir / "evaluation.json"
    if own.exists():
        made = json.loads(own.read_text())
        point = made.get("operating_point", {})
        if made.get("settings", {}).get("version") == EVALUATION_VERSION and \
                [point.get("rule"), point.get("target"), point.get("tta")] == list(rule) + [tta] \
                and (config["target"] != "levels" or "cuts" in point):
            return point
    val = open_split(env["data"], "val", config)
    probs = infer(env["data"], val, rotations(tta), desc="evaluate: validation")
    score, truth, _ = decisions(probs, val.levels, config)
    # what the operating point rests on, for ensembles and both-eye fusion (claims), kept
    # apart for each TTA: an evaluation with another never overwrites this one's
    atomic_savez(val_predictions_path(run_dir, tta), probs=probs, score=score,
                 levels=val.levels, names=np.array(val.names),
                 patients=np.array(val.patients))
    try:
        cut, sens, spec = choose_cut(score, truth, *rule)
    except ValueError as e:
        raise InputError("%s: validation split: %s" % (env["data"], e))
    point = {"rule": rule[0], "target": rule[1], "tta": tta, "cut": cut,
             "val_sensitivity": sens, "val_specificity": spec, "val_images": len(val)}
    if config["target"] == "levels":  # Kaggle's yardstick: cut-points on the expected level
        cuts, kappa = tune_cuts(expected_grade(probs), val.levels)
        point.update(cuts=[float(c) for c in cuts], val_kappa_tuned=kappa,
                     cut_search="coordinate ascent from 0.5/1.5/2.5/3.5 over midpoints of "
                                "validation grades, maximising quadratic weighted kappa")
    return point


def inference(config, env, net, crop, progress=True):
    """(data path, Dataset, rotations, flips, desc) -> class probabilities of the run's
    network: from the cached features of each view for a feature run on the pre-trained
    trunk (``features.cached_predictor``: one extraction per data file and view serves
    every fold, size and seed), else the compiled forward pass."""
    cached = cached_predictor(config, env, net, crop)
    if cached is not None:
        return lambda path, data, rotations=(0,), flips=(False,), desc="": cached(
            path, data, rotations, flips)
    fn = forward_function(net, ["prob"])
    return lambda path, data, rotations=(0,), flips=(False,), desc="": predict(
        fn, data, crop, rotations=rotations, flips=flips, desc=desc, progress=progress)


def settings_of(data_sha1, tta, rule, resamples, seed):
    return {"data_sha1": data_sha1, "tta": tta, "rule": list(rule), "resamples": resamples,
            "seed": seed, "version": EVALUATION_VERSION}


def evaluate(run_dir, data_path, tta=False, rule=DEFAULT_RULE, resamples=RESAMPLES, seed=0,
             reuse=False, progress=True):
    """Evaluate ``run_dir`` on ``data_path`` (its own data: the test split; other
    data: all of it). ``reuse``: keep an evaluation made with the same settings
    after the model. Returns the evaluation dict."""
    run_dir = Path(run_dir).resolve()
    model = run_dir / "model.npz"
    if not model.exists() and not (reuse and (run_dir / "evaluation.json").exists()):
        raise InputError("%s: no trained model (run make train)" % model)
    if not Path(data_path).is_file():
        raise InputError("%s: no preprocessed data (make preprocess DATA=...)" % data_path)
    config = json.loads((run_dir / "config.json").read_text())
    env = json.loads((run_dir / "environment.json").read_text())
    data_sha1 = sha1_of(data_path)
    external = data_sha1 != env["data_sha1"]
    out_dir = out_dir_of(run_dir, data_path, external)
    settings = settings_of(data_sha1, tta, rule, resamples, seed)
    done = out_dir / "evaluation.json"
    # a run restored from its kept evidence (runs.kept) has its evaluation and no model
    if reuse and done.exists() and (not model.exists()
                                    or done.stat().st_mtime >= model.stat().st_mtime):
        previous = json.loads(done.read_text())
        if previous.get("settings") == settings:
            return previous
    if not model.exists():
        raise InputError("%s: no trained model (run make train); the run's kept evaluation "
                         "was made with other settings or data" % model)
    if external:
        check_same_preprocessing(data_path, env["data"])
        check_disjoint(run_dir, env, data_path)
    started = time.perf_counter()
    _, input_shape, net = load_model(str(model))
    infer = inference(config, env, net, input_shape[1], progress)
    if config["target"] == "classes":
        return evaluate_classes(infer, config, data_path, external, out_dir, settings,
                                started, resamples, seed)
    point = operating_point(infer, run_dir, config, env, tta, rule)
    data = Dataset(data_path, "all") if external else open_split(data_path, "test", config)
    if len(data) == 0:
        raise InputError("%s: no usable images in the %s split" % (data_path, "whole" if external
                                                                  else "test"))
    probs = infer(data_path, data, rotations(tta),
                  desc="evaluate: %s" % ("all images" if external else "test split"))
    score, truth, decided = decisions(probs, data.levels, config)
    argmax = bootstrap(score, truth, decided, data.patients, resamples, seed)
    result = {
        "run": str(run_dir), "data": str(Path(data_path).resolve()), "external": external,
        "split": "all" if external else "test", "tta": tta, "n": len(data),
        "command": command_line(),
        "settings": settings, "bootstrap": argmax.pop("bootstrap"), "argmax": argmax,
        "operating_point": point,
        "at_operating_point": {k: v for k, v in bootstrap(
            score, truth, score >= point["cut"], data.patients, resamples, seed).items()
            if k != "bootstrap"},
        "confusion": screening_metrics(probs, data.levels, config["target"],
                                       config.get("threshold", 2))["confusion"],
    }
    if config["target"] == "levels":
        result["levels"] = grading(probs, data.levels, data.patients, point["cuts"],
                                   resamples, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_savez(out_dir / "predictions.npz", probs=probs, score=score, levels=data.levels,
                 names=np.array(data.names), patients=np.array(data.patients))
    title = "(%s, %d images)" % (Path(data_path).stem if external else "test split", len(data))
    plot_roc([(config["scenario"], score, truth, (score >= point["cut"]))],
             str(out_dir / "roc.png"), title)
    labels = ["no", "referable"] if config["target"] == "binary" else [str(i) for i in range(5)]
    plot_confusion(result["confusion"], labels, str(out_dir / "confusion.png"), title)
    plot_reliability([(title.strip("()"), score, truth)], str(out_dir / "calibration.png"))
    result["seconds"] = time.perf_counter() - started
    atomic_write_bytes(done, json.dumps(result, indent=2).encode())
    print("evaluate %s: %s" % (title, summary_line(result)))
    if "levels" in result:
        g = result["levels"]
        print("evaluate %s: 5-level kappa at the argmax %.3f [%.3f, %.3f], at the tuned "
              "cut-points %s %.3f [%.3f, %.3f]" % ((title, g["kappa_argmax"]["value"])
                                                   + tuple(g["kappa_argmax"]["ci"])
                                                   + (g["cuts"], g["kappa_tuned"]["value"])
                                                   + tuple(g["kappa_tuned"]["ci"])))
    return result


def evaluate_classes(infer, config, data_path, external, out_dir, settings, started,
                     resamples, seed):
    """The evaluation of a run on class-labelled data: its test split (or all of other
    data), each image its own unit of the bootstrap; TTA: the mirrored image beside the
    original (the class data's augmentation), never rotations."""
    data = Dataset(data_path, "all") if external else open_split(data_path, "test",
                                                                              config)
    if data.classes != config["classes"]:
        raise InputError("%s: classes %s, the run's %s" % (data_path, ", ".join(data.classes),
                                                          ", ".join(config["classes"])))
    if len(data) == 0:
        raise InputError("%s: no usable images in the %s split" % (data_path, "whole" if external
                                                                  else "test"))
    flips = (False, True) if settings["tta"] else (False,)
    probs = infer(data_path, data, flips=flips,
                  desc="evaluate: %s" % ("all images" if external else "test split"))
    metrics = class_metrics(probs, data.targets)
    intervals = bootstrap_class(probs, data.targets, resamples, seed)
    result = {
        "run": str(out_dir if not external else out_dir.parents[1]), "data":
        str(Path(data_path).resolve()), "external": external,
        "split": "all" if external else "test", "tta": settings["tta"], "n": len(data),
        "command": command_line(), "settings": settings, "classes": data.classes,
        "bootstrap": intervals.pop("bootstrap"), "argmax": intervals,
        "log_loss": metrics["log_loss"], "confusion": metrics["confusion"],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_savez(out_dir / "predictions.npz", probs=probs, levels=data.levels,
                 names=np.array(data.names), patients=np.array(data.patients))
    title = "(%s, %d images)" % (Path(data_path).stem if external else "test split", len(data))
    plot_confusion(result["confusion"], data.classes, str(out_dir / "confusion.png"), title)
    result["seconds"] = time.perf_counter() - started
    atomic_write_bytes(out_dir / "evaluation.json", json.dumps(result, indent=2).encode())
    print("evaluate %s: %s, log-loss %.3f" % (title, ", ".join(
        "%s %.3f [%.3f, %.3f]" % ((m.replace("_", " "), intervals[m]["value"])
                                  + tuple(intervals[m]["ci"]))
        for m in ("accuracy", "mean_class_accuracy")), metrics["log_loss"]))
    return result


def summary_line(result):
    """One line: the argmax and operating-point metrics with their intervals."""
    def part(metrics):
        return ", ".join("%s %.3f [%.3f, %.3f]" % ((m, metrics[m]["value"]) + tuple(metrics[m]["ci"]))
                         for m in ("auc", "sensitivity", "specificity", "kappa"))
    return "argmax: %s; at cut %.3f: %s" % (part(result["argmax"]),
                                             result["operating_point"]["cut"],
                                             part(result["at_operating_point"]))
