"""The report's title and what every figure in it rests on."""


def section(report):
    thresholds = sorted({r["config"].get("threshold", 2) for r in report.runs})
    return ["# Transfer learning for diabetic retinopathy: reproduction report", "",
            "Data: `%s` (%d usable images, SHA1 %s); referable DR = level >= %s. Every "
            "interval is a 95 %% bootstrap interval over patients (both eyes together, %d "
            "resamples, seeded)." % (report.data_path.name, report.usable,
                                     report.data_sha1[:12], " or >= ".join(map(str, thresholds)),
                                     report.resamples), ""]
