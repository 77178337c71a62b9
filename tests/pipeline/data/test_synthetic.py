"""pipeline.data.synthetic: the generated data set's layout and levels."""
import csv

from PIL import Image

from pipeline.data.synthetic import make_dataset


def test_both_eyes_of_every_patient_every_level_and_kaggles_layout(tmp_path):
    rows = make_dataset(str(tmp_path), patients=12, width=120, height=80, seed=1)
    assert [r[0] for r in rows[:4]] == ["1_left", "1_right", "2_left", "2_right"]
    assert {level for _, level in rows} == set(range(5))
    for left, right in zip(rows[::2], rows[1::2]):
        assert abs(left[1] - right[1]) <= 2  # each eye within one level of the patient's
    with open(tmp_path / "labels.csv", newline="") as f:
        assert [(r["image"], int(r["level"])) for r in csv.DictReader(f)] == rows
    assert Image.open(tmp_path / "images" / "1_left.jpeg").size == (120, 80)
    again = make_dataset(str(tmp_path / "again"), patients=12, width=120, height=80, seed=1)
    assert again == rows and (tmp_path / "again" / "images" / "1_left.jpeg").read_bytes() == \
        (tmp_path / "images" / "1_left.jpeg").read_bytes()  # seeded
