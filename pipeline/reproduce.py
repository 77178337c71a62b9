"""Reproduce: train (or reuse) every scenario the post's claims need, one run per
seed, evaluate each run, and write the reproduction report of the dataset.

A finished run is reused only when it was started with exactly the config asked
for now (scenario file plus overrides), the same data and the same weights
(``train(reuse=True)``); an evaluation only when made after the model with the
same settings. Anything else is trained or evaluated anew.
"""
import os
import sys

from .config import load_scenario
from .estimate import estimate_seconds, split_counts
from .evaluate import DEFAULT_RULE, evaluate
from .claims import CLAIM_SCENARIOS
from .report import write_report
from .stats import RESAMPLES
from .train import train

#: the data ``make reproduce`` uses unless told otherwise
EMBEDDED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                        "sample")
def plan(scenarios, overrides, data_path, seeds=(None,), tta=False, labels=None):
    """The configs to run (all checked) and the line that says what will run and how long."""
    configs = [load_scenario(scenario, list(overrides) + (["seed=%d" % s] if s is not None
                                                          else []))
               for scenario in scenarios for s in seeds]
    where = os.path.dirname(labels) if labels else data_path
    if os.path.abspath(where) == EMBEDDED:
        where += " (the embedded IDRiD sample; DATA=kaggle or DATA=dir for other data)"
    counts = split_counts(data_path, labels)
    line = "reproduce: scenario%s %s, seed%s %s, on %s: %s" % (
        "s" if len(scenarios) > 1 else "", ", ".join(scenarios), "s" if len(seeds) > 1 else "",
        ", ".join("the scenario's" if s is None else str(s) for s in seeds), where,
        "at most about %.0f min on a 2-core CPU" % (estimate_seconds(configs, counts, tta) / 60)
        if counts else "no labels there yet to estimate the time by")
    return configs, line


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
