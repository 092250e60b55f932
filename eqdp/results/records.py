"""Result records: one JSON file per finished run, written atomically, validated on load.

Layout: ``<results>/<benchmark>/<dataset>_<size>/<model>/<run_id>.json``.
The schema is documented in docs/records.md; bump SCHEMA_VERSION on any
incompatible change and add the step to ``eqdp.results.migrations``, which
brings older records up to date when they are loaded.

User runs go to ``./runs`` unless ``--results-dir`` or ``EQDP_RESULTS_DIR``
says otherwise; the committed ``results/`` is written only by the committed
suites, which name it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import uuid
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from eqdp.errors import EqdpError

SCHEMA_VERSION = 2
RESULTS_DIR_ENV = "EQDP_RESULTS_DIR"
DEFAULT_RESULTS_DIR = "runs"

# field -> accepted types; validation is deliberately shallow but catches foreign JSON.
REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "schema_version": int,
    "run_id": str,
    "created_at": str,
    "status": str,
    "benchmark": str,
    "dataset": str,
    "size": int,
    "model": str,
    "seed": int,
    "config": dict,
    "model_info": dict,
    "metrics": dict,
    "best_epoch": int,
    "timing": dict,
    "env": dict,
    "privacy": (dict, type(None)),
}


def results_dir(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get(RESULTS_DIR_ENV) or DEFAULT_RESULTS_DIR)


def new_run_id(model: str, seed: int) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{model}-s{seed}-{uuid.uuid4().hex[:6]}"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record_path(root: Path, record: dict) -> Path:
    group = f"{record['dataset']}_{record['size']}"
    return root / record["benchmark"] / group / record["model"] / f"{record['run_id']}.json"


def json_safe(value):
    """NaN/inf are not JSON: store them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def config_safe(value):
    """Configurations keep inf: stored as the string "inf", which the typed configs read back.

    (A metric that is undefined is null; an epsilon of inf is a setting, not a
    missing value.)
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: config_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [config_safe(v) for v in value]
    return value


def storable(record: dict) -> dict:
    """The record as JSON: configurations with inf kept as strings, other non-finite as null."""
    stored = {k: v for k, v in record.items() if not k.startswith("_")}
    config = stored.get("config")
    stored = json_safe(stored)
    if config is not None:
        stored["config"] = config_safe(config)
    return stored


def validate_record(record: object) -> str | None:
    """None if the record is a valid eqdp record, else the reason it is not."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("schema_version") != SCHEMA_VERSION:
        return f"schema_version {record.get('schema_version')!r} is not {SCHEMA_VERSION}"
    for name, kind in REQUIRED_FIELDS.items():
        if name not in record:
            return f"missing field {name!r}"
        if not isinstance(record[name], kind) or isinstance(record[name], bool):
            return f"field {name!r} has type {type(record[name]).__name__}"
    if record["status"] != "finished":
        return f"status {record['status']!r} is not 'finished'"
    test = record["metrics"].get("test")
    if not isinstance(test, dict) or "acc" not in test or "auc" not in test:
        return "metrics.test lacks acc/auc"
    for split, values in record["metrics"].items():
        if not isinstance(values, dict):
            return f"metrics.{split} is not an object"
        for name, value in values.items():
            if not _is_number(value, allow_null=True):  # null: undefined (one-class AUC)
                return f"metrics.{split}.{name} = {value!r} is not a number"
    for name in TIMING_FIELDS:
        if name not in record["timing"]:
            return f"timing.{name} is missing"
        if not _is_number(record["timing"][name]):
            return f"timing.{name} = {record['timing'][name]!r} is not a number"
    return None


TIMING_FIELDS = ("train_seconds", "images_per_second")


