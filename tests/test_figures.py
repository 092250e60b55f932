"""Figures a reader can read: coinciding curves named, legends off the data, scaling panels
that fit a README and never show a negative R² as a fit quality (issue 29 item 12)."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from eqdp.report.plots import plot_records
from eqdp.results import write_record
from eqdp.results.records import load_records
from tests.test_records import make_record


def _geometric(root: Path, model: str, seed: int, acc: float) -> None:
    record = make_record(benchmark="geometric", model=model, seed=seed, options={})
    record["geometric"] = {"transforms": [
        {"name": f"r{a}", "kind": "rotation", "angle": a, "acc": acc, "auc": 0.8}
        for a in range(0, 360, 90)
    ]}  # fmt: skip
    write_record(record, root)


def test_coinciding_flat_curves_are_named_and_the_legend_is_off_the_panels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for model, acc in (("cnn", 0.6), ("eq-cnn", 0.731), ("vit", 0.731)):
        for seed in (0, 1):
            _geometric(tmp_path, model, seed, acc)
    drawn: list[Figure] = []
    real_savefig = Figure.savefig

    def keep(figure: Figure, *args, **kwargs):
        drawn.append(figure)
        return real_savefig(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    plot_records("geometric", load_records(tmp_path, on_skip=None), tmp_path / "g.png")
    (figure,) = drawn
    texts = [t.get_text() for ax in figure.axes for t in ax.texts]
    assert "same curve: eq-cnn, vit" in texts  # before: vit's line hid eq-cnn's
    assert all(ax.get_legend() is None for ax in figure.axes) and len(figure.legends) == 1
    styles = {(line.get_linestyle(), line.get_marker()) for ax in figure.axes
              for line in ax.get_lines()}  # fmt: skip
    assert len(styles) == 3


def test_a_negative_r2_reads_as_no_better_than_a_constant() -> None:
    from eqdp.scaling.plot import _law_label

    assert _law_label({"exponent": 0.5, "weak": False, "r2": 0.9}) == "exponent 0.50"
    assert _law_label({"exponent": -0.05, "weak": True, "r2": -0.02}) == (
        "exponent -0.05, no better than a constant"
    )
    assert "R² 0.21" in _law_label({"exponent": 1.0, "weak": True, "r2": 0.21})
