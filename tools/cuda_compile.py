"""``make test-cuda-compile``: every GPU kernel of the project's CUDA graphs, compiled by
NVRTC 13.0 for compute_90 and assembled by ptxas 13.0 for sm_90, without a GPU.

Theano 1.0.5 picks its GPU ops by the context's kind (a CUDA context gets
GpuCAReduceCuda and CUDA's softmax kernels; OpenCL others), so the CUDA graphs
can only be built on a CUDA context. Here pygpu opens one on a stand-in driver:
``tools/cuda_stub.c``, built into ``build/cuda-compile/stub`` as ``libcuda.so``,
``libcublas.so`` and ``libnvrtc.so`` (first on LD_LIBRARY_PATH), which reports an
sm_90 device, keeps "device" memory in host memory and runs nothing. Its
``nvrtc*`` functions forward to the real NVRTC 13.0 (PyPI's nvidia-cuda-nvrtc)
and record what libgpuarray (Debian's libgpuarray3 0.7.6) hands them: so every
kernel is compiled by libgpuarray's own code, with its own ``cluda.h`` preamble
and its own options, exactly as on a GPU, and the records say which.

The graphs (``GRAPHS``) are the project's own: built by ``pipeline`` and ``models``
and optimised by Theano for that CUDA context, but not linked (no host C code is
compiled, nothing runs). Then, for every GPU node, the kernels Theano would have
compiled when linking it:

- ops built on ``GpuKernelBase`` (Theano's, the project's GpuCaffeMaxPool*):
  ``gpu_kernels(node, name)``, through the C string literal that Theano's C code
  would hold (``_generate_kernel_code``), given to libgpuarray's ``GpuKernel_init``
  with the op's flags;
- GpuElemwise: ``GpuElemwise_new`` with the preamble, expression and arguments of
  Theano's ``c_init_code_struct`` (libgpuarray compiles the contiguous kernel and
  the strided ones for every rank up to the node's, 64- and 32-bit addressing);
- the in-place add of GpuIncSubtensor (``a += b``), and libgpuarray's copy
  kernel (``dst = src``, which GpuArray_copy / setarray / move / concatenate and
  the BLAS wrappers use for strided arrays) for every dtype pair and rank
  of the nodes whose C code calls those functions (``COPY_CALLS``, ``COPYING``);
- libgpuarray's take1 kernel (GpuAdvancedSubtensor1), by a call of GpuArray_take1;
- the kernels libgpuarray compiles for itself when the context starts (cuBLAS
  helpers).

The NVRTC output (PTX) of each goes through ``ptxas -arch=sm_90 -v``. Printed: a
line per kernel (registers, shared memory, stack, spill stores and loads), then
the count. Exit status 1 when a kernel fails NVRTC or ptxas, when a GPU op
class of the graphs got no kernel and is not one that compiles none
(``NO_KERNEL``), or when anything else went wrong. ``--json`` writes everything.

What it cannot check: launch configurations (grid and block sizes and dynamic
shared memory are chosen at run time), cuBLAS, the driver's own PTX load, whether
the kernels compute the right thing, and speed.

The pipeline names it imports: ``pipeline.recipe.config.load_scenario``,
``num_classes``, ``pipeline.learn.finetune.build_finetune_net``, ``compile_training``,
``pipeline.learn.features.build_features_net``.
"""
import argparse
import ctypes
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "cuda-compile"
SITE = WORK / "site"  # pip install --target (requirements-cuda-compile.txt)
STUB_SOURCE = ROOT / "tools" / "cuda_stub.c"
PYGPU = Path("/usr/lib/python3/dist-packages/pygpu")  # Debian's python3-pygpu
CUDA_VERSION = (13, 0)
ARCH = "sm_90"

#: GPU op classes that compile no kernel: views, allocations, host-to-device
#: transfers of contiguous data. Their C code must call none of KERNEL_CALLS
#: (checked, see ``c_code_of``). cuBLAS ops are not here: libgpuarray's BLAS
#: wrappers copy strided operands with its copy kernel (COPYING).
NO_KERNEL = {
    "GpuAllocEmpty": "allocates only",
    "GpuSubtensor": "a view",
    "GpuSplit": "views",
    "GpuFromHost": "copies host memory (made C-contiguous on the host) to the device",
}

#: libgpuarray / pygpu calls in an op's C code that compile a kernel at run time
KERNEL_CALLS = ("GpuKernel_init", "GpuElemwise_new", "GpuArray_copy", "GpuArray_setarray",
                "GpuArray_move", "GpuArray_concatenate", "GpuArray_take1",
                "GpuArray_maxandargmax", "GpuArray_reshape", "pygpu_copy", "pygpu_concatenate",
                "pygpu_reshape", "pygpu_as_ndarray", "pygpu_blas_", "GpuArray_rgemm",
                "GpuArray_rgemv", "GpuArray_rger", "GpuArray_sort", "GpuReduction")

