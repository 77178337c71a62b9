"""pipeline.sections.gallery: which test images the gallery shows."""


def test_gallery_cases_by_hand():
    from pipeline.sections.gallery import gallery_cases
    score = [0.9, 0.8, 0.2, 0.1, 0.7, 0.3, 0.95, 0.05]
    truth = [1, 1, 1, 0, 0, 0, 1, 1]
    cases = gallery_cases(score, truth, cut=0.5)
    assert cases["true positive"] == [0, 1, 6] and cases["false positive"] == [4]
    assert cases["false negative"] == [2, 7]  # the right kinds, each at most three
    assert gallery_cases(score, truth, 0.5) == cases  # a fixed seed
