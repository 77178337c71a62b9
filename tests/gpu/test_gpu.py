"""DEVICE=cuda against the CPU path, which the fidelity tests hold to OpenCV's
Caffe importer: forward on random-weight V1 and V2 caffemodels, five SGD steps
of scenario 4, frozen layers, the ops of the compiled graph, kill and resume.

Run by ``make test-gpu`` (never by ``make test``). Each side runs in its own
process with ``DEVICE`` set: Theano picks its device once per process.
"""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.gpu.conftest import DEVICE, child_env
from tests.pipeline.test_train import (KILL_SCRIPT, MINI, assert_same_model, batches_per_epoch,
                                      data_h5)  # noqa: F401  (a fixture)

pytestmark = pytest.mark.gpu


def run(device, args, check=True):
    proc = subprocess.run([sys.executable] + args, cwd=str(ROOT), capture_output=True, text=True,
                          env=child_env(device))
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def relative_error(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.mark.parametrize("version", [1, 2])
def test_forward_on_the_gpu_equals_the_cpu(random_googlenets, version, tmp_path):
    _, files = random_googlenets
    caffemodel, _ = files[version]
    blob = tmp_path / "blob.npy"
    np.save(blob, np.random.RandomState(version).normal(0, 50, (4, 3, 224, 224))
            .astype(np.float32))
    out = {}
    for device in ("cpu", DEVICE):
        out[device] = tmp_path / ("%s.npz" % device)
        run(device, ["-m", "pipeline", "forward", "--weights", str(caffemodel), "--blob",
                     str(blob), "--out", str(out[device]),
                     "--layers", "loss3/classifier,prob,inception_4a/output"])
    with np.load(out["cpu"]) as cpu, np.load(out[DEVICE]) as gpu:
        assert relative_error(gpu["loss3/classifier"], cpu["loss3/classifier"]) <= 1e-4
        assert np.abs(gpu["prob"] - cpu["prob"]).max() <= 1e-5
        assert relative_error(gpu["inception_4a/output"], cpu["inception_4a/output"]) <= 1e-4


@pytest.fixture(scope="module")
def sgd_steps(random_googlenets, tmp_path_factory):
    """(CPU, CPU with its input moved by float32 rounding, GPU) after five steps."""
    _, files = random_googlenets
    caffemodel, _ = files[1]
    d = tmp_path_factory.mktemp("sgd_steps")
    runs = {"cpu": ("cpu", []), "cpu_moved": ("cpu", ["3e-7"]), "gpu": (DEVICE, [])}
    for key, (device, extra) in runs.items():
        run(device, ["-m", "tests.gpu.sgd_steps", str(caffemodel), str(d / (key + ".npz"))]
            + extra)
    out = {}
    for key in runs:
        with np.load(d / (key + ".npz")) as f:
            out[key] = dict(f)
    return out["cpu"], out["gpu"], out["cpu_moved"]


def relative_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


#: layers whose gradient passes no max pool backwards (the heads, and above pool5's
#: average): it is continuous in the data, so it must agree to float32 precision
SMOOTH = ("loss1/", "loss2/", "loss3/", "inception_5b/")


def test_five_sgd_steps_on_the_gpu_equal_the_cpu(sgd_steps):
    """Five steps: the losses and weights within 1e-4 relative. The first step's
    update: within 1e-5 where the gradient is continuous; below a max pool, no
    further from the CPU's than the CPU's own moves when its input changes by float32
    rounding (3e-7), since a near-tied maximum flips with such a change on any
    device and sends that window's gradient elsewhere."""
    cpu, gpu, moved = sgd_steps
    np.testing.assert_allclose(gpu["losses"], cpu["losses"], rtol=1e-4)
    for key in cpu:
        if key.startswith("after/"):
            assert relative_error(gpu[key], cpu[key]) <= 1e-4, key
    first = [k for k in cpu if k.startswith("first/")]
    smooth = [k for k in first if k[len("first/"):].startswith(SMOOTH)]
    assert len(smooth) > 10, smooth
    for key in smooth:
        assert relative_l2(gpu[key], cpu[key]) <= 1e-5, key
    own = max(relative_l2(moved[k], cpu[k]) for k in first)
    worst = max((relative_l2(gpu[k], cpu[k]), k) for k in first)
    assert worst[0] <= max(1e-4, 5 * own), (worst, own)  # one sample of "own": a margin


def test_frozen_conv1_conv2_stay_bit_identical_on_the_gpu(sgd_steps):
    _, gpu, _ = sgd_steps
    frozen = [k[len("after/"):] for k in gpu if k.startswith("after/conv1/")
              or k.startswith("after/conv2/")]
    assert len(frozen) == 6, frozen
    for name in frozen:
        np.testing.assert_array_equal(gpu["after/" + name], gpu["before/" + name])
    moved = [k for k in gpu if k.startswith("after/inception_3a/")]
    assert any(not np.array_equal(gpu[k], gpu["before/" + k[6:]]) for k in moved)


def test_the_compiled_train_graph_is_on_the_gpu(sgd_steps):
    cpu, gpu, _ = sgd_steps
    ops = set(gpu["ops"].tolist())
    assert {"GpuCorrMM", "GpuCorrMM_gradInputs", "GpuCorrMM_gradWeights"} <= ops, ops
    assert {"GpuCaffeMaxPool", "GpuCaffeMaxPoolGrad"} <= ops, ops  # Caffe's tie rule
    assert not ops & {"CaffeMaxPool", "CaffeMaxPoolGrad", "GpuMaxPoolGrad"}, ops
    assert not ops & {"CorrMM", "CorrMM_gradInputs", "CorrMM_gradWeights"}, ops
    assert "CorrMM" in set(cpu["ops"].tolist())  # the check can fail


def test_kill_then_resume_on_the_gpu_equals_an_uninterrupted_gpu_run(data_h5, tmp_path):
    args = ["train", "--scenario", "4", "--data", data_h5]
    args += [a for item in MINI for a in ("--set", item)]
    reference = run(DEVICE, ["-m", "pipeline"] + args + ["--runs", str(tmp_path / "ref")])
    reference_dir = reference.stdout.strip().splitlines()[-1]
    kill_at = 2 * batches_per_epoch(data_h5) + 2
    killed = run(DEVICE, ["-c", KILL_SCRIPT, str(kill_at)] + args
                 + ["--runs", str(tmp_path / "killed")], check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = run(DEVICE, ["-m", "pipeline"] + args + ["--runs", str(tmp_path / "killed")])
    assert "resuming" in resumed.stdout
    resumed_dir = resumed.stdout.strip().splitlines()[-1]
    with open(os.path.join(resumed_dir, "environment.json")) as f:
        assert '"device": "%s"' % DEVICE in f.read()
    assert_same_model(reference_dir, resumed_dir)
