"""The post's claims as comparisons of test AUC between two scenarios, and their
verdicts: a paired patient bootstrap of the difference on the same images (the
test split, and the pooled out-of-fold predictions where both were cross-validated)."""
import json

import numpy as np

from .combine import aligned, fellow_scores, fit_fusion, fused_scores
from .stats import paired_difference


#: The post's claims, as comparisons of test AUC between two scenarios.
#: kind "better": A beats B; "no worse": A is at most ``margin`` below B.
CLAIMS = [
    ("Pre-trained initialisation beats random initialisation", "4", "scratch", "better", 0),
    ("For data unlike ImageNet, fine-tuning beats a linear classifier on the top features",
     "4", "1", "better", 0),
    ("For data unlike ImageNet, features from earlier layers beat the top features",
     "3", "1", "better", 0),
    ("Freezing the first two layers costs nothing (no worse than fine-tuning everything, "
     "margin 0.05 AUC)", "4", "2", "no worse", 0.05),
]
#: the scenarios the claims compare, in the post's order
CLAIM_SCENARIOS = sorted({s for claim in CLAIMS for s in claim[1:3]},
                         key=lambda s: (not s.isdigit(), s))


def verdict(kind, margin, ci):
    lo, hi = ci
    if kind == "better":
        return "holds" if lo > 0 else "does not hold" if hi < 0 else "inconclusive at this size"
    return ("holds" if lo > -margin else "does not hold" if hi < -margin
            else "inconclusive at this size")


def referable(predictions, config):
    """Each image's truth, referable DR, by the run's own target: level >= its threshold."""
    return np.asarray(predictions["levels"]) >= config.get("threshold", 2)


def scores(predictions):
    """A (score, decision) pair for ``paired_difference`` (AUC uses the scores only)."""
    return predictions["score"], predictions["score"] >= 0.5


def cut_text(rule):
    """'cut: sensitivity >= 0.87' of an operating rule (name, target)."""
    return "cut: %s" % ("unrecorded" if not rule else "Youden's J" if rule[0] == "youden"
                        else "%s >= %s" % tuple(rule))


def settings_text(design):
    """'4-rotation TTA, cut: sensitivity >= 0.87' of a ``design``."""
    return "%s, %s" % ("4-rotation TTA" if design.get("tta") else "no TTA",
                       cut_text(design.get("rule")))


def design_of(run):
    """How a run was evaluated, as far as it decides what its figures mean: its positive
    class (``threshold``), its test-time augmentation and its operating rule."""
    evaluation = run["evaluation"]
    settings = evaluation.get("settings", {})
    return {"threshold": run["config"].get("threshold", 2),
            "tta": bool(settings.get("tta", evaluation.get("tta"))),
            "rule": tuple(settings.get("rule", ()))}


def cv_design_of(cv):
    """``design_of`` a cross-validation summary, and how its folds were assigned."""
    s = cv["summary"]
    return {"threshold": s.get("threshold", 2), "tta": bool(s.get("tta")),
            "rule": tuple(s.get("rule", ())), "folds": s["folds"],
            "assignment": s.get("folds_sha1")}


def not_comparable(designs):
    """Why the figures of runs with these ``designs`` may not be compared or pooled
    ("not comparable: ..."), or None when they were all made alike."""
    reasons = []
    for key, say in (("threshold", lambda v: "referable DR is level >= %s" % v),
                     ("tta", lambda v: "4-rotation TTA" if v else "no TTA"),
                     ("rule", cut_text),
                     ("folds", lambda v: "%s folds" % v),
                     ("assignment", lambda v: "fold assignment %s" % (v or "unrecorded")[:8])):
        distinct = {}  # each value once, in the order the designs give them
        for d in designs:
            if key in d:
                distinct.setdefault(repr(d[key]), say(d[key]))
        if len(distinct) > 1:
            reasons.append(" in one, ".join(distinct.values()) + " in the other")
    return "not comparable: " + "; ".join(reasons) if reasons else None


