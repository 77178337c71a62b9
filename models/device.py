"""The device every Theano function of the project runs on: ``DEVICE=cpu|cuda|cudaN``
(or ``openclP:D``: the same gpuarray path on OpenCL, e.g. POCL on a CPU, for tests).

``DEVICE`` (environment; the Makefile exports its variable) is read by
``models.compat`` before Theano is imported: ``cuda`` gives Theano's
``gpuarray`` back end with cuDNN off (Theano 1.0.5 cannot use cuDNN >= 8), so
convolutions are GpuCorrMM, max pooling ``models.caffe_ops_gpu``'s kernels.
Theano falls back to the CPU silently when the GPU cannot be initialised; here
it never does:
``require()`` stops with one line naming the missing piece, and
``function()`` (the project's only way to compile) also refuses a compiled
graph that still runs convolutions, pooling or BLAS on the CPU.
"""
import ctypes
import logging
import os
import re

#: CPU ops that must not be in a graph compiled for the GPU (the heavy ones)
CPU_HEAVY_OPS = {"CorrMM", "CorrMM_gradInputs", "CorrMM_gradWeights", "AbstractConv2d",
                 "AbstractConv2d_gradInputs", "AbstractConv2d_gradWeights", "Pool",
                 "MaxPoolGrad", "AveragePoolGrad", "CaffeMaxPool", "CaffeMaxPoolGrad",
                 "Dot22", "Dot22Scalar", "Gemm", "CGemv", "CGer"}


class DeviceError(RuntimeError):
    """The device asked for cannot be used; the message is one line."""


def asked():
    """``cpu``, ``cuda``, ``cudaN`` or ``openclP:D`` from ``$DEVICE`` (default cpu)."""
    device = os.environ.get("DEVICE", "").strip() or "cpu"
    if not (device in ("cpu", "cuda") or re.fullmatch(r"cuda\d+|opencl\d+:\d+", device)):
        raise DeviceError("DEVICE=%s: expected cpu, cuda, cudaN or openclP:D" % device)
    return device


def gpu_started():
    """Whether Theano's gpuarray back end is running (DEVICE asks for it and it started)."""
    try:
        if not on_gpu():
            return False
    except DeviceError:
        return False
    import theano.gpuarray
    return bool(theano.gpuarray.pygpu_activated)


def on_gpu():
    """Whether Theano's gpuarray back end runs the functions (CUDA, or OpenCL: the
    same graph and kernels, which lets a machine without a GPU test them on POCL)."""
    return asked() != "cpu"


def _load(name):
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def _driver_cuda(cuda):
    """(major, minor) of the CUDA version the driver library ``cuda`` supports."""
    v = ctypes.c_int()
    cuda.cuDriverGetVersion(ctypes.byref(v))
    return v.value // 1000, (v.value % 1000) // 10


def _nvrtc_version(nvrtc):
    major, minor = ctypes.c_int(), ctypes.c_int()
    nvrtc.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return major.value, minor.value


def diagnose():
    """Why the gpuarray back end cannot work here, as one line; None if every piece is there.

    Checks, in order: pygpu; for CUDA the driver's libcuda (and its unversioned
    link), a GPU, NVRTC (not newer than the driver), cuBLAS; for OpenCL its
    loader and CLBlast.
    """
    install = "make install DEVICE=%s" % (asked() if on_gpu() else "cuda")
    try:
        import pygpu  # noqa: F401
    except ImportError as e:
        return "pygpu is not importable (%s): run `%s` (Debian's python3-pygpu 0.7.6)" % (
            e, install)
    if asked().startswith("opencl"):
        for lib, package in (("libOpenCL.so", "ocl-icd-opencl-dev"),
                             ("libclblast.so", "libclblast-dev")):
            if _load(lib) is None:
                return "%s not found: run `%s` (Debian's %s)" % (lib, install, package)
        return None
    cuda = _load("libcuda.so")
    if cuda is None:
        if _load("libcuda.so.1") is not None:
            return ("libcuda.so is not on LD_LIBRARY_PATH although the driver's libcuda.so.1 is "
                    "here: run through make (DEVICE=cuda links it via models/cudalibs.py)")
        return ("no NVIDIA driver: libcuda.so.1 not found (install the driver, or run on a GPU "
                "machine)")
    status = cuda.cuInit(0)
    if status != 0:
        return ("the NVIDIA driver found no usable GPU (cuInit error %d; check nvidia-smi and "
                "CUDA_VISIBLE_DEVICES)" % status)
    count = ctypes.c_int()
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return "no CUDA device visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
    driver = _driver_cuda(cuda)
    nvrtc = _load("libnvrtc.so")
    if nvrtc is None:
        return ("libnvrtc.so not found: install NVRTC (a CUDA toolkit, or pip's "
                "nvidia-cuda-nvrtc in any Python here; DRT_CUDA_LIBS=dir names a folder), "
                "then run through make")
    if _nvrtc_version(nvrtc) > driver:
        return ("NVRTC %d.%d is newer than the driver's CUDA %d.%d: its PTX would be refused "
                "(CUDA_ERROR_UNSUPPORTED_PTX_VERSION); use an NVRTC <= %d.%d (DRT_CUDA_LIBS=dir) "
                "or update the driver" % (_nvrtc_version(nvrtc) + driver + driver))
    if _load("libcublas.so") is None:
        return ("libcublas.so not found: install cuBLAS (a CUDA toolkit, or pip's "
                "nvidia-cublas; DRT_CUDA_LIBS=dir names a folder), then run through make")
    return None


