"""The offline evaluator: draw a face for every test clip once, run the chosen metrics, report.

``evaluate(pipeline, dataset, ...)`` is the core (any object with the ``FacePipeline``
interface, any dataset of the DESIGN.md section 3 shape); ``evaluate_checkpoint(...)`` builds
both from a checkpoint and a registered dataset, as ``python main.py evaluate`` does. Metrics are
plugins (``register_metrics``); how they are called and what they are handed is documented in
``zoo.evaluate.context``. A metric that cannot run here is skipped with its reason; one that fails
is recorded with its error while the others still run. Nothing is downloaded: the identity
classifier is trained here and any other weights are a path the user gives.

Written into ``out``: ``metrics.json`` (every figure, the per-identity confusion, skips, errors
and timings), ``report.md`` (the table, notes and confusion), ``real_vs_generated.png`` (real
beside generated faces per identity) and ``metrics.png`` (a bar chart of generated vs real).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from zoo.errors import UsageError, ZooError
from zoo.evaluate.face_classifier import ClassifierSettings, SharedClassifier
from zoo.evaluate.context import (CHANCE_SUFFIX, REAL_SUFFIX, EvaluationPipeline, MetricSkipped, build_metric,
                               draw_all, wants)

# wav2pix's measures first, then the field's; anything a third party registers follows, by name.
PREFERRED_ORDER = ("face_detection", "identity_accuracy", "recall_at_k", "frechet_distance", "kid", "fid")
RESULT_FILES = ("metrics.json", "report.md", "real_vs_generated.png", "metrics.png")


@dataclass
class EvaluationResult:
    """Everything one evaluation found; ``to_json()`` is what ``metrics.json`` holds."""

    setup: dict
    metrics: dict = field(default_factory=dict)  # flat name -> float
    table: list = field(default_factory=list)  # rows: metric, generated, real, chance, better
    details: dict = field(default_factory=dict)  # metric -> its details dict
    skipped: dict = field(default_factory=dict)  # metric -> why
    errors: dict = field(default_factory=dict)  # metric -> the error's line
    seconds: dict = field(default_factory=dict)  # metric -> wall seconds (and "drawing")
    files: dict = field(default_factory=dict)  # what was written, by name

    def to_json(self) -> dict:
        """The content of ``metrics.json``."""
        return {"setup": self.setup, "metrics": self.metrics, "table": self.table, "details": self.details,
                "skipped": self.skipped, "errors": self.errors, "seconds": self.seconds, "files": self.files}


def metric_names(requested=None) -> list[str]:
    """The metrics to run: the requested ones (validated) or every registered one."""
    import registry

    if requested:
        names = []
        for name in requested:
            registry.get("metric", name)  # unknown: a usage error listing the valid names
            if name not in names:
                names.append(name)
        return names
    available = [c.name for c in registry.components("metric")]
    return [n for n in PREFERRED_ORDER if n in available] + [n for n in available if n not in PREFERRED_ORDER]


def table_rows(values_by_metric: dict) -> list[dict]:
    """One row per figure: generated value, with its ``_real`` and ``_chance`` partners beside it."""
    import registry

    rows = []
    for metric, values in values_by_metric.items():
        better = registry.get("metric", metric).meta.get("better", "") if _registered(metric) else ""
        for name, value in values.items():
            if name.endswith(REAL_SUFFIX) or name.endswith(CHANCE_SUFFIX):
                continue
            rows.append({"metric": name, "generated": value, "real": values.get(name + REAL_SUFFIX),
                         "chance": values.get(name + CHANCE_SUFFIX), "better": better, "plugin": metric})
    return rows


def _registered(metric: str) -> bool:
    import registry

    return metric in {c.name for c in registry.components("metric")}


def _lazy(value_or_factory):
    """A zero-argument getter that builds a dataset on first call and remembers it.

    A build that fails raises again on every call, so each metric that needs it records the error.
    """
    state: dict = {}

    def get():
        if "value" not in state:
            state["value"] = value_or_factory() if callable(value_or_factory) else value_or_factory
        return state["value"]

    return get


def _prepare_metrics(names, metric_args, injected_base: dict, train_getter) -> dict:
    """Build each metric's callable with its injected and user arguments; returns name -> (callable, details)."""
    import registry

    metric_args = dict(metric_args or {})
    for name in metric_args:
        registry.get("metric", name)
        if name not in names:
            raise UsageError(f"--metric-arg names '{name}', which is not among the metrics evaluated "
                             f"({', '.join(names)})")
    prepared = {}
    for name in names:
        factory = registry.get("metric", name).factory
        user = registry.check_arguments("metric", name, metric_args.get(name, {}))
        details: dict = {}
        injected = {**injected_base, "details": details}
        if wants(factory, "train_dataset") and "train_dataset" not in user:
            injected["train_dataset"] = _train_or_none(train_getter)
        try:
            prepared[name] = (build_metric(factory, injected, user), details)
        except ValueError as exc:
            raise UsageError(f"metric '{name}': {exc}") from None
    return prepared


def _train_or_none(train_getter):
    try:
        return train_getter()
    except ZooError:
        return None  # the metric will say it has no training split; the classifier re-raises