def one_recipe(configs):
    """Whether ``configs`` are one config under several names (seeds and folds aside)."""
    from ..recipe.config import recipe
    return len({recipe(c, repeats=False) for c in configs}) == 1


def same_recipe(runs_a, runs_b):
    """Whether both sides are one config under two names (seeds and folds aside),
    trained on one data file (the same config on images preprocessed another way is a
    comparison)."""
    return one_recipe([r["config"] for r in runs_a + runs_b]) and len(
        {r.get("env", {}).get("data_sha1") for r in runs_a + runs_b}) == 1


def side_by_side(runs_a, runs_b, resamples, evaluated_alike=True):
    """(evidence, ΔAUC dict or None) of A against B on the test split: the paired
    bootstrap of the difference of their mean AUCs, or why there is none.
    ``evaluated_alike=False``: runs evaluated differently (TTA, rule) are compared too,
    where the evaluation is what differs (a reading of it); never another positive class."""
    designs = [design_of(r) for r in runs_a + runs_b]
    evaluated_apart = not_comparable(designs)
    if not evaluated_alike:
        designs = [{"threshold": d["threshold"]} for d in designs]
    reason = not_comparable(designs)
    if reason:
        return reason, None
    if same_recipe(runs_a, runs_b) and not (evaluated_apart and not evaluated_alike):
        return "not applicable: both sides are the same config", None
    pa, pb = runs_a[0]["predictions"], runs_b[0]["predictions"]
    if list(pa["names"]) != list(pb["names"]) or any(
            list(r["predictions"]["names"]) != list(pa["names"]) for r in runs_a + runs_b):
        return "not comparable: other test images", None
    truth = referable(pa, runs_a[0]["config"])
    d = paired_difference([scores(r["predictions"]) for r in runs_a],
                          [scores(r["predictions"]) for r in runs_b],
                          truth, pa["patients"], "auc", resamples)
    d["images"] = len(truth)
    return "test split, %d images, %d + %d runs, %s" % (
        len(truth), len(runs_a), len(runs_b), settings_text(design_of(runs_a[0]))), d


def differ_as_files(config_a, config_b):
    """Whether two configs differ only where their scenario files differ (the same
    overrides on both sides, or none), names aside: a comparison of the two scenarios."""
    from ..recipe.config import NAME_KEYS, flatten, load_scenario
    from ..errors import InputError
    try:
        files = [flatten(load_scenario(c["scenario"])) for c in (config_a, config_b)]
    except InputError:
        return False
    a, b = flatten(config_a), flatten(config_b)
    return all(a.get(k) == b.get(k) for k in set(a) | set(b)
               if k not in NAME_KEYS + ("fold",) and files[0].get(k) == files[1].get(k))


def cv_groups(cv, scenario):
    """The cross-validations of ``scenario`` (``load_cv``'s) grouped by design, seeds
    apart: [[one entry per seed, by seed]]."""
    groups = {}
    for c in cv.get(scenario, []):
        config = dict(c["summary"].get("config", {}), seed=None)
        key = json.dumps([cv_design_of(c), config], sort_keys=True, default=str)
        groups.setdefault(key, []).append(c)
    return [sorted(g, key=lambda c: c["summary"]["seed"]) for _, g in sorted(groups.items())]


def cv_pairs(cv, a, b):
    """[(the seeds' CVs of a, of b)] that may be compared: the same design (folds, fold
    assignment, positive class, TTA, rule), configs that differ only where the scenario
    files do, and the same seeds (those of one side only are left out)."""
    out = []
    for ga in cv_groups(cv, a):
        for gb in cv_groups(cv, b):
            ca, cb = ga[0], gb[0]
            if "config" not in ca["summary"] or "config" not in cb["summary"] or \
                    not_comparable([cv_design_of(ca), cv_design_of(cb)]) or not differ_as_files(
                        dict(ca["summary"]["config"], seed=None),
                        dict(cb["summary"]["config"], seed=None)):
                continue
            seeds = sorted({c["summary"]["seed"] for c in ga} & {c["summary"]["seed"] for c in gb})
            if seeds:
                out.append(([c for c in ga if c["summary"]["seed"] in seeds],
                            [c for c in gb if c["summary"]["seed"] in seeds]))
    return out


