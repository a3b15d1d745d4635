"""The metric-plugin contract: what a metric gets, what it returns, how it says "skipped".

A metric is registered through ``register_metrics`` as a *factory*. The evaluate core calls the
factory once per evaluation and then calls what it returns::

    metric = factory(**options)                    # options: see "Injected arguments"
    values = metric(pipeline, dataset, device)     # -> {name: float}

- ``pipeline`` has the ``FacePipeline`` interface: ``pipeline(waves[B, T]) -> faces [B, 3, S, S]``
  in [-1, 1] on the CPU, plus ``image_size``, ``sample_rate``, ``num_samples``, ``identities``.
- ``dataset`` is the evaluated split (items ``{"wave", "image", "identity", "key"}``, with
  ``identities`` and ``labels``); ``device`` is a ``torch.device``.

Returned names follow two suffix rules so the report can lay them out in columns: ``<name>`` is
the figure for the generated faces, ``<name>_real`` the same measure on the real faces (the
reference column), ``<name>_chance`` the chance level. Non-numeric results (a confusion matrix,
notes) go into the ``details`` dict the core hands over (see below).

Injected arguments: the core reads the factory's signature and fills any of these it names
(a user's ``--metric-arg NAME.KEY=VALUE`` wins over an injected value):

- ``classifier``: a zero-argument callable returning the shared ``FaceClassifier``, trained on
  the real training faces (or loaded from the cache) on first call, shared by all metrics.
- ``train_dataset``: the training split of the evaluated dataset, at the same image size.
- ``cache_dir``: where a metric may cache what it builds (a ``Path``).
- ``batch_size``, ``seed``: the evaluation's batch size and random seed.
- ``progress``: whether progress bars may be shown.
- ``details``: a fresh dict; JSON-ready entries put there are written to ``metrics.json`` under
  ``details.<metric>``. Two keys are also rendered in ``report.md``: ``notes`` (a list of lines)
  and ``confusion`` (``{"identities": [...], "<column>": [[count, ...], ...], ...}``, rows are the
  true identity, columns the predicted one).

Skipping: a metric that cannot run here (no weights given, a library missing) raises
``MetricSkipped("one line saying why and what to do")``; the evaluation goes on and the line is
printed and reported. Any ``ZooError`` it raises is recorded as that metric's error.

Faces are drawn once per evaluation: the core hands metrics an ``EvaluationPipeline`` that holds
the generated face of every clip. Call ``generated_faces(pipeline, dataset)`` and
``real_faces(dataset)`` instead of looping yourself; they work with a plain pipeline too.
"""

from __future__ import annotations

import inspect
from typing import Callable, Optional

import torch

INJECTED = ("classifier", "train_dataset", "cache_dir", "batch_size", "seed", "progress", "details")
REAL_SUFFIX = "_real"
CHANCE_SUFFIX = "_chance"


class MetricSkipped(Exception):
    """Raised by a metric that cannot run in this setting; the message says why, in one line."""


class EvaluationPipeline:
    """A pipeline plus the faces it drew for every clip of one dataset, and a shared memo.

    Everything else (``image_size``, ``identities``, calling it on waves) passes through to the
    wrapped pipeline, so a metric cannot tell it from a ``FacePipeline``.
    """

    def __init__(self, pipeline, dataset, faces: torch.Tensor):
        self.pipeline = pipeline
        self.dataset = dataset
        self.faces = faces
        self.memo: dict = {}

    def __getattr__(self, name):
        if name in ("pipeline", "dataset", "faces", "memo"):
            raise AttributeError(name)
        return getattr(self.pipeline, name)

    def __call__(self, waves: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.pipeline(waves, **kwargs)


def draw_all(pipeline, dataset, *, batch_size: int = 64, seed: int = 0,
             on_progress: Callable[[int, int], None] = lambda done, total: None) -> torch.Tensor:
    """One generated face per clip of ``dataset``, in item order: ``[N, 3, S, S]`` on the CPU.

    Each batch draws with ``seed + its first index``, so noise differs between batches and a
    face depends only on its clip, its position and the seed.
    """
    parts, total = [], len(dataset)
    for start in range(0, total, batch_size):
        waves = torch.stack([torch.as_tensor(dataset[i]["wave"]).float()
                             for i in range(start, min(start + batch_size, total))])
        parts.append(pipeline(waves, seed=seed + start).float().cpu())
        on_progress(min(start + batch_size, total), total)
    if not parts:
        raise ValueError("the dataset has no clips to draw faces for")
    return torch.cat(parts)


def shared(pipeline, key, compute: Callable[[], object]):
    """``compute()`` once per evaluation: kept in the ``EvaluationPipeline``'s memo when there is one."""
    memo = getattr(pipeline, "memo", None) if isinstance(pipeline, EvaluationPipeline) else None
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def generated_faces(pipeline, dataset, *, batch_size: int = 64, seed: int = 0) -> torch.Tensor:
    """The generated face of every clip of ``dataset`` ``[N, 3, S, S]``: drawn once, then reused."""
    if isinstance(pipeline, EvaluationPipeline) and pipeline.dataset is dataset:
        return pipeline.faces
    return shared(pipeline, ("generated", id(dataset)),
                  lambda: draw_all(pipeline, dataset, batch_size=batch_size, seed=seed))


def load_real_faces(dataset) -> torch.Tensor:
    """The real face of every item ``[N, 3, S, S]`` in [-1, 1], reading only the images if possible."""
    loader = getattr(dataset, "load_image", None)
    faces = [loader(i) if loader is not None else dataset[i]["image"] for i in range(len(dataset))]
    return torch.stack([torch.as_tensor(face).float() for face in faces])


def real_faces(pipeline, dataset) -> torch.Tensor:
    """The real faces of ``dataset``, loaded once per evaluation."""
    return shared(pipeline, ("real", id(dataset)), lambda: load_real_faces(dataset))


def labels_of(dataset) -> torch.Tensor:
    """Each item's identity index ``[N]`` (int64)."""
    return torch.as_tensor([int(label) for label in dataset.labels], dtype=torch.long)


def build_metric(factory: Callable, injected: dict, user_args: Optional[dict] = None):
    """Call a metric factory with the injected arguments its signature names, plus the user's."""
    parameters = inspect.signature(factory).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    kwargs = {name: value for name, value in injected.items() if name in parameters or
              (takes_any and name in INJECTED)}
    kwargs.update(user_args or {})
    return factory(**kwargs)


def wants(factory: Callable, name: str) -> bool:
    """Whether a metric factory's signature names ``name`` (so it must be prepared)."""
    return name in inspect.signature(factory).parameters
