"""ACC and AUC exactly as ``medmnist.Evaluator`` computes them, for every task type."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import accuracy_score, roc_auc_score

from eqdp.errors import unknown_choice

TASKS: tuple[str, ...] = (
    "binary-class",
    "multi-class",
    "multi-label, binary-class",
    "ordinal-regression",
)


def _binary_positive_score(y_score: np.ndarray) -> np.ndarray:
    return y_score[:, -1] if y_score.ndim == 2 else y_score


def auc_score(task: str, y_true: np.ndarray, y_score: np.ndarray) -> float:
    y_true, y_score = np.asarray(y_true).squeeze(), np.asarray(y_score).squeeze()
    if task == "multi-label, binary-class":
        columns = range(y_score.shape[1])
        return float(np.mean([roc_auc_score(y_true[:, i], y_score[:, i]) for i in columns]))
    if task == "binary-class":
        return float(roc_auc_score(y_true, _binary_positive_score(y_score)))
    # multi-class and ordinal: one-vs-rest AUC averaged over classes
    columns = range(y_score.shape[1])
    per_class = [roc_auc_score((y_true == i).astype(float), y_score[:, i]) for i in columns]
    return float(sum(per_class) / y_score.shape[1])


def accuracy(task: str, y_true: np.ndarray, y_score: np.ndarray, threshold: float = 0.5) -> float:
    y_true, y_score = np.asarray(y_true).squeeze(), np.asarray(y_score).squeeze()
    if task == "multi-label, binary-class":
        predicted = y_score > threshold
        columns = range(y_true.shape[1])
        return float(np.mean([accuracy_score(y_true[:, i], predicted[:, i]) for i in columns]))
    if task == "binary-class":
        return float(accuracy_score(y_true, _binary_positive_score(y_score) > threshold))
    return float(accuracy_score(y_true, np.argmax(y_score, axis=-1)))


def correct_fraction(
    task: str, y_true: np.ndarray, y_score: np.ndarray, threshold: float = 0.5
) -> np.ndarray:
    """Per example, the fraction of its labels predicted right (0 or 1 unless multi-label).

    Uses the decision rule of ``accuracy``, so ``correct_fraction(...).mean()`` equals it.
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    y_true = y_true.reshape(len(y_true), -1)
    if task == "multi-label, binary-class":
        return ((y_score > threshold) == y_true).mean(axis=1)
    if task == "binary-class":
        return ((_binary_positive_score(y_score) > threshold) == y_true[:, 0]).astype(float)
    return (np.argmax(y_score, axis=-1) == y_true[:, 0]).astype(float)


LOSS_FLOOR = 1e-7


def log_loss(task: str, y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean cross-entropy of the probabilities (per-label binary for multi-label tasks).

    The training loss on held-out data, the quantity scaling laws fit; probabilities
    are clipped at ``LOSS_FLOOR`` so one confident mistake costs at most -log(1e-7).
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=np.float64)
    y_true = y_true.reshape(len(y_true), -1)
    p = np.clip(y_score, LOSS_FLOOR, 1.0)
    if task == "multi-label, binary-class":
        q = np.clip(1.0 - y_score, LOSS_FLOOR, 1.0)
        return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log(q)))
    return float(-np.mean(np.log(p[np.arange(len(y_true)), y_true[:, 0].astype(int)])))


def evaluate(task: str, y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    """``{"acc", "auc", "loss"}`` for labels ``(N, L)`` and scores (probabilities) ``(N, K)``.

    AUC is NaN when the labels hold a single class (possible on tiny subsets).
    """
    if task not in TASKS:
        raise unknown_choice("task", task, TASKS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        try:
            auc = auc_score(task, y_true, y_score)
        except ValueError:  # only one class present in y_true
            auc = float("nan")
    loss = log_loss(task, y_true, y_score) if len(y_true) else float("nan")
    return {"acc": accuracy(task, y_true, y_score), "auc": auc, "loss": loss}