def cv_overrides(group):
    """The overrides of a CV's config against its scenario file (seeds and folds aside)."""
    from ..runs.evaluated import overrides_of
    return list(overrides_of(group[0]["summary"]["config"]))


def cv_difference(ga, gb, resamples):
    """(evidence, ΔAUC dict or None) of the pooled out-of-fold predictions of A against B,
    each side the ensemble (mean score) of its seeds; with several seeds, the evidence
    gives the seed-to-seed sd of the single seeds' ΔAUC too, and the overrides of either
    side are named. Both sides one config under two names: not applicable."""
    from .metrics import auc
    if one_recipe([g[0]["summary"]["config"] for g in (ga, gb)]):
        return "not applicable: both sides are the same config", None
    names = ga[0]["oof"]["names"]
    if any(sorted(map(str, c["oof"]["names"])) != sorted(map(str, names)) for c in ga + gb):
        return "not comparable: other images out of fold", None
    sides = [[aligned(c["oof"], names) for c in g] for g in (ga, gb)]
    truth = referable(sides[0][0], ga[0]["summary"])
    mean = [np.mean([p["score"] for p in side], axis=0) for side in sides]
    d = paired_difference([(mean[0], mean[0] >= 0.5)], [(mean[1], mean[1] >= 0.5)], truth,
                          sides[0][0]["patients"], "auc", resamples)
    d["seeds"], d["images"] = [c["summary"]["seed"] for c in ga], len(truth)
    seeds = ""
    if len(ga) > 1:
        each = [auc(pa["score"], truth) - auc(pb["score"], truth)
                for pa, pb in zip(sides[0], sides[1])]
        d["seed_sd"] = float(np.std(each, ddof=1))
        seeds = ", ensembles of %d seeds (seed-to-seed sd of ΔAUC %.3f)" % (len(ga), d["seed_sd"])
    overrides = sorted(set(cv_overrides(ga)) | set(cv_overrides(gb)))
    d["overrides"] = len(overrides)
    return "%d-fold CV, out-of-fold, %d images, %d patients%s, %s%s" % (
        ga[0]["summary"]["folds"], len(truth), len(set(map(str, sides[0][0]["patients"]))),
        seeds, settings_text(cv_design_of(ga[0])),
        ", with %s" % ", ".join(overrides) if overrides else ""), d


def claim_evidence(by_scenario, cv, resamples):
    """Every comparison of each claim, as dicts: claim, scenarios, evidence, verdict,
    source ("split": the test split; "cv": pooled out-of-fold predictions of a
    cross-validation of both scenarios alike) and images (0 without a difference).
    Verdict "not applicable" where the two sides are one config, "not measured" where
    there is no comparable evidence."""
    rows = []
    for text, a, b, kind, margin in CLAIMS:
        where = "%s vs %s" % (a, b)
        evidence = []
        if a in by_scenario and b in by_scenario:
            evidence.append(("split",) + side_by_side(by_scenario[a], by_scenario[b], resamples))
        for ga, gb in cv_pairs(cv, a, b):
            evidence.append(("cv",) + cv_difference(ga, gb, resamples))
        if not evidence:
            evidence.append(("split", "not measured: evaluate both scenarios on this data", None))
        for source, said, d in evidence:
            row = {"claim": text, "scenarios": where, "source": source, "images": 0}
            if d is None:
                row.update(evidence=said, verdict="not applicable" if said.startswith(
                    "not applicable") else "not measured")
            else:
                decided = verdict(kind, margin, d["ci"])
                row.update(images=d["images"], overrides=d.get("overrides", 0),
                           verdict=decided, evidence=(
                    "ΔAUC %+.3f [%+.3f, %+.3f]%s (%s)%s" % (
                        d["value"], d["ci"][0], d["ci"][1],
                        " against the margin %+.3f" % -margin if kind == "no worse" else "",
                        said, "; " + detectable_text(d, kind, margin)
                        if decided.startswith("inconclusive") else "")))
            rows.append(row)
    return rows


