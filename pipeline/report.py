"""The reproduction report: one HTML page (plots inlined) and its Markdown, across
every evaluated run of one dataset.

What is measured comes first: the post's claims, each decided by a paired
patient bootstrap of the difference in test AUC between two scenarios on the
same test images (and on the pooled out-of-fold predictions where both were
cross-validated); then the overlaid ROC curves, the per-scenario results with
their intervals and the number of runs behind each figure, cross-validation,
external datasets; then the per-run details (inputs, config, curves).

The runs it reads are found by ``evaluated_runs``; the claims and their verdicts
are ``claims``; the Markdown is rendered (and the README rewritten) by ``markdown``.
"""
import json
import os
import re
from pathlib import Path

import numpy as np

from models.fileio import atomic_write_bytes, sha1_of

from .claims import CLAIM_SCENARIOS, both_eyes_row, claim_evidence, headline, referable
from .errors import InputError
from .evaluated_runs import (data_summary, group, load_cv, load_external, load_runs,
                             read_npz, train_seconds, val_predictions)
from .markdown import markdown_to_html
from .plots import plot_intervals, plot_reliability, plot_roc
from .stats import METRICS, RESAMPLES


SCENARIO_NAMES = {"1": "1: linear on top features", "2": "2: fine-tune all",
                  "3": "3: linear on earlier features", "4": "4: fine-tune, conv1/2 frozen",
                  "scratch": "scratch: scenario 4 from random init",
                  "4-levels": "4-levels: scenario 4 on five levels"}


def fmt(metric):
    """0.912 [0.850, 0.961]"""
    return "%.3f [%.3f, %.3f]" % ((metric["value"],) + tuple(metric["ci"]))


def roc_curves(by_scenario):
    """(label, scores, truth, None) of the first run of each scenario, for ``plot_roc``."""
    return [(SCENARIO_NAMES.get(s, s), m[0]["predictions"]["score"],
             referable(m[0]["predictions"], m[0]["config"]), None)
            for s, m in sorted(by_scenario.items())]


class NoRunsError(InputError):
    """The folder holds no evaluated run of its own to report on."""


