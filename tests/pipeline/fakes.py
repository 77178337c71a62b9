"""Evaluated runs made by hand, as ``runs.evaluated`` loads them, for the tests of what
reads them (claims, report sections)."""


def fake_evaluated_run(path, seed, tta, score, levels, rule=("sensitivity", 0.87)):
    """A run as evaluated_runs loads it, evaluated with ``tta`` and ``rule``."""
    import numpy as np
    path.mkdir()
    (path / "metrics.csv").write_text("epoch,seconds\n1,5\n")
    metric = {"value": 0.5, "ci": [0.4, 0.6]}
    block = {m: metric for m in ("auc", "sensitivity", "specificity", "accuracy", "kappa")}
    names = np.array(["p%d" % i for i in range(len(score))])
    return {"dir": path, "config": {"seed": seed, "threshold": 2, "target": "binary"},
            "evaluation": {"n": len(score), "tta": tta,
                           "settings": {"tta": tta, "rule": list(rule)},
                           "argmax": block, "at_operating_point": block,
                           "operating_point": {"rule": rule[0], "target": rule[1], "cut": 0.5,
                                               "val_sensitivity": 0.9,
                                               "val_specificity": 0.8}},
            "predictions": {"names": names, "patients": names, "score": np.asarray(score),
                            "levels": np.asarray(levels),
                            "probs": np.column_stack([1 - np.asarray(score), score])}}
