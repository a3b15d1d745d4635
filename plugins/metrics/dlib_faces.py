"""dlib's pretrained face models on a set of faces: detection, 68 landmarks, 128-d descriptors.

Not an entry point: ``plugins.metrics.face_protocols`` builds its metrics on ``analyse``.

The models ship in pip wheels and nothing is downloaded: dlib-bin (prebuilt dlib, Boost licence)
carries the HOG frontal face detector; face-recognition-models (CC0; the files are Davis King's
dlib-models, released into the public domain) carries the 5- and 68-point landmark predictors and
the ResNet descriptor. The 68-point predictor was trained on iBUG 300-W, whose licence excludes
commercial use. The files are found through the package's location, without importing it: its
``__init__`` imports ``pkg_resources``, which recent setuptools no longer ship.

How a face is prepared (the same for generated and real faces, at any model size): resized to
``size`` px (160 by default; bicubic up, area down), because dlib's HOG detector scans an 80 px
window and a 64 px face is below its comfortable size, then given a border of ``border`` x size
(25%) of replicated edge pixels, because the crops are tight: without it the jaw's landmarks fall
outside the image and the detector lacks context. Measured on the 615 youtubers test faces at 64
and at 128 px: 98.4% detected with all 68 landmarks inside (95.9% detected and 3-4% with the
landmarks inside without the border); noise, 0%.

Descriptors are computed for every face, found or not: the 5-point predictor places eyes and nose
inside the face crop's own square (the input *is* a face crop, real or generated), dlib's
``get_face_chip`` aligns a 150 px chip, and ``dlib_resnet`` runs the network. The descriptors of
the real faces of a split are cached like the face classifier (safetensors under the cache
folder, keyed by the split's ``cache_key()``, these settings and the model files).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from plugins.metrics import dlib_chips
from zoo import SILENT, MetricSkipped, Progress, as_uint8_batch, cache_root, dataset_key, replacing

DETECTOR_LABEL = "dlib-hog+68"
DESCRIPTOR_LABEL = "dlib-resnet128"
PACKAGES = "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"
MODEL_FILES = {"landmarks68": "shape_predictor_68_face_landmarks.dat",
               "landmarks5": "shape_predictor_5_face_landmarks.dat",
               "descriptor": "dlib_face_recognition_resnet_model_v1.dat"}
FORMAT = "wav2pix-zoo/dlib-faces/1"
METADATA_KEY = "wav2pix_zoo_dlib_faces"
SUBFOLDER = "dlib_faces"
CHUNK = 64  # faces aligned before each pass of the network (bounds memory, paces progress)


@dataclass(frozen=True)
class FaceSettings:
    """How faces are prepared for dlib, and where its model files are (see the module docstring)."""

    size: int = 160  # side, in pixels, every face is resized to before detection and alignment
    border: float = 0.25  # replicated border added around it, as a share of ``size``
    models: Optional[str] = field(default=None, compare=False)  # folder of the .dat files (None: the wheel's)

    def key(self) -> dict:
        """What changes the results (not where the files are)."""
        return {"size": self.size, "border": self.border}


@dataclass
class FaceAnalysis:
    """What dlib finds in each of N faces."""

    descriptors: np.ndarray  # float32 [N, 128]: the ResNet descriptor of the aligned face
    detected: Optional[np.ndarray] = None  # bool [N]: the HOG detector found a face (None: not run)
    landmarks68: Optional[np.ndarray] = None  # bool [N]: ... and placed all 68 landmarks inside the image


# -- the models ------------------------------------------------------------------------------------------
def models_folder(models: Optional[str] = None) -> Path:
    """The folder of dlib's model files: ``models``, else the face_recognition_models package's."""
    if models:
        return Path(models).expanduser()
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MetricSkipped(f"face-recognition-models is not installed (dlib's model files): {PACKAGES}")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def model_files(settings: FaceSettings) -> dict[str, Path]:
    """Every model file's path; a ``MetricSkipped`` line saying what to install when one is missing."""
    try:
        import dlib  # noqa: F401
    except ImportError as exc:
        raise MetricSkipped(f"dlib is not installed ({exc}): {PACKAGES}") from None
    folder = models_folder(settings.models)
    files = {role: folder / name for role, name in MODEL_FILES.items()}
    missing = [path.name for path in files.values() if not path.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MetricSkipped(f"dlib model file {missing[0]}{more} not found in {folder}: "
                            f"pip install face-recognition-models==0.3.0, or set the models option to their folder")
    return files


class Models:
    """dlib's detector, both landmark predictors and the descriptor network (``load_models``
    keeps one per process: the 68-point model alone is a 100 MB file)."""

    def __init__(self, files: dict[str, Path], device: torch.device):
        from plugins.metrics import dlib_resnet

        self.shape_files = (str(files["landmarks68"]), str(files["landmarks5"]))
        # read here so a damaged file is one skip line; cached, so forked workers inherit them
        self.shapes = _read(dlib_chips.shape_models, *self.shape_files)
        self.network = _read(lambda path: dlib_resnet.load(path, str(device)), str(files["descriptor"]))


def _read(loader, *paths: str):
    """``loader(*paths)``; a damaged file is a ``MetricSkipped`` line, not dlib's traceback."""
    try:
        return loader(*paths)
    except (RuntimeError, ValueError, OSError) as exc:
        raise MetricSkipped(f"cannot read dlib model file {' or '.join(paths)} ({str(exc).strip().splitlines()[0]}): "
                            f"pip install --force-reinstall face-recognition-models==0.3.0") from None


@lru_cache(maxsize=2)
def load_models(files: tuple, device: str) -> Models:
    """The models of ``files`` (``(role, path)`` pairs) on ``device``, loaded once per process."""
    return Models(dict(files), torch.device(device))


# -- many faces -------------------------------------------------------------------------------------------------
def analyse(faces, settings: FaceSettings, *, detect: bool = True, device=None, progress: Progress = SILENT,
            label: str = "faces", workers: Optional[int] = None) -> FaceAnalysis:
    """Descriptors and (with ``detect``) detection and 68 landmarks of faces ``[N, 3, S, S]`` in
    [-1, 1] (or uint8 ``[N, S, S, 3]``). Detection is 40% of the time: a gallery goes without.
    The per-face dlib work runs in ``workers`` processes (default: one per core for large
    batches; see ``dlib_chips``), the descriptor network here."""
    from plugins.metrics.dlib_resnet import describe

    models = load_models(tuple(sorted(model_files(settings).items())), str(torch.device(device or "cpu")))
    images = as_uint8_batch(faces)
    detected, inside, descriptors = [], [], []
    workers = dlib_chips.worker_count(len(images), workers)
    chunks = dlib_chips.prepare_faces(images, settings.size, settings.border, models.shape_files, detect,
                                      CHUNK, workers)
    with progress.task(f"dlib: {label}", len(images)) as task:
        for found, placed, chips in chunks:
            detected += found
            inside += placed
            descriptors.append(describe(models.network, chips))
            task.update(sum(map(len, descriptors)))
    return FaceAnalysis(np.concatenate(descriptors) if descriptors else np.zeros((0, 128), np.float32),
                        np.asarray(detected, dtype=bool) if detect else None,
                        np.asarray(inside, dtype=bool) if detect else None)


def cache_path(dataset, settings: FaceSettings, cache_dir=None, detect: bool = True) -> Path:
    """Where the analysis of ``dataset``'s real faces under ``settings`` is kept."""
    files = model_files(settings)
    key = {"format": FORMAT, "data": dataset_key(dataset), "settings": settings.key(), "detect": detect,
           "models": {path.name: path.stat().st_size for path in files.values()}}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    parts = [getattr(dataset, "name", "dataset"), getattr(dataset, "split", None), getattr(dataset, "image_size", None)]
    name = "-".join(str(part).replace(os.sep, "_") for part in parts if part is not None)
    return cache_root(cache_dir) / SUBFOLDER / f"{name}-{digest}.safetensors"


def cached_analysis(dataset, load_faces: Callable[[], torch.Tensor], settings: FaceSettings, *, detect: bool = True,
                    cache_dir=None, device=None, progress: Progress = SILENT, label: str = "real faces") -> FaceAnalysis:
    """The analysis of a split's real faces: read from the cache, else computed and cached."""
    path = cache_path(dataset, settings, cache_dir, detect)
    if path.is_file():
        try:
            return load_analysis(path)
        except Exception:  # an unreadable or stale entry: compute afresh and replace it
            path.unlink(missing_ok=True)
    analysis = analyse(load_faces(), settings, detect=detect, device=device, progress=progress, label=label)
    save_analysis(analysis, path, settings)
    return analysis


def save_analysis(analysis: FaceAnalysis, path: Path, settings: FaceSettings) -> Path:
    """Write an analysis as safetensors, atomically."""
    from safetensors.numpy import save_file

    arrays = {"descriptors": np.ascontiguousarray(analysis.descriptors, dtype=np.float32)}
    for name in ("detected", "landmarks68"):
        if getattr(analysis, name) is not None:
            arrays[name] = getattr(analysis, name).astype(np.uint8)
    meta = {"format": FORMAT, "settings": settings.key()}
    with replacing(path) as temporary:
        save_file(arrays, str(temporary), metadata={METADATA_KEY: json.dumps(meta)})
    return path


def load_analysis(path: Path) -> FaceAnalysis:
    """Read an analysis written by ``save_analysis``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        meta = json.loads((handle.metadata() or {})[METADATA_KEY])
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a dlib face analysis of format {FORMAT}")
        arrays = {name: handle.get_tensor(name) for name in handle.keys()}
    flags = {name: arrays[name].astype(bool) for name in ("detected", "landmarks68") if name in arrays}
    return FaceAnalysis(arrays["descriptors"].astype(np.float32), **flags)


def settings_of(options: dict) -> FaceSettings:
    """``FaceSettings`` from a metric's options, refusing sizes dlib cannot use."""
    settings = FaceSettings(**options)
    if settings.size < 80:
        raise ValueError(f"size {settings.size}: dlib's HOG detector needs faces of at least 80 px")
    if not 0.0 <= settings.border <= 1.0:
        raise ValueError(f"border {settings.border}: give a share of the size between 0 and 1")
    return settings


def as_dict(settings: FaceSettings) -> dict:
    """The settings as JSON-ready details."""
    return asdict(settings)
