"""Sweeps: a grid of scenarios x folds x seeds as independent training runs,
run here through Make's job server (engine ``local``) or handed to SLURM as
one job array (engine ``slurm``), then one step that evaluates every run,
summarises the cross-validations and writes the claims report.

``plan`` writes into the sweep's runs directory:

- ``sweep.json``: the grid and its inputs;
- ``tasks.txt``: one line per task, exactly the ``python -m pipeline train ...``
  command a user could type, each run in its own directory named after its
  scenario, fold and seed (``4-seed0``, ``1-fold2-seed0``);
- ``tasks.mk``: ``prepare`` (the feature extraction of the feature scenarios,
  once for all their tasks), one target per task, ``finish``; ``make -f
  tasks.mk -jN`` runs N tasks at a time;
- ``prepare.sbatch``, ``array.sbatch`` (``--array=0-N%LIMIT``, ``--requeue``),
  ``finish.sbatch``, chained by ``submit`` with ``--dependency=afterok``.

Robust on a shared cluster: every task is ``train --reuse`` on its named run
directory, so a rerun of the sweep skips finished runs and a requeued task
(preemption, time limit) resumes from its checkpoint; feature caches are
written once, by ``prepare``, before any task reads them (and atomically
anyway); Theano's compile cache is node-local (``$TMPDIR``), where Theano's own
lock keeps concurrent tasks of a node apart, and never shared across nodes
over a network filesystem, where that lock is not safe.
"""
import json
import shlex
import subprocess
import sys
from pathlib import Path

from models.fileio import atomic_write_bytes

from .errors import InputError
from .recipe.config import load_scenario
from .runs.rundir import command_line, link_view

ROOT = Path(__file__).resolve().parent.parent


def grid(scenarios, folds, seeds):
    """[(scenario, fold or None, seed)]: every fold of every seed of every scenario."""
    return [(s, f, seed) for s in scenarios for seed in seeds
            for f in (range(folds) if folds else [None])]


def task_name(scenario, fold, seed):
    return "%s%s-seed%d" % (scenario, "" if fold is None else "-fold%d" % fold, seed)


def task_overrides(overrides, folds, fold, seed):
    extra = ["seed=%d" % seed] + (["folds=%d" % folds, "fold=%d" % fold] if fold is not None
                                  else [])
    return list(overrides) + extra


def pipeline_command(*args):
    return " ".join(shlex.quote(str(a)) for a in (sys.executable, "-m", "pipeline") + args)


def train_command(plan, task):
    args = ["train", "--scenario", task["scenario"], "--data", task["data"], "--runs",
            plan["runs"], "--name", task["name"], "--reuse"]
    if plan["weights"]:
        args += ["--weights", plan["weights"]]
    for folder in plan.get("reuse_from", []):
        args += ["--reuse-from", folder]
    for item in task["overrides"]:
        args += ["--set", item]
    return pipeline_command(*args)


def make_plan(scenarios, folds, seeds, data, weights, runs, overrides=(), tta=False, **engine):
    """Check every task's config, then write the plan files; returns the plan."""
    if not scenarios or not seeds:
        raise InputError("sweep: no scenarios or no seeds given")
    if folds:
        from .cv import check_folds
        check_folds(data, folds, [load_scenario(s, overrides) for s in scenarios])
    tasks = [{"name": task_name(s, f, seed), "scenario": s, "data": data,
              "overrides": task_overrides(overrides, folds, f, seed)}
             for s, f, seed in grid(scenarios, folds, seeds)]
    for task in tasks:  # every config, before anything
        load_scenario(task["scenario"], task["overrides"])
    return write_plan({"scenarios": list(scenarios), "folds": folds, "seeds": list(seeds),
                       "overrides": list(overrides)}, tasks, data, weights, runs, tta, **engine)


