"""``make report``: the reproduction report of every evaluated run of one dataset, as
Markdown and as one self-contained HTML page (plots inlined).

What is measured comes first: the post's claims, each decided by a paired patient
bootstrap of the difference in AUC between two scenarios on the same images; then
how the verdicts move under the post's unstated choices, the per-scenario results
with their intervals and the number of runs behind each figure, five levels, Kaggle's
test set, where the network looks, referral, cross-validation, external datasets;
then every run's details. Each part is a module of ``sections`` (their order is
``sections.SECTIONS``; ``CLASS_SECTIONS`` for class-labelled data, which have no
referable class), given what ``sections.loaded.Loaded`` read from the runs.
"""
from pathlib import Path

from models.fileio import atomic_write_bytes

from .errors import InputError
from .evidence.stats import RESAMPLES
from .render.html import report_page
from .sections import CLASS_SECTIONS, SECTIONS
from .sections.loaded import Loaded


class NoRunsError(InputError):
    """The folder holds no evaluated run of its own to report on."""


def write_report(runs_root, data_path, resamples=RESAMPLES):
    """Writes ``report-<data>.html`` and ``.md`` into ``runs_root``; returns the HTML path."""
    runs_root, data_path = Path(runs_root), Path(data_path)
    if not data_path.is_file():
        raise InputError("%s: no preprocessed data" % data_path)
    report = Loaded(runs_root, data_path, resamples)
    # the four cases' summary alone (make fourcases on a fresh clone, from the kept runs)
    if not report.runs and not (runs_root / "fourcases" / "fourcases.json").is_file():
        raise NoRunsError("%s: no evaluated run on %s (make train and make evaluate first)"
                          % (runs_root, data_path))
    sections = CLASS_SECTIONS if report.classes else SECTIONS
    text = "\n".join(line for section in sections for line in section(report)) + "\n"
    atomic_write_bytes(runs_root / (report.stem + ".md"), text.encode())
    html_path = runs_root / (report.stem + ".html")
    atomic_write_bytes(html_path, report_page(text, runs_root).encode())
    return html_path
