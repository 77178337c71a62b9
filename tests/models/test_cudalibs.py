"""models.cudalibs: the CUDA library links made from a fake machine's files."""
import os

import pytest

from models import cudalibs


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF")
    return path


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A fake machine: a driver for CUDA 12.4, a CUDA 12.2 toolkit with a stub libcuda,
    and a Python with CUDA 13 wheels (nvidia/cu13/lib)."""
    driver = touch(tmp_path / "driver" / "libcuda.so.1")
    toolkit = tmp_path / "cuda-12.2" / "lib64"
    touch(toolkit / "libnvrtc.so.12.2.140")
    touch(toolkit / "libnvrtc-builtins.so.12.2")
    touch(toolkit / "stubs" / "libcuda.so")
    wheels = tmp_path / "py312" / "site-packages" / "nvidia" / "cu13" / "lib"
    for name in ("libnvrtc.so.13", "libnvrtc-builtins.so.13.0", "libcublas.so.13",
                 "libcublasLt.so.13"):
        touch(wheels / name)
    monkeypatch.setattr(cudalibs, "DRIVER_DIRS", [str(driver.parent)])
    monkeypatch.setattr(cudalibs, "SITE_GLOBS", [str(tmp_path / "py*" / "site-packages")])
    monkeypatch.setattr(cudalibs, "ldconfig_paths", lambda stem: [])
    monkeypatch.setattr(cudalibs, "driver_cuda_version", lambda lib: (12, 4))
    monkeypatch.setenv("CUDA_HOME", str(toolkit.parent))
    monkeypatch.delenv("DRT_CUDA_LIBS", raising=False)
    return tmp_path


def test_links_take_the_driver_and_the_newest_nvrtc_not_newer_than_it(machine):
    folder = machine / "links"
    made, problems = cudalibs.make_links(str(folder))
    assert problems == []
    real = {name: os.path.realpath(folder / name) for name in os.listdir(folder)}
    assert real["libcuda.so"] == str(machine / "driver" / "libcuda.so.1")
    assert real["libnvrtc.so"].endswith("cuda-12.2/lib64/libnvrtc.so.12.2.140")  # 13 > 12.4
    assert real["libnvrtc-builtins.so.12.2"].endswith("libnvrtc-builtins.so.12.2")
    assert real["libcublas.so"].endswith("cu13/lib/libcublas.so.13")
    assert "libcublasLt.so.13" in real
    assert "stubs" not in "".join(real.values())


def test_links_follow_what_the_machine_has_now(machine, monkeypatch):
    folder = machine / "links"
    cudalibs.make_links(str(folder))
    monkeypatch.setattr(cudalibs, "driver_cuda_version", lambda lib: (13, 0))
    for path in (machine / "cuda-12.2" / "lib64").glob("libnvrtc*"):
        path.unlink()  # the toolkit is uninstalled, the driver updated
    cudalibs.make_links(str(folder))
    assert os.path.realpath(folder / "libnvrtc.so").endswith("cu13/lib/libnvrtc.so.13")
    assert not os.path.lexists(folder / "libnvrtc-builtins.so.12.2")  # dangling: removed


def test_nothing_usable_is_reported(machine, monkeypatch):
    monkeypatch.setattr(cudalibs, "driver_cuda_version", lambda lib: (11, 8))
    for path in (machine / "cuda-12.2" / "lib64").glob("libnvrtc*"):
        path.unlink()
    _, problems = cudalibs.make_links(str(machine / "links"))
    assert any("libnvrtc.so.* not found (only newer than the driver's CUDA 11.8" in p
               for p in problems), problems
