"""Markdown for the report: the small subset it uses rendered to one self-contained HTML
page (images inlined), and the README's results section rewritten from a report."""
import base64
import html
import re
from pathlib import Path

from models.fileio import atomic_write_bytes

from .errors import InputError


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


#: the report's sections the README shows, each up to its first ``###`` subsection
README_SECTIONS = ("The post's claims", "How much the unstated choices matter",
                   "Results per scenario", "Five levels, as Kaggle scored them",
                   "Kaggle's test set", "Cross-validation by patient",
                   "Referring what the network is unsure of")
#: subsections the README keeps too (within a section it keeps)
README_SUBSECTIONS = ("Five levels by cross-validation",)


def readme_part(text):
    """The lines of ``README_SECTIONS`` in report Markdown ``text``, in its order, each
    section up to its first subsection other than ``README_SUBSECTIONS``, headings one
    level down, images left out."""
    lines, keep, section = [], False, False
    for line in text.splitlines():
        if line.startswith("## "):
            keep = section = line[3:].strip() in README_SECTIONS
        elif line.startswith("### "):
            keep = section and line[4:].strip() in README_SUBSECTIONS
        if keep and not line.startswith("!["):
            lines.append("#" + line if line.startswith("#") else line)
    return lines


def update_readme(readme, report_md):
    """Replace what stands between the results markers of ``readme`` with the
    measured part of the report (``readme_part``: the claims, their robustness to
    the post's ambiguities, the per-scenario, 5-level and CV tables)."""
    readme, text = Path(readme), Path(report_md).read_text()
    lines = readme_part(text)
    page = readme.read_text()
    if README_BEGIN not in page or README_END not in page:
        raise InputError("%s: no %s ... %s markers to write the results between"
                         % (readme, README_BEGIN, README_END))
    head, rest = page.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    body = "\n".join(["", "*Written by `make results` from %s.*" % Path(report_md).name, ""]
                     + lines).rstrip() + "\n"
    atomic_write_bytes(readme, (head + README_BEGIN + body + README_END + tail).encode())