def write_report(runs_root, data_path, resamples=RESAMPLES):
    """Writes ``report-<data>.html`` and ``.md`` into ``runs_root``; returns the HTML path."""
    runs_root, data_path = Path(runs_root), Path(data_path)
    if not data_path.is_file():
        raise InputError("%s: no preprocessed data" % data_path)
    data_sha1 = sha1_of(data_path)
    runs = load_runs(runs_root, data_sha1)
    if not runs:
        raise NoRunsError("%s: no evaluated run on %s (make train and make evaluate first)"
                         % (runs_root, data_path))
    groups, primary = group(runs)
    by_scenario = {scenario: groups[label] for scenario, label in primary.items()}
    cv = load_cv(runs_root, data_sha1)
    stem = "report-%s" % data_path.stem
    counts, failed, source, usable = data_summary(data_path)
    md = ["# Transfer learning for diabetic retinopathy: reproduction report", "",
          "Data: `%s` (%d usable images, SHA1 %s); referable DR = level >= %s. Every interval "
          "is a 95 %% bootstrap interval over patients (both eyes together, %d resamples, "
          "seeded)." % (data_path.name, usable, data_sha1[:12], " or >= ".join(
              map(str, sorted({r["config"].get("threshold", 2) for r in runs}))), resamples),
          ""]
    md += ["## The post's claims", "",
           "Decided on AUC, by a paired bootstrap of the difference between the two "
           "scenarios on the same images: holds when the interval is above 0 (for 'no worse': "
           "above minus the margin), does not hold when it is below, inconclusive otherwise. "
           "Each claim is decided on the largest evidence there is: the pooled out-of-fold "
           "predictions of every image where both scenarios were cross-validated alike, else "
           "the test split. With several seeds, the difference is that of their mean AUCs "
           "(cross-validation: of the seeds' ensembles).", "",
           "| claim | scenarios | evidence | verdict |", "|---|---|---|---|"]
    evidence = claim_evidence(by_scenario, cv, resamples)
    shown, others = headline(evidence)
    rows = [(r["claim"], r["scenarios"], r["evidence"], r["verdict"]) for r in shown]
    if "4" in by_scenario:
        rows.append(both_eyes_row("4", by_scenario["4"][0], val_predictions(by_scenario["4"][0]),
                                  resamples))
    md += ["| %s | %s | %s | **%s** |" % row for row in rows]
    md += cv_progress(runs_root)
    decided = {r["claim"]: r for r in shown}
    md += made_by([r for s in CLAIM_SCENARIOS for r in by_scenario.get(s, [])],
                  [c for s in CLAIM_SCENARIOS for c in cv.get(s, [])])
    if others:
        md += ["", "### The other evidence: the single test split, other designs", "",
               "Each claim's comparisons not in the table above (it shows the largest "
               "evidence): on the single test split, or by another cross-validation design.", "",
               "| claim | scenarios | evidence | verdict |", "|---|---|---|---|"]
        md += ["| %(claim)s | %(scenarios)s | %(evidence)s | **%(verdict)s** |" % r
               for r in others]
    md += ambiguity_section(runs_root, stem, resamples, decided)
    curves = roc_curves(by_scenario)
    if curves:
        plot_roc(curves, str(runs_root / (stem + "-roc.png")),
                 "(test split, first seed of each scenario)")
        md += ["", "![ROC curves of every scenario on the test split](%s-roc.png)" % stem]
    md += scenario_tables(groups, resamples)
    if groups:
        shown = [r for members in groups.values() for r in members]
        md += made_by(shown) + ["", timing_line(shown, data_path), ""]
    md += levels_section(groups, cv)
    md += kaggle_test_section(runs)
    md += gallery_section(by_scenario.get("4"), runs_root, stem)
    md += referral_section([r for r in runs if "folds" not in r["config"]], runs_root,
                           data_sha1)
    md += cv_section(cv, runs_root)
    md += external_section(load_external(runs), runs_root, stem)
    md += all_runs_table(runs)
    md += data_section(counts, failed, source)
    md += run_details([r for r in runs if "folds" not in r["config"]])
    text = "\n".join(md) + "\n"
    atomic_write_bytes(runs_root / (stem + ".md"), text.encode())
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>DR transfer learning: "
            "reproduction report</title><style>body{font-family:sans-serif;max-width:72em;"
            "margin:2em auto;padding:0 1em;line-height:1.4}table{border-collapse:collapse;"
            "margin:.5em 0}td,th{border:1px solid #bbb;padding:.25em .6em;vertical-align:top}"
            "th{background:#eef}pre{background:#f4f4f4;padding:.5em;overflow:auto;font-size:85%%}"
            "img{max-width:100%%}details{margin:.5em 0}summary{cursor:pointer;font-weight:bold}"
            "</style></head><body>%s</body></html>") % markdown_to_html(text, runs_root)
    html_path = runs_root / (stem + ".html")
    atomic_write_bytes(html_path, page.encode())
    return html_path


