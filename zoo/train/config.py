"""Training configuration: the seed's defaults, resolved with presets, dataset suggestions and
the user's options, and checked against the registry before anything heavy starts.

Precedence, lowest first: the defaults below (wav2pix's values, meant for real data on a GPU),
the dataset's suggestions (registration meta ``suggested``), a preset (a plugin, see
``register_presets``), the user's options. Where each resolved value came from is recorded,
printed and saved with the run. A preset may also bring stages (``zoo.train.stages``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

import registry
from zoo.errors import CheckpointError, UsageError
from zoo.files import is_plain_name
from zoo.model.schema import SIZE_BOUNDS


# The seed's per-term weights, each an option of its own; a term's registration names its one.
SEED_COEFFICIENTS = ("l1_coef", "l2_coef", "softmax_coef")


@dataclass
class TrainConfig:
    # components
    encoder: str = "wave_cnn"  # speech encoder (python main.py list encoder)
    generator: str = "dcgan_bn"  # face generator; --preset wav2pix uses wav2pix's "dcgan"
    discriminator: str = "dcgan_half"  # conditional discriminator; --preset wav2pix uses "dcgan"
    loss: str = "lsgan"  # adversarial objective; wav2pix used least squares
    terms: tuple = ("l1", "feature_matching", "identity")  # generator terms added to the loss
    objective: str = "gan"  # how the run learns (python main.py list objective)
    objective_args: dict = field(default_factory=dict)  # --arg objective.KEY=VALUE
    stages: tuple[dict, ...] = ()  # a preset's stages: [{"name", "objective", "share", "options"}]; empty = one
    encoder_args: dict = field(default_factory=dict)  # extra keyword arguments per component
    generator_args: dict = field(default_factory=dict)
    discriminator_args: dict = field(default_factory=dict)
    fuser: Optional[str] = None  # fuses a long clip's segment embeddings; None = their mean
    fuser_args: dict = field(default_factory=dict)
    embed_dim: int = 128  # speech embedding size (wav2pix: 128)
    z_dim: int = 0  # noise size; 0 = none, as in wav2pix
    # data
    dataset: str = "synthetic"  # the embedded default needs no data and no download
    data: Optional[str] = None  # dataset root folder (not needed for synthetic)
    dataset_args: dict = field(default_factory=dict)
    image_size: int = 64  # 64 or 128, as in wav2pix
    sample_rate: int = 16000  # Hz
    clip_seconds: float = 1.0  # speech window per face (wav2pix: 1 s)
    num_workers: int = 8  # data loader processes, capped to the cores
    cache: bool = True  # decode faces and audio once into a memory-mapped cache
    rebuild_cache: bool = False  # build the data's cache entry again even if it looks sound
    wave_dtype: str = "float16"  # audio in the cache: float16 (~66 dB below peak) or float32 (wav2pix's)
    drop_last: bool = True  # skip each epoch's last partial batch (wav2pix trained on it)
    # optimisation
    epochs: int = 200  # seed value: right for real data on a GPU
    max_steps: Optional[int] = None  # stop after this many iterations (short runs, tests)
    max_minutes: Optional[float] = None  # stop after this much training time (a compare budget)
    batch_size: int = 64
    lr_d: float = 4e-4  # discriminator learning rate (seed)
    lr_g: float = 4e-4  # generator learning rate (seed: 1e-4; 4x learns faster with the average below)
    beta1: float = 0.5  # Adam betas (seed)
    beta2: float = 0.999
    l1_coef: float = 50.0  # weight of the L1 distance to the paired face (seed)
    l2_coef: float = 100.0  # weight of discriminator feature matching (seed's l2_coef)
    softmax_coef: float = 20.0  # weight of the speaker classifier's cross-entropy (seed)
    term_coefs: dict = field(default_factory=dict)  # weights of other terms, by term name
    seed: int = 0
    augment: str = "color,translation"  # DiffAugment of every image the discriminator sees ("": none)
    ema: float = 0.999  # decay of the weights' moving average used for samples and checkpoints; 0 = off
    # output
    runs_dir: str = "runs"
    save_path: Optional[str] = None  # run folder name; auto-numbered when empty
    vis_screen: Optional[str] = None  # the run's name in TensorBoard; the run name when empty
    checkpoint_every: int = 10  # keep a checkpoint every N epochs, as the seed did
    log_every: int = 10  # read the losses from the device every N steps
    pre_trained_gen: Optional[str] = None  # initialise encoder+generator+classifier from here
    pre_trained_disc: Optional[str] = None  # initialise the discriminator from here
    pre_trained_encoder: Optional[str] = None  # initialise the speech encoder alone from here
    freeze_encoder: bool = False  # keep the encoder's weights and statistics fixed (voice2face)
    resume: Optional[str] = None  # continue a run folder exactly
    inference: bool = False  # after training, draw a face for every test clip
    quiet: bool = False  # plain log lines instead of a live progress bar
    # hardware
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    amp: Optional[bool] = None  # bf16 autocast; None = on where bf16 is native (CUDA, avx512_bf16/AMX CPUs)
    compile: bool = False  # torch.compile the models
    preset: Optional[str] = None

    @property
    def num_samples(self) -> int:
        """Samples per speech window."""
        return int(round(self.sample_rate * self.clip_seconds))

    def coefficient(self, term: str, meta: dict) -> float:
        """The weight of a generator term: a --term-coef, else the seed option its registration
        names (``option="l1_coef"``), else its registered ``coefficient``."""
        if term in self.term_coefs:
            return float(self.term_coefs[term])
        if meta.get("option") in SEED_COEFFICIENTS:
            return float(getattr(self, meta["option"]))
        return float(meta.get("coefficient", 1.0))

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["terms"] = list(self.terms)
        data["stages"] = [dict(stage) for stage in self.stages]
        return data


def default_of(name: str):
    """The default of one option, as ``TrainConfig`` declares it (help texts read it here)."""
    value = TrainConfig.__dataclass_fields__[name].default
    if value is dataclasses.MISSING:
        value = TrainConfig.__dataclass_fields__[name].default_factory()
    return ",".join(value) if isinstance(value, tuple) else value


def resolve(user: dict) -> tuple[TrainConfig, dict]:
    """Merge defaults, dataset suggestions, preset and user options; return the config and
    where each value came from."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(user) - fields
    if unknown:
        raise UsageError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    given = {k: v for k, v in user.items() if v is not None}
    values = dataclasses.asdict(TrainConfig())
    sources = {name: "default" for name in values}
    dataset = given.get("dataset", values["dataset"])
    suggested = registry.get("dataset", dataset).meta.get("suggested", {})
    _apply(values, sources, {k: v for k, v in suggested.items() if k in fields}, f"dataset {dataset}")
    preset = given.get("preset")
    if preset is not None:
        _apply(values, sources, preset_options(preset), f"preset {preset}")
    _apply(values, sources, given, "option")
    _default_levers(values, sources)
    values["terms"] = tuple(values["terms"])
    values["stages"] = tuple(values["stages"])
    config = TrainConfig(**values)
    validate(config)
    return config, sources


