"""eqdp: equivariant CNNs under DP-SGD, low data and attack, on MedMNIST.

The Python API the CLI is built on::

    import eqdp
    eqdp.list_models()
    model = eqdp.create_model("eq-nasnet", in_channels=1, num_classes=2)
    eqdp.evaluate("binary-class", y_true, y_score)  # {"acc": ..., "auc": ...}
    records = eqdp.load_records("results")
"""

__version__ = "0.1.0"

from eqdp.runtime import prefer_transparent_hugepages  # noqa: E402

prefer_transparent_hugepages()  # before anything imports torch, which reads it once

from eqdp import privacy  # noqa: E402, F401  (registers Opacus grad samplers)
from eqdp.benchmarks import RunConfig, list_benchmarks, run_benchmark  # noqa: E402
from eqdp.data import load_dataset  # noqa: E402
from eqdp.errors import EqdpError  # noqa: E402
from eqdp.metrics import evaluate  # noqa: E402
from eqdp.models import create_model, describe_model, list_models, register_model  # noqa: E402
from eqdp.results import aggregate, load_records  # noqa: E402
from eqdp.train import TrainConfig  # noqa: E402

__all__ = [
    "EqdpError",
    "RunConfig",
    "TrainConfig",
    "__version__",
    "aggregate",
    "create_model",
    "describe_model",
    "evaluate",
    "list_benchmarks",
    "list_models",
    "load_dataset",
    "load_records",
    "register_model",
    "run_benchmark",
]
