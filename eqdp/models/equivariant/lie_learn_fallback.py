"""Importing escnn where lie_learn cannot load (numpy 2, Python 3.13).

escnn imports ``lie_learn.representations.SO3.wigner_d`` at import time, for SO(3)
only. lie_learn's published wheels are compiled against numpy 1.x, so on numpy 2 that
import fails and escnn with it, although eqdp uses planar groups only (C_N, D_N on
the pixel grid). ``ensure_lie_learn`` tries the real module first; only if it cannot
import does it register a stand-in whose ``wigner_D_matrix`` raises, with a warning
naming the cause. The pinned set (numpy 1.26, the real lie_learn) never takes this path.
"""

from __future__ import annotations

import sys
import types
import warnings

MODULE = "lie_learn.representations.SO3.wigner_d"


class SO3Unavailable(RuntimeError):
    """SO(3) was asked of the lie_learn stand-in: only the real lie_learn has it."""


def _so3_unavailable(*args: object, **kwargs: object) -> None:
    raise SO3Unavailable(
        "lie_learn could not be imported (see the warning eqdp gave): SO(3) Wigner matrices "
        "are unavailable; eqdp's planar groups do not need them"
    )


def ensure_lie_learn() -> bool:
    """True if the real lie_learn imports; else install the stand-in and return False."""
    try:
        __import__(MODULE)
        return True
    except Exception as error:  # noqa: BLE001 - numpy ABI errors are ImportError or ValueError
        cause = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    for name in [n for n in sys.modules if n == "lie_learn" or n.startswith("lie_learn.")]:
        del sys.modules[name]  # a half-imported package would shadow the stand-in
    parts = MODULE.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        module = types.ModuleType(name, "eqdp's stand-in for lie_learn (SO(3) only)")
        module.__path__ = []  # a package, so the next level can be imported from it
        sys.modules[name] = module
        if depth > 1:
            setattr(sys.modules[".".join(parts[: depth - 1])], parts[depth - 1], module)
    sys.modules[MODULE].wigner_D_matrix = _so3_unavailable
    warnings.warn(
        f"lie_learn does not import here ({cause}); using eqdp's stand-in, which is enough "
        "for planar groups (SO(3) raises)",
        RuntimeWarning,
        stacklevel=2,
    )
    return False
