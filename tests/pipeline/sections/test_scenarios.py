"""pipeline.sections.scenarios: per-scenario tables say how each row was evaluated."""
from tests.pipeline.fakes import fake_evaluated_run


def test_seeds_evaluated_differently_are_not_pooled_and_each_row_says_how(tmp_path):
    """The header took the first run's TTA and rule for every row, and the seeds' mean
    and ensemble pooled runs evaluated with and without TTA."""
    import numpy as np
    from pipeline.sections.scenarios import scenario_tables
    rng = np.random.RandomState(0)
    levels = rng.randint(0, 5, 40)
    score = rng.uniform(0, 1, 40)
    runs = [fake_evaluated_run(tmp_path / "a", 0, True, score, levels),
            fake_evaluated_run(tmp_path / "b", 1, False, score, levels)]
    md = "\n".join(scenario_tables({"4": runs}, resamples=20))
    assert "4-rotation TTA" not in md.split("| scenario |")[0].replace(
        "evaluated differently: each row says how", "")  # the header claims no one setting
    assert "| 0 (4-rotation TTA, cut: sensitivity >= 0.87) |" in md
    assert "| 1 (no TTA, cut: sensitivity >= 0.87) |" in md
    assert "not pooled: not comparable: 4-rotation TTA in one, no TTA in the other" in md
    assert "| mean ± sd" not in md and "ensemble of" not in md
    alike = [fake_evaluated_run(tmp_path / "c", 0, True, score, levels),
             fake_evaluated_run(tmp_path / "d", 1, True, score, levels)]
    md = "\n".join(scenario_tables({"4": alike}, resamples=20))
    assert "(40 images; 4-rotation TTA, cut: sensitivity >= 0.87)" in md
    assert "mean ± sd of 2" in md and "| 0 |" in md
