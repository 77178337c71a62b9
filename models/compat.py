"""Make the released Theano 1.0.5 and Lasagne 0.1 work together on today's Python.

Imported by ``models/__init__.py`` before anything imports Theano or Lasagne.
It does six things, each the smallest change that works (see README, "Stack"):

0. Makes the CPU's BLAS kernels the right ones for this CPU before NumPy or
   Theano loads a BLAS (``models.blas``).
1. Sets the project's Theano flags (float32, OpenBLAS, OpenMP, a persistent
   compile cache; with ``DEVICE=cuda`` the gpuarray back end without cuDNN,
   see ``models.device``) before Theano is imported; the user's own
   ``THEANO_FLAGS`` are appended after ours so that they win. Theano's own
   report of a failed GPU start is kept by ``models.device``, to be shown in
   one line instead of a traceback.
2. Registers ``theano.tensor.signal.downsample`` (removed in Theano 0.9,
   imported by Lasagne 0.1) as a thin alias of ``theano.tensor.signal.pool``.
3. Gives a cache version to compiled modules whose ops have an empty
   ``__props__``: Theano 1.0.5 takes ``()`` for "unversioned" and recompiles
   their C code in every process.
4. Makes Theano's compile cache safe for processes compiling side by side (folds
   trained with ``make -j2``): a cache entry's ``key.pkl`` is written to a temporary
   file and renamed into place, so that another process refreshing its cache never
   reads half of one; and a cache directory that such a refresh took for broken
   (empty, unreadable key, no module yet) is deleted only once it is an hour old,
   never while the process that is writing it is still at work. Theano 1.0.5 read
   the half-written key as a broken entry and deleted the other process's module
   (aesara-devs/aesara#858 describes the same race).
5. Nothing else: no Theano or Lasagne code is copied here.
"""
import ctypes.util
import os
import sys
import types
import warnings

from . import blas
from .device import DeviceError, asked, keeping_gpu_init_log

CACHE_DIR = blas.CACHE_DIR.parent  # $DRT_CACHE, or ~/.cache/dr-transfer


def project_theano_flags(have_openblas=None, device="cpu"):
    """Theano flags of the project, as a THEANO_FLAGS string.

    OpenMP is turned on only with a real BLAS: with an empty ``blas.ldflags``
    it makes Theano abort with a GIL error. On ``cuda``, cuDNN is off: Theano
    1.0.5 knows cuDNN 5-7 only, so convolutions are GpuCorrMM (cuBLAS).
    """
    if have_openblas is None:
        have_openblas = ctypes.util.find_library("openblas") is not None
    flags = ["device=%s" % device, "floatX=float32",
             "base_compiledir=%s" % (CACHE_DIR / "theano"),
             "allow_gc=False"]
    if have_openblas:
        flags += ["blas.ldflags=-lopenblas", "openmp=True"]
    else:
        flags += ["blas.ldflags="]
    if device != "cpu":
        flags += ["dnn.enabled=False", "gpuarray.preallocate=0"]
    if device.startswith("opencl"):  # this op's kernel declares local memory in a loop,
        # which OpenCL refuses: it stays on the host (a batch x classes array)
        flags += ["optimizer_excluding=local_gpua_crossentropysoftmaxargmax1hotwithbias"]
    return ",".join(flags)


def set_theano_flags():
    if "theano" in sys.modules:
        return  # too late to change anything; whoever imported it chose
    # A child process (a test, a bench step) inherits the THEANO_FLAGS set here; it
    # must build its own for its own DEVICE from the user's part alone, unless it was
    # given other flags.
    user = os.environ.get("THEANO_FLAGS", "")
    if user and user == os.environ.get("DRT_THEANO_FLAGS"):
        user = os.environ.get("DRT_USER_THEANO_FLAGS", "")
    try:
        device = asked()
    except DeviceError:
        device = "cpu"  # models.device.require() reports it
    ours = project_theano_flags(device=device)
    os.environ["THEANO_FLAGS"] = ours + ("," + user if user else "")
    os.environ["DRT_THEANO_FLAGS"], os.environ["DRT_USER_THEANO_FLAGS"] = (
        os.environ["THEANO_FLAGS"], user)
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))


