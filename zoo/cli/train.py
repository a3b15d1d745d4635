"""``python main.py train``: collect the options, resolve them, show them, train with a progress
bar, and turn the first Ctrl-C into a clean stop."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from typing import List, Optional

import typer
from rich.table import Table

from zoo.cli.options import (COMPONENTS, DATA, HARDWARE, OPTIM, OUTPUT, component_args, component_option, flag,
                             parse_pairs, split_names)
from zoo.cli.output import console, warn_line
from zoo.errors import INTERRUPTED_EXIT_CODE, UsageError
from zoo.train.config import TrainConfig, default_of


def _help(text: str, name: str, also: str = "") -> str:
    """Help text ending in the option's default, read from ``TrainConfig`` (written once, there)."""
    return f"{text} \\[default: {default_of(name)}{also}]."


def command(
    encoder: Optional[str] = component_option("encoder", "Speech encoder", default_of("encoder")),
    generator: Optional[str] = component_option("generator", "Face generator", default_of("generator")),
    discriminator: Optional[str] = component_option("discriminator", "Discriminator", default_of("discriminator")),
    loss: Optional[str] = component_option("loss", "Adversarial loss", default_of("loss")),
    terms: Optional[str] = typer.Option(None, help=_help("Generator terms, comma list", "terms"), rich_help_panel=COMPONENTS),
    preset: Optional[str] = component_option("preset", "A registered bundle of components, settings and stages (python main.py list preset)", "none"),
    objective: Optional[str] = component_option("objective", "How the run learns (python main.py list objective)", default_of("objective")),
    step: Optional[str] = typer.Option(None, "--step", metavar="ours|seed", help="The training iteration: ours (--objective gan) or seed (--objective gan_seed, wav2pix's own).", rich_help_panel=COMPONENTS),
    fuser: Optional[str] = component_option("fuser", "Fuses a long clip's window embeddings in generate (trained by the fuser objective)", "the mean"),
    freeze_encoder: bool = typer.Option(False, "--freeze-encoder", help="Keep the speech encoder fixed (with --pre-trained-encoder).", rich_help_panel=COMPONENTS),
    z_dim: Optional[int] = typer.Option(None, help=_help("Noise size; 0 = none, as wav2pix", "z_dim"), rich_help_panel=COMPONENTS),
    embed_dim: Optional[int] = typer.Option(None, help=_help("Speech embedding size", "embed_dim"), rich_help_panel=COMPONENTS),
    arg: Optional[List[str]] = typer.Option(None, help="Component argument KIND.KEY=VALUE, e.g. encoder.width=32 (repeatable).", rich_help_panel=COMPONENTS),
    dataset: Optional[str] = component_option("dataset", "Dataset", f"{default_of('dataset')}, needs no data", DATA),
    data: Optional[str] = typer.Option(None, help="Dataset root folder.", rich_help_panel=DATA),
    image_size: Optional[int] = typer.Option(None, "--image-size", "--size", help=_help("Face size, 64 or 128", "image_size"), rich_help_panel=DATA),
    clip_seconds: Optional[float] = typer.Option(None, help=_help("Speech window per face in seconds", "clip_seconds"), rich_help_panel=DATA),
    num_workers: Optional[int] = typer.Option(None, help=_help("Data loader processes, capped to the cores", "num_workers"), rich_help_panel=DATA),
    cache: Optional[bool] = typer.Option(None, "--cache/--no-cache", help=_help("Decode the data once into a memory-mapped cache", "cache"), rich_help_panel=DATA),
    rebuild_cache: bool = typer.Option(False, "--rebuild-cache", help="Build the data's cache entry again, even if it looks sound.", rich_help_panel=DATA),
    wave_dtype: Optional[str] = typer.Option(None, metavar="float16|float32", help=_help("Audio precision in the cache (float32: wav2pix's)", "wave_dtype"), rich_help_panel=DATA),
    drop_last: Optional[bool] = typer.Option(None, "--drop-last/--no-drop-last", help=_help("Skip each epoch's last partial batch (wav2pix kept it)", "drop_last"), rich_help_panel=DATA),
    epochs: Optional[int] = typer.Option(None, help=_help("Epochs", "epochs", ", or the dataset's suggestion"), rich_help_panel=OPTIM),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many iterations.", rich_help_panel=OPTIM),
    max_minutes: Optional[float] = typer.Option(None, help="Stop after this many minutes of training (split between stages).", rich_help_panel=OPTIM),
    batch_size: Optional[int] = typer.Option(None, help=_help("Pairs per iteration", "batch_size"), rich_help_panel=OPTIM),
    lr_d: Optional[float] = typer.Option(None, help=_help("Discriminator learning rate", "lr_d"), rich_help_panel=OPTIM),
    lr_g: Optional[float] = typer.Option(None, help=_help("Generator learning rate", "lr_g"), rich_help_panel=OPTIM),
    l1_coef: Optional[float] = typer.Option(None, help=_help("Weight of L1 to the paired face", "l1_coef"), rich_help_panel=OPTIM),
    l2_coef: Optional[float] = typer.Option(None, help=_help("Weight of feature matching", "l2_coef"), rich_help_panel=OPTIM),
    softmax_coef: Optional[float] = typer.Option(None, help=_help("Weight of the speaker classifier", "softmax_coef"), rich_help_panel=OPTIM),
    term_coef: Optional[List[str]] = typer.Option(None, help="Weight of any term NAME=VALUE (repeatable).", rich_help_panel=OPTIM),
    seed: Optional[int] = typer.Option(None, help=_help("Random seed", "seed"), rich_help_panel=OPTIM),
    augment: Optional[str] = typer.Option(None, metavar="color,translation,cutout", help=_help("DiffAugment transforms of the discriminator's images ('none': off)", "augment"), rich_help_panel=OPTIM),
    ema: Optional[float] = typer.Option(None, help=_help("Decay of the weights' moving average that draws samples and fills checkpoints (0: off)", "ema"), rich_help_panel=OPTIM),
    save_path: Optional[str] = typer.Option(None, help="Run folder name under runs/ \\[default: numbered].", rich_help_panel=OUTPUT),
    vis_screen: Optional[str] = typer.Option(None, help="The run's name in TensorBoard \\[default: the run folder's].", rich_help_panel=OUTPUT),
    runs_dir: Optional[str] = typer.Option(None, help=_help("Where run folders go", "runs_dir"), rich_help_panel=OUTPUT),
    pre_trained_gen: Optional[str] = typer.Option(None, help="Initialise encoder+generator from a checkpoint.", rich_help_panel=OUTPUT),
    pre_trained_disc: Optional[str] = typer.Option(None, help="Initialise the discriminator from a checkpoint.", rich_help_panel=OUTPUT),
    pre_trained_encoder: Optional[str] = typer.Option(None, help="Initialise the speech encoder alone from a checkpoint.", rich_help_panel=OUTPUT),
    resume: Optional[str] = typer.Option(None, help="Continue a run folder exactly where it stopped.", rich_help_panel=OUTPUT),
    checkpoint_every: Optional[int] = typer.Option(None, help=_help("Keep a checkpoint every N epochs", "checkpoint_every"), rich_help_panel=OUTPUT),
    log_every: Optional[int] = typer.Option(None, help=_help("Read losses every N steps", "log_every"), rich_help_panel=OUTPUT),
    inference: bool = typer.Option(False, "--inference", help="Afterwards, draw a face for every test clip.", rich_help_panel=OUTPUT),
    quiet: bool = typer.Option(False, "--quiet", help="Log lines instead of a live progress bar.", rich_help_panel=OUTPUT),
    device: Optional[str] = typer.Option(None, help=_help("auto, cpu, cuda or cuda:N", "device"), rich_help_panel=HARDWARE),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp", help="bf16 autocast \\[default: on where bf16 is native: CUDA, or a CPU with avx512_bf16 or AMX].", rich_help_panel=HARDWARE),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the models.", rich_help_panel=HARDWARE),
) -> None:
    """Train a speech-to-face GAN (on the embedded synthetic data unless told otherwise)."""
    options = {
        "encoder": encoder, "generator": generator, "discriminator": discriminator, "loss": loss,
        "terms": split_names(terms, "--terms", allow_empty=True), "preset": preset,
        "objective": objective_of(step, objective), "fuser": fuser,
        "freeze_encoder": flag(freeze_encoder), "pre_trained_encoder": pre_trained_encoder, "z_dim": z_dim, "embed_dim": embed_dim,
        "dataset": dataset, "data": data, "image_size": image_size, "clip_seconds": clip_seconds,
        "num_workers": num_workers, "cache": cache, "rebuild_cache": flag(rebuild_cache),
        "wave_dtype": wave_dtype, "drop_last": drop_last, "epochs": epochs, "max_steps": max_steps,
        "max_minutes": max_minutes,
        "batch_size": batch_size, "lr_d": lr_d, "lr_g": lr_g, "l1_coef": l1_coef, "l2_coef": l2_coef,
        "softmax_coef": softmax_coef, "term_coefs": parse_pairs(term_coef, "--term-coef") or None,
        "seed": seed, "augment": augment, "ema": ema, "save_path": save_path, "vis_screen": vis_screen, "runs_dir": runs_dir,
        "pre_trained_gen": pre_trained_gen, "pre_trained_disc": pre_trained_disc, "resume": resume,
        "checkpoint_every": checkpoint_every, "log_every": log_every, "inference": flag(inference),
        "quiet": flag(quiet), "device": device, "amp": amp, "compile": flag(compile),
        **component_args(arg),
    }
    raise typer.Exit(run(options))


