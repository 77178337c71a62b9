"""Four cases (``make fourcases``): the lesson's decision rule measured, both datasets
(similar to ImageNet and unlike it) x the scenarios x training sizes x folds x seeds, as
one resumable sweep declared in ``scenarios/fourcases.toml``; then the learning curves,
the four-cases table and the lesson's claims (``evidence.fourcases``).

Every run is ``train(reuse=True)`` in ``RUNS/fourcases/<dataset>-<scenario>-size<size>-
seed<seed>-fold<fold>``, its folds reused from ``make reproduce CV=k`` (``RUNS/cv-kK``)
where the full-size recipe is the same; every evaluation is reused when made with the same
settings. A repeat of the command retrains nothing; a killed one resumes its run's
checkpoint. The summary, ``RUNS/fourcases/fourcases.json`` and ``size_curves.png``, is
made of the cells whose folds are all evaluated and names those still missing. With
``keep`` (``make fourcases``: ``results/fourcases``, in the repository), every evaluated
run's evidence is kept there too (``runs.kept``) and restored from there on a fresh clone,
so that the grid, longer than one machine's life, resumes anywhere and its summary is
rebuilt without retraining.
"""
import json
import math
import tomllib
from pathlib import Path

import numpy as np

from models.fileio import atomic_write_bytes

from .data.dataset import fold_splits
from .data.labels import find_inputs, read_labels
from .data.subsets import parse_sizes, size_kind, training_subset
from .errors import InputError
from .evaluate import evaluate
from .evidence.claims import verdict
from .evidence.fourcases import (bootstrap_class, cell_verdict, crossover,
                                 paired_accuracy_difference)
from .evidence.stats import RESAMPLES, bootstrap, paired_difference
from .preprocess import preprocess
from .recipe.config import FOURCASES, ROOT, load_scenario
from .recipe.estimate import SPEED
from .runs import kept
from .runs.rundir import command_line, input_sha1s, reusable
from .train import train

METRICS = ("auc", "accuracy")
SIMILARITIES = ("similar", "different")


def _fail(path, what):
    raise InputError("%s: %s" % (path, what))


def read_grid(path=FOURCASES, sizes=None, folds=None, seeds=None, scenarios=None, data=None,
              datasets=None):
    """The grid of ``path``, with the command's overrides (``sizes``: "0.125,1";
    ``scenarios``: a list; ``data``: {similarity: folder}; ``datasets``: a list of the
    grid's dataset names, only those); every key checked, one InputError line naming
    the file and key."""
    try:
        with open(path, "rb") as f:
            grid = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        _fail(path, e)
    grid["folds"] = int(folds) if folds else grid.get("folds", 5)
    if grid["folds"] < 3:
        _fail(path, "folds: %d; cross-validation needs at least 3" % grid["folds"])
    grid["seeds"] = list(seeds) if seeds is not None else grid.get("seeds", [0])
    grid["sizes"] = parse_sizes(sizes) if sizes else parse_sizes(
        ",".join(map(str, grid.get("sizes", [1]))))
    table = grid.get("scenario", {})
    if scenarios:
        table = {s: table.get(s, {}) for s in scenarios}
    for name, entry in table.items():  # sizes= overrides every scenario's own
        own = entry.get("sizes")
        entry["sizes"] = grid["sizes"] if sizes or own is None else parse_sizes(
            ",".join(map(str, own)))
    grid["scenario"] = table
    for d in grid.get("dataset", []):
        for key in ("name", "data", "similarity", "metric", "margin"):
            if key not in d:
                _fail(path, "[[dataset]] %s: %s missing" % (d.get("name", "?"), key))
        if d["similarity"] not in SIMILARITIES or d["metric"] not in METRICS:
            _fail(path, "[[dataset]] %s: similarity must be one of %s, metric one of %s"
                  % (d["name"], SIMILARITIES, METRICS))
        d["data"] = (data or {}).get(d["similarity"]) or d["data"]
        d["tta"] = bool(d.get("tta", False))
    if datasets:
        known = [d.get("name") for d in grid.get("dataset", [])]
        unknown = [name for name in datasets if name not in known]
        if unknown:
            _fail(path, "datasets: %s is not one of the grid's (%s)"
                  % (unknown[0], ", ".join(map(str, known))))
        grid["dataset"] = [d for d in grid.get("dataset", []) if d["name"] in datasets]
    if grid.get("subset_steps", "full") not in ("full", "epochs"):
        _fail(path, "subset_steps: %r is not full or epochs" % grid["subset_steps"])
    for claim in grid.get("claim", []):
        if claim.get("kind") not in ("better", "no worse"):
            _fail(path, "[[claim]] %r: kind must be better or no worse" % claim.get("text"))
    return grid


