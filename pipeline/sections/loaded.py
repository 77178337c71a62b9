"""What the report reads, loaded once and handed to every section."""
import functools
from pathlib import Path

from models.fileio import sha1_of

from ..data.dataset import data_classes
from ..evidence.claims import claim_evidence, headline
from ..evidence.stats import RESAMPLES
from ..runs.evaluated import data_summary, group, load_cv, load_external, load_runs


class Loaded(object):
    """Every evaluated run of one dataset under ``runs_root``, and what the sections
    derive from them more than once.

    - ``runs``: every evaluated run on the data (``runs.evaluated.load_runs``);
      ``split_runs``: those of the file's own split (cross-validation folds left out)
    - ``groups``: {label: runs of one scenario and overrides}; ``by_scenario``:
      {scenario: the group with the fewest overrides}, on which the claims are decided
    - ``cv``: {scenario: cross-validation summaries}; ``external``: {dataset: evaluations}
    - ``stem``: ``report-<data>``, the prefix of the report's files in ``runs_root``
    - ``classes``: the class names of class-labelled data, None for DR levels
    """

    def __init__(self, runs_root, data_path, resamples=RESAMPLES):
        self.runs_root, self.data_path = Path(runs_root), Path(data_path)
        self.resamples = resamples
        self.data_sha1 = sha1_of(self.data_path)
        self.runs = load_runs(self.runs_root, self.data_sha1)
        self.split_runs = [r for r in self.runs if "folds" not in r["config"]]
        self.groups, primary = group(self.runs)
        self.by_scenario = {scenario: self.groups[label] for scenario, label in primary.items()}
        self.cv = load_cv(self.runs_root, self.data_sha1)
        self.external = load_external(self.runs)
        self.stem = "report-%s" % self.data_path.stem
        self.counts, self.failed, self.source, self.usable = data_summary(self.data_path)
        self.classes = data_classes(self.data_path)

    @functools.cached_property
    def claims(self):
        """(the rows the claims table shows, the other evidence): ``claims.headline``."""
        return headline(claim_evidence(self.by_scenario, self.cv, self.resamples))
