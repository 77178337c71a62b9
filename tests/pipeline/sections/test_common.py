"""pipeline.sections.common: the commands and the time behind a table."""
from pipeline.recipe.config import load_scenario
from tests.pipeline.fakes import fake_evaluated_run


def test_each_section_names_the_commands_its_runs_recorded_and_their_time(tmp_path):
    """The README said it was made by commands that could not make it; now each section
    lists what its runs recorded, and the time beside the plan's estimate for them."""
    import numpy as np
    from pipeline.sections.common import made_by, timing_line
    from pipeline.recipe.estimate import estimate_seconds
    rng = np.random.RandomState(0)
    runs = [fake_evaluated_run(tmp_path / n, 0, True, rng.uniform(0, 1, 20), rng.randint(0, 5, 20))
            for n in ("a", "b")]
    runs[0]["env"] = {"command": "make reproduce WEIGHTS=w"}
    runs[1]["env"] = {"command": "make train SCENARIO=4"}
    for run in runs:
        run["evaluation"].update(command="make reproduce WEIGHTS=w", seconds=20.0)
    assert made_by(runs) == ["", "*Made by: `make reproduce WEIGHTS=w`; `make train SCENARIO=4`.*"]
    data = tmp_path / "d.h5"
    import h5py
    with h5py.File(data, "w") as f:
        f.attrs["counts"] = '{"train": [50, 0, 0, 0, 20], "val": [10, 0, 0, 0, 5], "test": [10, 0, 0, 0, 5]}'
    for run in runs:
        run["config"] = load_scenario("4")
    line = timing_line(runs, data)
    estimate = 2 * estimate_seconds([load_scenario("4")], {"train": 70, "val": 15, "test": 15}, True)
    assert line.startswith("These 2 runs took 10 s to train and 40 s to evaluate")
    assert "at most %.0f s for them" % estimate in line and "took longer" not in line