def write_plan(plan, tasks, data, weights, runs, tta=False, device="cpu", cpus=2, mem="8G",
               time="04:00:00", limit=0, partition=None, preprocess=(), reuse_from=(),
               rule=("sensitivity", 0.87), finish=None):
    """Write the plan files of ``tasks`` (dicts: name, scenario, data, overrides; their
    configs already checked) into ``runs``; ``preprocess``: the datasets the
    ``prepare`` step makes before any task starts (``preprocess.preprocess``'s arguments);
    ``reuse_from``: folders of runs whose finished runs a task reuses (``train``'s);
    ``finish``: the command of the step after every task (default ``sweep finish``).
    Returns the plan."""
    if not data or not Path(data).is_file():
        raise InputError("%s: no preprocessed data (make preprocess DATA=...)" % data)
    runs = Path(runs).resolve()
    plan = dict(plan, made_by=command_line(), data=str(Path(data).resolve()),
                weights=str(Path(weights).resolve()) if weights else None, runs=str(runs),
                tta=tta, rule=list(rule), device=device, preprocess=list(preprocess),
                reuse_from=[str(Path(r).resolve()) for r in reuse_from],
                finish=finish or step_command("finish", runs),
                slurm={"cpus": cpus, "mem": mem, "time": time, "limit": limit,
                       "partition": partition})
    tasks = [dict(t, data=str(Path(t["data"]).resolve())) for t in tasks]
    plan["tasks"] = [dict(t, command=train_command(plan, t)) for t in tasks]
    runs.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(runs / "sweep.json", json.dumps(plan, indent=2).encode())
    atomic_write_bytes(runs / "tasks.txt",
                       "".join(t["command"] + "\n" for t in plan["tasks"]).encode())
    write_makefile(plan, runs)
    write_sbatch(plan, runs)
    return plan


def step_command(step, runs):
    return pipeline_command("sweep", step, "--runs", runs)


def write_makefile(plan, runs):
    names = [t["name"] for t in plan["tasks"]]
    lines = ["# Written by `python -m pipeline sweep plan`: `make -f tasks.mk -jN` runs the "
             "sweep here.", ".PHONY: all prepare finish %s" % " ".join(names), "all: finish",
             "prepare:", "\t%s" % step_command("prepare", runs)]
    for task in plan["tasks"]:
        lines += ["%s: prepare" % task["name"], "\t%s" % task["command"]]
    lines += ["finish: %s" % " ".join(names), "\t%s" % plan["finish"]]
    atomic_write_bytes(runs / "tasks.mk", ("\n".join(lines) + "\n").encode())


def sbatch_header(plan, runs, name, extra=()):
    s = plan["slurm"]
    lines = ["#!/bin/bash", "#SBATCH --job-name=drt-%s" % name,
             "#SBATCH --chdir=%s" % ROOT, "#SBATCH --cpus-per-task=%d" % s["cpus"],
             "#SBATCH --mem=%s" % s["mem"], "#SBATCH --time=%s" % s["time"],
             "#SBATCH --open-mode=append"]
    if s["partition"]:
        lines.append("#SBATCH --partition=%s" % s["partition"])
    if plan["device"] == "cuda":
        lines.append("#SBATCH --gres=gpu:1")
    lines += list(extra)
    lines += ["set -euo pipefail",
              "# Theano's compile cache on the node's own disk: its lock is safe there",
              'export DRT_CACHE="${DRT_CACHE:-${TMPDIR:-/tmp}/dr-transfer-$(id -un)}"',
              "export OMP_NUM_THREADS=%d" % s["cpus"]]
    if plan["device"] == "cuda":  # what the Makefile does for DEVICE=cuda, on the node
        lines += ["export DEVICE=cuda",
                  'export LD_LIBRARY_PATH="$(python3 models/cudalibs.py "$DRT_CACHE/cuda-libs")'
                  ':%s/.venv/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"' % ROOT]
    return lines


def write_sbatch(plan, runs):
    logs = runs / "logs"
    n = len(plan["tasks"])
    limit = "%%%d" % plan["slurm"]["limit"] if plan["slurm"]["limit"] else ""
    files = {
        "prepare.sbatch": sbatch_header(plan, runs, "prepare",
                                        ["#SBATCH --output=%s/prepare_%%j.out" % logs])
        + [step_command("prepare", runs)],
        "array.sbatch": sbatch_header(plan, runs, "train", [
            "#SBATCH --array=0-%d%s" % (n - 1, limit), "#SBATCH --requeue",
            "#SBATCH --output=%s/task_%%A_%%a.out" % logs])
        + ['command=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" %s)' % shlex.quote(
            str(runs / "tasks.txt")), 'echo "$command"', 'eval "$command"'],
        "finish.sbatch": sbatch_header(plan, runs, "finish",
                                       ["#SBATCH --output=%s/finish_%%j.out" % logs])
        + [plan["finish"]],
    }
    for name, lines in files.items():
        atomic_write_bytes(runs / name, ("\n".join(lines) + "\n").encode())


