"""Run identity: which records are the same configuration, and what to call it.

A leaderboard row is one configuration: every record whose *key material* is
the same, whatever its seed. The key material is the record's effective
configuration (``config``: benchmark, model, dataset, size, training recipe,
model options, benchmark options and, for benchmarks that test a trained model,
how it was trained) without

- the seed (a row's seeds are its repetitions),
- fields declared ``key=False`` (where files are, evaluation and physical batch
  sizes, the device: they change how a run executes, not what it computes),
- a benchmark's measurement ``axes`` (which attacks at which budgets) and
  ``from_run`` (which seed's checkpoint), which tell apart measurements of one row.

The material is computed from the stored config on every load, with fields
added since the record was written filled in by their defaults (a new field's
default must reproduce the behaviour before it existed), so keys do not go
stale when the schema grows. ``row_key`` is a short hash of it; ``run_key``
adds back the seed, axes and source run: it names one run, for resuming suites
and for claims.

The human ``label`` is generated, never typed: the configuration's difference
from the benchmark's defaults (``10ep``, ``ε=1 C=0.1``, ``fraction=0.1``).
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import cache, lru_cache
from typing import Any

from eqdp.benchmarks.registry import BENCHMARKS, Benchmark
from eqdp.config.fields import OptionSpec, as_plain_dict, option_specs, parse_config
from eqdp.config.train import TrainConfig

IDENTITY_FIELDS: tuple[str, ...] = ("benchmark", "model", "dataset", "size")


def canonical(value: Any) -> Any:
    """JSON-comparable form: integral floats as ints, non-finite floats as strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return int(value) if value.is_integer() else value
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"))


def digest(material: dict) -> str:
    return hashlib.sha256(_dumps(material).encode()).hexdigest()[:12]


@lru_cache(maxsize=4096)
def _parsed(cls: type, stored: str) -> dict[str, Any]:
    return as_plain_dict(parse_config(cls, json.loads(stored), cls.__name__))


def effective(cls: type, stored: dict) -> dict[str, Any]:
    """Stored values of a config class, completed with defaults and validated."""
    return _parsed(cls, json.dumps(stored, sort_keys=True))


def _key_fields(cls: type, values: dict, leave_out: tuple[str, ...] = ()) -> dict:
    specs = _specs(cls)
    return {k: v for k, v in values.items() if specs[k].key and k not in leave_out}


@cache
def _specs(cls: type) -> dict[str, OptionSpec]:
    return {spec.name: spec for spec in option_specs(cls)}


def benchmark_options(benchmark: Benchmark, stored: dict) -> dict[str, Any]:
    return effective(benchmark.options, stored)


def key_material(config: dict) -> dict[str, Any]:
    """What makes two runs one configuration (see the module docstring)."""
    benchmark = BENCHMARKS.get(config["benchmark"])
    train = effective(TrainConfig, config.get("train", {}))
    options = benchmark_options(benchmark, config.get("options", {}))
    material = {field: config[field] for field in IDENTITY_FIELDS}
    material["train"] = _key_fields(TrainConfig, train)
    material["model_kwargs"] = config.get("model_kwargs", {})
    material["options"] = _key_fields(benchmark.options, options, benchmark.axes)
    if benchmark.evaluates_trained_model:
        material["trained_by"] = trained_by_material(config.get("trained_by"))
    return canonical(material)


def trained_by_material(trained_by: dict | None) -> dict[str, Any]:
    """The training part of an evaluation's identity; in-run training is ``standard``."""
    trained_by = trained_by or {"benchmark": "standard", "options": {}}
    trainer = BENCHMARKS.get(trained_by["benchmark"])
    options = benchmark_options(trainer, trained_by.get("options", {}))
    return {"benchmark": trainer.name, "options": _key_fields(trainer.options, options)}


def keyed(config: dict) -> tuple[str, dict[str, Any]]:
    """(row key, key material) of a stored config; cached, as tables key thousands of
    records of few configurations. The material is shared: do not modify it."""
    options = {k: v for k, v in config.get("options", {}).items() if k != "from_run"}
    measured = {k: v for k, v in config.items() if k != "seed"} | {"options": options}
    return _keyed(json.dumps(measured, sort_keys=True, default=str))


@lru_cache(maxsize=65536)
def _keyed(stored: str) -> tuple[str, dict[str, Any]]:
    material = key_material(json.loads(stored))
    return digest(material), material


def row_key(config: dict) -> str:
    return keyed(config)[0]


def run_material(config: dict) -> dict[str, Any]:
    """One run: the row's material plus seed, measurement axes and source checkpoint."""
    benchmark = BENCHMARKS.get(config["benchmark"])
    options = benchmark_options(benchmark, config.get("options", {}))
    material = key_material(config)
    material["seed"] = config["seed"]
    material["measurement"] = canonical(
        {name: options.get(name) for name in (*benchmark.axes, "from_run") if name in options}
    )
    return material


