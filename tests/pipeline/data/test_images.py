"""pipeline.data.images: the retina crop on drawn and real fundus images."""
import numpy as np
from PIL import Image, ImageDraw

from pipeline.data import images as pp
from tests.conftest import FUNDUS_SAMPLE


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


def test_crop_on_real_fundus_images():
    for name in ("IDRiD_001", "IDRiD_200"):
        rgb = np.asarray(Image.open(FUNDUS_SAMPLE / "images" / (name + ".jpeg")).convert("RGB"))
        top, bottom, left, right = pp.retina_box(rgb)
        border = rgb.shape[1] // 25  # the black side borders (85 of 512 px) are dropped
        assert left > border and right < rgb.shape[1] - border
        out = pp.crop_retina(rgb, 256)
        middle = out[128].max(axis=1) > 20
        assert middle[:10].any() and middle[-10:].any()
        assert out[128, 128].max() > 40


def test_photographs_are_warped_to_the_square_as_caffe_prepares_imagenet(tmp_path):
    """No retina crop: the whole frame resized to size x size, aspect ignored (bilinear)."""
    rgb = np.random.RandomState(0).randint(0, 256, (90, 160, 3)).astype(np.uint8)
    rgb[:, :20] = 0  # a dark border a retina crop would cut away
    Image.fromarray(rgb).save(tmp_path / "p.png")
    out = pp.load_image(str(tmp_path / "p.png"), 64, crop="warp")
    expected = np.asarray(Image.fromarray(rgb).resize((64, 64), Image.BILINEAR))
    assert out.shape == (64, 64, 3) and np.array_equal(out, expected)
    assert not np.array_equal(pp.load_image(str(tmp_path / "p.png"), 64), expected)
