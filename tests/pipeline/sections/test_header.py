"""pipeline.sections.header: the report says what its bootstrap resamples."""
from pipeline.sections.header import resampled_unit


def test_the_header_says_patients_where_eyes_pair_and_images_where_none_do():
    assert resampled_unit(["10", "10", "11"]).startswith("over patients (both eyes")
    assert resampled_unit(["IDRiD_001", "IDRiD_002"]).startswith(
        "over images (each image is its own patient")
