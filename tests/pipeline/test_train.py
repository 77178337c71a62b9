"""The training engine on a small GoogLeNet-shaped net and generated fundus images:
resume after kill -9 and after SIGTERM, bit-identical reruns, the features path,
and the exported caffemodel read back by OpenCV."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from models import googlenet
from models.caffe_import import load_blobs
from models.caffemodel import CaffeModelError
from models.model_io import load_model
from pipeline.data import dataset
from pipeline.preprocess import preprocess
from pipeline.data.synthetic import make_dataset
from pipeline.recipe.config import load_scenario
from pipeline.train import train
from tests.conftest import ROOT, fill, opencv_forward, small_filesystem

MINI = ["network=mini", "crop=64", "init=random", "epochs=4", "batch_size=8"]


@pytest.fixture(scope="module")
def data_h5(tmp_path_factory):
    d = tmp_path_factory.mktemp("train_data")
    make_dataset(str(d / "raw"), patients=24, width=300, height=200, seed=5)
    preprocess(str(d / "raw"), str(d / "data.h5"), size=72, progress=False)
    return str(d / "data.h5")


@pytest.fixture(scope="module")
def cv_h5(tmp_path_factory):
    """A generated data set that 3- and 4-fold cross-validation can stratify: at least 4
    patients of every worst level (30 patients, seed 11: 9, 5, 4, 5, 7), and both
    classes in the file's own validation and test splits."""
    d = tmp_path_factory.mktemp("cv_data")
    make_dataset(str(d / "raw"), patients=30, width=300, height=200, seed=11)
    preprocess(str(d / "raw"), str(d / "data.h5"), size=72, progress=False)
    return str(d / "data.h5")


def model_arrays(run_dir):
    with np.load(os.path.join(run_dir, "model.npz")) as npz:
        return load_blobs(npz)