def claim_rows(by_scenario, cv, resamples):
    """``claim_evidence`` as (claim, scenarios, evidence, verdict) tuples."""
    return [(r["claim"], r["scenarios"], r["evidence"], r["verdict"])
            for r in claim_evidence(by_scenario, cv, resamples)]


def headline(rows):
    """(one row per claim: its largest evidence, by images, cross-validation first on a
    tie, then the fewest overrides; the other rows), from ``claim_evidence``'s rows."""
    best = {}
    for row in rows:
        key = (row["images"], row["source"] == "cv", -row.get("overrides", 0))
        if row["claim"] not in best or key > best[row["claim"]][0]:
            best[row["claim"]] = (key, row)
    shown = [row for _, row in best.values()]
    return shown, [row for row in rows if not any(row is s for s in shown)]


def detectable(d, kind, margin):
    """How far an inconclusive difference ``d`` (paired_difference's, with ``images``) is
    from decisive: (the interval's half-width, the smallest |ΔAUC| from the decision
    point, 0 or minus the margin, that this many images could have detected; the images
    that would decide it at the observed difference, None if it sits on the point). The
    rule: an interval's half-width shrinks as 1/sqrt(n), and the verdict is decided once
    the half-width is below the observed distance from the point, so
    n' = n (half-width / distance)^2."""
    half = (d["ci"][1] - d["ci"][0]) / 2
    distance = abs(d["value"] - (0 if kind == "better" else -margin))
    return half, (int(np.ceil(d["images"] * (half / distance) ** 2)) if distance > 1e-9
                  else None)


def detectable_text(d, kind, margin):
    half, needed = detectable(d, kind, margin)
    point = "0" if kind == "better" else "the margin"
    return ("could not detect a ΔAUC within %.3f of %s with %d images; at the observed %+.3f, "
            "%s (half-width as 1/√n)" % (
                half, point, d["images"], d["value"],
                "about %s images would decide it" % format(needed, ",") if needed
                else "no number of images decides it (it sits on %s)" % point))


BOTH_EYES = ("Beyond the post: a patient's other eye helps (this eye's and the fellow eye's "
             "scores in a logistic model fitted on validation, against this eye alone)")


def both_eyes_row(scenario, run, val, resamples):
    """The claims-table row of both-eye fusion for the first run of ``scenario``, given its
    validation predictions ``val`` (None: evaluated before they were kept)."""
    where = "%s, both eyes vs one" % scenario
    if val is None:
        return (BOTH_EYES, where, "not measured: evaluate the run again (its validation "
                "predictions are not kept)", "not measured")
    config, test = run["config"], run["predictions"]
    weights = fit_fusion(val["names"], val["score"], referable(val, config))
    if weights is None:
        return (BOTH_EYES, where, "not measured: fewer than 10 validation images whose "
                "fellow eye (`<id>_left` / `<id>_right`) is there too, or one class only",
                "not measured")
    fused, truth = fused_scores(test, weights), referable(test, config)
    d = paired_difference([(fused, fused >= 0.5)], [(test["score"], test["score"] >= 0.5)],
                          truth, test["patients"], "auc", resamples)
    paired = int((~np.isnan(fellow_scores(test["names"], test["score"]))).sum())
    return (BOTH_EYES, where, "ΔAUC %+.3f [%+.3f, %+.3f] (test split, %d images, %d with "
            "their fellow eye; first seed; weights own %.2f, fellow %.2f)" % (
                d["value"], d["ci"][0], d["ci"][1], len(truth), paired, weights[0],
                weights[1]), verdict("better", 0, d["ci"]))
