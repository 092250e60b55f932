"""Studies on disk and the workers that fill them.

A study is a folder: ``study.journal`` (Optuna's journal file storage, safe for
several processes and hosts sharing a file system) and ``config.json`` (the
:class:`SearchConfig` it was created with). Any number of workers, here or as
Slurm jobs (the suite executors), run trials until the study holds ``trials``
finished ones; a killed worker's trial is failed and its architecture queued
again when the next worker starts, so a search resumes where it stopped.

Sampler: Optuna's multi-objective TPE (MOTPE), not NSGA-II. The budget is a
few hundred trials, where TPE's model of good and bad regions beats a genetic
algorithm that needs tens of generations of a large population, and the space
is conditional (block-specific expansions, chain-specific groups), which TPE's
``group`` mode models and NSGA-II's crossover does not.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eqdp.config.fields import as_plain_dict, parse_config
from eqdp.errors import EqdpError
from eqdp.search.objective import (
    SearchConfig,
    measure,
    train_on_dataset,
    worker_identity,
)
from eqdp.suites.claims import process_alive

STUDY_NAME = "eq-nasnet"
JOURNAL = "study.journal"
CONFIG_FILE = "config.json"
OBJECTIVES = ("val_auc", "mmacs")
LOCK_GRACE_SECONDS = 20
STALE_MINUTES = 30.0  # a trial whose worker on another host was silent this long is dead


def _optuna():
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # TPE's ``group`` mode is marked experimental; it is what models the conditional space.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def create_study_folder(folder: str | Path, config: SearchConfig) -> Path:
    """A new study folder; an existing one must have been made with the same config."""
    folder = Path(folder)
    stored = folder / CONFIG_FILE
    if stored.is_file():
        existing = load_config(folder)
        if existing != config:
            raise EqdpError(
                f"study {folder} was created with other settings ({_difference(existing, config)})"
                "; resume it without changing them, or use a new --study folder"
            )
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = stored.with_suffix(".tmp")
        temporary.write_text(json.dumps(as_plain_dict(config), indent=2) + "\n")
        temporary.replace(stored)
    except OSError as error:
        raise EqdpError(f"cannot write the study folder {folder}: {error.strerror}") from None
    return folder


def _difference(old: SearchConfig, new: SearchConfig) -> str:
    a, b = as_plain_dict(old), as_plain_dict(new)
    return ", ".join(f"{k}: {a[k]} -> {b[k]}" for k in a if a[k] != b[k])


def load_config(folder: str | Path) -> SearchConfig:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise EqdpError(
            f"{folder} is not a study folder (no {CONFIG_FILE}); make one with "
            "`eqdp search run --study FOLDER`"
        )
    values = json.loads(path.read_text())
    return parse_config(SearchConfig, values, str(path))


def open_study(folder: str | Path, sampler_seed: int | None = None, create: bool = True):
    """The Optuna study in ``folder``: created on first use, or (``create=False``) only
    read, which writes nothing to the journal."""
    optuna = _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(Path(folder) / JOURNAL)
    # A worker killed while it holds the file lock leaves the lock behind; after the grace
    # period the next worker breaks it (appends take milliseconds).
    lock = JournalFileOpenLock(path, grace_period=LOCK_GRACE_SECONDS)
    storage = JournalStorage(JournalFileBackend(path, lock_obj=lock))
    sampler = optuna.samplers.TPESampler(
        multivariate=True, group=True, constant_liar=True, seed=sampler_seed,
        n_startup_trials=12,
    )  # fmt: skip
    if not create:
        try:
            return optuna.load_study(storage=storage, sampler=sampler, study_name=STUDY_NAME)
        except KeyError:
            raise EqdpError(f"{folder} holds no search study yet") from None
    return optuna.create_study(
        storage=storage, sampler=sampler, study_name=STUDY_NAME,
        directions=["maximize", "minimize"], load_if_exists=True,
    )  # fmt: skip


def fail_stale_trials(study, stale_minutes: float = STALE_MINUTES) -> list[int]:
    """Fail RUNNING trials whose worker is gone, and queue their architectures again.

    Gone: a dead process on this host, or no heartbeat for ``stale_minutes``.
    """
    from optuna.trial import TrialState

    here = worker_identity()["host"]
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        silent = time.time() - attrs.get("heartbeat", 0) > stale_minutes * 60
        dead = attrs.get("host") == here and not process_alive(int(attrs.get("pid", -1)))
        if not (dead or silent):
            continue
        # Optuna has no public call to fail another process's trial; its storage does.
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        if not trial.user_attrs.get("requeued"):
            study.enqueue_trial(trial.params, user_attrs={"requeued": trial.number})
        failed.append(trial.number)
    return failed


@dataclass
class TrialOutcome:
    number: int
    state: str
    line: str


def finished_count(study) -> int:
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def make_objective(config: SearchConfig, data: tuple[str | None, bool], device: str):
    """The trial function; ``data`` is (data folder, verify MD5)."""
    optuna = _optuna()
    from eqdp.search.space import suggest_spec

    def objective(trial) -> tuple[float, float]:
        for key, value in worker_identity().items():
            trial.set_user_attr(key, value)
        spec = suggest_spec(trial, config.min_group_order)
        twin = _finished_twin(trial.study, spec)
        if twin is not None:  # TPE proposed an architecture it has already scored
            for key, value in twin.user_attrs.items():
                if key.startswith("val_") or key in ("params", "mmacs", "spec"):
                    trial.set_user_attr(key, value)
            trial.set_user_attr("duplicate_of", twin.number)
            return tuple(twin.values)
        params, macs = measure(spec, config.size)
        trial.set_user_attr("spec", spec.as_dict())
        trial.set_user_attr("params", params)
        trial.set_user_attr("mmacs", macs / 1e6)
        if macs / 1e6 > config.max_macs or params > config.max_params:
            reason = f"over budget: {macs / 1e6:.1f} MMACs, {params:,} params"
            trial.set_user_attr("pruned", reason)
            raise optuna.TrialPruned(reason)

        def heartbeat() -> None:
            trial.set_user_attr("heartbeat", time.time())

        aucs: list[float] = []
        for index, flag in enumerate(config.datasets):
            outcome = train_on_dataset(spec, flag, config, data, device, heartbeat)
            trial.set_user_attr(f"val_{flag}", outcome)
            aucs.append(outcome["auc"])
            last = index == len(config.datasets) - 1
            beaten_by = None if last else _dominating(trial.study, config, aucs, macs / 1e6)
            if beaten_by is not None:
                reason = (
                    f"after {flag}: trial {beaten_by} has no more MACs and a mean val AUC "
                    f"over {config.prune_margin} higher"
                )
                trial.set_user_attr("pruned", reason)
                raise optuna.TrialPruned(reason)
        return sum(aucs) / len(aucs), macs / 1e6

    return objective


def _finished_twin(study, spec):
    """A finished trial of the same architecture (same proxy training: same values)."""
    from optuna.trial import TrialState

    wanted = spec.as_dict()
    for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        stored = other.user_attrs.get("spec")
        if stored is not None and {**stored, "name": wanted["name"]} == wanted:
            return other
    return None


def _dominating(study, config: SearchConfig, aucs: list[float], mmacs: float) -> int | None:
    """A finished trial with no more MACs whose mean val AUC on the same datasets is
    ``prune_margin`` above this trial's, if any."""
    from optuna.trial import TrialState

    flags = config.datasets[: len(aucs)]
    mean = sum(aucs) / len(aucs)
    for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if other.values[1] > mmacs:
            continue
        theirs = [other.user_attrs[f"val_{f}"]["auc"] for f in flags]
        if sum(theirs) / len(theirs) >= mean + config.prune_margin:
            return other.number
    return None


