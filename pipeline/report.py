"""Report: one self-contained HTML (plots inlined) and a Markdown file per run."""
import base64
import html
import json
from pathlib import Path

import h5py

from models.fileio import atomic_write_bytes

from .errors import InputError

# The post's recipe and claims, per scenario, to set next to what was obtained.
CLAIMS = {
    "1": "Small data, similar to ImageNet: a linear classifier on the top CNN features is "
         "enough; fine-tuning risks overfitting.",
    "2": "Large data, similar to ImageNet: fine-tuning the whole pre-trained network is safe "
         "and improves on fixed features.",
    "3": "Small data, different from ImageNet: a linear classifier on activations from earlier "
         "in the network, which are more generic than the top ones.",
    "4": "Large data, different from ImageNet (diabetic retinopathy): start from the pre-trained "
         "weights, replace the classifier, freeze the first two layers, fine-tune the rest with "
         "a small base learning rate and decay, L2 weight decay, rotations of 0/90/180/270 "
         "degrees as the only augmentation, balanced classes. Pre-trained init should beat "
         "training from scratch.",
    "scratch": "The same recipe as scenario 4 from random initialisation: the baseline that "
               "pre-training is claimed to beat.",
}
METRICS = ("accuracy", "sensitivity", "specificity", "auc", "kappa")
PLOTS = (("learning_curves.png", "Learning curves"), ("roc.png", "ROC (test split)"),
         ("confusion.png", "Confusion matrix (test split)"))


def _load(run_dir, name):
    path = run_dir / name
    if not path.exists():
        raise InputError("%s: missing (run make train and make evaluate first)" % path)
    return json.loads(path.read_text())


def data_counts(data_path):
    """(counts per split and level, failed images, source directory) of the HDF5 store."""
    try:
        with h5py.File(data_path, "r") as f:
            return (json.loads(f.attrs["counts"]), json.loads(f.attrs["failed"]),
                    f.attrs.get("source"))
    except (OSError, KeyError):
        return None, None, None


def sibling_results(run_dir):
    """[(scenario, evaluation)] of the other ``*-latest`` runs beside ``run_dir``."""
    out = []
    for link in sorted(run_dir.parent.glob("*-latest")):
        path = link / "evaluation.json"
        if path.exists() and link.resolve() != run_dir:
            out.append((link.name[:-len("-latest")], json.loads(path.read_text())))
    return out


def write_report(run_dir):
    """Writes ``report.html`` and ``report.md`` into ``run_dir``; returns the HTML path."""
    run_dir = Path(run_dir).resolve()
    config, env = _load(run_dir, "config.json"), _load(run_dir, "environment.json")
    evaluation = _load(run_dir, "evaluation.json")
    counts, failed, source = data_counts(env["data"])
    seconds = 0.0
    if (run_dir / "metrics.csv").exists():
        import csv
        with open(run_dir / "metrics.csv") as f:
            seconds = sum(float(r["seconds"]) for r in csv.DictReader(f))
    scenario = config["scenario"]
    init = config.get("init", "pretrained")
    weights_line = ("%s (SHA1 %s)" % (env["weights"], env["weights_sha1"]) if "weights" in env
                    else "none: randomly initialised GoogLeNet (Caffe's xavier fillers)")
    md = ["# Run %s: scenario %s" % (run_dir.name, scenario), "",
          "*%s*" % config.get("description", ""), "",
          "## The post's claim", "", CLAIMS.get(scenario, "(no claim recorded for this scenario)"),
          "", "## What was obtained (%s split, %d images%s)" % (
              evaluation["split"], evaluation["n"], ", 4-rotation TTA" if evaluation["tta"] else ""),
          "", "| " + " | ".join(METRICS) + " |", "|" + "---|" * len(METRICS),
          "| " + " | ".join("%.3f" % evaluation[m] for m in METRICS) + " |", "",
          "Confusion matrix (rows true, columns predicted): `%s`" % evaluation["confusion"], "",
          "Training time: %.0f s on %s CPUs." % (seconds, env.get("cpus")), ""]
    others = sibling_results(run_dir)
    if others:
        md += ["Other scenarios evaluated beside this run (same metrics):", "",
               "| scenario | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
        md += ["| %s | %s |" % (name, " | ".join("%.3f" % e[m] for m in METRICS))
               for name, e in others]
        md += [""]
    md += ["## Inputs", "", "- initialisation: %s" % init, "- weights: %s" % weights_line,
           "- data: %s (SHA1 %s)" % (env["data"], env["data_sha1"]), "- seed: %s" % env["seed"]]
    if source and (Path(source) / "SOURCE.md").exists():
        md += ["- images from %s: licence and credit in its SOURCE.md" % source]
    if counts:
        md += ["", "Images per split and level (0-4):", "", "| split | 0 | 1 | 2 | 3 | 4 | total |",
               "|---|---|---|---|---|---|---|"]
        md += ["| %s | %s | %d |" % (s, " | ".join(map(str, c)), sum(c)) for s, c in counts.items()]
        md += ["", "Unreadable images skipped in preprocessing: %d %s" % (
            len(failed), "(" + "; ".join(failed) + ")" if failed else "")]
    md += ["", "## Config", "", "```json", json.dumps(config, indent=2), "```", "",
           "## Environment", "", "```json", json.dumps(env, indent=2), "```", ""]
    md += ["## Plots", ""] + ["![%s](%s)" % (title, name) for name, title in PLOTS
                              if (run_dir / name).exists()]
    md_text = "\n".join(md) + "\n"
    atomic_write_bytes(run_dir / "report.md", md_text.encode())

    body = []
    for line in md:
        if line.startswith("!["):
            title, name = line[2:].split("](")
            data = base64.b64encode((run_dir / name[:-1]).read_bytes()).decode()
            body.append('<figure><img src="data:image/png;base64,%s" alt="%s"><figcaption>%s'
                        '</figcaption></figure>' % (data, html.escape(title), html.escape(title)))
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>%s</title><style>"
            "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .6em}"
            "pre{background:#f4f4f4;padding:.5em;overflow:auto}img{max-width:100%%}</style>"
            "</head><body>%s%s</body></html>") % (
        html.escape(run_dir.name), markdown_to_html(md_text.split("## Plots")[0]), "".join(body))
    atomic_write_bytes(run_dir / "report.html", page.encode())
    return run_dir / "report.html"


def markdown_to_html(text):
    """The small Markdown subset the report uses: headings, lists, tables, code, emphasis."""
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
            out.append("<h%d>%s</h%d>" % (level, html.escape(line[level:].strip()), level))
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append("<tr>%s</tr>" % "".join("<td>%s</td>" % html.escape(c) for c in cells))
        elif line.startswith("- "):
            out.append("<li>%s</li>" % html.escape(line[2:]))
        elif line.startswith("*") and line.endswith("*"):
            out.append("<p><em>%s</em></p>" % html.escape(line.strip("*")))
        elif line:
            out.append("<p>%s</p>" % html.escape(line).replace("`", ""))
    return "\n".join(out)
