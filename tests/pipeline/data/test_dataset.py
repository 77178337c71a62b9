"""``prefetched``: the next batches made in the background, exactly the sequential ones."""
import threading
import time

import numpy as np
import pytest

from pipeline.data.dataset import Dataset, prefetched
from pipeline.preprocess import preprocess
from pipeline.data.synthetic import make_dataset


def test_the_same_batches_in_the_same_order_as_sequential_reads(tmp_path):
    make_dataset(str(tmp_path / "raw"), patients=10, width=300, height=200, seed=2)
    preprocess(str(tmp_path / "raw"), str(tmp_path / "d.h5"), size=72, progress=False)
    data = Dataset(str(tmp_path / "d.h5"), "all")
    rng = np.random.RandomState(0)
    plan = [(rng.randint(0, len(data), 4), rng.randint(0, 4, 4)) for _ in range(9)]
    got = [x for x, _ in prefetched(lambda p: data.batch(p[0], 64, p[1]), plan)]
    for x, (pos, turns) in zip(got, plan):
        np.testing.assert_array_equal(x, data.batch(pos, 64, turns))
    assert len(got) == len(plan)


def test_the_next_item_is_made_while_the_consumer_holds_this_one():
    handed_over = threading.Event()
    made_meanwhile = []

    def make(i):
        if i == 1:  # made only if the consumer's step and this run at once
            made_meanwhile.append(handed_over.wait(timeout=10))
        return i

    for i, _ in prefetched(make, range(3)):
        if i == 0:
            handed_over.set()
            deadline = time.time() + 10
            while not made_meanwhile and time.time() < deadline:
                time.sleep(0.01)
    assert made_meanwhile == [True]


def test_bounded_ahead_and_stopped_when_the_loop_is_left():
    calls = []

    def make(i):
        calls.append(i)
        return i

    gen = prefetched(make, range(100), depth=2)
    assert next(gen)[0] == 0
    time.sleep(0.3)
    assert len(calls) <= 1 + 2 + 1  # the one handed over, the queue, the one waiting to go in
    gen.close()
    time.sleep(0.3)
    assert len(calls) <= 4 and not [t for t in threading.enumerate() if t.name == "prefetch"]


def test_an_error_is_raised_at_its_item():
    def make(i):
        if i == 3:
            raise ValueError("bad image 3")
        return i

    seen = []
    with pytest.raises(ValueError, match="bad image 3"):
        for i, _ in prefetched(make, range(6)):
            seen.append(i)
    assert seen == [0, 1, 2]


def tiny_store(path, images, levels):
    """A preprocessed file by hand: the layout ``preprocess`` writes (all in train)."""
    import h5py
    with h5py.File(path, "w") as f:
        f["images"] = np.asarray(images, np.uint8)
        f["level"] = np.asarray(levels, np.int8)
        f["name"] = np.array(["%d_left" % i for i in range(len(levels))], dtype="S")
        f["ok"] = np.ones(len(levels), bool)
        f["split"] = np.zeros(len(levels), np.int8)
    return str(path)


def test_batch_crops_the_centre_rotates_counter_clockwise_and_is_caffes_input(tmp_path):
    from pipeline.data.dataset import Dataset
    image = np.zeros((6, 6, 3), np.uint8)
    image[1, 4] = (200, 100, 50)  # R, G, B at row 1, column 4: the crop's top right
    data = Dataset(tiny_store(tmp_path / "d.h5", [image], [3]), "train")
    x = data.batch([0], 4)
    assert x.shape == (1, 3, 4, 4)
    # BGR minus Caffe's mean (104, 117, 123): the pixel keeps its place in the crop
    np.testing.assert_array_equal(x[0, :, 0, 3], [50 - 104, 100 - 117, 200 - 123])
    np.testing.assert_array_equal(x[0, :, 1, 1], [-104, -117, -123])
    turned = data.batch([0], 4, [1])  # a quarter turn counter-clockwise: top right -> top left
    np.testing.assert_array_equal(turned[0, :, 0, 0], [50 - 104, 100 - 117, 200 - 123])
    assert (turned[0, :, 0, 3] == [-104, -117, -123]).all()
    assert data.targets.tolist() == [1] and data.batch([0], 4, [4]).tolist() == x.tolist()
    # mirrored left-right (top right -> top left), then turned: top left -> bottom left
    mirrored = data.batch([0], 4, [0], [True])
    np.testing.assert_array_equal(mirrored[0, :, 0, 0], [50 - 104, 100 - 117, 200 - 123])
    both = data.batch([0], 4, [1], [True])
    np.testing.assert_array_equal(both[0, :, 3, 0], [50 - 104, 100 - 117, 200 - 123])
    assert data.batch([0], 4, [1], [False]).tolist() == turned.tolist()


def test_balanced_sampling_draws_each_class_half_the_time():
    from pipeline.data.dataset import balanced_positions
    targets = np.array([0] * 90 + [1] * 10)
    picked = balanced_positions(targets, 20000, np.random.RandomState(0))
    share = (targets[picked] == 1).mean()
    assert abs(share - 0.5) < 0.015  # 10 % of the images, half the draws
    assert set(picked[targets[picked] == 1]) == set(range(90, 100))  # every minority image


def test_class_weights_by_hand():
    from pipeline.data.dataset import class_weights
    # N / (K * count): 4 / (2 * 3) and 4 / (2 * 1)
    np.testing.assert_allclose(class_weights(np.array([0, 0, 0, 1]), 2), [2 / 3.0, 2.0])
    # a class with no image gets 0 and is not counted in K: 3 / (2 * 2), 0, 3 / (2 * 1)
    np.testing.assert_allclose(class_weights(np.array([0, 0, 2]), 3), [0.75, 0.0, 1.5])


def test_class_data_take_target_classes_and_are_stratified_by_class(tmp_path):
    """A class-labelled store: targets are the class indices, a DR target is refused in
    one line, and every split holds every class (split stratified by class)."""
    from pipeline.errors import InputError
    from tests.pipeline.test_fourcases import class_dir
    photos = class_dir(tmp_path / "photos", per_class=10)
    preprocess(str(photos), str(tmp_path / "p.h5"), size=32, progress=False)
    for split in ("train", "val", "test"):
        data = Dataset(str(tmp_path / "p.h5"), split, "classes")
        assert data.classes == ["bonsai", "ketch", "watch"] and data.num_classes == 3
        assert sorted(set(data.targets)) == [0, 1, 2]
    assert Dataset(str(tmp_path / "p.h5"), "all").target == "classes"
    with pytest.raises(InputError, match="target binary does not apply to class-labelled"):
        Dataset(str(tmp_path / "p.h5"), "train", "binary")
