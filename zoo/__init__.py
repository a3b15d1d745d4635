"""wav2pix-zoo's core: the contracts, errors and machinery that plugins build on.

Plugin authors import only from here, e.g. ``from zoo import hookimpl, SpeechEncoder``.
The torch-based contracts load on first use, so ``import zoo`` stays cheap for the CLI.
"""

from __future__ import annotations

from importlib import import_module

from zoo.errors import (
    AudioError,
    CheckpointError,
    DataError,
    PluginError,
    TrainingError,
    UnknownComponentError,
    UsageError,
    ZooError,
)
from zoo.hookspecs import KINDS, hookimpl

__version__ = "0.1.0"

_LAZY = {
    name: "zoo.contracts"
    for name in (
        "SpeechEncoder",
        "Generator",
        "Discriminator",
        "AdversarialLoss",
        "GeneratorTerm",
        "TermInputs",
        "FaceSpeechDataset",
        "Metric",
    )
}
_LAZY.update({name: "zoo.evaluate.context" for name in ("MetricSkipped", "generated_faces", "real_faces")})

__all__ = [
    "hookimpl",
    "KINDS",
    "ZooError",
    "UsageError",
    "PluginError",
    "UnknownComponentError",
    "AudioError",
    "DataError",
    "CheckpointError",
    "TrainingError",
    *_LAZY,
]


def __getattr__(name: str):
    """Import torch-based names lazily (PEP 562) so the CLI starts fast."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
