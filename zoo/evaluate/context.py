"""What every metric is handed: one ``MetricContext``, as stylegan2-ada hands ``opts`` to each
metric function.

A metric is registered through ``register_metrics`` as a *factory* of the user's options (set
with ``--metric-arg NAME.KEY=VALUE``). The evaluator calls the factory once, then calls what it
returns with the context::

    metric = factory(**user_options)
    values = metric(context)          # -> {name: float}

The context holds the pipeline (``FacePipeline`` interface: ``pipeline(waves) -> faces``, with
``image_size``, ``sample_rate``, ``num_samples``, ``identities``), the evaluated ``dataset``, the
``device``, ``cache_dir``, ``batch_size``, ``seed``, ``progress`` and a ``details`` dict of this
metric's own. What is expensive is computed once per evaluation, on first use, and shared by
every metric: ``generated_faces`` (one face per clip), ``real_faces``, ``train_dataset`` (the
training split of the same data, or None) and ``classifier`` (the face classifier trained on
the real training faces). ``shared(key, compute)`` memoises anything else a metric family wants
to share (features of a network, say).

Returned names follow two suffix rules so the report can lay them out in columns: ``<name>`` is
the figure for the generated faces, ``<name>_real`` the same measure on the real faces (the
reference column), ``<name>_chance`` the chance level. Non-numeric results go into ``details``:
JSON-ready entries are written to ``metrics.json``; ``notes`` (a list of lines, see ``note``) and
``confusion`` (``{"identities": [...], "<column>": [[count, ...], ...]}``, rows the true
identity) also appear in ``report.md``.

A metric that cannot run here raises ``zoo.MetricSkipped("why, and what to do")``; the
evaluation goes on and the line is reported. Any other ``ZooError`` is recorded as its error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from zoo.callbacks import SILENT, Progress
from zoo.errors import DataError, ZooError

REAL_SUFFIX = "_real"
CHANCE_SUFFIX = "_chance"


def draw_all(pipeline, dataset, *, batch_size: int = 64, seed: int = 0,
             progress: Progress = SILENT) -> torch.Tensor:
    """One generated face per clip of ``dataset``, in item order: ``[N, 3, S, S]`` on the CPU.

    Each batch draws with ``seed + its first index``, so noise differs between batches and a
    face depends only on its clip, its position and the seed.
    """
    parts, total = [], len(dataset)
    with progress.task("drawing a face for every clip", total) as task:
        for start in range(0, total, batch_size):
            waves = torch.stack([torch.as_tensor(dataset[i]["wave"]).float()
                                 for i in range(start, min(start + batch_size, total))])
            parts.append(pipeline(waves, seed=seed + start).float().cpu())
            task.update(min(start + batch_size, total))
    if not parts:
        raise DataError("the dataset has no clips to draw faces for")
    return torch.cat(parts)


def load_real_faces(dataset) -> torch.Tensor:
    """The real face of every item ``[N, 3, S, S]`` in [-1, 1], reading only the images if possible."""
    loader = getattr(dataset, "load_image", None)
    faces = [loader(i) if loader is not None else dataset[i]["image"] for i in range(len(dataset))]
    return torch.stack([torch.as_tensor(face).float() for face in faces])


def labels_of(dataset) -> torch.Tensor:
    """Each item's identity index ``[N]`` (int64)."""
    return torch.as_tensor([int(label) for label in dataset.labels], dtype=torch.long)


class _Shared:
    """What one evaluation computes once for all its metrics."""

    def __init__(self, train_dataset, classifier_factory):
        self.memo: dict = {}
        self.train_source = train_dataset
        self.classifier_factory = classifier_factory


@dataclass
class MetricContext:
    """Everything a metric may use; see the module docstring. Build it with the pipeline and
    dataset alone for a quick look: the rest has defaults (no training split, the CPU)."""

    pipeline: Any
    dataset: Any
    device: torch.device = torch.device("cpu")
    train_source: Any = None  # the training split, or a zero-argument callable building it
    classifier_factory: Optional[Callable] = None  # (train_dataset, context) -> FaceClassifier
    cache_dir: Optional[Path] = None
    batch_size: int = 64
    seed: int = 0
    progress: Progress = SILENT
    details: dict = field(default_factory=dict)
    _shared: Optional[_Shared] = field(default=None, repr=False)

    def __post_init__(self):
        if self._shared is None:
            self._shared = _Shared(self.train_source, self.classifier_factory)
        if self.cache_dir is None:
            from zoo.files import cache_root

            self.cache_dir = cache_root()

    def for_metric(self) -> "MetricContext":
        """A context for the next metric: the same shared work, a fresh ``details`` dict."""
        return dataclasses.replace(self, details={})

    # -- shared work -----------------------------------------------------------------------------
    def shared(self, key, compute: Callable[[], Any]):
        """``compute()`` once per evaluation under ``key``; later calls return the same value."""
        memo = self._shared.memo
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    @property
    def generated_faces(self) -> torch.Tensor:
        """The generated face of every clip ``[N, 3, S, S]`` in [-1, 1], drawn once."""
        return self.shared("generated_faces", lambda: draw_all(
            self.pipeline, self.dataset, batch_size=self.batch_size, seed=self.seed, progress=self.progress))

    @property
    def real_faces(self) -> torch.Tensor:
        """The real face of every clip ``[N, 3, S, S]`` in [-1, 1], loaded once."""
        return self.shared("real_faces", lambda: load_real_faces(self.dataset))

    @property
    def labels(self) -> torch.Tensor:
        """Each clip's identity index ``[N]``."""
        return labels_of(self.dataset)

    @property
    def train_dataset(self):
        """The training split of the evaluated data (same image size), or None without one."""
        return self.shared("train_dataset", self._build_train_dataset)[0]

    def _build_train_dataset(self) -> tuple:
        """``(split, None)``, or ``(None, the error)`` when it cannot be built."""
        source = self._shared.train_source
        try:
            return (source() if callable(source) else source), None
        except ZooError as exc:  # the split is missing: metrics say so, the classifier re-raises
            return None, exc

    @property
    def classifier(self):
        """The face classifier trained on the real training faces (or loaded from its cache)."""
        return self.shared("classifier", self._build_classifier)

    def _build_classifier(self):
        train, failure = self.shared("train_dataset", self._build_train_dataset)
        if train is None:
            raise failure or DataError("the face classifier needs the dataset's real training faces, "
                                       "and no training split was given")
        factory = self._shared.classifier_factory
        if factory is None:
            from zoo.evaluate.face_classifier import load_or_train

            return load_or_train(train, cache_dir=self.cache_dir, device=self.device, progress=self.progress)
        return factory(train, self)

    def computed(self, key):
        """What ``shared`` holds under ``key`` if something already computed it, else None."""
        return self._shared.memo.get(key)

    # -- reporting -------------------------------------------------------------------------------
    def note(self, line: str) -> None:
        """Add a line to this metric's notes (shown in report.md)."""
        self.details.setdefault("notes", []).append(line)
