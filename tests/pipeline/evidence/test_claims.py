"""pipeline.evidence.claims: verdicts from intervals, and the claims' scenarios."""
from pipeline.evidence.claims import CLAIMS, verdict
from tests.pipeline.fakes import fake_evaluated_run


def test_verdicts():
    assert verdict("better", 0, [0.01, 0.2]) == "holds"
    assert verdict("better", 0, [-0.2, -0.01]) == "does not hold"
    assert verdict("better", 0, [-0.1, 0.1]) == "inconclusive at this size"
    assert verdict("no worse", 0.05, [-0.04, 0.1]) == "holds"
    assert verdict("no worse", 0.05, [-0.2, -0.06]) == "does not hold"
    assert verdict("no worse", 0.05, [-0.1, 0.02]) == "inconclusive at this size"


def test_every_claim_compares_two_scenarios_that_have_files():
    from pipeline.recipe.config import load_scenario
    for text, a, b, kind, margin in CLAIMS:
        assert kind in ("better", "no worse") and a != b
        load_scenario(a), load_scenario(b)


def test_both_eyes_row_on_a_simulation_where_the_fellow_eye_helps():
    import numpy as np
    from pipeline.evidence.claims import both_eyes_row
    from tests.pipeline.evidence.test_combine import simulate
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


def simulate_pair(n, delta, seed):
    """Two models' scores on the same n images (patients): A's positives shifted by
    d' = 1.2 + delta_dprime; a known answer for the difference in AUC."""
    import numpy as np
    rng = np.random.RandomState(seed)
    truth = rng.rand(n) < 0.5
    shared = rng.normal(0, 1, n)  # the images' own difficulty, seen by both models
    a = shared * 0.7 + rng.normal(0, 0.7, n) + truth * (1.2 + delta)
    b = shared * 0.7 + rng.normal(0, 0.7, n) + truth * 1.2
    return truth, a, b, np.arange(n)


def test_the_detectable_difference_rule_against_a_simulation():
    """The rule: the interval's half-width shrinks as 1/sqrt(n). Measured: the half-width
    at 4n images is about half that at n; and at the number of images the rule says
    would decide an inconclusive difference (times two, for margin), most simulated
    studies of that size decide it."""
    import numpy as np
    from pipeline.evidence.claims import detectable
    from pipeline.evidence.stats import paired_difference

    def study(n, delta, seed):
        truth, a, b, patients = simulate_pair(n, delta, seed)
        d = paired_difference([(a, a > 0)], [(b, b > 0)], truth, patients, "auc", 300, seed)
        d["images"] = n
        return d
    halves = {n: np.mean([np.diff(study(n, 0.0, s)["ci"])[0] / 2 for s in range(4)])
              for n in (150, 600)}
    assert 0.4 < halves[600] / halves[150] < 0.6, halves
    small = study(150, 0.25, 7)  # a true but small advantage of A
    assert verdict("better", 0, small["ci"]) == "inconclusive at this size", small
    half, needed = detectable(small, "better", 0)
    assert half == (small["ci"][1] - small["ci"][0]) / 2 and needed > 150
    decided = [verdict("better", 0, study(2 * needed, 0.25, 100 + s)["ci"]) == "holds"
               for s in range(5)]
    assert sum(decided) >= 3, (needed, decided)
    assert detectable(dict(small, value=0.0), "better", 0)[1] is None  # on the point
    no_worse = dict(small, value=-0.05, ci=[-0.1, 0.0])
    assert detectable(no_worse, "no worse", 0.05)[1] is None  # on the margin itself


def fake_cv(scenario, truth, score, names, seed=0, folds=5):
    import numpy as np
    from pipeline.recipe.config import load_scenario
    config = dict(load_scenario(scenario), folds=folds, seed=seed)
    return {"dir": None, "summary": {"scenario": scenario, "folds": folds, "seed": seed,
                                     "tta": True, "rule": ["sensitivity", 0.87], "threshold": 2,
                                     "folds_sha1": "f" * 40, "config": config},
            "oof": {"names": names, "patients": names, "score": np.asarray(score),
                    "levels": np.where(truth, 3, 0)}}


