"""make fourcases: the grid as data, bad input refused before anything trains, every
size scored on the same out-of-fold images, a repeat retraining nothing."""
import csv
import json
import os
import shutil

import numpy as np
import pytest

from pipeline import fourcases
from pipeline.data.synthetic import make_dataset
from pipeline.errors import InputError
from pipeline.recipe.config import ROOT, load_scenario

MINI = ["network=mini", "crop=64", "init=random", "epochs=1", "batch_size=8"]


def class_dir(path, classes=("watch", "bonsai", "ketch"), per_class=9):
    """A few of the embedded Caltech-101 photographs, in the data's own layout."""
    source = ROOT / "data" / "caltech"
    (path / "images").mkdir(parents=True)
    with open(source / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["class"] in classes]
    kept = [r for c in classes for r in [r for r in rows if r["class"] == c][:per_class]]
    with open(path / "labels.csv", "w") as f:
        f.write("image,class\n" + "".join("%s,%s\n" % (r["image"], r["class"]) for r in kept))
    for r in kept:
        shutil.copy(source / "images" / (r["image"] + ".jpg"), path / "images")
    return path


def write_grid(path, similar, different, sizes="[0.5, 1]", scenarios=None, folds=3,
               datasets=("different", "similar")):
    scenarios = scenarios or {"1": "", "4": "sizes = [0.5, 1]", "scratch": "sizes = [0.5, 1]"}
    text = ["folds = %d" % folds, "seeds = [0]", "sizes = %s" % sizes, "size = 80",
            "set = %s" % json.dumps(MINI)]
    for name, folder, similarity, metric in (("different", different, "different", "auc"),
                                             ("similar", similar, "similar", "accuracy")):
        if name not in datasets:
            continue
        text += ["[[dataset]]", 'name = "%s"' % name, 'data = "%s"' % folder,
                 'similarity = "%s"' % similarity, 'metric = "%s"' % metric, "margin = 0.05",
                 "tta = false"]
    for scenario, body in scenarios.items():
        text += ["[scenario.%s]" % scenario, body]
    text += ["[lesson]", "large_from = 1000", 'similar = { small = "1", large = "4" }',
             'different = { small = "1", large = "4" }',
             "[[claim]]", 'text = "pre-training beats random initialisation"',
             'dataset = "similar"', 'a = "4"', 'b = "scratch"', 'kind = "better"']
    path.write_text("\n".join(text) + "\n")
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("fourcases")
    similar = class_dir(d / "photos")
    make_dataset(str(d / "fundus"), patients=18, width=300, height=200, seed=4)
    return d, similar, d / "fundus"


@pytest.fixture(scope="module")
def grid_run(inputs):
    d, similar, different = inputs
    grid = fourcases.read_grid(write_grid(d / "grid.toml", similar, different))
    summary = fourcases.run(grid, None, str(d / "runs"), progress=False, resamples=50,
                            processed=str(d / "processed"))
    return d, grid, summary


@pytest.fixture
def no_training(monkeypatch):
    """Any training (fine-tuning or a feature fit) fails the test: everything is reused."""
    def refuse(*args, **kwargs):
        raise AssertionError("retrained")
    monkeypatch.setattr("pipeline.train.finetune", refuse)
    monkeypatch.setattr("pipeline.train.train_features", refuse)


def test_every_cell_runs_and_every_size_is_scored_on_the_same_images(grid_run):
    d, grid, summary = grid_run
    assert summary["missing"] == []
    root = d / "runs" / "fourcases"
    for dataset, n in (("similar", 27), ("different", 36)):
        names = None
        for scenario, sizes in (("1", ("0.5", "1")), ("4", ("0.5", "1"))):
            for size in sizes:
                cell = sorted(np.concatenate([
                    np.load(root / ("%s-%s-size%s-seed0-fold%d" % (dataset, scenario, size, k))
                            / "predictions.npz")["names"] for k in range(3)]))
                assert len(cell) == n == len(set(cell))  # every image out of fold once
                names = cell if names is None else names
                assert cell == names  # the same test images at every size and recipe
    curves = {d["name"]: d["curves"] for d in summary["datasets"]}
    half, full = curves["similar"]["1"]
    assert half["train_images"] < full["train_images"]
    assert summary["cells"] and all(c["lesson"] == "1" for c in summary["cells"])
    assert (root / "size_curves.png").stat().st_size > 0
    timing = {t["cell"]: t for t in summary["timing"]}
    runs = sorted(root.glob("different-4-size0.5-seed0-fold*"))
    recorded = 0.0
    for r in runs:  # training seconds per epoch, then the evaluation's
        with open(r / "metrics.csv", newline="") as f:
            recorded += sum(float(row["seconds"]) for row in csv.DictReader(f))
        recorded += json.loads((r / "evaluation.json").read_text())["seconds"]
    assert len(runs) == 3 and abs(timing["different 4 at size 0.5"]["seconds"] - recorded) < 1e-6
    assert abs(sum(t["seconds"] for t in summary["timing"]) - summary["seconds"]) < 1e-6


