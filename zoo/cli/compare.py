"""``python main.py compare``: train several models on the same data and budget, evaluate them
alike, and rank them in a leaderboard with pictures."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from zoo.cli.options import complete_names, component_args, split_names
from zoo.cli.output import console
from zoo.errors import UsageError

TRAINING = "Training, the same for every model"


def command(
    entries: List[str] = typer.Argument(..., help="Presets (python main.py list preset), 'default', or run folders to rank as they are."),
    out: Path = typer.Option(Path("comparisons/latest"), help="Where runs, evaluations, leaderboard.md/.json, faces.png and curves.png go; re-running resumes it."),
    dataset: str = typer.Option("synthetic", help="Dataset every model trains and is evaluated on.", autocompletion=complete_names("dataset"), rich_help_panel=TRAINING),
    data: Optional[str] = typer.Option(None, help="Dataset root folder.", rich_help_panel=TRAINING),
    image_size: int = typer.Option(64, "--image-size", "--size", help="Face size, 64 or 128.", rich_help_panel=TRAINING),
    epochs: Optional[int] = typer.Option(None, help="Budget: epochs per model \\[default: 10].", rich_help_panel=TRAINING),
    steps: Optional[int] = typer.Option(None, help="Budget: iterations per model.", rich_help_panel=TRAINING),
    minutes: Optional[float] = typer.Option(None, help="Budget: minutes of training per model.", rich_help_panel=TRAINING),
    batch_size: Optional[int] = typer.Option(None, help="Pairs per iteration, for every model.", rich_help_panel=TRAINING),
    seed: int = typer.Option(0, help="Seed of training, drawing and evaluation.", rich_help_panel=TRAINING),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N.", rich_help_panel=TRAINING),
    devices: Optional[str] = typer.Option(None, help="Several devices, e.g. cuda:0,cuda:1: models train side by side.", rich_help_panel=TRAINING),
    nproc_per_model: int = typer.Option(1, help="torchrun processes per model.", rich_help_panel=TRAINING),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp", help="bf16 autocast for every model \\[default: each model's own: on where bf16 is native].", rich_help_panel=TRAINING),
    arg: Optional[List[str]] = typer.Option(None, help="Dataset argument dataset.KEY=VALUE for every model.", rich_help_panel=TRAINING),
    eval_every: int = typer.Option(5, help="Keep a checkpoint every N epochs and trace quality at each."),
    metrics: Optional[str] = typer.Option(None, help="Final metrics, comma list \\[default: every registered one].", autocompletion=complete_names("metric")),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Train and evaluate several models on the same data and budget, and rank them."""
    from zoo.cli.progress import ConsoleProgress
    from zoo.compare.plan import budget_from
    from zoo.compare.runner import CompareOptions, run_comparison

    if eval_every < 1 or nproc_per_model < 1:
        raise UsageError("--eval-every and --nproc-per-model must be at least 1")
    dataset_args = component_args(arg).get("dataset_args", {})
    common = ["--dataset", dataset, "--size", str(image_size), "--seed", str(seed)]
    common += ["--data", data] if data else []
    common += ["--batch-size", str(batch_size)] if batch_size else []
    common += [] if amp is None else ["--amp" if amp else "--no-amp"]
    common += [item for key, value in dataset_args.items() for item in ("--arg", f"dataset.{key}={value}")]
    options = CompareOptions(names=list(entries), out=out, budget=budget_from(epochs, steps, minutes), dataset=dataset,
                             data=data, common=common, seed=seed, device=device,
                             devices=list(split_names(devices, "--devices") or ()), nproc_per_model=nproc_per_model,
                             eval_every=eval_every, metrics=list(split_names(metrics, "--metrics") or ()) or None,
                             dataset_args=dataset_args)
    board = run_comparison(options, progress=ConsoleProgress(quiet=quiet))
    show(board)
    raise typer.Exit(1 if any(row.get("error") for row in board["rows"]) else 0)


def show(board: dict) -> None:
    """The leaderboard in the terminal, then where its files are."""
    from zoo.evaluate.report import format_number

    names = board["figures"]
    table = Table(title=f"leaderboard: {board['dataset']}, {board['budget']}, ranked by {board['ranked_by']}",
                  title_justify="left")
    for column in ("model", *names, "pairs/s", "train s"):
        table.add_column(column)
    for label, title in (("real", "real faces"), ("chance", "chance")):
        values = board["reference"][label]
        table.add_row(title, *(format_number(values.get(n)) for n in names), "", "", style="dim")
    for row in board["rows"]:
        if row.get("error"):
            table.add_row(row["model"], f"failed: {row['error']}", *[""] * (len(names) + 1), style="red")
            continue
        table.add_row(row["model"], *(format_number(row["metrics"].get(n)) for n in names),
                      format_number(row.get("pairs_per_s")), format_number(row.get("train_seconds")))
    console.print(table)
    console.print(f"wrote {', '.join(board['files'])} into {Path(board['files']['leaderboard.md']).parent}/",
                  highlight=False)
