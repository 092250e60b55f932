"""Bring records written by older eqdp versions up to the current schema.

``load_records`` applies these on every load, so a user's old runs keep working;
``python -m eqdp.results.migrations DIR`` rewrites the files of DIR in place
(the committed ``results/`` were migrated that way, once).

Schema 1 -> 2 (run identity, issue 12): version 1 stored the options the user
typed and a hand-built ``setting`` label; version 2 stores the effective
configuration, from which the row key and the label are computed. What a
version-1 record implies, and where it comes from:

- ``config.train.precision``: what ran: bf16 autocast on CUDA, fp32 on CPU.
- ``config.model_kwargs``: the builders' defaults of eqdp 0.1.0 (unchanged since
  its first commit), overlaid with the stored kwargs; also ``model_info.defaults``.
- DP options: target epsilon (stored as null when it was inf), the delta and
  physical batch size the run used (from ``privacy``), and the defaults of 0.1.0
  for the rest; ``config.train.augment = "d4"`` when ``aug_mult > 1`` (the views
  were augmented, which version 1 did not record).
- adversarial/geometric options: 0.1.0's fixed settings (PGD steps 10; rotations
  every 15°, scalings 0.9 and 1.1), and ``trained_by`` from the source record
  (``standard`` when the evaluation trained its own model).
- ``data.md5``: the official MD5 when the run verified it, else unknown.
- ``env.precision``: fp32 evaluation for geometric (it always evaluated in
  float32), the training precision otherwise.
- ``setting`` is dropped; ``key`` and ``label`` are computed.

Renamed models (any schema): eqdp 0.1-0.2's hand-designed ``eq-nasnet`` is
``eq-resnet-d4`` since the searched Eq-NASNet family landed (``eq-nasnet`` now
names the searched B0), so an old record keeps describing the network it ran.

Added model options (any schema): an option added to a model later gets, in
the records written before it, the value that reproduces what they ran (its
default), so they stay one configuration with new runs of the same network:
the Eq-NASNet family and its twins gained ``width_multiplier`` and
``depth_multiplier`` (both 1.0) with the scaling benchmark.

Added benchmark options (any schema), the same way: ``dp`` gained ``clipping``
(issue 26); every DP record written before it clipped instantiated per-sample
gradients with Opacus, so it gets ``clipping = "instantiate"`` (and its privacy
block ``clipping_mode``), whatever the option's default is now. An audited DP
record written before ``audit_guesses`` existed gets the guesses it made
(``privacy.audit.guesses``), since the default went from a tenth to a fifth of
the canaries: the old and the new audits are different rows.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

# eqdp 0.1.0's builder defaults (model options), for records that stored only what was given.
V1_MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "cnn": {"width": 32},
    "resnet18": {"width": 64},
    "efficientnet-b0": {},
    "vit": {"patch_size": 4, "hidden_size": 192, "num_layers": 6, "num_heads": 3},
    "eq-cnn": {"group": "D4", "widths": [8, 16, 32]},
    "eq-nasnet": {"group": "D4", "width_multiplier": 1.0, "depth_multiplier": 1.0, "dropout": 0.1},
}
# Old name -> current name of models whose name now means another network.
RENAMED_MODELS: dict[str, str] = {"eq-nasnet": "eq-resnet-d4"}
# Model name pattern -> options added later, with the value older records ran with.
ADDED_MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    r"(eq-)?nasnet-b\d+": {"width_multiplier": 1.0, "depth_multiplier": 1.0},
}
# Benchmark -> options added later, with the value older records ran with.
ADDED_BENCHMARK_OPTIONS: dict[str, dict[str, Any]] = {"dp": {"clipping": "instantiate"}}
V1_DEFAULT_ATTACKS = ["fgsm", "pgd-linf", "pgd-l2"]
V1_PGD_STEPS = 10
V1_ANGLE_STEP = 15.0
V1_SCALES = [0.9, 1.1]
_EVALUATIONS = ("adversarial", "geometric")


def migrate_records(records: list[Any]) -> list[Any]:
    """Every record at the current schema (records already current are returned as they are)."""
    if all(_current(r) for r in records):
        return records
    by_id = {r.get("run_id"): r for r in records if isinstance(r, dict)}
    migrated: dict[str, dict] = {}

    def upgrade(record: Any) -> Any:
        if not isinstance(record, dict) or record.get("schema_version") != 1:
            return record
        run_id = record.get("run_id")
        if run_id in migrated:
            return migrated[run_id]
        try:
            new = _v1_to_v2(record, lambda source_id: upgrade(by_id.get(source_id)))
        except (KeyError, TypeError, AttributeError):
            return record  # not a valid version-1 record: validation reports it
        migrated[run_id] = new
        return new

    return [_renamed(upgrade(record)) for record in records]


def _current(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and record.get("schema_version") == 2
        and record.get("model") not in RENAMED_MODELS
        and not _missing_options(record)
        and not _missing_benchmark_options(record)
    )


def _missing_options(record: dict) -> dict[str, Any]:
    """Options added to the record's model since it was written, with their old values."""
    config = record.get("config")
    kwargs = config.get("model_kwargs") if isinstance(config, dict) else None
    if not isinstance(kwargs, dict):
        return {}
    model = str(record.get("model"))
    return {
        name: value
        for pattern, added in ADDED_MODEL_OPTIONS.items()
        if re.fullmatch(pattern, model)
        for name, value in added.items()
        if name not in kwargs
    }


