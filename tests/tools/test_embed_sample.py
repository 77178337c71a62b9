"""tools.embed_sample: the embedded copy is downsized, credited and checksummed."""
import hashlib

from PIL import Image

from tools.embed_sample import embed


def test_a_small_copy_with_the_credit_and_its_changes(tmp_path):
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    for i, size in enumerate([(200, 120), (120, 200)]):
        Image.new("RGB", size, (10 * i, 80, 160)).save(src / "images" / ("IDRiD_%03d.jpeg" % i))
    (src / "labels.csv").write_text("image,level\nIDRiD_000,0\nIDRiD_001,3\n")
    (src / "SOURCE.md").write_text("# source\nCC BY 4.0, credit\n")
    assert embed(src, tmp_path / "out", size=50, quality=80) == 2
    out = tmp_path / "out"
    assert [Image.open(out / "images" / n).size for n in ("IDRiD_000.jpeg", "IDRiD_001.jpeg")] \
        == [(50, 30), (30, 50)]  # the long side, the whole frame
    assert (out / "labels.csv").read_bytes() == (src / "labels.csv").read_bytes()
    source = (out / "SOURCE.md").read_text()
    assert source.startswith("# source\nCC BY 4.0, credit") and "quality 80" in source
    rows = (out / "checksums.csv").read_text().split()[1:]
    for row in rows:
        name, digest = row.split(",")
        assert hashlib.sha256((out / "images" / (name + ".jpeg")).read_bytes()).hexdigest() \
            == digest


def test_the_embedded_sample_matches_its_checksums():
    from tests.conftest import FUNDUS_SAMPLE
    rows = (FUNDUS_SAMPLE / "checksums.csv").read_text().split()[1:]
    labels = (FUNDUS_SAMPLE / "labels.csv").read_text().split()[1:]
    assert len(rows) == len(labels) == 404
    for row in rows[:: 40]:
        name, digest = row.split(",")
        assert hashlib.sha256((FUNDUS_SAMPLE / "images" / (name + ".jpeg")).read_bytes()
                              ).hexdigest() == digest