def ambiguity_section(runs_root, stem, resamples=RESAMPLES, decided=None):
    """How far each claim's verdict moves across the readings of what the post leaves
    unsaid (the ambiguity plan in ``runs_root`` or a folder of it: ``make ambiguities``):
    a robustness line per claim, then every reading's figures and verdicts. ``decided``
    ({claim: the claims table's row}): the verdict shown "by default", so that a claim
    has one default verdict in the report (the grid's own default row, on the test
    split, is in the table of every reading)."""
    from .robustness import find_plans, reading_of, reading_runs, robustness, verdicts
    from .claims import CLAIMS
    plans = find_plans(runs_root)
    if not plans:
        return []
    plan = plans[0]
    spec, cells = plan["ambiguities"], reading_runs(plan)
    table = verdicts(spec, cells, resamples)
    main = spec["scenario"]
    done = sum(len(r) for r in cells.values())
    views = len(plan.get("views", []))
    md = ["", "## How much the unstated choices matter", "",
          "The post leaves %d choices open (`%s`). Each reading below is scenario %s with that "
          "one thing changed from the default (and the claims' other scenarios changed too "
          "where the reading concerns them: %s), %s; every claim is decided again under each "
          "reading by the same paired bootstrap on the test split, evaluated %s. %d of %d "
          "runs are finished and evaluated%s (`%s`)." % (
              len(spec["ambiguities"]), Path(plan["file"]).name, main,
              ", ".join(a["name"] for a in spec["ambiguities"] if a["partners"]) or "none",
              "seed " + ", ".join(map(str, plan["seeds"])) if len(plan["seeds"]) < 2 else
              "seeds %s (figures are their means)" % ", ".join(map(str, plan["seeds"])),
              "with 4-rotation TTA" if plan["tta"] else "without test-time augmentation "
              "(`TTA=0`)", done, len(plan["tasks"]) + views,
              " (%d of them the default's runs evaluated another way, not trained again)"
              % views if views else "", Path(plan["runs"]).name), "",
          "| claim | by default (as the claims table decides it) | under every reading that "
          "changes one of its scenarios (test split) |", "|---|---|---|"]
    decided = decided or {}
    md += ["| %s | **%s**%s | %s |" % (
        claim[0], decided[claim[0]]["verdict"] if claim[0] in decided else table[0][2][i][0],
        " (%d images)" % decided[claim[0]]["images"] if decided.get(claim[0], {}).get("images")
        else "", robustness(spec, table, i)) for i, claim in enumerate(CLAIMS)]
    md += made_by([], plans=[plan])
    md += ["", "### Every reading", ""]
    md += ["- **%s**: \"%s\" - %s" % (a["name"], a["quote"], a["why"])
           for a in spec["ambiguities"]]
    md += ["- **%s** (nothing to run): \"%s\" - %s" % (n["name"], n["quote"], n["why"])
           for n in spec["notes"]]
    md += ["", "Scenario %s's test AUC and its kappa (referable DR at the operating point "
           "chosen on validation), with 95 %% patient-bootstrap intervals; its ΔAUC against "
           "the default by a paired bootstrap; then each claim's verdict and ΔAUC (C1-C%d in "
           "the order of the table above; - where the reading changes neither of its "
           "scenarios, so the default's verdict stands)." % (main, len(CLAIMS)), "",
           "| ambiguity | reading | runs | test AUC | kappa | ΔAUC vs default | %s |" % " | ".join(
               "C%d" % (i + 1) for i in range(len(CLAIMS))),
           "|---|---|---|---|---|---|%s" % ("---|" * len(CLAIMS))]
    by_reading = {(a, k): v for a, k, v in table}
    default_runs = cells.get((None, 0, main), [])
    bars = []
    for amb in spec["ambiguities"]:
        for k, reading in enumerate(amb["readings"]):
            runs = cells.get((amb["name"], k, main) if k else (None, 0, main), [])
            if runs and (k or not bars):
                bars.append(("%s: %s" % (amb["name"], reading["name"]) if k else
                             "default (scenario %s as it is)" % main,) + auc_bar(runs))
            claims = by_reading[(amb["name"], k) if k else (None, 0)]
            md.append("| %s | %s%s | %d | %s | %s | %s | %s |" % (
                amb["name"] if k == 0 else "", reading_of(spec, amb["name"], k)["name"],
                " (default)" if k == 0 else "", len(runs),
                reading_figure(runs, "auc"), reading_figure(runs, "kappa"),
                "" if k == 0 else reading_difference(runs, default_runs, resamples),
                " | ".join(verdict_cell(v, e) if touched or k == 0 else "-"
                           for v, e, touched in claims)))
    if bars:
        plot_intervals(bars, str(Path(runs_root) / (stem + "-readings.png")),
                       "test AUC, referable DR (of each reading's own positive class)",
                       "scenario %s under each reading (95 %% intervals; seeds: mean ± sd)"
                       % main, reference=bars[0][1] if bars[0][0].startswith("default") else None)
        md += ["", "![Scenario %s's test AUC under each reading](%s-readings.png)" % (
            main, stem)]
    return md + [""]


def cv_progress(runs_root):
    """A line for each cross-validation sweep in ``runs_root`` (``make reproduce CV=k``)
    that has not finished: which fold runs are missing; no verdict is drawn from it."""
    md = []
    for path in sorted(Path(runs_root).glob("*/sweep.json")):
        plan = json.loads(path.read_text())
        if "ambiguities" in plan or not plan.get("folds"):
            continue
        missing = [t["name"] for t in plan["tasks"]
                   if not (Path(plan["runs"]) / t["name"] / "DONE").exists()]
        if missing:
            md += ["", "The %d-fold cross-validation in `%s` is not finished: %d of %d fold "
                   "runs missing (%s), so no verdict is drawn from it yet." % (
                       plan["folds"], path.parent.name, len(missing), len(plan["tasks"]),
                       ", ".join(missing))]
    return md


def made_by(runs, cvs=(), plans=(), records=()):
    """The line naming the commands that made these runs, cross-validations, sweep
    plans and other records (e.g. referral evaluations), as each recorded its own
    (``runs.command_line``): training, then evaluation."""
    commands = []
    for command in ([r["env"].get("command") for r in runs]
                    + [r["evaluation"].get("command") for r in runs]
                    + [c["summary"].get("command") for c in cvs]
                    + [p.get("made_by") for p in plans] + [r.get("command") for r in records]):
        command = command or "(not recorded: made before commands were kept)"
        if command not in commands:
            commands.append(command)
    return ["", "*Made by: %s.*" % "; ".join("`%s`" % c for c in commands)] if commands else []


