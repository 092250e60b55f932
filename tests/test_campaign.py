"""eqdp campaign: the committed suites' missing runs in priority order, within a budget."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eqdp.cli import app
from eqdp.errors import EqdpError
from eqdp.suites import campaign
from eqdp.suites.campaign import CostModel, campaign_suites, plan_campaign

runner = CliRunner()


def write_suite(folder: Path, name: str, results: Path, models: str, seeds: str) -> Path:
    path = folder / name
    path.write_text(
        f'benchmark = "standard"\nresults_dir = "{results}"\nmodels = {models}\n'
        f"seeds = {seeds}\n[train]\nepochs = 1\nbatch_size = 32\n"
        '[model_kwargs]\nwidth = 4\n[datasets.breastmnist]\n[datasets.retinamnist]\n'
    )
    return path


@pytest.fixture
def two_suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synthetic_dir: Path):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    first = write_suite(tmp_path, "first.toml", results, '["cnn"]', "[0, 1, 2, 3]")
    second = write_suite(tmp_path, "second.toml", results, '["cnn"]', "[5]")
    (tmp_path / "campaign.toml").write_text(
        f'suites = ["{first}", {{ file = "{second}", dataset = "retinamnist" }}]\n'
    )
    return tmp_path / "campaign.toml", results


def test_runs_come_by_suite_priority_then_seed(two_suites, synthetic_dir: Path) -> None:
    file, _ = two_suites
    runs = plan_campaign(campaign_suites(file), "cpu", str(synthetic_dir), verify_md5=False)
    order = [(run.priority, run.config.seed, run.config.dataset) for run in runs]
    # Seeds 0..3 of both datasets of the first suite, seed by seed, then the second
    # suite narrowed to retinamnist.
    assert order == [(0, s, d) for s in range(4) for d in ("breastmnist", "retinamnist")] + [
        (1, 5, "retinamnist")
    ]


def test_costs_come_from_records_of_the_same_model_and_device(two_suites, synthetic_dir) -> None:
    file, _ = two_suites
    record = {"benchmark": "standard", "model": "cnn", "env": {"device": "cpu"},
              "timing": {"train_seconds": 10.0, "images_per_second": 100.0}}  # fmt: skip
    model = CostModel([record])
    (run, *_) = plan_campaign(campaign_suites(file), "cpu", str(synthetic_dir), verify_md5=False)
    seconds, basis = model.estimate(run.config, 546, "cpu")
    assert seconds == pytest.approx(546 / 100.0 * campaign.EVAL_OVERHEAD)
    assert model.estimate(run.config, 546, "cuda") == (None, "no plain record of cnn on cuda")


def test_a_worker_defers_what_the_deadline_cannot_fit(tmp_path: Path, monkeypatch) -> None:
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"long": 600.0, "short": 5.0}))
    monkeypatch.setenv(campaign.COSTS_ENV, str(costs))
    monkeypatch.setenv(campaign.DEADLINE_ENV, str(time.time() + 60))
    assert campaign.fits_before_deadline("short")
    assert not campaign.fits_before_deadline("long")
    assert campaign.fits_before_deadline("unmeasured")  # no estimate: it may start
    monkeypatch.setenv(campaign.DEADLINE_ENV, str(time.time() - 1))
    assert not campaign.fits_before_deadline("unmeasured")


def test_campaign_runs_then_resumes_with_nothing_left(two_suites, synthetic_dir: Path) -> None:
    file, results = two_suites
    args = ["campaign", "--file", str(file), "--device", "cpu", "--workers", "2",
            "--data-dir", str(synthetic_dir), "--no-verify-md5"]  # fmt: skip
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "9 missing runs in 2 suites" in dry.output
    done = runner.invoke(app, [*args, "--time-budget", "600"])
    assert done.exit_code == 0, done.output
    # The deadline is the campaign's alone: later suites of this process must not inherit it.
    assert campaign.DEADLINE_ENV not in os.environ and campaign.COSTS_ENV not in os.environ
    assert len(list(results.rglob("*-cnn-s*.json"))) == 9
    again = runner.invoke(app, [*args, "--dry-run"])
    assert "0 missing runs" in again.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("suites = []", "non-empty list"),
        ('suites = ["nowhere.toml"]', "nowhere.toml not found"),
        ('suites = [{ file = "x.toml", fraction = 1 }]', "unknown key(s) ['fraction']"),
        ("suites = [", "not valid TOML"),
    ],
)
def test_bad_campaign_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "campaign.toml"
    path.write_text(content)
    import re

    with pytest.raises(EqdpError, match=re.escape(message)):
        campaign_suites(path)


def test_local_workers_see_the_gpus_their_driver_sees(tmp_path: Path, monkeypatch) -> None:
    """submitit hides every GPU from a local job unless told how many it may use: the
    first campaign on a lent H200 failed every run with 'no CUDA GPU is visible'."""
    import torch

    from eqdp.suites.executors import submitit_executor
    from eqdp.suites.file import ExecutorSettings

    settings = ExecutorSettings(executor="local", workers=2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert submitit_executor(settings, tmp_path, 1, 2).parameters["gpus_per_node"] == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert submitit_executor(settings, tmp_path, 1, 2).parameters["gpus_per_node"] == 0
