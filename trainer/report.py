"""Evaluation numbers for the model card and the training-curves figure."""
import numpy as np


def confusion_matrix(y_true, y_pred, k=10):
    """``(k, k)`` counts: row = true label, column = predicted label."""
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def per_class(cm):
    """Precision and recall per class from a confusion matrix; 0 where undefined."""
    tp = np.diag(cm).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(tp / cm.sum(axis=0))
        recall = np.nan_to_num(tp / cm.sum(axis=1))
    return {"precision": np.round(precision, 5).tolist(), "recall": np.round(recall, 5).tolist()}


def plot(history, cm, path, title=""):
    """Save loss/accuracy curves and the confusion matrix side by side as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display in containers or CI
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc, ax_cm) = plt.subplots(1, 3, figsize=(15, 4.5))
    ax_loss.plot(epochs, [h["loss"] for h in history], color="tab:red")
    ax_loss.set(title="training loss", xlabel="epoch", yscale="log")
    ax_acc.plot(epochs, [h["train_accuracy"] for h in history], label="train")
    if "val_accuracy" in history[0]:
        ax_acc.plot(epochs, [h["val_accuracy"] for h in history], label="validation")
    ax_acc.set(title="accuracy", xlabel="epoch")
    ax_acc.legend()
    ax_acc.grid(alpha=0.3)
    ax_cm.imshow(np.log1p(cm), cmap="Blues")
    for (i, j), n in np.ndenumerate(cm):
        ax_cm.text(j, i, str(n), ha="center", va="center", fontsize=7,
                   color="white" if i == j else "black")
    ax_cm.set(title="test confusion matrix", xlabel="predicted", ylabel="true",
              xticks=range(10), yticks=range(10))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
