"""A folder of the unversioned CUDA library names libgpuarray ``dlopen``s.

libgpuarray 0.7.6 loads ``libcuda.so``, ``libnvrtc.so`` and ``libcublas.so`` by
those exact names, which drivers, CUDA toolkits and the ``nvidia-*`` pip wheels
do not install (they ship ``libcuda.so.1``, ``libnvrtc.so.13``...). This makes
links with those names in a cache folder from what the machine has, without
root and without touching the system, and prints the folder: the Makefile puts
it first on ``LD_LIBRARY_PATH`` before Python starts (``DEVICE=cuda``).

Where each library is looked for, first found wins:
  libcuda: the driver's ``libcuda.so.1`` (ldconfig, then the usual driver
    folders); never a toolkit's ``stubs/libcuda.so``.
  libnvrtc, libcublas: ``$DRT_CUDA_LIBS`` (a folder), ``$CUDA_HOME``/``$CUDA_PATH``,
    ``/usr/local/cuda*/lib64``, ldconfig, then the ``nvidia`` wheels in the
    site-packages of any Python on the machine. Of several NVRTCs, the newest
    that is not newer than the driver is taken (a newer one builds PTX the
    driver refuses).
The siblings each library loads itself (``libnvrtc-builtins``, ``libcublasLt``)
are linked too. Standard library only: it runs under any python3.

    python3 models/cudalibs.py [-v] DIR   # prints DIR; -v: what is missing, on stderr
"""
import ctypes
import glob
import os
import re
import subprocess
import sys

DRIVER_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/nvidia/lib64",
               "/usr/lib/wsl/lib", "/run/opengl-driver/lib"]
SITE_GLOBS = ["/usr/lib/python3*/site-packages", "/usr/lib/python3*/dist-packages",
              "/usr/local/lib/python3*/site-packages", "/usr/local/lib/python3*/dist-packages",
              "/opt/*/lib/python3*/site-packages", "/opt/*/*/lib/python3*/site-packages",
              os.path.expanduser("~/.local/lib/python3*/site-packages"),
              os.path.expanduser("~/*/lib/python3*/site-packages"),
              os.path.expanduser("~/.pyenv/versions/*/lib/python3*/site-packages"),
              os.path.expanduser("~/.pyenv/versions/*/envs/*/lib/python3*/site-packages")]
#: the library, and the siblings it loads by itself
WANTED = {"libnvrtc": ("libnvrtc-builtins",), "libcublas": ("libcublasLt",)}


def version_of(path):
    """(major, minor) from a file name such as libnvrtc.so.13.0.48 (minor 0 if absent)."""
    m = re.search(r"\.so\.(\d+)(?:\.(\d+))?", os.path.basename(path))
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)


def ldconfig_paths(stem):
    """The x86-64 libraries ``stem.so.*`` that ldconfig's cache lists."""
    out = ""
    for ldconfig in ("ldconfig", "/sbin/ldconfig"):
        try:
            out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True,
                                 timeout=20).stdout
            break
        except (OSError, subprocess.SubprocessError):
            continue
    return [line.split("=>")[-1].strip() for line in out.splitlines()
            if line.strip().startswith(stem + ".so.") and "x86-64" in line]


def site_dirs():
    dirs = []
    for pattern in SITE_GLOBS:
        dirs += sorted(glob.glob(pattern))
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        if os.environ.get(var):
            dirs += glob.glob(os.path.join(os.environ[var], "lib/python3*/site-packages"))
    return dirs


def candidates(stem):
    """Real files of ``stem`` (libnvrtc, libcublas), versioned names only, in search order."""
    found = []
    roots = [os.environ.get("DRT_CUDA_LIBS")] + [
        os.path.join(os.environ[v], "lib64") for v in ("CUDA_HOME", "CUDA_PATH")
        if os.environ.get(v)] + sorted(glob.glob("/usr/local/cuda*/lib64"), reverse=True)
    for root in filter(None, roots):
        found += glob.glob(os.path.join(root, stem + ".so.*"))
    found += ldconfig_paths(stem)
    for site in site_dirs():  # cu13 wheels: nvidia/cu13/lib; cu12: nvidia/<lib>/lib
        found += glob.glob(os.path.join(site, "nvidia", "*", "lib", stem + ".so.*"))
    out = []
    for path in found:
        real = os.path.realpath(path)
        if "stubs" not in real.split(os.sep) and os.path.isfile(real) and path not in out:
            out.append(path)
    return out


def driver_library():
    for path in ldconfig_paths("libcuda") + [os.path.join(d, "libcuda.so.1") for d in DRIVER_DIRS]:
        if os.path.basename(path) == "libcuda.so.1" and os.path.exists(path) \
                and "stubs" not in os.path.realpath(path).split(os.sep):
            return path
    return None


def driver_cuda_version(libcuda):
    """The CUDA version the driver supports, (major, minor), or None."""
    try:
        lib = ctypes.CDLL(libcuda)
        v = ctypes.c_int()
        if lib.cuDriverGetVersion(ctypes.byref(v)) != 0:
            return None
        return v.value // 1000, (v.value % 1000) // 10
    except (OSError, AttributeError):
        return None


def choose(stem, paths, driver=None):
    """The newest of ``paths`` by file version, not newer than ``driver`` for NVRTC."""
    usable = [p for p in paths if not (stem == "libnvrtc" and driver and version_of(p) > driver)]
    if not usable:
        return None
    return max(usable, key=lambda p: (version_of(p), -paths.index(p)))


def link(folder, name, target):
    """``folder/name`` -> ``target``, replaced atomically."""
    tmp = os.path.join(folder, ".%s.%d" % (name, os.getpid()))
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.realpath(target), tmp)
    os.replace(tmp, os.path.join(folder, name))


def make_links(folder):
    """Create the links in ``folder``; returns (links made {name: target}, problems)."""
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):  # links to what is gone (an uninstalled toolkit)
        path = os.path.join(folder, name)
        if os.path.islink(path) and not os.path.exists(path):
            os.unlink(path)
    made, problems = {}, []
    libcuda = driver_library()
    driver = driver_cuda_version(libcuda) if libcuda else None
    if libcuda:
        link(folder, "libcuda.so", libcuda)
        made["libcuda.so"] = libcuda
    else:
        problems.append("libcuda.so.1 (the NVIDIA driver's library) not found")
    for stem, siblings in WANTED.items():
        paths = candidates(stem)
        chosen = choose(stem, paths, driver)
        if not chosen:
            why = (" (only newer than the driver's CUDA %d.%d: %s)"
                   % (driver + (", ".join(paths),)) if paths else "")
            problems.append("%s.so.* not found%s" % (stem, why))
            continue
        link(folder, stem + ".so", chosen)
        made[stem + ".so"] = chosen
        here = os.path.dirname(chosen)
        for sibling in siblings:
            for path in glob.glob(os.path.join(here, sibling + ".so*")):
                link(folder, os.path.basename(path), path)
    return made, problems


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv[1:] if a != "-v"]
    if len(args) != 1:
        print("usage: " + __doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    folder = os.path.abspath(args[0])
    made, problems = make_links(folder)
    if verbose:
        for name, target in sorted(made.items()):
            print("cudalibs: %s -> %s" % (name, target), file=sys.stderr)
        for problem in problems:
            print("cudalibs: %s" % problem, file=sys.stderr)
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
