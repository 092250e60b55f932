"""The Typer app, its consoles and the error guard that every eqdp command shares."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable

import typer
import typer.rich_utils
from rich.console import Console
from rich.markup import escape

from eqdp.errors import EqdpError

app = typer.Typer(
    name="eqdp",
    help="Benchmarks for equivariant CNNs on MedMNIST: standard, DP-SGD, low-data, robustness.\n\n"
    "Examples:\n\n"
    "  eqdp run standard --model eq-nasnet --dataset breastmnist --epochs 10\n\n"
    "  eqdp leaderboard --benchmark standard --dataset breastmnist\n\n"
    "  eqdp suite benchmarks/standard-cpu.toml --dry-run\n\n"
    "  eqdp list models",
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Piped output (files, CI logs) gets wide tables instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(width=_WIDTH)
errors = Console(stderr=True, width=_WIDTH)


def _show_version(value: bool) -> None:
    if value:
        import eqdp

        console.print(f"eqdp {eqdp.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False,
        "--version",
        help="Show eqdp's version and exit.",
        callback=_show_version,
        is_eager=True,
    ),
) -> None:
    """Benchmarks for equivariant CNNs on MedMNIST."""


def one_line_summaries(typer_app: typer.Typer) -> None:
    """Each command's summary in ``--help`` is its docstring's first paragraph as one line.

    Rich keeps a docstring's hard line breaks, so a summary written over several source
    lines printed raggedly in the command list (plot, runs, reproduce).
    """
    for command in typer_app.registered_commands:
        doc = command.help or (command.callback.__doc__ if command.callback else None)
        if command.short_help is None and doc:
            command.short_help = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _one_line_usage_error(error: Exception) -> None:
    """Typer's usage errors (an unknown option, a missing argument, a value its type
    refuses) as the same one ``error:`` line as every other eqdp error, not a boxed panel."""
    if type(error).__name__ == "NoArgsIsHelpError":  # the help was shown: nothing to add
        return
    context = getattr(error, "ctx", None)
    hint = f" (see `{context.command_path} --help`)" if context is not None else ""
    message = " ".join(error.format_message().split()).rstrip(".")  # type: ignore[attr-defined]
    errors.print(f"[bold red]error:[/] {escape(message)}{hint}", highlight=False, soft_wrap=True)


# Typer looks the formatter up on its module at each error, so this is where it is replaced.
typer.rich_utils.rich_format_error = _one_line_usage_error


def guarded(function: Callable[[], None]) -> None:
    """Run a command body; EqdpError becomes a one-line error and exit code 2."""
    try:
        function()
    except EqdpError as error:
        raise fail(str(error)) from None