def timing_line(runs, data_path):
    """The recorded training and evaluation time of ``runs`` beside what ``make
    reproduce``'s plan estimates for them from nothing on the reference machine class."""
    from .estimate import estimate_seconds, split_counts
    train_s = sum(train_seconds(r["dir"]) for r in runs)
    evals = [r["evaluation"].get("seconds") for r in runs]
    known = [s for s in evals if s is not None]
    estimate = sum(estimate_seconds([r["config"]], split_counts(str(data_path)),
                                    r["evaluation"]["tta"]) for r in runs)
    return ("These %d runs took %.0f s to train and %s to evaluate, as each recorded it; "
            "`make reproduce`'s plan estimates at most %.0f s for them from nothing on the "
            "reference machine (2 cores; `estimate.SPEED`)%s." % (
                len(runs), train_s, "%.0f s" % sum(known) if len(known) == len(evals) else
                "%.0f s (%d evaluations did not record their time)" % (
                    sum(known), len(evals) - len(known)), estimate,
                "" if train_s + sum(known) <= estimate else ": the runs took longer than the "
                "estimate (a shared or slower machine)"))


def verdict_cell(verdict, evidence):
    """'**holds** +0.161 [+0.036, +0.295]', or why there is no verdict, in short."""
    if verdict == "not applicable":
        return "not applicable (the same config on both sides)"
    if verdict == "not measured":
        return "not comparable" if "not comparable" in evidence else "not run yet"
    return "**%s** %s" % (verdict, evidence.split(" (")[0].replace("ΔAUC ", ""))


def auc_bar(runs):
    """(value, (low, high)) of a reading's test AUC: one run's interval, or the mean ±
    sd of several seeds."""
    values = [r["evaluation"]["argmax"]["auc"] for r in runs]
    if len(values) == 1:
        return values[0]["value"], tuple(values[0]["ci"])
    v = [x["value"] for x in values]
    return float(np.mean(v)), (np.mean(v) - np.std(v, ddof=1), np.mean(v) + np.std(v, ddof=1))


def reading_figure(runs, metric):
    """A reading's test figure: the run's value with its interval, or the mean ± sd of
    several seeds; a 5-level run adds its tuned quadratic kappa."""
    if not runs:
        return "not run yet"
    where = "argmax" if metric == "auc" else "at_operating_point"
    values = [r["evaluation"][where][metric] for r in runs]
    text = fmt(values[0]) if len(runs) == 1 else "%.3f ± %.3f" % (
        np.mean([v["value"] for v in values]), np.std([v["value"] for v in values], ddof=1))
    levels = runs[0]["evaluation"].get("levels")
    if metric == "kappa" and levels:
        text += "; 5 levels, tuned: %s" % fmt(levels["kappa_tuned"])
    return text


def reading_difference(runs, default_runs, resamples):
    """ΔAUC of a reading's runs against the default's on the same test images."""
    from .claims import side_by_side
    if not runs or not default_runs:
        return ""
    said, d = side_by_side(runs, default_runs, resamples, evaluated_alike=False)
    return said if d is None else "%+.3f [%+.3f, %+.3f]" % (d["value"], d["ci"][0], d["ci"][1])


#: the cases the gallery shows, and how many of each
GALLERY = (("true positive", True, True), ("false negative", True, False),
           ("false positive", False, True))
GALLERY_PER_KIND = 3


def gallery_cases(score, truth, cut, seed=0):
    """{kind: positions} of up to GALLERY_PER_KIND test images of each GALLERY kind,
    chosen with a fixed seed (sorted)."""
    rng = np.random.RandomState(seed)
    decided = np.asarray(score) >= cut
    out = {}
    for kind, positive, flagged in GALLERY:
        where = np.flatnonzero((np.asarray(truth) == positive) & (decided == flagged))
        pick = rng.choice(where, min(GALLERY_PER_KIND, len(where)), replace=False) \
            if len(where) else []
        out[kind] = sorted(int(i) for i in pick)
    return out


