"""The reproduction report: one HTML page (plots inlined) and its Markdown, across
every evaluated run of one dataset.

What is measured comes first: the post's claims, each decided by a paired
patient bootstrap of the difference in test AUC between two scenarios on the
same test images (and on the pooled out-of-fold predictions where both were
cross-validated); then the overlaid ROC curves, the per-scenario results with
their intervals and the number of runs behind each figure, cross-validation,
external datasets; then the per-run details (inputs, config, curves).
"""
import base64
import csv
import html
import json
import re
from pathlib import Path

import h5py
import numpy as np

from models.fileio import atomic_write_bytes, sha1_of

from .config import flatten, load_scenario
from .errors import InputError
from .plots import plot_reliability, plot_roc
from .stats import METRICS, RESAMPLES, paired_difference

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
SCENARIO_NAMES = {"1": "1: linear on top features", "2": "2: fine-tune all",
                  "3": "3: linear on earlier features", "4": "4: fine-tune, conv1/2 frozen",
                  "scratch": "scratch: scenario 4 from random init"}


def verdict(kind, margin, ci):
    lo, hi = ci
    if kind == "better":
        return "holds" if lo > 0 else "does not hold" if hi < 0 else "inconclusive at this size"
    return ("holds" if lo > -margin else "does not hold" if hi < -margin
            else "inconclusive at this size")


def fmt(metric):
    """0.912 [0.850, 0.961]"""
    return "%.3f [%.3f, %.3f]" % ((metric["value"],) + tuple(metric["ci"]))


def load_runs(runs_root, data_sha1):
    """Every finished run of ``runs_root`` evaluated on its own data with SHA1
    ``data_sha1``: dicts of dir, config, env, evaluation, predictions."""
    runs = []
    for run_dir in sorted(p for p in Path(runs_root).iterdir()
                          if p.is_dir() and not p.is_symlink()):
        paths = [run_dir / n for n in ("DONE", "config.json", "environment.json",
                                       "evaluation.json", "predictions.npz")]
        if not all(p.exists() for p in paths):
            continue
        evaluation = json.loads(paths[3].read_text())
        if evaluation.get("settings", {}).get("data_sha1") != data_sha1 or evaluation["external"]:
            continue
        with np.load(paths[4]) as npz:
            predictions = {k: npz[k] for k in npz.files}
        runs.append({"dir": run_dir, "config": json.loads(paths[1].read_text()),
                     "env": json.loads(paths[2].read_text()), "evaluation": evaluation,
                     "predictions": predictions})
    return runs


def overrides_of(config):
    """``key=value`` of what ``config`` changes in its scenario file (seed and folds
    aside: those are what repeats a run)."""
    try:
        base = flatten(load_scenario(config["scenario"]))
    except InputError:
        return ("scenario file gone",)
    ours = flatten(config)
    return tuple(sorted("%s=%s" % (k, json.dumps(v)) for k, v in ours.items()
                        if k not in ("seed", "fold", "folds") and base.get(k) != v))


def group(runs):
    """{label: runs of one scenario with the same overrides, by seed} on the file's
    own split (cross-validation folds apart), and {scenario: the label of its group
    with the fewest overrides}: the one the claims are decided on."""
    out = {}
    for run in runs:
        if "folds" not in run["config"]:
            changed = overrides_of(run["config"])
            label = run["config"]["scenario"] + (" [%s]" % ", ".join(changed) if changed else "")
            out.setdefault(label, (len(changed), []))[1].append(run)
    for _, members in out.values():
        members.sort(key=lambda r: (r["config"].get("seed", 0), r["dir"].name))
    primary = {}
    for label, (changes, members) in sorted(out.items(), key=lambda kv: kv[1][0]):
        primary.setdefault(members[0]["config"]["scenario"], label)
    return {label: members for label, (_, members) in out.items()}, primary


def referable(predictions, config):
    """Each image's truth, referable DR, by the run's own target: level >= its threshold."""
    return np.asarray(predictions["levels"]) >= config.get("threshold", 2)


