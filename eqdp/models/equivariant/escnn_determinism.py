"""escnn's numerical change-of-basis matrices, made the same in every install.

escnn computes some change-of-basis matrices numerically (restrictions of irreps,
Clebsch-Gordan decompositions): null spaces through scikit-learn's randomized SVD,
drawing from numpy's global random state, and it caches the results on disk inside
its own install folder (joblib, ``escnn/group/_cache``). A null space of dimension
above one has no preferred basis, so for the dihedral groups the steerable basis
came out as a random rotation, chosen by whichever process first filled that
install's cache. The same seed then gave other initial weights (and other training
runs) in another checkout, a fresh clone or CI: the cause of the first-wave
eq-nasnet (now eq-resnet-d4) records that did not reproduce. Cyclic groups (C_N,
the eq-nasnet family) were never affected: their bases were identical across installs.

``make_deterministic`` fixes the SVD's random state and replaces escnn's disk caches
by per-process memos, so every install computes the same bases from the same
inputs. It must run before escnn computes anything; ``basis._import_escnn`` calls it.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

SVD_RANDOM_STATE = 0
_applied = False


def make_deterministic() -> None:
    """Patch the imported escnn modules (idempotent)."""
    global _applied
    if _applied:
        return
    import escnn.group._numerical as numerical
    from joblib.memory import MemorizedFunc

    if numerical.randomized_svd is not None:
        numerical.randomized_svd = _seeded(numerical.randomized_svd)
    for name, module in list(sys.modules.items()):
        if name == "escnn" or name.startswith("escnn."):
            for attribute, value in list(vars(module).items()):
                if isinstance(value, MemorizedFunc):
                    setattr(module, attribute, _memoized(value.func))
    _applied = True


def _seeded(randomized_svd: Callable[..., Any]) -> Callable[..., Any]:
    def fixed(*args: Any, **kwargs: Any) -> Any:
        kwargs["random_state"] = SVD_RANDOM_STATE
        return randomized_svd(*args, **kwargs)

    return fixed


def _memoized(function: Callable[..., Any]) -> Callable[..., Any]:
    """In-process memo instead of escnn's on-disk cache (whose entries may have been
    computed from another random state by an earlier process of this install)."""
    results: dict[Any, Any] = {}

    def memo(*args: Any, **kwargs: Any) -> Any:
        try:
            key = (args, tuple(sorted(kwargs.items())))
            hash(key)
        except TypeError:
            return function(*args, **kwargs)
        if key not in results:
            results[key] = function(*args, **kwargs)
        return copy.deepcopy(results[key])  # a fresh copy per call, as joblib's cache gave

    memo.__wrapped__ = function  # type: ignore[attr-defined]
    return memo