def test_a_claim_inconclusive_on_the_split_holds_on_every_image_by_cv():
    """The same true advantage, seen on 60 test images (inconclusive) and on the pooled
    out-of-fold predictions of 600 (decisive): the claims table shows the CV verdict, the
    split's stays in the other table; with two seeds, their ensembles and the sd."""
    import numpy as np
    from pipeline.evidence.claims import claim_evidence, headline
    truth, a, b, _ = simulate_pair(600, 0.4, 12)
    names = np.array(["p%d" % i for i in range(600)])

    def run(scenario, score, rows):
        return {"config": {"scenario": scenario, "threshold": 2, "freeze": [scenario]},
                "evaluation": {"settings": {"tta": True, "rule": ["sensitivity", 0.87]}},
                "predictions": {"names": names[rows], "patients": names[rows],
                                "score": score[rows], "levels": np.where(truth[rows], 3, 0)}}
    split = slice(0, 60)
    by_scenario = {"4": [run("4", a, split)], "scratch": [run("scratch", b, split)]}
    noise = np.random.RandomState(2).normal(0, 0.05, 600)
    cv = {"4": [fake_cv("4", truth, a, names), fake_cv("4", truth, a + noise, names, seed=1)],
          "scratch": [fake_cv("scratch", truth, b, names),
                      fake_cv("scratch", truth, b - noise, names, seed=1)]}
    rows = [r for r in claim_evidence(by_scenario, cv, 300) if r["scenarios"] == "4 vs scratch"]
    assert {r["source"]: r["verdict"] for r in rows} == {
        "split": "inconclusive at this size", "cv": "holds"}, rows
    shown, others = headline(claim_evidence(by_scenario, cv, 300))
    first = next(r for r in shown if r["scenarios"] == "4 vs scratch")
    assert first["source"] == "cv" and first["images"] == 600
    assert "5-fold CV, out-of-fold, 600 images, 600 patients, ensembles of 2 seeds " \
           "(seed-to-seed sd of ΔAUC" in first["evidence"]
    split_row = next(r for r in others if r["scenarios"] == "4 vs scratch")
    assert "could not detect a ΔAUC within" in split_row["evidence"] and \
        "about " in split_row["evidence"]


def test_cvs_of_other_fold_assignments_are_never_paired():
    import numpy as np
    from pipeline.evidence.claims import claim_evidence
    truth, a, b, _ = simulate_pair(100, 0.5, 1)
    names = np.array(["p%d" % i for i in range(100)])
    other = fake_cv("scratch", truth, b, names)
    other["summary"]["folds_sha1"] = "0" * 40
    rows = claim_evidence({}, {"4": [fake_cv("4", truth, a, names)], "scratch": [other]}, 50)
    assert next(r for r in rows if r["scenarios"] == "4 vs scratch")["verdict"] == "not measured"


def test_a_claim_between_runs_evaluated_with_other_rules_is_not_comparable(tmp_path):
    import numpy as np
    from pipeline.evidence.claims import claim_rows
    rng = np.random.RandomState(1)
    levels = rng.randint(0, 5, 40)
    a = fake_evaluated_run(tmp_path / "a", 0, True, rng.uniform(0, 1, 40), levels)
    b = fake_evaluated_run(tmp_path / "b", 0, True, rng.uniform(0, 1, 40), levels,
                           rule=("youden", None))
    a["config"]["scenario"], b["config"]["scenario"] = "4", "scratch"
    row = claim_rows({"4": [a], "scratch": [b]}, {}, 20)[0]
    assert row[3] == "not measured" and row[2] == (
        "not comparable: cut: sensitivity >= 0.87 in one, cut: Youden's J in the other")


def fake_cv_with(scenario, truth, score, names, overrides):
    import numpy as np
    from pipeline.recipe.config import load_scenario
    cv = fake_cv(scenario, truth, score, names)
    cv["summary"]["config"] = dict(load_scenario(scenario, overrides), folds=5, seed=0)
    cv["oof"]["score"] = np.asarray(score)
    return cv


def test_under_cv_the_design_with_the_fewest_overrides_decides_and_overrides_are_named():
    """A CV of `4 [epochs=1]` paired with plain `1` as plain `4` does; with equal image
    counts the headline took the first in sorted-config order, and said no override."""
    import numpy as np
    from pipeline.evidence.claims import claim_evidence, headline
    truth, good, bad, _ = simulate_pair(300, 0.8, 5)
    names = np.array(["p%d" % i for i in range(300)])
    worse = np.random.RandomState(6).rand(300)  # an epochs=1 run: no skill
    cv = {"4": [fake_cv_with("4", truth, worse, names, ["epochs=1"]),
                fake_cv_with("4", truth, good, names, [])],
          "1": [fake_cv_with("1", truth, bad, names, [])]}
    rows = [r for r in claim_evidence({}, cv, 100) if r["scenarios"] == "4 vs 1"]
    assert len(rows) == 2
    shown, others = headline(rows)
    assert "epochs=1" not in shown[0]["evidence"] and shown[0]["verdict"] == "holds", shown
    (other,) = others
    assert "with epochs=1" in other["evidence"]


def test_under_cv_two_names_for_one_config_are_not_applicable():
    """`freeze=[]` makes 4 and 2 one recipe: the split said not applicable, the CV said
    +0.000 [+0.000, +0.000] holds for the no-worse claim, and that won the headline."""
    import numpy as np
    from pipeline.evidence.claims import claim_evidence, headline
    from pipeline.recipe.config import load_scenario, recipe
    assert recipe(load_scenario("4", ["freeze=[]"]), repeats=False) == \
        recipe(load_scenario("2"), repeats=False)
    truth, a, _, _ = simulate_pair(200, 0.5, 7)
    names = np.array(["p%d" % i for i in range(200)])
    cv = {"4": [fake_cv_with("4", truth, a, names, ["freeze=[]"])],
          "2": [fake_cv_with("2", truth, a, names, [])]}
    rows = [r for r in claim_evidence({}, cv, 50) if r["scenarios"] == "4 vs 2"]
    assert [r["verdict"] for r in rows] == ["not applicable"], rows
    assert headline(rows)[0][0]["verdict"] == "not applicable"
