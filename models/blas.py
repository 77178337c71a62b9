"""The CPU's BLAS kernels: never generic on a capable CPU, never wrong.

OpenBLAS (built with DYNAMIC_ARCH, as Debian's and NumPy's are) picks its
kernels once, when it loads, by the CPU's model number. A CPU newer than the
build gets generic SSE kernels, several times slower: Debian 12's 0.3.21 takes
Intel's Emerald Rapids for ``Prescott``, NumPy 1.23.5's bundled 0.3.20 takes
AMD's Zen 5 for ``Barcelona``. A kernel forced by hand can compute wrong
numbers on a CPU it was not written for (0.3.20's ``Cooperlake`` DGEMM on Zen
5). ``OPENBLAS_CORETYPE`` in the environment chooses the kernels of every
OpenBLAS that loads after it is set: Theano's (``-lopenblas``) and NumPy's
read the same variable, so one value must suit both.

``ensure()``, called by ``models.compat`` before NumPy or Theano loads a BLAS:

1. the CPU's instruction level from ``/proc/cpuinfo``: avx512, avx2, avx, sse;
2. ``OPENBLAS_CORETYPE`` set by the user is kept (probed and recorded; one
   warning line if it is generic or inexact on this CPU);
3. otherwise the libraries' own choice is probed in a child process: kept
   when every library runs kernels of the CPU's level that pass an exact
   integer GEMM check; else each candidate of ``CANDIDATES`` for the level is
   probed and the first that passes is set in ``os.environ`` (children
   inherit it);
4. none passes: one warning line naming the CPU and the kernel.

The outcome is cached per CPU, library files and user setting
(``$DRT_CACHE/blas/``), so a warm start reads one small file. Standard library
only at import: ``python models/blas.py`` prints the outcome as JSON;
``--probe`` is the child's side.
"""
import ctypes
import ctypes.util
import glob
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

CACHE_DIR = Path(os.environ.get("DRT_CACHE", Path.home() / ".cache" / "dr-transfer")) / "blas"

#: instruction levels, lowest first, and the /proc/cpuinfo flags each needs
LEVELS = ("sse", "avx", "avx2", "avx512")
LEVEL_FLAGS = {"avx": {"avx"}, "avx2": {"avx", "avx2", "fma"},
               "avx512": {"avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl",
                          "avx512cd"}}
#: OpenBLAS kernel names by the level they need; names not listed are taken to be of
#: the CPU's level (a build newer than this list names cores it does not know)
KERNEL_LEVEL = dict(
    [(k, "avx512") for k in ("SkylakeX", "Cooperlake", "SapphireRapids")]
    + [(k, "avx2") for k in ("Haswell", "Zen")]
    + [(k, "avx") for k in ("SandyBridge", "Bulldozer", "Piledriver", "Steamroller",
                            "Excavator")]
    + [(k, "sse") for k in ("Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
                            "Barcelona", "Opteron", "Opteron_SSE3", "Bobcat", "Katmai",
                            "Coppermine", "Northwood", "Banias", "Athlon", "Nano", "Unknown")])
#: what to force, best first, when the libraries' own choice is below the CPU's level
#: (measured on Zen 5: SkylakeX 286 GFLOP/s at the network's GEMM shapes, Haswell 196)
CANDIDATES = {"avx512": ("SkylakeX", "Haswell"), "avx2": ("Haswell",), "avx": ("SandyBridge",)}


