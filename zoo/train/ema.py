"""An exponential moving average of the model's weights, for sampling and checkpoints.

A GAN generator's weights oscillate from step to step; their running average draws smoother,
steadier faces (Karras et al. 2018; stylegan2-ada keeps one as ``G_ema``). The average warms up
as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so short CPU runs are not dominated
by the random initial weights. Buffers (BatchNorm's running statistics) are copied, not
averaged, as stylegan2-ada does: they describe the current weights' activations.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """The averaged copy of ``model``; ``update`` after every optimiser step."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must lie in (0, 1), not {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        """The decay of the next update: ramped up from 0.1 so early weights fade quickly."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights; copy its buffers."""
        decay = self.current_decay()
        averaged = list(self.model.parameters())
        current = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(averaged, current, 1.0 - decay)
        for mine, theirs in zip(self.model.buffers(), model.buffers()):
            mine.copy_(theirs)
        self.updates += 1

    def state_dict(self) -> dict:
        """What resuming needs besides the averaged weights themselves (saved as the model)."""
        return {"updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        """Continue the warm-up where the run stopped."""
        self.updates = int(state["updates"])
