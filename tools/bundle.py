"""``make bundle``: one tarball that runs the GPU path on an offline machine.

A cluster's GPU node often has no network and another Python (the machine of
``../shared/GPU.md``: Python 3.12 with NumPy 2, which cannot run Theano 1.0.5).
The bundle carries what the project needs beyond that machine's NVIDIA driver,
g++ and CUDA libraries (NVRTC, cuBLAS: a toolkit or any Python's nvidia-*
wheels, found by ``models/cudalibs.py``):

  python/     this CPython 3.11 (its headers and shared library: Theano compiles
              against them), without tests, tkinter, idlelib, its static library
              and its own site-packages
  wheels/     the pinned wheels of the GPU path (no scipy, scikit-learn,
              scikit-image, matplotlib: training and the tests import none of them)
  gpuarray/   Debian 12's pygpu, libgpuarray and its headers (0.7.6), unpacked
  dr-transfer/  the project's tracked files as they are in the work tree, but
              data/caltech (the four cases' similar data: its feature scenarios
              need scikit-learn)
  bin/make    GNU make, used where the machine has none
  run         the one command: ``./dr-transfer-gpu/run test-gpu`` (or ``bench``,
              ``train SCENARIO=4 DATA=...``): the first call builds
              dr-transfer/.venv offline from the above, then every call runs
              ``make DEVICE=cuda ARGS`` in dr-transfer/
  BUNDLE.json what went in: versions, the project's commit, file checksums

The tarball must stay under 60 MiB; its path is the last line printed.
"""
import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "dr-transfer-gpu"
LIMIT_MIB = 60
#: the distributions the GPU path imports (the venv's exact versions go in)
WHEELS = ["setuptools", "wheel", "numpy", "Theano", "Lasagne", "six", "h5py", "pillow", "tqdm",
          "protobuf", "Mako", "MarkupSafe", "pytest", "iniconfig", "pluggy", "packaging",
          "Pygments"]
DEBIAN = ["python3-pygpu", "libgpuarray3", "libgpuarray-dev"]
#: names left out of the standard library, wherever they are
PYTHON_SKIP = {"test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "site-packages",
               "__pycache__"}

RUN = r"""#!/bin/sh
# The offline GPU path: ./run test-gpu | ./run bench | ./run train SCENARIO=4 DATA=... WEIGHTS=...
# The first call builds dr-transfer/.venv from this folder (no network), then
# every call is `make DEVICE=cuda ARGS` in dr-transfer/.
set -e
here=$(cd "$(dirname "$0")" && pwd)
project="$here/dr-transfer"
export LD_LIBRARY_PATH="$here/python/lib:$project/.venv/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ ! -f "$project/.venv/.gpu-stamp-cuda" ]; then
  echo "run: building $project/.venv from the bundle (offline)"
  rm -rf "$project/.venv"
  "$here/python/bin/python3.11" -m venv "$project/.venv"
  "$project/.venv/bin/python" -m pip install -q --no-index --no-deps "$here"/wheels/*.whl
  site=$("$project/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  cp -r "$here/gpuarray/pygpu" "$site/pygpu"
  mkdir -p "$project/.venv/lib" "$project/.venv/include"
  cp -a "$here"/gpuarray/lib/libgpuarray.so* "$project/.venv/lib/"
  cp -r "$here/gpuarray/include/gpuarray" "$project/.venv/include/gpuarray"
  "$project/.venv/bin/python" -m pip install -q --no-index --no-deps --no-build-isolation -e "$project"
  (cd "$project" && .venv/bin/python -c "import models, pygpu, theano; print('run: pygpu', pygpu.__version__, 'theano', theano.__version__)")
  touch "$project/.venv/.installed-stamp" "$project/.venv/.gpu-stamp-cuda"
fi
cd "$project"
make=$(command -v make || echo "$here/bin/make")  # GNU make travels along for nodes without one
exec "$make" --no-print-directory DEVICE="${DEVICE:-cuda}" PYTHON_BASE="$here/python/bin/python3.11" "$@"
"""


