"""pipeline.data.labels: bad rows named by file and line; spreadsheet CSVs; class labels."""
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
    rows, classes = pp.read_labels(str(tmp_path / "labels.csv"), str(synthetic_dir / "images"))
    assert classes is None and [(r[0], r[1]) for r in rows] == [("1_left", 0), ("1_right", 3)]
    (tmp_path / "labels.csv").write_text("image\u200b,level\n1_left,0\n")
    with pytest.raises(InputError, match=r"header is 'image\\u200b,level', expected"):
        pp.read_labels(str(tmp_path / "labels.csv"), str(synthetic_dir / "images"))


def test_class_labels_are_numbered_in_sorted_name_order(tmp_path, synthetic_dir):
    (tmp_path / "labels.csv").write_text("image,class\n1_left,zebra\n1_right,ant\n2_left,zebra\n")
    rows, classes = pp.read_labels(str(tmp_path / "labels.csv"), str(synthetic_dir / "images"))
    assert classes == ["ant", "zebra"]
    assert [(r[0], r[1]) for r in rows] == [("1_left", 1), ("1_right", 0), ("2_left", 1)]


@pytest.mark.parametrize("text, message", [
    ("image,level,class\n1_left,0,a\n", "it has both level and class"),
    ("image,grade\n1_left,0\n", "expected image,level (DR grades) or image,class"),
    ("image,class\n1_left,a\n1_right,a\n", "one class only"),
    ("image,class\n1_left,\n", "labels.csv:2: image 1_left has an empty class"),
])
def test_class_label_problems_are_one_line(tmp_path, synthetic_dir, text, message):
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(InputError) as e:
        pp.read_labels(str(tmp_path / "labels.csv"), str(synthetic_dir / "images"))
    assert message in str(e.value) and "\n" not in str(e.value)
