"""From scaling records to fitted laws on disk: series, power laws, joint laws, frontiers.

A *series* is the records of one configuration but the point on its axis (and
the seed): same dataset, size, model, axis, budget and recipe. Each series gets
a power law per target (``loss``: cross-entropy; ``1-auc``) on one split
(validation by default: the laws describe the models, the test split stays the
runs' final report). Per family, dataset and budget, the width and data series
together fit ``L(N, D)``, and all its points give the compute frontier (loss vs
training FLOPs). Every fit is one JSON file under ``results/scaling/fits/``;
``index.json`` lists them and the series that could not carry a law, and why.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eqdp.benchmarks.scaling import AXES as AXIS_ORDER
from eqdp.errors import EqdpError, unknown_choice
from eqdp.scaling.fit import (
    BOOTSTRAP_RESAMPLES,
    HUBER_DELTA,
    DegenerateSweep,
    fit_joint,
    fit_power_law,
    pareto_frontier,
)

TARGETS: dict[str, Callable[[dict], float]] = {
    "loss": lambda metrics: float(metrics["loss"]),
    "1-auc": lambda metrics: 1.0 - float(metrics["auc"]),
}
SPLITS: tuple[str, ...] = ("val", "test")
FITS_FOLDER = Path("scaling") / "fits"
METHOD = (
    f"Chinchilla method 3: Huber (delta {HUBER_DELTA:g}) on log L, L-BFGS-B from a grid of "
    "starts; 95% intervals from a bootstrap over seeds (each point's runs drawn with "
    "replacement)"
)
BAND_POINTS = 40
WEAK_R2 = 0.5  # a law explaining less of the log-variance is reported, and marked weak


@dataclass
class Series:
    dataset: str
    size: int
    model: str
    group: str | None
    axis: str
    epsilon: float | None
    key: str  # digest of the configuration without the point and the seed
    records: list[dict] = field(default_factory=list)

    @property
    def budget(self) -> str:
        return "non-private" if self.epsilon is None else f"eps={self.epsilon:g}"

    @property
    def name(self) -> str:
        budget = "" if self.epsilon is None else f"-eps{self.epsilon:g}"
        return f"{self.model}-{self.axis}{budget}"


def series_key(record: dict) -> str:
    from eqdp.benchmarks.scaling import MODEL_OPTIONS
    from eqdp.results.identity import digest, key_material

    material = key_material(record["config"])
    axis = material["options"]["axis"]
    material["options"] = {k: v for k, v in material["options"].items() if k != "value"}
    kwargs = material["model_kwargs"]
    material["model_kwargs"] = {k: v for k, v in kwargs.items() if k != MODEL_OPTIONS.get(axis)}
    return digest(material)


def scaling_series(records: list[dict]) -> list[Series]:
    """The scaling records grouped into series, in a stable order.

    A rerun of a run (same configuration and seed) replaces it, as in every table:
    the newest record counts, so a law never sees one measurement twice.
    """
    from eqdp.results.identity import run_key

    newest: dict[str, dict] = {}
    for record in records:
        if record.get("benchmark") != "scaling" or "scaling" not in record:
            continue
        key = run_key(record["config"])
        if key not in newest or record["created_at"] > newest[key]["created_at"]:
            newest[key] = record
    grouped: dict[str, Series] = {}
    for record in newest.values():
        point = record["scaling"]
        key = series_key(record)
        series = grouped.setdefault(
            key,
            Series(
                record["dataset"], record["size"], record["model"],
                record["model_info"].get("group"), point["axis"], point["epsilon"], key,
            ),
        )  # fmt: skip
        series.records.append(record)
    order = {axis: i for i, axis in enumerate(AXIS_ORDER)}
    return sorted(
        grouped.values(),
        key=lambda s: (s.dataset, order[s.axis], s.epsilon or 0, s.model, s.key),
    )


def observations(records: list[dict], target: str, split: str, x_field: str | None = None):
    """(x, y, points) of records: one observation per run."""
    points = []
    for record in records:
        point = record["scaling"]
        y = TARGETS[target](record["metrics"][split])
        if not math.isfinite(y):
            continue
        points.append({
            "x": point[x_field or "x"], "y": y, "axis": point["axis"], "value": point["value"],
            "seed": record["seed"],
            "run_id": record["run_id"], "params": point["params"], "macs": point["macs"],
            "n_train": point["n_train"], "train_flops": point["train_flops"],
        })  # fmt: skip
    points.sort(key=lambda p: (p["x"], p["seed"]))
    x = np.array([p["x"] for p in points], dtype=float)
    y = np.array([p["y"] for p in points], dtype=float)
    return x, y, points


def _recipe(records: list[dict]) -> dict[str, Any]:
    train = records[0]["config"]["train"]
    epochs = sorted({r["scaling"]["epochs"] for r in records})
    return {
        "epochs": epochs if len(epochs) > 1 else epochs[0],
        "batch_size": train.get("batch_size"),
        "lr": train.get("lr"),
        "seeds": sorted({r["seed"] for r in records}),
    }


def _header(series: Series, kind: str, target: str, split: str) -> dict[str, Any]:
    return {
        "kind": kind, "family": series.model, "group": series.group,
        "dataset": series.dataset, "size": series.size, "axis": series.axis,
        "epsilon": series.epsilon, "private": series.epsilon is not None,
        "budget": series.budget, "target": target, "split": split,
        "series_key": series.key, "protocol": _recipe(series.records), "method": METHOD,
    }  # fmt: skip


def fit_series(
    series: Series, target: str = "loss", split: str = "val", resamples: int = BOOTSTRAP_RESAMPLES
) -> dict[str, Any]:
    """The power law of one series as a fit file's content; DegenerateSweep if it has none.

    ``resamples = 0`` gives the same law without intervals or band.
    """
    x, y, points = observations(series.records, target, split)
    x_name = series.records[0]["scaling"]["x_name"]
    grid = np.geomspace(x.min(), x.max(), BAND_POINTS)
    what = f"{series.name} on {series.dataset}"
    law = fit_power_law(x, y, what, resamples=resamples, band_x=grid)
    for point in points:
        point["predicted"] = float(law(point["x"]))
        point["residual"] = float(math.log(point["y"]) - math.log(point["predicted"]))
    low, high = law.band or (None, None)
    return {
        **_header(series, "power-law", target, split),
        "x": x_name,
        "law": f"{target}({x_name}) = E + A * {x_name}^-exponent",
        "exponent": law.alpha, "E": law.E, "A": law.A, "r2": law.r2,
        "weak": law.r2 < WEAK_R2,
        "ci95": {"exponent": law.ci95.get("alpha"), "E": law.ci95.get("E"),
                 "A": law.ci95.get("A")},
        "band": {"x": grid.tolist(), "low": low, "high": high} if law.band else None,
        "points": points,
    }  # fmt: skip


def fit_joint_series(
    width: Series, data: Series, target: str, split: str, resamples: int = BOOTSTRAP_RESAMPLES
) -> dict[str, Any]:
    """``L(N, D)`` from a family's width sweep (N at full data) and data sweep (D at width 1)."""
    records = width.records + data.records
    _, y, points = observations(records, target, split)
    n = [p["params"] for p in points]
    d = [p["n_train"] for p in points]
    law = fit_joint(n, d, y, f"{width.model} width x data on {width.dataset}", resamples)
    return {
        **_header(width, "joint", target, split),
        "axis": "width+data",
        "law": f"{target}(N, D) = E + A / N^a + B / D^b (N parameters, D training images)",
        "E": law.E, "A": law.A, "a": law.a, "B": law.B, "b": law.b, "r2": law.r2,
        "weak": law.r2 < WEAK_R2,
        "exponent": {"a": law.a, "b": law.b},
        "ci95": {"a": law.ci95.get("a"), "b": law.ci95.get("b")},
        "compute_optimal": law.optimal_exponents,
        "grid": "a cross: widths at the full training set, fractions at width 1",
        "points": points,
    }  # fmt: skip