# The levers of our default model: a reference iteration (an objective registered with
# ``reference=True``, wav2pix's own) trains without them unless the user asks.
LEVERS_OFF = {"amp": False, "augment": "", "ema": 0.0}


def _default_levers(values: dict, sources: dict) -> None:
    """Resolve ``amp``'s automatic default, and turn the levers' defaults off for a reference
    iteration. bf16 autocast is on where it is native on the run's device (1.5x faster on this
    project's CPUs)."""
    from zoo.hardware import native_bf16, resolve_device

    objectives = {values["objective"]} | {stage["objective"] for stage in values["stages"]}
    reference = [n for n in sorted(objectives) if registry.get("objective", n).meta.get("reference")]
    if reference:
        for key, value in LEVERS_OFF.items():
            if values[key] is None or sources[key] == "default":
                values[key], sources[key] = value, f"default (the {reference[0]} objective is a reference's own iteration)"
        return
    if values["amp"] is None:
        try:
            native = native_bf16(resolve_device(values["device"]))
        except UsageError:  # an unusable --device is reported by validate() with its own message
            native = False
        values["amp"], sources["amp"] = native, "default (bf16 is native here)" if native else "default (no native bf16 here)"


def preset_options(name: str) -> dict:
    """The training options a registered preset sets, its stages among them."""
    preset = registry.create("preset", name)
    options = dict(preset.options)
    if preset.stages:
        options["stages"] = tuple({"name": s.name, "objective": s.objective, "share": s.share,
                                   "options": dict(s.options)} for s in preset.stages)
    return options


# Component arguments merge key by key across the layers: ``--arg generator.dropout=0.3`` over a
# preset's ``generator_args`` keeps the preset's other arguments.
MERGED = ("encoder_args", "generator_args", "discriminator_args", "dataset_args", "objective_args")


def _apply(values: dict, sources: dict, updates: dict, source: str) -> None:
    for key, value in updates.items():
        values[key] = {**values[key], **value} if key in MERGED and value is not None else value
        sources[key] = source


