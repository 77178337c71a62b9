"""tools.caltech_check (OpenCV's Caffe importer + scikit-learn, independent of the
pipeline) on 3 classes × 10 images of data/caltech, and the embedded copy
data/caltech that tools.embed_sample made (pixel size kept, no metadata)."""
import csv
import hashlib

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REAL_WEIGHTS, ROOT, needs_real_weights, opencv_forward
from tools import caltech_check as cc
from tools.embed_sample import embed

CALTECH = ROOT / "data" / "caltech"


@pytest.fixture(scope="module")
def subset():
    """(paths, classes, {layer: (30, C, H, W)}): the first 10 images of 3 classes."""
    paths, y = cc.read_labels(str(CALTECH))
    keep = np.concatenate([np.flatnonzero(y == c)[:10] for c in ("watch", "ketch", "sunflower")])
    paths, y = [paths[i] for i in keep], y[keep]
    net = cc.load_net(REAL_WEIGHTS)
    raw = cc.forward(net, paths, cc.LAYERS + ("inception_4a/output",), batch=16, progress=False)
    return paths, y, raw


@needs_real_weights
def test_features_shapes_and_the_pooled_inception_4a(subset):
    paths, _, raw = subset
    assert raw["pool5/7x7_s1"].shape == (30, 1024, 1, 1)
    assert raw["inception_4a/output"].shape == (30, 512, 14, 14)
    gap = raw["inception_4a/gap"].reshape(30, 512)
    mean = raw["inception_4a/output"].mean(axis=(2, 3))
    assert np.abs(gap - mean).max() <= 1e-5 * np.abs(mean).max()
    assert mean.std() > 0.1  # the features are not constant


@needs_real_weights
def test_the_prototxt_gives_what_the_projects_prototxt_gives(subset, random_googlenets):
    """The hand-written BVLC prototxt agrees with the one the fidelity tests give OpenCV."""
    paths, _, raw = subset
    blob = np.stack([cc.center_crop(p) for p in paths[:4]]).astype(np.float32)
    blob = (blob - np.float32(cc.MEAN_BGR)).transpose(0, 3, 1, 2)
    prototxt, _ = random_googlenets
    ref = opencv_forward(prototxt, REAL_WEIGHTS, blob, ["pool5/7x7_s1"])["pool5/7x7_s1"]
    assert np.abs(ref - raw["pool5/7x7_s1"][:4]).max() <= 1e-5 * np.abs(ref).max()


@needs_real_weights
def test_an_easy_subset_is_classified_well(subset):
    _, y, raw = subset
    X = raw["pool5/7x7_s1"].reshape(len(y), -1)
    res = cc.cross_validate(X, y)
    assert res["n"] == 30 and len(res["folds"]) == 5
    assert res["accuracy"] > 0.8, res
    shuffled = cc.cross_validate(X, np.random.RandomState(0).permutation(y))
    assert shuffled["accuracy"] < res["accuracy"]


def test_two_per_class_takes_two_training_images_of_each_class():
    y = np.repeat(np.array(["a", "b", "c"]), 10)
    train = np.arange(0, 30, 2)  # 5 of each class
    pick = cc.two_per_class(train, y, fold=3)
    assert sorted(y[pick]) == ["a", "a", "b", "b", "c", "c"]
    assert set(pick) <= set(train) and len(set(pick)) == 6
    assert list(pick) == list(cc.two_per_class(train, y, fold=3))  # seeded


def test_embed_keeps_the_pixel_size_and_drops_the_metadata(tmp_path):
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    exif = Image.Exif()
    exif[0x010F] = "camera maker"
    for name, size, mode in [("a_image_0001", (300, 114), "RGB"),
                             ("a_image_0002", (159, 300), "RGB"),
                             ("b_image_0001", (201, 133), "L")]:
        Image.new(mode, size, 90).save(src / "images" / (name + ".jpg"), exif=exif,
                                       icc_profile=b"not really a profile")
    (src / "labels.csv").write_text("image,class\na_image_0001,a\na_image_0002,a\n"
                                    "b_image_0001,b\n")
    (src / "SOURCE.md").write_text("# source\nCC BY 4.0, credit\n")
    out = tmp_path / "caltech"
    assert embed(src, out, size=0, quality=60, ext=".jpg") == 3
    for name, size in [("a_image_0001", (300, 114)), ("a_image_0002", (159, 300)),
                       ("b_image_0001", (201, 133))]:
        with Image.open(out / "images" / (name + ".jpg")) as im:
            assert im.size == size and im.mode == "RGB" and im.format == "JPEG"
            assert not {"exif", "icc_profile", "xmp", "comment"} & set(im.info), im.info
    with Image.open(src / "images" / "a_image_0001.jpg") as im:
        assert "exif" in im.info and "icc_profile" in im.info  # there was metadata to drop
    assert (out / "labels.csv").read_bytes() == (src / "labels.csv").read_bytes()
    source = (out / "SOURCE.md").read_text()
    assert source.startswith("# source\nCC BY 4.0, credit")
    assert "(`data/caltech/`)" in source and "quality 60" in source
    assert "pixel size unchanged" in source and "--size 0 --quality 60 --ext .jpg" in source
    rows = (out / "checksums.csv").read_text().split()
    assert rows[0] == "image,sha256" and len(rows) == 4
    for row in rows[1:]:
        name, digest = row.split(",")
        assert hashlib.sha256((out / "images" / (name + ".jpg")).read_bytes()).hexdigest() \
            == digest


def test_the_embedded_caltech_copy_matches_its_labels_and_checksums():
    with open(CALTECH / "labels.csv", newline="") as f:
        labels = [row["image"] for row in csv.DictReader(f)]
    rows = (CALTECH / "checksums.csv").read_text().split()[1:]
    assert len(labels) == len(rows) == 938
    assert sorted(p.name for p in (CALTECH / "images").iterdir()) \
        == sorted(name + ".jpg" for name in labels)
    for row in rows[::47]:
        name, digest = row.split(",")
        path = CALTECH / "images" / (name + ".jpg")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        with Image.open(path) as im:
            im.verify()
