"""The .caffemodel reader/writer (both generations), import errors, and the cache."""
import numpy as np
import pytest

from models.caffe_import import read_caffemodel_cached
from models.caffemodel import CaffeModelError, read_caffemodel, write_caffemodel

LAYERS = [("conv", "Convolution", [np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2),
                                   np.array([1.5, -2], np.float32)]),
          ("ip", "InnerProduct", [np.arange(12, dtype=np.float32).reshape(4, 3),
                                  np.ones(4, np.float32)])]


def read_varint(raw, pos):
    value, shift = 0, 0
    while True:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def top_level_fields(raw):
    """Field numbers of the top-level records of a protobuf message whose
    records are all length-delimited (as NetParameter's are here)."""
    fields, pos = set(), 0
    while pos < len(raw):
        tag, pos = read_varint(raw, pos)
        assert tag & 7 == 2
        length, pos = read_varint(raw, pos)
        fields.add(tag >> 3)
        pos += length
    return fields


@pytest.mark.parametrize("version,field", [(1, 2), (2, 100)])
def test_round_trip_in_both_generations(tmp_path, version, field):
    path = tmp_path / "m.caffemodel"
    write_caffemodel(str(path), LAYERS, version=version)
    # name (1) and either `layers` (2, V1) or `layer` (100, V2)
    assert top_level_fields(path.read_bytes()) == {1, field}
    blobs = read_caffemodel(str(path))
    assert list(blobs) == ["conv", "ip"]
    if version == 1:  # legacy num/channels/height/width, padded with leading 1s
        assert blobs["ip"][0].shape == (1, 1, 4, 3) and blobs["ip"][1].shape == (1, 1, 1, 4)
    else:
        assert blobs["ip"][0].shape == (4, 3) and blobs["ip"][1].shape == (4,)
    for (_, _, arrays), got in zip(LAYERS, blobs.values()):
        for a, g in zip(arrays, got):
            np.testing.assert_array_equal(g.reshape(a.shape), a)


def test_not_a_caffemodel(tmp_path):
    path = tmp_path / "notes.caffemodel"
    path.write_text("this is a text file, not weights\n" * 10)
    with pytest.raises(CaffeModelError) as e:
        read_caffemodel(str(path))
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.caffemodel").write_bytes(b"")
    with pytest.raises(CaffeModelError, match="no layer with weights"):
        read_caffemodel(str(tmp_path / "empty.caffemodel"))
    with pytest.raises(CaffeModelError, match="not found"):
        read_caffemodel_cached(str(tmp_path / "absent.caffemodel"), tmp_path)


def test_truncated_file(tmp_path, random_googlenets):
    _, files = random_googlenets
    raw = files[1][0].read_bytes()
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(CaffeModelError, match="truncated") as e:
        read_caffemodel(str(path))
    assert str(path) in str(e.value)
