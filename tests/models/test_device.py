"""DEVICE=cuda on a machine without a usable GPU: one line naming the missing
piece, never a silent CPU run; the CUDA library links; the Theano flags."""
import os
import shutil
import subprocess
import sys

import pytest
import theano
import theano.tensor as T

from models import compat, device
from tests.conftest import ROOT
from tests.gpu.conftest import gpu_unusable

no_gpu = pytest.mark.skipif(not gpu_unusable("cuda"), reason="a GPU is usable here")


def test_cuda_flags_turn_cudnn_off_and_keep_the_compile_cache():
    flags = compat.project_theano_flags(have_openblas=True, device="cuda").split(",")
    assert "device=cuda" in flags and "dnn.enabled=False" in flags and "floatX=float32" in flags
    assert any(f.startswith("base_compiledir=") for f in flags)
    assert "device=cpu" in compat.project_theano_flags(have_openblas=True).split(",")


@pytest.mark.parametrize("value, expected", [("", "cpu"), ("cpu", "cpu"), ("cuda", "cuda"), ("opencl0:0", "opencl0:0"),
                                             ("cuda1", "cuda1")])
def test_device_values(monkeypatch, value, expected):
    monkeypatch.setenv("DEVICE", value)
    assert device.asked() == expected


@pytest.mark.parametrize("value", ["gpu", "cuda:0", "opencl0", "cudax", "opencl:1"])
def test_other_device_values_are_an_error(monkeypatch, value):
    monkeypatch.setenv("DEVICE", value)
    with pytest.raises(device.DeviceError, match="DEVICE=%s: expected cpu, cuda, cudaN or openclP:D" % value):
        device.asked()


def test_a_gpu_run_whose_graph_holds_cpu_convolutions_is_an_error(monkeypatch):
    x, w = T.tensor4("x"), T.tensor4("w")
    fn = theano.function([x, w], T.nnet.conv2d(x, w))  # this process: the CPU's CorrMM
    device.check_compiled(fn, "test function")  # on the CPU nothing to say
    monkeypatch.setenv("DEVICE", "cuda")
    with pytest.raises(device.DeviceError, match=r"test function still runs CorrMM x1 on the CPU"):
        device.check_compiled(fn, "test function")


def test_missing_pygpu_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygpu", None)  # import pygpu raises ImportError
    assert device.diagnose().startswith("pygpu is not importable")
    assert "make install DEVICE=cuda" in device.diagnose()


@no_gpu
def test_train_on_cuda_without_a_gpu_stops_in_one_line_before_anything_is_made(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipeline", "train", "--scenario", "4",
                           "--data", str(tmp_path / "none.h5"), "--runs", str(tmp_path / "runs")],
                          cwd=str(ROOT), capture_output=True, text=True,
                          env=dict(os.environ, DEVICE="cuda"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: DEVICE=cuda: "), proc.stderr
    assert not (tmp_path / "runs").exists()


@no_gpu
@pytest.mark.skipif(not (ROOT / ".venv" / ".installed-stamp").exists(),
                    reason="make install has not run (the target would install first)")
def test_make_test_gpu_says_why_in_one_line_and_succeeds():
    proc = subprocess.run(["make", "-s", "--no-print-directory", "test-gpu"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("test-gpu: skipped, no GPU usable: DEVICE=cuda:")


FAKE_CUDA = """
int cuInit(unsigned flags) { return CUINIT; }
int cuDeviceGetCount(int *n) { *n = 1; return 0; }
int cuDriverGetVersion(int *v) { *v = DRIVER; return 0; }
"""
FAKE_NVRTC = "int nvrtcVersion(int *major, int *minor) { *major = 13; *minor = 0; return 0; }\n"


def fake_libraries(folder, cuinit=0, driver=13000, cublas=True):
    """A fake driver (cuInit's result, its CUDA version), an NVRTC 13.0 and maybe cuBLAS,
    built with gcc under the unversioned names libgpuarray loads."""
    folder.mkdir()
    sources = {"libcuda.so": FAKE_CUDA.replace("CUINIT", str(cuinit)).replace("DRIVER", str(driver)),
               "libnvrtc.so": FAKE_NVRTC}
    if cublas:
        sources["libcublas.so"] = "int cublasGetProperty(int p, int *v) { *v = 1; return 0; }\n"
    for name, code in sources.items():
        (folder / (name + ".c")).write_text(code)
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(folder / name),
                        str(folder / (name + ".c"))], check=True)
    return folder


DIAGNOSE = ("import sys, types; sys.modules['pygpu'] = types.ModuleType('pygpu'); "
            "import models; from models.device import diagnose; print(diagnose())")


@pytest.mark.skipif(not shutil.which("gcc"), reason="no gcc to build the fake CUDA libraries")
@pytest.mark.parametrize("case, expected", [
    (dict(cuinit=100), "the NVIDIA driver found no usable GPU (cuInit error 100"),
    (dict(driver=12040), "NVRTC 13.0 is newer than the driver's CUDA 12.4"),
    (dict(cublas=False), "libcublas.so not found"),
    (dict(), "None")])
def test_each_missing_piece_is_named(tmp_path, case, expected):
    libs = fake_libraries(tmp_path / "libs", **case)
    proc = subprocess.run([sys.executable, "-c", DIAGNOSE], cwd=str(ROOT), capture_output=True,
                          text=True, env=dict(os.environ, DEVICE="cpu", LD_LIBRARY_PATH=str(libs)))
    assert proc.stdout.strip().startswith(expected), proc.stdout + proc.stderr[-2000:]


@no_gpu
@pytest.mark.skipif(not shutil.which("gcc"), reason="no gcc to build the fake CUDA libraries")
@pytest.mark.skipif(subprocess.run([sys.executable, "-c", "import pygpu"]).returncode != 0,
                    reason="pygpu is not installed (make install DEVICE=cuda)")
def test_a_driver_theano_cannot_start_is_one_line_with_theanos_reason(tmp_path):
    """Every piece is there as far as the checks go, but libgpuarray cannot start the
    fake driver: Theano's own reason, in one line, instead of a silent CPU run."""
    libs = fake_libraries(tmp_path / "libs")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "device"], cwd=str(ROOT),
                          capture_output=True, text=True,
                          env=dict(os.environ, DEVICE="cuda", LD_LIBRARY_PATH=str(libs)))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: DEVICE=cuda: Theano did not activate the GPU: ")


def test_a_child_process_builds_its_flags_for_its_own_device():
    """This process's THEANO_FLAGS (set by compat) must not carry its device into a
    child started with another DEVICE; flags the child is given itself still win."""
    probe = "import models, theano; print(theano.config.device, theano.config.floatX)"
    parents = compat.project_theano_flags(device="opencl0:0")  # what a GPU process passes on
    env = dict(os.environ, THEANO_FLAGS=parents, DRT_THEANO_FLAGS=parents,
               DRT_USER_THEANO_FLAGS="")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=str(ROOT), capture_output=True,
                          text=True, env=dict(env, DEVICE="cpu"))
    assert proc.stdout.split() == ["cpu", "float32"], proc.stderr
    proc = subprocess.run([sys.executable, "-c", probe], cwd=str(ROOT), capture_output=True,
                          text=True, env=dict(env, DEVICE="cpu", THEANO_FLAGS="floatX=float64"))
    assert proc.stdout.split() == ["cpu", "float64"], proc.stderr
