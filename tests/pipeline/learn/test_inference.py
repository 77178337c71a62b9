"""``forward`` and ``classify`` from the command line."""
import numpy as np
from PIL import Image
from skimage import data as skdata

from models.caffemodel import write_caffemodel
from pipeline.cli import main
from tests.conftest import REAL_WEIGHTS, SYNSETS, needs_real_weights


def test_forward_rejects_a_blob_of_the_wrong_shape(tmp_path, capsys, random_googlenets):
    _, files = random_googlenets
    np.save(tmp_path / "in.npy", np.zeros((2, 224, 224, 3), np.float32))
    rc = main(["forward", "--weights", str(files[2][0]), "--blob", str(tmp_path / "in.npy"),
               "--out", str(tmp_path / "out.npz")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert str(tmp_path / "in.npy") in err and "(2, 224, 224, 3)" in err
    assert not (tmp_path / "out.npz").exists()


def test_forward_names_an_unknown_layer(tmp_path, capsys, random_googlenets):
    _, files = random_googlenets
    np.save(tmp_path / "in.npy", np.zeros((1, 3, 224, 224), np.float32))
    rc = main(["forward", "--weights", str(files[2][0]), "--blob", str(tmp_path / "in.npy"),
               "--out", str(tmp_path / "out.npz"), "--layers", "prob,inception_9z/output"])
    assert rc == 2 and "inception_9z/output" in capsys.readouterr().err


def test_forward_reports_a_bad_weights_file(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.zeros((1, 3, 224, 224), np.float32))
    (tmp_path / "w.caffemodel").write_bytes(b"\x0a\xff\xff\xff")
    rc = main(["forward", "--weights", str(tmp_path / "w.caffemodel"), "--blob",
               str(tmp_path / "in.npy"), "--out", str(tmp_path / "out.npz")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "w.caffemodel" in err and "\n" not in err


def test_forward_refuses_weights_lacking_layers_unless_asked(tmp_path, capsys,
                                                            random_googlenets):
    _, files = random_googlenets
    _, layers = files[2]
    weights = tmp_path / "partial.caffemodel"
    write_caffemodel(str(weights), [l for l in layers if l[0] != "inception_5b/3x3"], version=2)
    np.save(tmp_path / "in.npy", np.zeros((1, 3, 224, 224), np.float32))
    args = ["forward", "--weights", str(weights), "--blob", str(tmp_path / "in.npy"),
            "--out", str(tmp_path / "out.npz")]
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "lacks 1 layers the network needs: inception_5b/3x3" in err
    assert not (tmp_path / "out.npz").exists()
    assert main(args + ["--allow-missing"]) == 0 and (tmp_path / "out.npz").exists()


# ImageNet classes a correct GoogLeNet must rank in the top 5 for scikit-image's photos.
EXPECTED = {"chelsea": {281, 282, 285},  # tabby, tiger cat, Egyptian cat
            "coffee": {967},  # espresso
            "rocket": {657, 744}}  # missile, projectile


@needs_real_weights
def test_classify_real_weights_top5(tmp_path, capsys):
    paths = []
    for name in EXPECTED:
        path = tmp_path / (name + ".png")
        Image.fromarray(getattr(skdata, name)()).save(path)
        paths.append(str(path))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rc = main(["classify", "--weights", str(REAL_WEIGHTS), "--synsets", str(SYNSETS)]
              + paths + [str(tmp_path / "broken.jpg")])
    out, err = capsys.readouterr()
    assert rc == 1 and "broken.jpg: cannot read image" in err  # reported, others still done
    blocks = out.strip().split("\n")
    for i, name in enumerate(EXPECTED):
        assert blocks[6 * i].endswith(name + ".png")
        top5 = [int(line.split()[1]) for line in blocks[6 * i + 1:6 * i + 6]]
        assert EXPECTED[name] & set(top5), (name, top5)
    assert "espresso" in out