def run_worker(
    folder: str | Path,
    trials: int,
    data: tuple[str | None, bool] = (None, True),
    device: str = "auto",
    threads: int | None = None,
    worker: int = 0,
    on_trial: Callable[[TrialOutcome, int], None] | None = None,
) -> int:
    """Run trials until the study has ``trials`` finished ones; returns how many ran here."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    config = load_config(folder)
    # Workers need different sampler seeds or they propose the same first trials; the
    # search is therefore not bit-reproducible, only its trials' training is (config.seed).
    seed = config.seed * 1000 + worker + os.getpid() % 997
    study = open_study(folder, sampler_seed=seed)
    fail_stale_trials(study)
    optuna = _optuna()
    from optuna.trial import TrialState

    objective = make_objective(config, data, device)
    finished_states = (TrialState.COMPLETE, TrialState.PRUNED)
    ran = 0

    def callback(study, trial) -> None:
        nonlocal ran
        ran += 1
        if on_trial is not None:
            on_trial(describe_trial(trial), finished_count(study))

    if finished_count(study) < trials:
        study.optimize(
            objective,
            callbacks=[optuna.study.MaxTrialsCallback(trials, states=finished_states), callback],
            catch=(),
        )
    return ran


def describe_trial(trial) -> TrialOutcome:
    attrs = trial.user_attrs
    state = trial.state.name.lower()
    size = f"{attrs.get('mmacs', math.nan):6.2f} MMACs {attrs.get('params', 0):>8,} params"
    if state == "complete":
        line = f"trial {trial.number:>4}: {size}  val AUC {trial.values[0]:.3f}"
    else:
        line = f"trial {trial.number:>4}: {size}  {state}: {attrs.get('pruned', '')}"
    return TrialOutcome(trial.number, state, line)


def search_status(folder: str | Path) -> dict[str, Any]:
    from optuna.trial import TrialState

    study = open_study(folder, create=False)
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name.lower()] += 1
    return counts
