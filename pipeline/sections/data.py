"""The data: images per split and level, what preprocessing skipped, its source."""
from pathlib import Path


def data_section(counts, failed, source):
    md = ["## Data", "", "Images per split and level (0-4) of the file's patient split:", "",
          "| split | 0 | 1 | 2 | 3 | 4 | total |", "|---|---|---|---|---|---|---|"]
    md += ["| %s | %s | %d |" % (s, " | ".join(map(str, c)), sum(c)) for s, c in counts.items()]
    md += ["", "Unreadable images skipped in preprocessing: %d%s" % (
        len(failed), " (" + "; ".join(failed) + ")" if failed else "")]
    if source and (Path(source) / "SOURCE.md").exists():
        md += ["", "Images from %s: licence and credit in its SOURCE.md." % source]
    return md + [""]


def section(report):
    return data_section(report.counts, report.failed, report.source)
