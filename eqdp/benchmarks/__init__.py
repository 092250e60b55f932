"""Benchmarks: one module each, registered on import (light: no torch at import time).

``run_benchmark`` (in ``eqdp.benchmarks.execute``) runs one configuration and
writes its checkpoint and record.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from eqdp.benchmarks.registry import BENCHMARKS, Benchmark, PlotSpec, list_benchmarks

# Every module of this package that is not shared machinery defines one benchmark;
# importing it registers it, so a new benchmark is one new module.
_MACHINERY = frozenset({"registry", "execute", "common", "pretrained", "tables"})
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in _MACHINERY and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")


def __getattr__(name: str) -> Any:
    if name in ("run_benchmark", "resolve_config"):
        return getattr(importlib.import_module("eqdp.benchmarks.execute"), name)
    if name == "RunConfig":
        return importlib.import_module("eqdp.config").RunConfig
    raise AttributeError(f"module 'eqdp.benchmarks' has no attribute {name!r}")


__all__ = ["BENCHMARKS", "Benchmark", "PlotSpec", "list_benchmarks", "run_benchmark"]
