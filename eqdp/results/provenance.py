"""Which records may stand in committed tables: provenance rules enforced by code.

- A record made from a dirty checkout (``env.git_dirty`` true) cannot be traced
  to a commit: it is left out of the README blocks, the docs pages and the
  findings, and the pages say how many were left out. (Records from before the
  field existed, ``git_dirty`` absent or null, are kept: unknown, not dirty.)
- Tuning runs live in ``results/tuning/`` and are never loaded as results
  (``eqdp.results.records.NOT_RECORD_FOLDERS``).
- Two records of one run (same configuration, seed and measurement: the same
  ``run_key``) in ``results/`` are an error: a table would silently keep one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from eqdp.results.identity import run_key

# The repository's committed records (with results/tuning inside it).
COMMITTED_RESULTS = Path(__file__).resolve().parents[2] / "results"


def refuse_dirty_code_for_committed_results(results_dirs: set[str | None]) -> None:
    """Committed records come from committed code: a suite that would write into this
    checkout's ``results/`` refuses to start while eqdp's code has uncommitted changes."""
    targets = [Path(d).resolve() for d in results_dirs if d]
    if not any(t == COMMITTED_RESULTS or COMMITTED_RESULTS in t.parents for t in targets):
        return
    from eqdp.errors import EqdpError
    from eqdp.results.environment import git_dirty

    if git_dirty():
        raise EqdpError(
            f"eqdp's code has uncommitted changes and this suite writes into {COMMITTED_RESULTS}: "
            "committed records come from committed code; commit first, or pass --results-dir"
        )


def is_dirty(record: dict) -> bool:
    return (record.get("env") or {}).get("git_dirty") is True


@dataclass
class Committed:
    """The records committed tables may use, and what was left out and why."""

    records: list[dict]
    dirty: list[dict] = field(default_factory=list)

    def note(self) -> str:
        """One sentence for a generated page; empty when nothing was left out."""
        if not self.dirty:
            return ""
        count = len(self.dirty)
        which = Counter(f"{r['benchmark']} {r['dataset']} {r['model']}" for r in self.dirty)
        listed = ", ".join(f"{name} ×{n}" for name, n in sorted(which.items()))
        return (
            f"{count} record{'s' if count > 1 else ''} from a dirty checkout "
            f"(`env.git_dirty`) left out until rerun from a clean one: {listed}."
        )


def committed(records: list[dict]) -> Committed:
    kept = [r for r in records if not is_dirty(r)]
    return Committed(kept, [r for r in records if is_dirty(r)])


def load_committed(base: str | Path) -> Committed:
    from eqdp.results.records import load_records

    return committed(load_records(base, on_skip=None))


def duplicate_runs(records: list[dict]) -> list[list[dict]]:
    """Groups of two or more records of one run (same ``run_key``), oldest first."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[run_key(record["config"])].append(record)
    return [
        sorted(group, key=lambda r: (r["created_at"], r["run_id"]))
        for group in groups.values()
        if len(group) > 1
    ]