#: the calls that copy strided arrays through libgpuarray's copy kernel
COPY_CALLS = ("GpuArray_copy", "GpuArray_setarray", "GpuArray_move", "GpuArray_concatenate",
              "GpuArray_reshape", "pygpu_copy", "pygpu_concatenate", "pygpu_reshape",
              "pygpu_as_ndarray", "pygpu_blas_", "GpuArray_rgemm", "GpuArray_rgemv",
              "GpuArray_rger")


def is_gpu_op(op):
    """An op of Theano's gpuarray back end or the project's GPU module (not a host op
    such as Shape_i that reads a GPU variable's metadata)."""
    module = type(op).__module__
    return module.startswith("theano.gpuarray") or module == "models.caffe_ops_gpu"


#: ops whose C code moves strided arrays through libgpuarray's copy kernel (ga_extcopy:
#: GpuArray_copy, _setarray, _move, _concatenate, _reshape of a strided array,
#: HostFromGpu's read of a strided array, the BLAS wrappers' copies)
COPYING = {"GpuContiguous", "HostFromGpu", "GpuJoin", "GpuReshape", "GpuAlloc",
           "GpuIncSubtensor", "GpuAdvancedIncSubtensor1", "GpuAdvancedIncSubtensor1_dev20",
           "GpuDot22", "GpuGemm", "GpuGemv", "GpuGer", "GpuCorrMM", "GpuCorrMM_gradInputs",
           "GpuCorrMM_gradWeights"}


# ------------------------------------------------------------------ the graphs
def _scenario(name, *overrides):
    from pipeline.recipe.config import load_scenario
    # the kernels do not depend on the weights' values: Caffe's fillers, no file
    return load_scenario(name, ['init="random"'] + list(overrides))


def graph_training(scenario):
    def build():
        from pipeline.learn.finetune import build_finetune_net, compile_training
        from pipeline.recipe.config import num_classes
        config = _scenario(scenario)
        _, _, net, heads = build_finetune_net(config, num_classes(config), None)
        return [compile_training(net, heads, config)[0]]
    return build


def graph_features(scenario):
    def build():
        from models import googlenet
        from pipeline.learn.features import build_features_net
        from pipeline.recipe.config import num_classes
        config = _scenario(scenario)
        _, _, net = build_features_net(config, num_classes(config), None)
        return [googlenet.compile_forward(net, ["features/global_pool"])]
    return build


def graph_feature_classifier():
    """Scenario 1's ``classifier = "theano"``: a new InnerProduct on the features,
    trained by the Caffe solver (as ``pipeline.learn.features`` builds it)."""
    from models import googlenet
    from pipeline.learn.finetune import compile_training
    config = _scenario("1")
    net = googlenet.build([googlenet.inner_product("loss3/classifier", "data", 2, bias=0.0)],
                          input_shape=(1024,))
    return [compile_training(net, ["loss3/classifier"], dict(config, freeze=[]))[0]]


def graph_inference():
    """evaluate / predict (``prob``), the forward probe's blobs, the heatmaps (CAM)."""
    from models import googlenet
    from models.cam import compile_cam, referable_rows
    from pipeline.learn.finetune import build_finetune_net
    from pipeline.recipe.config import num_classes
    config = _scenario("4")
    spec, _, net, _ = build_finetune_net(config, num_classes(config), None)
    return [googlenet.compile_forward(net, ["prob"]),
            googlenet.compile_forward(net, ["loss3/classifier", "prob", "inception_4a/output"]),
            compile_cam(net, spec, referable_rows(num_classes(config)))]


def graph_mc_dropout():
    from models.mc_dropout import compile_full, compile_head, compile_trunk
    from pipeline.learn.finetune import build_finetune_net
    from pipeline.recipe.config import num_classes
    config = _scenario("4")
    spec, _, net, _ = build_finetune_net(config, num_classes(config), None)
    return [compile_trunk(net, spec), compile_head(net, spec), compile_full(net, spec)]


GRAPHS = {
    "train-2": graph_training("2"),          # fine-tune everything
    "train-4": graph_training("4"),          # conv1/conv2 frozen
    "features-1": graph_features("1"),       # pool5/7x7_s1
    "features-3": graph_features("3"),       # inception_4a/output, globally pooled
    "feature-classifier": graph_feature_classifier,
    "inference": graph_inference,
    "mc-dropout": graph_mc_dropout,
}


