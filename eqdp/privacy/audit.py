"""Empirical privacy auditing in one training run (Steinke, Nasr & Jagielski, NeurIPS 2023).

m canaries are each included by an independent fair coin; one DP-SGD run
trains with the included ones; the auditor scores every canary, guesses
"included" for the k+ highest scores and "excluded" for the k- lowest, and
counts its correct guesses. If training is (epsilon, delta)-DP, the number of
correct guesses is stochastically dominated by Binomial(k, e^eps / (1 + e^eps))
plus a delta term (their Theorem 3.1 and its appendix' tail bound). The largest
epsilon that this dominance rejects at the stated confidence is a *lower bound*
on the epsilon the run really has: above the claimed epsilon it would prove a
privacy bug.

Canaries here are gradient canaries (their white-box, strongest variant): canary
i is a gradient of norm C on one coordinate of the trainable parameters. Every
step samples each included canary with the run's Poisson rate q, exactly like a
training example, and adds its gradient to the clipped sum before the noise. The
auditor sees each step's privatised gradient (a DP output) and scores canary i
by the sum over steps of that gradient's coordinate i. The run's accounting is
unchanged: each canary is one more record, sampled at rate q with sensitivity C.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import special, stats

from eqdp.errors import EqdpError

METHOD = "steinke-nasr-jagielski-2023/gradient-canaries"


def p_value(m: int, guesses: int, correct: int, epsilon: float, delta: float) -> float:
    """P[at least ``correct`` of ``guesses`` guesses are right] under (epsilon, delta)-DP.

    Exactly the (epsilon, delta) bound of Steinke et al. 2023 as their reference code
    computes it (``p_value_DP_audit``): with W ~ Binomial(guesses, e^eps / (1 + e^eps)),
    ``P[W >= correct] + 2 m delta * max_{1 <= i <= correct} P[correct - i <= W < correct] / i``.
    """
    if not 0 <= correct <= guesses <= m:
        raise ValueError(f"need 0 <= correct <= guesses <= m, got {correct}, {guesses}, {m}")
    if epsilon < 0 or not 0 <= delta <= 1:
        raise ValueError(f"need epsilon >= 0 and 0 <= delta <= 1, got {epsilon}, {delta}")
    q = float(special.expit(epsilon))  # accuracy of epsilon-DP randomised response
    tail = float(stats.binom.sf(correct - 1, guesses, q))
    if correct == 0:
        return min(1.0, tail)
    steps_down = np.arange(1, correct + 1)
    # below[i - 1] = P[correct - i <= W < correct], for i = 1 .. correct.
    below = np.cumsum(stats.binom.pmf(correct - steps_down, guesses, q))
    worst_mean = float(np.max(below / steps_down))
    return min(1.0, tail + worst_mean * 2 * m * delta)


def epsilon_lower_bound(
    m: int, guesses: int, correct: int, delta: float, confidence: float = 0.95
) -> float:
    """Largest epsilon rejected at ``confidence``: every epsilon below it would make this
    many correct guesses less likely than ``1 - confidence``. 0 when none is rejected.

    Their ``get_eps_audit``: p_value grows with epsilon, so bisect its crossing of
    ``1 - confidence`` (to 2^-60 of the bracket; their code stops at 2^-30)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1 - confidence
    if p_value(m, guesses, correct, 0.0, delta) > alpha:
        return 0.0
    low, high = 0.0, 1.0
    while p_value(m, guesses, correct, high, delta) <= alpha:
        low, high = high, 2 * high
        if high > 1e3:  # no finite epsilon survives: report the largest tested
            return low
    for _ in range(60):
        middle = (low + high) / 2
        if p_value(m, guesses, correct, middle, delta) <= alpha:
            low = middle
        else:
            high = middle
    return low


def audit_cap(m: int, guesses: int, delta: float, confidence: float = 0.95) -> float:
    """The most an audit of ``m`` canaries and ``guesses`` guesses can ever show: the
    lower bound when every guess is right. A claimed epsilon above it cannot be refuted
    by that audit, however much the mechanism leaks."""
    return epsilon_lower_bound(m, guesses, guesses, delta, confidence)


# audit_cap(m, k, delta=1e-5) at 95% (both suite datasets have delta = 1e-5); "-": k > m.
# The cap exceeds 4 from k = 170 guesses (m = 1000), and 8 only from m = k = 12,977
# (every canary guessed, every guess right). Delta's 2 m delta term is why more
# canaries lower the cap at fixed k. Regenerate: eqdp audit-cap.
#
#     m \ k   100   200   500  1000  2000  5000 10000 20000
#     1000   3.47  4.17  5.09  5.78     -     -     -     -
#     2000   3.44  4.14  5.06  5.76  6.45     -     -     -
#     5000   3.35  4.06  4.98  5.67  6.37  7.28     -     -
#    10000   3.20  3.91  4.83  5.53  6.22  7.14  7.83     -
#    20000   2.85  3.57  4.50  5.20  5.89  6.81  7.50  8.20
#    50000   1.82  2.60  3.57  4.28  4.98  5.90  6.59  7.29
CAP_CANARIES = (1000, 2000, 5000, 10000, 20000, 50000)
CAP_GUESSES = (100, 200, 500, 1000, 2000, 5000, 10000, 20000)


