"""How fast the commands that only read records start: seconds, targets and ratios.

    uv run python benchmarks/speed/startup.py [--records 10000] [--repeat 5] [--json]

Times whole processes of the installed ``eqdp`` command (the console script
next to this interpreter, so ``uv run``'s own start-up is not counted), median
of ``--repeat`` runs, and checks that none of them imported torch, Opacus,
MONAI or escnn. The leaderboard reads ``--records`` records: the committed ones,
copied with new run ids, seeds and dates into a temporary folder until there
are that many. Targets (issue 12): ``--help`` under 2 s, a leaderboard over
10k records under 3 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "opacus", "monai", "escnn", "medmnist", "sklearn")

# Runs the CLI in-process, then reports which heavy modules it imported.
PROBE = """
import sys
from eqdp.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def eqdp_command() -> list[str]:
    script = Path(sys.executable).with_name("eqdp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "eqdp"]


def make_records(target: Path, count: int) -> None:
    """``count`` records: the committed ones, cloned with new ids, seeds and dates."""
    sources = [p for p in (ROOT / "results").rglob("*.json") if not p.name.startswith(".")]
    originals = [json.loads(p.read_text(encoding="utf-8")) for p in sources]
    for index in range(count):
        record = dict(originals[index % len(originals)])
        clone = index // len(originals)
        record["run_id"] = f"{record['run_id']}-copy{clone}"
        record["seed"] = record["seed"] + 10 * clone
        record["config"] = {**record["config"], "seed": record["seed"]}
        folder = (
            target / record["benchmark"] / f"{record['dataset']}_{record['size']}" / record["model"]
        )
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{record['run_id']}.json").write_text(
            json.dumps(record, ensure_ascii=False), encoding="utf-8"
        )


def timed(command: list[str], repeat: int) -> float:
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def heavy_imports(arguments: list[str]) -> list[str]:
    probe = PROBE.format(heavy=HEAVY)
    run = subprocess.run(
        [sys.executable, "-c", probe, *arguments], capture_output=True, text=True, check=False
    )
    line = [x for x in run.stderr.splitlines() if x.startswith("HEAVY=")]
    return line[-1].removeprefix("HEAVY=").split(",") if line and line[-1] != "HEAVY=" else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        records = Path(folder) / "results"
        make_records(records, args.records)
        cases = [
            ("eqdp --help", ["--help"], 2.0),
            ("eqdp run dp --help", ["run", "dp", "--help"], 2.0),
            ("eqdp list benchmarks", ["list", "benchmarks"], 2.0),
            (
                f"eqdp leaderboard ({args.records} records)",
                ["leaderboard", "--results-dir", str(records), "--format", "csv"],
                3.0,
            ),
            (
                "eqdp readme --check (committed)",
                ["readme", str(ROOT / "README.md"), "--check"],
                3.0,
            ),
        ]
        if not args.json:
            print(f"{'command':<40} {'median s':>9} {'target s':>9} {'ratio':>6}  heavy imports")
        for name, arguments, target in cases:
            seconds = timed([*eqdp_command(), *arguments], args.repeat)
            heavy = heavy_imports(arguments)
            row = {
                "command": name,
                "median_s": round(seconds, 3),
                "target_s": target,
                "ratio": round(seconds / target, 3),
                "heavy_imports": heavy,
            }
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                shown = ",".join(heavy) or "none"
                print(
                    f"{name:<40} {seconds:>9.2f} {target:>9.1f} {seconds / target:>6.2f}  {shown}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