# ``--step``: the words for the two GAN iterations, each an objective.
STEPS = {"ours": "gan", "seed": "gan_seed"}


def objective_of(step: Optional[str], objective: Optional[str]) -> Optional[str]:
    """The objective ``--step`` names (None when not given); refuses a contradicting --objective."""
    if step is None:
        return objective
    if step not in STEPS:
        raise UsageError(f"--step takes {' or '.join(STEPS)}, not '{step}'")
    if objective is not None and objective != STEPS[step]:
        raise UsageError(f"--step {step} means --objective {STEPS[step]}, not '{objective}'; give one of them")
    return STEPS[step]


def show_config(config: TrainConfig, sources: dict) -> None:
    """Print the resolved options that did not come from the plain defaults."""
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


def run(options: dict) -> int:
    """Resolve, show, train (and draw the test split with ``inference``); return the exit code."""
    from zoo.cli.progress import ConsoleProgress, TrainingProgress
    from zoo.train.callbacks import TrainingCallbacks
    from zoo.train.config import for_resume, resolve
    from zoo.train.loop import train

    config, sources = for_resume(options["resume"], options) if options.get("resume") else resolve(options)
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
        return INTERRUPTED_EXIT_CODE if result.interrupted else 0
    console.print(f"[bold]{'stopped' if result.interrupted else 'finished'}[/bold] at epoch {result.epoch}, "
                  f"step {result.step}; checkpoint: {result.last_checkpoint}")
    if result.interrupted:
        return INTERRUPTED_EXIT_CODE
    if config.inference:
        from zoo.generate import generate_split

        generate_split(result.last_checkpoint, dataset=config.dataset, root=config.data, split="test",
                       out=result.run_dir / "inference", device=config.device, dataset_args=config.dataset_args,
                       progress=ConsoleProgress(quiet=config.quiet))
    return 0
