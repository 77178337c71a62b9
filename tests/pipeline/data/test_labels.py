"""pipeline.data.labels: bad rows named by file and line; spreadsheet CSVs."""
import codecs

import pytest

from pipeline.data import labels as pp
from pipeline.errors import InputError


def write_labels(path, rows):
    path.write_text("image,level\n" + "".join("%s,%s\n" % r for r in rows))


def test_bad_label_rows_name_their_line(tmp_path, synthetic_dir):
    images = synthetic_dir / "images"
    write_labels(tmp_path / "labels.csv", [("1_left", 0), ("1_right", 7)])
    with pytest.raises(InputError, match=r"labels.csv:3: level '7' of 1_right is not one of 0-4"):
        pp.read_labels(str(tmp_path / "labels.csv"), str(images))
    write_labels(tmp_path / "labels.csv", [("1_left", 0), ("nobody_left", 1)])
    with pytest.raises(InputError, match=r"labels.csv:3: image nobody_left not found"):
        pp.read_labels(str(tmp_path / "labels.csv"), str(images))
    with pytest.raises(InputError, match="no labels.csv"):
        pp.find_inputs(str(tmp_path / "nowhere"))


def test_labels_saved_by_a_spreadsheet_with_a_byte_order_mark(tmp_path, synthetic_dir):
    text = "image,level\r\n1_left,0\r\n1_right,3\r\n"
    (tmp_path / "labels.csv").write_bytes(codecs.BOM_UTF8 + text.encode())
    rows = pp.read_labels(str(tmp_path / "labels.csv"), str(synthetic_dir / "images"))
    assert [(r[0], r[1]) for r in rows] == [("1_left", 0), ("1_right", 3)]
    (tmp_path / "labels.csv").write_text("image\u200b,level\n1_left,0\n")
    with pytest.raises(InputError, match=r"header is 'image\\u200b,level', expected"):
        pp.read_labels(str(tmp_path / "labels.csv"), str(synthetic_dir / "images"))
