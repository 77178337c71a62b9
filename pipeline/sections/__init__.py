"""The report's sections, in the order the page shows them.

Each is a function of what the report loaded (``loaded.Loaded``) returning its
Markdown lines, empty where the runs hold nothing for it. A new section is a module
here and one line in ``SECTIONS``.
"""
from . import (claims, classes, cv, data, external, fourcases, gallery, header, kaggle_test,
               levels, referral, robustness, runs, scenarios)


SECTIONS = (header.section, claims.section, robustness.section, fourcases.section,
            scenarios.section,
            levels.section, kaggle_test.section, gallery.section, referral.section, cv.section,
            external.section, runs.every_run, data.section, runs.details)

#: the sections of a report on class-labelled data (no referable DR)
CLASS_SECTIONS = (classes.section, fourcases.section, data.section, runs.details)
