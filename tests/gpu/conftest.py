"""The GPU tests run their computations in subprocesses with ``DEVICE`` set, so
this process may be on any device. The device under test is ``$DEVICE`` when it
is a GPU one (``cuda``, ``cudaN``, ``openclP:D``), else ``cuda``. Without it
every test here is skipped with the one-line reason ``python -m pipeline
device`` gives."""
import functools
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


DEVICE = os.environ.get("DEVICE", "cpu") if os.environ.get("DEVICE", "cpu") != "cpu" else "cuda"


def child_env(device):
    """The environment of a process on ``device``. Theano marks a process that started a
    GPU (THEANO_GPU_IS_ALREADY_ACTIVE) and refuses it in children: this one may have."""
    env = dict(os.environ, DEVICE=device)
    env.pop("THEANO_GPU_IS_ALREADY_ACTIVE", None)
    return env


@functools.lru_cache(maxsize=None)
def gpu_unusable(device=DEVICE):
    """None when ``device`` works here, else the one-line reason."""
    proc = subprocess.run([sys.executable, "-m", "pipeline", "device"], cwd=str(ROOT),
                          env=child_env(device), capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode]
    return lines[-1]


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and gpu_unusable():
        skip = pytest.mark.skip(reason="no GPU usable: %s" % gpu_unusable())
        for item in gpu_items:
            item.add_marker(skip)