# ------------------------------------------------------------------ capture (child)
class _Unlinked:
    """What ``theano.function`` returns here: the optimised graph, never linked."""

    def __init__(self, maker):
        self.maker = maker


def _no_linking():
    """Make ``models.device.function`` optimise for the device and stop before linking
    (Theano's own helper functions, e.g. MRG's, still compile and run on the host)."""
    from theano.compile import function_module
    from models import device
    state = {"on": False}
    create = function_module.FunctionMaker.create
    if getattr(create, "_drt_unlinked", False):
        return

    def unlinked_create(self, *args, **kwargs):
        return _Unlinked(self) if state["on"] else create(self, *args, **kwargs)

    function = device.function

    def optimised_only(*args, **kwargs):
        state["on"] = True
        try:
            return function(*args, **kwargs)
        finally:
            state["on"] = False

    unlinked_create._drt_unlinked = True
    function_module.FunctionMaker.create = unlinked_create
    device.function = optimised_only


class Recorder:
    """The stand-in's records of NVRTC calls (tools/cuda_stub.c)."""

    def __init__(self):
        lib = ctypes.CDLL("libcuda.so")
        for name in ("drt_src", "drt_log", "drt_ptx", "drt_header_name", "drt_header_src",
                     "drt_opt"):
            getattr(lib, name).restype = ctypes.c_char_p
        self.lib = lib
        self.seen = 0

    def new(self):
        """The records made since the last call, as dicts."""
        lib, out = self.lib, []
        for i in range(self.seen, lib.drt_count()):
            out.append(dict(
                source=(lib.drt_src(i) or b"").decode("utf-8", "replace"),
                headers=[(lib.drt_header_name(i, j) or b"").decode()
                         for j in range(lib.drt_nheaders(i))],
                header_sha256=[hashlib.sha256(lib.drt_header_src(i, j) or b"").hexdigest()
                               for j in range(lib.drt_nheaders(i))],
                options=[lib.drt_opt(i, j).decode() for j in range(lib.drt_nopts(i))],
                nvrtc_result=lib.drt_result(i), linked=bool(lib.drt_linked(i)),
                log=(lib.drt_log(i) or b"").decode("utf-8", "replace"),
                ptx=(lib.drt_ptx(i) or b"").decode("utf-8", "replace")))
        self.seen = lib.drt_count()
        return out

    def header(self, name="cluda.h"):
        lib = self.lib
        for i in range(lib.drt_count()):
            for j in range(lib.drt_nheaders(i)):
                if lib.drt_header_name(i, j) == name.encode():
                    return lib.drt_header_src(i, j)
        return None


def c_string(literal):
    """The bytes a C compiler makes of adjacent string literals (Theano writes kernel
    sources into its C code as literals; what libgpuarray receives is their value)."""
    out, i, n = bytearray(), 0, len(literal)
    simple = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11, "\\": 92,
              "'": 39, '"': 34, "?": 63}
    inside = False
    while i < n:
        ch = literal[i]
        if not inside:
            if ch == '"':
                inside = True
            elif not ch.isspace():
                break  # the end of the literals (e.g. the declaration's ";")
            i += 1
            continue
        if ch == '"':
            inside = False
            i += 1
        elif ch == "\\":
            nxt = literal[i + 1]
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
            elif nxt == "\n":  # a continued line
                i += 2
            elif nxt in "01234567":
                m = re.match(r"[0-7]{1,3}", literal[i + 1:])
                out.append(int(m.group(), 8) & 255)
                i += 1 + len(m.group())
            elif nxt == "x":
                m = re.match(r"[0-9a-fA-F]+", literal[i + 2:])
                out.append(int(m.group(), 16) & 255)
                i += 2 + len(m.group())
            else:  # unknown escape: compilers keep the character
                out.extend(nxt.encode())
                i += 2
        else:
            out.extend(ch.encode())
            i += 1
    return out.decode("utf-8")


def c_code_of(node, name):
    """The op's C code for ``node`` (support, init, code), for the KERNEL_CALLS check."""
    from theano.gof.utils import MethodNotDefined
    op, parts = node.op, []
    sub = {"fail": "FAIL;", "params": "PARAMS", "struct_id": 1}
    ins = ["IN%d" % i for i in range(len(node.inputs))]
    outs = ["OUT%d" % i for i in range(len(node.outputs))]
    calls = [lambda: op.c_support_code(), lambda: op.c_support_code_apply(node, name),
             lambda: op.c_support_code_struct(node, name),
             lambda: op.c_init_code_struct(node, name, sub),
             lambda: op.c_code(node, name, ins, outs, sub)]
    for call in calls:
        try:
            parts.append(call() or "")
        except (MethodNotDefined, AttributeError, NotImplementedError, TypeError):
            pass
    return "\n".join(p if isinstance(p, str) else "\n".join(p) for p in parts)


