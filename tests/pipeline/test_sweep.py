"""Sweeps planned and run here through Make's job server (the SLURM engine has
its own test, tests/test_slurm.py, run by make test-slurm)."""
import json
import shlex
import subprocess

import pytest

from pipeline.errors import InputError
from pipeline.sweep import make_plan
from tests.conftest import ROOT
from tests.pipeline.test_train import MINI, cv_h5, data_h5  # noqa: F401  (module fixtures)

SWEEP_MINI = [item for item in MINI if not item.startswith("epochs")] + ["epochs=2"]


def test_the_plan_is_commands_a_user_could_type(cv_h5, data_h5, tmp_path):  # noqa: F811
    plan = make_plan(["4", "scratch"], 3, [0, 1], cv_h5, None, tmp_path, SWEEP_MINI)
    lines = (tmp_path / "tasks.txt").read_text().splitlines()
    assert len(lines) == len(plan["tasks"]) == 2 * 3 * 2
    first = shlex.split(lines[0])
    assert first[1:4] == ["-m", "pipeline", "train"]
    assert first[first.index("--name") + 1] == "4-fold0-seed0" and "--reuse" in first
    assert "seed=0" in first and "folds=3" in first and "fold=0" in first
    array = (tmp_path / "array.sbatch").read_text()
    assert "#SBATCH --array=0-11\n" in array and "#SBATCH --requeue" in array
    assert "--gres" not in array and "DEVICE=cuda" not in array and "DRT_CACHE" in array
    cuda = make_plan(["4"], 0, [0], data_h5, None, tmp_path / "cuda", SWEEP_MINI, device="cuda",
                     limit=2)
    assert "#SBATCH --gres=gpu:1" in (tmp_path / "cuda" / "array.sbatch").read_text()
    assert "export DEVICE=cuda" in (tmp_path / "cuda" / "array.sbatch").read_text()
    assert "models/cudalibs.py" in (tmp_path / "cuda" / "array.sbatch").read_text()
    assert "#SBATCH --array=0-0%2" in (tmp_path / "cuda" / "array.sbatch").read_text()
    assert [t["name"] for t in cuda["tasks"]] == ["4-seed0"]


def test_a_bad_task_config_is_refused_before_anything_is_written(data_h5, tmp_path):  # noqa: F811
    with pytest.raises(InputError, match="epoch: unknown key"):
        make_plan(["4"], 0, [0], data_h5, None, tmp_path / "s", SWEEP_MINI + ["epoch=1"])
    assert not (tmp_path / "s").exists()


def test_local_engine_runs_the_grid_with_make_jobs(cv_h5, tmp_path):  # noqa: F811
    runs = tmp_path / "sweep"
    make_plan(["1", "4"], 3, [0], cv_h5, None, runs,
              SWEEP_MINI + ["feature_layer=inception_3a/output"])
    for attempt in range(2):  # the second run finds every task finished and trains nothing
        done = subprocess.run(["make", "-s", "-j2", "-f", str(runs / "tasks.mk")], cwd=str(ROOT),
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    assert "reused" in done.stdout and "epoch 1" not in done.stdout
    names = ["%s-fold%d-seed0" % (s, f) for s in ("1", "4") for f in range(3)]
    assert all((runs / n / "DONE").exists() and (runs / n / "evaluation.json").exists()
               for n in names)
    md = (runs / "report-data.md").read_text()
    assert all(n in md for n in names)  # the report lists every task
    for scenario in ("1", "4"):
        [path] = runs.glob("cv-%s-k3-*/summary.json" % scenario)
        summary = json.loads(path.read_text())
        assert sorted(summary["runs"]) == sorted(str(runs / n) for n in names
                                                 if n.startswith(scenario))


def test_the_job_scripts_set_a_node_local_compile_cache_in_a_bare_environment(
        data_h5, tmp_path):  # noqa: F811
    make_plan(["4"], 0, [0], data_h5, None, tmp_path, SWEEP_MINI, cpus=3)
    for name in ("prepare.sbatch", "array.sbatch", "finish.sbatch"):
        lines = (tmp_path / name).read_text().splitlines()
        setup = "\n".join(lines[:-1] if name != "array.sbatch" else lines[:-3])
        out = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "TMPDIR=%s" % tmp_path, "bash",
                              "-c", setup + '\necho "$DRT_CACHE $OMP_NUM_THREADS"'],
                             capture_output=True, text=True)  # no USER, no DRT_CACHE: SLURM's
        assert out.returncode == 0, out.stderr
        user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        assert out.stdout.split() == ["%s/dr-transfer-%s" % (tmp_path, user), "3"]
