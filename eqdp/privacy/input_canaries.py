"""Input-space (black-box) canaries for the one-run audit (Steinke, Nasr & Jagielski 2023).

The gradient canaries of ``eqdp.privacy.audit`` see every step's privatised gradient
(white-box). These see only what a user of the model sees: m canary *examples*, each
put into the training set by an independent fair coin, train as ordinary examples, and
after training the final model scores each one by its log-odds of the canary's label.
The auditor guesses "in" for the highest scores and "out" for the lowest (as the
gradient audit does), and the same bound (``epsilon_lower_bound``) applies: the final
model is post-processing of the DP-SGD run, and the theorem needs nothing about the
canaries but the independent coins.

Canary images are uniform noise (out of distribution for every MedMNIST set, so they
teach the task nothing and the task teaches nothing about them) with labels balanced
over the classes by a random permutation: with random labels only memorising a
canary, not any rule, raises its score, and with balanced labels a model that learned
nothing about a canary gives it about the same score whatever its label.

Accounting. This is a measurement, not a change to the mechanism: the included canaries
are ordinary training records (Poisson-sampled at the run's rate q, clipped to C), and
the run's (epsilon, delta) is the accountant's for (sigma, q, steps), as for any run.
But the training set's size now depends on the coins, and a schedule computed from
that size would publish how many canaries went in (q, the step count and the
normaliser of the noisy mean would depend on it), so the mechanism would not be the
fixed algorithm the theorem audits. The schedule is therefore planned for the
coin-independent expected size ``N + m // 2`` (so batches still average the logical
batch size, and an epoch is still a pass on average), and the default delta rule
(min(1e-5, 1/(10 n))) uses ``N + m``, the largest size any coins can give.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from eqdp.data.catalog import MULTI_LABEL
from eqdp.data.medmnist_data import Split
from eqdp.engine.task import to_model_input
from eqdp.errors import EqdpError
from eqdp.privacy.audit import count_correct, default_guesses, epsilon_lower_bound

METHOD = "steinke-nasr-jagielski-2023/input-canaries"


def planned_train_size(n_real: int, canaries: int) -> int:
    """The coin-independent training set size a run with input canaries is planned for."""
    return n_real + canaries // 2


@dataclass
class InputCanaries:
    """``count`` noise images with balanced random labels, each included by a fair coin."""

    count: int
    image_shape: tuple[int, ...]  # (C, H, W)
    n_classes: int
    task: str
    seed: int

    def __post_init__(self) -> None:
        if self.task == MULTI_LABEL:
            raise EqdpError("--audit-kind input needs a single-label task (one label to score)")
        generator = torch.Generator().manual_seed(self.seed)
        self.included = torch.rand(self.count, generator=generator) < 0.5
        self.images = torch.randint(
            0, 256, (self.count, *self.image_shape), dtype=torch.uint8, generator=generator
        )
        order = torch.randperm(self.count, generator=generator)
        self.labels = (order % self.n_classes).reshape(-1, 1).to(torch.int64)
        self.scores: torch.Tensor | None = None

    @property
    def included_count(self) -> int:
        return int(self.included.sum())

    def extend(self, train: Split) -> Split:
        """The training split with the included canaries appended as ordinary examples."""
        device = train.images.device
        return Split(
            torch.cat([train.images, self.images[self.included].to(device)]),
            torch.cat([train.labels, self.labels[self.included].to(device)]),
        )

    @torch.no_grad()
    def score(self, model: nn.Module, batch_size: int = 512) -> torch.Tensor:
        """Each canary's log-odds of its label under the model (black-box: outputs only).

        Log-odds from the logits in float64, not a softmax probability: a memorised
        canary's probability rounds to 1 in float32 and would tie with the others.
        """
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        scores = []
        try:
            for start in range(0, self.count, batch_size):
                images = self.images[start : start + batch_size].to(device)
                logits = model(to_model_input(images)).double().cpu()
                label = self.labels[start : start + batch_size]
                chosen = logits.gather(1, label).squeeze(1)
                others = logits.scatter(1, label, float("-inf")).logsumexp(dim=1)
                scores.append(chosen - others)
        finally:
            model.train(was_training)
        self.scores = torch.cat(scores)
        return self.scores

    def result(
        self,
        n_real: int,
        delta: float,
        confidence: float = 0.95,
        guesses: int | None = None,
    ) -> dict:
        """The record's ``privacy.audit`` block (after ``score``)."""
        if self.scores is None:
            raise RuntimeError("score the canaries on the final model first")
        guesses = guesses if guesses is not None else default_guesses(self.count)
        top = guesses // 2
        made, correct = count_correct(
            self.scores.tolist(), self.included.tolist(), top, guesses - top
        )
        return {
            "method": METHOD,
            "kind": "input",
            "canaries": self.count,
            "included": self.included_count,
            "canary_images": "uniform noise, labels balanced over the classes",
            "score": "final model's log-odds of the canary's label",
            "n_train_real": n_real,
            "planned_n_train": planned_train_size(n_real, self.count),
            "guesses": made,
            "correct": correct,
            "confidence": confidence,
            "epsilon_lower": epsilon_lower_bound(self.count, made, correct, delta, confidence),
            "seed": self.seed,
            "coins": "".join("1" if flag else "0" for flag in self.included.tolist()),
        }
