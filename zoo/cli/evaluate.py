"""``python main.py evaluate``: parse metric options, run the evaluator, print the table."""

from __future__ import annotations

import json
from typing import Optional

from rich.table import Table

from zoo.cli.app import console, err_console, warn_line
from zoo.errors import UsageError


def split_names(text: Optional[str]) -> Optional[list]:
    """``"a, b,a"`` -> ``["a", "b"]``; None or blank -> None (every metric)."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--metrics needs at least one name, e.g. --metrics identity_accuracy,face_detection")
    return list(dict.fromkeys(names))


def metric_args(items, fid_weights: Optional[str], names: Optional[list]) -> dict:
    """``--metric-arg NAME.KEY=VALUE`` items grouped per metric, plus ``--fid-weights``."""
    from zoo.cli.train import parse_pairs

    grouped: dict = {}
    for item in items or []:
        name, dot, rest = item.partition(".")
        if not dot or not name.strip():
            raise UsageError(f"--metric-arg takes NAME.KEY=VALUE, e.g. fid.batch_size=16; not '{item}'")
        grouped.setdefault(name.strip(), {}).update(parse_pairs([rest], "--metric-arg"))
    if fid_weights is not None and (names is None or "fid" in names):
        grouped.setdefault("fid", {})["weights"] = fid_weights
    return grouped


def show_table(result) -> None:
    """The metrics table: generated, real faces, chance, better; then skips and errors."""
    from zoo.evaluate.report import format_number

    setup = result.setup
    table = Table(title=f"{setup.get('dataset')} / {setup.get('split')}: {setup.get('clips')} clips, "
                        f"{setup.get('identities')} identities", title_justify="left")
    for column, justify in (("metric", "left"), ("generated", "right"), ("real faces", "right"),
                            ("chance", "right"), ("better", "left")):
        table.add_column(column, justify=justify)
    for row in result.table:
        table.add_row(row["metric"], format_number(row["generated"]), format_number(row["real"]),
                      format_number(row["chance"]), row["better"])
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


def run(*, checkpoint, dataset, data, split, metrics, out, seed, device, fid_weights, metric_arg,
        batch_size, as_json, quiet, runs_dir) -> int:
    """Evaluate and print; exit code 1 when a metric failed (skips are not failures)."""
    from zoo.evaluate.evaluator import evaluate_checkpoint

    names = split_names(metrics)
    args = metric_args(metric_arg, fid_weights, names)
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")

    def on_message(text: str) -> None:
        if not as_json and not quiet:
            err_console.print(text, highlight=False, style="dim")

    result = evaluate_checkpoint(checkpoint, dataset=dataset, root=data, split=split, metrics=names,
                                 metric_args=args, out=out, seed=seed, device=device, runs_dir=runs_dir,
                                 batch_size=batch_size, progress=not (as_json or quiet), on_message=on_message)
    if as_json:
        from zoo.evaluate.report import jsonable

        print(json.dumps(jsonable(result.to_json()), indent=2, allow_nan=False, default=str))
    else:
        show_table(result)
    for name, text in result.errors.items():
        if as_json:
            warn_line(f"{name} failed: {text}")
    return 1 if result.errors else 0
