"""Every scenario's test figures: the overlaid ROC curves, every run at the argmax and
at its operating point, the seeds' mean and ensemble, what made them and how long."""
import numpy as np

from ..evidence.claims import referable
from ..evidence.stats import METRICS, RESAMPLES
from ..render.plots import plot_roc
from ..runs.evaluated import train_seconds, val_predictions
from .common import SCENARIO_NAMES, display, fmt, made_by, rule_text, timing_line


def roc_curves(by_scenario):
    """(label, scores, truth, None) of the first run of each scenario, for ``plot_roc``."""
    return [(SCENARIO_NAMES.get(s, s), m[0]["predictions"]["score"],
             referable(m[0]["predictions"], m[0]["config"]), None)
            for s, m in sorted(by_scenario.items())]


def scenario_tables(by_scenario, resamples=RESAMPLES):
    """The per-scenario tables: every run at the argmax and at its operating point, a
    mean ± sd and an ensemble row for a scenario's seeds when they were evaluated alike.
    When the runs were evaluated with different TTA or operating rules, each row says
    how it was evaluated; otherwise the header says it once."""
    from ..evidence.claims import design_of, not_comparable, settings_text
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
    from ..evidence.claims import design_of, not_comparable
    from ..evidence.combine import ensemble
    from ..evidence.metrics import referable_decision
    from ..evidence.stats import bootstrap, choose_cut
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


def section(report):
    md = []
    curves = roc_curves(report.by_scenario)
    if curves:
        plot_roc(curves, str(report.runs_root / (report.stem + "-roc.png")),
                 "(test split, first seed of each scenario)")
        md += ["", "![ROC curves of every scenario on the test split](%s-roc.png)" % report.stem]
    md += scenario_tables(report.groups, report.resamples)
    if report.groups:
        shown = [r for members in report.groups.values() for r in members]
        md += made_by(shown) + ["", timing_line(shown, report.data_path), ""]
    return md