def referral_section(runs, runs_root, data_sha1):
    """Referral of the most uncertain test images (``pipeline.referral``): per
    cross-validation (its pooled out-of-fold images) and per run, and per uncertainty, the
    AUC kept at 20 % referred against random referral, what was referred, and the curves."""
    from .referral import describe, load_cv_referrals, load_referrals
    found = [("%d-fold CV of %s, out of fold" % (r["folds"], r["scenario"]), r)
             for r in load_cv_referrals(runs_root, data_sha1)]
    found += [(run["dir"].name, r) for run in runs
              for r in load_referrals(run["dir"], run["env"]["data_sha1"])]
    if not found:
        return []

    def f(x):
        return "%.3f [%.3f, %.3f]" % ((x["value"],) + tuple(x["ci"]))
    md = ["", "## Referring what the network is unsure of", "",
          "Each test image gets an uncertainty, the predictive entropy of its mean P(referable) "
          "over T MC-dropout passes (dropout on below the classifier, as in training) or over "
          "the seeds of an ensemble; the most uncertain are sent to a human grader and the "
          "rest are scored. AUC of the images kept, with the 20 % most uncertain referred, "
          "beside random referral of as many, and their difference by a paired patient "
          "bootstrap (same resamples, a random referral drawn in each). The last column: "
          "the levels (0-4) of the images the run's own referral cut (the uncertainty that "
          "refers 20 % of the validation images) refers, and of those it keeps.", "",
          "| run | uncertainty | test images | AUC, every image | AUC, 20 % referred | "
          "random referral | difference | verdict | levels referred / kept |",
          "|---|---|---|---|---|---|---|---|---|"]
    for name, r in found:
        h, refer = r["headline"], r["refer"]
        md.append("| %s | %s | %d | %s | %s | %s | %+.3f [%+.3f, %+.3f] | **%s** | %s / %s |" % (
            name, describe(r), r["n"], f(h["auc_all"]), f(h["auc_kept"]),
            f(h["auc_random"]), h["difference"]["value"], h["difference"]["ci"][0],
            h["difference"]["ci"][1], h["verdict"], refer["levels_referred"],
            refer["levels_kept"]))
    md += made_by([], records=[r for _, r in found])
    for name, r in found:
        md += ["", "![Referral curves of %s, %s](%s)" % (
            name, describe(r), os.path.relpath(r["path"].with_suffix(".png"), runs_root))]
    return md


def gallery_section(runs, runs_root, stem):
    """Where the network looks: class-activation maps of scenario 4's first run on test
    images it got right and wrong, at its operating point (GoogLeNet runs only)."""
    if not runs or runs[0]["config"].get("network", "googlenet") != "googlenet":
        return []
    from models.cam import compile_cam, referable_rows
    from models.model_io import load_model

    from .config import num_classes
    from .dataset import centre_crop, open_split
    from .plots import plot_gallery
    run = runs[0]
    config, p = run["config"], run["predictions"]
    truth = referable(p, config)
    cut = run["evaluation"]["operating_point"]["cut"]
    cases = gallery_cases(p["score"], truth, cut)
    chosen = [i for kind, _, _ in GALLERY for i in cases[kind]]
    if not chosen:
        return []
    spec, input_shape, net = load_model(str(run["dir"] / "model.npz"))
    cam = compile_cam(net, spec, referable_rows(num_classes(config), config.get("threshold", 2)))
    data = open_split(run["env"]["data"], "test", config)
    position = {name: k for k, name in enumerate(data.names)}
    at = [position[str(p["names"][i])] for i in chosen]
    maps = dict(zip(chosen, cam(data.batch(at, input_shape[1]))[0]))
    rgbs = dict(zip(chosen, centre_crop(data.images(at), input_shape[1])))
    data.close()
    rows = [(kind, [(rgbs[i], maps[i], "%s: P %.2f, level %d" % (
        p["names"][i], p["score"][i], p["levels"][i])) for i in cases[kind]])
        for kind, _, _ in GALLERY if cases[kind]]
    figure = "%s-gallery.png" % stem
    plot_gallery(rows, str(runs_root / figure), "%s: referable-class maps at the cut %.3f"
                 % (run["dir"].name, cut))
    return ["", "## Where the network looks", "",
            "Class-activation maps (Zhou et al. 2016) of the referable class of `%s` on test "
            "images, %d of each kind chosen with a fixed seed: the map's mean plus a constant of "
            "the image (a binary head's: its bias; five levels: `models/cam.py`) is exactly "
            "the network's log-odds of referable DR, so red areas raise it and blue areas "
            "lower it (each panel on its own scale). P is P(referable), the level the image's grade."
            % (run["dir"].name, GALLERY_PER_KIND), "",
            "![Where scenario 4 looks: true positives, false negatives, false positives](%s)"
            % figure]


