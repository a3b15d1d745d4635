"""``python main.py train``: resolve options, show them, train with a progress bar, handle Ctrl-C.

The command in main.py only collects options; everything it does lives here.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager

from rich.table import Table

from zoo.cli.app import console, warn_line
from zoo.train.config import PRESETS, TrainConfig, for_resume, resolve

INTERRUPTED = 130


def parse_pairs(items, what: str) -> dict:
    """``["width=32", "depth=4"]`` -> ``{"width": 32, "depth": 4}`` (numbers become numbers)."""
    from zoo.errors import UsageError

    pairs = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} takes KEY=VALUE, not '{item}'")
        pairs[key.strip()] = _number_or_text(raw.strip())
    return pairs


def _number_or_text(raw: str):
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def component_args(items) -> dict:
    """``--arg encoder.width=32`` items grouped per component kind."""
    from zoo.errors import UsageError

    grouped = {"encoder_args": {}, "generator_args": {}, "discriminator_args": {}, "dataset_args": {}}
    for item in items or []:
        kind, dot, rest = item.partition(".")
        key = f"{kind}_args"
        if not dot or key not in grouped:
            raise UsageError(f"--arg takes KIND.KEY=VALUE with KIND one of encoder, generator, "
                             f"discriminator, dataset; not '{item}'")
        grouped[key].update(parse_pairs([rest], "--arg"))
    return {k: v for k, v in grouped.items() if v}


def show_config(config: TrainConfig, sources: dict) -> None:
    """Print the resolved options that did not come from the plain defaults."""
    if config.preset:
        preset = ", ".join(f"{k}={v}" for k, v in PRESETS[config.preset].items())
        console.print(f"[bold]preset {config.preset}[/bold]: {preset}", highlight=False)
    table = Table(title="training options (not at their defaults)", title_justify="left")
    for column in ("option", "value", "from"):
        table.add_column(column)
    for key, value in config.to_dict().items():
        source = sources.get(key, "default")
        if source != "default":
            table.add_row(f"--{key.replace('_', '-')}", str(value), source)
    console.print(table)


@contextmanager
def graceful_interrupt():
    """First Ctrl-C: finish the step, write a checkpoint, exit 130. Second: stop at once."""
    state = {"stop": False}

    def handler(signum, frame):
        if state["stop"]:
            raise KeyboardInterrupt
        state["stop"] = True
        warn_line("interrupted: finishing this step and writing a checkpoint (Ctrl-C again to abort)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: state["stop"]
    finally:
        signal.signal(signal.SIGINT, previous)


def run(user: dict) -> int:
    """Resolve, show, train (and draw the test split with ``inference``); return the exit code."""
    from zoo.cli.progress import TrainingProgress
    from zoo.train.loop import TrainingCallbacks, train

    config, sources = for_resume(user["resume"], user) if user.get("resume") else resolve(user)
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 speaks for all
    if main_process:
        show_config(config, sources)
    progress = TrainingProgress(quiet=config.quiet) if main_process else TrainingCallbacks()
    try:
        with graceful_interrupt() as should_stop:
            result = train(config, sources, callbacks=progress, should_stop=should_stop)
    finally:
        if main_process:
            progress.close()
    if result.run_dir is None:  # a rank other than 0 under torchrun: nothing to report
        return INTERRUPTED if result.interrupted else 0
    console.print(f"[bold]{'stopped' if result.interrupted else 'finished'}[/bold] at epoch {result.epoch}, "
                  f"step {result.step}; checkpoint: {result.last_checkpoint}")
    if result.interrupted:
        return INTERRUPTED
    if config.inference:
        from zoo.generate import generate_split

        generate_split(result.last_checkpoint, dataset=config.dataset, root=config.data, split="test",
                       out=result.run_dir / "inference", device=config.device, dataset_args=config.dataset_args)
    return 0
