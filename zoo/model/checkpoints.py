"""Checkpoints: safetensors weights that carry their own model description, written atomically.

A checkpoint is a folder::

    model.safetensors          encoder + generator + speaker classifier; header metadata holds
                               the JSON description, so this file alone rebuilds the model
    discriminator.safetensors  the discriminator, with the same description
    model.json                 the description again, for people
    training_state.pt          optimisers, counters and random states (tensors and plain
                               Python only, read with ``weights_only=True``)

A run keeps ``checkpoints/last`` (a symbolic link swapped atomically to the newest folder) and
``checkpoints/epoch_NNNN`` every few epochs. Each folder is written under a temporary name and
renamed into place, so a run killed at any moment leaves only complete checkpoints behind.
Nothing here ever unpickles: weights come from safetensors, state through ``weights_only``.

Everything read back is untrusted: the description is checked against ``zoo.model.schema``,
the tensor names and shapes in a file's header are compared with the model before any weight
is read, and a model is built on the meta device (no memory) and compared before it is built
for real, so a crafted checkpoint is one ``CheckpointError`` line, never a huge allocation.

For tests only, ``WAV2PIX_ZOO_TEST_KILL_AT=<stage>[:<n>]`` makes the process SIGKILL itself
when its n-th save (default the first) reaches ``<stage>``, one of ``SAVE_STAGES``: a kill can
then be landed at every point of a save instead of hoping a timer does.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from zoo.errors import CheckpointError, last_line
from zoo.files import TEMPORARY_PREFIX, remove_path, remove_temporaries, replacing, storage_error
from zoo.model.schema import check_description

MODEL_FILE = "model.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
DESCRIPTION_FILE = "model.json"
STATE_FILE = "training_state.pt"
METADATA_KEY = "wav2pix_zoo"
LAST = "last"
STEP_PREFIX = "step_"  # checkpoints that only ``last`` needs; ``epoch_NNNN`` ones are kept
KILL_ENV_VAR = "WAV2PIX_ZOO_TEST_KILL_AT"
# model, discriminator, description and state: that file is written in the temporary folder;
# published: the folder has its final name; linked: ``last`` points at it, older not yet deleted.
SAVE_STAGES = ("model", "discriminator", "description", "state", "published", "linked")
_saves_started = 0


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(module, "module") and isinstance(module.module, nn.Module):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


def _tensors(module: nn.Module) -> dict:
    return {k: v.detach().to("cpu").contiguous() for k, v in unwrap(module).state_dict().items()}


def _save_safetensors(module: nn.Module, path: Path, description: dict) -> None:
    from safetensors.torch import save

    # Serialised in memory, then written by Python: a full disk is then an OSError (one line
    # naming the path) instead of a library's own exception type.
    path.write_bytes(save(_tensors(module), metadata={METADATA_KEY: json.dumps(description)}))


def _save_state(state: dict, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)  # torch reports a full disk as a RuntimeError; Python as OSError
    path.write_bytes(buffer.getvalue())


def save_checkpoint(folder: Path, name: str, *, model: nn.Module, discriminator: nn.Module,
                    description: dict, state: dict, keep: bool = False) -> Path:
    """Write checkpoint ``name`` under ``folder`` atomically and point ``last`` at it.

    ``keep`` marks a checkpoint that later saves must not delete (the every-N-epochs ones).
    A failed write (a full disk, no permission) is one ``StorageError`` line; ``last`` then
    still points at the previous complete checkpoint.
    """
    global _saves_started
    _saves_started += 1
    remove_temporaries(folder)
    target = folder / name
    with replacing(target, folder=True) as temporary:  # an older save of the same name is replaced
        _save_safetensors(model, temporary / MODEL_FILE, description)
        _test_kill_point("model")
        _save_safetensors(discriminator, temporary / DISCRIMINATOR_FILE, description)
        _test_kill_point("discriminator")
        (temporary / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2))
        _test_kill_point("description")
        _save_state({**state, "keep": keep}, temporary / STATE_FILE)
        _test_kill_point("state")
    _test_kill_point("published")
    _point_last_at(folder, name)
    _test_kill_point("linked")
    _remove_superseded(folder, name)
    return target


def _test_kill_point(stage: str) -> None:
    """SIGKILL this process here if ``WAV2PIX_ZOO_TEST_KILL_AT`` asks for ``stage`` of this save."""
    wanted = os.environ.get(KILL_ENV_VAR)
    if not wanted:
        return
    wanted_stage, _, count = wanted.partition(":")
    if wanted_stage == stage and _saves_started == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _remove_superseded(folder: Path, current: str) -> None:
    """Delete every ``step_`` checkpoint but ``current``: the one ``last`` left, and any a kill
    between publishing and linking left behind (kept ones survive)."""
    for other in folder.glob(f"{STEP_PREFIX}*"):
        if other.name != current and other.is_dir() and not other.is_symlink() and not _is_kept(other):
            shutil.rmtree(other, ignore_errors=True)


def _point_last_at(folder: Path, name: str) -> None:
    link = folder / LAST
    temporary = folder / f"{TEMPORARY_PREFIX}{LAST}-{os.getpid()}"
    try:
        remove_path(temporary)
        os.symlink(name, temporary)
        os.replace(temporary, link)  # atomic: readers see the old or the new target, never neither
    except OSError as exc:
        remove_path(temporary)
        raise storage_error(link, exc) from None


def _is_kept(checkpoint: Path) -> bool:
    try:
        return bool(torch.load(checkpoint / STATE_FILE, weights_only=True).get("keep", False))
    except Exception:
        return False


# -- finding and reading ----------------------------------------------------------------------
def newest_run_checkpoint(runs_dir: Path) -> Path:
    """The ``last`` checkpoint of the most recently written run under ``runs_dir``."""
    candidates = [p for p in Path(runs_dir).glob(f"*/checkpoints/{LAST}") if (p / MODEL_FILE).is_file()]
    if not candidates:
        raise CheckpointError(
            f"no trained model found under {runs_dir}/: train one with `python main.py train`, "
            "or pass --checkpoint RUN_DIR|FILE"
        )
    return max(candidates, key=lambda p: (p / MODEL_FILE).stat().st_mtime)


def resolve(path: Optional[str | Path], runs_dir: str | Path = "runs") -> Path:
    """The ``model.safetensors`` a user means: a file, a checkpoint folder, a run folder, or
    (with no path) the newest run's last checkpoint."""
    if path is None:
        return newest_run_checkpoint(Path(runs_dir)) / MODEL_FILE
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or folder")
    for candidate in (path, path / MODEL_FILE, path / "checkpoints" / LAST / MODEL_FILE):
        if candidate.is_file():
            return candidate
    raise CheckpointError(f"{path}: no {MODEL_FILE} in this folder, nor a checkpoints/{LAST} of a run")


