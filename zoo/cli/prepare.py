"""What ``prepare`` shows: a rich progress bar over videos and the summary table. No logic."""

from __future__ import annotations

from contextlib import contextmanager

from rich.table import Table
from rich.text import Text

from zoo.cli.app import console
from zoo.prepare.runner import PrepareProgress, PrepareSummary


class RichPrepareProgress(PrepareProgress):
    """A bar over videos, and one over the seconds of the video being read."""

    def __init__(self, progress):
        self._progress = progress
        self._videos = None
        self._current = None

    def start(self, total_videos: int) -> None:
        """Add the bar over videos."""
        self._videos = self._progress.add_task("videos", total=total_videos)

    def video_started(self, key: str, duration: float) -> None:
        """Add a bar over the seconds of ``key``."""
        self._current = self._progress.add_task(f"  {key}", total=duration or None)

    def video_advanced(self, seconds: float) -> None:
        """Move the current video's bar to ``seconds``."""
        if self._current is not None:
            self._progress.update(self._current, completed=seconds)

    def video_finished(self, key: str, outcome: str) -> None:
        """Drop the video's bar and advance the bar over videos (skips are listed at the end)."""
        if self._current is not None:
            self._progress.remove_task(self._current)
            self._current = None
        self._progress.advance(self._videos)


@contextmanager
def prepare_progress(quiet: bool = False):
    """A ``PrepareProgress`` that draws rich bars on the console (or nothing when ``quiet``)."""
    if quiet:
        yield PrepareProgress()
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield RichPrepareProgress(progress)


def show_summary(summary: PrepareSummary) -> None:
    """Print the summary of a prepare run as one table."""
    table = Table(title=f"prepare -> {summary.out}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("videos found", summary.videos_found),
        ("videos prepared now", summary.videos_prepared),
        ("videos already done (skipped)", summary.videos_already_done),
        ("videos skipped (unusable)", len(summary.failures)),
        ("frames seen", summary.frames_seen),
        ("faces kept", summary.faces_kept),
    ]
    rows += [(f"frames skipped: {reason}", n) for reason, n in sorted(summary.frames_skipped.items())]
    rows += [("pairs written", summary.pairs_written)]
    rows += [(f"{split}: videos / pairs in total", f"{summary.total_videos.get(split, 0)} / "
              f"{summary.total_pairs.get(split, 0)}") for split in ("train", "test")]
    rows += [("time", f"{summary.seconds:.1f} s for {summary.video_seconds:.0f} s of video")]
    for what, count in rows:
        table.add_row(what, str(count))
    console.print(table)
    for key, reason in summary.failures:
        console.print(Text(f"skipped {key}: {reason}", style="yellow"))