def register_downsample_alias():
    """``theano.tensor.signal.downsample.max_pool_2d`` as Lasagne 0.1 calls it."""
    import theano.tensor.signal
    from theano.tensor.signal import pool

    def max_pool_2d(input, ds, ignore_border=None, st=None, padding=(0, 0),
                    mode="max"):
        return pool.pool_2d(input, ws=ds, ignore_border=ignore_border,
                            stride=st, pad=padding, mode=mode)

    module = types.ModuleType("theano.tensor.signal.downsample")
    module.max_pool_2d = max_pool_2d
    sys.modules[module.__name__] = module
    theano.tensor.signal.downsample = module


def version_empty_props_ops():
    """Cache compiled modules whose only "unversioned" marks are empty ``__props__``.

    Theano 1.0.5's ``CLinker.cmodule_key_`` puts each op's ``__props__`` into
    the version tuple and treats any empty entry as "unversioned". Ops such as
    Alloc or Dot22 have ``__props__ == ()`` yet a real C code cache version.
    When the original key comes back unversioned, we rebuild the version from
    the ops' and types' own cache versions and keep it unversioned only if one
    of those is really missing.
    """
    from theano.gof.cc import CLinker
    original = CLinker.cmodule_key_
    if getattr(original, "_drt_patched", False):
        return

    def cmodule_key_(self, fgraph, *args, **kwargs):
        key = original(self, fgraph, *args, **kwargs)
        if key is None or key[0]:
            return key
        version = [("drt-empty-props", 1)]
        for node in fgraph.toposort():
            if hasattr(node.op, "c_code_cache_version_apply"):
                version.append(node.op.c_code_cache_version_apply(node))
            for var in list(node.inputs) + list(node.outputs):
                version.append(var.type.c_code_cache_version())
        if not all(version):
            return key
        return tuple(version), key[1]

    cmodule_key_._drt_patched = True
    CLinker.cmodule_key_ = cmodule_key_


#: the reasons Theano's cache refresh gives for deleting an entry that may only be
#: another process's entry in the making; such an entry is left alone this long
IN_THE_MAKING = ("broken cache directory [EOF]", "empty dir", "missing module file",
                 "broken cache directory")
YOUNG_SECONDS = 3600


def protect_cache_entries_in_the_making():
    """Atomic ``key.pkl`` writes and no deletion of young entries (point 4 above)."""
    import pickle
    import time
    from theano.gof import cmodule
    if getattr(cmodule._rmtree, "_drt_patched", False):
        return
    original_rmtree = cmodule._rmtree

    def _rmtree(parent, *args, **kwargs):
        msg = kwargs.get("msg", args[1] if len(args) > 1 else "")
        try:
            young = time.time() - os.stat(parent).st_mtime < YOUNG_SECONDS
        except OSError:
            young = False
        if msg in IN_THE_MAKING and young:
            return  # perhaps another process's entry in the making: a later refresh decides
        return original_rmtree(parent, *args, **kwargs)

    def save_pkl(self):
        tmp = "%s.%d.tmp" % (self.key_pkl, os.getpid())
        try:
            with open(tmp, "wb") as f:
                pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.key_pkl)
        except pickle.PicklingError:
            warnings.warn("Theano cache leak: key data that cannot be pickled")
            for path in (tmp, self.key_pkl):
                if os.path.exists(path):
                    os.remove(path)

    _rmtree._drt_patched = True
    cmodule._rmtree = _rmtree
    cmodule.KeyData.save_pkl = save_pkl


def install():
    # Lasagne 0.1 imports pkg_resources, which setuptools warns about on every run.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    blas.ensure()
    set_theano_flags()
    keeping_gpu_init_log(register_downsample_alias)
    version_empty_props_ops()
    protect_cache_entries_in_the_making()