def cpu_fields(cpuinfo="/proc/cpuinfo"):
    """{key: value} of the first processor's block of ``cpuinfo``; {} where unreadable."""
    fields = {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu(cpuinfo="/proc/cpuinfo"):
    """{"model": name, "flags": set} of the first processor; empty where unreadable."""
    fields = cpu_fields(cpuinfo)
    return {"model": fields.get("model name", "unknown CPU"),
            "flags": set(fields.get("flags", "").split())}


def cpu_level(flags):
    """The highest of ``LEVELS`` whose flags are all in ``flags``."""
    best = "sse"
    for level in LEVELS[1:]:
        if LEVEL_FLAGS[level] <= set(flags):
            best = level
    return best


def kernel_level(kernel, cpu_lvl):
    return KERNEL_LEVEL.get(kernel, cpu_lvl)


def libraries():
    """Paths of the OpenBLAS libraries this project's processes load: Theano's
    (``-lopenblas``) and those bundled with NumPy and SciPy, found without
    importing them."""
    paths = []
    name = ctypes.util.find_library("openblas")
    if name:
        paths.append(name)
    for package in ("numpy", "scipy"):
        spec = importlib.util.find_spec(package)
        if spec and spec.origin:
            libs = os.path.join(os.path.dirname(os.path.dirname(spec.origin)),
                                package + ".libs")
            paths += sorted(glob.glob(os.path.join(libs, "lib*openblas*.so*")))
    return paths


def _file_key(path):
    """What identifies a library file: its real path, size and modification time (a
    bare name from find_library is resolved through ldconfig's cache)."""
    if not os.path.isabs(path):
        try:
            listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                                     timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        for line in listing.splitlines():
            if line.strip().startswith(path + " ") and "=>" in line:
                path = line.split("=>", 1)[1].strip()
                break
    try:
        st = os.stat(path)
        return "%s:%d:%d" % (os.path.realpath(path), st.st_size, int(st.st_mtime))
    except OSError:
        return path


# ---- the child process's side: load the libraries, report and check their kernels

#: how the libraries name their symbols: (prefix, suffix); "64_" marks 64-bit integers
SYMBOLS = (("", ""), ("", "64_"), ("scipy_", ""), ("scipy_", "64_"))


def _gemm_exact(lib, prefix, suffix, np):
    """Whether this library's sgemm and dgemm give exact products of small-integer
    matrices (exact in floating point) at shapes that reach its edge kernels."""
    integer = ctypes.c_int64 if suffix else ctypes.c_int
    for dtype, name, ctype in ((np.float32, "sgemm", ctypes.c_float),
                               (np.float64, "dgemm", ctypes.c_double)):
        gemm = getattr(lib, prefix + "cblas_" + name + suffix)
        rng = np.random.RandomState(0)
        for m, n, k in ((128, 128, 128), (67, 201, 143), (200, 200, 200)):
            a = rng.randint(-2, 3, (m, k)).astype(dtype)
            b = rng.randint(-2, 3, (k, n)).astype(dtype)
            c = np.zeros((m, n), dtype)
            ptr = ctypes.POINTER(ctype)
            gemm(101, 111, 111, integer(m), integer(n), integer(k), ctype(1.0),
                 a.ctypes.data_as(ptr), integer(k), b.ctypes.data_as(ptr), integer(n),
                 ctype(0.0), c.ctypes.data_as(ptr), integer(n))
            want = np.einsum("ij,jk->ik", a.astype(np.int64), b.astype(np.int64))
            if not np.array_equal(c, want):
                return False
    return True


def probe_here(paths):
    """[{path, version, kernel, exact}] for each OpenBLAS of ``paths``, loaded in this
    process (NumPy first: it brings the libraries its bundled OpenBLAS needs)."""
    import numpy as np
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            found.append({"path": path, "error": str(e)})
            continue
        for prefix, suffix in SYMBOLS:
            if hasattr(lib, prefix + "openblas_get_corename" + suffix):
                break
        else:
            found.append({"path": path, "error": "not OpenBLAS"})
            continue
        corename, config = (getattr(lib, prefix + fn + suffix)
                            for fn in ("openblas_get_corename", "openblas_get_config"))
        corename.restype = config.restype = ctypes.c_char_p
        config = config().decode()
        found.append({"path": path, "version": config.split()[1] if " " in config else config,
                      "kernel": corename().decode(),
                      "exact": _gemm_exact(lib, prefix, suffix, np)})
    return found


def probe(coretype, paths):
    """``probe_here`` in a child process whose OPENBLAS_CORETYPE is ``coretype``
    (None: unset); [] when the child fails."""
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--probe"] + paths,
                             env=env, capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout) if out.returncode == 0 else []
    except (OSError, subprocess.SubprocessError, ValueError):
        return []


# ---- the decision

def acceptable(found, level):
    """Whether every library probed runs exact kernels of ``level`` or above."""
    return bool(found) and all(
        "kernel" in lib and lib["exact"]
        and LEVELS.index(kernel_level(lib["kernel"], level)) >= LEVELS.index(level)
        for lib in found)


