"""How long work reports itself: one callbacks protocol for the whole core.

Core functions that take a while (building a cache entry, drawing faces for a split, training
the face classifier, preparing videos, training) accept a ``Progress`` and report through it;
they never build progress bars or print. The defaults here do nothing, so a caller that does not
care passes nothing. The command line (``zoo.cli.progress``) supplies implementations that show
rich bars on a terminal and plain lines elsewhere; tests supply recording ones.
"""

from __future__ import annotations

from typing import Optional


class Task:
    """One piece of long work with a count of units done; the default ignores every report."""

    def update(self, done: int, total: Optional[int] = None, **fields) -> None:
        """``done`` units of ``total`` (None: unknown) are finished; ``fields`` are live figures
        worth showing beside the count (a loss, a rate)."""

    def close(self) -> None:
        """The work is over (finished, skipped or failed): remove its bar."""

    def __enter__(self) -> "Task":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Progress:
    """The reporting side of long work. Override ``task`` and ``message``; defaults are silent."""

    def task(self, label: str, total: Optional[int] = None) -> Task:
        """Start reporting a piece of work named ``label`` of ``total`` units (None: unknown).

        Use it as a context manager so it is closed even when the work fails. Tasks may nest
        (videos, then the seconds of the video being read).
        """
        return Task()

    def message(self, text: str) -> None:
        """Something worth telling the user while the work goes on (a note, a warning)."""


SILENT = Progress()
