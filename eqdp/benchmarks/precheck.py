"""What can be checked about a run before torch is imported, and is checked then.

Importing torch and the model code takes 7-11 s on a busy machine; a typo in a model
option or a missing data file should not wait for it. Everything here reads only the
configuration, the model catalogue and the file system. The full resolution that follows
(``resolve_config``, ``check_ready``) checks all of it again, and more.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from eqdp.config.run import RunConfig
from eqdp.errors import EqdpError

# Device files a CUDA (or ROCm) GPU shows on Linux; with none of them torch cannot see one.
_GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def gpu_certainly_absent() -> bool:
    """True only when no GPU can be visible to torch; False when unsure (torch decides)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return True
    if not sys.platform.startswith("linux"):
        return False
    return not any(Path(path).exists() for path in _GPU_DEVICE_FILES)


def precheck(config: RunConfig, runs_here: bool = True) -> None:
    """Raise the EqdpError the full resolution would raise, for what needs no torch.

    ``runs_here``: the run is about to start on this machine, so its device must be here
    and its output folders writable; a suite planned for GPU jobs elsewhere (a cluster's
    login node) takes ``cuda`` at its word, as ``planned_device_type`` does.
    """
    from eqdp.benchmarks import BENCHMARKS
    from eqdp.catalogue.models import check_attacks, check_model
    from eqdp.config.fields import parse_config
    from eqdp.data.catalog import check_data_file
    from eqdp.results.checkpoints import check_writable, checkpoint_dir
    from eqdp.results.records import results_dir

    benchmark = BENCHMARKS.get(config.benchmark)
    check_model(config.model, dict(config.model_kwargs))
    options = parse_config(benchmark.options, config.options, f"benchmark {benchmark.name}")
    check_attacks(getattr(options, "attacks", None))
    for eps in getattr(options, "attack_eps", None) or ():
        if not (eps >= 0 and math.isfinite(eps)):
            raise EqdpError(f"attack eps must be finite and >= 0, got {eps:g}")
    check_data_file(config.dataset, config.size, config.data_dir, config.verify_md5)
    if gpu_certainly_absent():
        planned = "cpu" if config.device == "auto" else config.device
        if runs_here and planned == "cuda":
            raise EqdpError("device 'cuda' requested but no CUDA GPU is visible; use --device cpu")
        if planned != "cuda" and config.train.precision in ("tf32", "bf16"):
            raise EqdpError(
                f"precision {config.train.precision!r} needs a CUDA device, not {planned!r}; "
                "use fp32"
            )
    if runs_here:
        check_writable(results_dir(config.results_dir), "results")
        check_writable(checkpoint_dir(config.checkpoint_dir, config.results_dir), "checkpoint")


__all__ = ["gpu_certainly_absent", "precheck"]
