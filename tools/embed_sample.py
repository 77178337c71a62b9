"""Make an embedded copy of a shared image folder for the repository: ``data/sample``
(the fundus sample) or ``data/caltech`` (the Caltech-101 subset).

Each image ``images/<image><ext>`` named in ``labels.csv`` is decoded, converted to
RGB, resized to ``--size`` pixels on its long side (Pillow's Lanczos) or, with
``--size 0``, kept at its own pixel size, and written as JPEG at ``--quality``
without EXIF, XMP or ICC profile (Pillow keeps only a source's JPEG comment: the
fundus files carry their camera's, the Caltech files have none). ``labels.csv`` is
copied unchanged, ``checksums.csv`` (``image,sha256``) lists each written file, and
the source's SOURCE.md is kept with a section saying what was changed (CC BY 4.0
asks for one).

    python -m tools.embed_sample --src ../shared/data/fundus-sample --out data/sample
    python -m tools.embed_sample --src ../shared/data/caltech101-subset --out data/caltech \\
        --size 0 --quality 50 --ext .jpg

Quality 50 is the highest at which the Caltech copy's images/ stays under 10 MiB
(10,421,104 bytes): its originals are already JPEG quality 75, so re-encoding at 75
gives files as large as theirs (13.6 MB) and at 80 or 85 larger (14.4, 17.2 MB).
"""
import argparse
import csv
import hashlib
import os
from pathlib import Path

from PIL import Image, ImageChops, ImageStat


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

CHANGES_KEEP_SIZE = """
## Changes made for this repository's copy (`data/{folder}/`)
Made from the folder described above by

    python -m tools.embed_sample --src {src} --out {out} --size 0 --quality {quality} --ext {ext}

- **pixel size unchanged**: each image keeps its own width and height ({smallest} to
  {largest} pixels here, as in the source); no crop, no colour change;
- decoded and re-encoded as JPEG (Pillow, quality {quality}), a lossy step: the pixels
  differ from the source's by {mad:.1f} of 255 on average (mean absolute difference;
  {mad_max:.1f} for the most changed image); no EXIF, XMP, ICC profile or comments;
- {n} files, {out_mb:.1f} MB in `images/` ({out_bytes:,} bytes; the source's files:
  {in_mb:.1f} MB, {in_bytes:,} bytes);
- `labels.csv` copied unchanged; `checksums.csv` gives each file's sha256.
"""


def embed(src, out, size=512, quality=90, ext=".jpeg"):
    """Write the copy of ``src`` to ``out`` (see the module docstring); ``size`` 0 keeps
    every image's pixel size. Returns the number of images written."""
    src, out = Path(src), Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    with open(src / "labels.csv", newline="") as f:
        names = [row["image"] for row in csv.DictReader(f)]
    sums, sizes, diffs, in_bytes, out_bytes = [], [], [], 0, 0
    for name in names:
        with Image.open(src / "images" / (name + ext)) as im:
            im = im.convert("RGB")
            sizes.append(im.size)
            if size:
                scale = size / float(max(im.size))
                im = im.resize((round(im.size[0] * scale), round(im.size[1] * scale)),
                               Image.LANCZOS)
        height = im.size[1]
        path = out / "images" / (name + ext)
        tmp = path.with_suffix(".tmp")
        im.save(tmp, "JPEG", quality=quality)
        os.replace(tmp, path)
        if not size:  # how far the re-encoding moved the pixels (mean over pixels, bands)
            with Image.open(path) as back:
                diffs.append(sum(ImageStat.Stat(ImageChops.difference(im, back)).mean) / 3)
        data = path.read_bytes()
        in_bytes += (src / "images" / (name + ext)).stat().st_size
        out_bytes += len(data)
        sums.append("%s,%s" % (name, hashlib.sha256(data).hexdigest()))
    atomic_write_bytes(out / "labels.csv", (src / "labels.csv").read_bytes())
    atomic_write_bytes(out / "checksums.csv", ("image,sha256\n" + "\n".join(sums) + "\n").encode())
    if size:
        changes = CHANGES.format(source="%d×%d" % sizes[0], size=size, height=height,
                                 quality=quality)
    else:
        changes = CHANGES_KEEP_SIZE.format(
            folder=out.name, src=src, out=out, quality=quality, ext=ext, n=len(names),
            smallest="%d×%d" % min(sizes, key=lambda s: s[0] * s[1]),
            largest="%d×%d" % max(sizes, key=lambda s: s[0] * s[1]),
            mad=sum(diffs) / len(diffs), mad_max=max(diffs), out_bytes=out_bytes,
            out_mb=out_bytes / 1e6, in_bytes=in_bytes, in_mb=in_bytes / 1e6)
    atomic_write_bytes(out / "SOURCE.md", ((src / "SOURCE.md").read_text().rstrip() + "\n"
                                           + changes).encode())
    return len(names)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--src", required=True)
    p.add_argument("--out", default="data/sample")
    p.add_argument("--size", type=int, default=512, help="long side in pixels; 0 keeps the size")
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--ext", default=".jpeg", help="the images' file name ending, in and out")
    args = p.parse_args(argv)
    print("%d images written to %s" % (embed(args.src, args.out, args.size, args.quality,
                                             args.ext), args.out))


if __name__ == "__main__":
    main()
