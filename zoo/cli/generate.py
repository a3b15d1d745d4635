"""``python main.py generate``: faces from speech files (or a dataset split), with per-file lines,
a summary, or one JSON object."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from zoo.cli.options import complete_names, component_args
from zoo.cli.output import console
from zoo.errors import UsageError

SPLIT = "Dataset split"
SAMPLER = "Diffusion sampling"


def command(
    inputs: Optional[List[Path]] = typer.Argument(None, help="Audio files or folders (wav, flac, ogg, mp3 ...).", show_default=False),
    checkpoint: Optional[str] = typer.Option(None, help="Run folder, checkpoint folder or model.safetensors \\[default: the newest run's last]."),
    out: Path = typer.Option(Path("generated"), help="Where the faces go."),
    window_seconds: Optional[float] = typer.Option(None, help="Window length \\[default: the encoder's training window]."),
    hop_seconds: Optional[float] = typer.Option(None, help="Hop between windows \\[default: half a window]."),
    num: int = typer.Option(1, help="Faces per clip (needs noise or --stochastic)."),
    stochastic: bool = typer.Option(False, "--stochastic", help="Keep dropout on to draw varied faces."),
    interpolate: Optional[int] = typer.Option(None, help="With two clips: a strip of K faces from one voice to the other."),
    seed: int = typer.Option(0, help="Random seed: the same seed draws the same faces."),
    steps: Optional[int] = typer.Option(None, help="A diffusion generator's sampling steps \\[default: the model's].", rich_help_panel=SAMPLER),
    guidance: Optional[float] = typer.Option(None, help="A diffusion generator's classifier-free guidance scale (1: none) \\[default: the model's].", rich_help_panel=SAMPLER),
    vad: str = typer.Option("energy", help="Voice-activity detector that drops a long clip's silent windows: energy, "
                            "or webrtc (better under noise; pip install webrtcvad-wheels)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: outputs, windows, seconds, failures."),
    data: Optional[str] = typer.Option(None, help="Draw a dataset split instead of files: its root.", rich_help_panel=SPLIT),
    dataset: Optional[str] = typer.Option(None, help="The dataset of --data \\[default: youtubers].", rich_help_panel=SPLIT, autocompletion=complete_names("dataset")),
    split: str = typer.Option("test", help="The split to draw.", rich_help_panel=SPLIT),
    arg: Optional[List[str]] = typer.Option(None, help="Dataset argument dataset.KEY=VALUE \\[default: the run's own].", rich_help_panel=SPLIT),
    runs_dir: str = typer.Option("runs", help="Where to look for the newest run."),
) -> None:
    """Draw faces from speech files, or from a dataset split, with a trained checkpoint."""
    from zoo.generate import GenerateOptions

    sampling = {"steps": steps, "guidance": guidance}
    if data is not None or dataset is not None:
        if inputs:
            raise UsageError("give audio files or --data/--dataset, not both")
        dataset_args = component_args(arg).get("dataset_args")
        raise typer.Exit(run_split(checkpoint, dataset or "youtubers", data, split, out, device, as_json,
                                   runs_dir, dataset_args, sampling))
    if not inputs:
        raise UsageError("give one or more audio files or folders (or --data ROOT --dataset NAME)")
    options = GenerateOptions(window_seconds, hop_seconds, num, seed, stochastic, vad=vad)
    raise typer.Exit(run_files([str(i) for i in inputs], checkpoint, out, options, device, as_json,
                               interpolate, runs_dir, sampling))


def file_line(result) -> str:
    """One line per input: ``ok PATH: ...`` or ``failed PATH: reason`` (the path said once)."""
    if result.error:
        reason = result.error
        if reason.startswith(f"{result.input}: "):
            reason = reason[len(result.input) + 2:]
        return f"[red]failed[/red] {escape(result.input)}: {escape(reason)}"
    windows = f"{result.windows} windows" if result.windows > 1 else "1 window"
    note = f" ({result.note})" if result.note else ""
    return (f"[green]ok[/green] {escape(result.input)}: {result.seconds:.2f} s, {windows}{note} -> "
            f"{escape(result.outputs[0])}")


def run_files(inputs: list, checkpoint: Optional[str], out: Path, options, device: str, as_json: bool,
              interpolate_steps: Optional[int], runs_dir: str, sampling: Optional[dict] = None) -> int:
    """Draw faces for files and folders; exit code 1 when any file failed."""
    from zoo.cli.progress import ConsoleProgress
    from zoo.generate import generate_files, interpolate, report
    from zoo.model.pipeline import FacePipeline

    started = time.perf_counter()
    pipeline = FacePipeline.from_checkpoint(checkpoint, device, runs_dir)
    pipeline.set_sampling(**(sampling or {}))
    if interpolate_steps is not None:
        if len(inputs) != 2:
            raise UsageError("--interpolate takes exactly two clips")
        strip = interpolate(pipeline, Path(inputs[0]), Path(inputs[1]), interpolate_steps, out, options)
        payload = {"outputs": [str(strip)], "failures": [], "seconds": round(time.perf_counter() - started, 3)}
        print(json.dumps(payload)) if as_json else console.print(f"wrote {escape(str(strip))}")
        return 0

    def on_file(result) -> None:
        if not as_json:
            console.print(file_line(result), highlight=False, soft_wrap=True)  # one line, however long

    results = generate_files(pipeline, inputs, out, options, on_file, progress=ConsoleProgress(silent=as_json))
    summary = report(results, started)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        failed = len(summary["failures"])
        console.print(f"{len(results) - failed} of {len(results)} files drawn into {escape(str(out))}/"
                      + (f", [red]{failed} failed[/red]" if failed else ""), highlight=False)
    return 1 if summary["failures"] else 0


def run_split(checkpoint: Optional[str], dataset: str, data: Optional[str], split: str, out: Path,
              device: str, as_json: bool, runs_dir: str, dataset_args: Optional[dict] = None,
              sampling: Optional[dict] = None) -> int:
    """Draw every clip of a dataset split as ``<identity>_<k>.png``."""
    from zoo.cli.progress import ConsoleProgress
    from zoo.generate import generate_split

    result = generate_split(checkpoint, dataset=dataset, root=data, split=split, out=out, device=device,
                            runs_dir=runs_dir, dataset_args=dataset_args, progress=ConsoleProgress(silent=as_json),
                            sampling=sampling)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        console.print(f"wrote {result['written']} faces into {escape(result['folder'])}/ and "
                      f"{escape(str(result['grid']))}", highlight=False)
    return 0
