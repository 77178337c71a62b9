"""Refer what the network is unsure of: an uncertainty per image, and how the images
kept score when the most uncertain are sent to a human grader (Leibig et al., Sci.
Rep. 2017; the curve of Filos et al. 2019, AUC against the fraction retained).

``UNCERTAINTY=mc:T``: T stochastic passes with dropout on below ``loss3/classifier``
(``models.mc_dropout``: Caffe's inverted dropout, seeded masks, the rotations of TTA
inside each pass). ``UNCERTAINTY=ensemble``: the seeds of the run's recipe, each as
evaluated. Either gives per image samples ``s_t`` of P(referable DR), and from them

- ``p``: their mean, the score the operating point is chosen on (validation split);
- ``sd``: their standard deviation (ddof 0), Leibig et al.'s measure;
- ``entropy``: the binary entropy of ``p`` in bits (0 sure, 1 at p = 0.5).

Two baselines stand beside the chosen measure (``MEASURE=entropy|sd``). Random
referral of as many images; and the network's own confidence (``OWN``), the binary
entropy of the run's evaluated P(referable) (its TTA as evaluated, dropout off), which
every screening reader has for free: the entropy of any score is a function of
|p - 0.5|, so referring by it removes the middle of the score distribution and raises
the AUC of the images kept for any decent classifier. What MC dropout or an ensemble
adds is its difference from the own-confidence referral.

``entropy`` is the default uncertainty: it is defined whatever T (also for an
ensemble of two or three seeds, where an sd of so few samples is noise), it rises
both where the passes disagree (which moves ``p`` towards 0.5) and where they agree
on an unsure score, and it is the measure of the benchmark of Filos et al. ``sd``
is given beside it, curve for curve.

Curves, on the test split: the images ranked by uncertainty, the most uncertain
fraction f (``FRACTIONS``) referred, AUC / sensitivity / specificity (at the cut
chosen on validation) of the images kept, with patient-bootstrap intervals; and the
same for random referral (the value: the mean over ``RANDOM_DRAWS`` draws; the
interval: one draw per resample). Headline: the AUC kept at f = 0.2, and its
difference from random referral by a paired bootstrap (the same resamples, one random
draw each): "beats random" when the interval is above 0; the same against the
network's own confidence. Resamples where a figure is undefined (one class among the
images kept) are left out of its interval and counted (``undefined``).

This module holds the measures, the curves and the results' reading; the samples are
drawn by ``learn.uncertainty``, and the stage module ``referral`` runs it all
(``evaluate_referral`` on a run's test split or other data, ``cv_referral`` on a
cross-validation's pooled images).
"""
import json
import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from .metrics import auc
from .stats import RESAMPLES, decision_metrics, interval, resample_indices

MEASURES = ("entropy", "sd")
DEFAULT_MEASURE = "entropy"
#: the curve of the network's own confidence (the entropy of its evaluated score)
OWN = "own confidence"
FRACTIONS = tuple(round(0.05 * k, 2) for k in range(11))  # 0 to 50 % referred
HEADLINE = 0.2
RANDOM_DRAWS = 200
CURVE_METRICS = ("auc", "sensitivity", "specificity")


def parse_uncertainty(text):
    """("mc", T) for ``mc:T`` (T >= 2) or ("ensemble", None); InputError otherwise."""
    m = re.fullmatch(r"mc:(\d+)", text or "")
    if m:
        if int(m.group(1)) < 2:
            raise InputError("UNCERTAINTY=%s: MC dropout needs at least 2 passes (mc:T, "
                             "T >= 2)" % text)
        return "mc", int(m.group(1))
    if text == "ensemble":
        return "ensemble", None
    raise InputError("UNCERTAINTY=%s: expected mc:T (T stochastic passes, T >= 2) or "
                     "ensemble (the seeds of the run's recipe)" % text)


def check_measure(measure):
    """``measure`` when it is one of MEASURES; InputError otherwise."""
    if measure not in MEASURES:
        raise InputError("MEASURE=%s: expected one of %s" % (measure, ", ".join(MEASURES)))
    return measure


def label_of(mode, count, tta, measure=DEFAULT_MEASURE):
    """The file stem of a referral evaluation: ``referral-mc20-4rot``, ``-ensemble3-1rot``;
    ``-sd`` when its headline measure is not the default."""
    return "referral-%s%d-%drot%s" % (mode, count, 4 if tta else 1,
                                      "" if measure == DEFAULT_MEASURE else "-" + measure)


