"""The hook specifications: one hook per component kind.

Each hook is handed a ``register(name, factory, *, description, **meta)`` callback. A plugin
calls it once per component it provides. ``factory`` is a class or function that builds the
component when called with keyword arguments; it must not be called at registration time, so
listing components never allocates weights.
"""

from __future__ import annotations

import pluggy

PROJECT = "wav2pix_zoo"

# The component kinds, each with the hook that registers it.
HOOK_OF_KIND = {
    "encoder": "register_encoders",
    "generator": "register_generators",
    "discriminator": "register_discriminators",
    "fuser": "register_fusers",
    "loss": "register_losses",
    "objective": "register_objectives",
    "preset": "register_presets",
    "dataset": "register_datasets",
    "metric": "register_metrics",
}
KINDS = tuple(HOOK_OF_KIND)

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_encoders(register):
    """Register speech encoders: ``nn.Module``s mapping ``wave[B, T]`` to ``[B, embed_dim]``."""


@hookspec
def register_generators(register):
    """Register face generators: ``(embedding[B, D], z | None) -> image[B, 3, S, S]`` in [-1, 1]."""


@hookspec
def register_discriminators(register):
    """Register discriminators: ``(image, embedding) -> (score[B], trunk features)``."""


@hookspec
def register_fusers(register):
    """Register fusers: ``nn.Module``s built with ``embed_dim`` that map the embeddings of many
    segments of one speaker, ``[B, N, embed_dim]``, to one ``[B, embed_dim]`` (SF2F's fusion)."""


@hookspec
def register_losses(register):
    """Register losses: adversarial objectives (``role="adversarial"``) and generator terms
    (``role="term"``, with a default ``coefficient``)."""


@hookspec
def register_objectives(register):
    """Register training objectives: factories ``(context: ObjectiveContext) -> Objective`` that own
    which parts train, their optimisers, the losses of one step and what it logs; a factory's
    ``check(config)`` classmethod, if any, refuses options it cannot honour before any work."""


@hookspec
def register_presets(register):
    """Register presets: zero-argument factories returning a ``Preset`` (a named bundle of
    training options: components and their arguments, objective, loss terms and coefficients,
    optimiser settings, and any training stages)."""


@hookspec
def register_datasets(register):
    """Register dataset factories taking root, split, image size, sample rate and clip length."""


@hookspec
def register_metrics(register):
    """Register metric factories returning ``callable(pipeline, dataset, device) -> {name: float}``."""
