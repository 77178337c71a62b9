"""Refer what the network is unsure of: an uncertainty per image, and how the images
kept score when the most uncertain are sent to a human grader (Leibig et al., Sci.
Rep. 2017; the curve of Filos et al. 2019, AUC against the fraction retained).

``UNCERTAINTY=mc:T``: T stochastic passes with dropout on below ``loss3/classifier``
(``models.mc_dropout``: Caffe's inverted dropout, seeded masks, the rotations of TTA
inside each pass). ``UNCERTAINTY=ensemble``: the seeds of the run's recipe, each as
evaluated. Either gives per image samples ``s_t`` of P(referable DR), and from them

- ``p``: their mean, the score the operating point is chosen on (validation split);
- ``sd``: their standard deviation (ddof 0), Leibig et al.'s measure;
- ``entropy``: the binary entropy of ``p`` in bits (0 sure, 1 at p = 0.5).

``entropy`` is the default uncertainty: it is defined whatever T (also for an
ensemble of two or three seeds, where an sd of so few samples is noise), it rises
both where the passes disagree (which moves ``p`` towards 0.5) and where they agree
on an unsure score, and it is the measure of the benchmark of Filos et al. ``sd``
is given beside it, curve for curve.

Curves, on the test split: the images ranked by uncertainty, the most uncertain
fraction f (``FRACTIONS``) referred, AUC / sensitivity / specificity (at the cut
chosen on validation) of the images kept, with patient-bootstrap intervals; and the
same for random referral (the value: the mean over ``RANDOM_DRAWS`` draws; the
interval: one draw per resample). Headline: the AUC kept at f = 0.2, and its
difference from random referral by a paired bootstrap (the same resamples, one random
draw each): "beats random" when the interval is above 0.
"""
import json
import re
import time
import warnings
from pathlib import Path

import numpy as np

from models.fileio import atomic_savez, atomic_write_bytes

from .errors import InputError
from .metrics import auc
from .stats import RESAMPLES, choose_cut, decision_metrics, interval, resample_indices

MEASURES = ("entropy", "sd")
DEFAULT_MEASURE = "entropy"
FRACTIONS = tuple(round(0.05 * k, 2) for k in range(11))  # 0 to 50 % referred
HEADLINE = 0.2
RANDOM_DRAWS = 200
CURVE_METRICS = ("auc", "sensitivity", "specificity")


def parse_uncertainty(text):
    """("mc", T) for ``mc:T`` (T >= 2) or ("ensemble", None); InputError otherwise."""
    m = re.fullmatch(r"mc:(\d+)", text or "")
    if m:
        if int(m.group(1)) < 2:
            raise InputError("UNCERTAINTY=%s: MC dropout needs at least 2 passes (mc:T, "
                             "T >= 2)" % text)
        return "mc", int(m.group(1))
    if text == "ensemble":
        return "ensemble", None
    raise InputError("UNCERTAINTY=%s: expected mc:T (T stochastic passes, T >= 2) or "
                     "ensemble (the seeds of the run's recipe)" % text)


def label_of(mode, count, tta):
    """The file stem of a referral evaluation: ``referral-mc20-4rot``, ``-ensemble3-1rot``."""
    return "referral-%s%d-%drot" % (mode, count, 4 if tta else 1)


def measures(samples):
    """{"p", "sd", "entropy"} per image from S x N samples of P(referable)."""
    samples = np.asarray(samples, np.float64)
    p = samples.mean(axis=0)
    q = np.clip(p, 1e-12, 1 - 1e-12)
    entropy = -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
    return {"p": p, "sd": samples.std(axis=0), "entropy": entropy}


def kept(uncertainty, fraction):
    """Boolean mask of the images kept when the round(fraction N) most uncertain are
    referred (ties: the later image referred first; stable, so repeatable)."""
    u = np.asarray(uncertainty)
    refer = int(round(fraction * len(u)))
    order = np.argsort(-u, kind="stable")
    keep = np.ones(len(u), bool)
    keep[order[:refer]] = False
    return keep


def refer_cut(val_uncertainty, fraction):
    """The uncertainty at or above which an image is referred so that ``fraction`` of
    the validation images are (the (1 - fraction) quantile, 'higher' interpolation)."""
    return float(np.quantile(np.asarray(val_uncertainty), 1 - fraction, method="higher")) \
        if fraction > 0 else float("inf")


