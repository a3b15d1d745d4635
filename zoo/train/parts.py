"""What one training iteration is built from: the run's model description, its models, losses
and optimisers on the device. Shared by the trainer and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import torch

import registry
from zoo.train.config import TrainConfig
from zoo.model.speech_to_face import SpeechToFace, build_discriminator, build_speech_to_face, describe
from zoo.train.step import GanStep, WeightedTerm, make_optimizer

# Models and image batches are laid out channels_last: faster convolutions on CUDA, and about
# 6% faster on this CPU in paired runs. The data side (zoo.train.batches) uses the same.
MEMORY_FORMAT = torch.channels_last

@dataclass
class TrainingParts:
    """What one training iteration needs: models, losses and optimisers on the device."""

    model: SpeechToFace
    discriminator: torch.nn.Module
    adversarial: torch.nn.Module
    terms: list
    optimizer_g: torch.optim.Optimizer
    optimizer_d: torch.optim.Optimizer

    def gan_step(self, amp: bool, model=None, discriminator=None) -> GanStep:
        """Our iteration over these parts; ``model``/``discriminator`` may be compiled or DDP-wrapped."""
        model = self.model if model is None else model
        discriminator = self.discriminator if discriminator is None else discriminator
        return GanStep(model, discriminator, self.discriminator,
                       self.adversarial, self.terms, self.optimizer_g, self.optimizer_d,
                       autocast_dtype=torch.bfloat16 if amp else None, memory_format=MEMORY_FORMAT)


def describe_run(config: TrainConfig, identities) -> dict:
    """The model description of a run: its components with their arguments, checked."""
    c = config
    encoder_args = {"sample_rate": c.sample_rate, "num_samples": c.num_samples,
                    "embed_dim": c.embed_dim, **c.encoder_args}
    generator_args = {"image_size": c.image_size, "embed_dim": c.embed_dim, "z_dim": c.z_dim,
                      **c.generator_args}
    discriminator_args = {"image_size": c.image_size, "embed_dim": c.embed_dim, **c.discriminator_args}
    for kind, name, kwargs in (("encoder", c.encoder, encoder_args), ("generator", c.generator, generator_args),
                               ("discriminator", c.discriminator, discriminator_args)):
        registry.check_arguments(kind, name, kwargs)
    return describe(encoder=(c.encoder, encoder_args), generator=(c.generator, generator_args),
                    discriminator=(c.discriminator, discriminator_args), identities=identities,
                    image_size=c.image_size, sample_rate=c.sample_rate, num_samples=c.num_samples)


def build_training_parts(config: TrainConfig, description: dict, device: torch.device) -> TrainingParts:
    """Fresh models, losses and optimisers for ``description``, in ``MEMORY_FORMAT``."""
    c = config
    model = build_speech_to_face(description).to(device)
    discriminator = build_discriminator(description).to(device)
    model.to(memory_format=MEMORY_FORMAT)
    discriminator.to(memory_format=MEMORY_FORMAT)
    adversarial = registry.create("loss", c.loss).to(device)
    terms = [WeightedTerm(name, registry.create("loss", name).to(device),
                          c.coefficient(name, registry.get("loss", name).meta))
             for name in c.terms]
    betas = (c.beta1, c.beta2)
    return TrainingParts(model, discriminator, adversarial, terms,
                         make_optimizer(model, c.lr_g, betas, device),
                         make_optimizer(discriminator, c.lr_d, betas, device))
