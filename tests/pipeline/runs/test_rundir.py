"""pipeline.runs.rundir: which run directory a training opens, resumes or refuses."""
import contextlib
import json
import os

import pytest

from models.fileio import Busy
from pipeline.runs import rundir as runs
from pipeline.recipe.config import load_scenario
from pipeline.errors import InputError
from pipeline.runs.rundir import open_run
from tests.pipeline.test_train import MINI


FAKE_ENV = {"data_sha1": "a" * 40, "weights_sha1": None}


def open_run_now(config, runs, env):
    with contextlib.ExitStack() as stack:
        return open_run(stack, config, runs, dict(env))[0]


def test_resumes_only_the_run_started_with_the_same_config_data_and_weights(tmp_path):
    config = load_scenario("4", MINI)
    first = open_run_now(config, tmp_path, FAKE_ENV)
    assert open_run_now(config, tmp_path, FAKE_ENV) == first  # unfinished: resumed
    others = {open_run_now(config, tmp_path, dict(FAKE_ENV, data_sha1="b" * 40)),
              open_run_now(config, tmp_path, dict(FAKE_ENV, weights_sha1="c" * 40)),
              open_run_now(load_scenario("4", MINI + ["seed=1"]), tmp_path, FAKE_ENV)}
    assert len(others) == 3 and first not in others
    for run_dir in others:
        env = json.loads((run_dir / "environment.json").read_text())
        assert env["data_sha1"] in ("a" * 40, "b" * 40)
    (first / "DONE").write_text("done\n")
    assert open_run_now(config, tmp_path, FAKE_ENV) not in others | {first}  # finished: new


def test_a_run_is_resumed_only_on_the_device_it_started_on(tmp_path):
    config = load_scenario("4", MINI)
    cpu = open_run_now(config, tmp_path, FAKE_ENV)  # an older record: no device, i.e. cpu
    assert open_run_now(config, tmp_path, dict(FAKE_ENV, device={"device": "cpu"})) == cpu
    gpu = open_run_now(config, tmp_path, dict(FAKE_ENV, device={"device": "cuda"}))
    assert gpu != cpu
    assert open_run_now(config, tmp_path, dict(FAKE_ENV, device={"device": "cuda"})) == gpu
    with contextlib.ExitStack() as stack, pytest.raises(InputError, match="started on DEVICE=cpu"):
        open_run(stack, config, tmp_path, dict(FAKE_ENV, device={"device": "cuda"}), cpu.name)


def test_run_names_are_unique_within_one_second(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.time, "strftime", lambda *_: "20261122-120000")
    names = [open_run_now(load_scenario("4", MINI + ["seed=%d" % s]), tmp_path, FAKE_ENV).name
             for s in range(3)]
    assert names == ["4-20261122-120000", "4-20261122-120000-2", "4-20261122-120000-3"]


def test_a_run_being_trained_is_not_opened_twice(tmp_path):
    config = load_scenario("4", MINI)
    with contextlib.ExitStack() as stack:
        run_dir, _ = open_run(stack, config, tmp_path, dict(FAKE_ENV))
        with pytest.raises(Busy, match=r"run .*%s .* is in use by another process \(pid %d\)"
                                       % (run_dir.name, os.getpid())):
            open_run_now(config, tmp_path, FAKE_ENV)
    assert open_run_now(config, tmp_path, FAKE_ENV) == run_dir  # released with its holder


def test_processes_wait_for_each_other_to_pick_their_run_directories(tmp_path):
    """runs/.lock is held only while a directory is found or made: others wait for it."""
    import threading
    from models.fileio import exclusive
    opened = []
    with exclusive(str(tmp_path / ".lock"), tmp_path):
        worker = threading.Thread(target=lambda: opened.append(
            open_run_now(load_scenario("4", MINI), tmp_path, FAKE_ENV)))
        worker.start()
        worker.join(1.0)
        assert worker.is_alive() and not opened  # waiting, not refused
    worker.join(10)
    assert len(opened) == 1 and (opened[0] / "config.json").exists()


def test_the_command_line_is_the_make_command_when_make_started_it(monkeypatch):
    # GNU make's $(MAKEOVERRIDES) lists the variables last first
    monkeypatch.setenv("DRT_MAKE_COMMAND", "make reproduce  WEIGHTS=w.caffemodel SCENARIO=1\\ 3")
    assert runs.command_line() == "make reproduce SCENARIO='1 3' WEIGHTS=w.caffemodel"
    monkeypatch.delenv("DRT_MAKE_COMMAND")
    monkeypatch.setattr("sys.argv", ["/x/pipeline/__main__.py", "cv", "--scenario", "1"])
    assert runs.command_line() == "python -m pipeline cv --scenario 1"
