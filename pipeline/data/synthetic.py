"""A generator of fundus-like images with DR levels, for the offline demo,
the tests and the preprocessing benchmark.

Each image is a black frame holding an orange retina disc with a bright optic
disc, dark branching vessels, and lesions whose number grows with the level
(red dots: microaneurysms / haemorrhages; yellow spots: exudates; from level 4
a tangle of new vessels). Names follow Kaggle's ``{patient}_{left|right}``.
"""
import csv
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from models.fileio import atomic_path

# Lesions per level (red dots, yellow exudates); level 0 has none.
LESIONS = {0: (0, 0), 1: (4, 0), 2: (14, 4), 3: (30, 12), 4: (45, 18)}


def fundus_image(level, width=768, height=512, seed=0):
    """One RGB fundus-like PIL image of DR ``level`` (0-4), ``width`` x ``height``."""
    rng = np.random.RandomState(seed)
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    r = int(min(width, height) * rng.uniform(0.44, 0.49))
    cx = width // 2 + int(rng.uniform(-0.03, 0.03) * width)
    cy = height // 2 + int(rng.uniform(-0.02, 0.02) * height)
    base = np.array([rng.uniform(170, 215), rng.uniform(75, 105), rng.uniform(25, 45)])
    for k in range(12, 0, -1):  # radial shading: darker to the rim
        shade = tuple(int(c * (0.55 + 0.45 * (1 - k / 12.0) ** 0.5)) for c in base)
        rk = int(r * k / 12.0)
        draw.ellipse((cx - rk, cy - rk, cx + rk, cy + rk), fill=shade)
    side = rng.choice([-1, 1])
    ox, oy = cx + side * int(r * 0.35), cy + int(rng.uniform(-0.1, 0.1) * r)
    od = int(r * 0.11)
    draw.ellipse((ox - od, oy - od, ox + od, oy + od), fill=(250, 215, 150))
    thickness = max(2, r // 60)
    for v in range(8):  # vessels: random walks out of the optic disc
        angle = 2 * math.pi * v / 8 + rng.uniform(-0.3, 0.3)
        x, y = float(ox), float(oy)
        for step in range(40):
            angle += rng.uniform(-0.25, 0.25)
            nx, ny = x + math.cos(angle) * r / 28, y + math.sin(angle) * r / 28
            if (nx - cx) ** 2 + (ny - cy) ** 2 > (0.97 * r) ** 2:
                break
            w = max(1, int(thickness * (1 - step / 45.0)))
            draw.line((x, y, nx, ny), fill=(120, 25, 20), width=w)
            x, y = nx, ny

    def inside():
        while True:
            px, py = rng.uniform(-0.85, 0.85, 2) * r
            if px * px + py * py < (0.85 * r) ** 2:
                return cx + px, cy + py

    red, yellow = LESIONS[int(level)]
    for _ in range(red):
        x, y = inside()
        s = rng.uniform(0.006, 0.018) * r
        draw.ellipse((x - s, y - s, x + s, y + s), fill=(95, 10, 10))
    for _ in range(yellow):
        x, y = inside()
        s = rng.uniform(0.008, 0.02) * r
        draw.ellipse((x - s, y - s, x + s * 1.6, y + s), fill=(245, 225, 110))
    if level >= 4:
        for _ in range(12):
            x, y = inside()
            draw.line((x, y, x + rng.uniform(-1, 1) * r / 8, y + rng.uniform(-1, 1) * r / 8),
                      fill=(150, 20, 30), width=max(1, thickness // 2))
    image = image.filter(ImageFilter.GaussianBlur(radius=max(0.6, r / 400.0)))
    noise = rng.normal(0, 3, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))


def make_dataset(out_dir, patients=40, width=768, height=512, seed=0, quality=90, first=1):
    """Write ``out_dir/images/{p}_{left,right}.jpeg`` and ``out_dir/labels.csv``.

    Patients are numbered from ``first`` (another data set for external validation
    takes other numbers: its images must not share a name with the training data's).
    Levels are drawn per patient (both eyes within one level of each other),
    with every level present. Returns the list of (image, level) rows.
    """
    rng = np.random.RandomState(seed)
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    rows = []
    for p in range(patients):
        level = p % 5 if p < 5 else int(rng.choice(5, p=[0.4, 0.15, 0.2, 0.13, 0.12]))
        for eye in ("left", "right"):
            eye_level = int(np.clip(level + rng.choice([0, 0, 0, -1, 1]), 0, 4))
            name = "%d_%s" % (p + first, eye)
            path = os.path.join(out_dir, "images", name + ".jpeg")
            if not os.path.exists(path):
                image = fundus_image(eye_level, width, height, seed=seed * 100003 + len(rows))
                with atomic_path(path) as tmp:
                    image.save(tmp, format="JPEG", quality=quality)
            rows.append((name, eye_level))
    with atomic_path(os.path.join(out_dir, "labels.csv")) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image", "level"])
            writer.writerows(rows)
    return rows