def cap_table(
    canaries: Sequence[int] = CAP_CANARIES,
    guesses: Sequence[int] = CAP_GUESSES,
    delta: float = 1e-5,
    confidence: float = 0.95,
) -> list[list[float | None]]:
    """``audit_cap`` for every (m, k), one row per m; None where k > m."""
    return [
        [audit_cap(m, k, delta, confidence) if k <= m else None for k in guesses] for m in canaries
    ]


def default_guesses(m: int) -> int:
    """A fifth of the canaries, at least 2: 200 of 1000 caps at 4.17 (delta = 1e-5), so
    a leaking mechanism can show epsilon > 4; the old tenth (100) capped at 3.47."""
    return min(m, max(2, m // 5))


def count_correct(
    scores: Sequence[float], included: Sequence[bool], top: int, bottom: int
) -> tuple[int, int]:
    """(guesses, correct): "in" for the ``top`` highest scores, "out" for the ``bottom``
    lowest, abstain on the rest. Ties break by canary index (scores are continuous)."""
    if top + bottom > len(scores):
        raise ValueError(f"{top} + {bottom} guesses for {len(scores)} canaries")
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    lowest, highest = order[:bottom], order[len(order) - top :]
    correct = sum(1 for i in highest if included[i]) + sum(1 for i in lowest if not included[i])
    return top + bottom, correct


@dataclass
class GradientCanaries:
    """Dirac gradient canaries injected into a DP optimizer's clipped sum.

    ``attach`` wraps the optimizer's ``add_noise`` (called once per logical step,
    after clipping and accumulation, before noise): sampled canaries add ``norm``
    on their coordinate, and after the noise the privatised coordinate is added
    to the canary's score.
    """

    count: int
    norm: float
    sample_rate: float
    seed: int

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)
        self.included = torch.rand(self.count, generator=self.generator) < 0.5
        self.scores = torch.zeros(self.count, dtype=torch.float64)
        self.steps = 0

    def attach(self, optimizer) -> None:
        params = list(optimizer.params)
        sizes = [p.numel() for p in params]
        total = sum(sizes)
        if self.count > total:
            raise EqdpError(
                f"--audit {self.count}: one canary per parameter, and the model has {total}"
            )
        flat = torch.randperm(total, generator=self.generator)[: self.count]
        starts = torch.tensor([0, *sizes]).cumsum(0)
        owner = torch.searchsorted(starts, flat, right=True) - 1
        # Per parameter: which canaries live there, and at which flat offset.
        slots = [
            (params[i], torch.nonzero(owner == i).flatten(), flat[owner == i] - starts[i])
            for i in range(len(params))
            if bool((owner == i).any())
        ]
        original = optimizer.add_noise

        def add_noise_with_canaries() -> None:
            sampled = torch.rand(self.count, generator=self.generator) < self.sample_rate
            active = sampled & self.included
            for parameter, canaries, offsets in slots:
                summed = parameter.summed_grad
                hits = offsets[active[canaries]].to(summed.device)
                added = summed.new_full((len(hits),), self.norm)
                parameter.summed_grad = summed.reshape(-1).index_add(0, hits, added).view_as(summed)
            original()
            for parameter, canaries, offsets in slots:
                seen = parameter.grad.reshape(-1)[offsets.to(parameter.grad.device)]
                self.scores.index_add_(0, canaries, seen.detach().double().cpu())
            self.steps += 1

        optimizer.add_noise = add_noise_with_canaries

    def result(self, delta: float, confidence: float = 0.95, guesses: int | None = None) -> dict:
        """The record's ``privacy.audit`` block."""
        guesses = guesses if guesses is not None else default_guesses(self.count)
        top = guesses // 2
        made, correct = count_correct(
            self.scores.tolist(), self.included.tolist(), top, guesses - top
        )
        return {
            "method": METHOD,
            "kind": "gradient",
            "canaries": self.count,
            "included": int(self.included.sum()),
            "canary_norm": self.norm,
            "steps": self.steps,
            "guesses": made,
            "correct": correct,
            "confidence": confidence,
            "epsilon_lower": epsilon_lower_bound(self.count, made, correct, delta, confidence),
            "seed": self.seed,
            "coins": "".join("1" if flag else "0" for flag in self.included.tolist()),
        }
