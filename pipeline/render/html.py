"""The report's Markdown as one self-contained HTML page: rendered by markdown-it-py
(CommonMark with tables), each image inlined as a PNG data URI in a figure with its
caption, the page laid out by a Jinja2 template (``templates/report.html``)."""
import base64
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _figure(base):
    """A markdown-it image rule: ``![alt](path)`` as a figure whose image is the file
    ``base/path`` inlined, its caption the alt text."""
    def render(renderer, tokens, idx, options, env):
        token = tokens[idx]
        alt = "".join(t.content for t in token.children or ())
        data = base64.b64encode((Path(base) / token.attrGet("src")).read_bytes()).decode()
        return ('<figure><img src="data:image/png;base64,%s" alt="%s"><figcaption>%s'
                '</figcaption></figure>' % (data, escape(alt), escape(alt)))
    return render


def markdown_to_html(text, base):
    """The HTML of Markdown ``text`` (raw HTML in it escaped); images are read from
    ``base`` and inlined."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.add_render_rule("image", _figure(base))
    return md.render(text)


def report_page(text, base, title="DR transfer learning: reproduction report"):
    """The whole page of report Markdown ``text`` (``markdown_to_html``)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("report.html").render(
        title=title, body=Markup(markdown_to_html(text, base)))
