"""eqdp audit-cap: how strong a one-run privacy audit can be, before running one."""

from __future__ import annotations

from typing import Annotated

import typer

from eqdp.cli.common import app, console, guarded


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


@app.command("audit-cap", rich_help_panel="Privacy")
def audit_cap_command(
    canaries: Annotated[
        str, typer.Option("--canaries", "-m", help="Canary counts m, comma-separated.")
    ] = "1000,2000,5000,10000,20000,50000",
    guesses: Annotated[
        str, typer.Option("--guesses", "-k", help="Guess counts k, comma-separated.")
    ] = "100,200,500,1000,2000,5000,10000,20000",
    delta: Annotated[float, typer.Option(help="The audited run's delta.")] = 1e-5,
    confidence: Annotated[float, typer.Option(help="Confidence of the lower bound.")] = 0.95,
) -> None:
    """The largest epsilon lower bound a one-run audit (dp --audit) can show: every guess
    right (Steinke et al. 2023). A claimed epsilon above the cap cannot be refuted."""

    def body() -> None:
        from eqdp.privacy.audit import cap_table

        ms, ks = _counts(canaries), _counts(guesses)
        rows = cap_table(ms, ks, delta, confidence)
        console.print(
            f"epsilon lower bound with every guess right, delta={delta:g}, "
            f"{confidence:.0%} confidence; rows m canaries, columns k guesses"
        )
        console.print("m \\ k".rjust(8) + "".join(f"{k:>8d}" for k in ks))
        for m, row in zip(ms, rows, strict=True):
            cells = "".join(f"{c:8.2f}" if c is not None else "       -" for c in row)
            console.print(f"{m:>8d}{cells}")

    guarded(body)
