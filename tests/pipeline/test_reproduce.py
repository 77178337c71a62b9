"""reproduce never reports a run made with other settings."""
import json

from pipeline.config import load_scenario
from pipeline.reproduce import reproduce
from pipeline.train import train
from tests.pipeline.test_train import MINI, data_h5  # noqa: F401  (module fixture)


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