def _kept_metrics(score, truth, cut, keep):
    return decision_metrics(score[keep], truth[keep], score[keep] >= cut[keep], CURVE_METRICS)


def referral_curves(score, truth, cut, uncertainty, patients, resamples=RESAMPLES, seed=0,
                    fractions=FRACTIONS, headline=HEADLINE):
    """The curves of the module docstring. ``uncertainty``: {measure: per-image values};
    ``cut``: the operating point on ``score``, or one per image (pooled folds).
    Returns {"fractions", "curves": {name: {metric: {"value": [...], "ci": [[lo, hi]...]}}},
    "headline": {"fraction", "measure", "auc_all", "auc_kept", "auc_random",
    "difference", "verdict"}, "bootstrap"}."""
    score, truth = np.asarray(score, float), np.asarray(truth, bool)
    cut = np.broadcast_to(np.asarray(cut, float), score.shape)  # one, or one per image
    names = list(uncertainty) + ["random"]
    rng = np.random.RandomState([seed, 1])

    def random_keep(n, fraction):
        return kept(rng.random_sample(n), fraction)

    def values(idx, draws):
        out = {}
        for name in names:
            rows = []
            for f in fractions:
                if name == "random":
                    keeps = [random_keep(len(idx), f) for _ in range(draws)]
                else:
                    keeps = [kept(np.asarray(uncertainty[name])[idx], f)]
                with warnings.catch_warnings():  # a metric undefined in every draw: NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    rows.append(np.nanmean([[_kept_metrics(score[idx], truth[idx], cut[idx], k)[m]
                                             for m in CURVE_METRICS] for k in keeps], axis=0))
            out[name] = np.array(rows)  # fractions x metrics
        return out

    point = values(np.arange(len(score)), RANDOM_DRAWS)
    reps = [values(idx, 1) for idx in resample_indices(patients, resamples, seed)]
    curves = {name: {m: {"value": [float(v) for v in point[name][:, j]],
                         "ci": [interval([r[name][i, j] for r in reps])
                                for i in range(len(fractions))]}
                     for j, m in enumerate(CURVE_METRICS)} for name in names}
    at, first = list(fractions).index(headline), list(uncertainty)[0]
    diffs = [r[first][at, 0] - r["random"][at, 0] for r in reps]
    d = {"value": float(point[first][at, 0] - point["random"][at, 0]), "ci": interval(diffs)}
    verdict = ("beats random referral" if d["ci"][0] > 0 else "worse than random referral"
               if d["ci"][1] < 0 else "not distinguishable from random referral at this size")
    return {"fractions": list(fractions), "curves": curves,
            "headline": {"fraction": headline, "measure": first,
                         "auc_all": {"value": auc(score, truth),
                                     "ci": curves[first]["auc"]["ci"][0]},
                         "auc_kept": {"value": curves[first]["auc"]["value"][at],
                                      "ci": curves[first]["auc"]["ci"][at]},
                         "auc_random": {"value": curves["random"]["auc"]["value"][at],
                                        "ci": curves["random"]["auc"]["ci"][at]},
                         "difference": d, "verdict": verdict},
            "bootstrap": {"resamples": resamples, "seed": seed, "unit": "patient",
                          "random_draws": RANDOM_DRAWS}}


def ensemble_members(run_dir):
    """The finished runs beside ``run_dir`` that differ from it in the seed alone (the
    same recipe, fold, data and weights), one per seed (``run_dir`` for its own, else
    the newest), sorted."""
    from .config import recipe
    from .runs import is_view

    def key(path):
        config = json.loads((path / "config.json").read_text())
        env = json.loads((path / "environment.json").read_text())
        return ([kv for kv in recipe(config) if kv[0] != "seed"],
                env.get("data_sha1"), env.get("weights_sha1"))

    def seed(path):
        return json.loads((path / "config.json").read_text()).get("seed", 0)

    run_dir = Path(run_dir).resolve()
    ours = key(run_dir)
    by_seed = {}
    for p in sorted(run_dir.parent.iterdir()):  # names end in their start time
        if p.is_dir() and not p.is_symlink() and not is_view(p) and (p / "DONE").exists() \
                and (p / "config.json").exists() and key(p) == ours:
            by_seed[seed(p)] = p
    by_seed[seed(run_dir)] = run_dir
    return sorted(by_seed.values())