def roc_curves(by_scenario):
    """(label, scores, truth, None) of the first run of each scenario, for ``plot_roc``."""
    return [(SCENARIO_NAMES.get(s, s), m[0]["predictions"]["score"],
             referable(m[0]["predictions"], m[0]["config"]), None)
            for s, m in sorted(by_scenario.items())]


def scores(predictions):
    """A (score, decision) pair for ``paired_difference`` (AUC uses the scores only)."""
    return predictions["score"], predictions["score"] >= 0.5


def claim_rows(by_scenario, cv, resamples):
    """(claim, scenarios, evidence, verdict) rows: paired differences of test AUC, on
    the test split and, where both scenarios were cross-validated, out of fold."""
    rows = []
    for text, a, b, kind, margin in CLAIMS:
        evidence = []
        thresholds = {r["config"].get("threshold", 2) for s in (a, b) for r in by_scenario.get(s, [])}
        thresholds |= {c["summary"].get("threshold", 2) for s in (a, b) for c in [cv.get(s)] if c}
        if len(thresholds) > 1:
            rows.append((text, "%s vs %s" % (a, b), "not comparable: referable DR is level >= "
                         + " in one, >= ".join(map(str, sorted(thresholds))) + " in the other",
                         "not measured"))
            continue
        if a in by_scenario and b in by_scenario:
            pa, pb = by_scenario[a][0]["predictions"], by_scenario[b][0]["predictions"]
            if list(pa["names"]) == list(pb["names"]):
                truth = referable(pa, by_scenario[a][0]["config"])
                d = paired_difference([scores(r["predictions"]) for r in by_scenario[a]],
                                      [scores(r["predictions"]) for r in by_scenario[b]],
                                      truth, pa["patients"], "auc", resamples)
                evidence.append(("test split, %d images, %d + %d runs" % (
                    len(truth), len(by_scenario[a]), len(by_scenario[b])), d))
        if a in cv and b in cv:
            oa, ob = cv[a]["oof"], cv[b]["oof"]
            row_of = {name: i for i, name in enumerate(ob["names"])}
            if sorted(row_of) == sorted(oa["names"]):  # the same images, aligned by name
                aligned = {k: v[[row_of[n] for n in oa["names"]]] for k, v in ob.items()}
                truth = referable(oa, cv[a]["summary"])
                d = paired_difference([scores(oa)], [scores(aligned)], truth, oa["patients"],
                                      "auc", resamples)
                evidence.append(("%d-fold CV, out-of-fold, %d images" % (
                    cv[a]["summary"]["folds"], len(truth)), d))
        if not evidence:
            rows.append((text, "%s vs %s" % (a, b), "not measured: evaluate both scenarios on "
                         "this data", "not measured"))
        for where, d in evidence:
            rows.append((text, "%s vs %s" % (a, b),
                         "ΔAUC %+.3f [%+.3f, %+.3f] (%s)" % (d["value"], d["ci"][0], d["ci"][1],
                                                             where),
                         verdict(kind, margin, d["ci"])))
    return rows


def load_cv(runs_root, data_sha1):
    out = {}
    for path in sorted(Path(runs_root).glob("cv-*/summary.json")):
        summary = json.loads(path.read_text())
        if summary["data_sha1"] == data_sha1 and (path.parent / "oof_predictions.npz").exists():
            with np.load(path.parent / "oof_predictions.npz") as npz:
                out.setdefault(summary["scenario"], {"summary": summary, "dir": path.parent,
                                                     "oof": {k: npz[k] for k in npz.files}})
    return out


def load_external(runs):
    """{dataset name: [(run, its external evaluation, the directory of it)]}."""
    out = {}
    for run in runs:
        for path in sorted(run["dir"].glob("external/*/evaluation.json")):
            out.setdefault(path.parent.name, []).append(
                (run, json.loads(path.read_text()), path.parent))
    return out


def data_summary(data_path):
    with h5py.File(data_path, "r") as f:
        return (json.loads(f.attrs["counts"]), json.loads(f.attrs.get("failed", "[]")),
                f.attrs.get("source"), int(f["ok"][:].sum()))


