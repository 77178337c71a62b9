"""The size axis: which training images are kept at each training-set size.

A size is either a fraction of the training patients or a count of patients per
stratum (for class data, where every image is its own patient, a count is images
per class). The rule for reading sizes:

* a value in (0, 1) is a fraction; ``1`` and ``1.0`` are the fraction 1, the whole
  training set;
* a whole number >= 2 (``2``, ``5``, ``10``, also ``2.0``) is a count;
* anything else (0, negatives, ``1.5``, ``2.5``, words) is an error.

Subsets keep whole patients (Kaggle's ``10_left`` and ``10_right`` together), are
stratified (a patient's stratum is the worst, i.e. largest, stratum of its images)
and nested: for one seed each stratum's patients are put in one seeded order and
every size keeps a prefix of it, so a smaller size's subset lies inside a larger
one's.
"""
import numpy as np

from ..errors import InputError
from .splits import patient_of

#: keeps a product such as 0.7 x 5 = 3.4999999999999996 on its intended half
_ROUNDING_SLACK = 1e-9


def size_kind(size):
    """("fraction", f) or ("count", c) of one training size, by the module's rule;
    InputError naming the value otherwise."""
    try:
        value = float(size)
    except (TypeError, ValueError):
        raise InputError("training size %r: not a number" % (size,)) from None
    if isinstance(size, bool) or not np.isfinite(value) or value <= 0:
        raise InputError("training size %r: must be a fraction in (0, 1] or a whole "
                         "number >= 2 of images per class" % (size,))
    if value <= 1:
        return "fraction", value
    if value != int(value):
        raise InputError("training size %r: a count must be a whole number (>= 2), a "
                         "fraction at most 1" % (size,))
    return "count", int(value)


def parse_sizes(text):
    """Sizes from ``text``, comma-separated, in the order given: fractions as floats,
    counts as ints ("0.125,0.25,1" -> [0.125, 0.25, 1.0]; "2,5,10" -> [2, 5, 10]).
    InputError, one line naming the value, for a value that is neither."""
    sizes = []
    for token in str(text).split(","):
        token = token.strip()
        if not token:
            raise InputError("training sizes %r: an empty value" % (text,))
        kind, value = size_kind(token)
        sizes.append(float(value) if kind == "fraction" else value)
    return sizes


def round_half_up(x):
    """The nearest whole number to ``x`` >= 0, halves rounded up (2.5 -> 3)."""
    return int(np.floor(x + 0.5 + _ROUNDING_SLACK))


def patient_strata(names, strata):
    """{patient: its stratum}, a patient's stratum the largest of its images'."""
    worst = {}
    for name, s in zip(names, strata):
        p = patient_of(name)
        worst[p] = max(int(s), worst.get(p, int(s)))
    return worst


def patients_kept(stratum, group, size):
    """How many of a stratum's ``group`` (its patients) the training ``size`` keeps."""
    kind, value = size_kind(size)
    keep = round_half_up(value * len(group)) if kind == "fraction" else value
    if keep > len(group):
        raise InputError("training size %s: stratum %s holds only %d patients"
                         % (size, stratum, len(group)))
    if keep == 0:
        raise InputError("training size %s keeps no image of stratum %s (%d patients)"
                         % (size, stratum, len(group)))
    return keep


def training_subset(names, strata, size, seed=0):
    """The sorted positions (an int array) into ``names`` of the training images kept
    at ``size``.

    ``names``: N image names (the patient of each is ``splits.patient_of``);
    ``strata``: N ints, per image (the DR level of fundus images, the class of class
    data). In each stratum (of patients, by their worst image) a fraction f keeps
    round-half-up(f x its patients) patients, a count c keeps c patients, the first
    ones of one seeded order of its patients: nested across sizes for one ``seed``;
    f = 1 keeps everything. A patient's images are kept or dropped together.
    InputError (one line, naming the size and the stratum) for a count larger than a
    stratum holds or a size that keeps nothing of a stratum.
    """
    if len(names) != len(strata):
        raise InputError("training subset: %d names but %d strata" % (len(names), len(strata)))
    worst = patient_strata(names, strata)
    rng = np.random.RandomState(seed)
    kept = set()
    for stratum in sorted(set(worst.values())):
        group = sorted(p for p, s in worst.items() if s == stratum)
        order = [group[i] for i in rng.permutation(len(group))]  # independent of size
        kept.update(order[:patients_kept(stratum, group, size)])
    return np.array([i for i, name in enumerate(names) if patient_of(name) in kept], dtype=int)
