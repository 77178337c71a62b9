"""Kaggle's test set: the runs scored by ``make kaggle-test``, beside the leaderboard."""
import json

from .common import fmt


#: Kaggle 2015's private leaderboard (quadratic weighted kappa on its test set's Private
#: part), and a published replication's referable AUC on the whole test set
LEADERBOARD = (("1st, Graham", 0.8496), ("2nd, team o_O (Lasagne/Theano)", 0.8448),
               ("3rd", 0.8394), ("5th, De Fauw", 0.8290))

VOETS_2019 = ("Voets et al. 2019 (re-implementing Gulshan 2016)", 0.951, (0.947, 0.956))


def kaggle_test_section(runs):
    """The runs scored on Kaggle's official test set (``make kaggle-test ... SOLUTION=``:
    their ``score.json``), beside the leaderboard and a published replication."""
    scored = [(run, path) for run in runs
              for path in sorted(run["dir"].glob("kaggle-test/*/score.json"))]
    if not scored:
        return []
    md = ["", "## Kaggle's test set", "",
          "Scored against Kaggle's released solution by `make kaggle-test`: quadratic "
          "weighted kappa over levels 0-4 and the AUC of referable DR, on the Public and the "
          "Private part, with 95 % patient-bootstrap intervals (a binary run submits level "
          "2 when referable, else 0: its kappa measures that decision only).", "",
          "| run | test images | Public kappa | Private kappa | Private AUC, referable |",
          "|---|---|---|---|---|"]
    for run, path in scored:
        score = json.loads(path.read_text())
        parts = [score.get(u) for u in ("Public", "Private")]
        md.append("| %s (%s) | %s: %d | %s | %s | %s |" % (
            run["dir"].name, run["config"]["target"], path.parent.name,
            sum(p["images"] for p in parts if p),
            *[fmt(p["kappa"]) if p else "-" for p in parts],
            fmt(parts[1]["auc_referable"]) if parts[1] else "-"))
    md += ["| Kaggle 2015, %s | Private: ~80 %% of 53,576 | | %.4f | |" % (who, kappa)
           for who, kappa in LEADERBOARD]
    md.append("| %s | all | | | %.3f [%.3f, %.3f] |" % (VOETS_2019[0], VOETS_2019[1],
                                                         *VOETS_2019[2]))
    return md + [""]


def section(report):
    return kaggle_test_section(report.runs)
