"""The one training loop every benchmark uses, and everything around it.

``fit`` trains with a ``TrainingStrategy`` (plain minibatches, or DP-SGD from
``eqdp.privacy``), selects the epoch with the best validation AUC and tests
that checkpoint once; ``predict_scores`` is the only inference path, under the
run's recorded ``Precision``.
"""

from eqdp.engine.device import seed_everything, select_device
from eqdp.engine.loop import fit
from eqdp.engine.precision import Precision
from eqdp.engine.predict import evaluate_split, predict_scores
from eqdp.engine.progress import EpochStats, ProgressCallback, StageProgress, TrainingProgress
from eqdp.engine.selection import FitResult, ModelSelection
from eqdp.engine.strategy import StandardTraining, TrainingStrategy
from eqdp.engine.task import loss_for, scores_from_logits, to_model_input

__all__ = [
    "EpochStats",
    "FitResult",
    "ModelSelection",
    "Precision",
    "ProgressCallback",
    "StageProgress",
    "StandardTraining",
    "TrainingProgress",
    "TrainingStrategy",
    "evaluate_split",
    "fit",
    "loss_for",
    "predict_scores",
    "scores_from_logits",
    "seed_everything",
    "select_device",
    "to_model_input",
]
