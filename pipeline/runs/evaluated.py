"""The evaluated runs of one dataset, as the report reads them: finished runs with their
config, environment, evaluation and predictions; grouped by scenario and overrides;
cross-validation summaries; external evaluations."""
import csv
import json
from pathlib import Path

import h5py
import numpy as np

from ..data.store import source_folder
from ..errors import InputError
from ..recipe.config import REPEAT_KEYS, flatten, load_scenario


def read_npz(path):
    """The arrays of an ``.npz`` file as a dict (the file closed again)."""
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def load_run(run_dir, data_sha1=None):
    """A finished run evaluated on its own data (with SHA1 ``data_sha1``, if given): a
    dict of dir, config, env, evaluation, predictions; None for any other."""
    run_dir = Path(run_dir)
    paths = [run_dir / n for n in ("DONE", "config.json", "environment.json",
                                   "evaluation.json", "predictions.npz")]
    if not all(p.exists() for p in paths):
        return None
    evaluation = json.loads(paths[3].read_text())
    if evaluation["external"] or data_sha1 not in (
            None, evaluation.get("settings", {}).get("data_sha1")):
        return None
    return {"dir": run_dir, "config": json.loads(paths[1].read_text()),
            "env": json.loads(paths[2].read_text()), "evaluation": evaluation,
            "predictions": read_npz(paths[4])}


def load_runs(runs_root, data_sha1):
    """Every finished run of ``runs_root`` evaluated on its own data with SHA1
    ``data_sha1`` (``load_run``'s dicts); links to runs elsewhere and views of runs
    (``runs.link_view``: another evaluation of a run, for the ambiguity grid) left out."""
    from .rundir import is_view
    runs = (load_run(p, data_sha1) for p in sorted(Path(runs_root).iterdir())
            if p.is_dir() and not p.is_symlink() and not is_view(p))
    return [r for r in runs if r]


def val_predictions(run):
    """The validation predictions made with the run's own evaluation's TTA (written by
    evaluate beside its operating point), or None where there are none."""
    from .rundir import val_predictions_path
    tta = run["evaluation"].get("settings", {}).get("tta", run["evaluation"].get("tta"))
    path = val_predictions_path(run["dir"], bool(tta))
    return read_npz(path) if path.exists() else None


def overrides_of(config):
    """``key=value`` of what ``config`` changes in its scenario file (seed and folds
    aside: those are what repeats a run)."""
    try:
        base = flatten(load_scenario(config["scenario"]))
    except InputError:
        return ("scenario file gone",)
    ours = flatten(config)
    return tuple(sorted("%s=%s" % (k, json.dumps(v)) for k, v in ours.items()
                        if k not in REPEAT_KEYS and base.get(k) != v))


def group(runs):
    """{label: runs of one scenario with the same overrides, one per seed (a seed run
    again: the newest, names ending in their start time), by seed} on the file's own
    split (cross-validation folds apart), and {scenario: the label of its group with the
    fewest overrides}: the one the claims are decided on."""
    out = {}
    for run in runs:
        if "folds" not in run["config"]:
            changed = overrides_of(run["config"])
            label = run["config"]["scenario"] + (" [%s]" % ", ".join(changed) if changed else "")
            out.setdefault(label, (len(changed), []))[1].append(run)
    for _, members in out.values():
        by_seed = {}
        for run in sorted(members, key=lambda r: r["dir"].name):
            by_seed[run["config"].get("seed", 0)] = run
        members[:] = [by_seed[s] for s in sorted(by_seed)]
    primary = {}
    for label, (changes, members) in sorted(out.items(), key=lambda kv: kv[1][0]):
        primary.setdefault(members[0]["config"]["scenario"], label)
    return {label: members for label, (_, members) in out.items()}, primary


def load_cv(runs_root, data_sha1):
    """{scenario: [every cross-validation summary of it on the data with SHA1
    ``data_sha1``, as {summary, dir, oof}]}, each design apart (``pipeline.cv``): which
    ones may be compared is ``claims.cv_pairs``'s to say."""
    root, newest = Path(runs_root), {}
    paths = sorted(root.glob("cv-*/summary.json")) + sorted(root.glob("*/cv-*/summary.json"))
    for path in paths:  # a design summarised twice (make cv, a CV sweep): the newest
        summary = json.loads(path.read_text())
        if summary["data_sha1"] == data_sha1 and (path.parent / "oof_predictions.npz").exists():
            key = summary.get("design_sha1", str(path))
            if key not in newest or path.stat().st_mtime > newest[key][0].stat().st_mtime:
                newest[key] = (path, summary)
    out = {}
    for path, summary in sorted(newest.values()):
        out.setdefault(summary["scenario"], []).append({
            "summary": summary, "dir": path.parent,
            "oof": read_npz(path.parent / "oof_predictions.npz")})
    return out


def load_external(runs):
    """{dataset name: [(run, its external evaluation, the directory of it)]}."""
    out = {}
    for run in runs:
        for path in sorted(run["dir"].glob("external/*/evaluation.json")):
            out.setdefault(path.parent.name, []).append(
                (run, json.loads(path.read_text()), path.parent))
    return out


def data_summary(data_path):
    """(counts, failed, the images' folder, images usable) of a preprocessed store."""
    with h5py.File(data_path, "r") as f:
        source = f.attrs.get("source")
        if source is not None:
            source = source_folder(data_path, source)
        return (json.loads(f.attrs["counts"]), json.loads(f.attrs.get("failed", "[]")),
                source, int(f["ok"][:].sum()))


def train_seconds(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return sum(float(r["seconds"]) for r in csv.DictReader(f))