def _is_number(value: object, allow_null: bool = False) -> bool:
    if value is None:
        return allow_null
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def write_record(record: dict, root: str | os.PathLike | None = None) -> Path:
    """Validate and write a record atomically (temp file in the same folder + os.replace)."""
    record = storable(record)
    problem = validate_record(record)
    if problem:
        raise ValueError(f"refusing to write an invalid record: {problem}")
    path = record_path(results_dir(root), record)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        # mkstemp makes the file private (0600); a record is as readable as any file the user makes.
        os.fchmod(descriptor, 0o666 & ~_current_umask())
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, sort_keys=False, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise EqdpError(f"cannot write result record under {path.parent}: {error}") from error
    finally:
        if temporary is not None and os.path.exists(temporary):  # only when replace never ran
            os.remove(temporary)
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


SkipHandler = Callable[[Path, str], None]


def _warn_skip(path: Path, reason: str) -> None:
    warnings.warn(f"skipping {path}: {reason}", stacklevel=3)


def load_records(
    root: str | os.PathLike | None = None, on_skip: SkipHandler | None = _warn_skip
) -> list[dict]:
    """Every valid record under ``root``; corrupt or foreign files are reported and skipped."""
    from eqdp.results.migrations import migrate_records

    base = results_dir(root)
    if not base.exists():
        return []
    if not base.is_dir() or not os.access(base, os.R_OK | os.X_OK):
        raise EqdpError(f"results directory {base} is not a readable directory")
    loaded: list[tuple[Path, dict]] = []
    for path in record_files(base):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            if on_skip is not None:
                on_skip(path, f"unreadable JSON ({error})")
            continue
        if isinstance(record, dict):
            record["_path"] = str(path)
        loaded.append((path, record))
    migrated = migrate_records([record for _, record in loaded])
    records = []
    for (path, _), record in zip(loaded, migrated, strict=True):
        reason = validate_record(record) or _config_problem(record)
        if reason is None:
            records.append(record)
        elif on_skip is not None:
            on_skip(path, reason)
    return records


def _config_problem(record: dict) -> str | None:
    """Why a record's configuration cannot be keyed (unknown benchmark, invalid option)."""
    from eqdp.results.identity import keyed

    try:
        keyed(record["config"])
    except (EqdpError, KeyError, TypeError, ValueError) as error:
        return f"config cannot be read: {error}"
    return None


NOT_RECORD_FOLDERS = frozenset({"checkpoints", "search", "fits", "tuning"})


def record_files(base: Path) -> list[Path]:
    """Record files under ``base``: JSON files outside hidden folders, checkpoints and
    architecture-search studies (``search/``: trials are not runs) and scaling fits."""
    files = []
    for folder, subfolders, names in os.walk(base):
        subfolders[:] = sorted(
            d for d in subfolders if not d.startswith(".") and d not in NOT_RECORD_FOLDERS
        )
        files += [
            Path(folder) / name
            for name in sorted(names)
            if name.endswith(".json") and not name.startswith(".")
        ]
    return files


def find_record(run_id: str, root: str | os.PathLike | None = None) -> dict:
    """The record of a run id, with migrations applied (records name their file by run id)."""
    base = results_dir(root)
    if base.is_dir():
        candidates = [p for p in record_files(base) if p.name == f"{run_id}.json"]
        if candidates:
            from eqdp.results.migrations import migrate_records

            records = (
                [r for r in load_records(root, on_skip=None)]
                if _needs_all(candidates)
                else [json.loads(p.read_text()) | {"_path": str(p)} for p in candidates]
            )
            for record in migrate_records(records):
                if record.get("run_id") == run_id and validate_record(record) is None:
                    return record
    raise EqdpError(f"no finished run with id {run_id!r} under {base}")


def _needs_all(candidates: list[Path]) -> bool:
    """A v1 evaluation record needs its source record to migrate: load everything then."""
    for path in candidates:
        try:
            if json.loads(path.read_text()).get("schema_version") != SCHEMA_VERSION:
                return True
        except (OSError, ValueError):
            return True
    return False