class Capture:
    def __init__(self, context):
        self.ctx = context
        self.rec = Recorder()
        self.units = {}     # key -> {"kind", "what", "records": [i...], "error"}
        self.records = []   # every NVRTC program, in order
        self.by_source = {}  # source -> record index
        self.nodes = []     # {"graph", "op", "units": [keys]}
        self._code = {}
        self.fresh = True

    def _collect(self, key, kind, what, build):
        if key in self.units:
            return key
        import pygpu
        unit = self.units[key] = dict(kind=kind, what=what, records=[], error=None)
        try:
            # a context of its own: libgpuarray caches kernels per context and would not
            # compile again a source that another unit compiled (each unit must see its own)
            build(pygpu.init("cuda0") if self.fresh else self.ctx)
        except Exception as e:  # noqa: BLE001  (a failed compile is a finding, reported)
            unit["error"] = "%s: %s" % (type(e).__name__, str(e).strip()[-4000:])
        for r in self.rec.new():
            if r["source"] not in self.by_source:  # the same program compiled again: once
                self.by_source[r["source"]] = len(self.records)
                self.records.append(r)
            index = self.by_source[r["source"]]
            if index not in unit["records"]:
                unit["records"].append(index)
        return key

    def kernel(self, op_name, k, source):
        """A ``GpuKernelBase`` kernel, as its C init code gives it to GpuKernel_init."""
        import pygpu
        flags = k._get_py_flags()
        types = list(k.params)
        key = ("kernel", k.name, source, tuple(sorted(flags.items())))

        def build(ctx):
            pygpu.gpuarray.GpuKernel(source, k.name, types, context=ctx, **flags)
        return self._collect(key, "kernel", "%s: %s" % (op_name, k.name), build)

    def elemwise(self, what, preamble, expr, args, nd):
        """``GpuElemwise_new(ctx, preamble, expr, n, args, nd, GE_CONVERT_F16)``;
        ``args``: (name, dtype, read, write)."""
        import pygpu.elemwise as ew
        key = ("elemwise", preamble, expr, tuple(args), nd)

        def build(ctx):
            ew.GpuElemwise(ctx, expr, [ew.arg(n, t, read=r, write=w) for n, t, r, w in args],
                           nd=nd, preamble=preamble, convert_f16=True)
        return self._collect(key, "elemwise", what, build)

    def copy(self, src, dst, nd):
        """libgpuarray's ga_extcopy kernels for (src, dst) dtypes at every rank <= nd."""
        return self.elemwise("libgpuarray copy %s->%s" % (src, dst), "", "dst = src",
                             [("src", src, True, False), ("dst", dst, False, True)], nd)

    def take1(self, dtype, itype, nd):
        """libgpuarray's take1 kernel (GpuArray_take1: rows of a ``nd``-d ``dtype`` array
        picked by an ``itype`` index vector); small arrays, so its 32-bit addressing
        variant (the 64-bit one differs only in the index type)."""
        import numpy as np
        import pygpu

        def build(ctx):
            v = pygpu.gpuarray.empty((3,) * nd, dtype=dtype, context=ctx)
            i = pygpu.gpuarray.array(np.array([0, 2], dtype=itype), context=ctx)
            v.take1(i)
        return self._collect(("take1", dtype, itype, nd), "take1",
                             "libgpuarray take1 %s[%s] %dd" % (dtype, itype, nd), build)

    def code(self, node, name):
        """``c_code_of``, once per op and input types."""
        key = (node.op, tuple(v.type for v in node.inputs))
        if key not in self._code:
            self._code[key] = c_code_of(node, name)
        return self._code[key]

    def node_units(self, node, name):
        """The kernels compiling ``node`` (a GPU Apply) would compile; their keys."""
        from theano.gpuarray.basic_ops import GpuKernelBase
        from theano.gpuarray.elemwise import GpuElemwise, as_C_string_const
        from theano.gpuarray.type import GpuArrayType
        op, opname, keys = node.op, type(node.op).__name__, []
        if isinstance(op, GpuKernelBase):
            for k in op.gpu_kernels(node, name):
                # static const char *NAME_unsigned = "...";  (Theano's C code)
                literal = op._generate_kernel_code(k)
                literal = literal[literal.index('"', literal.index("_unsigned =")):]
                keys.append(self.kernel(opname, k, c_string(literal)))
        if isinstance(op, GpuElemwise):
            inps, outs = op._get_vnames(node)
            support, kop = op._generate_op_string(node)
            args = [(n, i.type.dtype, True, False) for n, i in zip(inps, node.inputs)]
            for n, o in enumerate(node.outputs):
                if n in op.inplace_pattern:
                    j = op.inplace_pattern[n]
                    args[j] = args[j][:3] + (True,)
                else:
                    args.append((outs[n], o.type.dtype, False, True))
            keys.append(self.elemwise("GpuElemwise", c_string(as_C_string_const(support)),
                                      c_string(as_C_string_const(kop)), args,
                                      node.inputs[0].ndim))
        code = self.code(node, name)
        if '"a += b"' in code:  # the in-place add of GpuIncSubtensor and kin
            a, b = node.inputs[0], node.inputs[1]
            keys.append(self.elemwise("%s: a += b" % opname, "", "a += b",
                                      [("a", a.type.dtype, True, True),
                                       ("b", b.type.dtype, True, False)], b.ndim))
        gpu = [v for v in list(node.inputs) + list(node.outputs)
               if isinstance(v.type, GpuArrayType)]
        if "GpuArray_take1" in code:  # GpuAdvancedSubtensor1: libgpuarray's take1
            keys.append(self.take1(node.inputs[0].type.dtype, node.inputs[1].type.dtype,
                                   node.inputs[0].ndim))
        if opname in COPYING or any(c in code for c in COPY_CALLS):
            dtypes = sorted({v.type.dtype for v in gpu})
            nd = max([v.ndim for v in gpu] + [1])
            for src in dtypes:
                for dst in dtypes:
                    keys.append(self.copy(src, dst, nd))
        return keys, code

    def graph(self, label, functions):
        from theano.gpuarray.type import GpuArrayType
        for fn in functions:
            for i, node in enumerate(fn.maker.fgraph.toposort()):
                on_gpu = any(isinstance(v.type, GpuArrayType)
                             for v in list(node.inputs) + list(node.outputs))
                opname = type(node.op).__name__
                if not on_gpu:
                    continue
                name = "node_%d" % i
                try:
                    keys, code = self.node_units(node, name)
                    error = None
                except Exception as e:  # noqa: BLE001
                    keys, code, error = [], None, "%s: %s" % (type(e).__name__, e)
                calls = []
                if not keys:  # says which kernel-making calls its C code has, if any
                    code = code if code is not None else self.code(node, name)
                    calls = sorted({c for c in KERNEL_CALLS if c in code})
                self.nodes.append(dict(graph=label, op=opname, gpu_op=is_gpu_op(node.op),
                                       units=[self._key_id(k) for k in keys],
                                       error=error, kernel_calls=calls))

    def _key_id(self, key):
        return hashlib.sha1(repr(key).encode()).hexdigest()[:12]

    def result(self):
        units = {self._key_id(k): dict(u, key_kind=k[0]) for k, u in self.units.items()}
        return dict(records=self.records, units=units, nodes=self.nodes)


