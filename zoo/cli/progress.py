"""Progress on the command line: the core's ``Progress`` and ``TrainingCallbacks`` shown as rich
bars on a terminal, and as plain periodic lines when stderr is piped or ``--quiet`` is given.

The core reports through these callbacks and never draws anything itself (see
``zoo.callbacks``); this is the only module that builds progress bars.
"""

from __future__ import annotations

import time
from typing import Optional

from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichBars, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from zoo.callbacks import Progress, Task
from zoo.cli.output import console, err_console, note_line
from zoo.train.callbacks import TrainingCallbacks

SHOWN_LOSSES = ("d_loss", "g_loss", "d_real", "d_fake")
PLAIN_EVERY_SECONDS = 10.0  # how often a piped run reports a long task's count


def _fields_text(fields: dict) -> str:
    return "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())


class _BarTask(Task):
    """One rich bar."""

    def __init__(self, bars: RichBars, label: str, total: Optional[int]):
        self.bars = bars
        self.id = bars.add_task(label, total=total, fields="")

    def update(self, done: int, total: Optional[int] = None, **fields) -> None:
        extra = {"total": total} if total is not None else {}
        self.bars.update(self.id, completed=done, fields=_fields_text(fields), **extra)

    def close(self) -> None:
        self.bars.remove_task(self.id)


class _LineTask(Task):
    """A task reported as a plain line now and then, and once when it ends."""

    def __init__(self, label: str, total: Optional[int]):
        self.label, self.total, self.done, self.fields = label, total, 0, {}
        self.started = self.reported = time.perf_counter()
        note_line(f"{label} ...")

    def update(self, done: int, total: Optional[int] = None, **fields) -> None:
        self.done, self.total = done, total if total is not None else self.total
        self.fields = fields
        if time.perf_counter() - self.reported >= PLAIN_EVERY_SECONDS:
            self.reported = time.perf_counter()
            note_line(f"{self.label}: {self._count()}")

    def _count(self) -> str:
        of = f"/{self.total}" if self.total else ""
        extra = f"  {_fields_text(self.fields)}" if self.fields else ""
        return f"{self.done}{of}{extra}"

    def close(self) -> None:
        note_line(f"{self.label}: {self._count()} in {time.perf_counter() - self.started:.1f} s")


class ConsoleProgress(Progress):
    """Rich bars on a terminal, plain lines otherwise, nothing at all when ``silent``."""

    def __init__(self, *, quiet: bool = False, silent: bool = False):
        self.silent = silent
        self.plain = quiet or err_console.piped
        self._bars: Optional[RichBars] = None
        self._open = 0

    def task(self, label: str, total: Optional[int] = None) -> Task:
        if self.silent:
            return Task()
        if self.plain:
            return _LineTask(label, total)
        return _ClosingTask(self, self._start_bars(), label, total)

    def _start_bars(self) -> RichBars:
        if self._bars is None:
            self._bars = RichBars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[fields]}"),
                                  console=err_console, transient=True)
            self._bars.start()
        self._open += 1
        return self._bars

    def _task_closed(self) -> None:
        self._open -= 1
        if self._open == 0 and self._bars is not None:
            self._bars.stop()
            self._bars = None

    def message(self, text: str) -> None:
        if self.silent:
            return
        if self._bars is not None:
            self._bars.console.print(text, style="dim", highlight=False)
        else:
            note_line(text)


class _ClosingTask(_BarTask):
    """A bar that tells its ``ConsoleProgress`` when it closes, so the last one stops the display."""

    def __init__(self, owner: ConsoleProgress, bars: RichBars, label: str, total: Optional[int]):
        super().__init__(bars, label, total)
        self.owner = owner

    def close(self) -> None:
        super().close()
        self.owner._task_closed()


def _losses_text(scalars: dict) -> str:
    return "  ".join(f"{k} {scalars[k]:.3f}" for k in SHOWN_LOSSES if k in scalars)


class TrainingProgress(ConsoleProgress, TrainingCallbacks):
    """Epoch, step, pairs/s, ETA and live losses; plain log lines when quiet or piped."""

    def __init__(self, quiet: bool = False):
        super().__init__(quiet=quiet)
        self.bar: Optional[RichBars] = None
        self.bar_task = None
        self.started = time.perf_counter()
        self.epochs = 0

    def on_start(self, info: dict) -> None:
        self.epochs = info["epochs"]
        self.started = time.perf_counter()
        console.print(f"run folder: [bold]{info['run_dir']}[/bold]   device: {info['device']}   "
                      f"{info['steps_per_epoch']} steps per epoch, {info['total_steps']} steps in all")
        if self.plain:
            return
        self.bar = RichBars(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[rate]:.1f} pairs/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
            console=err_console, transient=False,
        )
        self.bar.start()
        self.bar_task = self.bar.add_task("train", total=info["total_steps"], completed=info["start_step"],
                                          epoch=info["start_epoch"] + 1, epochs=info["epochs"], rate=0.0,
                                          losses="")

    def on_step(self, step: int, epoch: int, pairs: int) -> None:
        if self.bar is None:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)  # pairs count from the epoch's start
        self.bar.update(self.bar_task, completed=step, epoch=epoch + 1, rate=pairs / elapsed)

    def on_log(self, step: int, epoch: int, scalars: dict) -> None:
        if self.bar is not None:
            self.bar.update(self.bar_task, losses=_losses_text(scalars))
        else:
            console.print(f"step {step}  epoch {epoch + 1}/{self.epochs}  {_losses_text(scalars)}", highlight=False)

    def on_epoch(self, record: dict) -> None:
        line = f"epoch {record['epoch'] + 1}: {_losses_text(record)}  {record['pairs_per_s']:.1f} pairs/s"
        if self.bar is not None:
            self.bar.console.print(line, highlight=False)
            self.started = time.perf_counter()
        else:
            console.print(line, highlight=False)

    def message(self, text: str) -> None:
        target = self.bar.console if self.bar is not None else console
        target.print(text, highlight=False)

    def close(self) -> None:
        """Stop the live bar (at the end of training, however it ended)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
