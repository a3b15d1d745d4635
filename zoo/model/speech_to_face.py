"""The model: components built from the registry and described in JSON so a checkpoint alone
rebuilds them.

A *description* is a plain dict (saved as ``model.json`` and inside every safetensors header):

    {"format": "wav2pix-zoo/1",
     "components": {"encoder": {"name", "kwargs", "distribution", "version"},
                    "generator": {...}, "discriminator": {...}},
     "identities": [...], "image_size": 64, "sample_rate": 16000, "num_samples": 16000}

The speaker classifier is core machinery (its size follows the dataset's identities), so it is
described by the identities alone.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

import registry
from zoo.errors import CheckpointError, PluginError, UnknownComponentError
from zoo.model.speaker_classifier import SpeakerClassifier

FORMAT = "wav2pix-zoo/1"


class SpeechToFace(nn.Module):
    """The generator side of the GAN: speech encoder, face generator and speaker classifier.

    They are trained together by the generator's optimiser, as in wav2pix, and saved together.
    """

    def __init__(self, encoder: nn.Module, generator: nn.Module, classifier: Optional[nn.Module]):
        super().__init__()
        self.encoder = encoder
        self.generator = generator
        self.classifier = classifier
        self.encoder_frozen = False

    def freeze_encoder(self) -> None:
        """Fix the encoder: no gradients, and eval mode (BatchNorm statistics fixed) even while
        the rest trains, as voice2face keeps its pretrained voice encoder."""
        self.encoder_frozen = True
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True) -> "SpeechToFace":
        """Train mode for the parts that learn; a frozen encoder stays in eval mode."""
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        return self

    def forward(self, wave: torch.Tensor, z: Optional[torch.Tensor] = None):
        """Return ``(faces, embeddings, speaker logits)`` for a batch of waveforms."""
        embedding = self.encoder(wave)
        faces = self.generator(embedding, z)
        logits = self.classifier(embedding) if self.classifier is not None else None
        return faces, embedding, logits


def component_entry(kind: str, name: str, kwargs: dict) -> dict:
    """One component's description: its name, arguments and the plugin that provides it."""
    component = registry.get(kind, name)
    return {"name": name, "kwargs": dict(kwargs), "distribution": component.distribution,
            "version": component.version}


def describe(*, encoder: tuple, generator: tuple, discriminator: tuple, identities,
             image_size: int, sample_rate: int, num_samples: int) -> dict:
    """The JSON description of a model from ``(name, kwargs)`` pairs per component."""
    return {
        "format": FORMAT,
        "components": {
            "encoder": component_entry("encoder", *encoder),
            "generator": component_entry("generator", *generator),
            "discriminator": component_entry("discriminator", *discriminator),
        },
        "identities": list(identities),
        "image_size": int(image_size),
        "sample_rate": int(sample_rate),
        "num_samples": int(num_samples),
    }


def _create(description: dict, kind: str) -> nn.Module:
    entry = description["components"][kind]
    try:
        return registry.create(kind, entry["name"], **entry["kwargs"])
    except (UnknownComponentError, PluginError) as exc:
        if entry["name"] in {c.name for c in registry.components(kind)}:
            raise
        raise CheckpointError(
            f"this checkpoint needs {kind} '{entry['name']}' from the plugin distribution "
            f"'{entry.get('distribution', '?')}' {entry.get('version', '')}, which is not installed "
            f"(pip install {entry.get('distribution', '?')})"
        ) from exc


def check_description(description: dict, source: str) -> dict:
    """Refuse anything that is not one of our model descriptions."""
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise CheckpointError(f"{source}: not a wav2pix-zoo model description")
    missing = [k for k in ("encoder", "generator") if k not in description.get("components", {})]
    if missing:
        raise CheckpointError(f"{source}: model description lacks {', '.join(missing)}")
    return description


def build_speech_to_face(description: dict) -> SpeechToFace:
    """Build encoder, generator and classifier from a description, freshly initialised.

    Each component initialises itself (the built-ins as the reference does), so a plugin's own
    choice is never overwritten here.
    """
    encoder = _create(description, "encoder")
    generator = _create(description, "generator")
    classifier = SpeakerClassifier(encoder.embed_dim, len(description["identities"]))
    return SpeechToFace(encoder, generator, classifier)


def build_discriminator(description: dict) -> nn.Module:
    """Build the discriminator of a description, freshly initialised."""
    return _create(description, "discriminator")