def assert_same_model(a, b):
    a, b = model_arrays(a), model_arrays(b)
    assert list(a) == list(b)
    for name in a:
        for x, y in zip(a[name], b[name]):
            np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def reference_run(data_h5, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs_ref")
    return train(load_scenario("4", MINI), data_h5, runs_root=str(runs), progress=False)


def test_run_directory_has_everything(reference_run):
    names = set(os.listdir(reference_run))
    assert {"config.json", "environment.json", "metrics.csv", "checkpoint.npz", "model.npz",
            "model.caffemodel", "deploy.prototxt", "learning_curves.png", "DONE"} <= names
    env = json.loads((reference_run / "environment.json").read_text())
    assert env["seed"] == 0 and env["theano"] and len(env["data_sha1"]) == 40
    rows = (reference_run / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,iteration,lr") and len(rows) == 5
    assert (reference_run.parent / "4-latest").resolve() == reference_run.resolve()


def test_same_seed_gives_bit_identical_weights(data_h5, reference_run, tmp_path):
    again = train(load_scenario("4", MINI), data_h5, runs_root=str(tmp_path), progress=False)
    assert_same_model(reference_run, again)


def test_frozen_layers_stay_at_their_initial_values(data_h5, reference_run, tmp_path):
    zero_lr = train(load_scenario("4", MINI + ["solver.base_lr=0.0"]), data_h5,
                    runs_root=str(tmp_path), progress=False)
    trained, init = model_arrays(reference_run), model_arrays(zero_lr)
    for name in ("conv1/7x7_s2", "conv2/3x3"):  # frozen in scenario 4
        np.testing.assert_array_equal(trained[name][0], init[name][0])
    assert not np.array_equal(trained["inception_3a/1x1"][0], init["inception_3a/1x1"][0])


KILL_SCRIPT = """
import os, signal, sys
import pipeline.data.dataset as d
original, calls = d.Dataset.batch, [0]
def batch(self, *args, **kwargs):
    calls[0] += 1
    if calls[0] == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, *args, **kwargs)
d.Dataset.batch = batch
from pipeline.cli import main
main(sys.argv[2:])
"""


def batches_per_epoch(data_h5):
    """Dataset.batch calls per epoch: the training batches, then validation's."""
    train_n = len(dataset.Dataset(data_h5, "train"))
    val_n = len(dataset.Dataset(data_h5, "val"))
    return -(-train_n // 8) + -(-val_n // 32)


def test_kill_9_then_resume_equals_an_uninterrupted_run(data_h5, reference_run, tmp_path):
    kill_at = 2 * batches_per_epoch(data_h5) + 2  # the second batch of epoch 3
    args = ["train", "--scenario", "4", "--data", data_h5, "--runs", str(tmp_path)]
    args += [a for item in MINI for a in ("--set", item)]
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(kill_at)] + args, cwd=str(ROOT),
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.startswith("4-2")]
    assert not (run_dir / "DONE").exists()
    with np.load(run_dir / "checkpoint.npz") as ck:
        assert int(ck["epoch"]) == 2
    resumed = train(load_scenario("4", MINI), data_h5, runs_root=str(tmp_path), progress=False)
    assert resumed == run_dir
    assert_same_model(reference_run, resumed)


def test_sigterm_checkpoints_mid_epoch_and_resumes_exactly(data_h5, reference_run, tmp_path,
                                                           monkeypatch):
    original, calls = dataset.Dataset.batch, [0]
    term_at = batches_per_epoch(data_h5) + 4  # made in the background up to 3 ahead

    def batch(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == term_at:  # epoch 2, fourth batch: the step of the 2nd, 3rd or 4th
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(dataset.Dataset, "batch", batch)
    config = load_scenario("4", MINI)
    assert train(config, data_h5, runs_root=str(tmp_path), progress=False) is None
    monkeypatch.undo()
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.startswith("4-2")]
    train_batches = -(-len(dataset.Dataset(data_h5, "train")) // 8)
    with np.load(run_dir / "checkpoint.npz") as ck:
        assert int(ck["epoch"]) == 1 and 1 <= int(ck["it_in_epoch"]) <= 3 < train_batches
    assert_same_model(reference_run, train(config, data_h5, runs_root=str(tmp_path),
                                           progress=False))


def test_exported_caffemodel_round_trips_through_opencv(reference_run):
    spec, input_shape, net = load_model(str(reference_run / "model.npz"))
    data = np.random.RandomState(3).normal(0, 50, (2,) + input_shape).astype(np.float32)
    ours = googlenet.compile_forward(net, ["loss3/classifier", "prob"])(data)
    ref = opencv_forward(reference_run / "deploy.prototxt", reference_run / "model.caffemodel",
                         data, ["loss3/classifier", "prob"], spec)
    np.testing.assert_allclose(ours[1], ref["prob"], atol=1e-5)
    scale = np.abs(ref["loss3/classifier"]).max()
    assert np.abs(ours[0] - ref["loss3/classifier"]).max() <= 1e-5 * scale


# ------------------------------------------------------------- run directories

def test_two_trainings_of_one_config_at_once(data_h5, reference_run, tmp_path):
    args = [sys.executable, "-m", "pipeline", "train", "--scenario", "4", "--data", data_h5,
            "--runs", str(tmp_path)] + [a for item in MINI for a in ("--set", item)]
    procs = [subprocess.Popen(args, cwd=str(ROOT), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted((p.wait(), p.stderr.read()) for p in procs)
    assert [code for code, _ in results] == [0, 75], results
    errors = [l for l in results[1][1].splitlines() if l.startswith("error")]
    assert len(errors) == 1 and "is in use by another process" in errors[0]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.startswith("4-2")]
    assert_same_model(reference_run, run_dir)


def test_weights_that_do_not_fit_fail_before_a_run_directory_is_made(data_h5, tmp_path,
                                                                     random_googlenets):
    _, files = random_googlenets  # a GoogLeNet file: no layer of the mini net fits it
    config = load_scenario("4", [item for item in MINI if item != "init=random"])
    with pytest.raises(CaffeModelError, match="conv1/7x7_s2"):
        train(config, data_h5, str(files[2][0]), runs_root=str(tmp_path / "runs"),
              progress=False)
    assert not (tmp_path / "runs").exists()


def test_disk_full_while_training_is_one_line_and_the_rerun_finishes(data_h5, tmp_path):
    long_run = MINI[:-2] + ["epochs=60", "batch_size=8"]
    reference = train(load_scenario("4", long_run), data_h5, runs_root=str(tmp_path / "ref"),
                      progress=False)
    args = [sys.executable, "-m", "pipeline", "train", "--scenario", "4", "--data", data_h5]
    args += [a for item in long_run for a in ("--set", item)]
    with small_filesystem(tmp_path / "fs", 4 << 20) as fs:
        proc = subprocess.Popen(args + ["--runs", str(fs)], cwd=str(ROOT), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while proc.poll() is None and not list(fs.glob("4-2*/checkpoint.npz")):
            time.sleep(0.01)
        fill(fs)
        _, err = proc.communicate()
        errors = [l for l in err.splitlines() if "error" in l.lower() or "Traceback" in l]
        assert proc.returncode == 2 and len(errors) == 1, err
        assert "No space left on device" in errors[0] and str(fs) in errors[0]
        (run_dir,) = fs.glob("4-2*")
        with np.load(run_dir / "checkpoint.npz") as ck:  # the last checkpoint is intact
            assert 1 <= int(ck["epoch"]) < 60
        os.unlink(fs / "filler")
        proc = subprocess.run(args + ["--runs", str(fs)], cwd=str(ROOT), capture_output=True,
                              text=True)
        assert proc.returncode == 0 and "resuming" in proc.stdout, proc.stderr
        assert_same_model(reference, run_dir)


def test_flips_are_drawn_last_about_half_the_time_and_only_when_asked(data_h5):  # noqa: F811
    from pipeline.learn.finetune import epoch_plan
    config = load_scenario("4", MINI)
    train_split = dataset.open_split(data_h5, "train", config)
    plain = epoch_plan(config, train_split, 2, 50)
    flipped = epoch_plan(dict(config, flip=True), train_split, 2, 50)
    np.testing.assert_array_equal(plain[0], flipped[0])  # the same images, the same turns
    np.testing.assert_array_equal(plain[1], flipped[1])
    assert not plain[2].any() and 0.4 < flipped[2].mean() < 0.6  # 400 draws
    np.testing.assert_array_equal(flipped[2], epoch_plan(dict(config, flip=True), train_split,
                                                         2, 50)[2])  # from (seed, epoch)


def test_a_run_of_the_same_config_is_reused_under_another_scenario_name(data_h5, tmp_path):  # noqa: F811
    """Scenario 4 with nothing frozen is scenario 2 key for key: it must not train again,
    neither in the same folder nor as a named sweep task in another; it is reported as
    scenario 4's run (a view: its own config.json, the trained files linked)."""
    import json
    two = train(load_scenario("2", MINI), data_h5, runs_root=str(tmp_path / "runs"),
                progress=False)
    stamp = (two / "DONE").stat().st_mtime_ns
    four = load_scenario("4", MINI + ["freeze=[]"])
    view = train(four, data_h5, runs_root=str(tmp_path / "runs"), progress=False, reuse=True)
    assert view != two and view.name.startswith("4-") and not view.is_symlink()
    assert (view / "model.npz").resolve() == (two / "model.npz").resolve()
    assert json.loads((view / "config.json").read_text()) == four
    assert (tmp_path / "runs" / "4-latest").resolve() == view.resolve()
    assert (tmp_path / "runs" / "2-latest").resolve() == two.resolve()
    named = train(four, data_h5, runs_root=str(tmp_path / "grid"), progress=False, reuse=True,
                  name="frozen1-4-seed0", reuse_from=[str(tmp_path / "runs")])
    assert named == tmp_path / "grid" / "frozen1-4-seed0" and named.is_symlink()
    assert named.resolve() == view.resolve() and (two / "DONE").stat().st_mtime_ns == stamp
    other = train(load_scenario("4", MINI), data_h5, runs_root=str(tmp_path / "runs"),
                  progress=False, reuse=True)  # conv1/2 frozen: another recipe, trained
    assert other not in (two, view) and not (other / "model.npz").is_symlink()