def test_a_subset_fine_tunes_with_its_full_training_parts_steps(grid_run):
    d, _, _ = grid_run
    root = d / "runs" / "fourcases"

    def iterations(size):
        with open(root / ("similar-4-size%s-seed0-fold0" % size) / "metrics.csv") as f:
            return [int(r["iteration"]) for r in csv.DictReader(f)]
    half = json.loads((root / "similar-4-size0.5-seed0-fold0" / "config.json").read_text())
    assert half["train_size"] == 0.5 and iterations("0.5") == iterations("1")


def test_the_class_accuracy_is_that_of_the_pooled_predictions(grid_run):
    from sklearn.metrics import accuracy_score
    d, _, summary = grid_run
    root = d / "runs" / "fourcases"
    parts = [np.load(root / ("similar-1-size1-seed0-fold%d" % k) / "predictions.npz")
             for k in range(3)]
    truth = np.concatenate([p["levels"] for p in parts])
    pred = np.concatenate([p["probs"].argmax(axis=1) for p in parts])
    curve = {d["name"]: d["curves"] for d in summary["datasets"]}["similar"]["1"]
    assert curve[-1]["value"] == pytest.approx(accuracy_score(truth, pred))


def test_a_repeat_retrains_nothing(grid_run, no_training):
    d, grid, first = grid_run
    again = fourcases.run(grid, None, str(d / "runs"), progress=False, resamples=50,
                          processed=str(d / "processed"))
    assert "36 runs (36 finished)" in again["plan"]
    assert again["claims"] == first["claims"] and again["cells"] == first["cells"]


def test_the_report_of_the_four_cases_alone_is_written(grid_run):
    """A RUNS holding the grid and no run of its own (a fresh clone after make fourcases
    SUMMARY=1): the report, and so make results SECTION='four cases', still have it."""
    from pipeline.report import write_report
    d, _, _ = grid_run
    write_report(d / "runs", d / "processed" / "fundus.h5", resamples=50)
    md = (d / "runs" / "report-fundus.md").read_text()
    assert "## The four cases, measured" in md and "| pre-training beats" in md.lower()


def test_a_fresh_clone_resumes_from_the_kept_evidence_and_trains_nothing(grid_run, tmp_path,
                                                                         no_training):
    """The grid kept in a folder (results/fourcases) and restored into an empty RUNS (a new
    machine, the same data): every run finished, no model there, the summary the same."""
    d, grid, first = grid_run
    keep = tmp_path / "kept"
    fourcases.run(grid, None, str(d / "runs"), progress=False, resamples=50,
                  processed=str(d / "processed"), keep=str(keep))
    assert len(list(keep.iterdir())) == 36
    assert not list(keep.glob("*/model.npz")) and not list(keep.glob("*/*.png"))
    again = fourcases.run(grid, None, str(tmp_path / "fresh"), progress=False, resamples=50,
                          processed=str(d / "processed"), keep=str(keep))
    assert "36 runs (36 finished)" in again["plan"]
    assert not list((tmp_path / "fresh").glob("fourcases/*/model.npz"))
    assert again["claims"] == first["claims"] and again["cells"] == first["cells"]
    assert again["timing"] == first["timing"]


def test_bad_input_is_one_line_before_anything_trains(inputs, tmp_path):
    d, similar, different = inputs
    both = tmp_path / "both"
    shutil.copytree(similar, both)
    (both / "labels.csv").write_text("image,level,class\nwatch_image_0001,0,watch\n")
    bad = {
        "a labels.csv with both columns": (dict(similar=both), "both level and class"),
        "a class with fewer images than folds": (dict(folds=10), "fewer than the 10 folds"),
        "a size leaving a class without images": (dict(sizes="0.01"), "keeps no image"),
        "a count larger than a class holds": (dict(sizes="50"), "holds only"),
        "a size that is neither": (dict(sizes="1.5"), "count must be a whole number"),
        "a dataset the grid lacks": (dict(datasets=["photos"]), "datasets: photos is not one"),
    }
    for what, (change, message) in bad.items():
        grid_file = write_grid(tmp_path / "grid.toml", change.get("similar", similar),
                               different, folds=3)
        with pytest.raises(InputError) as e:
            grid = fourcases.read_grid(grid_file, sizes=change.get("sizes"),
                                       folds=change.get("folds"),
                                       datasets=change.get("datasets"))
            fourcases.plan(grid, None, str(tmp_path / "runs"), str(tmp_path / "processed"))
        assert message in str(e.value) and "\n" not in str(e.value), what
        assert not (tmp_path / "runs").exists()


