"""pipeline.data.subsets: training subsets along the size axis, nested, stratified,
whole patients; the sizes' rule."""
import numpy as np
import pytest

from pipeline.data.splits import patient_of
from pipeline.data.subsets import parse_sizes, training_subset
from pipeline.errors import InputError


def fundus(patients_per_level=(20, 8, 5), seed=0):
    """Two eyes per patient, the second eye's level at most the first's."""
    rng = np.random.RandomState(seed)
    names, levels, p = [], [], 0
    for level, count in enumerate(patients_per_level):
        for _ in range(count):
            names += ["%d_left" % p, "%d_right" % p]
            levels += [level, max(0, level - int(rng.rand() < 0.5))]
            p += 1
    order = rng.permutation(len(names))  # not grouped by patient in the input
    return [names[i] for i in order], [levels[i] for i in order]


def kept_patients(names, positions):
    return {patient_of(names[i]) for i in positions}


def test_parse_sizes_fractions_counts_and_the_full_set():
    assert parse_sizes("0.125,0.25,0.5,1") == [0.125, 0.25, 0.5, 1.0]
    assert parse_sizes("2, 5,10") == [2, 5, 10]
    assert all(isinstance(s, int) for s in parse_sizes("2,5,10"))
    assert parse_sizes("1") == parse_sizes("1.0") == [1.0]
    assert parse_sizes("2.0") == [2]
    for bad in ("0", "-3", "1.5", "2.5", "ten", "0.5,,1", "nan", "inf"):
        with pytest.raises(InputError) as e:
            parse_sizes(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="1.5"):
        parse_sizes("0.5,1.5")


def test_subsets_are_nested_across_sizes_for_one_seed():
    names, levels = fundus()
    sizes = parse_sizes("2,0.125,0.25,0.5,1")
    kept = [set(training_subset(names, levels, s, seed=3).tolist()) for s in sizes]
    for small, large in zip(kept[1:], kept[2:]):
        assert small <= large
    assert kept[0] <= kept[3]  # 2 patients per level lie inside half of each (10, 4, 3)
    assert kept[-1] == set(range(len(names)))
    other = set(training_subset(names, levels, 0.5, seed=4).tolist())
    assert other != kept[3]  # another seed, another subset
    assert set(training_subset(names, levels, 0.5, seed=3).tolist()) == kept[3]


def test_counts_per_stratum_by_hand():
    names, levels = fundus((20, 8, 5))
    worst = {}
    for n, l in zip(names, levels):
        worst[patient_of(n)] = max(l, worst.get(patient_of(n), 0))
    assert sorted(worst.values()).count(1) == 8  # a patient's stratum is its worst eye

    def per_level(size):
        kept = kept_patients(names, training_subset(names, levels, size))
        return [sum(worst[p] == level for p in kept) for level in range(3)]
    # round half up: 0.25 x (20, 8, 5) = (5, 2, 1.25) -> (5, 2, 1);
    # 0.5 x (20, 8, 5) = (10, 4, 2.5) -> (10, 4, 3); 0.1 x (20, 8, 5) -> (2, 0.8 -> 1, 0.5 -> 1)
    assert per_level(0.25) == [5, 2, 1]
    assert per_level(0.5) == [10, 4, 3]
    assert per_level(0.1) == [2, 1, 1]
    assert per_level(3) == [3, 3, 3]
    assert per_level(1) == [20, 8, 5]


def test_patients_are_kept_whole():
    names, levels = fundus()
    for size in (0.125, 0.5, 2, 4):
        positions = training_subset(names, levels, size, seed=1)
        assert positions.tolist() == sorted(positions.tolist())
        kept = kept_patients(names, positions)
        assert len(positions) == 2 * len(kept)  # both eyes of every patient kept
        for p in kept:
            assert {names.index(p + "_left"), names.index(p + "_right")} <= set(positions)


def test_class_data_counts_images_per_class():
    names = ["img%03d" % i for i in range(60)]
    classes = [i % 3 for i in range(60)]  # 20 images of each class
    positions = training_subset(names, classes, 5, seed=0)
    assert np.bincount(np.asarray(classes)[positions]).tolist() == [5, 5, 5]
    assert training_subset(names, classes, 1.0).tolist() == list(range(60))


def test_sizes_a_stratum_cannot_meet_are_errors():
    names, levels = fundus((20, 8, 5))
    with pytest.raises(InputError, match="training size 6: stratum 2 holds only 5 patients"):
        training_subset(names, levels, 6)
    with pytest.raises(InputError, match="training size 0.05 keeps no image of stratum 1 \(8") as e:
        training_subset(names, levels, 0.05)  # 0.05 x 8 = 0.4 -> 0
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="1.5"):
        training_subset(names, levels, 1.5)
