"""reproduce never reports a run made with other settings."""
import json

from pipeline.recipe.config import load_scenario
from pipeline.reproduce import reproduce
from pipeline.train import train
from tests.pipeline.test_train import MINI, cv_h5, data_h5  # noqa: F401  (module fixtures)


def test_a_run_with_an_override_is_not_reused_for_the_scenario(data_h5, tmp_path):  # noqa: F811
    """The defect: `make train EPOCHS=1`, then `make reproduce` reported the 1-epoch run."""
    short = train(load_scenario("4", MINI + ["epochs=1"]), data_h5, runs_root=str(tmp_path),
                  progress=False)
    runs, report = reproduce("4", MINI, data_h5, None, str(tmp_path), resamples=100,
                             progress=False)
    (run,) = runs
    assert run != short
    assert json.loads((run / "config.json").read_text()) == load_scenario("4", MINI)
    assert (tmp_path / "4-latest").resolve() == run.resolve()
    md = report.with_suffix(".md").read_text()
    assert run.name in md and short.name not in md  # the 1-epoch run was never evaluated
    stamp = (run / "DONE").stat().st_mtime_ns
    again, _ = reproduce("4", MINI, data_h5, None, str(tmp_path), resamples=100, progress=False)
    assert again == [run] and (run / "DONE").stat().st_mtime_ns == stamp  # reused, not retrained
    assert sorted(p.name for p in tmp_path.glob("4-2*")) == sorted([short.name, run.name])
    # the other data or weights than a finished run's: trained anew
    seeds, _ = reproduce("4", MINI, data_h5, None, str(tmp_path), seeds=[0, 1], resamples=100,
                         progress=False)
    assert seeds[0] == run and seeds[1] not in (run, short)


def test_make_reproduce_cv_decides_the_claim_on_every_image(cv_h5, tmp_path):  # noqa: F811
    """`make reproduce CV=3 SCENARIO="4 scratch"` on the mini network: the test split, then
    the folds as a sweep in RUNS/cv-k3 (the plan line first), then the report of RUNS,
    whose claims table decides 4 vs scratch on the pooled out-of-fold predictions."""
    import subprocess
    from pathlib import Path
    from tests.conftest import ROOT
    from tests.pipeline.test_sweep import SWEEP_MINI
    args = ["make", "-s", "--no-print-directory", "reproduce", "CV=3", "SCENARIO=4 scratch",
            "RUNS=%s" % tmp_path, "DATASET=%s" % cv_h5, "DATA=%s" % (Path(cv_h5).parent / "raw"),
            "WEIGHTS=none", "NEEDS_WEIGHTS=", "SET=%s" % " ".join(SWEEP_MINI), "TTA=0"]
    done = subprocess.run(args, cwd=str(ROOT), capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    first = done.stdout.splitlines()[0]  # make's first line: the plan
    assert first.startswith("reproduce: scenarios 4, scratch") and \
        "3-fold cross-validation by patient (6 fold runs, 0 finished already)" in first, first
    assert sorted(p.name for p in (tmp_path / "cv-k3").glob("cv-*")) and \
        len(list((tmp_path / "cv-k3").glob("*-fold*-seed0"))) == 6
    md = (tmp_path / "report-data.md").read_text()
    claims = md[md.index("## The post's claims"):md.index("## Results per scenario")]
    row = next(line for line in claims.splitlines() if "| 4 vs scratch |" in line)
    assert "3-fold CV, out-of-fold, 60 images, 30 patients" in row, row
    assert "### The other evidence" in claims and "test split, " in claims
    made = next(line for line in claims.splitlines() if line.startswith("*Made by: "))
    assert made.startswith("*Made by: `make reproduce CV=3 SCENARIO='4 scratch' "), made
    # make cv afterwards (say, for the referral) reuses those folds: nothing trains again
    args = [a for a in args if not a.startswith(("CV=", "SCENARIO="))]
    args[args.index("reproduce")] = "cv"
    done = subprocess.run(args + ["FOLDS=3", "SCENARIO=4"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.count("is a finished run of this config, data and weights: reused") \
        == 3 and "epoch" not in done.stdout, done.stdout[-2000:]
    assert not list(tmp_path.glob("4-fold*")), "a fold was trained again in RUNS"