def binary_entropy(p):
    """The binary entropy, in bits, of probabilities ``p`` (0 sure, 1 at 0.5)."""
    q = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    return -(q * np.log2(q) + (1 - q) * np.log2(1 - q))


def measures(samples):
    """{"p", "sd", "entropy"} per image from S x N samples of P(referable)."""
    samples = np.asarray(samples, np.float64)
    p = samples.mean(axis=0)
    return {"p": p, "sd": samples.std(axis=0), "entropy": binary_entropy(p)}


def n_referred(n, fraction):
    """How many of ``n`` images referring ``fraction`` of them sends: fraction x n rounded
    half up (5 % of 10 is 1, of 50 is 3)."""
    return int(np.floor(fraction * n + 0.5 + 1e-9))


def kept(uncertainty, fraction):
    """Boolean mask of the images kept when the ``n_referred`` most uncertain are
    referred (ties: the earlier image referred first; a stable order, so repeatable)."""
    u = np.asarray(uncertainty)
    order = np.argsort(-u, kind="stable")
    keep = np.ones(len(u), bool)
    keep[order[:n_referred(len(u), fraction)]] = False
    return keep


def refer_cut(val_uncertainty, fraction):
    """The uncertainty at or above which an image is referred: that of the
    ``n_referred``-th most uncertain validation image, so that as many validation images
    are referred as ``kept`` refers (more only where several share that value)."""
    u = np.sort(np.asarray(val_uncertainty, float))[::-1]
    k = n_referred(len(u), fraction)
    return float(u[k - 1]) if k > 0 else float("inf")


def _kept_metrics(score, truth, cut, keep):
    return decision_metrics(score[keep], truth[keep], score[keep] >= cut[keep], CURVE_METRICS)


def _verdict(d, than):
    return ("beats %s" % than if d["ci"][0] > 0 else "worse than %s" % than
            if d["ci"][1] < 0 else "not distinguishable from %s at this size" % than)


def _difference(point, reps, a, b, at):
    """The paired difference of the kept AUC of curve ``a`` and ``b`` at fraction ``at``,
    with its interval and how many resamples left it undefined."""
    diffs = np.array([r[a][at, 0] - r[b][at, 0] for r in reps])
    return {"value": float(point[a][at, 0] - point[b][at, 0]), "ci": interval(diffs),
            "undefined": int(np.isnan(diffs).sum())}


def referral_curves(score, truth, cut, uncertainty, patients, resamples=RESAMPLES, seed=0,
                    fractions=FRACTIONS, headline=HEADLINE, measure=None, own=None):
    """The curves of the module docstring. ``uncertainty``: {measure: per-image values};
    ``measure``: the one the headline refers by (default: the first); ``own``: the
    network's own confidence per image (``binary_entropy`` of its evaluated score), a
    baseline curve; ``cut``: the operating point on ``score``, or one per image (pooled
    folds). Returns {"fractions", "curves": {name: {metric: {"value": [...], "ci":
    [[lo, hi]...], "undefined": [...]}}}, "headline": {"fraction", "measure", "auc_all",
    "auc_kept", "auc_random", "difference", "verdict" (against random referral) and, with
    ``own``, "auc_own", "difference_own", "verdict_own"}, "bootstrap"}."""
    score, truth = np.asarray(score, float), np.asarray(truth, bool)
    cut = np.broadcast_to(np.asarray(cut, float), score.shape)  # one, or one per image
    uncertainty = dict(uncertainty)
    if own is not None:
        uncertainty[OWN] = own
    names = list(uncertainty) + ["random"]
    rng = np.random.RandomState([seed, 1])

    def random_keep(n, fraction):
        return kept(rng.random_sample(n), fraction)

    def values(idx, draws):
        out = {}
        for name in names:
            rows = []
            for f in fractions:
                if name == "random":
                    keeps = [random_keep(len(idx), f) for _ in range(draws)]
                else:
                    keeps = [kept(np.asarray(uncertainty[name])[idx], f)]
                with warnings.catch_warnings():  # a metric undefined in every draw: NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    rows.append(np.nanmean([[_kept_metrics(score[idx], truth[idx], cut[idx], k)[m]
                                             for m in CURVE_METRICS] for k in keeps], axis=0))
            out[name] = np.array(rows)  # fractions x metrics
        return out

    point = values(np.arange(len(score)), RANDOM_DRAWS)
    reps = [values(idx, 1) for idx in resample_indices(patients, resamples, seed)]
    curves = {name: {m: {"value": [float(v) for v in point[name][:, j]],
                         "ci": [interval([r[name][i, j] for r in reps])
                                for i in range(len(fractions))],
                         "undefined": [int(sum(np.isnan(r[name][i, j]) for r in reps))
                                       for i in range(len(fractions))]}
                     for j, m in enumerate(CURVE_METRICS)} for name in names}
    at, first = list(fractions).index(headline), measure or list(uncertainty)[0]

    def kept_auc(name):
        return {"value": curves[name]["auc"]["value"][at], "ci": curves[name]["auc"]["ci"][at],
                "undefined": curves[name]["auc"]["undefined"][at]}
    d = _difference(point, reps, first, "random", at)
    head = {"fraction": headline, "measure": first,
            "auc_all": {"value": auc(score, truth), "ci": curves[first]["auc"]["ci"][0],
                        "undefined": curves[first]["auc"]["undefined"][0]},
            "auc_kept": kept_auc(first), "auc_random": kept_auc("random"),
            "difference": d, "verdict": _verdict(d, "random referral")}
    if own is not None:
        d = _difference(point, reps, first, OWN, at)
        head.update(auc_own=kept_auc(OWN), difference_own=d,
                    verdict_own=_verdict(d, "the network's own confidence"))
    return {"fractions": list(fractions), "curves": curves, "headline": head,
            "bootstrap": {"resamples": resamples, "seed": seed, "unit": "patient",
                          "random_draws": RANDOM_DRAWS}}


