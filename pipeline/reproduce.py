"""Reproduce: train (or reuse) one scenario for each seed, evaluate each run, and
write the reproduction report of the dataset.

A finished run is reused only when it was started with exactly the config asked
for now (scenario file plus overrides), the same data and the same weights
(``train(reuse=True)``); an evaluation only when made after the model with the
same settings. Anything else is trained or evaluated anew.
"""
from .config import load_scenario
from .evaluate import DEFAULT_RULE, evaluate
from .report import write_report
from .stats import RESAMPLES
from .train import train


def reproduce(scenario, overrides, data_path, weights, runs_root="runs", seeds=(None,),
              tta=False, rule=DEFAULT_RULE, resamples=RESAMPLES, progress=True):
    """Returns (the run directories, the report's HTML path), or None if stopped."""
    configs = [load_scenario(scenario, list(overrides) + (["seed=%d" % s] if s is not None
                                                          else [])) for s in seeds]
    runs = []
    for config in configs:
        run = train(config, data_path, weights, runs_root, progress=progress, reuse=True)
        if run is None:
            return None
        evaluate(run, data_path, tta=tta, rule=rule, resamples=resamples, reuse=True)
        runs.append(run)
    return runs, write_report(runs_root, data_path, resamples)
