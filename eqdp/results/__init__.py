"""Result records, checkpoints and the leaderboard built from them."""

from eqdp.results.checkpoints import checkpoint_path, load_checkpoint, save_checkpoint
from eqdp.results.leaderboard import FORMATS, LeaderboardRow, aggregate, filter_records
from eqdp.results.records import (
    RESULTS_DIR_ENV,
    SCHEMA_VERSION,
    find_record,
    load_records,
    results_dir,
    validate_record,
    write_record,
)

__all__ = [
    "FORMATS",
    "RESULTS_DIR_ENV",
    "SCHEMA_VERSION",
    "LeaderboardRow",
    "aggregate",
    "checkpoint_path",
    "filter_records",
    "find_record",
    "load_checkpoint",
    "load_records",
    "results_dir",
    "save_checkpoint",
    "validate_record",
    "write_record",
]