def scenario_tables(by_scenario, resamples=RESAMPLES):
    """The per-scenario tables: every run at the argmax and at its operating point, a
    mean ± sd and an ensemble row for a scenario's seeds when they were evaluated alike.
    When the runs were evaluated with different TTA or operating rules, each row says
    how it was evaluated; otherwise the header says it once."""
    from .claims import design_of, not_comparable, settings_text
    md = ["", "## Results per scenario", ""]
    if not by_scenario:
        return md + ["No single-split run evaluated on this data.", ""]
    runs = [r for members in by_scenario.values() for r in members]
    settings = sorted({settings_text(design_of(r)) for r in runs})
    per_row = len(settings) > 1

    def seed(run):
        return "%s%s" % (run["config"].get("seed", 0), " (%s)" % settings_text(design_of(run))
                         if per_row else "")
    pooled = {s: not_comparable([design_of(r) for r in m]) for s, m in by_scenario.items()}
    ensembles = {s: e for s, e in ((s, ensemble_evaluation(m, resamples))
                                   for s, m in by_scenario.items() if not pooled[s]) if e}
    sizes = sorted({r["evaluation"]["n"] for r in runs})
    md += ["Test split (%s images; %s), the argmax decision. One row per run; a scenario "
           "with several seeds evaluated alike gets a row of their mean ± sd." % (
               " or ".join(map(str, sizes)), "evaluated differently: each row says how" if per_row
               else settings[0]), "",
           "| scenario | seed | " + " | ".join(METRICS) + " | training s |",
           "|---|---|" + "---|" * len(METRICS) + "---|"]
    for scenario, members in sorted(by_scenario.items()):
        for run in members:
            e = run["evaluation"]["argmax"]
            md.append("| %s | %s | %s | %.0f |" % (
                display(scenario), seed(run), " | ".join(fmt(e[m]) for m in METRICS),
                train_seconds(run["dir"])))
        if len(members) > 1 and pooled[scenario]:
            md.append("| %s | not pooled: %s | %s |" % (
                display(scenario), pooled[scenario], " | ".join([""] * (len(METRICS) + 1))))
        elif len(members) > 1:
            values = {m: [r["evaluation"]["argmax"][m]["value"] for r in members]
                      for m in METRICS}
            md.append("| %s | mean ± sd of %d | %s | |" % (
                display(scenario), len(members),
                " | ".join("%.3f ± %.3f" % (np.mean(v), np.std(v, ddof=1))
                           for v in values.values())))
            ens = ensembles.get(scenario)
            if ens:
                md.append("| %s | ensemble of %d | %s | |" % (
                    display(scenario), len(members),
                    " | ".join(fmt(ens["argmax"][m]) for m in METRICS)))
    rules = sorted({rule_text(r["evaluation"]["operating_point"]) for r in runs})
    md += ["", "At the operating point chosen on the validation split before the test split "
           "was seen (%s):" % (rules[0] if len(rules) == 1 else
                               "each row's own rule, named beside its seed"), "",
           "| scenario | seed | cut on P(referable) | val sens. / spec. | test sensitivity | "
           "test specificity | test accuracy | test kappa |", "|---|---|---|---|---|---|---|---|"]
    for scenario, members in sorted(by_scenario.items()):
        for run in members:
            e, p = run["evaluation"]["at_operating_point"], run["evaluation"]["operating_point"]
            md.append("| %s | %s | %.3f | %.3f / %.3f | %s | %s | %s | %s |" % (
                display(scenario), seed(run), p["cut"],
                p["val_sensitivity"], p["val_specificity"], fmt(e["sensitivity"]),
                fmt(e["specificity"]), fmt(e["accuracy"]), fmt(e["kappa"])))
        ens = ensembles.get(scenario)
        if ens:
            e = ens["at_cut"]
            md.append("| %s | ensemble of %d | %.3f | %.3f / %.3f | %s | %s | %s | %s |" % (
                display(scenario), len(members), ens["cut"], ens["val_sensitivity"],
                ens["val_specificity"], fmt(e["sensitivity"]), fmt(e["specificity"]),
                fmt(e["accuracy"]), fmt(e["kappa"])))
    if ensembles:
        md += ["", "An ensemble is the seeds' runs as one model: the mean of their "
               "probabilities, its cut chosen on the validation split by the same rule."]
    return md + [""]


