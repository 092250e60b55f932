"""How one training step is executed: eagerly, or replayed from a captured CUDA graph.

The plain training loop is launch-bound on a GPU: eq-nasnet-b0 (3.8 MMACs) spends
most of a step in Python and kernel launches. ``GraphSteps`` records the whole step
(gather of the batch, forward, loss, backward, Adam) once per batch size and then
replays it, so a step costs a few launches whatever the network's depth.

What keeps the protocol (the same batches, the same update rule as the eager loop):

- **Static shapes without padding.** One graph per batch size that an epoch has:
  the full batch and, when ``batch_size`` does not divide the training set, the last
  partial batch. Every epoch sees exactly the eager loop's batches (no dropped or
  padded examples, so BatchNorm statistics are the eager loop's too).
- **Indices on the device.** The epoch's permutation is drawn by the strategy's
  generator as before (one host draw and one copy per epoch, so both engines see the
  same order); each step gathers its examples on the device.
- **No host sync per step.** The loss is summed on the device (float64, in the eager
  loop's order) and read once per epoch.
- **Warm-up leaves no trace.** Capturing needs a few real iterations first; the
  weights, buffers (BatchNorm statistics), optimizer state and RNG are restored after
  them, so the first replayed step starts from the freshly initialised model.
- **Learning rate as a device tensor.** Adam runs with ``capturable=True`` and a
  tensor lr that the schedule updates in place, so milestones reach the graph.

On CPU (tests) ``GraphSteps(capture=False)`` runs the same static-buffer body without
a graph, which checks everything above but the capture itself; the CUDA check
(``scripts/cuda_check.py``) compares captured and eager losses on the GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from eqdp.data.medmnist_data import Split
from eqdp.engine.precision import Precision
from eqdp.engine.task import loss_for, to_model_input

ENGINES: tuple[str, ...] = ("auto", "eager", "graph")
WARMUP_ITERATIONS = 3  # PyTorch's recipe: a few iterations on a side stream before capture


def resolve_engine(requested: str, device_type: str, strategy_name: str) -> tuple[str, str]:
    """(engine, reason): ``graph`` only on CUDA for plain (non-DP) training.

    DP-SGD's Poisson batches change size every step and Opacus' hooks are not
    capturable, so DP runs use the eager engine whatever is asked (the reason says so).
    """
    from eqdp.errors import EqdpError, unknown_choice

    if requested not in ENGINES:
        raise unknown_choice("engine", requested, ENGINES)
    if requested == "eager":
        return "eager", "requested"
    if device_type != "cuda":
        if requested == "graph":
            raise EqdpError(f"engine 'graph' needs a CUDA device, not {device_type!r}; use eager")
        return "eager", f"{device_type}: CUDA graphs need a GPU"
    if strategy_name != "standard":
        return "eager", f"{strategy_name} training is not captured"
    return "graph", "requested" if requested == "graph" else "auto on CUDA"


class EagerSteps:
    """The plain step: forward, backward, the strategy's hook, optimizer step."""

    name = "eager"
    reason = ""  # why this engine ran (``resolve_engine``), for the record

    def __init__(self, strategy, task: str, precision: Precision, augmenter) -> None:
        self.strategy, self.task, self.precision = strategy, task, precision
        self.augmenter = augmenter
        self.loss_sum: torch.Tensor | None = None

    def step(self, split: Split, index: torch.Tensor) -> None:
        strategy = self.strategy
        images, labels = strategy.expand(split.images[index], split.labels[index])
        images = self.augmenter(images)
        strategy.optimizer.zero_grad(set_to_none=True)
        with self.precision.context():
            loss = loss_for(self.task, strategy.module(to_model_input(images)), labels)
        loss.backward()
        strategy.after_backward()
        strategy.optimizer.step()
        if len(index):  # a Poisson batch may be empty; it still takes its (noisy) step
            weighted = loss.detach().double() * len(index)
            self.loss_sum = weighted if self.loss_sum is None else self.loss_sum + weighted

    def take_loss_sum(self) -> float:
        """The epoch's summed loss (one host read), and a fresh sum for the next epoch."""
        total = 0.0 if self.loss_sum is None else float(self.loss_sum)
        self.loss_sum = None
        return total


