"""A campaign: the committed suites' missing runs, in priority order, within a time budget.

``benchmarks/campaign.toml`` lists the committed suites from most to least decisive.
``eqdp campaign`` plans each (the same planning as ``eqdp suite``: resolved, every
finished run split off), orders the pending runs by suite priority and then by seed
(so every configuration gets seeds 0-2 before any gets seeds 3-4), and estimates
each run's cost on the target device from the committed records (``estimate``).
With ``--time-budget`` the workers start no run that its estimate says would end
after the deadline; the rest stays pending for the next campaign, which resumes.

It is the one command a machine with a lent GPU runs to fill the tables:
``python -m eqdp campaign --device cuda --workers 12 --time-budget 480``.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from eqdp.config.run import RunConfig
from eqdp.errors import EqdpError
from eqdp.suites.file import tomllib

CAMPAIGN_FILE = Path("benchmarks/campaign.toml")
DEADLINE_ENV = "EQDP_DEADLINE"  # epoch seconds: workers start no run that would end later
COSTS_ENV = "EQDP_RUN_COSTS"  # JSON file: run key -> estimated seconds on this device
EVAL_OVERHEAD = 1.15  # validation each epoch, the test pass and the record, over training


@dataclass
class CampaignRun:
    priority: int  # index of its suite in the campaign file
    suite: str  # the suite file and its narrowing
    config: RunConfig
    key: str
    seconds: float | None  # estimated wall time on the campaign's device type, None: unmeasured
    basis: str  # what the estimate was scaled from


@dataclass(frozen=True)
class CampaignSuite:
    """A suite file of the campaign, narrowed like ``eqdp suite --dataset/--model/--seed``."""

    path: Path
    filters: dict[str, str | None]

    def __str__(self) -> str:
        narrowed = " ".join(f"{k}={v}" for k, v in self.filters.items() if v)
        return f"{self.path}" + (f" [{narrowed}]" if narrowed else "")


FILTER_KEYS = ("dataset", "model", "seed")


def campaign_suites(path: Path = CAMPAIGN_FILE) -> list[CampaignSuite]:
    if not path.is_file():
        raise EqdpError(f"campaign file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise EqdpError(f"campaign file {path} is not valid TOML: {error}") from error
    suites = data.get("suites")
    if not isinstance(suites, list) or not suites:
        raise EqdpError(f"campaign file {path}: 'suites' must be a non-empty list of suite files")
    entries = []
    for entry in suites:
        table = {"file": entry} if isinstance(entry, str) else entry
        if not isinstance(table, dict) or not isinstance(table.get("file"), str):
            raise EqdpError(f"campaign file {path}: each suite is a file name or a table with "
                            f"'file' (and optional {', '.join(FILTER_KEYS)}), got {entry!r}")
        unknown = sorted(set(table) - {"file", *FILTER_KEYS})
        if unknown:
            raise EqdpError(f"campaign file {path}: unknown key(s) {unknown} in {entry!r}; "
                            f"valid: file, {', '.join(FILTER_KEYS)}")
        if not Path(table["file"]).is_file():
            raise EqdpError(f"campaign file {path}: suite file {table['file']} not found")
        filters = {key: str(table[key]) if key in table else None for key in FILTER_KEYS}
        entries.append(CampaignSuite(Path(table["file"]), filters))
    return entries


class CostModel:
    """Seconds of training per image of a model on a device type, from committed records.

    The estimate of a run: its planned training images (epochs x training examples,
    low-data: the subset's examples over its scaled epochs) times the median seconds
    per image of the same (benchmark kind, model, device type) over the records, times
    ``EVAL_OVERHEAD``. DP runs are their own kind (per-sample gradients cost more).
    Records that ran many runs side by side on one GPU are what a packed campaign sees.
    """

    def __init__(self, records: list[dict]) -> None:
        samples: dict[tuple[str, str, str], list[float]] = {}
        for record in records:
            timing = record.get("timing") or {}
            seconds, per_second = timing.get("train_seconds"), timing.get("images_per_second")
            if not seconds or not per_second:
                continue
            device = (record.get("env") or {}).get("device", "cpu")
            kind = "dp" if record["benchmark"] == "dp" else "plain"
            samples.setdefault((kind, record["model"], device), []).append(1.0 / per_second)
        self.per_image = {key: statistics.median(v) for key, v in samples.items()}

    def estimate(self, config: RunConfig, images: int, device: str) -> tuple[float | None, str]:
        kind = "dp" if config.benchmark == "dp" else "plain"
        per_image = self.per_image.get((kind, config.model, device))
        if per_image is None:
            return None, f"no {kind} record of {config.model} on {device}"
        return per_image * images * EVAL_OVERHEAD, f"{kind} {config.model} on {device}"


def planned_images(config: RunConfig) -> int:
    """Training images a run will pass (its epochs over its training examples)."""
    from eqdp.data.catalog import dataset_info

    # Low-data scales its epochs so that every fraction takes the full run's steps:
    # the full training split's images either way.
    return dataset_info(config.dataset)["n_samples"]["train"] * config.train.epochs


def plan_campaign(
    suites: list[CampaignSuite],
    device: str,
    data_dir: str | None = None,
    records_dir: str = "results",
    verify_md5: bool = True,
) -> list[CampaignRun]:
    """Every pending run of the suites, in campaign order, with its estimated cost."""
    from eqdp.engine.device import planned_device_type
    from eqdp.results.identity import run_key
    from eqdp.results.records import load_records
    from eqdp.suites import load_suite, plan_suite

    device_type = planned_device_type(device)
    costs = CostModel(load_records(records_dir, on_skip=None))
    runs: list[CampaignRun] = []
    for priority, entry in enumerate(suites):
        plan = plan_suite(
            load_suite(entry.path), data_dir=data_dir, device=device, filters=entry.filters,
            verify_md5=verify_md5,
        )  # fmt: skip
        for config in plan.pending:
            seconds, basis = costs.estimate(config, planned_images(config), device_type)
            key = run_key(config.as_dict())
            runs.append(CampaignRun(priority, str(entry), config, key, seconds, basis))
    seen: set[str] = set()
    unique = []
    for run in runs:  # two suites may hold the same run: the higher priority keeps it
        if run.key not in seen:
            seen.add(run.key)
            unique.append(run)
    order = {id(run): index for index, run in enumerate(unique)}
    return sorted(unique, key=lambda run: (run.priority, run.config.seed, order[id(run)]))


def write_costs(runs: list[CampaignRun], folder: Path) -> Path:
    """The cost file the workers read (``COSTS_ENV``) to keep to the deadline."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "campaign-costs.json"
    path.write_text(json.dumps({run.key: run.seconds for run in runs if run.seconds}))
    return path


def fits_before_deadline(key: str) -> bool:
    """In a worker: whether a run may start (no deadline set: always)."""
    import time

    deadline = os.environ.get(DEADLINE_ENV)
    if not deadline:
        return True
    cost = 0.0
    costs_file = os.environ.get(COSTS_ENV)
    if costs_file and Path(costs_file).is_file():
        cost = json.loads(Path(costs_file).read_text()).get(key) or 0.0
    return time.time() + cost <= float(deadline)
