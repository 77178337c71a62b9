"""The report's title and what every figure in it rests on."""
from ..data.dataset import Dataset


def resampled_unit(patients):
    """What the bootstrap draws, in words: patients with both eyes together where some
    patient has several images, else images (each its own patient, as on IDRiD)."""
    if len(set(patients)) < len(patients):
        return "over patients (both eyes together"
    return "over images (each image is its own patient in this data"


def section(report):
    thresholds = sorted({r["config"].get("threshold", 2) for r in report.runs})
    data = Dataset(str(report.data_path), "all")
    unit = resampled_unit(data.patients)
    data.close()
    return ["# Transfer learning for diabetic retinopathy: reproduction report", "",
            "Data: `%s` (%d usable images, SHA1 %s); referable DR = level >= %s. Every "
            "interval is a 95 %% bootstrap interval %s, %d resamples, seeded)." % (
                report.data_path.name, report.usable, report.data_sha1[:12],
                " or >= ".join(map(str, thresholds)), unit, report.resamples), ""]
