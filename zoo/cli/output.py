"""Where the command line writes: the two consoles and single-line messages.

Tables and results go to stdout (``console``), progress and notes to stderr (``err_console``);
errors and warnings are one plain line each on stderr, never wrapped or marked up.
"""

from __future__ import annotations

import sys

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def _stderr_line(prefix: str, message: str) -> None:
    """One plain line on stderr: never wrapped, never marked up, newlines folded."""
    print(f"{prefix}: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def fail_line(message: str) -> None:
    """Write one ``error: ...`` line on stderr."""
    _stderr_line("error", message)


def warn_line(message: str) -> None:
    """Write one ``warning: ...`` line on stderr."""
    _stderr_line("warning", message)


def note_line(message: str) -> None:
    """Write one dim note on stderr (what long work is doing)."""
    err_console.print(message, style="dim", highlight=False)