def _missing_benchmark_options(record: dict) -> dict[str, Any]:
    """Options added to the record's benchmark since it was written, with their old values."""
    config = record.get("config")
    options = config.get("options") if isinstance(config, dict) else None
    if not isinstance(options, dict):
        return {}
    added = ADDED_BENCHMARK_OPTIONS.get(str(record.get("benchmark")), {})
    missing = {name: value for name, value in added.items() if name not in options}
    if record.get("benchmark") == "dp" and options.get("audit") and "audit_guesses" not in options:
        # The default number of guesses changed (a tenth of the canaries, now a fifth): an
        # audited record before the option gets the guesses it made, which it stored.
        guesses = ((record.get("privacy") or {}).get("audit") or {}).get("guesses")
        if isinstance(guesses, int):
            missing["audit_guesses"] = guesses
    return missing


def _renamed(record: Any) -> Any:
    """A schema-2 record under its model's current name, with options added since filled in."""
    if not isinstance(record, dict) or record.get("schema_version") != 2:
        return record
    new_name = RENAMED_MODELS.get(record.get("model"))
    config = record.get("config")
    added = _missing_options(record)
    added_options = _missing_benchmark_options(record)
    if (new_name is None and not added and not added_options) or not isinstance(config, dict):
        return record
    from eqdp.results.identity import label, row_key

    new = copy.deepcopy(record)
    if new_name is not None:
        new["model"] = new["config"]["model"] = new_name
        if isinstance(new.get("model_info"), dict) and "name" in new["model_info"]:
            new["model_info"]["name"] = new_name
    if added_options:
        new["config"]["options"] = {**new["config"]["options"], **added_options}
        if "clipping" in added_options and isinstance(new.get("privacy"), dict):
            new["privacy"].setdefault("clipping_mode", added_options["clipping"])
    if added:
        new["config"]["model_kwargs"] = {**new["config"]["model_kwargs"], **added}
        defaults = (new.get("model_info") or {}).get("defaults")
        if isinstance(defaults, dict):
            new["model_info"]["defaults"] = {**defaults, **added}
    try:
        new["key"] = row_key(new["config"])
        new["label"] = label(new)
    except Exception:  # noqa: BLE001 - an invalid record is reported by validation
        return record
    return new


