"""What an objective is handed: the models of the run, its options, and the means to build losses
and optimisers the same way every objective does.

An objective plugin's factory is called as ``factory(context)``; see ``zoo.Objective``.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Iterable, Optional

import torch
from torch import nn

import registry

# Models and image batches are laid out channels_last: faster convolutions on CUDA, and about
# 6% faster on this CPU in paired runs. The data side (zoo.train.batches) uses the same.
MEMORY_FORMAT = torch.channels_last


@dataclass
class WeightedTerm:
    """A generator term with its coefficient."""

    name: str
    module: nn.Module
    coefficient: float


@dataclass
class ObjectiveContext:
    """The run's models and options, for an objective to train."""

    model: nn.Module  # SpeechToFace: encoder, generator, speaker classifier (unwrapped)
    discriminator: Optional[nn.Module]  # unwrapped; None when the run has none
    config: object  # the resolved TrainConfig of this stage
    device: torch.device
    options: dict = field(default_factory=dict)  # --arg objective.KEY=VALUE
    memory_format: torch.memory_format = MEMORY_FORMAT

    @property
    def autocast_dtype(self) -> Optional[torch.dtype]:
        """bf16 under ``--amp``, else None (float32)."""
        return torch.bfloat16 if self.config.amp else None

    def autocast(self):
        """bf16 autocast where asked; a no-op context otherwise."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def component_meta(self, kind: str, name: str) -> dict:
        """What a registered component's plugin said about it (``conditional``, ``sizes`` ...)."""
        return dict(registry.get(kind, name).meta)

    def adversarial_loss(self) -> nn.Module:
        """The adversarial objective named by ``--loss``, on the device."""
        return registry.create("loss", self.config.loss).to(self.device)

    def generator_terms(self) -> list[WeightedTerm]:
        """The generator terms named by ``--terms``, each with its coefficient. A term's factory
        is also handed the ``--arg objective.KEY=VALUE`` options its signature names (e.g. the
        perceptual term's ``facenet_weights``)."""
        terms = []
        for name in self.config.terms:
            component = registry.get("loss", name)
            wanted = inspect.signature(component.factory).parameters
            args = {k: v for k, v in self.options.items() if k in wanted}
            terms.append(WeightedTerm(name, registry.create("loss", name, **args).to(self.device),
                                      self.config.coefficient(name, component.meta)))
        return terms

    def optimizer(self, modules: Iterable[nn.Module], lr: float) -> torch.optim.Optimizer:
        """Adam with the run's betas over the trainable parameters of ``modules``; fused on CUDA,
        multi-tensor elsewhere."""
        params = [p for module in modules for p in module.parameters() if p.requires_grad]
        betas = (self.config.beta1, self.config.beta2)
        if self.device.type == "cuda":
            return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)
