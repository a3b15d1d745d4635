"""The CLI boundary: where a ``ZooError`` becomes one line on stderr and an exit code.

``ZooTyper.command`` wraps every command so that no command has to remember to do this, and
the core never prints errors or calls ``sys.exit`` itself.
"""

from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console

from zoo.errors import ZooError

console = Console()
err_console = Console(stderr=True)

INTERRUPTED_EXIT_CODE = 130


def _stderr_line(prefix: str, message: str) -> None:
    """One plain line on stderr: never wrapped, never marked up, newlines folded."""
    print(f"{prefix}: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def fail_line(message: str) -> None:
    """Write one ``error: ...`` line on stderr."""
    _stderr_line("error", message)


def warn_line(message: str) -> None:
    """Write one ``warning: ...`` line on stderr."""
    _stderr_line("warning", message)


def guarded(func):
    """Run a command; turn ``ZooError`` and Ctrl-C into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ZooError as exc:
            fail_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            fail_line("interrupted")
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None

    return wrapper


class ZooTyper(typer.Typer):
    """A Typer app whose commands all pass through ``guarded``."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(func):
            register(guarded(func))
            return func

        return decorator
