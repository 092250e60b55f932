"""escnn imports where lie_learn cannot (numpy 2): eqdp's guarded stand-in."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_the_real_lie_learn_is_used_where_it_imports() -> None:
    done = run("""
        from eqdp.models.equivariant.lie_learn_fallback import ensure_lie_learn
        print(ensure_lie_learn())
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_a_broken_lie_learn_gets_the_stand_in_and_planar_models_build() -> None:
    # Simulate numpy 2's failure: the compiled module raises on import.
    done = run("""
        import importlib.abc, sys, warnings
        class Broken(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.startswith("lie_learn"):
                    raise ImportError("numpy.core.multiarray failed to import")
        sys.meta_path.insert(0, Broken())
        from eqdp.models.equivariant.lie_learn_fallback import ensure_lie_learn
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert ensure_lie_learn() is False
        assert "stand-in" in str(caught[0].message), caught
        sys.meta_path.pop(0)
        import torch, eqdp
        model = eqdp.create_model("eq-nasnet-b0", 1, 2).eval()
        x = torch.randn(2, 1, 28, 28)
        print(float((model(x) - model(torch.rot90(x, 1, (2, 3)))).abs().max()))
        from lie_learn.representations.SO3.wigner_d import wigner_D_matrix
        try:
            wigner_D_matrix(1, 0, 0, 0)
        except RuntimeError as error:
            assert type(error).__name__ == "SO3Unavailable", error
            print("so3 refused")
    """)
    assert done.returncode == 0, done.stderr
    error = done.stdout.split()[0]
    assert float(error) < 1e-4
    assert "so3 refused" in done.stdout
