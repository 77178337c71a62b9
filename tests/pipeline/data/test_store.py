"""pipeline.data.store: the journal's checksums catch pixels that differ from what was written."""
import hashlib

import numpy as np

from pipeline.data.store import mismatched, pixels_sha1, write_error_reason


def test_a_changed_pixel_is_found_by_its_checksum():
    images = np.zeros((3, 4, 4, 3), np.uint8)
    images[1, 2, 3, 0] = 7
    assert pixels_sha1(images[1]) == hashlib.sha1(images[1].tobytes()).hexdigest()
    entries = {i: {"i": i, "sha1": pixels_sha1(images[i])} for i in range(3)}
    entries[2] = {"i": 2, "error": "unreadable"}  # skipped images have no pixels to check
    assert mismatched(images, entries) == []
    images[1, 0, 0, 0] = 1  # what a lost write or a torn page leaves
    assert mismatched(images, entries) == [1]


def test_write_errors_in_a_few_words():
    assert write_error_reason(OSError(28, "No space left on device")) == "No space left on device"
    text = "Can't write data (file write failed: time = x, error message = 'No space left')"
    assert write_error_reason(RuntimeError(text)) == "No space left"