def _mapped(stem):
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if os.path.basename(path).startswith(stem + ".so"):
                return os.path.realpath(path)
    return None


def capture(out, graphs, extra):
    """In the child process (stand-in driver first on LD_LIBRARY_PATH, DEVICE=cuda)."""
    start = time.time()
    import models  # noqa: F401  (the project's Theano flags for DEVICE=cuda)
    from models import device
    device.require()  # the stand-in context, or one line why not
    import theano.gpuarray
    context = theano.gpuarray.type.get_context(None)
    if context.kind != b"cuda":
        raise SystemExit("cuda-compile: the context is %r, not CUDA" % context.kind)
    _no_linking()
    cap = Capture(context)
    # the kernels libgpuarray compiled for itself while the context started (cuBLAS)
    cap.fresh = False
    cap._collect(("libgpuarray-start",), "libgpuarray", "libgpuarray: context start",
                 lambda ctx: None)
    cap.fresh = True
    timings = {}
    for label in graphs:
        t = time.time()
        cap.graph(label, GRAPHS[label]())
        timings[label] = round(time.time() - t, 1)
    for path in extra:  # a kernel file (tests): "KERNEL void NAME(" names it
        source = Path(path).read_text()
        kname = re.search(r"KERNEL\s+void\s+(\w+)", source).group(1)
        import pygpu
        key = ("extra", path)

        def build(ctx, source=source, kname=kname):
            pygpu.gpuarray.GpuKernel(source, kname, [], context=ctx)
        cap._collect(key, "extra", "extra: %s" % path, build)
        cap.nodes.append(dict(graph="extra", op="extra:%s" % Path(path).name,
                              units=[cap._key_id(key)], error=None, kernel_calls=[],
                              gpu_op=False))
    result = cap.result()
    header = cap.rec.header()
    result.update(
        context=dict(kind=context.kind.decode(), bin_id=context.bin_id.decode(),
                     devname=context.devname),
        libgpuarray=_mapped("libgpuarray"), nvrtc=os.environ.get("DRT_NVRTC"),
        cluda_h=header.decode() if header is not None else None,
        seconds=dict(timings, total=round(time.time() - start, 1)))
    Path(out).write_text(json.dumps(result))


