"""``make bundle`` for an offline GPU machine, checked here as far as a CPU machine
goes: the size limit, the path on the last line, and, unpacked in a bare
environment (no pyenv, no project venv on PATH, no network use), that ``run``
builds its venv from the bundle alone, imports the bundle's own pygpu and
libgpuarray, says in one line why test-gpu cannot run, and trains on the CPU
without scipy, scikit-learn or matplotlib."""
import os
import subprocess
import sys
import tarfile

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle_out")
    proc = subprocess.run([sys.executable, "-m", "tools.bundle", "--out", str(out)],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 and "apt-get download" in proc.stderr:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    tarball = proc.stdout.strip().splitlines()[-1]
    assert tarball == str(out / "dr-transfer-gpu.tar.gz")
    target = tmp_path_factory.mktemp("offline_machine")
    with tarfile.open(tarball) as tar:
        tar.extractall(target)
    return os.path.getsize(tarball), target / "dr-transfer-gpu"


def bare(home, **extra):
    """An environment without the project's venv or pyenv: what a compute node has."""
    return dict({"HOME": str(home), "PATH": "/usr/bin:/bin"}, **extra)


def test_the_bundle_is_under_60_mib(bundle):
    size, _ = bundle
    assert size <= 60 * 2 ** 20


def test_run_builds_its_venv_offline_and_test_gpu_says_why_in_one_line(bundle, tmp_path):
    _, here = bundle
    proc = subprocess.run([str(here / "run"), "test-gpu"], env=bare(tmp_path), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("run: building") and lines[1].startswith("run: pygpu 0.7.6")
    assert lines[-1].startswith("test-gpu: skipped, no GPU usable: DEVICE=cuda: ")
    project = here / "dr-transfer"
    probe = ("import pygpu, os; print(pygpu.__file__); "
             "print([l.split()[-1] for l in open('/proc/self/maps') if 'libgpuarray' in l][0])")
    libs = "%s:%s" % (here / "python" / "lib", project / ".venv" / "lib")
    out = subprocess.run([str(project / ".venv" / "bin" / "python"), "-c", probe], cwd=str(project),
                         env=bare(tmp_path, LD_LIBRARY_PATH=libs), capture_output=True, text=True)
    pygpu_file, libgpuarray = out.stdout.split()
    assert pygpu_file.startswith(str(project / ".venv")), out.stderr
    assert libgpuarray.startswith(str(project / ".venv" / "lib")), libgpuarray


def test_the_bundle_trains_on_the_cpu_without_scipy_sklearn_matplotlib(bundle, tmp_path):
    _, here = bundle
    project = here / "dr-transfer"
    env = bare(tmp_path, LD_LIBRARY_PATH=str(here / "python" / "lib"))
    for module in ("scipy", "sklearn", "matplotlib", "skimage"):
        proc = subprocess.run([str(project / ".venv" / "bin" / "python"), "-c",
                               "import %s" % module], env=env, capture_output=True)
        assert proc.returncode != 0, module
    subprocess.run([str(project / ".venv" / "bin" / "python"), "-m", "pipeline", "synthetic",
                    "--out", str(tmp_path / "raw"), "--patients", "12", "--width", "300",
                    "--height", "200"], cwd=str(project), env=env, check=True,
                   capture_output=True)
    proc = subprocess.run([str(here / "run"), "train", "SCENARIO=scratch",
                           "DATA=%s" % (tmp_path / "raw"), "RUNS=%s" % (tmp_path / "runs"),
                           "SET=network=mini crop=64 epochs=1 batch_size=8"],
                          env=bare(tmp_path, DEVICE="cpu"), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = proc.stdout.strip().splitlines()[-1]
    assert os.path.exists(os.path.join(project, run_dir, "DONE"))