def sha1(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_python(dest):
    """This interpreter's installation, trimmed, with its shared library stripped."""
    prefix = Path(sys.base_prefix)
    version = "python%d.%d" % sys.version_info[:2]
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise SystemExit("error: %s: this Python has no shared library (build it with "
                         "--enable-shared); Theano links against it" % prefix)
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(prefix / "bin" / version, dest / "bin" / version)
    os.symlink(version, dest / "bin" / "python3")
    shutil.copytree(prefix / "include", dest / "include", symlinks=True)
    (dest / "lib").mkdir()
    for lib in (prefix / "lib").glob("libpython*.so*"):
        if lib.is_symlink():
            os.symlink(os.readlink(lib), dest / "lib" / lib.name)
        else:
            shutil.copy2(lib, dest / "lib" / lib.name)
            subprocess.run(["strip", "--strip-unneeded", str(dest / "lib" / lib.name)],
                           check=False)
    stdlib = prefix / "lib" / version

    def ignore(directory, names):
        return [n for n in names if n in PYTHON_SKIP or n.endswith((".a", ".pyc"))]
    shutil.copytree(stdlib, dest / "lib" / version, ignore=ignore, symlinks=True)


def pinned(name):
    """``name==version``: the pin of the project's requirements files, else the version
    installed here (pytest's own dependencies)."""
    for req in ("requirements.txt", "requirements-test.txt", "requirements-gpu.txt"):
        for line in (ROOT / req).read_text().splitlines():
            spec = line.split("#")[0].strip()
            if "==" in spec and spec.split("==")[0].strip().lower() == name.lower():
                return spec.replace(" ", "")
    return "%s==%s" % (name, importlib.metadata.version(name))


def build_wheels(dest):
    """Each of ``WHEELS`` at its pinned version, as wheels (built from sdists such as
    Theano's where PyPI has no wheel), without dependencies."""
    dest.mkdir()
    pins = [pinned(name) for name in WHEELS]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest)]
                   + pins, check=True)
    return pins


def unpack_debian(dest, work):
    """Debian 12's pygpu / libgpuarray files: pygpu/, lib/libgpuarray.so*, include/gpuarray."""
    debs = work / "debs"
    debs.mkdir()
    proc = subprocess.run(["apt-get", "download"] + DEBIAN, cwd=str(debs),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit("error: apt-get download %s failed (%s); on Debian 12 run "
                         "`apt-get update` first" % (" ".join(DEBIAN),
                                                     proc.stderr.strip().splitlines()[-1:]))
    tree = work / "debian-tree"
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    (dest / "lib").mkdir(parents=True)
    shutil.copytree(tree / "usr/lib/python3/dist-packages/pygpu", dest / "pygpu",
                    ignore=shutil.ignore_patterns("tests", "*.c", "__pycache__"))
    for lib in (tree / "usr/lib").glob("libgpuarray.so*"):
        shutil.copy2(lib, dest / "lib" / lib.name, follow_symlinks=False)
    shutil.copytree(tree / "usr/include/gpuarray", dest / "include" / "gpuarray")
    return sorted(p.name for p in debs.glob("*.deb"))


#: tracked folders the bundle leaves out: the Caltech-101 photographs are the similar data
#: of ``make fourcases``, whose feature scenarios need scikit-learn, which the bundle lacks
LEFT_OUT = ("data/caltech/",)


def copy_project(dest):
    """The tracked files, as they are in the work tree (but ``LEFT_OUT``)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=str(ROOT), capture_output=True,
                           check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if rel.startswith(LEFT_OUT):
            continue
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def build(out_dir):
    from pipeline.runs.rundir import code_version
    out_dir = Path(out_dir).resolve()
    work = out_dir / ("%s.build" % NAME)
    shutil.rmtree(work, ignore_errors=True)
    stage = work / NAME
    stage.mkdir(parents=True)
    print("bundle: python %s from %s" % (sys.version.split()[0], sys.base_prefix), flush=True)
    copy_python(stage / "python")
    print("bundle: wheels", flush=True)
    pins = build_wheels(stage / "wheels")
    print("bundle: Debian's pygpu/libgpuarray", flush=True)
    debs = unpack_debian(stage / "gpuarray", work)
    copy_project(stage / "dr-transfer")
    (stage / "bin").mkdir()
    shutil.copy2(shutil.which("make"), stage / "bin" / "make")
    (stage / "run").write_text(RUN)
    (stage / "run").chmod(0o755)
    manifest = {"made": time.strftime("%Y-%m-%d %H:%M:%S"), "python": sys.version.split()[0],
                "code": code_version(), "wheels": pins, "debian": debs,
                "files": {str(p.relative_to(stage)): sha1(p) for p in sorted(stage.rglob("*"))
                          if p.is_file() and not p.is_symlink()}}
    (stage / "BUNDLE.json").write_text(json.dumps(manifest, indent=1))
    tarball = out_dir / ("%s.tar.gz" % NAME)
    tmp = out_dir / (".%s.tar.gz.%d" % (NAME, os.getpid()))
    with tarfile.open(tmp, "w:gz", compresslevel=9) as tar:
        tar.add(stage, arcname=NAME)
    size = tmp.stat().st_size / 2 ** 20
    if size > LIMIT_MIB:
        tmp.unlink()
        raise SystemExit("error: the bundle is %.1f MiB, over the %d MiB limit" % (size, LIMIT_MIB))
    os.replace(tmp, tarball)
    shutil.rmtree(work)
    print("bundle: %.1f MiB; on the GPU machine: tar xzf %s.tar.gz && ./%s/run test-gpu"
          % (size, NAME, NAME))
    print(tarball)
    return tarball


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build", help="folder for the tarball")
    args = p.parse_args(argv)
    build(args.out)


if __name__ == "__main__":
    main()
