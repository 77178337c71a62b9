"""PNG plots (matplotlib, no display): learning curves, ROC, confusion matrix."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
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
    for key in ("train_accuracy", "val_accuracy", "val_kappa", "val_auc"):
        ax2.plot(epochs, [float(r[key]) for r in rows], style, label=key.replace("_", " "))
    ax2.set_xlabel("epoch")
    ax2.set_ylim(-0.05, 1.05)
    ax2.legend(loc="lower right")
    fig.suptitle("learning curves %s" % title)
    _save(fig, path)


def plot_roc(fpr, tpr, auc, path, title=""):
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label="AUC = %.3f" % auc)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("ROC, referable DR %s" % title)
    ax.legend(loc="lower right")
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
