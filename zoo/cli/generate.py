"""``python main.py generate``: progress, per-file lines, a summary or one JSON object."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from zoo.cli.app import console, err_console
from zoo.errors import UsageError
from zoo.generate import GenerateOptions, FileResult, generate_files, generate_split, interpolate, report
from zoo.model.pipeline import FacePipeline


def _file_line(result: FileResult) -> str:
    if result.error:
        return f"[red]failed[/red] {result.input}: {result.error}"
    windows = f"{result.windows} windows" if result.windows > 1 else "1 window"
    note = f" ({result.note})" if result.note else ""
    return f"[green]ok[/green] {result.input}: {result.seconds:.2f} s, {windows}{note} -> {result.outputs[0]}"


def run_files(inputs: list, checkpoint: Optional[str], out: Path, options: GenerateOptions,
              device: str, as_json: bool, interpolate_steps: Optional[int], runs_dir: str) -> int:
    """Draw faces for files and folders; exit code 1 when any file failed."""
    started = time.perf_counter()
    pipeline = FacePipeline.from_checkpoint(checkpoint, device, runs_dir)
    if interpolate_steps is not None:
        if len(inputs) != 2:
            raise UsageError("--interpolate takes exactly two clips")
        strip = interpolate(pipeline, Path(inputs[0]), Path(inputs[1]), interpolate_steps, out, options)
        payload = {"outputs": [str(strip)], "failures": [], "seconds": round(time.perf_counter() - started, 3)}
        print(json.dumps(payload)) if as_json else console.print(f"wrote {strip}")
        return 0
    with Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task("files", total=None)

        def on_file(result: FileResult) -> None:
            bar.advance(task)
            if not as_json:
                console.print(_file_line(result), highlight=False)

        results = generate_files(pipeline, inputs, out, options, on_file)
    summary = report(results, started)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        failed = len(summary["failures"])
        console.print(f"{len(results) - failed} of {len(results)} files drawn into {out}/"
                      + (f", [red]{failed} failed[/red]" if failed else ""), highlight=False)
    return 1 if summary["failures"] else 0


def run_split(checkpoint: Optional[str], dataset: str, data: Optional[str], split: str, out: Path,
              device: str, as_json: bool, runs_dir: str, dataset_args: Optional[dict] = None) -> int:
    """Draw every clip of a dataset split as ``<identity>_<k>.png``."""
    with Progress(TextColumn(f"drawing the {split} split"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task("clips", total=None)
        result = generate_split(checkpoint, dataset=dataset, root=data, split=split, out=out, device=device,
                                runs_dir=runs_dir, dataset_args=dataset_args, progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        console.print(f"wrote {result['written']} faces into {result['folder']}/ and {result['grid']}")
    return 0
