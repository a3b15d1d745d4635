"""The ``diffusion_unet`` generator: a speech-conditioned UNet trained by flow matching, sampled
by a deterministic Euler ODE solver with classifier-free guidance.

Why flow matching (rectified flow; Liu et al., ICLR 2023; Lipman et al., ICLR 2023): a face
``x0`` and Gaussian noise are joined by the straight line ``x_t = (1 - t) x0 + t noise``, and the
network learns its constant velocity ``noise - x0`` with one plain mean squared error: no noise
schedule, no choice between epsilon, x0 or v targets, no variance terms. Straight paths are what
an ODE solver integrates best, so a few Euler steps (10 to 50) already draw a face; that matters
on a CPU, where every step is a full UNet evaluation.

Classifier-free guidance (Ho and Salimans, 2021): during training the speech condition is
replaced, with probability ``condition_dropout``, by a learned null embedding; sampling mixes the
conditional and unconditional velocities, ``v = v_null + guidance * (v_speech - v_null)``, which
trades variety for faces that follow the voice more closely. ``guidance`` 1 is the plain
conditional model (one UNet pass per step instead of two).
"""

from __future__ import annotations

from typing import Optional

import torch

from plugins.diffusion.unet import LEVELS, Conditioning, UNet
from zoo import Generator

SIZES = tuple(LEVELS)


class DiffusionGenerator(Generator):
    """``forward(embedding[B, D], z=None) -> image[B, 3, S, S]`` in [-1, 1]: a sampled face.

    The starting noise is drawn from torch's default generator on the embedding's device, so
    ``torch.manual_seed`` (generate's ``--seed``) fixes the face; ``z``, if given, is that noise
    itself (``[B, 3, S, S]``). ``steps`` (Euler steps; 10 by default: 25 cost 2.5x the time per face
    on a CPU) and ``guidance`` (classifier-free guidance
    scale) are plain attributes: ``generate --steps --guidance`` changes them at sampling time.
    Sampling runs without gradients: the model learns through ``velocity`` (the ``diffusion``
    objective), never through its samples, so it is registered ``differentiable=False``.
    """

    def __init__(self, image_size: int = 64, embed_dim: int = 128, z_dim: int = 0, width: int = 32,
                 attention: bool = True, steps: int = 10, guidance: float = 2.0,
                 condition_dropout: float = 0.1):
        if image_size not in SIZES:
            raise ValueError(f"image_size {image_size} is not supported; choose from {', '.join(map(str, SIZES))}")
        if z_dim != 0:
            raise ValueError("the diffusion generator's noise is its starting image, drawn from the seed: "
                             "use z_dim 0")
        if embed_dim < 1 or width < 8 or width % 8:
            raise ValueError(f"need embed_dim >= 1 and a width that is a multiple of 8; got {embed_dim} and {width}")
        if not 0 <= condition_dropout < 1:
            raise ValueError(f"condition_dropout must be in [0, 1), not {condition_dropout}")
        super().__init__(image_size=image_size, embed_dim=embed_dim, z_dim=0)
        self.steps = check_steps(steps)
        self.guidance = check_guidance(guidance)
        self.condition_dropout = float(condition_dropout)
        cond_dim = 4 * width
        self.conditioning = Conditioning(embed_dim, cond_dim)
        self.unet = UNet(image_size, cond_dim, width, attention)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                 keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The predicted velocity ``d x_t / d t`` at ``x[B, 3, S, S]``, times ``t[B]`` in [0, 1];
        rows where ``keep[B]`` is False are conditioned on the null embedding."""
        return self.unet(x, self.conditioning(t, embedding, keep))

    def guided_velocity(self, x: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """The classifier-free guided velocity: both passes in one batch of ``2B``."""
        if self.guidance == 1.0:
            return self.velocity(x, t, embedding)
        batch = x.shape[0]
        keep = torch.arange(2 * batch, device=x.device) < batch  # first half speech, second null
        both = self.velocity(torch.cat([x, x]), torch.cat([t, t]), torch.cat([embedding, embedding]), keep)
        speech, null = both.float().split(batch)
        return null + self.guidance * (speech - null)

    @torch.no_grad()
    def forward(self, embedding: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Integrate the flow from noise (t = 1) to a face (t = 0) in ``steps`` Euler steps."""
        shape = (embedding.shape[0], 3, self.image_size, self.image_size)
        if z is None:
            z = torch.randn(shape, device=embedding.device)
        elif tuple(z.shape) != shape:
            raise ValueError(f"z is the starting noise of shape {list(shape)}, not {list(z.shape)}")
        x = z.float().to(memory_format=torch.channels_last)
        times = torch.linspace(1.0, 0.0, self.steps + 1, device=embedding.device)
        for now, then in zip(times[:-1], times[1:]):
            t = now.expand(shape[0])
            x = x + (then - now) * self.guided_velocity(x, t, embedding)
        return x.clamp(-1, 1)


def check_steps(steps) -> int:
    """``steps`` if it is a whole number of Euler steps >= 1, else a ValueError."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, not {steps!r}")
    return steps


def check_guidance(guidance) -> float:
    """``guidance`` as a float if it is a finite scale >= 0, else a ValueError."""
    try:
        value = float(guidance)
    except (TypeError, ValueError):
        raise ValueError(f"guidance must be a number, not {guidance!r}") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"guidance must be a finite number >= 0, not {guidance!r}")
    return value
