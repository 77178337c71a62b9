"""Kept evidence: the small files of a finished, evaluated run, copied into a folder that
lives in the repository (``make fourcases`` keeps its grid's in ``results/fourcases``).

A grid that takes longer than one machine's life resumes on a fresh clone from them, and
its summary is rebuilt without the models (tens of MB each, never kept). A run restored
from its kept files is finished and evaluated but has no model: ``train(reuse=True)``
reuses it as it is and ``evaluate(reuse=True)`` returns its kept evaluation when the
settings are the same (anything else about it needs the run trained again).
"""
import os
import shutil
import tempfile
from pathlib import Path

from .rundir import same_start

# what a summary reads of a run: how it was started, its epochs (and their seconds), its
# evaluation and the predictions it was made of; DONE last, so a copy without it is no run
EVIDENCE = ("config.json", "environment.json", "metrics.csv", "evaluation.json",
            "predictions.npz", "DONE")


def _complete(folder):
    return all((folder / name).is_file() for name in EVIDENCE)


def _same_files(a, b):
    return all((b / n).is_file() and (a / n).read_bytes() == (b / n).read_bytes()
               for n in EVIDENCE)


def _place(source, target):
    """Copy ``source``'s evidence files into ``target`` through a temporary folder beside
    it, renamed into place (a folder already there is replaced whole): a reader sees the
    old files or the new ones, never a mix; two writers leave one complete copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".%s." % target.name, dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would stay the run folder's
        for name in EVIDENCE:
            shutil.copyfile(source / name, tmp / name)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=".%s.old." % target.name, dir=target.parent))
            os.replace(target, old / "run")
            shutil.rmtree(old)
        os.replace(tmp, target)
    except OSError:
        if not _complete(target):  # another writer placed it first: keep theirs
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def keep(run_dir, kept_root, name=None):
    """Copy the evidence of ``run_dir`` (followed through a link) into
    ``kept_root/name`` (default: the run's folder name); nothing for a run not finished
    and evaluated on its own data. Returns the kept folder, or None."""
    source = Path(run_dir).resolve()
    if not _complete(source):
        return None
    target = Path(kept_root) / (name or Path(run_dir).name)
    if target.is_dir() and _same_files(source, target):
        return target
    return _place(source, target)


def restore(kept_root, runs_root, name, config, data_sha1, weights_sha1):
    """``runs_root/name`` from ``kept_root/name`` when ``runs_root`` holds no such folder
    and the kept run was started with ``config`` on this data and these weights (a kept
    run of another grid is left where it is). Returns whether it was restored."""
    source, target = Path(kept_root) / name, Path(runs_root) / name
    if (os.path.lexists(target) or not _complete(source)
            or not same_start(source, config, data_sha1, weights_sha1)):
        return False
    _place(source, target)
    return True
