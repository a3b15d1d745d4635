"""The model: components built from the registry and described in JSON so a checkpoint alone
rebuilds them.

A *description* is a plain dict (saved as ``model.json`` and inside every safetensors header):

    {"format": "wav2pix-zoo/1",
     "components": {"encoder": {"name", "kwargs", "distribution", "version"},
                    "generator": {...}, "discriminator": {...}, "fuser": {...} (optional)},
     "identities": [...], "image_size": 64, "sample_rate": 16000, "num_samples": 16000}

The speaker classifier is core machinery (its size follows the dataset's identities), so it is
described by the identities alone. A fuser (SF2F's attention over many segments of one speaker) is
optional: without one, the segments' embeddings of a long clip are averaged.
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
    """The generator side of the GAN: speech encoder, face generator, speaker classifier and,
    optionally, a fuser of many segments' embeddings.

    They are trained together by the generator's optimiser, as in wav2pix, and saved together.
    """

    def __init__(self, encoder: nn.Module, generator: nn.Module, classifier: Optional[nn.Module],
                 fuser: Optional[nn.Module] = None):
        super().__init__()
        self.encoder = encoder
        self.generator = generator
        self.classifier = classifier
        self.fuser = fuser
        self.frozen: set = set()

    @property
    def encoder_frozen(self) -> bool:
        """Whether the encoder is fixed (voice2face's second stage, SF2F's fuser stage)."""
        return "encoder" in self.frozen

    def freeze(self, *parts: str) -> None:
        """Fix the named parts: no gradients, and eval mode (BatchNorm statistics fixed) even
        while the rest trains, as voice2face keeps its pretrained voice encoder."""
        for part in parts:
            self.frozen.add(part)
            getattr(self, part).requires_grad_(False)
            getattr(self, part).eval()

    def freeze_encoder(self) -> None:
        """Fix the encoder (see ``freeze``)."""
        self.freeze("encoder")

    def train(self, mode: bool = True) -> "SpeechToFace":
        """Train mode for the parts that learn; frozen parts stay in eval mode."""
        super().train(mode)
        for part in self.frozen:
            getattr(self, part).eval()
        return self

    def fuse(self, embeddings: torch.Tensor) -> torch.Tensor:
        """One embedding ``[1, D]`` from the embeddings ``[N, D]`` of one speaker's segments: the
        fuser's, or their mean without one."""
        if self.fuser is None:
            return embeddings.mean(dim=0, keepdim=True)
        return self.fuser(embeddings.unsqueeze(0))

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
             image_size: int, sample_rate: int, num_samples: int, fuser: Optional[tuple] = None) -> dict:
    """The JSON description of a model from ``(name, kwargs)`` pairs per component."""
    components = {"encoder": component_entry("encoder", *encoder),
                  "generator": component_entry("generator", *generator),
                  "discriminator": component_entry("discriminator", *discriminator)}
    if fuser is not None:
        components["fuser"] = component_entry("fuser", *fuser)
    return {
        "format": FORMAT,
        "components": components,
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
    """Build encoder, generator, classifier (and fuser) from a description, freshly initialised.

    Each component initialises itself (the built-ins as the reference does), so a plugin's own
    choice is never overwritten here.
    """
    encoder = _create(description, "encoder")
    generator = _create(description, "generator")
    classifier = SpeakerClassifier(encoder.embed_dim, len(description["identities"]))
    fuser = _create(description, "fuser") if "fuser" in description["components"] else None
    return SpeechToFace(encoder, generator, classifier, fuser)


def build_discriminator(description: dict) -> nn.Module:
    """Build the discriminator of a description, freshly initialised."""
    return _create(description, "discriminator")

