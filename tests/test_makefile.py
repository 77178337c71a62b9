"""The Makefile's own guards."""
import os
import subprocess

import pytest

from tests.conftest import ROOT


@pytest.mark.skipif(not (ROOT / ".venv" / ".installed-stamp").exists(),
                    reason="make install has not run (the target would install first)")
def test_preprocess_of_a_directory_that_does_not_exist_is_an_error_not_a_download(tmp_path):
    typo = tmp_path / "fundus-smaple"
    proc = subprocess.run(["make", "-s", "--no-print-directory", "preprocess", "DATA=%s" % typo],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "error: %s: no labels.csv or trainLabels.csv" % typo in proc.stderr
    assert "Kaggle" not in proc.stderr + proc.stdout and not typo.exists()


@pytest.mark.skipif(not (ROOT / ".venv" / ".installed-stamp").exists(),
                    reason="make install has not run (the target would install first)")
def test_device_cuda_without_a_gpu_stops_before_preprocessing(tmp_path):
    from tests.gpu.conftest import gpu_unusable
    if not gpu_unusable("cuda"):
        pytest.skip("a GPU is usable here")
    raw = tmp_path / "gpu-check-raw"
    raw.mkdir()
    (raw / "labels.csv").write_text("image,level\n")
    proc = subprocess.run(["make", "-s", "--no-print-directory", "train", "DEVICE=cuda",
                           "DATA=%s" % raw], cwd=str(ROOT), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: DEVICE=cuda: "), proc.stderr
    assert not (ROOT / "data" / "processed" / "gpu-check-raw.h5").exists()


def test_help_lists_every_target():
    text = (ROOT / "Makefile").read_text()
    phony = text[text.index(".PHONY:") + 7:].split("\n\n")[0].replace("\\\n", " ").split()
    shown = subprocess.run(["make", "-s", "--no-print-directory", "help"], cwd=str(ROOT),
                           capture_output=True, text=True, timeout=60).stdout
    missing = [t for t in phony if "make %s " % t not in shown.replace("\n", " \n")
               and t != "help"]
    assert len(phony) > 20 and not missing, missing


def test_the_default_data_is_the_embedded_sample_and_kaggle_is_asked_for_by_name():
    dry = subprocess.run(["make", "-n", "--no-print-directory", "reproduce", "WEIGHTS=w"],
                         cwd=str(ROOT), capture_output=True, text=True, timeout=60).stdout
    assert "--data data/processed/sample.h5" in dry and "--scenario" not in dry
    dry = subprocess.run(["make", "-n", "--no-print-directory", "preprocess", "DATA=kaggle"],
                         cwd=str(ROOT), capture_output=True, text=True, timeout=60).stdout
    assert "pipeline download --out data/kaggle" in dry


@pytest.mark.skipif(not (ROOT / ".venv" / ".installed-stamp").exists(),
                    reason="make install has not run (the target would install first)")
def test_reproduce_says_first_what_it_will_run_on_which_data():
    proc = subprocess.run(["make", "-s", "--no-print-directory", "reproduce-plan"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120)
    line = proc.stdout.strip().splitlines()[0]
    assert line.startswith("reproduce: scenarios 1, 2, 3, 4, scratch, seed the scenario's, on "
                           "data/sample (the embedded IDRiD sample"), line
    assert "min on a 2-core CPU" in line
    dry = subprocess.run(["make", "-n", "--no-print-directory", "reproduce", "WEIGHTS=w"],
                         cwd=str(ROOT), capture_output=True, text=True, timeout=60).stdout
    lines = dry.splitlines()
    assert "--plan" in lines[0], lines  # before preprocessing or any download
    assert any("download-weights" in line for line in lines[1:])


def test_the_makefile_exports_the_command_as_typed_for_the_runs_to_record():
    """Runs record the outermost make's goals and command-line variables (what the README
    says made each section); a sub-make keeps the outer command."""
    proc = subprocess.run(["make", "-s", "--no-print-directory", "--eval",
                           'drt-show: ; @echo "$$DRT_MAKE_COMMAND"', "drt-show", "SEEDS=0,1",
                           "SCENARIO=1 3"], cwd=str(ROOT), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    from pipeline.runs.rundir import command_line
    os.environ["DRT_MAKE_COMMAND"], saved = proc.stdout.strip(), os.environ.get(
        "DRT_MAKE_COMMAND")
    try:  # as the runs record it: the variables in the order they were typed
        assert command_line() == "make drt-show SEEDS=0,1 SCENARIO='1 3'", proc.stdout
    finally:
        if saved is None:
            del os.environ["DRT_MAKE_COMMAND"]
        else:
            os.environ["DRT_MAKE_COMMAND"] = saved
