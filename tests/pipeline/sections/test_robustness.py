"""pipeline.sections.robustness: a reading that changes the evaluation only, or the
preprocessing only, is compared with the default, not called the same config."""
import numpy as np

from pipeline.sections.robustness import reading_difference
from tests.pipeline.evidence.test_robustness import fake_run


def test_the_tta_reading_gets_its_difference_from_the_default():
    """The ambiguity grid's TTA reading printed 'not applicable: both sides are the same
    config' where its ΔAUC against the default belongs."""
    from pipeline.evidence.claims import scores
    from pipeline.evidence.stats import paired_difference
    rng = np.random.RandomState(0)
    levels = rng.randint(0, 5, 80)
    names = ["p%d" % i for i in range(80)]
    default = [fake_run(names, levels, (levels >= 2) + rng.normal(0, 0.6, 80), freeze=["x"])]
    no_tta = [fake_run(names, levels, (levels >= 2) + rng.normal(0, 0.9, 80), freeze=["x"],
                       tta=False)]
    text = reading_difference(no_tta, default, 200)
    d = paired_difference([scores(no_tta[0]["predictions"])],
                          [scores(default[0]["predictions"])], levels >= 2,
                          np.array(names), "auc", 200)
    assert text == "%+.3f [%+.3f, %+.3f]" % (d["value"], d["ci"][0], d["ci"][1])
    same = [fake_run(names, levels, default[0]["predictions"]["score"], freeze=["x"])]
    assert reading_difference(same, default, 50).startswith("not applicable")


def test_the_preprocessing_reading_gets_its_difference_from_the_default():
    """The same config trained on the images preprocessed another way (LCN: another data
    file, the same test images) printed 'not applicable: both sides are the same config'
    where its ΔAUC against the default belongs."""
    from pipeline.evidence.claims import scores
    from pipeline.evidence.stats import paired_difference
    rng = np.random.RandomState(1)
    levels = rng.randint(0, 5, 80)
    names = ["p%d" % i for i in range(80)]
    default = [fake_run(names, levels, (levels >= 2) + rng.normal(0, 0.6, 80), freeze=["x"])]
    lcn = [fake_run(names, levels, (levels >= 2) + rng.normal(0, 0.9, 80), freeze=["x"],
                    data_sha1="lcn")]
    d = paired_difference([scores(lcn[0]["predictions"])], [scores(default[0]["predictions"])],
                          levels >= 2, np.array(names), "auc", 200)
    assert reading_difference(lcn, default, 200) == "%+.3f [%+.3f, %+.3f]" % (
        d["value"], d["ci"][0], d["ci"][1])
