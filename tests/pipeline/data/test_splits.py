"""pipeline.data.splits: whole patients per split and fold, stratified by level."""
import numpy as np

from pipeline.data import splits as pp


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


def test_worst_level_of_each_patient_by_hand():
    names = ["10_left", "10_right", "11_left", "IDRiD_001"]
    assert pp.worst_levels(names, [0, 3, 1, 4]) == {"10": 3, "11": 1, "IDRiD_001": 4}
