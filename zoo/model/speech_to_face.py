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
from zoo.errors import CheckpointError, PluginError, UnknownComponentError, ZooError
from zoo.model.schema import FORMAT, check_description, is_project_name, is_version_text
from zoo.model.speaker_classifier import SpeakerClassifier

__all__ = ["FORMAT", "SpeechToFace", "build_discriminator", "build_speech_to_face", "check_description",
           "component_entry", "describe"]


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
        fuser's, or their mean (``mean_embedding``) without one."""
        if self.fuser is None:
            return mean_embedding(embeddings)
        return self.fuser(embeddings.unsqueeze(0))

    def forward(self, wave: torch.Tensor, z: Optional[torch.Tensor] = None):
        """Return ``(faces, embeddings, speaker logits)`` for a batch of waveforms."""
        embedding = self.encoder(wave)
        faces = self.generator(embedding, z)
        logits = self.classifier(embedding) if self.classifier is not None else None
        return faces, embedding, logits


def mean_embedding(embeddings: torch.Tensor) -> torch.Tensor:
    """The mean ``[1, D]`` of ``[N, D]`` segment embeddings, scaled to their mean length:
    averaging shortens vectors, and the generator learned from single segments' embeddings (unit
    vectors, for an encoder that normalises, as SF2F's does)."""
    mean = embeddings.mean(dim=0, keepdim=True)
    length = embeddings.norm(dim=1).mean()
    return mean * (length / mean.norm().clamp_min(1e-12))


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


def _create(description: dict, kind: str, source: Optional[str] = None) -> nn.Module:
    """Build one component of a checked description. With ``source`` (the description came from
    that file) any failure is one ``CheckpointError`` naming it; else the registry's own errors."""
    if kind not in description["components"]:
        raise CheckpointError(f"{source or 'the model description'}: it has no {kind}")
    entry = description["components"][kind]
    try:
        return registry.create(kind, entry["name"], **entry["kwargs"])
    except (UnknownComponentError, PluginError) as exc:
        if entry["name"] not in {c.name for c in registry.components(kind)}:
            raise CheckpointError(missing_plugin_message(kind, entry)) from None
        if source is None:
            raise
        raise CheckpointError(f"{source}: its {kind} '{entry['name']}' cannot be built: {exc}") from None
    except ZooError as exc:  # the factory refused the arguments the description gives it
        if source is None:
            raise
        raise CheckpointError(f"{source}: its {kind} '{entry['name']}' cannot be built: {exc}") from None


def missing_plugin_message(kind: str, entry: dict) -> str:
    """Which plugin a checkpoint needs; ``pip install`` is suggested only for a valid project name."""
    distribution, version = entry.get("distribution"), entry.get("version")
    needs = f"this checkpoint needs {kind} '{entry['name']}'"
    if not is_project_name(distribution):
        return (f"{needs}, which no installed plugin provides (its distribution is not validly named, "
                "so no install command is suggested)")
    release = f" {version}" if is_version_text(version) else ""
    return (f"{needs} from the plugin distribution '{distribution}'{release}, which is not installed "
            f"(pip install {distribution})")


def build_speech_to_face(description: dict, source: Optional[str] = None) -> SpeechToFace:
    """Build encoder, generator, classifier (and fuser) from a description, freshly initialised.

    Each component initialises itself (the built-ins as the reference does), so a plugin's own
    choice is never overwritten here. ``source`` names the file a description was read from.
    """
    encoder = _create(description, "encoder", source)
    generator = _create(description, "generator", source)
    classifier = SpeakerClassifier(encoder.embed_dim, len(description["identities"]))
    fuser = _create(description, "fuser", source) if "fuser" in description["components"] else None
    return SpeechToFace(encoder, generator, classifier, fuser)


def build_discriminator(description: dict, source: Optional[str] = None) -> nn.Module:
    """Build the discriminator of a description, freshly initialised."""
    return _create(description, "discriminator", source)

