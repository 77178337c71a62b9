"""The image operations of preprocessing. Fundus photographs (``crop = "retina"``): find
the retina, crop it to a square, resize, and optionally Graham-style local contrast
normalisation. Natural photographs (``crop = "warp"``): resized to a square ignoring the
aspect ratio, as Caffe prepares ImageNet (``convert_imageset --resize_height=256
--resize_width=256``; Pillow's bilinear filter where Caffe uses OpenCV's). Arrays are
H x W x 3 uint8 RGB."""
import numpy as np
from PIL import Image, ImageFilter


def retina_box(rgb, threshold=20):
    """(top, bottom, left, right) of the retina: rows/columns where more than
    1 % of pixels are brighter than ``threshold`` (the black border is not)."""
    mask = rgb.max(axis=2) > threshold
    rows = np.flatnonzero(mask.mean(axis=1) > 0.01)
    cols = np.flatnonzero(mask.mean(axis=0) > 0.01)
    if len(rows) == 0 or len(cols) == 0:
        return 0, rgb.shape[0], 0, rgb.shape[1]
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def crop_retina(rgb, size):
    """Crop to the retina, pad to a centred square with black, resize to ``size``."""
    top, bottom, left, right = retina_box(rgb)
    crop = rgb[top:bottom, left:right]
    side = max(crop.shape[:2])
    square = np.zeros((side, side, 3), np.uint8)
    y, x = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
    return np.asarray(Image.fromarray(square).resize((size, size), Image.BICUBIC))


def local_contrast(rgb, sigma_fraction=1 / 30.0):
    """4 (x - blur(x)) + 128, blur Gaussian with sigma = size * ``sigma_fraction``;
    outside the retina circle (radius 0.95 size/2) set to 128 (neutral grey)."""
    size = rgb.shape[0]
    blurred = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(size * sigma_fraction)))
    out = np.clip(4.0 * (rgb.astype(np.float32) - blurred) + 128, 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2.0
    out[xx ** 2 + yy ** 2 > (0.95 * size / 2) ** 2] = 128
    return out


#: how an image becomes a square: ``retina`` (fundus) or ``warp`` (natural photographs)
CROPS = ("retina", "warp")


def load_image(path, size, lcn=False, crop="retina"):
    """The preprocessed size x size x 3 uint8 image of one file (OSError if unreadable)."""
    with Image.open(path) as image:
        if image.format == "JPEG" and crop == "retina":
            image.draft("RGB", (size, size))  # decode at 1/2..1/8 scale, still >= size
        if crop == "warp":
            return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))
        rgb = np.asarray(image.convert("RGB"))
    out = crop_retina(rgb, size)
    return local_contrast(out) if lcn else out


def read_image(path, size, lcn=False, crop="retina"):
    """(``load_image``'s image, None), or (None, why) for a file PIL cannot read."""
    try:
        return load_image(path, size, lcn, crop), None
    except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for corrupt files
        return None, str(e)
