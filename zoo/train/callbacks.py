"""What the training loop reports, as stylegan2-ada's loop takes progress callbacks instead of
importing a user interface: the CLI, tests and benchmarks drive it alike."""

from __future__ import annotations

from zoo.callbacks import Progress


class TrainingCallbacks(Progress):
    """The loop's reports; override any method. The defaults do nothing.

    It is also a ``Progress``: work inside a run (building the data cache) reports through the
    same object, and ``message`` carries the loop's notes (checkpoints, warnings).
    """

    def on_start(self, info: dict) -> None:
        """Training is about to begin: run folder, steps per epoch, total steps, start step."""

    def on_step(self, step: int, epoch: int, pairs: int) -> None:
        """One iteration finished (called every step: keep it cheap)."""

    def on_log(self, step: int, epoch: int, scalars: dict) -> None:
        """Mean losses since the last log interval, read from the device."""

    def on_epoch(self, record: dict) -> None:
        """An epoch ended; ``record`` is the line written to stats.jsonl."""
