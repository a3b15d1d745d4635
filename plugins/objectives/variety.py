"""Best of K: noise that the generator must use, so one voice can be drawn as many faces.

With an L1 pull to the paired face, a conditional generator learns to ignore its noise (pix2pix
saw this): the safest answer to an uncertain target is the average face. Under the best-of-K
("variety") loss of Social GAN (Gupta et al., CVPR 2018) and conditional IMLE (Li et al., 2020)
the generator draws K candidates per clip with different noise, and only the candidate closest
to the paired face is pulled towards it. Each region of the noise can then specialise (one
recording session's lighting, another's pose) instead of all collapsing to their mean.

Here the K candidates are drawn without gradients (a third of the cost of a training pass
each); the training step then runs once, on the chosen noise, so every term, the adversarial
one included, sees the chosen face.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo import UsageError


def check_variety(candidates, z_dim: int) -> int:
    """The ``objective.variety`` option as a count of candidates, or one ``UsageError`` line."""
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise UsageError(f"--arg objective.variety={candidates}: give a whole number of candidates >= 1 (1: off)")
    if candidates > 1 and z_dim < 1:
        raise UsageError(f"--arg objective.variety={candidates} chooses among noise draws: give the generator "
                         "noise with --z-dim N (e.g. --z-dim 16)")
    return candidates


@torch.no_grad()
def closest_noise(model: nn.Module, wave: torch.Tensor, target: torch.Tensor, candidates: int,
                  autocast) -> torch.Tensor:
    """For each clip of ``wave``, the one of ``candidates`` noise draws whose face (from the
    plain ``SpeechToFace`` ``model``) lies closest to ``target`` in mean absolute difference:
    ``[B, z_dim]``. ``autocast`` is the training step's context (bf16 where it trains in bf16)."""
    batch, z_dim = wave.shape[0], model.generator.z_dim
    noise = torch.randn(candidates * batch, z_dim, device=wave.device)
    with autocast:
        embedding = model.encoder(wave)
        faces = model.generator(embedding.repeat(candidates, 1), noise)
    distance = (faces.float() - target.float().repeat(candidates, 1, 1, 1)).abs().mean(dim=(1, 2, 3))
    best = distance.view(candidates, batch).argmin(dim=0)
    return noise.view(candidates, batch, z_dim)[best, torch.arange(batch, device=wave.device)]