def read_description(file: Path) -> dict:
    """The model description stored in a safetensors header, checked; refusing anything else."""
    metadata = _open_header(file, lambda handle: handle.metadata() or {})
    if METADATA_KEY not in metadata:
        raise CheckpointError(f"{file}: a safetensors file without a wav2pix-zoo model description")
    try:
        description = json.loads(metadata[METADATA_KEY])
    except (ValueError, RecursionError):  # bad JSON, an integer of 5000 digits, deep nesting
        raise CheckpointError(f"{file}: its model description is not valid JSON") from None
    return check_description(description, str(file))


def _open_header(file: Path, read: Callable):
    """``read(handle)`` on a safetensors file opened lazily (only its header is parsed)."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            return read(handle)
    except Exception as exc:
        raise CheckpointError(
            f"{file}: not a readable safetensors checkpoint ({last_line(exc)}); "
            "pickle files (.pt, .pth, .ckpt) are refused because loading never unpickles"
        ) from None


def file_shapes(file: Path) -> dict:
    """``{tensor name: shape}`` from a safetensors header, without reading a single weight."""
    return _open_header(file, lambda handle: {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()})


def check_shapes(module: nn.Module, file: Path, prefix: str = "") -> None:
    """One clear line unless ``file`` holds exactly ``module``'s tensor names and shapes (those
    under ``prefix``, with it taken off, when one is given)."""
    expected = {k: tuple(v.shape) for k, v in unwrap(module).state_dict().items()}
    found = {k[len(prefix):]: shape for k, shape in file_shapes(file).items() if k.startswith(prefix)}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if missing or unexpected or reshaped:
        detail = "; ".join(
            f"{label} {len(keys)} (e.g. {keys[0][:80]})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape-mismatched", reshaped))
            if keys
        )
        raise CheckpointError(f"{file}: weights do not match the model architecture: {detail}")


def check_skeleton(build: Callable[[dict, str], nn.Module], description: dict, file: Path) -> None:
    """Build ``build(description, source)`` on the meta device (shapes, no memory) and compare it
    with ``file``'s tensors: a description that does not fit its weights allocates nothing."""
    try:
        with torch.device("meta"):
            skeleton = build(description, str(file))
    except Exception:  # a plugin that cannot be built without real tensors: the real build says why
        return
    check_shapes(skeleton, file)


