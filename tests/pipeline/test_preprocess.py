"""Preprocessing: labels validation, patient-level split, retina crop, corrupt
images, and resuming an interrupted run."""
import h5py
import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline import preprocess as pp
from pipeline.errors import InputError
from pipeline.synthetic import make_dataset
from tests.conftest import FUNDUS_SAMPLE


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("synthetic")
    make_dataset(str(d), patients=20, width=360, height=240, seed=3)
    return d


def test_split_keeps_patients_whole_and_is_stratified():
    rng = np.random.RandomState(0)
    names, levels = [], []
    for p in range(300):
        level = int(rng.choice(5))
        for eye in ("left", "right"):
            names.append("%d_%s" % (p, eye))
            levels.append(max(0, level - int(rng.rand() < 0.3)))
    split = pp.split_by_patient(names, levels, seed=1)
    by_patient = {}
    for name, s in zip(names, split):
        by_patient.setdefault(pp.patient_of(name), set()).add(int(s))
    assert all(len(s) == 1 for s in by_patient.values())  # no patient in two splits
    assert abs((split == 0).mean() - 0.7) < 0.03 and abs((split == 2).mean() - 0.15) < 0.03
    worst = {}
    for name, level in zip(names, levels):
        worst[pp.patient_of(name)] = max(level, worst.get(pp.patient_of(name), 0))
    for level in range(5):  # every level in every split, in proportion
        ps = [p for p, l in worst.items() if l == level]
        frac_train = np.mean([next(iter(by_patient[p])) == 0 for p in ps])
        assert abs(frac_train - 0.7) < 0.06
    np.testing.assert_array_equal(split, pp.split_by_patient(names, levels, seed=1))
    assert not np.array_equal(split, pp.split_by_patient(names, levels, seed=2))
    assert pp.patient_of("10_left") == pp.patient_of("10_right") == "10"
    assert pp.patient_of("IDRiD_001") == "IDRiD_001"


def test_crop_finds_a_drawn_retina():
    image = Image.new("RGB", (600, 400))
    ImageDraw.Draw(image).ellipse((150, 30, 490, 370), fill=(180, 90, 40))
    top, bottom, left, right = pp.retina_box(np.asarray(image))
    assert abs(top - 30) <= 2 and abs(bottom - 371) <= 2
    assert abs(left - 150) <= 2 and abs(right - 491) <= 2
    out = pp.crop_retina(np.asarray(image), 128)
    assert out.shape == (128, 128, 3)
    row = out[64].max(axis=1) > 20
    assert row[:3].sum() >= 1 and row[-3:].sum() >= 1  # the disc spans the width


@pytest.mark.skipif(not FUNDUS_SAMPLE.exists(), reason="no shared fundus sample")
def test_crop_on_real_fundus_images():
    for name in ("IDRiD_001", "IDRiD_200"):
        rgb = np.asarray(Image.open(FUNDUS_SAMPLE / "images" / (name + ".jpeg")).convert("RGB"))
        top, bottom, left, right = pp.retina_box(rgb)
        assert left > 40 and right < rgb.shape[1] - 40  # the black side borders are dropped
        out = pp.crop_retina(rgb, 256)
        middle = out[128].max(axis=1) > 20
        assert middle[:10].any() and middle[-10:].any()
        assert out[128, 128].max() > 40


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


def copy_dataset(src, dst):
    (dst / "images").mkdir(parents=True)
    for f in (src / "images").iterdir():
        (dst / "images" / f.name).write_bytes(f.read_bytes())
    (dst / "labels.csv").write_bytes((src / "labels.csv").read_bytes())


def test_corrupt_images_are_reported_skipped_and_counted(tmp_path, synthetic_dir, capsys):
    copy_dataset(synthetic_dir, tmp_path / "d")
    good = (tmp_path / "d/images/2_left.jpeg").read_bytes()
    (tmp_path / "d/images/2_left.jpeg").write_bytes(good[:len(good) // 3])  # truncated
    (tmp_path / "d/images/3_right.jpeg").write_bytes(b"not an image at all")
    summary = pp.preprocess(str(tmp_path / "d"), str(tmp_path / "out.h5"), size=64, workers=2,
                            progress=False)
    err = capsys.readouterr().err
    assert "2_left.jpeg" in err and "3_right.jpeg" in err
    assert len(summary["failed"]) == 2 and summary["stored"] == summary["images"] - 2
    with h5py.File(tmp_path / "out.h5") as f:
        names = [n.decode() for n in f["name"][:]]
        ok = dict(zip(names, f["ok"][:]))
        assert not ok["2_left"] and not ok["3_right"] and ok["1_left"]
        assert len(eval(f.attrs["failed"])) == 2


def test_interrupted_run_resumes_to_the_same_file(tmp_path, synthetic_dir, monkeypatch):
    pp.preprocess(str(synthetic_dir), str(tmp_path / "ref.h5"), size=64, progress=False)

    class Interrupt(pp.tqdm):  # the progress bar is told of each stored image
        stored = 0

        def update(self, n=1):
            super().update(n)
            Interrupt.stored += n
            if Interrupt.stored >= 10:
                raise KeyboardInterrupt

    monkeypatch.setattr(pp, "tqdm", Interrupt)
    out = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        pp.preprocess(str(synthetic_dir), str(out), size=64, progress=False)
    assert not out.exists()  # never a half-written file under the real name
    with h5py.File(str(out) + ".partial") as f:
        assert f["done"][:].sum() == 10
    monkeypatch.undo()
    initial = []

    class Record(pp.tqdm):
        def __init__(self, *args, **kwargs):
            initial.append(kwargs["initial"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pp, "tqdm", Record)
    pp.preprocess(str(synthetic_dir), str(out), size=64, progress=False)
    assert initial == [10]  # resumed: the 10 stored images were not done again
    with h5py.File(out) as f, h5py.File(tmp_path / "ref.h5") as g:
        np.testing.assert_array_equal(f["images"][:], g["images"][:])
        np.testing.assert_array_equal(f["split"][:], g["split"][:])
