"""Make ``data/sample``, the repository's embedded fundus sample, from the shared
IDRiD sample: every image resized to ``--size`` pixels on its long side (Pillow's
Lanczos), JPEG quality ``--quality``, no metadata; labels copied; the source's
SOURCE.md kept with a note of these changes (CC BY 4.0 asks for one).

    python -m tools.embed_sample --src ../shared/data/fundus-sample --out data/sample
"""
import argparse
import csv
import hashlib
import os
from pathlib import Path

from PIL import Image


def atomic_write_bytes(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)

CHANGES = """
## Changes made for this repository's copy (`data/sample/`)
Made by `python -m tools.embed_sample` from the folder described above:
- resized again, from {source} to **{size}×{height}** (the long side {size} px, Pillow's
  Lanczos); the whole frame is kept: no crop, no colour change;
- re-encoded as JPEG at quality {quality}, without EXIF, XMP or comments;
- `labels.csv` copied unchanged; `provenance.csv` is not copied (see the source);
  `checksums.csv` gives each file's sha256.
"""


def embed(src, out, size=512, quality=90):
    src, out = Path(src), Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    with open(src / "labels.csv", newline="") as f:
        names = [row["image"] for row in csv.DictReader(f)]
    sums, height, source = [], None, None
    for name in names:
        with Image.open(src / "images" / (name + ".jpeg")) as im:
            im = im.convert("RGB")
            source = source or "%d×%d" % im.size
            scale = size / float(max(im.size))
            small = im.resize((round(im.size[0] * scale), round(im.size[1] * scale)),
                              Image.LANCZOS)
        height = small.size[1]
        path = out / "images" / (name + ".jpeg")
        tmp = path.with_suffix(".tmp")
        small.save(tmp, "JPEG", quality=quality)
        os.replace(tmp, path)
        sums.append("%s,%s" % (name, hashlib.sha256(path.read_bytes()).hexdigest()))
    atomic_write_bytes(out / "labels.csv", (src / "labels.csv").read_bytes())
    atomic_write_bytes(out / "checksums.csv", ("image,sha256\n" + "\n".join(sums) + "\n").encode())
    source = (src / "SOURCE.md").read_text()
    atomic_write_bytes(out / "SOURCE.md", (source.rstrip() + "\n" + CHANGES.format(
        source=source, size=size, height=height, quality=quality)).encode())
    return len(names)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--src", required=True)
    p.add_argument("--out", default="data/sample")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--quality", type=int, default=90)
    args = p.parse_args(argv)
    print("%d images written to %s" % (embed(args.src, args.out, args.size, args.quality),
                                       args.out))


if __name__ == "__main__":
    main()
