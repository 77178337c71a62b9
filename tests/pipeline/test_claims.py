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
