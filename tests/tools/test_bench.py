"""tools.bench: the timing and memory helpers its figures rest on."""
import subprocess
import sys

from tests.conftest import ROOT
from tools.bench import OP_CLASSES, timed


def test_peak_memory_is_the_processs_own():
    """VmHWM of a fresh process grows by what it touches (a child's rusage would also
    count its parent's memory at the fork)."""
    code = ("from tools.bench import peak_rss_kib; import numpy as np; a = peak_rss_kib(); "
            "b = np.ones(300 * 2 ** 20 // 8); print(a, peak_rss_kib())")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True,
                         text=True, check=True).stdout.split()
    before, after = int(out[-2]), int(out[-1])
    assert 0 < before and after - before >= 290 * 1024, (before, after)


def test_timed_is_the_median_after_a_warm_up():
    calls = []
    assert timed(lambda: calls.append(1), 5) >= 0 and len(calls) == 6


def test_every_heavy_op_has_a_class():
    for op in ("CorrMM", "CorrMM_gradInputs", "CorrMM_gradWeights", "CaffeMaxPool",
               "CaffeMaxPoolGrad", "Join"):
        assert op in OP_CLASSES
