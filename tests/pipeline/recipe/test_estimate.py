"""pipeline.recipe.estimate: the plan's time estimate, by hand."""
import h5py
import pytest

from pipeline.recipe.config import load_scenario
from pipeline.recipe.estimate import SPEED, estimate_seconds, split_counts


def test_the_estimate_of_a_fine_tuning_and_a_feature_run_by_hand():
    counts = {"train": 280, "val": 60, "test": 60}
    tune, features = load_scenario("4"), load_scenario("1")
    evaluation = (60 + 60) * 4 / SPEED["infer"]  # both splits, four rotations
    by_hand = (tune["epochs"] * (280 / SPEED["finetune"] + 60 / SPEED["infer"]) + evaluation
               + 30) + (400 / SPEED["features"] + evaluation + 30)
    assert estimate_seconds([tune, features], counts, tta=True) == pytest.approx(by_hand)


def test_split_counts_from_the_file_or_the_labels(tmp_path):
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f.attrs["counts"] = '{"train": [5, 1, 0, 0, 0], "val": [1, 1, 0, 0, 0], "test": [2, 0, 0, 0, 1]}'
    assert split_counts(str(path)) == {"train": 6, "val": 2, "test": 3}
    labels = tmp_path / "labels.csv"
    labels.write_text("image,level\n" + "".join("%d,0\n" % i for i in range(20)))
    assert split_counts(str(tmp_path / "none.h5"), str(labels)) == pytest.approx(
        {"train": 14, "val": 3, "test": 3})
