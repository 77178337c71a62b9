"""pipeline.kaggle_test: the submission and its score on a generated "Kaggle test" folder
with a generated solution file; resume after kill -9; each refusal."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pipeline.recipe.config import load_scenario
from pipeline.errors import InputError
from pipeline.evaluate import evaluate
from pipeline.evidence.grading import kappa
from pipeline.kaggle_test import check_submission, kaggle_test, read_solution
from pipeline.preprocess import preprocess
from pipeline.data.synthetic import make_dataset
from pipeline.train import train
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def levels_run(synthetic_dir, tmp_path_factory):
    """A 5-level GoogLeNet run (scenario 3's linear classifier, random weights), evaluated,
    and a generated test folder of other patients with its solution file."""
    d = tmp_path_factory.mktemp("kaggle")
    preprocess(str(synthetic_dir), str(d / "data.h5"), size=256, progress=False)
    run = train(load_scenario("3", ["init=random", "target=levels"]), str(d / "data.h5"),
                runs_root=str(d / "runs"), progress=False)
    evaluate(run, str(d / "data.h5"), resamples=50, progress=False)
    rows = make_dataset(str(d / "kaggle"), patients=9, width=360, height=240, seed=11)
    os.rename(d / "kaggle" / "images", d / "kaggle" / "test")
    with open(d / "solution.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "level", "Usage"])
        for i, (name, level) in enumerate(rows):
            writer.writerow([name, level, ("Public", "Private")[i // 2 % 2]])
    return run, d / "kaggle", d / "solution.csv", dict(rows)


def test_submission_and_score_on_a_generated_test_set(levels_run):
    run, data, solution, truth = levels_run
    out, failed = kaggle_test(run, data, solution, progress=False)
    assert failed == 0
    levels = check_submission(out / "submission.csv", set(truth))
    assert sorted(levels) == sorted(truth) and set(levels.values()) <= set(range(5))
    score = json.loads((out / "score.json").read_text())
    for usage in ("Public", "Private"):
        names = sorted(n for i, n in enumerate(truth) if ("Public", "Private")[i // 2 % 2] == usage)
        assert score[usage]["images"] == len(names)
        expected = kappa([truth[n] for n in names], [levels[n] for n in names])
        assert score[usage]["kappa"]["value"] == pytest.approx(expected)
        lo, hi = score[usage]["kappa"]["ci"]
        assert lo <= score[usage]["kappa"]["value"] <= hi
    with np.load(out / "predictions.npz") as p:  # the grades are the run's tuned cut-points
        cuts = json.loads((run / "evaluation.json").read_text())["operating_point"]["cuts"]
        grade = p["probs"] @ np.arange(5)
        assert (p["levels"] == np.searchsorted(cuts, grade, side="right")).all()


def test_an_unreadable_image_is_graded_0_but_left_out_of_the_auc():
    """Its black substitute's probability is no prediction of the image: in the AUC it
    would be a score the network never gave; the kappa keeps the 0 it was submitted as."""
    from sklearn.metrics import roc_auc_score
    from pipeline.kaggle_test import score_submission
    rng = np.random.RandomState(0)
    names = ["%d_%s" % (i // 2, ("left", "right")[i % 2]) for i in range(40)]
    true = rng.randint(0, 5, 40)
    probs = np.eye(5)[true] * 0.6 + 0.08  # a good model
    failed = [names[3], names[10]]
    for name in failed:  # what a black image scored: confidently wrong
        k = names.index(name)
        probs[k] = np.eye(5)[0 if true[k] >= 2 else 4] * 0.6 + 0.08
    levels = probs.argmax(axis=1)
    levels[[3, 10]] = 0
    truth = {n: (int(t), "Private") for n, t in zip(names, true)}
    out = score_submission(names, probs, levels, truth, {"target": "levels", "threshold": 2},
                           failed)["Private"]
    keep = [k for k in range(40) if k not in (3, 10)]
    score = probs[:, 2:].sum(axis=1)
    assert out["auc_referable"]["value"] == pytest.approx(
        roc_auc_score(true[keep] >= 2, score[keep]))
    assert out["auc_unreadable_left_out"] == 2 and out["images"] == 40
    assert out["kappa"]["value"] == pytest.approx(kappa(true, levels))


def test_a_killed_run_resumes_to_the_uninterrupted_files(levels_run, tmp_path):
    run, data, _, _ = levels_run
    reference = tmp_path / "reference"
    shutil.copytree(run, reference, ignore=shutil.ignore_patterns("kaggle-test"))
    kaggle_test(reference, data, progress=False, chunk=4)
    killed = tmp_path / "killed"
    shutil.copytree(run, killed, ignore=shutil.ignore_patterns("kaggle-test"))
    args = [sys.executable, "-m", "pipeline", "kaggle-test", "--run", str(killed), "--data",
            str(data), "--chunk", "4"]
    proc = subprocess.Popen(args, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    chunks = killed / "kaggle-test" / data.name / "chunks"
    deadline = time.time() + 300
    while time.time() < deadline and not (chunks.exists() and any(chunks.glob("0000*.npz"))):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in chunks.glob("*.npz"))
    assert 0 < len(done) < 5, done  # killed part-way (18 images, 5 chunks)
    assert subprocess.run(args, cwd=str(ROOT), capture_output=True).returncode == 0
    for name in ("submission.csv", "predictions.npz"):
        a = reference / "kaggle-test" / data.name / name
        b = killed / "kaggle-test" / data.name / name
        if name.endswith(".csv"):
            assert a.read_bytes() == b.read_bytes()
        else:
            with np.load(a) as x, np.load(b) as y:
                for key in x.files:
                    np.testing.assert_array_equal(x[key], y[key])


def write(path, text):
    path.write_text(text)
    return path


def test_a_bad_solution_file_is_one_line_before_any_work(tmp_path):
    names = ["1_left", "1_right"]
    cases = [("image,level\n1_left,0\n", "expected the columns image,level,Usage"),
             ("image,level,Usage\n1_left,5,Public\n", ":2: level '5' of 1_left is not one of 0-4"),
             ("image,level,Usage\n1_left,0,Test\n", "Usage 'Test' of 1_left is not Public or"),
             ("image,level,Usage\n1_left,0,Public\n1_left,1,Public\n", "1_left is listed twice"),
             ("image,level,Usage\n1_left,0,Public\n", "1 missing (first ['1_right'])"),
             ("image,level,Usage\n1_left,0,Public\n1_right,0,Public\n9_left,0,Private\n",
              "1 not among them (first ['9_left'])")]
    for text, message in cases:
        with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            read_solution(write(tmp_path / "s.csv", text), names)


def test_a_submission_with_missing_duplicate_or_unknown_images_is_refused(tmp_path):
    names = {"1_left", "1_right"}
    assert check_submission(write(tmp_path / "s.csv", "image,level\n1_left,0\n1_right,4\n"),
                            names) == {"1_left": 0, "1_right": 4}
    for text, message in [("image,level\n1_left,0\n", "1 test images missing"),
                          ("image,level\n1_left,0\n1_left,1\n1_right,0\n", "listed twice"),
                          ("image,level\n1_left,0\n1_right,0\n7_left,0\n", "7_left is not a test"),
                          ("image,level\n1_left,7\n", "with a level 0-4"),
                          ("name,level\n", "expected the header image,level")]:
        with pytest.raises(InputError, match=message):
            check_submission(write(tmp_path / "s.csv", text), names)
