"""pipeline.render.html: the report's Markdown as a page by markdown-it-py and Jinja2;
tables, escaping and inlined images checked on the library's output."""
import base64
import re
from html.parser import HTMLParser

from pipeline.render.html import markdown_to_html, report_page

PNG = base64.b64decode(  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


class Cells(HTMLParser):
    """The text of every th/td, the headings, and the image sources of a page."""

    def __init__(self):
        super().__init__()
        self.cells, self.headings, self.images, self._in = [], [], [], None

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th", "h1", "h2", "h3"):
            self._in, self._text = tag, ""
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data):
        if self._in:
            self._text += data

    def handle_endtag(self, tag):
        if tag == self._in:
            (self.headings if tag.startswith("h") else self.cells).append((tag, self._text))
            self._in = None


def parsed(html):
    p = Cells()
    p.feed(html)
    return p


def test_tables_headings_and_escaping(tmp_path):
    text = ("# Title\n\n## Claims\n\n| a | b |\n|---|---|\n| **1** | `x<y` |\n"
            "| <script>alert(1)</script> | level >= 2 & more |\n\n- item\n\n*note*\n")
    html = markdown_to_html(text, tmp_path)
    page = parsed(html)
    assert page.headings == [("h1", "Title"), ("h2", "Claims")]
    assert page.cells == [("th", "a"), ("th", "b"), ("td", "1"), ("td", "x<y"),
                          ("td", "<script>alert(1)</script>"), ("td", "level >= 2 & more")]
    assert "<script>" not in html and "&lt;script&gt;" in html  # raw HTML is text, not markup
    assert "<strong>1</strong>" in html and "<code>x&lt;y</code>" in html
    assert "<li>item</li>" in html and "<em>note</em>" in html


def test_images_are_inlined_with_their_caption(tmp_path):
    (tmp_path / "roc.png").write_bytes(PNG)
    html = markdown_to_html('![ROC "curves" <all>](roc.png)\n', tmp_path)
    (image,) = parsed(html).images
    assert image["src"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert image["alt"] == 'ROC "curves" <all>'
    assert re.search(r"<figcaption>ROC &#34;curves&#34; &lt;all&gt;</figcaption>", html)


def test_the_page_is_one_document_with_the_body_unescaped(tmp_path):
    page = report_page("# Report\n\n| x |\n|---|\n| 1 |\n", tmp_path, title="A & B")
    assert page.startswith("<!doctype html>") and "<title>A &amp; B</title>" in page
    assert "<h1>Report</h1>" in page and "<td>1</td>" in page and "&lt;h1&gt;" not in page
