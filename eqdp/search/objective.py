"""One search trial: build the proposed network, train it briefly, score it on validation.

The trial's objectives are the mean validation AUC over the search datasets
(maximised) and the MACs of one 28 px single-channel image (minimised). The
test split is removed from the data before training starts (``without_test``)
and ``fit`` is told not to test: a search never reads it. Trials are not runs:
they leave no records, only entries in the study.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import field_validator

from eqdp.config.fields import config_class, option

if TYPE_CHECKING:  # torch comes with the models: `eqdp readme` reads summaries without it
    from eqdp.models.arch.spec import ArchSpec

# Orders of the search space's groups (C1, C2/D1, C4/D2, D4, D8; eqdp.search.space.CHAINS),
# written out so that checking a setting needs no torch: a test keeps the two in step.
SEARCH_GROUP_ORDERS = (1, 2, 4, 8, 16)

# EfficientNet-B0 at 28 px, one channel (eqdp's count_macs): the search's reference cost.
EFFICIENTNET_B0_MACS = 7_937_232


@config_class
class SearchConfig:
    """What a study searches with; fixed when the study is created, stored with it."""

    datasets: tuple[str, ...] = option(
        ("breastmnist", "retinamnist", "pneumoniamnist"),
        "Search datasets, cheapest first (pruning looks after each).",
        min_length=1,
    )
    size: int = option(28, "Image size of the search (a real MedMNIST file size).")
    epochs: int = option(5, "Proxy training epochs per dataset.", gt=0)
    max_train: int = option(
        1000, "Proxy training set cap per dataset (a stratified subset above it).", gt=0
    )
    batch_size: int = option(128, "Batch size.", gt=0)
    lr: float = option(1e-3, "Adam learning rate (x0.1 at 50% and 75% of the epochs).", gt=0)
    seed: int = option(0, "Seed of every trial's training and of the subsets.", ge=0)
    max_macs: float = option(
        16.0, "Trials above this many million MACs (about 2x EfficientNet-B0) are pruned "
        "untrained.", gt=0, flags=("--max-mmacs",),
    )  # fmt: skip
    min_group_order: int = option(
        4,
        "Smallest symmetry group (order) a network may restrict to: 4 keeps logits invariant "
        "to C4, D2 or more; 1 lets stages become plain convolutions (C1).",
        ge=1,
        le=16,  # D8, the largest group of the chains
    )
    max_params: int = option(
        1_000_000, "Trials above this many parameters are pruned untrained.", gt=0
    )
    prune_margin: float = option(
        0.05,
        "Prune a trial after a dataset when a finished trial with no more MACs beat its "
        "mean validation AUC so far by this much.",
        ge=0,
    )

    @field_validator("min_group_order")
    @classmethod
    def _an_order_of_the_chains(cls, order: int) -> int:
        # An order no group of the chains has (3) would silently act as the next one up.
        if order not in SEARCH_GROUP_ORDERS:
            valid = ", ".join(str(o) for o in SEARCH_GROUP_ORDERS)
            raise ValueError(f"no group of the search space has order {order}; valid: {valid}")
        return order


def measure(spec: ArchSpec, size: int) -> tuple[int, int]:
    """(parameters, MACs) of the spec's network on one single-channel image."""
    from eqdp.models.arch.network import build_network
    from eqdp.models.info import count_macs, count_parameters

    model = build_network(spec, 1, 2)
    return count_parameters(model), count_macs(model, (1, size, size))


def train_on_dataset(
    spec: ArchSpec,
    flag: str,
    config: SearchConfig,
    data_source: tuple[str | None, bool],
    device: str,
    heartbeat: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Proxy-train the spec on one dataset's (capped) training split; its best val AUC."""
    from eqdp.config.train import TrainConfig
    from eqdp.data.medmnist_data import load_dataset
    from eqdp.data.subsets import stratified_subset
    from eqdp.engine import fit, seed_everything, select_device
    from eqdp.models.arch.network import build_network

    data_dir, verify_md5 = data_source
    data = load_dataset(flag, config.size, data_dir, verify_md5).without_test()
    if len(data.train) > config.max_train:
        labels = data.train.labels[:, 0]
        keep = stratified_subset(labels, config.max_train / len(data.train), config.seed)
        data = dataclasses.replace(data, train=data.train.subset(keep))
    seed_everything(config.seed)
    model = build_network(spec, data.n_channels, data.n_classes)
    train = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr)
    started = time.perf_counter()
    result = fit(
        model, data, train, config.seed, select_device(device), evaluate_test=False,
        on_progress=_per_epoch(heartbeat) if heartbeat else None,
    )  # fmt: skip
    auc = result.val["auc"]
    return {
        "auc": -1.0 if math.isnan(auc) else auc,
        "acc": result.val["acc"],
        "train_images": len(data.train),
        "seconds": round(time.perf_counter() - started, 2),
    }


def worker_identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time()}


def _per_epoch(heartbeat):
    """The trial's heartbeat after each epoch (not on every within-epoch progress report:
    each beat is a write to the study's journal)."""
    from eqdp.engine import EpochStats

    def beat(update: object) -> None:
        if isinstance(update, EpochStats):
            heartbeat()

    return beat
