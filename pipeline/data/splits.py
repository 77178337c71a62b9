"""Which split (train / val / test) or cross-validation fold each image is in: whole
patients (Kaggle's ``10_left`` and ``10_right`` are patient ``10``), stratified by
each patient's worst level (or class, for class-labelled data: the integer label
either way), shuffled with a recorded seed."""
import re

import numpy as np

SPLITS = ("train", "val", "test")


def patient_of(name):
    """Kaggle's ``10_left`` / ``10_right`` are patient ``10``; other names are their own."""
    return re.sub(r"_(left|right)$", "", name)


def worst_levels(names, levels):
    """{patient: the worst level of their images}."""
    worst = {}
    for name, level in zip(names, levels):
        p = patient_of(name)
        worst[p] = max(level, worst.get(p, 0))
    return worst


def split_by_patient(names, levels, fractions=(0.7, 0.15, 0.15), seed=0):
    """Split code per image (0 train, 1 val, 2 test): whole patients, stratified by
    each patient's worst level, shuffled with ``seed``."""
    patient_level = worst_levels(names, levels)
    rng = np.random.RandomState(seed)
    patient_split = {}
    bounds = np.cumsum(fractions) / np.sum(fractions)
    for level in sorted(set(patient_level.values())):
        group = sorted(p for p, l in patient_level.items() if l == level)
        rng.shuffle(group)
        cuts = np.round(bounds * len(group)).astype(int)
        for i, p in enumerate(group):
            patient_split[p] = int(np.searchsorted(cuts, i, side="right"))
    return np.array([patient_split[patient_of(n)] for n in names], dtype=np.int8)


def kfold_by_patient(names, levels, folds, seed=0):
    """Fold (0..folds-1) of each image: whole patients, dealt round-robin within each
    worst level after a seeded shuffle, so every fold is stratified by level."""
    patient_level = worst_levels(names, levels)
    rng = np.random.RandomState(seed)
    patient_fold, dealt = {}, 0
    for level in sorted(set(patient_level.values())):
        group = sorted(p for p, l in patient_level.items() if l == level)
        rng.shuffle(group)
        for p in group:  # continue the deal across levels: fold sizes differ by one at most
            patient_fold[p] = dealt % folds
            dealt += 1
    return np.array([patient_fold[patient_of(n)] for n in names], dtype=np.int8)
