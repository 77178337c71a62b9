"""The README's results section, rewritten from the report's Markdown (``make results``):
the sections a reader of the README needs, between its results markers."""
import re
import shutil
from pathlib import Path

from models.fileio import atomic_write_bytes

from ..errors import InputError

README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"

#: the report's sections the README shows (the headline results), each up to its first
#: ``###`` subsection; the per-run and per-scenario tables stay in the report
README_SECTIONS = ("The post's claims", "How much the unstated choices matter",
                   "The four cases, measured",
                   "Five levels, as Kaggle scored them", "Kaggle's test set",
                   "Referring what the network is unsure of")
#: subsections the README keeps too (within a section it keeps)
README_SUBSECTIONS = ("Five levels by cross-validation", "The lesson's claims")
#: the report's figures the README shows ({the report's path: the README's}), copied
#: beside the README by ``update_readme`` (the report's own live in git-ignored runs/)
README_FIGURES = {"fourcases/size_curves.png": "docs/figures/fourcases-size_curves.png"}
IMAGE = re.compile(r"^!\[(.*)\]\((.*)\)$")


def readme_part(text):
    """The lines of ``README_SECTIONS`` in report Markdown ``text``, in its order, each
    section up to its first subsection other than ``README_SUBSECTIONS``, headings one
    level down, images left out but ``README_FIGURES`` (their links made the README's)."""
    lines, keep, section = [], False, False
    for line in text.splitlines():
        if line.startswith("## "):
            keep = section = line[3:].strip() in README_SECTIONS
        elif line.startswith("### "):
            keep = section and line[4:].strip() in README_SUBSECTIONS
        image = IMAGE.match(line)
        if keep and image and image.group(2) in README_FIGURES:
            lines.append("![%s](%s)" % (image.group(1), README_FIGURES[image.group(2)]))
        elif keep and not image:
            lines.append("#" + line if line.startswith("#") else line)
    return lines


def section_named(words):
    """The one title of ``README_SECTIONS`` that contains ``words`` (any case): "four
    cases" names "The four cases, measured"; InputError for none or several."""
    found = [t for t in README_SECTIONS if words.lower() in t.lower()]
    if len(found) != 1:
        raise InputError("SECTION=%s: %s of the README's results sections (%s)" % (
            words, "names none" if not found else "names several", "; ".join(README_SECTIONS)))
    return found[0]


def _by_section(lines):
    """{title: its lines} of README results lines (a section from its ``### `` heading to
    the next), with the lines before the first heading under None."""
    out, title = {None: []}, None
    for line in lines:
        if line.startswith("### "):
            title = line[4:].strip()
            out[title] = []
        out[title].append(line)
    return out


def _splice(current, taken, section):
    """``current`` (the README's results lines) with ``section``'s lines replaced by
    ``taken``, every other section left as it stands, in ``README_SECTIONS``' order."""
    old = _by_section(current)
    old[section] = taken
    out = [line for line in old[None] if line.strip()]
    for title in README_SECTIONS:
        if title in old:
            out += [""] + old[title]
            while out[-1] == "":
                out.pop()
    return out


def update_readme(readme, report_md, section=None):
    """Replace what stands between the results markers of ``readme`` with the
    measured part of the report (``readme_part``: the claims, their robustness to
    the post's ambiguities, five levels, Kaggle's test set, referral); with ``section``
    (a title of ``README_SECTIONS``), that section only, the others left as they stand
    (each section's runs come from its own command: the four cases' from the grid's kept
    evidence, for instance)."""
    readme, text = Path(readme), Path(report_md).read_text()
    lines = readme_part(text)
    if section:
        lines = _by_section(lines).get(section)
        if lines is None:
            raise InputError('%s: no section "%s" to write into the README (its runs are '
                             'not there)' % (report_md, section))
    for source, target in README_FIGURES.items():  # those of the lines written only
        if "](%s)" % target in "\n".join(lines):
            (readme.parent / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(report_md).parent / source, readme.parent / target)
    page = readme.read_text()
    if README_BEGIN not in page or README_END not in page:
        raise InputError("%s: no %s ... %s markers to write the results between"
                         % (readme, README_BEGIN, README_END))
    head, rest = page.split(README_BEGIN, 1)
    current, tail = rest.split(README_END, 1)
    if section:
        body = "\n".join([""] + _splice(current.strip("\n").splitlines(), lines, section)
                         ).rstrip() + "\n"
    else:
        body = "\n".join(["", "*Written by `make results` from %s.*" % Path(report_md).name,
                          ""] + lines).rstrip() + "\n"
    atomic_write_bytes(readme, (head + README_BEGIN + body + README_END + tail).encode())