def frontier(group: list[Series], target: str, split: str) -> dict[str, Any]:
    """Loss against training FLOPs over every point of a family, dataset and budget."""
    records = [r for s in group for r in s.records]
    _, _, points = observations(records, target, split, x_field="train_flops")
    # One point per configuration: the mean over its seeds.
    by_config: dict[tuple, list[dict]] = {}
    for point in points:
        by_config.setdefault((point["axis"], point["value"]), []).append(point)
    configs = [
        {"axis": axis, "value": value,
         "train_flops": float(np.mean([p["train_flops"] for p in ps])),
         "y": float(np.mean([p["y"] for p in ps])), "runs": len(ps)}
        for (axis, value), ps in sorted(by_config.items())
    ]  # fmt: skip
    keep = pareto_frontier([c["train_flops"] for c in configs], [c["y"] for c in configs])
    on_frontier = [configs[i] for i in keep]
    header = _header(group[0], "frontier", target, split)
    fit: dict[str, Any] | None = None
    reason = None
    try:
        law = fit_power_law(
            [c["train_flops"] for c in on_frontier], [c["y"] for c in on_frontier],
            "compute frontier", resamples=0,
        )  # fmt: skip
        fit = {"exponent": law.alpha, "E": law.E, "A": law.A, "r2": law.r2}
    except DegenerateSweep as error:
        reason = str(error)
    return {
        **header, "axis": "compute", "x": "train_flops",
        "frontier": on_frontier, "configurations": configs, "fit": fit, "not_fitted": reason,
    }  # fmt: skip


