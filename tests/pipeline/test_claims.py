"""pipeline.claims: verdicts from intervals, and the claims' scenarios."""
from pipeline.claims import CLAIMS, verdict


def test_verdicts():
    assert verdict("better", 0, [0.01, 0.2]) == "holds"
    assert verdict("better", 0, [-0.2, -0.01]) == "does not hold"
    assert verdict("better", 0, [-0.1, 0.1]) == "inconclusive at this size"
    assert verdict("no worse", 0.05, [-0.04, 0.1]) == "holds"
    assert verdict("no worse", 0.05, [-0.2, -0.06]) == "does not hold"
    assert verdict("no worse", 0.05, [-0.1, 0.02]) == "inconclusive at this size"


def test_every_claim_compares_two_scenarios_that_have_files():
    from pipeline.config import load_scenario
    for text, a, b, kind, margin in CLAIMS:
        assert kind in ("better", "no worse") and a != b
        load_scenario(a), load_scenario(b)


def test_both_eyes_row_on_a_simulation_where_the_fellow_eye_helps():
    import numpy as np
    from pipeline.claims import both_eyes_row
    from tests.pipeline.test_combine import simulate
    names, truth, score = simulate(400, seed=3)
    levels = np.where(truth, 3, 0)
    patients = np.array([n.rsplit("_", 1)[0] for n in names])

    def part(rows):
        return {"names": names[rows], "score": score[rows], "levels": levels[rows],
                "patients": patients[rows]}
    run = {"config": {"threshold": 2}, "predictions": part(slice(400, 800))}
    text, where, evidence, decided = both_eyes_row("4", run, part(slice(0, 400)), 200)
    assert where == "4, both eyes vs one" and decided == "holds", evidence
    assert "(test split, 400 images, 400 with their fellow eye" in evidence
    one_eye = {k: v[::2] for k, v in part(slice(0, 400)).items()}  # no fellow eyes at all
    assert both_eyes_row("4", run, one_eye, 200)[3] == "not measured"
    assert both_eyes_row("4", run, None, 200)[2].startswith("not measured: evaluate the run")
