"""PNG plots (matplotlib, no display): learning curves, ROC, confusion matrix,
calibration."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from models.fileio import atomic_path  # noqa: E402


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_learning_curves(rows, path, title=""):
    """Loss (train/val) and val accuracy / kappa / AUC per epoch."""
    epochs = [float(r["epoch"]) for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    style = "o-" if len(rows) < 30 else "-"
    ax1.plot(epochs, [float(r["train_loss"]) for r in rows], style,
             label="train loss (with 0.3 x aux heads, dropout on)")
    ax1.plot(epochs, [float(r["val_loss"]) for r in rows], style, label="val loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    ax1.legend()
    for key in ("train_accuracy", "val_accuracy", "val_kappa", "val_auc",
                "val_mean_class_accuracy"):
        if rows and rows[0].get(key) not in (None, ""):
            ax2.plot(epochs, [float(r[key]) for r in rows], style, label=key.replace("_", " "))
    ax2.set_xlabel("epoch")
    ax2.set_ylim(-0.05, 1.05)
    ax2.legend(loc="lower right")
    fig.suptitle("learning curves %s" % title)
    _save(fig, path)


def plot_roc(curves, path, title=""):
    """ROC curves of referable DR, overlaid: ``curves`` is a list of (label, score,
    truth, decided or None); a decision rule is marked as a point on its curve."""
    from sklearn.metrics import roc_curve

    from ..evidence.metrics import auc
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, score, truth, decided in curves:
        fpr, tpr, _ = roc_curve(truth, score)
        line, = ax.plot(fpr, tpr, label="%s (AUC %.3f)" % (label, auc(score, truth)))
        if decided is not None:
            truth, decided = np.asarray(truth, bool), np.asarray(decided, bool)
            ax.plot([(decided & ~truth).sum() / max(1, (~truth).sum())],
                    [(decided & truth).sum() / max(1, truth.sum())], "o", color=line.get_color())
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("ROC, referable DR %s" % title)
    ax.legend(loc="lower right", fontsize="small")
    _save(fig, path)


def plot_reliability(curves, path, bins=10):
    """Reliability diagram: observed fraction referable against mean predicted
    P(referable), per bin of equally many images (at most ``bins``, at least ten
    images each); ``curves`` is a list of (label, score, truth)."""
    from sklearn.calibration import calibration_curve
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfectly calibrated")
    for label, score, truth in curves:
        observed, predicted = calibration_curve(np.asarray(truth, int), np.clip(score, 0, 1),
                                                n_bins=max(2, min(bins, len(truth) // 10)),
                                                strategy="quantile")
        ax.plot(predicted, observed, "o-", label="%s (%d images)" % (label, len(truth)))
    ax.set_xlabel("predicted P(referable DR)")
    ax.set_ylabel("observed fraction referable")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("calibration")
    ax.legend(loc="upper left", fontsize="small")
    _save(fig, path)


def plot_confusion(matrix, labels, path, title=""):
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix %s" % title)
    _save(fig, path)


def upsample_map(cam, size):
    """A H x W map bilinearly resized to ``size`` x ``size`` (cell centres aligned)."""
    from PIL import Image
    return np.asarray(Image.fromarray(np.asarray(cam, np.float32), mode="F").resize(
        (size, size), Image.BILINEAR))


def _overlay(ax, rgb, cam):
    """``cam`` upsampled over the RGB crop on a symmetric red-blue scale; the image it drew."""
    limit = float(np.abs(cam).max()) or 1.0
    ax.imshow(rgb)
    return ax.imshow(upsample_map(cam, rgb.shape[0]), cmap="RdBu_r", vmin=-limit, vmax=limit,
                     alpha=0.45)


def plot_heatmap(rgb, cam, path, title, label="referable-class map (logit units)"):
    """The S x S x 3 RGB crop with the class-activation map ``cam`` (H x W, upsampled to
    S x S) over it, and the map's colour scale (``label``) as a legend."""
    fig, ax = plt.subplots(figsize=(4.4, 3.8))
    bar = fig.colorbar(_overlay(ax, rgb, cam), ax=ax, fraction=0.046, pad=0.03)
    bar.set_label(label, fontsize="small")
    ax.set_title(title, fontsize="small")
    ax.axis("off")
    _save(fig, path)