def sized(size):
    """A size as it appears in run names and tables: 0.125, 1, 2 (images per class)."""
    return ("%g" % size) if size_kind(size)[0] == "fraction" else "%d/class" % size


def check_dataset(d, folds, processed):
    """The labels of dataset ``d`` read (both columns or neither, a bad row: one line), and
    each class or level with at least ``folds`` images; returns (names, labels: the
    level or class index per image, the class names or None). Its preprocessed file is
    ``processed/<folder name>.h5``, as ``make preprocess`` names it."""
    folder = Path(d["data"])
    if not folder.is_absolute():
        folder = ROOT / folder if not folder.exists() else folder
    labels, images = find_inputs(str(folder))
    rows, classes = read_labels(labels, images)
    counts = np.bincount([r[1] for r in rows])
    names = classes or ["level %d" % k for k in range(len(counts))]
    small = [(names[k], int(n)) for k, n in enumerate(counts) if 0 < n < folds]
    if small:
        _fail(labels, "%s has %d images, fewer than the %d folds" % (small[0] + (folds,)))
    d["folder"], d["h5"] = str(folder), str(Path(processed) / (folder.name + ".h5"))
    d["labels"] = labels
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), classes


def task_configs(grid, d, classes, steps):
    """The tasks of dataset ``d`` ({name, dataset, scenario, size, seed, fold, config,
    overrides}): every scenario x size x seed x fold. ``steps(config, fold)``: the SGD
    steps per epoch of the fold's full training part (a subset's, under "full")."""
    out, full = [], grid.get("subset_steps", "full") == "full"
    for scenario, entry in grid["scenario"].items():
        if d["name"] not in entry.get("datasets", [d["name"]]):
            continue
        for size in entry["sizes"]:
            for seed in grid["seeds"]:
                for fold in range(grid["folds"]):
                    overrides = list(grid.get("set", [])) + list(entry.get("set", [])) + [
                        "seed=%d" % seed, "folds=%d" % grid["folds"], "fold=%d" % fold]
                    config = load_scenario(scenario, overrides, classes=classes)
                    if size != 1:
                        overrides.append("train_size=%r" % size)
                        if config["method"] == "finetune" and full:
                            overrides.append("steps_per_epoch=%d" % steps(config, fold))
                        config = load_scenario(scenario, overrides, classes=classes)
                    name = "%s-%s-size%s-seed%d-fold%d%s" % (
                        d["name"], scenario, sized(size).replace("/", "per"), seed, fold,
                        "" if full or size == 1 or config["method"] != "finetune"
                        else "-epochs")
                    out.append({"name": name, "dataset": d["name"], "scenario": scenario,
                                "size": size, "seed": seed, "fold": fold, "config": config,
                                "overrides": overrides})
    return out


def training_parts(names, labels, folds):
    """{fold: positions of its training part}, as ``Dataset`` deals the folds."""
    return {fold: np.flatnonzero(fold_splits(names, labels, folds, fold) == 0)
            for fold in range(folds)}


def train_images(task, names, labels, parts, where):
    """The training images of a task at its size (``data.subsets.training_subset`` of its
    fold's training part): InputError, naming the labels file and the fold, for a size
    the part cannot give."""
    part = parts[task["fold"]]
    if task["size"] == 1:
        return len(part)
    try:
        return len(training_subset(names[part], labels[part], task["size"]))
    except InputError as e:
        raise InputError("%s: fold %d: %s" % (where, task["fold"], e))