def evaluate(pipeline, dataset, *, metrics=None, metric_args: Optional[dict] = None, out=None, seed: int = 0,
             device=None, train_dataset=None, cache_dir=None, batch_size: int = 64,
             classifier_settings: ClassifierSettings = ClassifierSettings(), progress: bool = True,
             setup: Optional[dict] = None, on_message: Callable[[str], None] = lambda text: None) -> EvaluationResult:
    """Run ``metrics`` (default: all registered) on one pipeline and one dataset split.

    ``train_dataset`` is the training split (or a zero-argument callable building it) that the
    identity classifier learns from. Writes the report files into ``out`` when given.
    """
    from zoo.evaluate.face_classifier import cache_root

    device = torch.device(device) if device is not None else getattr(pipeline, "device", torch.device("cpu"))
    names = metric_names(metrics)
    train_getter = _lazy(train_dataset)
    cache_dir = cache_root(cache_dir)
    classifier = SharedClassifier(train_getter, settings=classifier_settings, cache_dir=cache_dir,
                                  device=device, progress=progress)
    base = {"classifier": classifier, "cache_dir": cache_dir, "batch_size": batch_size, "seed": seed,
            "progress": progress}
    prepared = _prepare_metrics(names, metric_args, base, train_getter)
    result = EvaluationResult(setup={**(setup or {}), "clips": len(dataset), "seed": seed, "device": str(device),
                                     "metrics": names, "identities": len(dataset.identities)})
    started = time.perf_counter()
    faces = _draw(pipeline, dataset, batch_size, seed, progress)
    result.seconds["drawing"] = round(time.perf_counter() - started, 2)
    wrapped = EvaluationPipeline(pipeline, dataset, faces)
    values_by_metric = {}
    for name, (metric, details) in prepared.items():
        values = _run_one(name, metric, details, wrapped, dataset, device, result, on_message)
        if values is not None:
            values_by_metric[name] = values
    if classifier.classifier is not None:
        result.setup["classifier"] = dict(classifier.classifier.info)
    result.table = table_rows(values_by_metric)
    if out is not None:
        from zoo.evaluate.report import write_outputs

        result.files = write_outputs(result, Path(out), dataset, faces)
    return result


def _run_one(name, metric, details, pipeline, dataset, device, result: EvaluationResult, on_message):
    on_message(f"running {name}")
    started = time.perf_counter()
    try:
        values = metric(pipeline, dataset, device)
    except MetricSkipped as exc:
        result.skipped[name] = str(exc)
        on_message(f"skipped {name}: {exc}")
        return None
    except ZooError as exc:
        result.errors[name] = str(exc)
        on_message(f"failed {name}: {exc}")
        return None
    finally:
        result.seconds[name] = round(time.perf_counter() - started, 2)
    if details:
        result.details[name] = details
    values = {str(k): float(v) for k, v in dict(values).items()}
    result.metrics.update(values)
    return values


def _draw(pipeline, dataset, batch_size: int, seed: int, progress: bool) -> torch.Tensor:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("drawing a face for every clip"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), disable=not progress,
                  transient=True) as bar:
        task = bar.add_task("clips", total=len(dataset))
        return draw_all(pipeline, dataset, batch_size=batch_size, seed=seed,
                        on_progress=lambda done, total: bar.update(task, completed=done))


# -- from a checkpoint -----------------------------------------------------------------------------------------
def default_out(checkpoint_file: Path) -> Path:
    """``<run folder>/evaluation`` for a checkpoint inside a run, else ``evaluation``."""
    from zoo.train.runs import run_of_checkpoint

    run = run_of_checkpoint(checkpoint_file)
    return run / "evaluation" if run is not None else Path("evaluation")


def evaluate_checkpoint(checkpoint=None, *, dataset: Optional[str] = None, root: Optional[str] = None,
                        split: str = "test", metrics=None, metric_args: Optional[dict] = None, out=None,
                        seed: int = 0, device: str = "auto", runs_dir: str = "runs",
                        dataset_args: Optional[dict] = None, cache: bool = True, batch_size: int = 64,
                        classifier_settings: ClassifierSettings = ClassifierSettings(), progress: bool = True,
                        on_message: Callable[[str], None] = lambda text: None) -> EvaluationResult:
    """Evaluate a trained checkpoint on a registered dataset's split; see ``evaluate``."""
    import registry
    from zoo.model import checkpoints
    from zoo.data.cache import cached
    from zoo.model.pipeline import FacePipeline
    from zoo.train.runs import dataset_defaults

    metric_names(metrics)  # unknown names fail before anything heavy starts
    file = checkpoints.resolve(checkpoint, runs_dir)
    name, root, args = dataset_defaults(file, dataset, root, dataset_args)
    pipeline = FacePipeline.from_checkpoint(file, device, runs_dir)

    def split_of(which: str):
        return registry.create("dataset", name, root=root, split=which, image_size=pipeline.image_size,
                               sample_rate=pipeline.sample_rate, num_samples=pipeline.num_samples, **args)

    data = split_of(split)
    data = cached(data, progress=progress) if cache else data
    setup = {"checkpoint": str(file), "dataset": name, "root": None if root is None else str(root),
             "split": split, "image_size": pipeline.image_size,
             "model": {k: v["name"] for k, v in pipeline.description["components"].items()}}
    return evaluate(pipeline, data, metrics=metrics, metric_args=metric_args,
                    out=Path(out) if out is not None else default_out(file), seed=seed, device=pipeline.device,
                    train_dataset=lambda: split_of("train"), batch_size=batch_size,
                    classifier_settings=classifier_settings, progress=progress,
                    setup=setup, on_message=on_message)