def ensemble_evaluation(members, resamples):
    """The seeds of one scenario as one model: the argmax and operating-point figures of
    the mean of their probabilities, with intervals (None without validation predictions,
    or when the members were evaluated differently: never pooled)."""
    from .claims import design_of, not_comparable
    from .combine import ensemble
    from .metrics import referable_decision
    from .stats import bootstrap, choose_cut
    vals = [val_predictions(r) for r in members]
    if len(members) < 2 or any(v is None for v in vals) or \
            not_comparable([design_of(r) for r in members]):
        return None
    config, point = members[0]["config"], members[0]["evaluation"]["operating_point"]
    test, val = ensemble([r["predictions"] for r in members]), ensemble(vals)
    truth = referable(test, config)
    decided = referable_decision(test["probs"], config["target"], config.get("threshold", 2))
    argmax = bootstrap(test["score"], truth, decided, test["patients"], resamples)
    cut, sens, spec = choose_cut(val["score"], referable(val, config), point["rule"],
                                 point["target"])
    at_cut = bootstrap(test["score"], truth, test["score"] >= cut, test["patients"], resamples)
    return {"argmax": argmax, "at_cut": at_cut, "cut": cut, "val_sensitivity": sens,
            "val_specificity": spec}


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
    validation predictions (``grading.cv_grading``)."""
    from .grading import NARROW_BAND
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
    from .grading import NARROW_BAND
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


#: Kaggle 2015's private leaderboard (quadratic weighted kappa on its test set's Private
#: part), and a published replication's referable AUC on the whole test set
LEADERBOARD = (("1st, Graham", 0.8496), ("2nd, team o_O (Lasagne/Theano)", 0.8448),
               ("3rd", 0.8394), ("5th, De Fauw", 0.8290))
VOETS_2019 = ("Voets et al. 2019 (re-implementing Gulshan 2016)", 0.951, (0.947, 0.956))


def kaggle_test_section(runs):
    """The runs scored on Kaggle's official test set (``make kaggle-test ... SOLUTION=``:
    their ``score.json``), beside the leaderboard and a published replication."""
    scored = [(run, path) for run in runs
              for path in sorted(run["dir"].glob("kaggle-test/*/score.json"))]
    if not scored:
        return []
    md = ["", "## Kaggle's test set", "",
          "Scored against Kaggle's released solution by `make kaggle-test`: quadratic "
          "weighted kappa over levels 0-4 and the AUC of referable DR, on the Public and the "
          "Private part, with 95 % patient-bootstrap intervals (a binary run submits level "
          "2 when referable, else 0: its kappa measures that decision only).", "",
          "| run | test images | Public kappa | Private kappa | Private AUC, referable |",
          "|---|---|---|---|---|"]
    for run, path in scored:
        score = json.loads(path.read_text())
        parts = [score.get(u) for u in ("Public", "Private")]
        md.append("| %s (%s) | %s: %d | %s | %s | %s |" % (
            run["dir"].name, run["config"]["target"], path.parent.name,
            sum(p["images"] for p in parts if p),
            *[fmt(p["kappa"]) if p else "-" for p in parts],
            fmt(parts[1]["auc_referable"]) if parts[1] else "-"))
    md += ["| Kaggle 2015, %s | Private: ~80 %% of 53,576 | | %.4f | |" % (who, kappa)
           for who, kappa in LEADERBOARD]
    md.append("| %s | all | | | %.3f [%.3f, %.3f] |" % (VOETS_2019[0], VOETS_2019[1],
                                                         *VOETS_2019[2]))
    return md + [""]


def display(label):
    """A group label with the scenario's name: '4: fine-tune, conv1/2 frozen [epochs=1]'."""
    head, _, rest = label.partition(" [")
    return SCENARIO_NAMES.get(head, head) + (" [" + rest if rest else "")


def rule_text(point):
    if point["rule"] == "sensitivity":
        return "the highest specificity with sensitivity >= %.2f" % point["target"]
    return "Youden's J"


def cv_section(cv, runs_root):
    """Every cross-validation of the data: one row per design (scenario, overrides, folds,
    evaluation settings), each with the ROC curves of its folds."""
    from .claims import cv_design_of, settings_text
    if not cv:
        return []
    md = ["## Cross-validation by patient", "",
          "| scenario | folds | evaluated | AUC per fold | mean ± sd | pooled out-of-fold AUC "
          "| images | summary |", "|---|---|---|---|---|---|---|---|"]
    entries = [(scenario, c) for scenario, items in sorted(cv.items()) for c in items]
    for scenario, c in entries:
        s = c["summary"]
        md.append("| %s | %d | %s | %s | %.3f ± %.3f | %s | %d | `%s` |" % (
            display(scenario + (" [%s]" % ", ".join(s["overrides"]) if s.get("overrides")
                                else "")), s["folds"], settings_text(cv_design_of(c)),
            ", ".join("%.3f" % f["auc"] for f in s["per_fold"]), s["mean"]["auc"],
            s["sd"]["auc"], fmt(s["pooled_auc"]["auc"]), s["images"], c["dir"].name))
    md += made_by([], [c for _, c in entries])
    md += [""] + ["![%s: ROC of each fold (%s)](%s)" % (
        SCENARIO_NAMES.get(scenario, scenario), c["dir"].name,
        os.path.relpath(c["dir"] / "cv_roc.png", runs_root)) for scenario, c in entries]
    return md + [""]


