"""pipeline.render.readme: the README's results section rewritten from a report."""
import pytest

from pipeline.errors import InputError
from pipeline.render.readme import update_readme


def test_the_readme_gets_the_measured_part_between_its_markers(tmp_path):
    report = tmp_path / "report-data.md"
    report.write_text("# Report\n\n## The post's claims\n\n| c |\n\n![roc](x.png)\n\n"
                      "## How much the unstated choices matter\n\n| robust |\n\n"
                      "### Every reading\n\nnot the details\n\n"
                      "## Results per scenario\n\ntable\n\n## Five levels, as Kaggle scored them"
                      "\n\nsplit\n\n### Five levels by cross-validation"
                      "\n\nkappa on every image\n\n## Where the network looks\n\n"
                      "no gallery\n\n## Every run\n\nnot this\n")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results:begin -->\nthe typed table\n"
                      "<!-- results:end -->\n\nrest\n")
    update_readme(readme, report)
    text = readme.read_text()
    assert "the typed table" not in text and "### The post's claims" in text
    assert "#### Five levels by cross-validation\n\nkappa on every image" in text
    assert "Results per scenario" not in text and "table" not in text  # in the report only
    assert "not this" not in text and "x.png" not in text
    assert "### How much the unstated choices matter\n\n| robust |" in text
    assert "not the details" not in text and "Every reading" not in text
    assert "no gallery" not in text and "Where the network" not in text
    assert text.endswith("rest\n")
    readme.write_text("# no markers\n")
    with pytest.raises(InputError, match="no <!-- results:begin --> ... <!-- results:end -->"):
        update_readme(readme, report)


def test_the_four_cases_curves_are_copied_beside_the_readme(tmp_path):
    """The curves go with the section that shows them: SECTION='claims' leaves the figure
    the README's four cases show."""
    (tmp_path / "runs" / "fourcases").mkdir(parents=True)
    (tmp_path / "runs" / "fourcases" / "size_curves.png").write_bytes(b"png")
    report = tmp_path / "runs" / "report-data.md"
    report.write_text("## The four cases, measured\n\n![curves](fourcases/size_curves.png)\n\n"
                      "![other](fourcases/x.png)\n\n### The four-cases table\n\n| cell |\n\n"
                      "### The lesson's claims\n\n| claim |\n")
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:begin -->\n<!-- results:end -->\n")
    update_readme(readme, report)
    text = readme.read_text()
    assert "![curves](docs/figures/fourcases-size_curves.png)" in text and "x.png" not in text
    assert "#### The lesson's claims\n\n| claim |" in text
    assert "four-cases table" not in text and "| cell |" not in text  # the report's alone
    assert (tmp_path / "docs" / "figures" / "fourcases-size_curves.png").read_bytes() == b"png"
    from pipeline.render.readme import section_named
    report.write_text(report.read_text() + "## The post's claims\n\n| claim holds |\n")
    (tmp_path / "runs" / "fourcases" / "size_curves.png").write_bytes(b"other png")
    update_readme(readme, report, section_named("claims"))
    assert (tmp_path / "docs" / "figures" / "fourcases-size_curves.png").read_bytes() == b"png"
    assert "| claim holds |" in readme.read_text()


def test_one_section_is_rewritten_and_every_other_left_as_it_stands(tmp_path):
    """make results SECTION='four cases': the four cases from this report (say, the grid's
    kept evidence alone), the claims the README had (their runs are not here)."""
    from pipeline.render.readme import section_named
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results:begin -->\n*Written by make results.*\n\n"
                      "### The post's claims\n\nthe claims measured before\n\n"
                      "### The four cases, measured\n\nthe old grid\n\n#### The lesson's "
                      "claims\n\nold claims\n\n### Referring what the network is unsure of"
                      "\n\nreferral\n<!-- results:end -->\nrest\n")
    report = tmp_path / "report-data.md"
    report.write_text("## The post's claims\n\nnot measured\n\n## The four cases, measured"
                      "\n\nthe new grid\n\n### The lesson's claims\n\nnew claims\n")
    update_readme(readme, report, section_named("four CASES"))
    assert readme.read_text() == (
        "# x\n\n<!-- results:begin -->\n*Written by make results.*\n\n"
        "### The post's claims\n\nthe claims measured before\n\n"
        "### The four cases, measured\n\nthe new grid\n\n#### The lesson's claims\n\n"
        "new claims\n\n### Referring what the network is unsure of\n\nreferral\n"
        "<!-- results:end -->\nrest\n")
    for words, message in (("kappa", "names none"), ("the", "names several")):
        with pytest.raises(InputError, match="SECTION=%s: %s" % (words, message)):
            section_named(words)
    with pytest.raises(InputError, match='report-data.md: no section "Kaggle\'s test set"'):
        update_readme(readme, report, section_named("test set"))