def load_plan(runs):
    path = Path(runs) / "sweep.json"
    if not path.exists():
        raise InputError("%s: no sweep planned here (make sweep writes it)" % path)
    return json.loads(path.read_text())


def prepare(runs):
    """Make the plan's extra datasets, then extract the features of every feature
    task's data and layer, once each."""
    from .learn.features import prepare_features
    from .preprocess import preprocess
    plan = load_plan(runs)
    for item in plan.get("preprocess", []):
        preprocess(**item, reuse=True)
    done = set()
    for task in plan["tasks"]:
        config = load_scenario(task["scenario"], task["overrides"])
        key = (task["data"], config.get("feature_layer"), config.get("init"))
        if config["method"] == "features" and key not in done:
            done.add(key)
            prepare_features(config, task["data"], plan["weights"])


def finish(runs):
    """Evaluate every run, summarise each cross-validation, write the claims report."""
    from .cv import cross_validate
    from .evaluate import evaluate
    from .report import NoRunsError, write_report
    plan = load_plan(runs)
    missing = [t["name"] for t in plan["tasks"]
               if not (Path(plan["runs"]) / t["name"] / "DONE").exists()]
    if missing:
        raise InputError("%s: %d tasks have not finished: %s" % (runs, len(missing),
                                                                 ", ".join(missing)))
    rule = tuple(plan.get("rule", ("sensitivity", 0.87)))
    for task in plan["tasks"]:
        evaluate(Path(plan["runs"]) / task["name"], task["data"], tta=plan["tta"], rule=rule,
                 reuse=True)
    for view in plan.get("views", []):  # a run evaluated another way, beside its own
        of = next(t for t in plan["tasks"] if t["name"] == view["of"])
        link_view(Path(plan["runs"]) / view["of"], Path(plan["runs"]) / view["name"])
        evaluate(Path(plan["runs"]) / view["name"], of["data"], tta=view["tta"], rule=rule,
                 reuse=True)
    if plan.get("folds"):
        for scenario in plan["scenarios"]:
            for seed in plan["seeds"]:
                cross_validate(scenario, plan["overrides"] + ["seed=%d" % seed], plan["data"],
                               plan["weights"], plan["runs"], plan["folds"], tta=plan["tta"],
                               rule=rule, progress=False)
    try:
        print(write_report(plan["runs"], plan["data"]))
    except NoRunsError:  # every task reused a run of another folder: the report is theirs
        print("%s: every task is a run reused from elsewhere; make report there" % runs)


def submit(runs):
    """sbatch the prepare job, the array after it, the finish job after the array."""
    runs = Path(runs).resolve()
    load_plan(runs)
    (runs / "logs").mkdir(exist_ok=True)

    def sbatch(*args):
        try:
            done = subprocess.run(["sbatch", "--parsable"] + list(args), capture_output=True,
                                  text=True)
        except FileNotFoundError:
            raise InputError("sbatch: not found (no SLURM here: ENGINE=local runs the sweep "
                             "on this machine)")
        if done.returncode != 0:
            raise InputError("sbatch %s: %s" % (args[-1], done.stderr.strip().splitlines()[-1]))
        return done.stdout.strip().split(";")[0]

    ids = {"prepare": sbatch(str(runs / "prepare.sbatch"))}
    ids["array"] = sbatch("--dependency=afterok:%s" % ids["prepare"], str(runs / "array.sbatch"))
    ids["finish"] = sbatch("--dependency=afterok:%s" % ids["array"], str(runs / "finish.sbatch"))
    atomic_write_bytes(runs / "jobs.json", json.dumps(ids, indent=2).encode())
    print("submitted: prepare %(prepare)s, tasks %(array)s, report %(finish)s" % ids)
    print("watch: squeue -j %s   (logs in %s; the report lands in %s)"
          % (",".join(ids.values()), runs / "logs", runs))
    return ids
