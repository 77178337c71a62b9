"""The GPU tests run their computations in subprocesses with ``DEVICE`` set, so
this process may be on any device. Without a usable GPU every test here is
skipped with the one-line reason ``python -m pipeline device`` gives."""
import functools
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@functools.lru_cache(maxsize=None)
def gpu_unusable():
    """None when DEVICE=cuda works here, else the one-line reason."""
    proc = subprocess.run([sys.executable, "-m", "pipeline", "device"], cwd=str(ROOT),
                          env=dict(os.environ, DEVICE="cuda"), capture_output=True, text=True)
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