def check_planned(config, uncertainty):
    """Before a run trains: InputError when ``uncertainty`` cannot apply to ``config``
    (MC dropout on a linear classifier on features, which has no dropout)."""
    mode, _ = parse_uncertainty(uncertainty)
    if mode == "mc" and config.get("method") == "features":
        raise InputError("scenario %s: UNCERTAINTY=%s: a linear classifier on features has no "
                         "dropout below it" % (config["scenario"], uncertainty))


def describe(result):
    """'MC dropout, 20 passes' / 'ensemble of 3 seeds', the TTA, and the measure when
    it is not the default."""
    how = ("MC dropout, %d passes" % result["count"] if result["mode"] == "mc"
           else "ensemble of %d seeds" % result["count"])
    measure = result.get("measure", DEFAULT_MEASURE)
    return how + (", 4-rotation TTA" if result["settings"]["tta"] else ", no TTA") + (
        "" if measure == DEFAULT_MEASURE else ", by its %s" % measure)


def headline_text(result):
    """One line: AUC with none and with the most uncertain 20 % referred, random referral."""
    h = result["headline"]

    def f(x):
        return "%.3f [%.3f, %.3f]" % ((x["value"],) + tuple(x["ci"]))

    def d(x):
        return "%+.3f [%+.3f, %+.3f]" % ((x["value"],) + tuple(x["ci"]))
    text = ("AUC %s with every image; %s with the %d %% most uncertain (%s) referred"
            % (f(h["auc_all"]), f(h["auc_kept"]), round(100 * h["fraction"]), h["measure"]))
    if "auc_own" in h:
        text += ("; %s by the network's own confidence: difference %s, %s"
                 % (f(h["auc_own"]), d(h["difference_own"]), h["verdict_own"]))
    return text + "; %s by random referral: difference %s, %s" % (
        f(h["auc_random"]), d(h["difference"]), h["verdict"])


def load_referrals(run_dir, data_sha1):
    """The referral evaluations written in ``run_dir`` (a run, or its ``external/<name>``)
    on data with SHA1 ``data_sha1`` (None: whatever data), in name order, each with its
    ``path``."""
    return [r for r in (dict(json.loads(path.read_text()), path=path)
                        for path in sorted(Path(run_dir).glob("referral-*.json")))
            if data_sha1 is None or r.get("settings", {}).get("data_sha1") == data_sha1]


def load_cv_referrals(runs_root, data_sha1):
    """The referral evaluations of the cross-validations under ``runs_root`` (``make cv``'s
    summaries, a sweep's) on data with SHA1 ``data_sha1``: per CV design and file name,
    the newest, sorted by scenario."""
    newest = {}
    root = Path(runs_root)
    for folder in sorted(root.glob("cv-*")) + sorted(root.glob("*/cv-*")):
        for r in load_referrals(folder, data_sha1):
            key = (r.get("design_sha1"), r["path"].name)
            if key not in newest or r["path"].stat().st_mtime > newest[key]["path"].stat().st_mtime:
                newest[key] = r
    return sorted(newest.values(), key=lambda r: (r.get("scenario", ""), r["path"].name))