def plot_gallery(rows, path, title):
    """A grid of heatmaps: ``rows`` is a list of (row label, [(rgb, cam, caption)]), one
    row per kind of case; each panel has its own symmetric colour scale."""
    width = max(len(items) for _, items in rows)
    fig, axes = plt.subplots(len(rows), width, figsize=(3.0 * width, 3.2 * len(rows)),
                             squeeze=False)
    for r, (label, items) in enumerate(rows):
        for c in range(width):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(items):
                continue
            rgb, cam, caption = items[c]
            _overlay(ax, rgb, cam)
            ax.set_title("%s\n%s" % (label, caption), fontsize="small")
    fig.suptitle(title, fontsize="medium")
    _save(fig, path)


def plot_intervals(rows, path, xlabel, title, reference=None):
    """One horizontal bar per row, top to bottom: ``rows`` is a list of (label, value,
    (low, high)); ``reference``: a dashed vertical line (e.g. the default's value)."""
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    values = np.array([r[1] for r in rows])
    spans = np.array([[r[1] - r[2][0], r[2][1] - r[1]] for r in rows]).T
    ax.errorbar(values, y, xerr=spans, fmt="o", color="tab:blue", ecolor="0.4", capsize=2)
    if reference is not None:
        ax.axvline(reference, color="k", ls="--", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([r[0] for r in rows], fontsize="small")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize="medium")
    ax.grid(axis="x", lw=0.3)
    _save(fig, path)


def plot_referral(result, path, title):
    """AUC, sensitivity and specificity of the images kept against the fraction referred
    (``referral.referral_curves``'s result): one line per uncertainty measure and random
    referral, each with its 95 % band."""
    fractions = 100 * np.asarray(result["fractions"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    fig.subplots_adjust(wspace=0.32)
    for ax, metric in zip(axes, ("auc", "sensitivity", "specificity")):
        for name, curve in result["curves"].items():
            c = curve[metric]
            lo, hi = np.array(c["ci"]).T
            style = dict(color="0.45", ls="--") if name == "random" else \
                dict(color="0.15", ls=":") if name == "own confidence" else {}
            line, = ax.plot(fractions, c["value"], marker=".", label=(
                "random referral" if name == "random" else "refer by %s" % name), **style)
            ax.fill_between(fractions, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
        ax.set_xlabel("% of test images referred to a grader")
        ax.set_ylabel("%s of the images kept" % ("AUC" if metric == "auc" else metric))
        ax.grid(lw=0.3)
    axes[0].legend(loc="lower right", fontsize="small")
    fig.suptitle(title, fontsize="medium")
    _save(fig, path)


def plot_size_curves(panels, path, ylabel_by_panel):
    """Learning curves along the training-set size, one panel per dataset side by side:
    ``panels`` is a list of (panel title, {recipe: [(training images, value, lo, hi)]});
    x the number of training images (log axis), one line per recipe with its lo..hi
    band shaded (a recipe at one size: an error bar), a recipe in one colour in every
    panel. ``ylabel_by_panel``: {panel title: y label}, or one label for all."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.9), squeeze=False)
    fig.subplots_adjust(wspace=0.3)
    recipes = list(dict.fromkeys(recipe for _, curves in panels for recipe in curves))
    for ax, (title, curves) in zip(axes[0], panels):
        for recipe, points in curves.items():
            n, value, lo, hi = np.array(sorted(points), float).T
            colour = "C%d" % (recipes.index(recipe) % 10)
            ax.plot(n, value, "o-", label=recipe, color=colour)
            ax.fill_between(n, lo, hi, color=colour, alpha=0.15, lw=0)
            if len(n) == 1:  # a band of one point is invisible: its interval as a bar
                ax.errorbar(n, value, yerr=[value - lo, hi - value], color=colour, capsize=3,
                            lw=1)
        ax.set_xscale("log")
        ticks = sorted({round(n) for points in curves.values() for n, *_ in points})
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter([str(t) for t in ticks]))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("training images (mean over folds; log scale)")
        ax.set_ylabel(ylabel_by_panel if isinstance(ylabel_by_panel, str)
                      else ylabel_by_panel.get(title, ""))
        ax.set_title(title, fontsize="medium")
        ax.grid(lw=0.3, which="both")
        ax.legend(loc="lower right", fontsize="small")
    _save(fig, path)
