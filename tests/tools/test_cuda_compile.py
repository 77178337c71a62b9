"""``tools/cuda_compile.py``: the kernels of the CUDA graphs through NVRTC 13.0 and ptxas.

The ``cuda_compile`` tests need the CUDA 13.0 wheels and Debian's pygpu/libgpuarray:
``make test-cuda-compile`` installs them and runs these with DRT_CUDA_COMPILE=1 and
the report its run of the tool wrote (DRT_CUDA_COMPILE_REPORT); elsewhere they are
skipped. The parsers' tests below them run everywhere.
"""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tools import cuda_compile as cc

heavy = [pytest.mark.cuda_compile,
         pytest.mark.skipif(os.environ.get("DRT_CUDA_COMPILE") != "1",
                            reason="make test-cuda-compile runs these (NVRTC and ptxas 13.0, "
                                   "Debian's libgpuarray)")]

#: the GPU op classes Theano 1.0.5 chooses on a CUDA context for the project's graphs
#: (dnn off); on OpenCL GpuCAReduceCPY would replace GpuCAReduceCuda and the
#: softmax-cross-entropy op stays on the host
CUDA_OPS = {"GpuCAReduceCuda", "GpuElemwise", "GpuCorrMM", "GpuCorrMM_gradInputs",
            "GpuCorrMM_gradWeights", "GpuCaffeMaxPool", "GpuCaffeMaxPoolGrad", "GpuPool",
            "GpuAveragePoolGrad", "GPUA_mrg_uniform", "GpuCrossentropySoftmaxArgmax1HotWithBias",
            "GpuCrossentropySoftmax1HotWithBiasDx", "GpuSoftmax", "GpuSoftmaxWithBias",
            "GpuAdvancedSubtensor1", "GpuIncSubtensor", "GpuAlloc", "GpuContiguous", "GpuJoin",
            "GpuReshape", "GpuDot22", "GpuGemm", "GpuGemv", "HostFromGpu", "GpuFromHost",
            "GpuDimShuffle", "GpuSubtensor", "GpuSplit", "GpuAllocEmpty"}


def run_tool(args):
    return subprocess.run([sys.executable, "-m", "tools.cuda_compile"] + args, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = os.environ.get("DRT_CUDA_COMPILE_REPORT")
    if not path or not os.path.exists(path):
        path = str(tmp_path_factory.mktemp("cuda-compile") / "report.json")
        proc = run_tool(["--json", path])
        assert os.path.exists(path), proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(path) as f:
        return json.load(f)


class TestOnTheGraphs:
    pytestmark = heavy

    def test_every_gpu_op_class_of_the_cuda_graphs_has_its_kernels(self, report):
        assert sorted({n["graph"] for n in report["nodes"]}) == sorted(cc.GRAPHS)
        ops = {}
        for node in report["nodes"]:
            entry = ops.setdefault(node["op"], dict(kernels=set(), calls=set(),
                                                    gpu=node["gpu_op"]))
            for u in node["units"]:
                entry["kernels"].update(report["units"][u]["records"])
            entry["calls"].update(node["kernel_calls"])
        gpu_ops = {op for op, e in ops.items() if e["gpu"]}
        assert CUDA_OPS <= gpu_ops, CUDA_OPS - gpu_ops
        assert "GpuCAReduceCPY" not in gpu_ops  # OpenCL's choice, not CUDA's
        missing = [op for op, e in ops.items() if not e["kernels"]
                   and (e["calls"] or (e["gpu"] and op not in cc.NO_KERNEL))]
        assert not missing
        for op in ("GpuCAReduceCuda", "GpuElemwise", "GpuCaffeMaxPool", "GpuCaffeMaxPoolGrad",
                   "GpuCrossentropySoftmaxArgmax1HotWithBias", "GPUA_mrg_uniform"):
            assert ops[op]["kernels"], op
        assert report["context"]["kind"] == "cuda" and report["context"]["bin_id"] == "compute_90"

    def test_every_captured_kernel_compiled_for_sm_90(self, report):
        assert report["failures"] == []
        assert report["nvrtc_version"] == [13, 0] and report["ptxas_version"] == [13, 0]
        assert len(report["records"]) > 100
        for i, record in enumerate(report["records"]):
            assert record["nvrtc_result"] == 0 and record["linked"], i
            result = report["results"][str(i)]
            assert result["returncode"] == 0 and result["functions"], i
            assert all(f["arch"] == "sm_90" and f["registers"] for f in result["functions"])

    def test_the_preamble_and_options_are_the_installed_libgpuarrays(self, report):
        """libgpuarray itself called NVRTC: its cluda.h (in its own binary) and its options,
        nothing of the project's."""
        cluda = report["cluda_h"].encode()
        digest = hashlib.sha256(cluda).hexdigest()
        library = report["libgpuarray"]
        assert cluda and cluda in open(library, "rb").read()
        owner = subprocess.run(["dpkg-query", "-S", library], capture_output=True, text=True)
        version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libgpuarray3"],
                                 capture_output=True, text=True).stdout
        assert owner.stdout.startswith("libgpuarray3") and version.startswith("0.7.6"), (
            owner.stdout, version)
        for record in report["records"]:
            assert record["options"] == ["-arch", "compute_90"]
            assert record["headers"] == ["cluda.h"] and record["header_sha256"] == [digest]
            assert record["source"].lstrip().startswith(('#include "cluda.h"', "#define"))
        ours = b"".join((ROOT / p).read_bytes() for p in (
            "tools/cuda_stub.c", "tools/cuda_compile.py", "models/caffe_ops_gpu.py"))
        assert b"CLUDA_H" not in ours and b'"-arch"' not in ours


