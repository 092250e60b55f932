"""Result records, checkpoints, run identity and the rows every table is built from.

Light: nothing here imports torch until a checkpoint is read or written.
"""

from eqdp.results.checkpoints import checkpoint_path, load_checkpoint, save_checkpoint
from eqdp.results.identity import key_material, label, row_key, run_key
from eqdp.results.leaderboard import FORMATS, LeaderboardRow, aggregate, filter_records
from eqdp.results.records import (
    DEFAULT_RESULTS_DIR,
    RESULTS_DIR_ENV,
    SCHEMA_VERSION,
    find_record,
    load_records,
    results_dir,
    validate_record,
    write_record,
)
from eqdp.results.rows import Row, aggregate_rows

__all__ = [
    "DEFAULT_RESULTS_DIR",
    "FORMATS",
    "RESULTS_DIR_ENV",
    "SCHEMA_VERSION",
    "LeaderboardRow",
    "Row",
    "aggregate",
    "aggregate_rows",
    "checkpoint_path",
    "filter_records",
    "find_record",
    "key_material",
    "label",
    "load_checkpoint",
    "load_records",
    "results_dir",
    "row_key",
    "run_key",
    "save_checkpoint",
    "validate_record",
    "write_record",
]
