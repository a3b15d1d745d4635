"""What a run is built from: the model description, the models on the device, and the objective
that trains them. Shared by the trainer and the benchmark."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Optional

import torch

import registry
from zoo.model.speech_to_face import SpeechToFace, build_discriminator, build_speech_to_face, describe
from zoo.train.config import TrainConfig
from zoo.train.context import MEMORY_FORMAT, ObjectiveContext

# Arguments the core fills in for a factory whose signature names them (a classifier head's size).
IDENTITY_COUNT_ARGUMENT = "num_identities"


@dataclass
class TrainingParts:
    """The run's models on the device (unwrapped: what checkpoints hold)."""

    model: SpeechToFace
    discriminator: Optional[torch.nn.Module]


def _takes(kind: str, name: str, argument: str) -> bool:
    factory = registry.get(kind, name).factory
    try:
        return argument in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin without a readable signature
        return False


def component_arguments(kind: str, name: str, base: dict, extra: dict, identities) -> dict:
    """A component's arguments: the run's sizes, the identity count if its factory asks, then
    the user's ``--arg`` values (which win); checked against the factory's signature."""
    kwargs = dict(base)
    if _takes(kind, name, IDENTITY_COUNT_ARGUMENT):
        kwargs[IDENTITY_COUNT_ARGUMENT] = len(identities)
    kwargs.update(extra)
    return registry.check_arguments(kind, name, kwargs)


def describe_run(config: TrainConfig, identities) -> dict:
    """The model description of a run: its components with their arguments, checked."""
    c = config
    encoder = component_arguments("encoder", c.encoder, {"sample_rate": c.sample_rate, "num_samples": c.num_samples,
                                                         "embed_dim": c.embed_dim}, c.encoder_args, identities)
    generator = component_arguments("generator", c.generator, {"image_size": c.image_size, "embed_dim": c.embed_dim,
                                                               "z_dim": c.z_dim}, c.generator_args, identities)
    discriminator = component_arguments("discriminator", c.discriminator, {"image_size": c.image_size,
                                                                           "embed_dim": c.embed_dim},
                                        c.discriminator_args, identities)
    fuser = None
    if c.fuser is not None:
        fuser = (c.fuser, component_arguments("fuser", c.fuser, {"embed_dim": c.embed_dim}, c.fuser_args, identities))
    return describe(encoder=(c.encoder, encoder), generator=(c.generator, generator),
                    discriminator=(c.discriminator, discriminator), identities=identities,
                    image_size=c.image_size, sample_rate=c.sample_rate, num_samples=c.num_samples, fuser=fuser)


def build_parts(description: dict, device: torch.device) -> TrainingParts:
    """Fresh models for ``description`` on ``device``, in ``MEMORY_FORMAT``."""
    model = build_speech_to_face(description).to(device)
    discriminator = build_discriminator(description).to(device)
    model.to(memory_format=MEMORY_FORMAT)
    discriminator.to(memory_format=MEMORY_FORMAT)
    return TrainingParts(model, discriminator)


def build_objective(config: TrainConfig, parts: TrainingParts, device: torch.device):
    """The objective named by ``config.objective`` over ``parts`` (fresh optimisers)."""
    context = ObjectiveContext(parts.model, parts.discriminator, config, device, dict(config.objective_args))
    return registry.create("objective", config.objective, context=context)