def choose(level, user_coretype, probe_fn):
    """The outcome for a CPU of ``level``: {"coretype", "set_by", "libraries", "warning"}.

    ``probe_fn(coretype)`` gives ``probe_here``'s answer for a core type (None:
    the libraries' own choice). The user's core type is kept; otherwise the own
    choice when every library runs exact kernels of the CPU's level, else the
    first of CANDIDATES[level] whose kernels every library runs, exactly.
    """
    if user_coretype:
        found = probe_fn(user_coretype)
        outcome = {"coretype": user_coretype, "set_by": "environment", "libraries": found}
        bad = [lib for lib in found if "kernel" in lib and (
            not lib["exact"] or (level in CANDIDATES and kernel_level(lib["kernel"], level)
                                 == "sse"))]
        if bad:
            outcome["warning"] = "OPENBLAS_CORETYPE=%s gives %s %s kernels, %s" % (
                user_coretype, os.path.basename(bad[0]["path"]), bad[0]["kernel"],
                "several times slower" if bad[0]["exact"] else "which compute wrong products")
        return outcome
    tried = []
    for coretype in (None,) + CANDIDATES.get(level, ()):
        found = probe_fn(coretype)
        tried.append(found)
        if acceptable(found, kernel_level(coretype, level) if coretype else level) \
                or level not in CANDIDATES:
            return {"coretype": coretype, "set_by": "project" if coretype else "library",
                    "libraries": found}
    own = tried[0]
    slow = [lib for lib in own if "kernel" in lib] or [{"path": "OpenBLAS", "kernel": "?"}]
    return {"coretype": None, "set_by": "library", "libraries": own,
            "warning": "%s runs its %s kernels, several times slower (no core type of %s "
                       "passed the check)" % (os.path.basename(slow[0]["path"]), slow[0]["kernel"],
                                              "/".join(CANDIDATES[level]))}


def outcome(cpuinfo="/proc/cpuinfo"):
    """The cached (or newly probed) outcome for this CPU, libraries and user setting,
    with the CPU's model and level added."""
    info = cpu(cpuinfo)
    level = cpu_level(info["flags"])
    user = os.environ.get("OPENBLAS_CORETYPE", "").strip() or None
    paths = libraries()
    key = hashlib.sha1(json.dumps([info["model"], sorted(info["flags"]), user,
                                   [_file_key(p) for p in paths]]).encode()).hexdigest()[:16]
    cached = CACHE_DIR / ("%s.json" % key)
    try:
        result = json.loads(cached.read_text())
    except (OSError, ValueError):
        result = None
    if result is None:
        result = choose(level, user, lambda coretype: probe(coretype, paths))
        result.update(cpu=info["model"], level=level)
        if result["libraries"]:  # a failed child is not remembered
            try:
                CACHE_DIR.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".%d.tmp" % os.getpid())
                tmp.write_text(json.dumps(result, indent=1))
                os.replace(tmp, cached)
            except OSError:
                pass
    return result


_OUTCOME = None


def ensure():
    """Make this process's (and its children's) OpenBLAS kernels the right ones for
    this CPU, before any BLAS loads; one warning line on stderr where they cannot
    be. Returns the outcome (also kept for ``describe``)."""
    global _OUTCOME
    if _OUTCOME is not None:
        return _OUTCOME
    if not sys.platform.startswith("linux"):
        _OUTCOME = {"set_by": "library", "libraries": [], "note": "not probed off Linux"}
        return _OUTCOME
    result = outcome()
    if result["set_by"] == "project":
        os.environ["OPENBLAS_CORETYPE"] = result["coretype"]
    if "warning" in result:
        print("warning: BLAS: %s on this %s (%s); see README, \"CPU speed\"" % (
            result["warning"], result["cpu"], result["level"]), file=sys.stderr)
    if "numpy" in sys.modules and result["set_by"] == "project":
        result = dict(result, note="NumPy was imported before models: its BLAS kept its "
                                   "own kernels")
    _OUTCOME = result
    return result


def describe():
    """For environment.json and ``make bench``: CPU, level, core type and who set it,
    and each library's path, version, kernel and check."""
    return ensure()


def summary_line(result):
    """One line per library: ``blas=<file> version=<v> kernel=<name> ...``."""
    lines = []
    for lib in result.get("libraries", []):
        lines.append("blas=%s version=%s kernel=%s exact=%s coretype=%s set_by=%s cpu=%s "
                     "level=%s" % (os.path.basename(lib["path"]), lib.get("version", "?"),
                                   lib.get("kernel", "?"), lib.get("exact", "?"),
                                   result.get("coretype") or "-", result.get("set_by"),
                                   json.dumps(result.get("cpu")), result.get("level")))
    return "\n".join(lines) or "blas=none kernel=none"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        print(json.dumps(probe_here(sys.argv[2:])))
    else:
        print(json.dumps(ensure(), indent=1))