def test_datasets_keeps_only_the_named_datasets_cells(inputs, tmp_path):
    d, similar, different = inputs
    grid = fourcases.read_grid(write_grid(tmp_path / "grid.toml", similar, different, folds=3),
                               datasets=["similar"])
    assert [x["name"] for x in grid["dataset"]] == ["similar"]
    tasks, line = fourcases.plan(grid, None, str(tmp_path / "runs"), str(tmp_path / "processed"))
    assert tasks and {t["dataset"] for t in tasks} == {"similar"} and "different" not in line


def test_a_scenario_that_cannot_apply_to_class_data_is_refused_by_name():
    with pytest.raises(InputError, match="4-levels grades five DR levels"):
        load_scenario("4-levels", classes=["a", "b"])
    with pytest.raises(InputError, match="no such scenario.*grid of make fourcases"):
        load_scenario("fourcases")


def test_the_grid_as_a_sweep_gives_the_summary_of_the_run_here(inputs, tmp_path):
    """ENGINE=local -jN / slurm: the same tasks as train commands in tasks.mk, run by make,
    the finish step evaluating and summarising: the summary equals the in-process one."""
    import subprocess
    import sys
    d, similar, different = inputs
    grid_file = write_grid(tmp_path / "grid.toml", similar, different, sizes="[1]",
                           scenarios={"1": ""}, datasets=("similar",))
    args = {"grid": str(grid_file), "processed": str(tmp_path / "processed"), "resamples": 50}
    here = fourcases.run(fourcases.grid_of(args), None, str(tmp_path / "here"), progress=False,
                         resamples=50, processed=args["processed"])
    fourcases.run(fourcases.grid_of(args), None, str(tmp_path / "swept"), progress=False,
                  processed=args["processed"], sweep={"args": args})
    plan = tmp_path / "swept" / "fourcases"
    commands = (plan / "tasks.txt").read_text().splitlines()
    assert len(commands) == 3 and all("--name similar-1-size1-seed0-fold" in c for c in commands)
    proc = subprocess.run(["make", "-s", "-j2", "-f", str(plan / "tasks.mk")], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PATH=os.path.dirname(sys.executable) + ":"
                                   + os.environ["PATH"]))
    assert proc.returncode == 0, proc.stderr[-2000:]
    swept = json.loads((plan / "fourcases.json").read_text())
    assert swept["datasets"] == here["datasets"] and swept["cells"] == here["cells"]


def test_the_report_of_class_data_lists_its_runs_by_accuracy(grid_run):
    """make report DATA=photos: no DR section (no referable class), every run's accuracy
    with its interval over images, the classes named."""
    from pipeline.report import write_report
    d, _, _ = grid_run
    root = d / "runs" / "fourcases"
    write_report(root, d / "processed" / "photos.h5", resamples=50)
    md = (root / "report-photos.md").read_text()
    assert "in 3 classes: bonsai, ketch, watch" in md and "referable" not in md.split("##")[1]
    assert md.count("| similar-") == 18  # scenarios 1, 4, scratch x 2 sizes x 3 folds
    assert "| split | bonsai | ketch | watch | total |" in md
    assert "## The post's claims" not in md


def test_runs_reusable_from_the_cv_folds_count_as_finished_and_train_none(grid_run, tmp_path,
                                                                         no_training):
    """The plan line counts what train will reuse: here every run, from a RUNS whose
    cv-k3 (make reproduce CV=3's fold runs) holds the grid's finished runs."""
    d, grid, first = grid_run
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "cv-k3").symlink_to(d / "runs" / "fourcases")
    tasks, line = fourcases.plan(grid, None, str(runs), str(d / "processed"))
    assert "36 runs (36 finished), at most about 0 min" in line
    again = fourcases.run(grid, None, str(runs), progress=False, resamples=50,
                          processed=str(d / "processed"))
    assert again["cells"] == first["cells"]