def ensemble_of(run_dir):
    """``ensemble_members``, an InputError when there are fewer than two."""
    members = ensemble_members(run_dir)
    if len(members) < 2:
        raise InputError("%s: UNCERTAINTY=ensemble needs several seeds of this recipe beside "
                         "it (make train SEEDS=0,1,2); there is one" % run_dir)
    return members


def mc_samples(run_dir, config, data, tta, passes, seed, desc, progress=True):
    """passes x N samples of P(referable) of the images of ``data`` (a Dataset) under MC
    dropout, with a progress bar (images x rotations)."""
    from tqdm import tqdm

    from models.mc_dropout import compile_head, compile_trunk, dropout_below, mc_probs
    from models.model_io import load_model

    from .dataset import caffe_batch
    from .evaluate import rotations
    from .metrics import referable_score
    spec, input_shape, net = load_model(str(Path(run_dir) / "model.npz"))
    _, ratio = dropout_below(spec)
    trunk, head = compile_trunk(net, spec), compile_head(net, spec)
    crop, turns = input_shape[1], rotations(tta)
    with tqdm(total=len(data) * len(turns), unit="img", desc=desc, leave=False,
              disable=not progress) as bar:
        def batches(size=32):
            for start in range(0, len(data), size):
                positions = np.arange(start, min(start + size, len(data)))
                images = data.images(positions)
                inputs = []
                for degrees in turns:
                    inputs.append(caffe_batch(images, crop, np.full(len(positions),
                                                                    degrees // 90)))
                yield [data.names[i] for i in positions], inputs
                bar.update(len(positions) * len(turns))  # once mc_probs has scored them
        probs = mc_probs(trunk, head, batches(), passes, ratio, seed)
    return np.array([referable_score(p, config["target"], config.get("threshold", 2))
                     for p in probs])


def check_mc(run_dir):
    """InputError, before any image is read, when the run's network has no dropout
    below its classifier (the feature scenarios' linear classifiers)."""
    from models.googlenet import UnknownLayer
    from models.mc_dropout import dropout_below
    from models.model_io import load_spec
    try:
        dropout_below(load_spec(str(Path(run_dir) / "model.npz")))
    except UnknownLayer as e:
        raise InputError("%s: UNCERTAINTY=mc: %s" % (Path(run_dir) / "model.npz", e))


def ensemble_samples(members, data_path, tta, rule, resamples, split_file):
    """seeds x N samples of P(referable) from each member's own evaluation (made, or
    reused, with these settings): ``split_file`` "test" (predictions.npz) or "val"."""
    from .combine import aligned
    from .evaluate import evaluate, val_predictions_path
    from .evaluated_runs import read_npz
    got = []
    for member in members:
        evaluate(member, data_path, tta=tta, rule=rule, resamples=resamples, reuse=True)
        path = member / "predictions.npz" if split_file == "test" else \
            val_predictions_path(member, tta)
        got.append(read_npz(path))
    names = list(got[0]["names"])
    try:
        if any(len(g["names"]) != len(names) for g in got):
            raise KeyError(names[0])
        got = [aligned(g, names) for g in got]
    except KeyError:
        raise InputError("%s: the seeds were evaluated on other images" % members[0].parent)
    return np.array([g["score"] for g in got]), got[0]


def check_planned(config, uncertainty):
    """Before a run trains: InputError when ``uncertainty`` cannot apply to ``config``
    (MC dropout on a linear classifier on features, which has no dropout)."""
    mode, _ = parse_uncertainty(uncertainty)
    if mode == "mc" and config.get("method") == "features":
        raise InputError("scenario %s: UNCERTAINTY=%s: a linear classifier on features has no "
                         "dropout below it" % (config["scenario"], uncertainty))


def check_uncertainty(run_dir, data_path, uncertainty):
    """(mode, passes or seeds, member runs) of ``uncertainty`` for ``run_dir`` on
    ``data_path``; each problem one InputError, before any image is read."""
    from models.fileio import sha1_of
    mode, passes = parse_uncertainty(uncertainty)
    run_dir = Path(run_dir).resolve()
    if not (run_dir / "model.npz").exists():
        raise InputError("%s: no trained model (run make train)" % (run_dir / "model.npz"))
    if not Path(data_path).is_file():
        raise InputError("%s: no preprocessed data (make preprocess DATA=...)" % data_path)
    env = json.loads((run_dir / "environment.json").read_text())
    if sha1_of(data_path) != env["data_sha1"]:
        raise InputError("%s: not the data run %s trained on: referral is evaluated on the "
                         "run's own test split" % (data_path, run_dir.name))
    if mode == "mc":
        check_mc(run_dir)
        return mode, passes, [run_dir]
    members = ensemble_of(run_dir)
    return mode, len(members), members


def evaluate_referral(run_dir, data_path, uncertainty, tta=False, rule=None,
                      resamples=RESAMPLES, seed=0, reuse=False, progress=True):
    """The referral evaluation of ``run_dir`` on the test split of its own data, written
    beside it as ``<label>.json`` / ``.npz`` / ``.png`` (``label_of``); returns the dict.
    ``uncertainty``: ``mc:T`` or ``ensemble`` (``parse_uncertainty``)."""
    from models.fileio import sha1_of

    from .dataset import open_split
    from .evaluate import DEFAULT_RULE
    from .plots import plot_referral
    from .runs import command_line
    rule = tuple(rule or DEFAULT_RULE)
    mode, count, members = check_uncertainty(run_dir, data_path, uncertainty)
    run_dir = Path(run_dir).resolve()
    config = json.loads((run_dir / "config.json").read_text())
    passes = count if mode == "mc" else None
    label = label_of(mode, count, tta)
    settings = {"data_sha1": sha1_of(data_path), "tta": tta, "rule": list(rule),
                "resamples": resamples, "seed": seed, "mode": mode, "count": count,
                "members": [m.name for m in members]}
    done = run_dir / (label + ".json")
    if reuse and done.exists() and done.stat().st_mtime >= (run_dir / "model.npz").stat().st_mtime:
        previous = json.loads(done.read_text())
        if previous.get("settings") == settings:
            return previous
    started = time.perf_counter()
    splits = {}
    for split in ("val", "test"):
        if mode == "mc":
            data = open_split(data_path, split, config)
            samples = mc_samples(run_dir, config, data, tta, passes, seed,
                                 "referral: %s, %d passes" % (split, passes), progress)
            info = {"names": np.array(data.names), "levels": data.levels,
                    "patients": np.array(data.patients)}
        else:
            samples, info = ensemble_samples(members, data_path, tta, rule, resamples, split)
        splits[split] = dict(measures(samples), **{k: np.asarray(info[k])
                                                   for k in ("names", "levels", "patients")})
    threshold = config.get("threshold", 2)
    val, test = splits["val"], splits["test"]
    try:
        cut, sens, spec = choose_cut(val["p"], val["levels"] >= threshold, *rule)
    except ValueError as e:
        raise InputError("%s: validation split: %s" % (data_path, e))
    truth = test["levels"] >= threshold
    result = referral_curves(test["p"], truth, cut, {m: test[m] for m in MEASURES},
                             test["patients"], resamples, seed)
    u_cut = refer_cut(val[DEFAULT_MEASURE], HEADLINE)
    referred = test[DEFAULT_MEASURE] >= u_cut
    result.update({
        "run": str(run_dir), "data": str(Path(data_path).resolve()), "mode": mode,
        "count": count, "members": [str(m) for m in members], "measure": DEFAULT_MEASURE,
        "settings": settings, "command": command_line(), "n": int(len(truth)),
        "patients": len(set(test["patients"].tolist())),
        "operating_point": {"rule": rule[0], "target": rule[1], "cut": cut,
                            "val_sensitivity": sens, "val_specificity": spec},
        "refer": {"fraction": HEADLINE, "cut": u_cut, "val_images": int(len(val["p"])),
                  "test_referred": int(referred.sum()),
                  "levels_referred": np.bincount(test["levels"][referred], minlength=5).tolist(),
                  "levels_kept": np.bincount(test["levels"][~referred], minlength=5).tolist()},
    })
    atomic_savez(run_dir / (label + ".npz"),
                 **{"%s_%s" % (split, k): v for split, d in splits.items() for k, v in d.items()})
    plot_referral(result, str(run_dir / (label + ".png")),
                  "%s, %s (%d test images)" % (run_dir.name, describe(result), len(truth)))
    result["seconds"] = time.perf_counter() - started
    atomic_write_bytes(done, json.dumps(result, indent=2).encode())
    print("referral %s: %s" % (run_dir.name, headline_text(result)))
    return result


def describe(result):
    """'MC dropout, 20 passes' / 'ensemble of 3 seeds', and the TTA."""
    how = ("MC dropout, %d passes" % result["count"] if result["mode"] == "mc"
           else "ensemble of %d seeds" % result["count"])
    return how + (", 4-rotation TTA" if result["settings"]["tta"] else ", no TTA")


def headline_text(result):
    """One line: AUC with none and with the most uncertain 20 % referred, random referral."""
    h = result["headline"]

    def f(x):
        return "%.3f [%.3f, %.3f]" % ((x["value"],) + tuple(x["ci"]))
    return ("AUC %s with every image; %s with the %d %% most uncertain (%s) referred, %s "
            "by random referral: difference %+.3f [%+.3f, %+.3f], %s"
            % (f(h["auc_all"]), f(h["auc_kept"]), round(100 * h["fraction"]), h["measure"],
               f(h["auc_random"]), h["difference"]["value"], h["difference"]["ci"][0],
               h["difference"]["ci"][1], h["verdict"]))


def load_referrals(run_dir, data_sha1):
    """The referral evaluations written beside ``run_dir`` on data with SHA1
    ``data_sha1``, in name order, each with its ``path``."""
    return [r for r in (dict(json.loads(path.read_text()), path=path)
                        for path in sorted(Path(run_dir).glob("referral-*.json")))
            if r.get("settings", {}).get("data_sha1") == data_sha1]


def load_cv_referrals(runs_root, data_sha1):
    """The referral evaluations of the cross-validations under ``runs_root`` (``make cv``'s
    summaries, a sweep's) on data with SHA1 ``data_sha1``: per CV design and file name,
    the newest, sorted by scenario."""
    newest = {}
    root = Path(runs_root)
    for folder in sorted(root.glob("cv-*")) + sorted(root.glob("*/cv-*")):
        for r in load_referrals(folder, data_sha1):
            key = (r.get("design_sha1"), r["path"].name)
            if key not in newest or r["path"].stat().st_mtime > newest[key]["path"].stat().st_mtime:
                newest[key] = r
    return sorted(newest.values(), key=lambda r: (r.get("scenario", ""), r["path"].name))


def cv_referral(out_dir, runs, data_path, uncertainty, tta=False, rule=None,
                resamples=RESAMPLES, seed=0, progress=True):
    """The referral of the pooled out-of-fold test images of a cross-validation's fold
    ``runs`` (each evaluated by ``evaluate_referral``, reused when made alike): every
    image scored by the fold that held it out, decided at that fold's cut and referred at
    that fold's referral cut; written into ``out_dir`` (the CV's summary folder) as for a
    run. Returns the dict."""
    from models.fileio import sha1_of

    from .evaluated_runs import read_npz
    from .plots import plot_referral
    from .runs import command_line
    started = time.perf_counter()
    folds = [evaluate_referral(run, data_path, uncertainty, tta=tta, rule=rule,
                               resamples=resamples, seed=seed, reuse=True, progress=progress)
             for run in runs]
    label = label_of(folds[0]["mode"], folds[0]["count"], tta)
    parts = [read_npz(Path(run) / (label + ".npz")) for run in runs]
    pooled = {k: np.concatenate([p["test_" + k] for p in parts])
              for k in ("p", "sd", "entropy", "names", "levels", "patients")}
    each = [len(p["test_p"]) for p in parts]
    cuts = np.repeat([f["operating_point"]["cut"] for f in folds], each)
    refer_at = np.repeat([f["refer"]["cut"] for f in folds], each)
    truth = pooled["levels"] >= json.loads((Path(runs[0]) / "config.json").read_text()).get(
        "threshold", 2)
    result = referral_curves(pooled["p"], truth, cuts, {m: pooled[m] for m in MEASURES},
                             pooled["patients"], resamples, seed)
    referred = pooled[DEFAULT_MEASURE] >= refer_at
    summary = json.loads((Path(out_dir) / "summary.json").read_text())
    result.update({
        "cv": str(out_dir), "folds": len(runs), "scenario": summary["scenario"],
        "design_sha1": summary["design_sha1"], "data": str(Path(data_path).resolve()),
        "mode": folds[0]["mode"], "count": folds[0]["count"], "members": [str(r) for r in runs],
        "measure": DEFAULT_MEASURE, "command": command_line(), "n": int(len(truth)),
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
