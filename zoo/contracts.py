"""The contracts every component honours (DESIGN.md section 3).

Base classes are optional conveniences for plugin authors: the registry's contract tests check
behaviour, not inheritance. Tensors are float32 on the caller's device; B is the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol, Sequence

import torch
from torch import nn

from zoo.hookspecs import KINDS  # noqa: F401  (re-exported for plugin authors)


class SpeechEncoder(nn.Module):
    """``forward(wave[B, T]) -> [B, embed_dim]``; mono waveform in [-1, 1] at ``sample_rate``.

    Anything encoder-specific (pre-emphasis, mel features) happens inside ``forward`` so that
    training and generation can never disagree about it.
    """

    def __init__(self, *, sample_rate: int, num_samples: int, embed_dim: int):
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.num_samples = int(num_samples)
        self.embed_dim = int(embed_dim)


class Generator(nn.Module):
    """``forward(embedding[B, D], z[B, z_dim] | None) -> image[B, 3, S, S]`` in [-1, 1], RGB.

    ``z_dim == 0`` means no noise input, as in wav2pix.
    """

    def __init__(self, *, image_size: int, embed_dim: int, z_dim: int = 0):
        super().__init__()
        self.image_size = int(image_size)
        self.embed_dim = int(embed_dim)
        self.z_dim = int(z_dim)


class Discriminator(nn.Module):
    """``forward(image, embedding) -> (score[B], features)``.

    ``features`` are the trunk activations that feature matching compares. A discriminator may
    also carry an identity classifier (voice2face's): ``classify(features) -> logits[B, N]`` on the
    features its forward returned, registered with ``classifier_head=True`` and taking a
    ``num_identities`` argument (the core fills it in). Register ``conditional=False`` when it
    ignores the speech embedding: it is then never shown mismatched pairs.
    """

    def __init__(self, *, image_size: int, embed_dim: int):
        super().__init__()
        self.image_size = int(image_size)
        self.embed_dim = int(embed_dim)


class AdversarialLoss(nn.Module):
    """An adversarial objective, registered with ``role="adversarial"``."""

    def discriminator_loss(
        self, real: torch.Tensor, fake: torch.Tensor, wrong: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """The discriminator's loss from raw scores of real, fake and mismatched pairs.

        ``wrong`` is None when the dataset has a single identity (no mismatched pairs).
        """
        raise NotImplementedError

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss from the raw scores of its fakes."""
        raise NotImplementedError


@dataclass
class TermInputs:
    """Everything a generator term may look at in one training step."""

    fake: torch.Tensor  # [B, 3, S, S] generated faces
    real: torch.Tensor  # [B, 3, S, S] the faces paired with the speech
    fake_features: torch.Tensor  # discriminator trunk features of (fake, embedding)
    real_features: torch.Tensor  # discriminator trunk features of (real, embedding)
    logits: Optional[torch.Tensor]  # speaker classifier output [B, N], None without one
    identity: torch.Tensor  # [B] int64 identity labels
    face_logits: Optional[torch.Tensor] = None  # the discriminator's identity head on the fakes [B, N]


class GeneratorTerm(nn.Module):
    """A generator term, registered with ``role="term"``: ``forward(TermInputs) -> scalar``.

    Its weight comes from the registration's ``coefficient`` meta, overridable by the user.
    """

    def forward(self, inputs: TermInputs) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class Batch:
    """One training batch on the device, as every objective receives it."""

    wave: torch.Tensor  # [B, T] encoder-ready speech
    image: torch.Tensor  # [B, 3, S, S] the faces paired with the speech
    wrong: Optional[torch.Tensor]  # [B, 3, S, S] faces of other identities, or None
    identity: torch.Tensor  # [B] int64


class Objective:
    """How a run learns: registered with ``register_objectives`` as a factory
    ``(context: ObjectiveContext) -> Objective``.

    An objective owns which parts train (``optimizers`` holds one optimiser per group of
    parameters, saved and restored by name), the losses of one step and what it logs; the
    trainer keeps the loop, checkpoints, resume, DDP, sample sheets and progress.
    """

    def __init__(self, context):
        self.context = context
        self.optimizers: dict = {}

    @classmethod
    def check(cls, config) -> None:
        """Refuse, with a ``UsageError``, resolved training options (a ``TrainConfig``) that this
        objective cannot honour; called before any work starts. The default accepts all."""

    def bind(self, wrap) -> None:
        """Receive ``wrap(module) -> module``: the trainer's DDP and compile wrapper. Wrap the
        modules this objective runs forward through (the default wraps nothing)."""

    def setup(self, train_dataset) -> None:
        """Called once before the first step of a stage with the training split (to fill a
        bank of faces, say). The default does nothing."""

    def step(self, batch: Batch) -> dict:
        """One training iteration; returns detached scalar tensors by name (``d_loss``, ...)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Stage:
    """One stage of a staged preset: its objective, its share of the run's budget (epochs and
    ``--max-steps`` are split by share) and the options that differ in it."""

    name: str
    objective: str
    share: float = 1.0
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Preset:
    """What a preset factory returns: training options (as ``train`` takes them) and stages."""

    options: dict
    stages: tuple = ()
    reference: str = ""  # the paper and code it follows


class FaceSpeechDataset(Protocol):
    """What a dataset factory returns: a map-style dataset with identities.

    Items are ``{"wave": [T] float32, "image": [3, S, S] float32 in [-1, 1] RGB,
    "identity": int}``. ``labels[i]`` is item i's identity without loading it, so the core can
    sample mismatched faces cheaply. ``identities`` are the sorted identity names.
    """

    identities: Sequence[str]
    labels: Sequence[int]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict: ...


class Metric(Protocol):
    """What a metric factory returns: ``metric(pipeline, dataset, device) -> {name: float}``."""

    def __call__(self, pipeline, dataset, device) -> dict: ...
