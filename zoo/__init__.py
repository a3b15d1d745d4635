"""wav2pix-zoo's core: the contracts, errors and helpers that plugins build on.

This module is the plugin author's whole surface: a plugin imports only from here, e.g.
``from zoo import hookimpl, SpeechEncoder``, exactly as the built-in plugins do (a test keeps
them honest). The torch-based names load on first use (PEP 562), so ``import zoo`` stays cheap
for the command line.
"""

from __future__ import annotations

from importlib import import_module

from zoo.callbacks import SILENT, Progress, Task
from zoo.errors import (
    AudioError,
    CheckpointError,
    DataError,
    MetricSkipped,
    PluginError,
    StorageError,
    TrainingError,
    UnknownComponentError,
    UsageError,
    ZooError,
)
from zoo.hookspecs import KINDS, hookimpl

__version__ = "0.2.0"

# name -> the module that defines it, imported on first use.
_LAZY = {
    **dict.fromkeys(("SpeechEncoder", "Generator", "Discriminator", "AdversarialLoss", "GeneratorTerm",
                     "TermInputs", "FaceSpeechDataset", "Metric", "Batch", "Objective", "Stage", "Preset"),
                    "zoo.contracts"),
    **dict.fromkeys(("ObjectiveContext", "WeightedTerm"), "zoo.train.context"),
    **dict.fromkeys(("MetricContext", "load_real_faces", "labels_of"), "zoo.evaluate.context"),
    "init_weights": "zoo.model.init_weights",
    **dict.fromkeys(("load_audio", "fit_length", "peak_normalise", "AUDIO_EXTENSIONS",
                     "FALLBACK_EXTENSIONS"), "zoo.media.audio"),
    **dict.fromkeys(("load_face", "to_tensor", "to_uint8", "as_uint8_batch", "save_grid", "save_image",
                     "IMAGE_EXTENSIONS"), "zoo.media.images"),
    **dict.fromkeys(("cache_root", "check_name", "replacing"), "zoo.files"),
    "dataset_key": "zoo.evaluate.face_classifier",
}

__all__ = [
    "hookimpl", "KINDS", "Progress", "Task", "SILENT",
    "ZooError", "UsageError", "PluginError", "UnknownComponentError", "AudioError", "DataError",
    "CheckpointError", "TrainingError", "StorageError", "MetricSkipped",
    *_LAZY,
]


def __getattr__(name: str):
    """Import torch-based names lazily so the CLI starts fast."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