def validate(config: TrainConfig) -> None:
    """Check names and sizes against the registry, so mistakes exit 2 before any work."""
    for kind, name in (("encoder", config.encoder), ("generator", config.generator),
                       ("discriminator", config.discriminator), ("loss", config.loss),
                       ("dataset", config.dataset), ("objective", config.objective)):
        registry.get(kind, name)  # raises an exit-2 error listing the valid choices
    if config.fuser is not None:
        registry.get("fuser", config.fuser)
        registry.check_arguments("fuser", config.fuser, config.fuser_args)
    objectives = {config.objective} | {stage["objective"] for stage in config.stages}
    for name in sorted(objectives):
        if registry.get("objective", name).meta.get("needs") == "fuser" and config.fuser is None:
            raise UsageError(f"the '{name}' objective trains the model's fuser: choose one with --fuser NAME "
                             f"({', '.join(c.name for c in registry.components('fuser')) or 'none installed'})")
    _check_stages(config)
    adversarial = registry.get("loss", config.loss)
    if adversarial.meta.get("role") != "adversarial":
        raise UsageError(f"--loss '{config.loss}' is a generator term; choose an adversarial "
                         f"loss: {', '.join(_losses('adversarial'))}")
    for term in config.terms:
        meta = registry.get("loss", term).meta
        if meta.get("role") != "term":
            raise UsageError(f"--terms '{term}' is not a generator term; choose from: "
                             f"{', '.join(_losses('term'))}")
        if meta.get("needs") and not registry.get("discriminator", config.discriminator).meta.get(meta["needs"]):
            raise UsageError(f"--terms '{term}' needs a discriminator registered with {meta['needs']}=True; "
                             f"'{config.discriminator}' is not")
    for kind, name in (("generator", config.generator), ("discriminator", config.discriminator)):
        sizes = registry.get(kind, name).meta.get("sizes")
        if sizes and config.image_size not in sizes:
            raise UsageError(f"{kind} '{name}' supports image sizes {', '.join(map(str, sizes))}, "
                             f"not {config.image_size}")
    for kind, name, args in (("encoder", config.encoder, config.encoder_args),
                             ("generator", config.generator, config.generator_args),
                             ("discriminator", config.discriminator, config.discriminator_args),
                             ("dataset", config.dataset, config.dataset_args)):
        registry.check_arguments(kind, name, args)
    _check_positive(config)
    _check_sizes(config)
    for flag, name in (("--save-path", config.save_path), ("--vis-screen", config.vis_screen)):
        if name is not None and not is_plain_name(name):
            raise UsageError(f"{flag} must be a plain folder name, not {name!r}")
    _check_data(config)
    _check_components(config)
    _check_objectives(config)  # before the hardware: "--amp with gan_seed" says why on any machine
    _check_hardware(config)


def _check_stages(config: TrainConfig) -> None:
    """A preset's stages name registered objectives, take a positive share and set real options."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for stage in config.stages:
        registry.get("objective", stage["objective"])
        if not stage.get("share", 1.0) > 0:
            raise UsageError(f"stage '{stage['name']}' needs a positive share of the budget")
        unknown = set(stage.get("options", {})) - fields
        if unknown:
            raise UsageError(f"stage '{stage['name']}' sets unknown option(s): {', '.join(sorted(unknown))}")


def _check_data(config: TrainConfig) -> None:
    from zoo.data.cache import WAVE_DTYPES

    if config.wave_dtype not in WAVE_DTYPES:
        raise UsageError(f"--wave-dtype must be one of {', '.join(WAVE_DTYPES)}, not '{config.wave_dtype}'")


def _check_components(config: TrainConfig) -> None:
    """A model component's factory may refuse the run before any work, as an objective may: its
    ``check(config)`` classmethod, if any (ge2e says what to install when its weights are absent)."""
    for kind, name in (("encoder", config.encoder), ("generator", config.generator),
                       ("discriminator", config.discriminator)):
        check = getattr(registry.get(kind, name).factory, "check", None)
        if callable(check):
            check(config)


def _check_objectives(config: TrainConfig) -> None:
    """Each stage's objective may refuse options it cannot honour (``Objective.check``)."""
    stages = config.stages or ({"objective": config.objective, "options": {}},)
    for stage in stages:
        check = getattr(registry.get("objective", stage["objective"]).factory, "check", None)
        if callable(check):
            check(dataclasses.replace(config, objective=stage["objective"], **stage.get("options", {})))


def _check_hardware(config: TrainConfig) -> None:
    from zoo.hardware import native_bf16, resolve_device

    device = resolve_device(config.device)
    if config.amp and not native_bf16(device):
        raise UsageError(f"--amp: {device.type} has no native bf16 here (CUDA, or a CPU with avx512_bf16 "
                         "or AMX); emulated bf16 autocast is about 20x slower than float32")


def _losses(role: str) -> list[str]:
    return [c.name for c in registry.components("loss") if c.meta.get("role") == role]