# ------------------------------------------------------------------ parent
def find_cuda(site=SITE):
    """(libnvrtc.so.13, ptxas) of the CUDA 13.0 wheels in ``site``."""
    lib = Path(site) / "nvidia" / "cu13" / "lib" / "libnvrtc.so.13"
    ptxas = Path(site) / "nvidia" / "cu13" / "bin" / "ptxas"
    missing = [str(p) for p in (lib, ptxas) if not p.exists()]
    if missing:
        raise SystemExit("cuda-compile: %s missing: run `make test-cuda-compile` (it installs "
                         "requirements-cuda-compile.txt into %s)" % (", ".join(missing), site))
    return lib, ptxas


def versions(nvrtc, ptxas):
    lib = ctypes.CDLL(str(nvrtc))
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    text = subprocess.run([str(ptxas), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"release (\d+)\.(\d+)", text)
    return (major.value, minor.value), (int(m.group(1)), int(m.group(2))) if m else None


def build_stub(folder):
    """libdrtstub.so from tools/cuda_stub.c, linked as libcuda.so, libcublas.so, libnvrtc.so."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lib = folder / "libdrtstub.so"
    if not lib.exists() or lib.stat().st_mtime < STUB_SOURCE.stat().st_mtime:
        tmp = folder / ("libdrtstub.so.%d" % os.getpid())
        subprocess.run([os.environ.get("CC", "gcc"), "-std=gnu11", "-O1", "-shared", "-fPIC",
                        "-Wall", "-o", str(tmp), str(STUB_SOURCE), "-ldl"], check=True)
        os.replace(tmp, lib)
    for name in ("libcuda.so", "libcublas.so", "libnvrtc.so"):
        link = folder / name
        if not link.is_symlink():
            if link.exists():
                link.unlink()
            link.symlink_to("libdrtstub.so")
    return folder


def child_env(stub, nvrtc, site, tmp):
    """The capture process's environment: the stand-in first, DEVICE=cuda, a kernel cache
    of its own (libgpuarray skips NVRTC for kernels in its disk cache)."""
    py = Path(tmp) / "py"
    py.mkdir(exist_ok=True)
    if not (py / "pygpu").exists():
        (py / "pygpu").symlink_to(PYGPU)
    env = dict(os.environ, DEVICE="cuda", DRT_NVRTC=str(nvrtc))
    env.pop("THEANO_GPU_IS_ALREADY_ACTIVE", None)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        [str(stub), str(Path(nvrtc).parent)] + ([os.environ["LD_LIBRARY_PATH"]]
                                                 if os.environ.get("LD_LIBRARY_PATH") else []))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(site), str(py)] + (
        [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    # after the project's flags (models.compat appends the user's); never a GPU's cache
    user = os.environ.get("THEANO_FLAGS", "")
    if user and user == os.environ.get("DRT_THEANO_FLAGS"):  # set by models.compat here
        user = os.environ.get("DRT_USER_THEANO_FLAGS", "")
    env["THEANO_FLAGS"] = ",".join(
        [f for f in [user, "gpuarray.cache_path=%s" % (Path(tmp) / "kernels")] if f])
    env.pop("DRT_THEANO_FLAGS", None)
    env.pop("DRT_USER_THEANO_FLAGS", None)
    return env


PTXAS_FUNC = re.compile(r"Compiling entry function '([^']+)' for '(\w+)'")
PTXAS_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, "
                         r"(\d+) bytes spill loads")
PTXAS_USED = re.compile(r"Used (\d+) registers(.*)")


def ptxas_info(text):
    """Per entry function: registers, shared memory, stack, spill stores and loads."""
    out, current = [], None
    for line in text.splitlines():
        m = PTXAS_FUNC.search(line)
        if m:
            current = dict(name=m.group(1), arch=m.group(2), registers=None, smem=0, stack=0,
                           spill_stores=0, spill_loads=0)
            out.append(current)
            continue
        if current is None:
            continue
        m = PTXAS_FRAME.search(line)
        if m:
            current.update(stack=int(m.group(1)), spill_stores=int(m.group(2)),
                           spill_loads=int(m.group(3)))
        m = PTXAS_USED.search(line)
        if m:
            current["registers"] = int(m.group(1))
            smem = re.search(r"(\d+) bytes smem", m.group(2))
            current["smem"] = int(smem.group(1)) if smem else 0
    return out


def assemble(ptxas, ptx, folder):
    """``ptxas -arch=sm_90 -v`` of one PTX text: (returncode, output, per-function info)."""
    digest = hashlib.sha1(ptx.encode()).hexdigest()[:16]
    src = Path(folder) / (digest + ".ptx")
    src.write_text(ptx)
    proc = subprocess.run([str(ptxas), "-arch=%s" % ARCH, "-v", "-o", os.devnull, str(src)],
                          capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    return proc.returncode, text, ptxas_info(text)


def report(data, results, out=sys.stdout):
    """Print the table and the summary; return the list of failures."""
    failures = []
    units, records = data["units"], data["records"]
    users = {}  # record index -> op classes
    unit_ops = {}
    for node in data["nodes"]:
        for u in node["units"]:
            unit_ops.setdefault(u, set()).add(node["op"])
    origin = {}  # record index -> what first asked for it
    for uid, unit in units.items():
        for r in unit["records"]:
            users.setdefault(r, set()).update(unit_ops.get(uid, {unit["what"].split(":")[0]}))
            origin.setdefault(r, unit["what"])
        if unit["error"] and all(records[r]["nvrtc_result"] == 0 for r in unit["records"]):
            failures.append("%s: %s" % (unit["what"], unit["error"]))  # not NVRTC's (below)
    fmt = "%5s %-30s %4s %6s %5s %7s %7s  %s"
    print(fmt % ("#", "kernel", "regs", "smem", "stack", "spill-s", "spill-l",
                 "source (op classes using it)"), file=out)
    entries = 0
    for i, rec in enumerate(records):
        names = sorted(users.get(i, {"?"}))
        head = origin.get(i, "?").split(": ")[0]
        ops = head if names == [head] else "%s (%s)" % (head, ", ".join(names) if len(names) <= 2
                                                        else "%s, ... %d in all" % (
                                                            ", ".join(names[:2]), len(names)))
        if rec["nvrtc_result"] != 0:
            failures.append("NVRTC failed (%d) for a kernel of %s:\n%s" % (
                rec["nvrtc_result"], ops, rec["log"].strip()[-3000:]))
            print(fmt % (i, "(NVRTC failed)", "-", "-", "-", "-", "-", ops), file=out)
            continue
        if not rec["linked"]:
            failures.append("kernel %d of %s: its PTX never reached the driver" % (i, ops))
        rc, text, info = results[i]
        if rc != 0 or not info:
            failures.append("ptxas failed for kernel %d of %s:\n%s" % (i, ops, text[-3000:]))
            print(fmt % (i, "(ptxas failed)", "-", "-", "-", "-", "-", ops), file=out)
            continue
        for f in info:
            entries += 1
            print(fmt % (i, f["name"][:30], f["registers"], f["smem"], f["stack"],
                         f["spill_stores"], f["spill_loads"], ops), file=out)
    # completeness: every GPU op class of the graphs has a kernel, or compiles none
    by_op = {}
    for node in data["nodes"]:
        entry = by_op.setdefault(node["op"], dict(kernels=set(), nodes=0, calls=set(),
                                                  errors=[], gpu_op=node["gpu_op"]))
        entry["nodes"] += 1
        for u in node["units"]:
            entry["kernels"].update(units[u]["records"])
        entry["calls"].update(node["kernel_calls"])
        if node["error"]:
            entry["errors"].append(node["error"])
    for op, entry in sorted(by_op.items()):
        for e in entry["errors"][:1]:
            failures.append("%s: %s" % (op, e))
        if not entry["kernels"] and (entry["calls"] or (entry["gpu_op"] and op not in NO_KERNEL)):
            failures.append("%s: no kernel captured%s" % (op, (
                " although its C code calls %s" % ", ".join(sorted(entry["calls"])))
                if entry["calls"] else " and it is not in NO_KERNEL"))
    return failures, entries, by_op


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", default=",".join(GRAPHS),
                        help="comma-separated, of %s; 'none' for none" % ", ".join(GRAPHS))
    parser.add_argument("--kernel", action="append", default=[],
                        help="also compile this kernel source file (cluda dialect)")
    parser.add_argument("--json", help="write the captures and results here")
    parser.add_argument("--site", default=str(SITE), help="where the CUDA 13.0 wheels are")
    parser.add_argument("--capture", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    graphs = [g for g in args.graphs.split(",") if g and g != "none"]
    unknown = [g for g in graphs if g not in GRAPHS]
    if unknown:
        parser.error("unknown graphs: %s" % ", ".join(unknown))
    if args.capture:
        return capture(args.capture, graphs, args.kernel)

    start = time.time()
    if not PYGPU.is_dir() or not Path("/usr/lib/libgpuarray.so.3").exists():
        raise SystemExit("cuda-compile: Debian's python3-pygpu and libgpuarray3 (0.7.6) are "
                         "needed: apt-get install python3-pygpu libgpuarray3 libgpuarray-dev")
    nvrtc, ptxas = find_cuda(args.site)
    nvrtc_version, ptxas_version = versions(nvrtc, ptxas)
    if nvrtc_version != CUDA_VERSION or ptxas_version != CUDA_VERSION:
        raise SystemExit("cuda-compile: NVRTC %s and ptxas %s, not CUDA %d.%d: reinstall "
                         "requirements-cuda-compile.txt" % (nvrtc_version, ptxas_version,
                                                            *CUDA_VERSION))
    stub = build_stub(WORK / "stub")
    with tempfile.TemporaryDirectory(prefix="cuda-compile-") as tmp:
        out = Path(tmp) / "capture.json"
        cmd = [sys.executable, "-m", "tools.cuda_compile", "--capture", str(out),
               "--graphs", ",".join(graphs) or "none"] + sum(
                   [["--kernel", str(Path(k).resolve())] for k in args.kernel], [])
        proc = subprocess.run(cmd, cwd=str(ROOT), env=child_env(stub, nvrtc, args.site, tmp))
        if proc.returncode != 0 or not out.exists():
            print("cuda-compile: FAILED: the capture process exited %d" % proc.returncode)
            return 1
        data = json.loads(out.read_text())
        ptx_dir = Path(tmp) / "ptx"
        ptx_dir.mkdir()
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            futures = {i: pool.submit(assemble, ptxas, r["ptx"], ptx_dir)
                       for i, r in enumerate(data["records"]) if r["nvrtc_result"] == 0}
            results = {i: f.result() for i, f in futures.items()}
    failures, entries, by_op = report(data, results)
    info = [f for i in sorted(results) for f in results[i][2]]
    data.update(results={str(i): dict(returncode=r[0], output=r[1], functions=r[2])
                         for i, r in results.items()},
                failures=failures, nvrtc_version=nvrtc_version, ptxas_version=ptxas_version,
                seconds=dict(data["seconds"], all=round(time.time() - start, 1)))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=1, default=sorted))
    print()
    print("op classes of graphs %s (nodes/kernels): %s" % (", ".join(graphs) or "none", ", ".join(
        "%s %d/%d" % (op, e["nodes"], len(e["kernels"])) if e["kernels"] else "%s %d/0 (%s)" % (
            op, e["nodes"],
            NO_KERNEL.get(op, "no kernel" if not e["gpu_op"] else "?"))
        for op, e in sorted(by_op.items()))))
    if info:
        top_r = max(info, key=lambda f: f["registers"] or 0)
        top_s = max(info, key=lambda f: f["smem"])
        spills = [f for f in info if f["spill_stores"] or f["spill_loads"]]
        print("largest: %d registers (%s), %d bytes shared memory (%s); %d kernels spill%s" % (
            top_r["registers"], top_r["name"], top_s["smem"], top_s["name"], len(spills),
            (": " + ", ".join("%s %d/%d" % (f["name"], f["spill_stores"], f["spill_loads"])
                              for f in spills[:5])) if spills else ""))
    warned = {}
    for r in data["records"]:
        for line in r["log"].splitlines():
            m = re.search(r"warning #[\w-]+: (.*)", line)
            if m and r["nvrtc_result"] == 0:
                warned[m.group(1)] = warned.get(m.group(1), 0) + 1
    if warned:
        print("NVRTC warnings: %s" % "; ".join("%s (%d)" % w for w in sorted(warned.items())))
    for f in failures:
        print("FAILED: " + f)
    ok = len(data["records"]) - sum(1 for i, r in enumerate(data["records"])
                                    if r["nvrtc_result"] != 0 or results[i][0] != 0)
    print("cuda-compile: %d of %d kernels (%d functions) compiled by NVRTC %d.%d for "
          "compute_90 and ptxas %d.%d for %s, libgpuarray's cluda.h and options; %d "
          "failures; %.0f s" % (ok, len(data["records"]), entries, *nvrtc_version,
                               *ptxas_version, ARCH, len(failures), time.time() - start))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