def _v1_to_v2(record: dict, source_of) -> dict:
    from eqdp.data.catalog import expected_md5
    from eqdp.results.identity import label, row_key

    new = copy.deepcopy(record)
    new["schema_version"] = 2
    config = new["config"]
    train = config["train"]
    on_cuda = record.get("env", {}).get("device") == "cuda"
    train["precision"] = "bf16" if on_cuda else "fp32"
    model = record["model"]
    defaults = V1_MODEL_DEFAULTS.get(model, {})
    config["model_kwargs"] = {**defaults, **config.get("model_kwargs", {})}
    new.setdefault("model_info", {})["defaults"] = defaults
    options = dict(config.get("options", {}))
    benchmark = record["benchmark"]
    if benchmark == "dp":
        options = _v1_dp_options(options, record["privacy"])
        if options["aug_mult"] > 1:
            train["augment"] = "d4"
    elif benchmark == "adversarial":
        options.setdefault("attacks", V1_DEFAULT_ATTACKS)
        options.setdefault("attack_eps", None)
        options.setdefault("pgd_steps", V1_PGD_STEPS)
        options.setdefault("from_run", None)
    elif benchmark == "geometric":
        options.setdefault("angle_step", V1_ANGLE_STEP)
        options.setdefault("scales", V1_SCALES)
        options.setdefault("from_run", None)
    config["options"] = options
    if benchmark in _EVALUATIONS:
        config["trained_by"] = _v1_trained_by(record, source_of)
    if config.get("verify_md5", True):
        new.setdefault("data", {})["md5"] = expected_md5(record["dataset"], record["size"])
    else:
        new.setdefault("data", {}).setdefault("md5", None)
    evaluation = "fp32" if benchmark == "geometric" else train["precision"]
    new.setdefault("env", {})["precision"] = {"train": train["precision"], "eval": evaluation}
    new.pop("setting", None)
    new["key"] = row_key(config)
    new["label"] = label(new)
    return new


def _v1_dp_options(options: dict, privacy: dict) -> dict:
    noise_given = options.get("noise_multiplier") is not None
    epsilon = None if noise_given else options.get("epsilon")
    return {
        "epsilon": epsilon if (noise_given or epsilon is not None) else float("inf"),
        "delta": privacy["delta"],
        "max_grad_norm": options.get("max_grad_norm", 1.0),
        "noise_multiplier": options.get("noise_multiplier"),
        "aug_mult": int(options.get("aug_mult", 1)),
        "accountant": options.get("accountant", "prv"),
        "physical_batch_size": privacy["physical_batch_size"],
        "fraction": options.get("fraction"),
    }


def _v1_trained_by(record: dict, source_of) -> dict:
    source_id = record.get("source_run")
    if not source_id:
        return {"benchmark": "standard", "options": {}}
    source = source_of(source_id)
    if source is None or source.get("schema_version") != 2:
        # The source is not among the loaded records: its benchmark is the first word of
        # a version-1 setting that is not the standard recipe's, its options are unknown.
        first = record.get("setting", "").split(" ", 1)[0]
        trainer = first if first in ("dp", "low-data") else "standard"
        return {"benchmark": trainer, "options": {}}
    if source["benchmark"] in _EVALUATIONS:
        return source["config"]["trained_by"]
    return {"benchmark": source["benchmark"], "options": source["config"].get("options", {})}


def rewrite(directory: str | Path) -> int:
    """Rewrite every older record under ``directory`` at the current schema; returns the count."""
    from eqdp.results.records import load_records, record_path, write_record

    base = Path(directory)
    count = 0
    for record in load_records(base, on_skip=None):
        path = Path(record["_path"])
        if _current(json.loads(path.read_text())):
            continue
        written = write_record(record, base)
        assert written == record_path(base, record), written
        if written.resolve() != path.resolve():
            path.unlink()
        count += 1
    return count


if __name__ == "__main__":  # python -m eqdp.results.migrations DIR
    for folder in sys.argv[1:] or ["results"]:
        print(f"{folder}: {rewrite(folder)} records migrated")