class _CapturedStep:
    """Static buffers of one batch size and the graph (or, uncaptured, the body) using them."""

    def __init__(self, size: int, like: Split, body: Callable[[_CapturedStep], None]) -> None:
        self.size = size
        self.images = torch.empty((size, *like.images.shape[1:]), dtype=like.images.dtype,
                                  device=like.images.device)  # fmt: skip
        self.labels = torch.empty((size, *like.labels.shape[1:]), dtype=like.labels.dtype,
                                  device=like.labels.device)  # fmt: skip
        self.body = body
        self.graph: torch.cuda.CUDAGraph | None = None

    def run(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            self.body(self)


class GraphSteps:
    """The whole training step captured in one CUDA graph per batch size (see the module)."""

    name = "cuda-graph"
    reason = ""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        task: str,
        precision: Precision,
        augmenter,
        train_split: Split,
        batch_sizes: list[int],
        capture: bool = True,
    ) -> None:
        self.model, self.optimizer, self.task, self.precision = model, optimizer, task, precision
        self.augmenter = augmenter
        device = train_split.images.device
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        make_lr_tensors(optimizer, device)
        snapshot = _Snapshot(model, optimizer)
        self.steps: dict[int, _CapturedStep] = {}
        try:
            for size in sorted(set(batch_sizes), reverse=True):
                step = _CapturedStep(size, train_split, self._body)
                step.images.copy_(train_split.images[:size])  # real data for the warm-up
                step.labels.copy_(train_split.labels[:size])
                if capture:
                    self._capture(step)
                else:
                    for _ in range(WARMUP_ITERATIONS):
                        self._body(step)
                self.steps[size] = step
        finally:
            snapshot.restore()  # also when capture fails: the eager fallback starts fresh
        self.loss_sum.zero_()

    def _body(self, step: _CapturedStep) -> None:
        self.optimizer.zero_grad(set_to_none=False)
        with self.precision.context():
            loss = loss_for(self.task, self.model(to_model_input(step.images)), step.labels)
        loss.backward()
        self.optimizer.step()
        self.loss_sum.add_(loss.detach().double() * step.size)

    def _capture(self, step: _CapturedStep) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_ITERATIONS):
                self._body(step)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._body(step)
        step.graph = graph

    def step(self, split: Split, index: torch.Tensor) -> None:
        captured = self.steps[len(index)]
        if self.augmenter.active:
            captured.images.copy_(self.augmenter(split.images[index]))
        else:
            torch.index_select(split.images, 0, index, out=captured.images)
        torch.index_select(split.labels, 0, index, out=captured.labels)
        captured.run()

    def take_loss_sum(self) -> float:
        total = float(self.loss_sum)
        self.loss_sum.zero_()
        return total


def make_lr_tensors(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Adam with ``capturable=True`` and its lr as a device tensor that the schedule fills.

    Call before the lr schedule is made (it records each group's initial lr).
    """
    for group in optimizer.param_groups:
        if not isinstance(group["lr"], torch.Tensor):
            group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
        if "capturable" in group:
            group["capturable"] = device.type == "cuda"


class _Snapshot:
    """Weights, buffers, optimizer state and RNG before the warm-up, to restore after it."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model, self.optimizer = model, optimizer
        if optimizer.state:
            raise RuntimeError("GraphSteps needs a fresh optimizer: it resets its state")
        self.tensors = {name: t.detach().clone() for name, t in model.state_dict().items()}
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    @torch.no_grad()
    def restore(self) -> None:
        # In place: the graphs hold these tensors' addresses.
        for name, tensor in self.model.state_dict().items():
            tensor.copy_(self.tensors[name])
        for state in self.optimizer.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor):
                    value.zero_()  # Adam's fresh state: step 0, zero moments
        for param in self.model.parameters():
            if param.grad is not None:
                param.grad.zero_()
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
