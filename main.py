"""wav2pix-zoo's command line: commands only, each a thin call into ``zoo``.

Run as ``python main.py ...`` or, once installed, as ``wav2pix ...``.
"""

from pathlib import Path
from typing import List, Optional

import typer

from zoo import __version__
from zoo.cli.app import ZooTyper
from zoo.hookspecs import KINDS

app = ZooTyper(
    name="wav2pix",
    help="Draw a speaker's face from raw speech: a plugin-based zoo of conditional GANs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def _complete_kind(incomplete: str) -> List[str]:
    return [k for k in KINDS if k.startswith(incomplete)]


def _show_version(value: bool) -> None:
    if value:
        print(f"wav2pix-zoo {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Draw a speaker's face from raw speech: a plugin-based zoo of conditional GANs."""


@app.command("list")
def list_components(
    kind: Optional[str] = typer.Argument(None, help=f"One of: {', '.join(KINDS)}.",
                                         autocompletion=_complete_kind),
    pattern: str = typer.Argument("*", help="Wildcard filter on names, e.g. 'w*'."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """List the registered components with their descriptions and parameters."""
    import registry
    from zoo.cli.list import show_components

    kinds = [registry.check_kind(kind)] if kind else list(KINDS)
    show_components(kinds, pattern, as_json)


@app.command("plugins")
def list_plugins(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the plugin distributions, their versions, hooks, and any that failed to load."""
    from zoo.cli.list import show_plugins

    show_plugins(as_json)


def _names(kind: str):
    """Autocompletion of component names from the registry."""

    def complete(incomplete: str) -> List[str]:
        import registry

        return [c.name for c in registry.components(kind, f"{incomplete}*")]

    return complete


COMPONENTS, DATA, OPTIM, OUTPUT, HARDWARE = "Components", "Data", "Optimisation", "Output", "Hardware"


def _component(kind: str, what: str, default: str, panel: str = COMPONENTS):
    """A ``--<kind> NAME`` option completed from the registry; None when not given."""
    return typer.Option(None, help=f"{what} \\[default: {default}].", rich_help_panel=panel,
                        autocompletion=_names(kind))


@app.command()
def train(
    encoder: Optional[str] = _component("encoder", "Speech encoder", "wave_cnn"),
    generator: Optional[str] = _component("generator", "Face generator", "dcgan_bn"),
    discriminator: Optional[str] = _component("discriminator", "Discriminator", "dcgan"),
    loss: Optional[str] = _component("loss", "Adversarial loss", "lsgan"),
    terms: Optional[str] = typer.Option(None, help="Generator terms, comma list \\[default: l1,feature_matching,identity].", rich_help_panel=COMPONENTS),
    preset: Optional[str] = typer.Option(None, help="'wav2pix': segan, dcgan, dcgan, lsgan and the seed's values.", rich_help_panel=COMPONENTS),
    z_dim: Optional[int] = typer.Option(None, help="Noise size; 0 = none, as wav2pix \\[default: 0].", rich_help_panel=COMPONENTS),
    embed_dim: Optional[int] = typer.Option(None, help="Speech embedding size \\[default: 128].", rich_help_panel=COMPONENTS),
    arg: Optional[List[str]] = typer.Option(None, help="Component argument KIND.KEY=VALUE, e.g. encoder.width=32 (repeatable).", rich_help_panel=COMPONENTS),
    dataset: Optional[str] = _component("dataset", "Dataset", "synthetic, needs no data", DATA),
    data: Optional[str] = typer.Option(None, help="Dataset root folder.", rich_help_panel=DATA),
    image_size: Optional[int] = typer.Option(None, "--image-size", "--size", help="Face size, 64 or 128 \\[default: 64].", rich_help_panel=DATA),
    clip_seconds: Optional[float] = typer.Option(None, help="Speech window per face in seconds \\[default: 1.0].", rich_help_panel=DATA),
    num_workers: Optional[int] = typer.Option(None, help="Data loader processes, capped to the cores \\[default: 8].", rich_help_panel=DATA),
    cache: Optional[bool] = typer.Option(None, "--cache/--no-cache", help="Decode the data once into a memory-mapped cache \\[default: on].", rich_help_panel=DATA),
    epochs: Optional[int] = typer.Option(None, help="Epochs \\[default: 200, or the dataset's suggestion].", rich_help_panel=OPTIM),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many iterations.", rich_help_panel=OPTIM),
    batch_size: Optional[int] = typer.Option(None, help="Pairs per iteration \\[default: 64].", rich_help_panel=OPTIM),
    lr_d: Optional[float] = typer.Option(None, help="Discriminator learning rate \\[default: 4e-4].", rich_help_panel=OPTIM),
    lr_g: Optional[float] = typer.Option(None, help="Generator learning rate \\[default: 1e-4].", rich_help_panel=OPTIM),
    l1_coef: Optional[float] = typer.Option(None, help="Weight of L1 to the paired face \\[default: 50].", rich_help_panel=OPTIM),
    l2_coef: Optional[float] = typer.Option(None, help="Weight of feature matching \\[default: 100].", rich_help_panel=OPTIM),
    softmax_coef: Optional[float] = typer.Option(None, help="Weight of the speaker classifier \\[default: 20].", rich_help_panel=OPTIM),
    term_coef: Optional[List[str]] = typer.Option(None, help="Weight of any term NAME=VALUE (repeatable).", rich_help_panel=OPTIM),
    seed: Optional[int] = typer.Option(None, help="Random seed \\[default: 0].", rich_help_panel=OPTIM),
    save_path: Optional[str] = typer.Option(None, help="Run folder name under runs/ \\[default: numbered].", rich_help_panel=OUTPUT),
    vis_screen: Optional[str] = typer.Option(None, help="The run's name in TensorBoard \\[default: the run folder's].", rich_help_panel=OUTPUT),
    runs_dir: Optional[str] = typer.Option(None, help="Where run folders go \\[default: runs].", rich_help_panel=OUTPUT),
    pre_trained_gen: Optional[str] = typer.Option(None, help="Initialise encoder+generator from a checkpoint.", rich_help_panel=OUTPUT),
    pre_trained_disc: Optional[str] = typer.Option(None, help="Initialise the discriminator from a checkpoint.", rich_help_panel=OUTPUT),
    resume: Optional[str] = typer.Option(None, help="Continue a run folder exactly where it stopped.", rich_help_panel=OUTPUT),
    checkpoint_every: Optional[int] = typer.Option(None, help="Keep a checkpoint every N epochs \\[default: 10].", rich_help_panel=OUTPUT),
    log_every: Optional[int] = typer.Option(None, help="Read losses every N steps \\[default: 10].", rich_help_panel=OUTPUT),
    inference: bool = typer.Option(False, "--inference", help="Afterwards, draw a face for every test clip.", rich_help_panel=OUTPUT),
    quiet: bool = typer.Option(False, "--quiet", help="Log lines instead of a live progress bar.", rich_help_panel=OUTPUT),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N \\[default: auto].", rich_help_panel=HARDWARE),
    amp: bool = typer.Option(False, "--amp", help="bf16 autocast (CUDA, or a CPU with native bf16).", rich_help_panel=HARDWARE),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the models.", rich_help_panel=HARDWARE),
) -> None:
    """Train a speech-to-face GAN (on the embedded synthetic data unless told otherwise)."""
    user = {k: v for k, v in locals().items() if k not in ("arg", "terms", "term_coef")}
    from zoo.cli import train as train_command

    user.update(train_command.component_args(arg))
    user["terms"] = tuple(t.strip() for t in terms.split(",") if t.strip()) if terms is not None else None
    user["term_coefs"] = train_command.parse_pairs(term_coef, "--term-coef") or None
    for flag in ("inference", "quiet", "amp", "compile"):
        user[flag] = user[flag] or None  # a flag left off must not override a preset or a resume
    raise typer.Exit(train_command.run(user))


@app.command()
def generate(
    inputs: Optional[List[Path]] = typer.Argument(None, help="Audio files or folders (wav, flac, ogg, mp3 ...).", show_default=False),
    checkpoint: Optional[str] = typer.Option(None, help="Run folder, checkpoint folder or model.safetensors \\[default: the newest run's last]."),
    out: Path = typer.Option(Path("generated"), help="Where the faces go."),
    window_seconds: Optional[float] = typer.Option(None, help="Window length \\[default: the encoder's training window]."),
    hop_seconds: Optional[float] = typer.Option(None, help="Hop between windows \\[default: half a window]."),
    num: int = typer.Option(1, help="Faces per clip (needs noise or --stochastic)."),
    stochastic: bool = typer.Option(False, "--stochastic", help="Keep dropout on to draw varied faces."),
    interpolate: Optional[int] = typer.Option(None, help="With two clips: a strip of K faces from one voice to the other."),
    seed: int = typer.Option(0, help="Random seed: the same seed draws the same faces."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: outputs, windows, seconds, failures."),
    data: Optional[str] = typer.Option(None, help="Draw a dataset split instead of files: its root.", rich_help_panel="Dataset split"),
    dataset: Optional[str] = typer.Option(None, help="The dataset of --data \\[default: youtubers].", rich_help_panel="Dataset split", autocompletion=_names("dataset")),
    split: str = typer.Option("test", help="The split to draw.", rich_help_panel="Dataset split"),
    arg: Optional[List[str]] = typer.Option(None, help="Dataset argument dataset.KEY=VALUE \\[default: the run's own].", rich_help_panel="Dataset split"),
    runs_dir: str = typer.Option("runs", help="Where to look for the newest run."),
) -> None:
    """Draw faces from speech files, or from a dataset split, with a trained checkpoint."""
    from zoo.cli import generate as generate_command
    from zoo.errors import UsageError
    from zoo.generate import GenerateOptions

    if data is not None or dataset is not None:
        if inputs:
            raise UsageError("give audio files or --data/--dataset, not both")
        from zoo.cli.train import component_args

        dataset_args = component_args(arg).get("dataset_args") if arg else None
        raise typer.Exit(generate_command.run_split(checkpoint, dataset or "youtubers", data, split, out,
                                                    device, as_json, runs_dir, dataset_args))
    if not inputs:
        raise UsageError("give one or more audio files or folders (or --data ROOT --dataset NAME)")
    options = GenerateOptions(window_seconds, hop_seconds, num, seed, stochastic)
    raise typer.Exit(generate_command.run_files([str(i) for i in inputs], checkpoint, out, options, device,
                                                as_json, interpolate, runs_dir))


@app.command()
def prepare(
    videos: str = typer.Argument(..., help="Folder of <identity>/<videos> (mp4, mkv, webm, mov), or a CSV of identity,path."),
    out: str = typer.Argument(..., help="Output folder (youtubers layout plus manifest.csv); re-running resumes it."),
    frame_every: float = typer.Option(1.0, help="Seconds between sampled frames."),
    context_seconds: float = typer.Option(4.0, help="Speech around each frame that windows are drawn from."),
    windows: int = typer.Option(5, help="Random speech windows (pairs) per kept face."),
    window_seconds: float = typer.Option(1.0, help="Length of each speech window."),
    margin: float = typer.Option(0.2, help="Crop margin on each side, as a fraction of the face size."),
    min_face: int = typer.Option(64, help="Smallest face kept, in frame pixels."),
    test_fraction: float = typer.Option(0.1, help="Share of each identity's videos held out for test (split by video)."),
    seed: int = typer.Option(0, help="Seed of the split and the window positions."),
    min_confidence: float = typer.Option(1.0, help="Haar cascade confidence (last-stage weight) a face must reach."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Build a training set from raw talking-head videos: face crops paired with speech windows."""
    from zoo.prepare.runner import prepare as prepare_videos
    from zoo.cli.prepare import prepare_progress, show_summary

    with prepare_progress(quiet) as progress:
        summary = prepare_videos(videos, out, frame_every=frame_every, context_seconds=context_seconds,
                                 windows=windows, window_seconds=window_seconds, margin=margin,
                                 min_face=min_face, test_fraction=test_fraction, seed=seed,
                                 min_confidence=min_confidence, progress=progress)
    show_summary(summary)


@app.command()
def evaluate(
    checkpoint: Optional[str] = typer.Option(None, help="Run folder, checkpoint folder or model.safetensors \\[default: the newest run's last]."),
    dataset: Optional[str] = typer.Option(None, help="Dataset \\[default: the run's, else youtubers].", autocompletion=_names("dataset")),
    data: Optional[str] = typer.Option(None, help="Dataset root folder \\[default: the run's]."),
    split: str = typer.Option("test", help="The split to evaluate."),
    metrics: Optional[str] = typer.Option(None, help="Comma list \\[default: every registered metric; see `list metric`].", autocompletion=_names("metric")),
    out: Optional[Path] = typer.Option(None, help="Where metrics.json, report.md and pictures go \\[default: <run>/evaluation, else evaluation/]."),
    seed: int = typer.Option(0, help="Random seed of drawing and sampling."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    fid_weights: Optional[str] = typer.Option(None, help="Inception-v3 state dict (.pth or .safetensors) for fid; without it fid is skipped."),
    metric_arg: Optional[List[str]] = typer.Option(None, help="Metric argument NAME.KEY=VALUE, e.g. face_detection.landmarks_model=PATH (repeatable)."),
    batch_size: int = typer.Option(64, help="Clips per batch when drawing faces."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json instead of the table."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars or messages."),
    runs_dir: str = typer.Option("runs", help="Where to look for the newest run."),
) -> None:
    """Score a checkpoint's faces for a dataset split: face detection, identity accuracy, recall@K, distances."""
    options = dict(locals())
    from zoo.cli import evaluate as evaluate_command

    raise typer.Exit(evaluate_command.run(**options))


@app.command()
def bench(
    encoder: Optional[str] = _component("encoder", "Speech encoder", "wave_cnn"),
    generator: Optional[str] = _component("generator", "Face generator", "dcgan_bn"),
    discriminator: Optional[str] = _component("discriminator", "Discriminator", "dcgan"),
    image_size: Optional[int] = typer.Option(None, "--image-size", "--size", help="Face size, 64 or 128 \\[default: 64].", rich_help_panel=DATA),
    batch_size: Optional[int] = typer.Option(None, help="Pairs per iteration \\[default: 64].", rich_help_panel=DATA),
    dataset: Optional[str] = _component("dataset", "Dataset", "synthetic, needs no data", DATA),
    data: Optional[str] = typer.Option(None, help="Dataset root folder.", rich_help_panel=DATA),
    arg: Optional[List[str]] = typer.Option(None, help="Component argument KIND.KEY=VALUE, e.g. dataset.num_identities=3 (repeatable).", rich_help_panel=DATA),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N \\[default: auto].", rich_help_panel=HARDWARE),
    amp: bool = typer.Option(False, "--amp", help="bf16 autocast in our step (CUDA, or a CPU with native bf16).", rich_help_panel=HARDWARE),
    compile: bool = typer.Option(False, "--compile", help="torch.compile our step's models.", rich_help_panel=HARDWARE),
    repeats: int = typer.Option(5, help="Timed blocks per measurement; medians are reported."),
    warmup: int = typer.Option(2, help="Untimed iterations (and loader batches) first."),
    skip_seed: bool = typer.Option(False, "--skip-seed", help="Do not time the seed-style step."),
    skip_loader: bool = typer.Option(False, "--skip-loader", help="Do not time the data loader."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
) -> None:
    """Time our training step beside the seed's, the loader, generation, memory and FLOP/s."""
    from zoo.cli import bench as bench_command
    from zoo.cli.train import component_args

    user = {"encoder": encoder, "generator": generator, "discriminator": discriminator,
            "image_size": image_size, "batch_size": batch_size, "dataset": dataset, "data": data,
            "device": device, "amp": amp or None, "compile": compile or None, **component_args(arg)}
    raise typer.Exit(bench_command.run(user, repeats=repeats, warmup=warmup, skip_seed=skip_seed,
                                       skip_loader=skip_loader, as_json=as_json))


def run() -> None:
    """Entry point of the ``wav2pix`` console script."""
    app()


if __name__ == "__main__":
    run()
