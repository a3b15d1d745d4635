"""Where the command line writes: the two consoles and single-line messages.

Tables and results go to stdout (``console``), progress and notes to stderr (``err_console``);
errors and warnings are one plain line each on stderr, never wrapped or marked up.

On a terminal the consoles are rich as usual: tables with borders, wrapped to the window. Into a
pipe or a file (``| grep``, ``> log``, a CI log) nothing is wrapped, whatever ``COLUMNS`` says:
a message is one line however long, and a table becomes tab-separated rows (a ``# title``
line, the header, then one row per line, every cell on one line). Rows rather than a wide
bordered table because scripts read them with ``grep``, ``cut -f1``, ``awk -F'\\t'`` or any TSV
reader, and no cell can be split by a border or padding; ``--json`` stays the stable format.
Colour follows rich's rules (``NO_COLOR`` turns it off, ``FORCE_COLOR`` on).
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text


class ZooConsole(Console):
    """A rich console that never wraps what it writes into a pipe or a file."""

    @property
    def piped(self) -> bool:
        """True when the stream is not a terminal (``FORCE_COLOR`` does not change this)."""
        isatty = getattr(self.file, "isatty", None)
        try:
            return not (isatty is not None and isatty())
        except ValueError:  # a closed stream
            return True

    def print(self, *objects, **kwargs) -> None:
        """Rich's ``print`` on a terminal; unwrapped text and tab-separated tables elsewhere."""
        if not self.piped:
            super().print(*objects, **kwargs)
        elif any(isinstance(item, Table) for item in objects):
            for item in objects:
                if isinstance(item, Table):
                    self._print_rows(item)
                else:
                    self.print(item, **kwargs)
        else:
            super().print(*objects, **{**kwargs, "soft_wrap": True})

    def _print_rows(self, table: Table) -> None:
        # written as they are: rich would expand the tabs into spaces and read markup in cells
        self.file.write("".join(f"{line}\n" for line in table_rows(table)))
        self.file.flush()


def _cell(value) -> str:
    """A cell's text on one line: markup and styles dropped, newlines and tabs folded."""
    if isinstance(value, Text):
        text = value.plain
    elif isinstance(value, str):
        text = Text.from_markup(value).plain
    else:
        text = str(value)
    return " ".join(text.split())


def table_rows(table: Table) -> list[str]:
    """A rich table as tab-separated lines: ``# title``, the header, then one line per row."""
    lines = [f"# {_cell(table.title)}"] if table.title else []
    if table.show_header:
        lines.append("\t".join(_cell(column.header) for column in table.columns))
    rows = zip(*(list(column.cells) for column in table.columns))
    return lines + ["\t".join(_cell(value) for value in row) for row in rows]


console = ZooConsole()
err_console = ZooConsole(stderr=True)


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