@pytest.mark.cuda_compile
@pytest.mark.skipif(os.environ.get("DRT_CUDA_COMPILE") != "1",
                    reason="make test-cuda-compile runs it")
def test_a_broken_kernel_fails_the_check(tmp_path):
    """NVRTC's refusal (a warp intrinsic CUDA 9 removed) and ptxas's (too much static
    shared memory for sm_90) both fail the run; a good kernel beside them compiles."""
    kernels = {
        "shfl.cu": "#include \"cluda.h\"\nKERNEL void old_warp_sum(GLOBAL_MEM float *x) {\n"
                   "  float v = x[LID_0];\n"
                   "  for (int d = 16; d > 0; d /= 2) v += __shfl_down(v, d);\n"
                   "  if (LID_0 == 0) x[0] = v;\n}\n",
        "shared.cu": "#include \"cluda.h\"\nKERNEL void too_much_shared(GLOBAL_MEM float *x) {\n"
                     "  LOCAL_MEM float big[20000];\n  big[LID_0] = x[LID_0];\n"
                     "  local_barrier();\n  x[LID_0] = big[19999 - LID_0];\n}\n",
        "good.cu": "#include \"cluda.h\"\nKERNEL void warp_sum(GLOBAL_MEM float *x) {\n"
                   "  float v = x[LID_0];\n  for (int d = 16; d > 0; d /= 2)\n"
                   "    v += __shfl_down_sync(0xffffffffu, v, d);\n"
                   "  if (LID_0 == 0) x[0] = v;\n}\n",
    }
    args = ["--graphs", "none", "--json", str(tmp_path / "report.json")]
    for name, source in kernels.items():
        (tmp_path / name).write_text(source)
        args += ["--kernel", str(tmp_path / name)]
    proc = run_tool(args)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert 'identifier "__shfl_down" is undefined' in out
    assert "uses too much shared data" in out
    assert "FAILED: NVRTC failed" in out and "FAILED: ptxas failed" in out
    assert "2 failures" in out.splitlines()[-1]
    assert any(line.split()[1:2] == ["warp_sum"] for line in out.splitlines())


def test_c_string_is_what_a_compiler_makes_of_theanos_literals():
    # Theano's GpuKernelBase: lines joined by \\n, quotes escaped, backslashes not
    assert cc.c_string('"a\\nb \\"q\\" \\\\ \\t\\101\\x41"') == 'a\nb "q" \\ \tAA'
    assert cc.c_string('"one\\n"\n"two\\n";  rest') == "one\ntwo\n"
    assert cc.c_string('"#define X 1 \\\\n"') == "#define X 1 \\n"


def test_ptxas_info_reads_registers_shared_memory_and_spills():
    text = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'k1' for 'sm_90'
ptxas info    : Function properties for k1
    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 58 registers, used 1 barriers, 1024 bytes smem, 400 bytes cmem[0]
ptxas info    : Compiling entry function 'k2' for 'sm_90'
ptxas info    : Function properties for k2
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 10 registers, used 0 barriers, 376 bytes cmem[0]
"""
    assert cc.ptxas_info(text) == [
        dict(name="k1", arch="sm_90", registers=58, smem=1024, stack=8, spill_stores=4,
             spill_loads=12),
        dict(name="k2", arch="sm_90", registers=10, smem=0, stack=0, spill_stores=0,
             spill_loads=0)]


def test_the_stand_in_driver_only_stands_in():
    """It computes nothing and supplies no compiler input: NVRTC's calls are forwarded."""
    source = (ROOT / "tools" / "cuda_stub.c").read_text()
    assert "cuLaunchKernel" in source and "return OK;  /* nothing runs */" in source
    assert 'FORWARD(nvrtcCompileProgram, prog, nopt, opts)' in source


def test_an_op_class_without_a_kernel_fails_the_completeness_check():
    """A GPU op class of the graphs with no captured kernel fails the run unless it is
    one that compiles none (NO_KERNEL) and its C code calls no kernel-making function."""
    record = dict(nvrtc_result=0, linked=True, log="", ptx="", source="")
    data = dict(records=[record],
                units={"u": dict(what="GpuElemwise", records=[0], error=None)},
                nodes=[dict(graph="g", op="GpuElemwise", units=["u"], error=None,
                            kernel_calls=[], gpu_op=True),
                       dict(graph="g", op="GpuNewOp", units=[], error=None, kernel_calls=[],
                            gpu_op=True),
                       dict(graph="g", op="GpuSubtensor", units=[], error=None,
                            kernel_calls=[], gpu_op=True),
                       dict(graph="g", op="GpuReshape", units=[], error=None,
                            kernel_calls=["GpuArray_copy"], gpu_op=True),
                       dict(graph="g", op="Shape_i", units=[], error=None, kernel_calls=[],
                            gpu_op=False)])
    info = [dict(name="elem", arch="sm_90", registers=8, smem=0, stack=0, spill_stores=0,
                 spill_loads=0)]
    with open(os.devnull, "w") as out:
        failures, entries, _ = cc.report(data, {0: (0, "", info)}, out=out)
    assert entries == 1
    assert sorted(f.split(":")[0] for f in failures) == ["GpuNewOp", "GpuReshape"]
