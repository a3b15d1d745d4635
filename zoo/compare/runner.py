"""Run a comparison: train every entry (resuming what an interrupted comparison left), evaluate
every model with the same metrics and seed, trace quality against training time, and report.

Nothing here prints: progress goes through a ``zoo.callbacks.Progress``, results into files and
the returned leaderboard (``zoo.cli.compare`` shows it).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from zoo.callbacks import SILENT, Progress
from zoo.compare.plan import Budget, Entry, entries_from, shown, train_command
from zoo.errors import ZooError, last_line
from zoo.files import write_json

DONE_FILE = "compare-done.json"  # written into a run folder once its budget is trained
CURVE_METRICS = ("identity_accuracy",)  # fast enough to trace every few epochs


@dataclass
class CompareOptions:
    """Everything a comparison needs."""

    names: list
    out: Path
    budget: Budget
    dataset: str = "synthetic"
    data: Optional[str] = None
    common: list = field(default_factory=list)  # train options shared by every model
    seed: int = 0
    device: str = "auto"
    devices: list = field(default_factory=list)  # several: one training process per device
    nproc_per_model: int = 1
    eval_every: int = 5
    metrics: Optional[list] = None  # the final metrics (default: every registered one)
    curve_metrics: tuple = CURVE_METRICS
    curve_clips: int = 200
    dataset_args: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What training one entry gave."""

    entry: Entry
    error: Optional[str] = None
    wall_seconds: float = 0.0
    reused: bool = False


def _is_done(entry: Entry, budget: Budget) -> bool:
    marker = entry.run_dir / DONE_FILE
    return marker.is_file() and json.loads(marker.read_text()).get("budget") == [budget.kind, budget.amount]


def _train(entry: Entry, options: CompareOptions, device: str, progress: Progress = SILENT) -> Outcome:
    """Train one entry in its own process (or reuse or resume it); never raises for its failure."""
    if entry.existing or _is_done(entry, options.budget):
        progress.message(f"reusing {entry.name} ({entry.run_dir})")
        return Outcome(entry, reused=True)
    resume = (entry.run_dir / "config.json").is_file()
    progress.message(f"{'resuming' if resume else 'training'} {entry.name}")
    common = [*options.common, "--device", device]
    entry.command = train_command(entry, options.budget, common, eval_every=options.eval_every, resume=resume)
    command = list(entry.command)
    if options.nproc_per_model > 1:
        command = [command[0], "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                   str(options.nproc_per_model), *command[1:]]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    outcome = Outcome(entry, wall_seconds=time.perf_counter() - started)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        outcome.error = lines[-1] if lines else f"train exited with {result.returncode}"
        return outcome
    write_json(entry.run_dir / DONE_FILE, {"budget": [options.budget.kind, options.budget.amount],
                                           "command": shown(entry.command),
                                           "wall_seconds": round(outcome.wall_seconds, 1)})
    return outcome


def train_all(entries: list[Entry], options: CompareOptions, progress: Progress) -> list[Outcome]:
    """Every entry trained: one after another, or side by side on several devices."""
    devices = options.devices or [options.device]
    with progress.task("training", len(entries)) as task:
        if len(devices) == 1:
            outcomes = []
            for done, entry in enumerate(entries, start=1):
                outcomes.append(_train(entry, options, devices[0], progress))
                task.update(done)
            return outcomes
        with ThreadPoolExecutor(max_workers=len(devices)) as pool:
            futures = [pool.submit(_train, entry, options, devices[i % len(devices)], progress)
                       for i, entry in enumerate(entries)]
            return [future.result() for future in futures]


def run_comparison(options: CompareOptions, progress: Progress = SILENT) -> dict:
    """Train, evaluate and report; returns the leaderboard (also written as JSON and Markdown)."""
    from zoo.compare.evaluation import evaluate_entry
    from zoo.compare.report import write_report

    options.out.mkdir(parents=True, exist_ok=True)
    entries = entries_from(options.names, options.out / "runs")
    outcomes = train_all(entries, options, progress)
    rows = []
    for outcome in outcomes:
        row = {"model": outcome.entry.name, "error": outcome.error}
        if outcome.error is None:
            try:
                row.update(evaluate_entry(outcome, options, progress))
            except ZooError as exc:
                row["error"] = last_line(exc)
        rows.append(row)
    return write_report(rows, entries, options)
