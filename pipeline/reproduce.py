"""Reproduce: train (or reuse) every scenario the post's claims need, one run per
seed, evaluate each run, and write the reproduction report of the dataset.

A finished run is reused only when it was started with exactly the config asked
for now (scenario file plus overrides), the same data and the same weights
(``train(reuse=True)``); an evaluation only when made after the model with the
same settings. Anything else is trained or evaluated anew.
"""
import os
import sys
from pathlib import Path

from .evaluate import evaluate
from .evidence.stats import DEFAULT_RULE, RESAMPLES
from .recipe.config import load_scenario
from .recipe.estimate import estimate_cv_seconds, estimate_seconds, split_counts
from .report import write_report
from .runs.rundir import reusable
from .train import train

#: the data ``make reproduce`` uses unless told otherwise
EMBEDDED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                        "sample")
def plan(scenarios, overrides, data_path, seeds=(None,), tta=False, labels=None, folds=0,
         runs_root=None, weights=None):
    """The configs to run (all checked) and the line that says what will run and how long:
    each scenario on the test split and, with ``folds``, by ``folds``-fold cross-validation
    too (its runs that are finished already, in ``runs_root``, are not counted)."""
    configs = [load_scenario(scenario, list(overrides) + (["seed=%d" % s] if s is not None
                                                          else []))
               for scenario in scenarios for s in seeds]
    where = os.path.dirname(labels) if labels else data_path
    if os.path.abspath(where) == EMBEDDED:
        where += " (the embedded IDRiD sample; DATA=kaggle or DATA=dir for other data)"
    counts = split_counts(data_path, labels)
    what = ""
    if folds:
        fold_configs = [load_scenario(c["scenario"], list(overrides) + [
            "seed=%d" % c.get("seed", 0), "folds=%d" % folds, "fold=%d" % k])
            for c in configs for k in range(folds)]
        to_train = [c for c in fold_configs if not finished(c, data_path, weights, runs_root)]
        what = "the test split and %d-fold cross-validation by patient (%d fold runs, %d " \
               "finished already), " % (folds, len(fold_configs),
                                        len(fold_configs) - len(to_train))
        todo = {c["scenario"] for c in to_train}
        cv_seconds = estimate_cv_seconds([c for c in configs if c["scenario"] in todo], counts,
                                         folds, tta) if counts else 0
    split = [c for c in configs if not finished(c, data_path, weights, runs_root)]
    line = "reproduce: scenario%s %s, seed%s %s, on %s: %s%s" % (
        "s" if len(scenarios) > 1 else "", ", ".join(scenarios), "s" if len(seeds) > 1 else "",
        ", ".join("the scenario's" if s is None else str(s) for s in seeds), where, what,
        "at most about %.0f min on a 2-core CPU%s" % (
            (estimate_seconds(split, counts, tta) + (cv_seconds if folds else 0)) / 60,
            " (%d of the %d test-split runs finished already)" % (
                len(configs) - len(split), len(configs)) if len(split) < len(configs) else "")
        if counts else "no labels there yet to estimate the time by")
    return configs, line


def finished(config, data_path, weights, runs_root):
    """Whether a finished run of ``config`` on this data and weights is there to reuse:
    in ``runs_root`` or the fold runs of an earlier ``make reproduce CV=k``."""
    if not runs_root:
        return False
    return reusable(config, data_path, weights, runs_root,
                    reuse_from=[str(p) for p in sorted(Path(runs_root).glob("cv-k*"))])


def reproduce(scenarios, overrides, data_path, weights, runs_root="runs", seeds=(None,),
              tta=False, rule=DEFAULT_RULE, resamples=RESAMPLES, progress=True):
    """Train and evaluate each of ``scenarios`` (a name or a list) for each seed; returns
    (the run directories, the report's HTML path), or None if stopped."""
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    configs, line = plan(scenarios, overrides, data_path, seeds, tta)  # checked before any trains
    print(line, file=sys.stderr, flush=True)
    runs = []
    for config in configs:
        run = train(config, data_path, weights, runs_root, progress=progress, reuse=True)
        if run is None:
            return None
        evaluate(run, data_path, tta=tta, rule=rule, resamples=resamples, reuse=True,
                 progress=progress)
        runs.append(run)
    return runs, write_report(runs_root, data_path, resamples)
