"""``prefetched``: the next batches made in the background, exactly the sequential ones."""
import threading
import time

import numpy as np
import pytest

from pipeline.dataset import Dataset, prefetched
from pipeline.preprocess import preprocess
from pipeline.synthetic import make_dataset


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