def fit_all(
    records: list[dict],
    targets: tuple[str, ...] = ("loss", "1-auc"),
    split: str = "val",
    resamples: int = BOOTSTRAP_RESAMPLES,
    on_fit: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict], list[dict]]:
    """({file name: fit}, [not fitted: series and reason]) for every series and target."""
    from threadpoolctl import threadpool_limits

    for target in targets:
        if target not in TARGETS:
            raise unknown_choice("scaling target", target, list(TARGETS))
    if split not in SPLITS:
        raise unknown_choice("split", split, SPLITS)
    all_series = scaling_series(records)
    if not all_series:
        raise EqdpError("no scaling records to fit; run `eqdp run scaling ...` or a suite first")
    fits: dict[str, dict] = {}
    skipped: list[dict] = []
    with threadpool_limits(1):  # tiny problems: BLAS threads only contend
        for target in targets:
            for name, content in _fits_of(all_series, target, split, resamples, skipped):
                fits[name] = content
                if on_fit is not None:
                    on_fit(name)
    return fits, skipped


def _fits_of(
    all_series: list[Series], target: str, split: str, resamples: int, skipped: list[dict]
) -> Iterator[tuple[str, dict]]:
    names = _file_names(all_series)
    for series in all_series:
        try:
            yield f"{names[series.key]}-{target}.json", fit_series(series, target, split, resamples)
        except DegenerateSweep as error:
            skipped.append({"series": series.name, "dataset": series.dataset,
                            "target": target, "reason": str(error)})  # fmt: skip
    families: dict[tuple, list[Series]] = {}
    for series in all_series:
        families.setdefault((series.dataset, series.model, series.epsilon), []).append(series)
    for (dataset, model, epsilon), group in families.items():
        stem = f"{dataset}/{model}{'' if epsilon is None else f'-eps{epsilon:g}'}"
        by_axis = {s.axis: s for s in group}
        if "width" in by_axis and "data" in by_axis:
            try:
                width, data = by_axis["width"], by_axis["data"]
                joint = fit_joint_series(width, data, target, split, resamples)
                yield f"{stem}-joint-{target}.json", joint
            except DegenerateSweep as error:
                skipped.append({"series": f"{model} width x data", "dataset": dataset,
                                "target": target, "reason": str(error)})  # fmt: skip
        yield f"{stem}-frontier-{target}.json", frontier(group, target, split)


def _file_names(all_series: list[Series]) -> dict[str, str]:
    """A readable file stem per series; a digest only where two series would share one."""
    stems = {s.key: f"{s.dataset}/{s.name}" for s in all_series}
    counts: dict[str, int] = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    return {key: stem if counts[stem] == 1 else f"{stem}-{key[:6]}" for key, stem in stems.items()}


def write_fits(fits: dict[str, dict], skipped: list[dict], out: str | Path) -> Path:
    """Replace ``out`` with the fits and ``index.json``, whole or not at all."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EqdpError(f"fits folder {out} is a file; give a folder (--out)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".fits-", dir=out.parent))
    except OSError as error:
        raise EqdpError(f"cannot write the fits folder {out}: {error.strerror}") from error
    try:
        for name, content in fits.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
        index = {"fits": sorted(fits), "not_fitted": skipped, "method": METHOD}
        (staging / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def load_fits(folder: str | Path) -> list[dict]:
    folder = Path(folder)
    if not (folder / "index.json").is_file():
        raise EqdpError(f"no scaling fits under {folder}; write them with `eqdp scaling fit`")
    index = json.loads((folder / "index.json").read_text())
    return [json.loads((folder / name).read_text()) for name in index["fits"]]


def fits_folder(results: str | Path) -> Path:
    return Path(results) / FITS_FOLDER
