"""Result records: one JSON file per finished run, written atomically, validated on load.

Layout: ``<results>/<benchmark>/<dataset>_<size>/<model>/<run_id>.json``.
The schema is documented in docs/records.md; bump SCHEMA_VERSION on any
incompatible change.
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

SCHEMA_VERSION = 1
RESULTS_DIR_ENV = "EQDP_RESULTS_DIR"

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
    "setting": str,
    "config": dict,
    "model_info": dict,
    "metrics": dict,
    "best_epoch": int,
    "timing": dict,
    "env": dict,
    "privacy": (dict, type(None)),
}


def results_dir(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get(RESULTS_DIR_ENV) or "results")


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
    return None


def write_record(record: dict, root: str | os.PathLike | None = None) -> Path:
    """Validate and write a record atomically (temp file in the same folder + os.replace)."""
    record = json_safe(record)
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
        with os.fdopen(descriptor, "w") as handle:
            json.dump(record, handle, indent=2, sort_keys=False)
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
    base = results_dir(root)
    if not base.exists():
        return []
    if not base.is_dir() or not os.access(base, os.R_OK | os.X_OK):
        raise EqdpError(f"results directory {base} is not a readable directory")
    records = []
    for path in sorted(base.rglob("*.json")):
        if path.name.startswith(".tmp-"):
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            reason = f"unreadable JSON ({error})"
        else:
            reason = validate_record(record)
            if reason is None:
                record["_path"] = str(path)
                records.append(record)
                continue
        if on_skip is not None:
            on_skip(path, reason)
    return records


def find_record(run_id: str, root: str | os.PathLike | None = None) -> dict:
    for record in load_records(root, on_skip=None):
        if record["run_id"] == run_id:
            return record
    raise EqdpError(f"no finished run with id {run_id!r} under {results_dir(root)}")