class _Kept(logging.Handler):
    """Keeps the records of a logger instead of printing them."""

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


_GPU_LOG = _Kept()


def keeping_gpu_init_log(start):
    """Run ``start`` (what imports Theano), keeping the records of
    ``theano.gpuarray`` instead of printing them: Theano logs a failed GPU
    start as an error with a traceback."""
    logger = logging.getLogger("theano.gpuarray")
    logger.addHandler(_GPU_LOG)
    logger.propagate = False
    try:
        start()
    finally:
        logger.removeHandler(_GPU_LOG)
        logger.propagate = True


def gpu_init_error():
    """The last line of the exception of Theano's failed GPU start, or None."""
    for record in reversed(_GPU_LOG.records):
        if record.exc_info and record.exc_info[1] is not None:
            line = str(record.exc_info[1]).strip().splitlines()[-1]
            if line[:2] in ("b'", 'b"') and line[-1:] == line[1]:  # pygpu's bytes messages
                line = line[2:-1]
            return line
        if record.levelno >= logging.ERROR:
            return record.getMessage().splitlines()[0]
    return None


def require():
    """Raise DeviceError unless the device asked for is the one Theano runs on."""
    device = asked()
    import theano
    if device == "cpu":
        return
    import theano.gpuarray
    if theano.gpuarray.pygpu_activated:
        return
    problem = diagnose()
    if problem is None:
        problem = "Theano did not activate the GPU: %s" % (gpu_init_error()
                                                           or "no reason given")
    raise DeviceError("DEVICE=%s: %s" % (device, problem))


def check_compiled(fn, what):
    """Raise DeviceError when ``fn``, compiled for the GPU, runs heavy ops on the CPU."""
    if not on_gpu():
        return
    names = [type(node.op).__name__ for node in fn.maker.fgraph.apply_nodes]
    cpu = sorted({n for n in names if n in CPU_HEAVY_OPS})
    if cpu or not any(n.startswith("Gpu") for n in names):
        raise DeviceError("DEVICE=%s: the compiled %s still runs %s on the CPU"
                          % (asked(), what, ", ".join("%s x%d" % (n, names.count(n))
                                                      for n in cpu) or "everything"))


def function(inputs, outputs, what, **kwargs):
    """``theano.function`` on the device asked for, checked (see ``check_compiled``)."""
    import theano
    require()
    fn = theano.function(inputs, outputs, **kwargs)
    check_compiled(fn, what)
    return fn


def _loaded_path(stem):
    """The file of library ``stem`` this process has mapped (from /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if os.path.basename(path).startswith(stem + ".so"):
                    return path
    except OSError:
        pass
    return None


def describe():
    """What a reviewer needs to know of the device: for environment.json."""
    device = asked()
    info = {"device": device}
    if device == "cpu":
        return info
    import pygpu
    import theano.gpuarray
    info["pygpu"] = pygpu.__version__
    if theano.gpuarray.pygpu_activated:
        context = theano.gpuarray.type.get_context(None)
        info.update(gpu=context.devname, gpu_memory_mib=context.total_gmem // 2 ** 20)
    try:
        with open("/proc/driver/nvidia/version") as f:
            info["driver"] = f.readline().split("Kernel Module")[-1].split()[0]
    except (OSError, IndexError):
        pass
    cuda, nvrtc, cublas = _load("libcuda.so"), _load("libnvrtc.so"), _load("libcublas.so")
    try:
        if cuda is not None:
            info["driver_cuda"] = "%d.%d" % _driver_cuda(cuda)
        if nvrtc is not None:
            info["nvrtc"] = "%d.%d" % _nvrtc_version(nvrtc)
        if cublas is not None:
            parts = []
            for prop in range(3):  # MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
                value = ctypes.c_int()
                if cublas.cublasGetProperty(prop, ctypes.byref(value)) == 0:
                    parts.append(str(value.value))
            info["cublas"] = ".".join(parts)
    except AttributeError as e:  # a library without the symbol: record that, go on
        info["version_error"] = str(e)
    for stem in ("libcuda", "libnvrtc", "libcublas", "libgpuarray"):
        path = _loaded_path(stem)
        if path:
            info[stem + "_path"] = os.path.realpath(path)
    return info