def _check_positive(config: TrainConfig) -> None:
    for name in ("batch_size", "epochs", "lr_d", "lr_g", "sample_rate", "clip_seconds",
                 "checkpoint_every", "log_every", "embed_dim"):
        if getattr(config, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, not {getattr(config, name)}")
    if config.max_steps is not None and config.max_steps <= 0:
        raise UsageError(f"--max-steps must be positive, not {config.max_steps}")
    if config.max_minutes is not None and config.max_minutes <= 0:
        raise UsageError(f"--max-minutes must be positive, not {config.max_minutes}")
    if not 0.0 <= config.ema < 1.0:
        raise UsageError(f"--ema is a decay in [0, 1) (0: off), not {config.ema}")
    if config.z_dim < 0 or config.num_workers < 0:
        raise UsageError("--z-dim and --num-workers cannot be negative")


def _check_sizes(config: TrainConfig) -> None:
    """Sizes within the bounds a checkpoint's description must keep (``zoo.model.schema``), so no
    option, typed or read back from a run, can ask torch for more memory than a machine has."""
    if not math.isfinite(config.sample_rate * config.clip_seconds):
        raise UsageError(f"--clip-seconds must be a finite number, not {config.clip_seconds}")
    for name in ("embed_dim", "z_dim", "image_size", "sample_rate", "num_samples"):
        low, high = SIZE_BOUNDS[name]
        value = getattr(config, name)
        if not low <= value <= high:
            option = "--clip-seconds" if name == "num_samples" else f"--{name.replace('_', '-')}"
            raise UsageError(f"{option} gives {name} {value}, outside [{low}, {high}]")


# Options that may change when a run is resumed: they do not change what is being learned.
RESUMABLE = {"epochs", "max_steps", "max_minutes", "quiet", "num_workers", "device", "log_every", "resume",
             "inference", "rebuild_cache"}


def for_resume(run_dir: str, user: dict) -> tuple[TrainConfig, dict]:
    """The saved options of ``run_dir`` with the few a resume may change."""
    from zoo.train.runs import read_config

    saved = read_config(run_dir)
    given = {k: v for k, v in user.items() if v is not None}  # flags left off are None
    changed = sorted(k for k in given if k not in RESUMABLE and given[k] != saved["options"].get(k))
    if changed:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in changed)
        raise UsageError(f"--resume continues {run_dir} with its saved options; {flags} cannot change "
                         "(only --epochs, --max-steps, --num-workers, --device, --quiet may)")
    values = {k: v for k, v in saved["options"].items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    check_saved_types(values, f"{run_dir}/config.json")
    values["rebuild_cache"] = False  # a one-off request: given again when wanted again
    values.update({k: v for k, v in given.items() if k in RESUMABLE})
    values["terms"] = tuple(values.get("terms", ()))
    values["stages"] = tuple(values.get("stages", ()))
    sources = dict(saved.get("sources", {})) if isinstance(saved.get("sources"), dict) else {}
    sources.update({k: "option" for k in given if k in RESUMABLE})
    config = TrainConfig(**values)
    try:
        _check_positive(config)
        _check_sizes(config)
    except UsageError as exc:  # the saved options, not the user's: the run's file is at fault
        raise CheckpointError(f"{run_dir}/config.json: {exc}") from None
    validate(config)
    _check_fits_last_checkpoint(run_dir, config)
    return config, sources


def _check_fits_last_checkpoint(run_dir: str, config: TrainConfig) -> None:
    """The model the saved options describe, built on the meta device (no memory), must match the
    run's last checkpoint before the trainer builds it for real: a tampered ``config.json``
    (a width of 10**9, say) is then one line instead of an allocation of terabytes."""
    from pathlib import Path

    from zoo.model import checkpoints
    from zoo.model.speech_to_face import build_discriminator, build_speech_to_face
    from zoo.train.parts import describe_run

    folder = Path(run_dir) / "checkpoints" / checkpoints.LAST
    model_file = folder / checkpoints.MODEL_FILE
    if not model_file.is_file():
        return  # nothing to resume from: the trainer says so
    described = describe_run(config, checkpoints.read_description(model_file)["identities"])
    checkpoints.check_skeleton(build_speech_to_face, described, model_file)
    checkpoints.check_skeleton(build_discriminator, described, folder / checkpoints.DISCRIMINATOR_FILE)


def check_saved_types(values: dict, source: str) -> None:
    """Each saved option of its declared type: a run's ``config.json`` is read from disk, so
    nothing in it is trusted (a string where a size belongs, a list where arguments belong)."""
    for f in dataclasses.fields(TrainConfig):
        if f.name in values and not _of_type(values[f.name], str(f.type)):
            raise CheckpointError(f"{source}: option {f.name} must be {f.type}, not {type(values[f.name]).__name__}")


def _of_type(value, declared: str) -> bool:
    if declared.startswith("Optional["):
        return value is None or _of_type(value, declared[len("Optional["):-1])
    checks = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
        "bool": lambda v: isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "tuple": lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v),
        "tuple[dict, ...]": lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, dict) for x in v),
        "dict": lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
    }
    return checks.get(declared, lambda v: True)(value)