def run_key(config: dict) -> str:
    return digest(run_material(config))


# ---------------------------------------------------------------- labels


def _format(spec: OptionSpec | None, name: str, value: Any) -> str:
    if value in ("inf", "-inf", "nan"):
        value = float(value)
    if spec is None:
        return f"{name}={_show(value)}"
    return spec.format(value)


def _show(value: Any) -> str:
    from eqdp.config.fields import format_value

    if isinstance(value, dict) and "stages" in value and "stem" in value:
        # An architecture spec (model 'arch-spec'): its name and a digest of its content.
        return f"{value.get('name', 'spec')}#{digest(value)[:6]}"
    return format_value(value)


def _differences(
    values: dict, reference: dict, specs: dict[str, OptionSpec] | None = None
) -> list[str]:
    parts = []
    for name, value in values.items():
        if canonical(value) != canonical(reference.get(name, _MISSING)):
            parts.append(_format((specs or {}).get(name), name, value))
    return parts


_MISSING = object()


def label(record: dict) -> str:
    """The record's configuration as its difference from the benchmark's defaults."""
    config = record["config"]
    benchmark = BENCHMARKS.get(config["benchmark"])
    material = key_material(config)
    parts: list[str] = []
    if "trained_by" in material and material["trained_by"]["benchmark"] != "standard":
        trainer = BENCHMARKS.get(material["trained_by"]["benchmark"])
        parts.append(trainer.name)
        parts += _option_differences(trainer, material["trained_by"]["options"], record)
    parts += _option_differences(benchmark, material["options"], record)
    defaults = (record.get("model_info") or {}).get("defaults")
    if defaults is not None:
        parts += _differences(material["model_kwargs"], defaults)
    reference_train = as_plain_dict(TrainConfig(precision="fp32"))
    parts += _differences(material["train"], reference_train, _specs(TrainConfig))
    return " ".join(parts) or "defaults"


def _option_differences(benchmark: Benchmark, options: dict, record: dict) -> list[str]:
    specs = _specs(benchmark.options)
    reference = {n: s.default for n, s in specs.items() if not s.required}
    if benchmark.label_defaults is not None:
        reference.update(benchmark.label_defaults(record))
    return _differences(options, reference, specs)


def flatten(material: dict, prefix: str = "") -> dict[str, Any]:
    """Nested material as dotted paths -> leaf values (empty tables have no leaves)."""
    flat: dict[str, Any] = {}
    for key, value in material.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _without_trainer_defaults(material: dict) -> dict:
    """The training origin as what differs from its benchmark's defaults, for labels."""
    trained_by = material.get("trained_by")
    if not trained_by or trained_by["benchmark"] not in BENCHMARKS:
        return material
    specs = _specs(BENCHMARKS.get(trained_by["benchmark"]).options)
    options = {
        name: value
        for name, value in trained_by["options"].items()
        if name not in specs or specs[name].required or canonical(specs[name].default) != value
    }
    return {**material, "trained_by": {**trained_by, "options": options}}


def distinguishing_labels(materials: list[dict]) -> list[str]:
    """For materials that share a table row heading: the fields in which they differ."""
    materials = [_without_trainer_defaults(m) for m in materials]
    flats = [flatten(m) for m in materials]
    paths = sorted({p for flat in flats for p in flat}, key=_path_order)
    varying = [p for p in paths if len({_dumps(flat.get(p)) for flat in flats}) > 1]
    labels = []
    for material, flat in zip(materials, flats, strict=True):
        parts = [_format_path(material, p, flat.get(p)) for p in varying]
        labels.append(" ".join(part for part in parts if part))
    return labels


def _path_order(path: str) -> tuple[int, str]:
    order = ("trained_by", "options", "model_kwargs", "train")
    head = path.split(".", 1)[0]
    return (order.index(head) if head in order else len(order), path)


def _format_path(material: dict, path: str, value: Any) -> str:
    if value is None:
        return ""
    head, _, name = path.partition(".")
    spec: OptionSpec | None = None
    if head == "train":
        spec = _specs(TrainConfig).get(name)
    elif head == "options" and material.get("benchmark") in BENCHMARKS:
        spec = _specs(BENCHMARKS.get(material["benchmark"]).options).get(name)
    elif head == "trained_by":
        trainer = material.get("trained_by", {}).get("benchmark", "standard")
        if name == "benchmark":
            return "" if value == "standard" else str(value)
        name = name.removeprefix("options.")
        if trainer in BENCHMARKS:
            spec = _specs(BENCHMARKS.get(trainer).options).get(name)
    return _format(spec, name or head, value)
