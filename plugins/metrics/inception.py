"""Inception-v3 pool features for ``fid``, from a weights file the user gives: never downloaded.

Not an entry point: ``plugins.metrics`` uses it. The network is torchvision's
``inception_v3(weights=None, aux_logits=True, init_weights=False)``; the user's state dict
(``.safetensors``, or ``.pth``/``.pt`` read with ``weights_only=True``, so nothing is unpickled)
fills every layer up to the 2048-d average pool. ``fc`` and ``AuxLogits`` are not used, so their
shapes may differ: torchvision's ImageNet file (1000 classes) and pytorch-fid's
``pt_inception-2015-12-05`` file (1008) both load. Faces go in at 299 px in [-1, 1], the range
Google's Inception expects (what torchvision's ``transform_input`` maps ImageNet input to).

With pytorch-fid's weights the numbers come close to but are not pytorch-fid's: its network
changes a few pooling layers of the blocks, which this one keeps as torchvision builds them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zoo import CheckpointError

UNUSED_PREFIXES = ("fc.", "AuxLogits.")
INPUT_SIZE = 299


def read_state_dict(path: Path) -> dict:
    """A tensor dict from ``.safetensors`` or a ``.pth`` state dict (``weights_only``), or one line why not."""
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise CheckpointError(f"{path}: cannot read Inception weights as a state dict ({reason[:200]})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_inception(path) -> nn.Module:
    """Inception-v3 with the user's weights, ``fc`` replaced by identity, in eval mode."""
    from torchvision.models import inception_v3

    path = Path(path).expanduser()
    model = inception_v3(weights=None, aux_logits=True, init_weights=False)
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(UNUSED_PREFIXES)}
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(UNUSED_PREFIXES)}
    missing = sorted(set(expected) - set(state))
    reshaped = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or reshaped:
        problem = f"{len(missing)} layers missing (e.g. {missing[0]})" if missing else \
            f"{len(reshaped)} layers of another shape (e.g. {reshaped[0]})"
        raise CheckpointError(f"{path}: not Inception-v3 weights: {problem}")
    model.load_state_dict({k: state[k] for k in expected}, strict=False)
    model.fc = nn.Identity()
    return model.eval()


@torch.inference_mode()
def inception_features(model: nn.Module, faces: torch.Tensor, device: torch.device,
                       batch_size: int = 32, size: int = INPUT_SIZE) -> torch.Tensor:
    """2048-d pool features ``[N, 2048]`` (CPU) of faces ``[N, 3, S, S]`` in [-1, 1]."""
    model = model.to(device)
    parts = []
    for chunk in faces.split(batch_size):
        chunk = F.interpolate(chunk.to(device).float(), size=(size, size), mode="bilinear",
                              align_corners=False)
        parts.append(model(chunk).float().cpu())
    return torch.cat(parts)