def build_matching(build: Callable[[dict, str], nn.Module], description: dict, file: Path) -> nn.Module:
    """``build(description, source)`` for real, once its skeleton matches ``file`` (``check_skeleton``)."""
    check_skeleton(build, description, file)
    return build(description, str(file))


def load_weights(module: nn.Module, file: Path, prefix: str = "") -> None:
    """Load safetensors weights into ``module``, with one clear line on any mismatch.

    The file's description is checked and its header compared with ``module`` before any
    weight is read. ``prefix`` loads only the tensors under it (``"encoder."``: a checkpoint's
    speech encoder into an encoder module), with the prefix taken off their names.
    """
    from safetensors.torch import load_file

    if not Path(file).is_file():
        raise CheckpointError(f"{file}: no such checkpoint file")
    read_description(file)
    check_shapes(module, file, prefix)
    try:
        tensors = load_file(str(file))
    except Exception as exc:
        raise CheckpointError(f"{file}: cannot read its weights ({last_line(exc)}); the file may be truncated") from None
    if prefix:
        tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    unwrap(module).load_state_dict(tensors, strict=True)


# What a training state must hold, and of which type, before the loop may restore from it: the
# position and the optimisers by name (zoo.train.state), or, in checkpoints written before
# stages existed, the counters and the two GAN optimisers.
STATE_FIELDS = {"step": int, "epoch": int, "position": dict, "optimizers": dict}
OLD_STATE_FIELDS = {"step": int, "epoch": int, "batch_in_epoch": int, "optimizer_g": dict, "optimizer_d": dict}


def load_training_state(checkpoint: Path) -> dict:
    """Optimiser states, counters and random states of a checkpoint folder (no unpickling),
    checked for the fields a resume needs."""
    file = checkpoint / STATE_FILE
    if not file.is_file():
        raise CheckpointError(f"{checkpoint}: no {STATE_FILE}: cannot resume from it")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{file}: unreadable training state ({last_line(exc)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{file}: the training state is not a mapping")
    fields = STATE_FIELDS if "position" in state else OLD_STATE_FIELDS
    for key, kind in fields.items():
        value = state.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            raise CheckpointError(f"{file}: the training state's {key} is missing or malformed")
    optimizers = state.get("optimizers") or {k: state[k] for k in ("optimizer_g", "optimizer_d")}
    for name, value in optimizers.items():
        if not isinstance(value, dict) or not {"state", "param_groups"} <= set(value):
            raise CheckpointError(f"{file}: the training state's optimiser {name} is not an optimiser state")
    return state
