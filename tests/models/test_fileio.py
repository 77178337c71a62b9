"""models.fileio: atomic writes leave the old file on failure; locks name their holder."""
import hashlib
import subprocess
import sys

import pytest

from models.fileio import Busy, atomic_path, atomic_write_bytes, exclusive, sha1_of


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "result.json"
    atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            open(tmp, "wb").write(b"half")
            raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["result.json"]
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"


def test_sha1_is_hashlibs_and_follows_a_changed_file(tmp_path):
    path = tmp_path / "data.h5"
    path.write_bytes(b"a" * 3000)
    assert sha1_of(path, chunk=1000) == hashlib.sha1(b"a" * 3000).hexdigest()
    path.write_bytes(b"b" * 3001)
    assert sha1_of(path) == hashlib.sha1(b"b" * 3001).hexdigest()


def test_a_lock_held_by_another_process_is_refused_with_its_pid(tmp_path):
    lock = tmp_path / "out.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, %r); from models.fileio import exclusive\n"
        "with exclusive(%r, 'x'):\n    print('held', flush=True); time.sleep(30)")
        % (str(__import__("pathlib").Path(__file__).resolve().parents[2]), str(lock))],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Busy, match=r"out.h5 is in use by another process \(pid %d\)"
                                       % holder.pid):
            with exclusive(str(lock), "out.h5"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive(str(lock), "out.h5"):  # a killed holder leaves no stale lock
        pass
