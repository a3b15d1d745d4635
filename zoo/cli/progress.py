"""Progress for long work: a live rich bar, or plain log lines in quiet mode."""

from __future__ import annotations

import time

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from zoo.cli.app import console, err_console
from zoo.train.loop import TrainingCallbacks

SHOWN_LOSSES = ("d_loss", "g_loss", "d_real", "d_fake")


def _losses_text(scalars: dict) -> str:
    return "  ".join(f"{k} {scalars[k]:.3f}" for k in SHOWN_LOSSES if k in scalars)


class TrainingProgress(TrainingCallbacks):
    """Shows epoch, step, pairs/s, ETA and live losses; ``quiet`` prints lines for logs instead."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.progress = None
        self.task = None
        self.started = time.perf_counter()
        self.start_step = 0
        self.epochs = 0

    def on_start(self, info: dict) -> None:
        self.start_step = info["start_step"]
        self.epochs = info["epochs"]
        self.started = time.perf_counter()
        console.print(f"run folder: [bold]{info['run_dir']}[/bold]   device: {info['device']}   "
                      f"{info['steps_per_epoch']} steps per epoch, {info['total_steps']} steps in all")
        if self.quiet:
            return
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[rate]:.1f} pairs/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
            console=err_console, transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=info["total_steps"], completed=info["start_step"],
                                           epoch=info["start_epoch"] + 1, epochs=info["epochs"], rate=0.0,
                                           losses="")

    def on_step(self, step: int, epoch: int, pairs: int) -> None:
        if self.progress is None:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)  # pairs count from the epoch's start
        self.progress.update(self.task, completed=step, epoch=epoch + 1, rate=pairs / elapsed)

    def on_log(self, step: int, epoch: int, scalars: dict) -> None:
        if self.progress is not None:
            self.progress.update(self.task, losses=_losses_text(scalars))
        else:
            console.print(f"step {step}  epoch {epoch + 1}/{self.epochs}  {_losses_text(scalars)}", highlight=False)

    def on_epoch(self, record: dict) -> None:
        line = (f"epoch {record['epoch'] + 1}: {_losses_text(record)}  "
                f"{record['pairs_per_s']:.1f} pairs/s")
        if self.progress is not None:
            self.progress.console.print(line, highlight=False)
            self.started = time.perf_counter()
        else:
            console.print(line, highlight=False)

    def on_message(self, text: str) -> None:
        target = self.progress.console if self.progress is not None else console
        target.print(text, highlight=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
