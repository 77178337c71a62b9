"""The wording the sections share: figures with intervals, scenario names, the
commands and time behind a table."""
from ..runs.evaluated import train_seconds


SCENARIO_NAMES = {"1": "1: linear on top features", "2": "2: fine-tune all",
                  "3": "3: linear on earlier features", "4": "4: fine-tune, conv1/2 frozen",
                  "scratch": "scratch: scenario 4 from random init",
                  "4-levels": "4-levels: scenario 4 on five levels"}


def fmt(metric):
    """0.912 [0.850, 0.961]"""
    return "%.3f [%.3f, %.3f]" % ((metric["value"],) + tuple(metric["ci"]))


def display(label):
    """A group label with the scenario's name: '4: fine-tune, conv1/2 frozen [epochs=1]'."""
    head, _, rest = label.partition(" [")
    return SCENARIO_NAMES.get(head, head) + (" [" + rest if rest else "")


def rule_text(point):
    if point["rule"] == "sensitivity":
        return "the highest specificity with sensitivity >= %.2f" % point["target"]
    return "Youden's J"


def made_by(runs, cvs=(), plans=(), records=()):
    """The line naming the commands that made these runs, cross-validations, sweep
    plans and other records (e.g. referral evaluations), as each recorded its own
    (``runs.rundir.command_line``): training, then evaluation."""
    commands = []
    for command in ([r["env"].get("command") for r in runs]
                    + [r["evaluation"].get("command") for r in runs]
                    + [c["summary"].get("command") for c in cvs]
                    + [p.get("made_by") for p in plans] + [r.get("command") for r in records]):
        command = command or "(not recorded: made before commands were kept)"
        if command not in commands:
            commands.append(command)
    return ["", "*Made by: %s.*" % "; ".join("`%s`" % c for c in commands)] if commands else []


def timing_line(runs, data_path):
    """The recorded training and evaluation time of ``runs`` beside what ``make
    reproduce``'s plan estimates for them from nothing on the reference machine class."""
    from ..recipe.estimate import estimate_seconds, split_counts
    train_s = sum(train_seconds(r["dir"]) for r in runs)
    evals = [r["evaluation"].get("seconds") for r in runs]
    known = [s for s in evals if s is not None]
    estimate = sum(estimate_seconds([r["config"]], split_counts(str(data_path)),
                                    r["evaluation"]["tta"]) for r in runs)
    return ("These %d runs took %.0f s to train and %s to evaluate, as each recorded it; "
            "`make reproduce`'s plan estimates at most %.0f s for them from nothing on the "
            "reference machine (2 cores; `estimate.SPEED`)%s." % (
                len(runs), train_s, "%.0f s" % sum(known) if len(known) == len(evals) else
                "%.0f s (%d evaluations did not record their time)" % (
                    sum(known), len(evals) - len(known)), estimate,
                "" if train_s + sum(known) <= estimate else ": the runs took longer than the "
                "estimate (a shared or slower machine)"))
