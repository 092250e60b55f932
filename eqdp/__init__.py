"""eqdp: equivariant CNNs under DP-SGD, low data and attack, on MedMNIST.

The Python API the CLI is built on::

    import eqdp
    eqdp.list_models()
    model = eqdp.create_model("eq-nasnet", in_channels=1, num_classes=2)
    config = eqdp.RunConfig("standard", "eq-nasnet", "breastmnist",
                            train=eqdp.TrainConfig(epochs=10))
    record, path = eqdp.run_benchmark(config)
    rows = eqdp.aggregate(eqdp.load_records("runs"))

Names are imported on first use: ``import eqdp`` itself loads no torch, so
commands that only read records start in a fraction of a second.
"""

from __future__ import annotations

from eqdp.lazy import lazy_exports
from eqdp.runtime import prefer_transparent_hugepages

__version__ = "0.2.0"

prefer_transparent_hugepages()  # before anything imports torch, which reads it once

_EXPORTS = {
    "EqdpError": "eqdp.errors",
    "RunConfig": "eqdp.config",
    "TrainConfig": "eqdp.config",
    "list_benchmarks": "eqdp.benchmarks",
    "run_benchmark": "eqdp.benchmarks.execute",
    "load_dataset": "eqdp.data",
    "evaluate": "eqdp.metrics",
    "create_model": "eqdp.models",
    "describe_model": "eqdp.models",
    "list_models": "eqdp.models",
    "register_model": "eqdp.models",
    "aggregate": "eqdp.results",
    "load_records": "eqdp.results",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = ["__version__", *sorted(_EXPORTS)]