def estimate_task(task, counts, extracted, views):
    """Seconds a task records (its training and evaluation) from nothing on the reference
    machine class (estimate.SPEED): a fine-tuning's SGD steps, its validation every epoch
    and its evaluation (validation and test parts, ``views`` each); a feature run fits in
    a moment and is scored from cached features, which are extracted once per dataset,
    layer and view (``learn.features.cached_predictor``)."""
    c = task["config"]
    n = counts[task["dataset"]]
    part = n / c["folds"]
    if c["method"] == "finetune":
        steps = c.get("steps_per_epoch") or math.ceil(n * (c["folds"] - 2) / c["folds"]
                                                     / c["batch_size"])
        return (c["epochs"] * (steps * c["batch_size"] / SPEED["finetune"]
                               + part / SPEED["infer"]) + 2 * part * views / SPEED["infer"] + 30)
    seconds = 2.0
    if (task["dataset"], c["feature_layer"]) not in extracted:
        extracted.add((task["dataset"], c["feature_layer"]))
        seconds += views * n / SPEED["features"]
    return seconds


def plan(grid, weights, runs_root, processed=None):
    """Check every input and return (tasks, the plan line), all from the labels: nothing
    is preprocessed or trained before every config, class count and size is checked
    (the preprocessed files are ``processed``/<folder>.h5, by default data/processed)."""
    datasets = grid.get("dataset", [])
    processed = processed or ROOT / "data" / "processed"
    labelled = {d["name"]: check_dataset(d, grid["folds"], processed) for d in datasets}
    tasks, counts, extracted, estimate, done = [], {}, set(), 0.0, 0
    for d in datasets:
        names, labels, classes = labelled[d["name"]]
        counts[d["name"]] = len(names)
        parts = training_parts(names, labels, grid["folds"])
        mine = task_configs(grid, d, classes, lambda config, fold: -(
            -len(parts[fold]) // config["batch_size"]))
        views = (4 if classes is None else 2) if d["tta"] else 1
        for task in mine:
            task.update(h5=d["h5"], tta=d["tta"],
                        train_images=train_images(task, names, labels, parts, d["labels"]))
            task["finished"] = reusable(task["config"], d["h5"], weights,
                                        Path(runs_root) / "fourcases", task["name"],
                                        reuse_folders(grid, runs_root))
            task["estimate"] = estimate_task(task, counts, extracted, views)
            done += task["finished"]
            estimate += 0 if task["finished"] else task["estimate"]
        tasks += mine
    line = ("fourcases: %s x scenarios %s x sizes %s x %d folds x seeds %s: %d runs (%d "
            "finished), at most about %.0f min on a 2-core CPU" % (
                " and ".join("%s (%s)" % (d["name"], Path(d["folder"]).name) for d in datasets),
                ", ".join(grid["scenario"]), ", ".join(map(sized, grid["sizes"])),
                grid["folds"], ", ".join(map(str, grid["seeds"])), len(tasks), done,
                estimate / 60))
    return tasks, line


def reuse_folders(grid, runs_root):
    """Where finished runs are reused from: ``make reproduce CV=k``'s fold runs."""
    return [str(Path(runs_root) / ("cv-k%d" % grid["folds"]))]


def restore_kept(tasks, weights, root, keep):
    """Every unfinished task whose run ``keep`` holds (the same config, data and weights)
    restored into ``root`` (``runs.kept.restore``); returns how many."""
    restored = 0
    for task in tasks:
        sha1s = None if task["finished"] else input_sha1s(task["config"], task["h5"], weights)
        if sha1s is not None:
            restored += kept.restore(keep, root, task["name"], task["config"], *sha1s)
    return restored


def run(grid, weights, runs_root="runs", progress=True, summarise_only=False,
        resamples=RESAMPLES, processed=None, sweep=None, keep=None):
    """Train and evaluate every task of ``grid`` here, one after another (unless
    ``summarise_only``: then only the finished runs are evaluated), then write the
    summary; returns it, or None when stopped by a signal. ``sweep`` ({"args": the
    command's, engine settings}): write the grid as a sweep plan in ``RUNS/fourcases``
    instead (``pipeline.sweep``: ``make -jN`` or a SLURM job array, its finish step this
    function with ``summarise_only``) and return None. ``keep``: the folder of kept
    evidence (``runs.kept``), restored from before anything trains and written to as
    each run is evaluated."""
    tasks, line = plan(grid, weights, runs_root, processed)
    print(line, flush=True)
    for d in grid.get("dataset", []):
        preprocess(d["folder"], d["h5"], size=grid.get("size", 256), reuse=True,
                   progress=progress)
    root = Path(runs_root) / "fourcases"
    if keep and restore_kept(tasks, weights, root, keep):
        tasks, line = plan(grid, weights, runs_root, processed)
        print("%s, restored from %s" % (line, keep), flush=True)
    if sweep is not None:
        return write_sweep(grid, tasks, weights, runs_root, **sweep)
    for k, task in enumerate(tasks if not summarise_only else []):
        print("fourcases: run %d/%d: %s" % (k + 1, len(tasks), task["name"]), flush=True)
        run_dir = root / task["name"]
        if not (task["finished"] and (run_dir / "DONE").exists()):  # else train reuses it
            run_dir = train(task["config"], task["h5"], weights, str(root), progress=progress,
                            reuse=True, name=task["name"],
                            reuse_from=reuse_folders(grid, runs_root))
        if run_dir is None:
            return None
        evaluate(run_dir, task["h5"], tta=task["tta"], resamples=resamples, reuse=True,
                 progress=progress)
        if keep:
            kept.keep(run_dir, keep, task["name"])
    for task in tasks if summarise_only else []:
        if (root / task["name"] / "DONE").exists():
            evaluate(root / task["name"], task["h5"], tta=task["tta"], resamples=resamples,
                     reuse=True, progress=progress)
            if keep:
                kept.keep(root / task["name"], keep, task["name"])
    summary = summarise(grid, tasks, root, resamples)
    summary["plan"] = line
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(root / "fourcases.json", json.dumps(summary, indent=2).encode())
    from .render.plots import plot_size_curves
    plot_size_curves(curve_panels(summary), str(root / "size_curves.png"), y_labels(summary))
    print("fourcases: %s" % (root / "fourcases.json"))
    for claim in summary["claims"]:
        print("fourcases: %s: %s" % (claim["text"], claim["overall"]))
    return summary


def grid_of(args):
    """The grid of a command's arguments (the cli's, as a sweep plan records them)."""
    return read_grid(args.get("grid") or FOURCASES, sizes=args.get("sizes"),
                     folds=args.get("folds"), seeds=args.get("seeds") or None,
                     scenarios=args.get("scenarios") or None,
                     data={"similar": args.get("data_similar"),
                           "different": args.get("data_different")},
                     datasets=args.get("datasets") or None)


def finish_sweep(plan_path):
    """A fourcases sweep's finish step: evaluate every finished run as its dataset says,
    write the summary (the plan's recorded command arguments and weights)."""
    plan = json.loads(Path(plan_path).read_text())
    args = plan["fourcases"]
    return run(grid_of(args), plan["weights"], args["runs"], progress=False,
               summarise_only=True, resamples=args.get("resamples", RESAMPLES),
               processed=args.get("processed"), keep=args.get("keep"))


def write_sweep(grid, tasks, weights, runs_root, args, **engine):
    """The grid as a sweep plan in ``RUNS/fourcases`` (``sweep.write_plan``); its finish
    step evaluates every run and summarises (``args``: this command's, recorded)."""
    from .sweep import pipeline_command, write_plan
    root = Path(runs_root) / "fourcases"
    items = [{"name": t["name"], "scenario": t["scenario"], "data": t["h5"],
              "overrides": t["overrides"], "tta": t["tta"]} for t in tasks]
    written = write_plan({"scenarios": list(grid["scenario"]), "folds": 0,
                          "seeds": grid["seeds"], "overrides": [],
                          "fourcases": dict(args, runs=str(Path(runs_root).resolve()))},
                         items, tasks[0]["h5"], weights, root,
                         reuse_from=reuse_folders(grid, runs_root),
                         finish=pipeline_command("fourcases", "--finish",
                                                 root.resolve() / "sweep.json"), **engine)
    print("fourcases: %d tasks planned in %s" % (len(items), written["runs"]))
    return None


def pooled(task_list, root, made):
    """The out-of-fold predictions of one cell (its folds' tasks), sorted by image name;
    None when a fold is not evaluated yet. Also the sum of the recorded seconds; the CPU
    and the command each run recorded are added to ``made`` ({"cpus", "commands"}:
    sets)."""
    parts, seconds = [], 0.0
    for task in task_list:
        folder = root / task["name"]
        evaluation = folder / "evaluation.json"
        if not (folder / "DONE").exists() or not evaluation.exists():
            return None, None
        with np.load(folder / "predictions.npz") as p:
            parts.append({k: p[k] for k in p.files})
        seconds += recorded_seconds(folder) + json.loads(evaluation.read_text())["seconds"]
        env = json.loads((folder / "environment.json").read_text())
        made["cpus"].add("%s (%s cores)" % (env.get("blas", {}).get("cpu", "unknown CPU"),
                                            env.get("cpus")))
        made["commands"].add(env.get("command") or "(not recorded)")
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(joined["names"])
    return {k: v[order] for k, v in joined.items()}, seconds


def recorded_seconds(folder):
    """The training seconds a run recorded (metrics.csv, per epoch)."""
    import csv
    with open(folder / "metrics.csv", newline="") as f:
        return sum(float(r["seconds"] or 0) for r in csv.DictReader(f))


def cell_metric(d, runs, resamples):
    """{"value", "ci"} of a cell's pooled out-of-fold metric (one seed: its runs' mean
    otherwise is the paired machinery's; here the first seed's, named)."""
    p = runs[0]
    if d["metric"] == "auc":
        truth = p["levels"] >= 2
        return bootstrap(p["score"], truth, p["score"] >= 0.5, p["patients"], resamples,
                         metrics=("auc",))["auc"]
    return bootstrap_class(p["probs"], p["levels"], resamples)["accuracy"]


def difference(d, runs_a, runs_b, resamples):
    """Paired difference A minus B of the dataset's metric on the same out-of-fold images
    (the mean over seeds on each side)."""
    first = runs_a[0]
    for r in runs_a + runs_b:
        if not np.array_equal(r["names"], first["names"]):
            raise InputError("four cases: two cells were scored on different images")
    if d["metric"] == "auc":
        truth = first["levels"] >= 2
        return paired_difference([(r["score"], r["score"] >= 0.5) for r in runs_a],
                                 [(r["score"], r["score"] >= 0.5) for r in runs_b], truth,
                                 first["patients"], "auc", resamples)
    return paired_accuracy_difference([r["probs"] for r in runs_a],
                                      [r["probs"] for r in runs_b], first["levels"], resamples)


def summarise(grid, tasks, root, resamples=RESAMPLES):
    """The curves, the four-cases table and the claims, of the cells done."""
    cells, missing, timing = {}, [], []
    made = {"cpus": set(), "commands": set()}
    keys = sorted({(t["dataset"], t["scenario"], t["size"]) for t in tasks},
                  key=lambda k: (k[0], k[1], size_kind(k[2])[1]))
    for key in keys:
        mine = [t for t in tasks if (t["dataset"], t["scenario"], t["size"]) == key]
        runs, spent = [], 0.0
        for seed in grid["seeds"]:
            p, s = pooled([t for t in mine if t["seed"] == seed], root, made)
            if p is None:
                break
            runs.append(p)
            spent += s
        name = "%s %s at size %s" % (key[0], key[1], sized(key[2]))
        if len(runs) < len(grid["seeds"]):
            missing.append(name)
            continue
        cells[key] = {"runs": runs, "train_images": float(np.mean([t["train_images"]
                                                                   for t in mine]))}
        timing.append({"cell": name, "seconds": spent,  # the estimate of the cells done
                       "estimate_seconds": sum(t["estimate"] for t in mine)})
    summary = {"command": command_line(), "folds": grid["folds"], "seeds": grid["seeds"],
               "sizes": [sized(s) for s in grid["sizes"]], "missing": missing,
               "seconds": sum(t["seconds"] for t in timing),
               "estimate_seconds": sum(t["estimate_seconds"] for t in timing), "timing": timing,
               "cpus": sorted(made["cpus"]),
               "made_by": sorted(made["commands"]),
               "datasets": [],
               "cells": [], "claims": [], "resamples": resamples,
               "large_from": grid["lesson"]["large_from"]}
    for d in grid.get("dataset", []):
        curves = {}
        for (name, scenario, size), cell in cells.items():
            if name == d["name"]:
                m = cell_metric(d, cell["runs"], resamples)
                curves.setdefault(scenario, []).append({
                    "size": sized(size), "train_images": cell["train_images"],
                    "value": m["value"], "ci": m["ci"], "images": len(cell["runs"][0]["names"])})
        summary["datasets"].append({"name": d["name"], "title": "%s (%s)" % (
            d["name"], Path(d["folder"]).name), "similarity": d["similarity"],
            "metric": d["metric"], "margin": d["margin"], "curves": curves})
        summary["cells"] += four_cases_rows(grid, d, cells, resamples)
    for claim in grid.get("claim", []):
        d = next((x for x in grid["dataset"] if x["name"] == claim["dataset"]), None)
        if d is not None:
            summary["claims"].append(claim_row(claim, d, grid, cells, resamples))
    return summary


def four_cases_rows(grid, d, cells, resamples):
    """For each size of dataset ``d``: the lesson's recipe, every other recipe's paired
    difference from it, and the verdict (``evidence.fourcases.cell_verdict``)."""
    rows = []
    for size in grid["sizes"]:
        here = {s: c for (n, s, z), c in cells.items() if n == d["name"] and z == size}
        if not here:
            continue
        images = np.mean([c["train_images"] for c in here.values()])
        band = "large" if images >= grid["lesson"]["large_from"] else "small"
        lesson = grid["lesson"][d["similarity"]][band]
        row = {"dataset": d["name"], "size": sized(size), "train_images": float(images),
               "band": band, "lesson": lesson, "margin": d["margin"], "metric": d["metric"]}
        if lesson not in here:
            row.update(verdict="not measured", text="the lesson's recipe %s did not run at "
                       "this size" % lesson, others={})
        else:
            others = {s: difference(d, c["runs"], here[lesson]["runs"], resamples)
                      for s, c in here.items() if s != lesson}
            row["others"] = others
            row.update(cell_verdict(lesson, others, d["margin"]) if others else
                       {"verdict": "alone", "text": "no other recipe ran at this size"})
        rows.append(row)
    return rows


def claim_row(claim, d, grid, cells, resamples):
    """One lesson claim decided at every size both sides ran, and its crossover."""
    per_size = []
    for size in grid["sizes"]:
        a, b = (cells.get((d["name"], s, size)) for s in (claim["a"], claim["b"]))
        if a is None or b is None:
            continue
        diff = difference(d, a["runs"], b["runs"], resamples)
        per_size.append({"size": sized(size), "train_images": a["train_images"],
                         "difference": diff, "verdict": verdict(claim["kind"], d["margin"],
                                                                 diff["ci"])})
    per_size.sort(key=lambda p: p["train_images"])
    # along the number of training images (the axis of the curves, whatever the sizes' kind)
    found = crossover([p["train_images"] for p in per_size],
                      [p["difference"] for p in per_size]) if len(per_size) > 1 else None
    verdicts = sorted({p["verdict"] for p in per_size})
    overall = ("not measured" if not per_size else
               "%s at every size measured" % verdicts[0] if len(verdicts) == 1 else
               "; ".join("%s at %s" % (v, ", ".join(p["size"] for p in per_size
                                                      if p["verdict"] == v)) for v in verdicts))
    return dict(claim, metric=d["metric"], margin=d["margin"], sizes=per_size,
                overall=overall, crossover=found)


def curve_panels(summary):
    """The panels of ``render.plots.plot_size_curves``: one per dataset, each recipe
    under its scenario's name."""
    from .sections.common import SCENARIO_NAMES
    return [(p["title"], {SCENARIO_NAMES.get(s, s): [
        (c["train_images"], c["value"], c["ci"][0], c["ci"][1]) for c in curve]
        for s, curve in p["curves"].items()}) for p in summary["datasets"]]


def y_labels(summary):
    """{panel title: its metric, in words} of ``curve_panels``."""
    words = {"auc": "AUC, referable DR (out of fold)", "accuracy": "accuracy (out of fold)"}
    return {p["title"]: words[p["metric"]] for p in summary["datasets"]}
