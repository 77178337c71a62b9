"""How long runs take: the wall time ``make reproduce``'s plan line announces before
anything runs, from the data's split sizes and the speed of the reference machine
class; the report sets it beside what the same runs recorded."""
import json
import os

import h5py

#: img/s of the reference machine class (2 cores, OpenBLAS's AVX-512 kernels; make bench):
#: scenario 4's training step, a forward pass, the feature extraction
SPEED = {"finetune": 8.0, "infer": 13.0, "features": 15.0}


def split_counts(data_path, labels=None):
    """Images per split: from the preprocessed file, or, before it exists, from the
    labels file and the default split fractions (0.7 / 0.15 / 0.15)."""
    if os.path.exists(data_path) or labels is None:
        with h5py.File(data_path, "r") as f:
            return {split: sum(levels) for split, levels in json.loads(f.attrs["counts"]).items()}
    if not os.path.exists(labels):
        return None
    with open(labels) as f:
        n = max(0, sum(1 for line in f if line.strip()) - 1)
    return {"train": 0.7 * n, "val": 0.15 * n, "test": 0.15 * n}


def estimate_seconds(configs, counts, tta):
    """A rough upper bound of the wall time of training and evaluating ``configs``
    from nothing on the reference machine class (runs that can be reused cost less)."""
    evaluation = (counts.get("val", 0) + counts.get("test", 0)) * (4 if tta else 1) / SPEED["infer"]
    total = 0.0
    for config in configs:
        if config["method"] == "finetune":
            total += config["epochs"] * counts.get("train", 0) / SPEED["finetune"]
            total += config["epochs"] * counts.get("val", 0) / SPEED["infer"]
        else:
            total += sum(counts.values()) / SPEED["features"]
        total += evaluation + 30  # compiling, bootstraps, plots
    return total


def estimate_cv_seconds(configs, counts, folds, tta):
    """The same bound for the ``folds``-fold cross-validation of each of ``configs``: a
    fine-tuning trains on ``folds - 2`` folds and is evaluated on two (validation and
    test) per fold; a feature scenario extracts its features once for every fold."""
    n = sum(counts.values())
    fold = {"train": n * (folds - 2) / folds, "val": n / folds, "test": n / folds}
    total = 0.0
    for config in configs:
        if config["method"] == "finetune":
            total += folds * estimate_seconds([config], fold, tta)
        else:
            total += estimate_seconds([config], counts, tta) + (folds - 1) * (
                2 * n / folds * (4 if tta else 1) / SPEED["infer"] + 30)
    return total
