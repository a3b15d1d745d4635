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
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from zoo.errors import CheckpointError, last_line
from zoo.files import TEMPORARY_PREFIX, remove_path, remove_temporaries, replacing, storage_error
from zoo.model.speech_to_face import check_description

MODEL_FILE = "model.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
DESCRIPTION_FILE = "model.json"
STATE_FILE = "training_state.pt"
METADATA_KEY = "wav2pix_zoo"
LAST = "last"


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
    from safetensors.torch import save_file

    save_file(_tensors(module), str(path), metadata={METADATA_KEY: json.dumps(description)})


def save_checkpoint(folder: Path, name: str, *, model: nn.Module, discriminator: nn.Module,
                    description: dict, state: dict, keep: bool = False) -> Path:
    """Write checkpoint ``name`` under ``folder`` atomically and point ``last`` at it.

    ``keep`` marks a checkpoint that later saves must not delete (the every-N-epochs ones).
    """
    remove_temporaries(folder)
    target = folder / name
    with replacing(target, folder=True) as temporary:  # an older save of the same name is replaced
        _save_safetensors(model, temporary / MODEL_FILE, description)
        _save_safetensors(discriminator, temporary / DISCRIMINATOR_FILE, description)
        (temporary / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2))
        torch.save({**state, "keep": keep}, temporary / STATE_FILE)
    previous = _point_last_at(folder, name)
    if previous is not None and previous != name and not _is_kept(folder / previous):
        shutil.rmtree(folder / previous, ignore_errors=True)
    return target


def _point_last_at(folder: Path, name: str) -> Optional[str]:
    link = folder / LAST
    previous = os.readlink(link) if link.is_symlink() else None
    temporary = folder / f"{TEMPORARY_PREFIX}{LAST}-{os.getpid()}"
    try:
        remove_path(temporary)
        os.symlink(name, temporary)
        os.replace(temporary, link)  # atomic: readers see the old or the new target, never neither
    except OSError as exc:
        remove_path(temporary)
        raise storage_error(link, exc) from None
    return previous


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
    """The model description stored in a safetensors header, refusing anything else."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:
        raise CheckpointError(
            f"{file}: not a readable safetensors checkpoint ({last_line(exc)}); "
            "pickle files (.pt, .pth, .ckpt) are refused because loading never unpickles"
        ) from None
    if METADATA_KEY not in metadata:
        raise CheckpointError(f"{file}: a safetensors file without a wav2pix-zoo model description")
    try:
        description = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError:
        raise CheckpointError(f"{file}: its model description is not valid JSON") from None
    return check_description(description, str(file))


def load_weights(module: nn.Module, file: Path, prefix: str = "") -> None:
    """Load safetensors weights into ``module``, with one clear line on any mismatch.

    ``prefix`` loads only the tensors under it (``"encoder."``: a checkpoint's speech encoder
    into an encoder module), with the prefix taken off their names.
    """
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(file))
    except Exception as exc:
        raise CheckpointError(f"{file}: cannot read its weights ({last_line(exc)}); the file may be truncated") from None
    if prefix:
        tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    target = unwrap(module)
    expected = target.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if missing or unexpected or reshaped:
        detail = "; ".join(
            f"{label} {len(keys)} (e.g. {keys[0]})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape-mismatched", reshaped))
            if keys
        )
        raise CheckpointError(f"{file}: weights do not match the model architecture: {detail}")
    target.load_state_dict(tensors, strict=True)


def load_training_state(checkpoint: Path) -> dict:
    """Optimiser states, counters and random states of a checkpoint folder (no unpickling)."""
    file = checkpoint / STATE_FILE
    if not file.is_file():
        raise CheckpointError(f"{checkpoint}: no {STATE_FILE}: cannot resume from it")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{file}: unreadable training state ({last_line(exc)})") from None
