"""``python main.py evaluate``: parse metric options, run the evaluator, print the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.table import Table

from zoo.cli.options import complete_names, grouped_pairs, split_names
from zoo.cli.output import console, warn_line
from zoo.errors import UsageError


def command(
    checkpoint: Optional[str] = typer.Option(None, help="Run folder, checkpoint folder or model.safetensors \\[default: the newest run's last]."),
    dataset: Optional[str] = typer.Option(None, help="Dataset \\[default: the run's, else youtubers].", autocompletion=complete_names("dataset")),
    data: Optional[str] = typer.Option(None, help="Dataset root folder \\[default: the run's]."),
    split: str = typer.Option("test", help="The split to evaluate."),
    metrics: Optional[str] = typer.Option(None, help="Comma list \\[default: every registered metric; see `list metric`].", autocompletion=complete_names("metric")),
    out: Optional[Path] = typer.Option(None, help="Where metrics.json, report.md and pictures go \\[default: <run>/evaluation, else evaluation/]."),
    seed: int = typer.Option(0, help="Random seed of drawing and sampling."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    fid_weights: Optional[str] = typer.Option(None, help="Inception-v3 state dict (.pth or .safetensors) for fid; without it fid is skipped."),
    metric_arg: Optional[List[str]] = typer.Option(None, help="Metric argument NAME.KEY=VALUE, e.g. face_verification.threshold=0.5 (repeatable)."),
    batch_size: int = typer.Option(64, help="Clips per batch when drawing faces."),
    join: int = typer.Option(0, help="Join each identity's clips K at a time into one several-second input (one face each); 0: one clip per face."),
    fuser: Optional[bool] = typer.Option(None, "--fuser/--no-fuser", help="With --join: fuse the windows with the model's fuser \\[default when it has one] or their mean."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json instead of the table."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars or messages."),
    runs_dir: str = typer.Option("runs", help="Where to look for the newest run."),
) -> None:
    """Score a checkpoint's faces for a dataset split: dlib landmarks, identity accuracy, verification, retrieval, matching, distances."""
    names = split_names(metrics, "--metrics")
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if join == 1 or join < 0:
        raise UsageError("--join K joins K >= 2 clips per input (0 leaves clips alone)")
    raise typer.Exit(run(checkpoint=checkpoint, dataset=dataset, data=data, split=split, metrics=names,
                         out=out, seed=seed, device=device, metric_args=metric_args(metric_arg, fid_weights, names),
                         batch_size=batch_size, as_json=as_json, quiet=quiet, runs_dir=runs_dir,
                         join=join, use_fuser=fuser))


def metric_args(items, fid_weights: Optional[str], names: Optional[tuple]) -> dict:
    """``--metric-arg NAME.KEY=VALUE`` items grouped per metric, plus ``--fid-weights``."""
    grouped = grouped_pairs(items, "--metric-arg")
    if fid_weights is not None and (names is None or "fid" in names):
        grouped.setdefault("fid", {})["weights"] = fid_weights
    return grouped


def show_table(result) -> None:
    """The metrics table: generated, real faces, chance, better, model; then skips and errors."""
    from zoo.evaluate.report import format_number

    setup = result.setup
    # No vertical rules, edges or doubled padding: the six columns fit an 80-column terminal.
    inputs = (f"{setup['clips']} inputs of {setup['joined']} clips joined, fused by {setup['fusion']}"
              if setup.get("joined") else f"{setup.get('clips')} clips")
    table = Table(title=f"{setup.get('dataset')} / {setup.get('split')}: {inputs}, "
                        f"{setup.get('identities')} identities", title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    longest = max((len(row["metric"]) for row in result.table), default=6)
    table.add_column("metric", no_wrap=True, min_width=longest)  # names are never cut; the model folds
    for column, justify in (("generated", "right"), ("real faces", "right"), ("chance", "right"),
                            ("better", "left"), ("model", "left")):
        table.add_column(column, justify=justify, overflow="fold")
    for row in result.table:
        table.add_row(row["metric"], format_number(row["generated"]), format_number(row["real"]),
                      format_number(row["chance"]), row["better"], row.get("model", ""))
    console.print(table)
    for name, text in result.skipped.items():
        console.print(f"[yellow]skipped[/yellow] {name}: {text}", highlight=False)
    for name, text in result.errors.items():
        console.print(f"[red]failed[/red] {name}: {text}", highlight=False)
    classifier = setup.get("classifier")
    if classifier:
        state = "cached" if classifier.get("cached") else f"trained in {classifier.get('train_seconds')} s"
        held_out = result.metrics.get("identity_accuracy_real")
        accuracy = f", {held_out:.1%} right on the real {setup.get('split')} faces" if held_out is not None else ""
        console.print(f"face classifier: {classifier.get('arch')} ({state}{accuracy}) {classifier.get('cache')}",
                      highlight=False)
    if result.files:
        folder = str(result.files.get("report.md", "")).rsplit("/", 1)[0]
        console.print(f"wrote {', '.join(f.rsplit('/', 1)[-1] for f in result.files.values())} into {folder}/",
                      highlight=False)


def run(*, checkpoint, dataset, data, split, metrics, out, seed, device, metric_args, batch_size, as_json,
        quiet, runs_dir, join=0, use_fuser=None) -> int:
    """Evaluate and print; exit code 1 when a metric failed (skips are not failures)."""
    from zoo.cli.progress import ConsoleProgress
    from zoo.evaluate.evaluator import evaluate_checkpoint

    result = evaluate_checkpoint(checkpoint, dataset=dataset, root=data, split=split, metrics=metrics,
                                 metric_args=metric_args, out=out, seed=seed, device=device, runs_dir=runs_dir,
                                 batch_size=batch_size, progress=ConsoleProgress(silent=as_json or quiet),
                                 join=join, use_fuser=use_fuser)
    if as_json:
        from zoo.evaluate.report import jsonable

        print(json.dumps(jsonable(result.to_json()), indent=2, allow_nan=False, default=str))
    else:
        show_table(result)
    for name, text in result.errors.items():
        if as_json:
            warn_line(f"{name} failed: {text}")
    return 1 if result.errors else 0
