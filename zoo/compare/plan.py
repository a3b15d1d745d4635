"""What a comparison trains: its entries, the shared budget, and each entry's exact command.

An entry is a registered preset, ``default`` (the project's default model), or a run folder
that already exists (ranked as it is, never retrained). Every trained entry gets the same data,
split, seed and budget, and its training is one ``python main.py train`` command in a process of
its own: a failure stays that entry's, the command is what the leaderboard prints to reproduce
it, and on several devices the processes run side by side.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from zoo.errors import UsageError

DEFAULT_ENTRY = "default"
BUDGETS = ("epochs", "steps", "minutes")


@dataclass(frozen=True)
class Budget:
    """How long every model trains: ``kind`` is epochs, steps or minutes."""

    kind: str
    amount: float

    def flags(self) -> list[str]:
        """The ``train`` options that set this budget."""
        if self.kind == "epochs":
            return ["--epochs", str(int(self.amount))]
        limit = "--max-steps" if self.kind == "steps" else "--max-minutes"
        value = str(int(self.amount)) if self.kind == "steps" else f"{self.amount:g}"
        return [limit, value, "--epochs", "100000"]


@dataclass
class Entry:
    """One model of the comparison."""

    name: str  # the label in the tables and pictures
    preset: Optional[str] = None  # the preset it trains (None: the default model)
    run_dir: Optional[Path] = None  # where its run is (or will be)
    existing: bool = False  # a run folder given by the user: evaluated, never trained
    command: list = field(default_factory=list)


def budget_from(epochs: Optional[int], steps: Optional[int], minutes: Optional[float]) -> Budget:
    """The one budget given (epochs by default: 10)."""
    given = [(k, v) for k, v in zip(BUDGETS, (epochs, steps, minutes)) if v is not None]
    if len(given) > 1:
        raise UsageError("give one budget: --epochs, --steps or --minutes")
    kind, amount = given[0] if given else ("epochs", 10)
    if amount <= 0:
        raise UsageError(f"--{kind} must be positive, not {amount}")
    return Budget(kind, float(amount))


def entries_from(names: list[str], runs_dir: Path) -> list[Entry]:
    """Each name as an entry: an existing run folder, ``default``, or a registered preset."""
    import registry

    entries, seen = [], set()
    for name in names:
        path = Path(name)
        if (path / "config.json").is_file():
            label = path.name
            entry = Entry(label, run_dir=path, existing=True)
        elif name == DEFAULT_ENTRY:
            entry = Entry(name, run_dir=runs_dir / name)
        else:
            registry.get("preset", name)  # unknown: a usage error naming the presets
            entry = Entry(name, preset=name, run_dir=runs_dir / name)
        if entry.name in seen:
            raise UsageError(f"'{entry.name}' is named twice")
        seen.add(entry.name)
        entries.append(entry)
    if not entries:
        raise UsageError("name at least one preset, 'default' or run folder to compare")
    return entries


def train_command(entry: Entry, budget: Budget, common: list[str], *, eval_every: int,
                  resume: bool) -> list[str]:
    """The ``python main.py train`` command that trains ``entry`` (or continues it)."""
    base = [sys.executable, "main.py", "train"]
    if resume:
        return base + ["--resume", str(entry.run_dir), *budget.flags(), "--quiet"]
    preset = ["--preset", entry.preset] if entry.preset else []
    return base + [*preset, *common, *budget.flags(), "--checkpoint-every", str(eval_every),
                   "--runs-dir", str(entry.run_dir.parent), "--save-path", entry.run_dir.name, "--quiet"]


def shown(command: list[str]) -> str:
    """A command as a user would type it (``python main.py ...``)."""
    return shlex.join(["python", *command[1:]])
