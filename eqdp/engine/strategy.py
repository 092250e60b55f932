"""How parameters are updated from batches: the part of training DP-SGD replaces.

The loop in ``eqdp.engine.loop`` owns everything a strategy does not: seeding,
augmentation, the forward pass under the run's precision, the lr schedule,
validation, model selection and the single test pass. A strategy owns the
optimizer, which examples form each (physical) batch, what happens between
backward and step, and which module evaluates the current weights.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from eqdp.config.train import TrainConfig


class TrainingStrategy:
    """Plain minibatch training: shuffle each epoch, Adam on the batch-mean loss."""

    name = "standard"

    def start(
        self, model: nn.Module, n_train: int, train: TrainConfig, seed: int, device: torch.device
    ) -> None:
        """Called once after seeding and moving model and data to the device."""
        self.model, self.n_train, self.train, self.device = model, n_train, train, device
        self.restart_optimizer()
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    def restart_optimizer(self) -> None:
        """A fresh Adam (also after a failed CUDA graph capture, whose warm-up stepped it)."""
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
            trainable, lr=self.train.lr, weight_decay=self.train.weight_decay
        )

    @property
    def module(self) -> nn.Module:
        """What the forward pass calls (DP-SGD: the per-sample-gradient wrapper)."""
        return self.model

    def effective_augment(self, train: TrainConfig) -> str:
        return train.augment

    def batches(self) -> Iterator[torch.Tensor]:
        """One epoch of example indices on the device, one tensor per forward/backward."""
        order = torch.randperm(self.n_train, generator=self.generator).to(self.device)
        for start in range(0, self.n_train, self.train.batch_size):
            yield order[start : start + self.train.batch_size]

    def expand(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples to augment and forward for these indices."""
        return images, labels

    def after_backward(self) -> None:
        """Between ``loss.backward()`` and ``optimizer.step()``."""

    def evaluation_model(self, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        """A module holding the current weights (or ``state``), safe to put in eval mode."""
        if state is not None:
            self.model.load_state_dict(state)
        return self.model

    def finish(self) -> dict | None:
        """After the last step: what the record should say about this strategy."""
        return None

    def close(self) -> None:
        """Always called when training ends, also on error."""


StandardTraining = TrainingStrategy
