from __future__ import annotations

import numpy as np
import pytest
from medmnist.evaluator import getACC, getAUC

from eqdp import evaluate
from eqdp.errors import EqdpError


def _random_task(task: str, rng: np.random.Generator, n: int = 200):
    if task == "multi-label, binary-class":
        y_true = rng.integers(0, 2, size=(n, 5))
        y_score = rng.random((n, 5))
    elif task == "binary-class":
        y_true = rng.integers(0, 2, size=(n, 1))
        logits = rng.normal(size=(n, 2)) + y_true
        y_score = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    else:
        y_true = rng.integers(0, 5, size=(n, 1))
        y_score = rng.dirichlet(np.ones(5), size=n)
    return y_true, y_score


@pytest.mark.parametrize(
    "task", ["binary-class", "multi-class", "multi-label, binary-class", "ordinal-regression"]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_with_medmnist_evaluator(task: str, seed: int) -> None:
    y_true, y_score = _random_task(task, np.random.default_rng(seed))
    ours = evaluate(task, y_true, y_score)
    assert ours["acc"] == pytest.approx(getACC(y_true, y_score, task), abs=1e-12)
    assert ours["auc"] == pytest.approx(getAUC(y_true, y_score, task), abs=1e-12)


def test_single_class_labels_give_nan_auc_not_crash() -> None:
    metrics = evaluate("binary-class", np.zeros((4, 1)), np.full((4, 2), 0.5))
    assert np.isnan(metrics["auc"]) and metrics["acc"] == 1.0


def test_unknown_task() -> None:
    with pytest.raises(EqdpError, match="unknown task 'regression'"):
        evaluate("regression", np.zeros((2, 1)), np.zeros((2, 2)))
