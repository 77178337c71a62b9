"""Preprocessing: labels validation, patient-level split, retina crop, corrupt
images, and resuming an interrupted run."""
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from PIL import Image

from models.fileio import sha1_of
from pipeline import preprocess as pp
from pipeline.data.synthetic import make_dataset
from pipeline.runs.evaluated import data_summary
from tests.conftest import ROOT, fill, small_filesystem


def copy_dataset(src, dst):
    (dst / "images").mkdir(parents=True)
    for f in (src / "images").iterdir():
        (dst / "images" / f.name).write_bytes(f.read_bytes())
    (dst / "labels.csv").write_bytes((src / "labels.csv").read_bytes())


def test_corrupt_images_are_reported_skipped_and_counted(tmp_path, synthetic_dir, capsys):
    copy_dataset(synthetic_dir, tmp_path / "d")
    good = (tmp_path / "d/images/2_left.jpeg").read_bytes()
    (tmp_path / "d/images/2_left.jpeg").write_bytes(good[:len(good) // 3])  # truncated
    (tmp_path / "d/images/3_right.jpeg").write_bytes(b"not an image at all")
    summary = pp.preprocess(str(tmp_path / "d"), str(tmp_path / "out.h5"), size=64, workers=2,
                            progress=False)
    err = capsys.readouterr().err
    assert "2_left.jpeg" in err and "3_right.jpeg" in err
    assert len(summary["failed"]) == 2 and summary["stored"] == summary["images"] - 2
    with h5py.File(tmp_path / "out.h5") as f:
        names = [n.decode() for n in f["name"][:]]
        ok = dict(zip(names, f["ok"][:]))
        assert not ok["2_left"] and not ok["3_right"] and ok["1_left"]
        assert len(eval(f.attrs["failed"])) == 2


def journal_entries(out):
    """The image indices of a partial store's journal (torn last line ignored)."""
    lines = open(str(out) + ".partial.journal").read().split("\n")[1:]
    done = set()
    for line in lines:
        try:
            done.add(json.loads(line)["i"])
        except ValueError:
            pass
    return done


def assert_same_store(a, b):
    with h5py.File(a) as f, h5py.File(b) as g:
        for key in ("images", "ok", "split", "level", "name", "patient"):
            np.testing.assert_array_equal(f[key][:], g[key][:], err_msg=key)
        assert f.attrs["failed"] == g.attrs["failed"] and f.attrs["counts"] == g.attrs["counts"]


class InterruptAfter(pp.tqdm):
    """A progress bar that raises KeyboardInterrupt once ``limit`` images are stored."""
    limit, stored = 40, 0

    def update(self, n=1):
        super().update(n)
        InterruptAfter.stored += n
        if InterruptAfter.stored >= InterruptAfter.limit:
            raise KeyboardInterrupt


def interrupted_partial(source, out, monkeypatch, limit):
    InterruptAfter.stored, InterruptAfter.limit = 0, limit
    monkeypatch.setattr(pp, "tqdm", InterruptAfter)
    with pytest.raises(KeyboardInterrupt):
        pp.preprocess(str(source), str(out), size=64, workers=1, progress=False)
    monkeypatch.undo()
    assert not out.exists()  # never a half-written file under the real name


def test_interrupted_run_resumes_to_the_same_file(tmp_path, synthetic_dir, monkeypatch):
    pp.preprocess(str(synthetic_dir), str(tmp_path / "ref.h5"), size=64, progress=False)
    out = tmp_path / "out.h5"
    interrupted_partial(synthetic_dir, out, monkeypatch, limit=36)
    journalled = journal_entries(out)
    assert len(journalled) == 32  # one commit of 32; the 4 after it were not journalled
    initial = []

    class Record(pp.tqdm):
        def __init__(self, *args, **kwargs):
            initial.append(kwargs["initial"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pp, "tqdm", Record)
    pp.preprocess(str(synthetic_dir), str(out), size=64, progress=False)
    assert initial == [32]  # resumed: the journalled images were not done again
    assert_same_store(out, tmp_path / "ref.h5")
    assert not os.path.exists(str(out) + ".partial.journal")


def test_resume_redoes_images_whose_pixels_never_reached_the_disk(tmp_path, synthetic_dir,
                                                                  monkeypatch, capsys):
    """The failure of the issue: flags on disk, pixels not. Resuming must not trust them."""
    pp.preprocess(str(synthetic_dir), str(tmp_path / "ref.h5"), size=64, progress=False)
    out = tmp_path / "out.h5"
    interrupted_partial(synthetic_dir, out, monkeypatch, limit=33)
    lost = sorted(journal_entries(out))[:5]
    with h5py.File(str(out) + ".partial", "r+") as f:
        for i in lost:
            f["images"][i] = 0
    capsys.readouterr()
    pp.preprocess(str(synthetic_dir), str(out), size=64, progress=False)
    assert "5 whose stored pixels did not match their journal done again" in capsys.readouterr().err
    assert_same_store(out, tmp_path / "ref.h5")


def test_a_partial_without_its_journal_is_discarded_with_a_message(tmp_path, synthetic_dir,
                                                                   capsys):
    out = tmp_path / "out.h5"
    (tmp_path / "out.h5.partial").write_bytes(b"left by an older version")
    pp.preprocess(str(synthetic_dir), str(out), size=64, progress=False)
    assert "no journal beside it" in capsys.readouterr().err
    with h5py.File(out) as f:
        assert f["ok"][:].all()


PREPROCESS = [sys.executable, "-m", "pipeline", "preprocess", "--size", "64", "--workers", "1"]


def run_cli(args, **kwargs):
    return subprocess.run(PREPROCESS + args, cwd=str(ROOT), capture_output=True, text=True,
                          **kwargs)


@pytest.fixture(scope="module")
def bigger_dir(tmp_path_factory):
    """120 images as PNG (no JPEG draft decoding): storing them takes a few seconds."""
    d = tmp_path_factory.mktemp("bigger")
    make_dataset(str(d), patients=60, width=600, height=400, seed=4)
    for jpeg in (d / "images").iterdir():
        Image.open(jpeg).save(jpeg.with_suffix(".png"), compress_level=1)
        jpeg.unlink()
    return d


@pytest.fixture(scope="module")
def bigger_reference(bigger_dir, tmp_path_factory):
    """An uninterrupted run of the real command, and the seconds it spent starting
    (a run on two images) and storing (the rest)."""
    d = tmp_path_factory.mktemp("bigger_ref")
    two = d / "two"
    (two / "images").mkdir(parents=True)
    for name in ("1_left.png", "1_right.png"):
        (two / "images" / name).write_bytes((bigger_dir / "images" / name).read_bytes())
    (two / "labels.csv").write_text("image,level\n1_left,0\n1_right,0\n")
    times = []
    for source, out in ((two, d / "two.h5"), (bigger_dir, d / "ref.h5")):
        start = time.time()
        proc = run_cli(["--data", str(source), "--out", str(out)])
        assert proc.returncode == 0, proc.stderr
        times.append(time.time() - start)
    return d / "ref.h5", times[0], times[1] - times[0]


def test_kill_9_at_random_instants_never_leaves_a_wrong_image(tmp_path, bigger_dir,
                                                              bigger_reference):
    """kill -9 of the whole process group at random instants (uniform over the
    start-up and the work left), resume after each: at every kill point each
    journalled image equals the uninterrupted run's, and the final file equals it."""
    ref, startup, work = bigger_reference
    with h5py.File(ref) as f:
        ref_images = f["images"][:]
    out, rng, kills, progress = tmp_path / "out.h5", np.random.RandomState(0), 0, [0]
    for trial in range(16):
        if out.exists():  # a run got to the end first: start over, so that kills hit work
            out.unlink()
            progress.append(0)
        proc = subprocess.Popen(PREPROCESS + ["--data", str(bigger_dir), "--out", str(out)],
                                cwd=str(ROOT), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0, startup + work * (1 - progress[-1] / 120.0)))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        if os.path.exists(str(out) + ".partial.journal"):
            if not os.path.exists(str(out) + ".partial"):
                # killed between the final rename and the journal's removal: finished
                assert out.exists()
                continue
            done = journal_entries(out)
            progress.append(len(done))
            with h5py.File(str(out) + ".partial", "r") as f:
                for i in done:
                    np.testing.assert_array_equal(f["images"][i], ref_images[i])
    print("kill points: %d, images journalled after each: %s" % (kills, progress[1:]))
    assert kills >= 8 and len(set(progress)) >= 3, (kills, progress)  # kills hit many points
    proc = run_cli(["--data", str(bigger_dir), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert_same_store(out, ref)


def test_two_processes_on_one_output(tmp_path, bigger_dir, bigger_reference):
    out = tmp_path / "out.h5"
    first = subprocess.Popen(PREPROCESS + ["--data", str(bigger_dir), "--out", str(out)],
                             cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.time() + 60
    while not os.path.exists(str(out) + ".partial.journal") and time.time() < deadline:
        time.sleep(0.05)
    second = run_cli(["--data", str(bigger_dir), "--out", str(out)])
    assert second.returncode == 75
    assert second.stderr.strip().count("\n") == 0  # one line
    assert "is in use by another process (pid %d)" % first.pid in second.stderr
    assert first.wait() == 0, first.stderr.read()
    assert_same_store(out, bigger_reference[0])


def test_a_disk_too_small_is_one_line_before_any_work(tmp_path, bigger_dir):
    with small_filesystem(tmp_path / "fs", 1 << 20) as fs:  # the images need 1.5 MB
        proc = run_cli(["--data", str(bigger_dir), "--out", str(fs / "out.h5")])
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "cannot reserve 1 MB" in proc.stderr
        assert "No space left on device" in proc.stderr
        assert sorted(os.listdir(fs)) == ["lost+found", "out.h5.lock"]  # nothing else left


@pytest.mark.parametrize("fill_after", [0, 96])
def test_disk_full_mid_run_stops_in_one_line_and_the_rerun_resumes(tmp_path, bigger_dir,
                                                                   bigger_reference, fill_after):
    """Another program fills the disk once ``fill_after`` images are journalled: the
    journal cannot grow (0), or there is no room left for the final writes (96)."""
    with small_filesystem(tmp_path / "fs", 8 << 20) as fs:
        out = fs / "out.h5"
        proc = subprocess.Popen(PREPROCESS + ["--data", str(bigger_dir), "--out", str(out)],
                                cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        journal = str(out) + ".partial.journal"
        while proc.poll() is None and not (
                os.path.exists(journal) and len(journal_entries(out)) >= fill_after):
            time.sleep(0.01)
        fill(fs)
        _, err = proc.communicate()
        assert proc.returncode == 2, err
        lines = [l for l in err.splitlines() if "error" in l or "Traceback" in l]
        assert len(lines) == 1 and "write failed (No space left on device)" in lines[0], err
        assert "out.h5.partial" in lines[0] and not out.exists()
        done = journal_entries(out)
        assert fill_after <= len(done) <= 120  # 120: stopped before the final writes
        os.unlink(fs / "filler")  # space freed
        proc = run_cli(["--data", str(bigger_dir), "--out", str(out)])
        assert proc.returncode == 0, proc.stderr
        assert "resuming" in proc.stderr and "%d images verified" % len(done) in proc.stderr
        assert_same_store(out, bigger_reference[0])


def test_skip_messages_get_their_own_line(tmp_path, synthetic_dir, capsys):
    copy_dataset(synthetic_dir, tmp_path / "d")
    (tmp_path / "d/images/3_right.jpeg").write_bytes(b"not an image at all")
    pp.preprocess(str(tmp_path / "d"), str(tmp_path / "out.h5"), size=64, workers=1,
                  progress=True)
    err = capsys.readouterr().err
    (line,) = [l for l in err.split("\n") if "3_right" in l]
    assert line.split("\r")[-1].startswith("preprocess: skipped unreadable image 3_right.jpeg")


def test_reuse_keeps_a_finished_store_of_the_same_settings_only(tmp_path, synthetic_dir, capsys):
    out = str(tmp_path / "d.h5")
    assert pp.preprocess(str(synthetic_dir), out, size=48, progress=False)["stored"] > 0
    before = os.stat(out).st_mtime_ns
    assert pp.preprocess(str(synthetic_dir), out, size=48, progress=False, reuse=True) is None
    assert os.stat(out).st_mtime_ns == before and "reused" in capsys.readouterr().out
    assert pp.preprocess(str(synthetic_dir), out, size=48, lcn=True, progress=False,
                         reuse=True) is not None  # another setting: made again
    with h5py.File(out, "r") as f:
        assert bool(f.attrs["lcn"])


def test_a_store_that_names_its_source_absolutely_is_still_reused(tmp_path, synthetic_dir,
                                                                  capsys):
    """Stores made before the source was relative: reused, so their runs keep their data."""
    out = str(tmp_path / "d.h5")
    pp.preprocess(str(synthetic_dir), out, size=48, progress=False)
    with h5py.File(out, "r+") as f:
        f.attrs["source"] = str(synthetic_dir)
    assert pp.preprocess(str(synthetic_dir), out, size=48, progress=False, reuse=True) is None
    assert "reused" in capsys.readouterr().out


def test_the_same_images_make_the_same_bytes_in_another_clone(tmp_path, synthetic_dir):
    """Every run records the store's SHA1 as the data's identity: two clones at paths
    of different lengths, preprocessing the same images, must agree on it."""
    outs = []
    for clone in ("a", "a-longer-clone-path"):
        copy_dataset(synthetic_dir, tmp_path / clone / "data/sample")
        out = tmp_path / clone / "data/processed/sample.h5"
        pp.preprocess(str(tmp_path / clone / "data/sample"), str(out), size=48, progress=False)
        outs.append(out)
        time.sleep(1.1)  # HDF5 object times, where kept, have one-second resolution
    assert sha1_of(str(outs[0])) == sha1_of(str(outs[1]))
    summary = data_summary(str(outs[1]))  # the source is told relative to the store
    assert summary[2] == str(tmp_path / "a-longer-clone-path/data/sample")