def train_seconds(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return sum(float(r["seconds"]) for r in csv.DictReader(f))


def write_report(runs_root, data_path, resamples=RESAMPLES):
    """Writes ``report-<data>.html`` and ``.md`` into ``runs_root``; returns the HTML path."""
    runs_root, data_path = Path(runs_root), Path(data_path)
    if not data_path.is_file():
        raise InputError("%s: no preprocessed data" % data_path)
    data_sha1 = sha1_of(data_path)
    runs = load_runs(runs_root, data_sha1)
    if not runs:
        raise InputError("%s: no evaluated run on %s (make train and make evaluate first)"
                         % (runs_root, data_path))
    groups, primary = group(runs)
    by_scenario = {scenario: groups[label] for scenario, label in primary.items()}
    cv = load_cv(runs_root, data_sha1)
    stem = "report-%s" % data_path.stem
    counts, failed, source, usable = data_summary(data_path)
    first = next(iter(groups.values()))[0]["evaluation"] if groups else None
    md = ["# Transfer learning for diabetic retinopathy: reproduction report", "",
          "Data: `%s` (%d usable images, SHA1 %s); referable DR = level >= %s. Every interval "
          "is a 95 %% bootstrap interval over patients (both eyes together, %d resamples, "
          "seeded)." % (data_path.name, usable, data_sha1[:12], " or >= ".join(
              map(str, sorted({r["config"].get("threshold", 2) for r in runs}))), resamples),
          ""]
    md += ["## The post's claims", "",
           "Decided on test AUC, by a paired bootstrap of the difference between the two "
           "scenarios on the same images: holds when the interval is above 0 (for 'no worse': "
           "above minus the margin), does not hold when it is below, inconclusive otherwise. "
           "With several seeds, the difference is that of their mean AUCs.", "",
           "| claim | scenarios | evidence | verdict |", "|---|---|---|---|"]
    md += ["| %s | %s | %s | **%s** |" % row for row in claim_rows(by_scenario, cv, resamples)]
    curves = roc_curves(by_scenario)
    if curves:
        plot_roc(curves, str(runs_root / (stem + "-roc.png")),
                 "(test split, first seed of each scenario)")
        md += ["", "![ROC curves of every scenario on the test split](%s-roc.png)" % stem]
    md += scenario_tables(groups, first)
    md += cv_section(cv)
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


def scenario_tables(by_scenario, first):
    md = ["", "## Results per scenario", ""]
    if not by_scenario:
        return md + ["No single-split run evaluated on this data.", ""]
    md += ["Test split (%d images%s), the argmax decision. One row per run; a scenario "
           "with several seeds gets a row of their mean ± sd." % (
               first["n"], ", 4-rotation TTA" if first["tta"] else ""), "",
           "| scenario | seed | " + " | ".join(METRICS) + " | training s |",
           "|---|---|" + "---|" * len(METRICS) + "---|"]
    for scenario, members in sorted(by_scenario.items()):
        for run in members:
            e = run["evaluation"]["argmax"]
            md.append("| %s | %s | %s | %.0f |" % (
                display(scenario), run["config"].get("seed", 0),
                " | ".join(fmt(e[m]) for m in METRICS), train_seconds(run["dir"])))
        if len(members) > 1:
            values = {m: [r["evaluation"]["argmax"][m]["value"] for r in members]
                      for m in METRICS}
            md.append("| %s | mean ± sd of %d | %s | |" % (
                display(scenario), len(members),
                " | ".join("%.3f ± %.3f" % (np.mean(v), np.std(v, ddof=1))
                           for v in values.values())))
    md += ["", "At the operating point chosen on the validation split before the test split "
           "was seen (%s):" % rule_text(first["operating_point"]), "",
           "| scenario | seed | cut on P(referable) | val sens. / spec. | test sensitivity | "
           "test specificity | test accuracy | test kappa |", "|---|---|---|---|---|---|---|---|"]
    for scenario, members in sorted(by_scenario.items()):
        for run in members:
            e, p = run["evaluation"]["at_operating_point"], run["evaluation"]["operating_point"]
            md.append("| %s | %s | %.3f | %.3f / %.3f | %s | %s | %s | %s |" % (
                display(scenario), run["config"].get("seed", 0), p["cut"],
                p["val_sensitivity"], p["val_specificity"], fmt(e["sensitivity"]),
                fmt(e["specificity"]), fmt(e["accuracy"]), fmt(e["kappa"])))
    return md + [""]


def display(label):
    """A group label with the scenario's name: '4: fine-tune, conv1/2 frozen [epochs=1]'."""
    head, _, rest = label.partition(" [")
    return SCENARIO_NAMES.get(head, head) + (" [" + rest if rest else "")


def rule_text(point):
    if point["rule"] == "sensitivity":
        return "the highest specificity with sensitivity >= %.2f" % point["target"]
    return "Youden's J"


def cv_section(cv):
    if not cv:
        return []
    md = ["## Cross-validation by patient", "",
          "| scenario | folds | AUC per fold | mean ± sd | pooled out-of-fold AUC | images |",
          "|---|---|---|---|---|---|"]
    for scenario, c in sorted(cv.items()):
        s = c["summary"]
        md.append("| %s | %d | %s | %.3f ± %.3f | %s | %d |" % (
            SCENARIO_NAMES.get(scenario, scenario), s["folds"],
            ", ".join("%.3f" % f["auc"] for f in s["per_fold"]), s["mean"]["auc"],
            s["sd"]["auc"], fmt(s["pooled_auc"]["auc"]), s["images"]))
    md += [""] + ["![%s: ROC of each fold](%s)" % (SCENARIO_NAMES.get(s, s), c["dir"].name +
                                                     "/cv_roc.png")
                  for s, c in sorted(cv.items())]
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
            with np.load(where / "predictions.npz") as p:
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


def markdown_to_html(text, base):
    """The small Markdown subset the report uses: headings, lists, tables, code,
    emphasis, bold, and images (``![alt](path)``, inlined from ``base``)."""
    out, in_code, in_table = [], False, False
    for line in text.splitlines():
        if line.startswith("```"):
            out.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            out.append(html.escape(line))
            continue
        if in_table and not line.startswith("|"):
            out.append("</table>")
            in_table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append("<h%d>%s</h%d>" % (level, inline(line[level:].strip()), level))
        elif line.startswith("!["):
            alt, path = re.fullmatch(r"!\[(.*)\]\((.*)\)", line).groups()
            data = base64.b64encode((Path(base) / path).read_bytes()).decode()
            out.append('<figure><img src="data:image/png;base64,%s" alt="%s"><figcaption>%s'
                       '</figcaption></figure>' % (data, html.escape(alt), html.escape(alt)))
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append("<tr>%s</tr>" % "".join("<%s>%s</%s>" % (tag, inline(c), tag)
                                               for c in cells))
        elif line.startswith("- "):
            out.append("<li>%s</li>" % inline(line[2:]))
        elif line.startswith("*") and line.endswith("*") and not line.startswith("**"):
            out.append("<p><em>%s</em></p>" % inline(line.strip("*")))
        elif line:
            out.append("<p>%s</p>" % inline(line))
    return "\n".join(out)


def inline(text):
    """Escape, then **bold** and `code`."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


def update_readme(readme, report_md):
    """Replace what stands between the results markers of ``readme`` with the
    measured part of the report (claims, per-scenario and CV tables; external
    data and the list of every run stay in the report)."""
    readme, text = Path(readme), Path(report_md).read_text()
    start = text.index("## The post's claims")
    end = min(text.index(h, start) for h in ("## External", "## Every run", "## Data")
              if h in text[start:])
    measured = text[start:end]
    lines = ["#" + line if line.startswith("## ") else line for line in measured.splitlines()
             if not line.startswith("![")]
    page = readme.read_text()
    if README_BEGIN not in page or README_END not in page:
        raise InputError("%s: no %s ... %s markers to write the results between"
                         % (readme, README_BEGIN, README_END))
    head, rest = page.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    body = "\n".join(["", "*Written by `make results` from %s.*" % Path(report_md).name, ""]
                     + lines).rstrip() + "\n"
    atomic_write_bytes(readme, (head + README_BEGIN + body + README_END + tail).encode())