def external_section(external, runs_root, stem):
    md = []
    for name, items in sorted(external.items()):
        md += ["## External validation: %s" % name, "",
               "Every usable image of `%s`, preprocessed as the training data, at the operating "
               "point chosen on the run's own validation split. Side by side with the run's own "
               "test split, to show the shift." % name, "",
               "| run | data | images | AUC | sensitivity at cut | specificity at cut | "
               "kappa at cut |", "|---|---|---|---|---|---|---|"]
        curves = []
        for run, ext, where in items:
            own = run["evaluation"]
            for label, e in (("own test split", own), (name, ext)):
                at = e["at_operating_point"]
                md.append("| %s | %s | %d | %s | %s | %s | %s |" % (
                    run["dir"].name, label, e["n"], fmt(e["argmax"]["auc"]),
                    fmt(at["sensitivity"]), fmt(at["specificity"]), fmt(at["kappa"])))
            p = read_npz(where / "predictions.npz")
            curves.append(("%s, %s" % (run["config"]["scenario"], name), p["score"],
                           referable(p, run["config"])))
            curves.append(("%s, own test split" % run["config"]["scenario"],
                           run["predictions"]["score"],
                           referable(run["predictions"], run["config"])))
        figure = "%s-calibration-%s.png" % (stem, re.sub(r"[^\w.-]", "_", name))
        plot_reliability(curves, str(runs_root / figure))
        md += ["", "![Calibration: own test split and %s](%s)" % (name, figure), ""]
    return md


def all_runs_table(runs):
    md = ["## Every run", "", "%d runs evaluated on this data (cross-validation folds "
          "included; each fold's test images are that fold)." % len(runs), "",
          "| run | scenario | fold | seed | test images | AUC | training s |",
          "|---|---|---|---|---|---|---|"]
    for run in runs:
        config, e = run["config"], run["evaluation"]
        md.append("| %s | %s | %s | %s | %d | %s | %.0f |" % (
            run["dir"].name, config["scenario"],
            "%d of %d" % (config["fold"], config["folds"]) if "folds" in config else "-",
            config.get("seed", 0), e["n"], fmt(e["argmax"]["auc"]), train_seconds(run["dir"])))
    return md + [""]


def data_section(counts, failed, source):
    md = ["## Data", "", "Images per split and level (0-4) of the file's patient split:", "",
          "| split | 0 | 1 | 2 | 3 | 4 | total |", "|---|---|---|---|---|---|---|"]
    md += ["| %s | %s | %d |" % (s, " | ".join(map(str, c)), sum(c)) for s, c in counts.items()]
    md += ["", "Unreadable images skipped in preprocessing: %d%s" % (
        len(failed), " (" + "; ".join(failed) + ")" if failed else "")]
    if source and (Path(source) / "SOURCE.md").exists():
        md += ["", "Images from %s: licence and credit in its SOURCE.md." % source]
    return md + [""]


def run_details(runs):
    md = ["## Runs", ""]
    for run in runs:
        env, config, e = run["env"], run["config"], run["evaluation"]
        weights = ("%s (SHA1 %s)" % (env["weights"], env["weights_sha1"]) if env.get("weights")
                   else "none: random initialisation (Caffe's xavier fillers)")
        fold = " (fold %d of %d)" % (config["fold"], config["folds"]) if "folds" in config else ""
        md += ["### %s: scenario %s, seed %s%s" % (run["dir"].name, config["scenario"],
                                                  config.get("seed", 0), fold), "",
               "*%s*" % config.get("description", ""), "",
               "- weights: %s" % weights,
               "- data: %s (SHA1 %s)" % (env["data"], env["data_sha1"]),
               "- test: %d images; argmax: %s" % (e["n"], ", ".join(
                   "%s %s" % (m, fmt(e["argmax"][m])) for m in ("auc", "kappa"))),
               "- training: %.0f s on %s CPUs, Theano %s, Lasagne %s" % (
                   train_seconds(run["dir"]), env.get("cpus"), env.get("theano"),
                   env.get("lasagne")), ""]
        if config["method"] == "finetune":  # a feature run has one point, no curve
            md += ["![learning curves of %s](%s/learning_curves.png)" % (run["dir"].name,
                                                                         run["dir"].name), ""]
        md += ["```json", json.dumps(config, indent=2), "```", ""]
    return md
