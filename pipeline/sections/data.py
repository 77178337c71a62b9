"""The data: images per split and level, what preprocessing skipped, its source."""
from pathlib import Path


def data_section(counts, failed, source, classes=None):
    """``classes``: the class names of class-labelled data (columns), else levels 0-4."""
    columns = classes or [str(k) for k in range(5)]
    md = ["## Data", "", "Images per split and %s of the file's patient split:" % (
        "class" if classes else "level (0-4)"), "",
        "| split | %s | total |" % " | ".join(columns), "|---|" + "---|" * (len(columns) + 1)]
    md += ["| %s | %s | %d |" % (s, " | ".join(map(str, c)), sum(c)) for s, c in counts.items()]
    md += ["", "Unreadable images skipped in preprocessing: %d%s" % (
        len(failed), " (" + "; ".join(failed) + ")" if failed else "")]
    if source and (Path(source) / "SOURCE.md").exists():
        md += ["", "Images from %s: licence and credit in its SOURCE.md." % source]
    return md + [""]


def section(report):
    return data_section(report.counts, report.failed, report.source, report.classes)
