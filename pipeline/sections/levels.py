"""Five levels, as Kaggle scored them: quadratic weighted kappa at the argmax and at
cut-points tuned on validation, per run and by cross-validation."""
from .common import display, fmt
from .kaggle_test import LEADERBOARD


def band_text(bands):
    """'0: 20 · 1: 5 (band 1.01) · 2: 0 (band 0.02, narrow) · ...': images graded per
    level and the width of each middle level's band of expected grades."""
    return " · ".join("%d: %d%s" % (b["level"], b["images"], "" if b["width"] is None else
                                    " (band %.2f%s)" % (b["width"], ", **narrow**"
                                                        if b["narrow"] else ""))
                      for b in bands)


def levels_cv_rows(cv):
    """The 5-level figures of every cross-validation of a 5-level scenario: the pooled
    out-of-fold kappa, each fold graded at cut-points tuned on the other folds'
    validation predictions (``evidence.grading.cv_grading``)."""
    from ..evidence.grading import NARROW_BAND
    items = [(s, c) for s, entries in sorted(cv.items()) for c in entries
             if "levels" in c["summary"]]
    if not items:
        return []
    md = ["", "### Five levels by cross-validation", "",
          "Every image out of fold; fold k graded at cut-points tuned on the pooled validation "
          "predictions of every fold's run whose validation part excludes fold k's patients "
          "(never on the images they grade). Images per graded level, and each middle level's "
          "band of expected grades (narrower than %.2f: flagged)." % NARROW_BAND, "",
          "| scenario | folds | images | kappa, argmax | kappa, tuned cut-points | cut-points "
          "per fold | graded per level (bands per fold) |", "|---|---|---|---|---|---|---|"]
    for scenario, c in items:
        g = c["summary"]["levels"]
        md.append("| %s | %d | %d | %s | %s | %s | %s |" % (
            display(scenario), c["summary"]["folds"], g["images"], fmt(g["kappa_argmax"]),
            fmt(g["kappa_tuned"]), "; ".join(", ".join("%.2f" % x for x in f["cuts"])
                                             for f in g["per_fold"]),
            "; ".join(band_text(f["bands"]) for f in g["per_fold"])))
    return md


def levels_section(groups, cv=None):
    """Kaggle's yardstick for the 5-level runs: quadratic weighted kappa at the argmax and
    at the cut-points tuned on validation, with intervals, each level's band and images;
    the tuned confusion matrix; the same by cross-validation where there is one."""
    from ..evidence.grading import NARROW_BAND
    rows = [(label, run) for label, members in sorted(groups.items()) for run in members
            if run["config"]["target"] == "levels" and "levels" in run["evaluation"]]
    if not rows:
        cv_rows = levels_cv_rows(cv or {})
        return ["", "## Five levels, as Kaggle scored them"] + cv_rows + [""] if cv_rows else []
    first = rows[0][1]["evaluation"]
    md = ["", "## Five levels, as Kaggle scored them", "",
          "Quadratic weighted kappa over levels 0-4 on the test split (%d images), at the "
          "argmax and at four cut-points on the expected level (sum k p_k) chosen on the "
          "validation split to maximise kappa (%s), with 95 %% patient-bootstrap intervals. "
          "For scale: Kaggle 2015's private leaderboard, on its own test set, was won at "
          "%.3f (%s)." % (first["n"], first["operating_point"]["cut_search"], LEADERBOARD[0][1],
                          ", ".join("%s %.3f" % (w.split(",")[0], k) for w, k in LEADERBOARD[1:])),
          "Graded per level: the test images at each level, and each middle level's band of "
          "expected grades (narrower than %.2f: flagged, the cut-points all but merge two "
          "levels)." % NARROW_BAND,
          "", "| scenario | seed | kappa, argmax | kappa, tuned cut-points | cut-points | "
          "val kappa, tuned | graded per level (band) |", "|---|---|---|---|---|---|---|"]
    for label, run in rows:
        g, point = run["evaluation"]["levels"], run["evaluation"]["operating_point"]
        md.append("| %s | %s | %s | %s | %s | %.3f | %s |" % (
            display(label), run["config"].get("seed", 0), fmt(g["kappa_argmax"]),
            fmt(g["kappa_tuned"]), ", ".join("%.2f" % c for c in g["cuts"]),
            point["val_kappa_tuned"], band_text(g["bands"]) if "bands" in g else "not recorded"))
    label, run = rows[0]
    md += ["", "### Confusion at the tuned cut-points", "",
           "%s seed %s (rows: true level, columns: graded level):" % (
               display(label), run["config"].get("seed", 0)), "",
           "| true level | graded 0 | 1 | 2 | 3 | 4 |", "|---|---|---|---|---|---|"]
    md += ["| %d | %s |" % (k, " | ".join(map(str, row)))
           for k, row in enumerate(run["evaluation"]["levels"]["confusion_tuned"])]
    return md + levels_cv_rows(cv or {}) + [""]


def section(report):
    return levels_section(report.groups, report.cv)
