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
from typing import Optional

import torch

from zoo.callbacks import SILENT, Progress
from zoo.errors import MetricSkipped, UsageError, ZooError
from zoo.evaluate.context import CHANCE_SUFFIX, REAL_SUFFIX, MetricContext
from zoo.evaluate.face_classifier import ClassifierSettings

# wav2pix's measures first, then the field's; anything a third party registers follows, by name.
PREFERRED_ORDER = ("landmarks68", "face_detection", "identity_accuracy", "face_verification", "face_retrieval",
                   "face_matching", "recall_at_k", "face_frechet", "frechet_distance", "kid", "fid")


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
    """One row per figure: generated value, with its ``_real`` and ``_chance`` partners beside it,
    which way is better and the model behind it (registration meta ``better`` and ``model``)."""
    import registry

    rows = []
    for metric, values in values_by_metric.items():
        meta = registry.get("metric", metric).meta if _registered(metric) else {}
        for name, value in values.items():
            if name.endswith(REAL_SUFFIX) or name.endswith(CHANCE_SUFFIX):
                continue
            rows.append({"metric": name, "generated": value, "real": values.get(name + REAL_SUFFIX),
                         "chance": values.get(name + CHANCE_SUFFIX), "better": meta.get("better", ""),
                         "model": str(meta.get("model", "")), "plugin": metric})
    return rows


def _registered(metric: str) -> bool:
    import registry

    return metric in {c.name for c in registry.components("metric")}


def build_metrics(names, metric_args: Optional[dict]) -> dict:
    """Each metric's callable from its factory and the user's ``--metric-arg`` options."""
    import registry

    metric_args = dict(metric_args or {})
    for name in metric_args:
        registry.get("metric", name)
        if name not in names:
            raise UsageError(f"--metric-arg names '{name}', which is not among the metrics evaluated "
                             f"({', '.join(names)})")
    built = {}
    for name in names:
        options = registry.check_arguments("metric", name, metric_args.get(name, {}))
        try:
            built[name] = registry.get("metric", name).factory(**options)
        except ValueError as exc:
            raise UsageError(f"metric '{name}': {exc}") from None
    return built


def evaluate(pipeline, dataset, *, metrics=None, metric_args: Optional[dict] = None, out=None, seed: int = 0,
             device=None, train_dataset=None, cache_dir=None, batch_size: int = 64,
             classifier_settings: ClassifierSettings = ClassifierSettings(), progress: Progress = SILENT,
             setup: Optional[dict] = None) -> EvaluationResult:
    """Run ``metrics`` (default: all registered) on one pipeline and one dataset split.

    ``train_dataset`` is the training split (or a zero-argument callable building it) that the
    identity classifier learns from. Writes the report files into ``out`` when given.
    """
    from zoo.evaluate.face_classifier import load_or_train
    from zoo.files import cache_root

    device = torch.device(device) if device is not None else getattr(pipeline, "device", torch.device("cpu"))
    names = metric_names(metrics)
    built = build_metrics(names, metric_args)

    def classifier_factory(train, context: MetricContext):
        return load_or_train(train, settings=classifier_settings, cache_dir=context.cache_dir,
                             device=context.device, progress=context.progress)

    context = MetricContext(pipeline, dataset, device=device, train_source=train_dataset,
                            classifier_factory=classifier_factory, cache_dir=cache_root(cache_dir),
                            batch_size=batch_size, seed=seed, progress=progress)
    result = EvaluationResult(setup={**(setup or {}), "clips": len(dataset), "seed": seed, "device": str(device),
                                     "metrics": names, "identities": len(dataset.identities)})
    started = time.perf_counter()
    faces = context.generated_faces
    result.seconds["drawing"] = round(time.perf_counter() - started, 2)
    values_by_metric = {}
    for name, metric in built.items():
        values = _run_one(name, metric, context.for_metric(), result, progress)
        if values is not None:
            values_by_metric[name] = values
    if context.computed("classifier") is not None:
        result.setup["classifier"] = dict(context.computed("classifier").info)
    result.table = table_rows(values_by_metric)
    if out is not None:
        from zoo.evaluate.report import write_outputs

        result.files = write_outputs(result, Path(out), dataset, faces)
    return result


def _run_one(name, metric, context: MetricContext, result: EvaluationResult, progress: Progress):
    progress.message(f"running {name}")
    started = time.perf_counter()
    try:
        values = metric(context)
    except MetricSkipped as exc:
        result.skipped[name] = str(exc)
        progress.message(f"skipped {name}: {exc}")
        return None
    except ZooError as exc:
        result.errors[name] = str(exc)
        progress.message(f"failed {name}: {exc}")
        return None
    finally:
        result.seconds[name] = round(time.perf_counter() - started, 2)
    if context.details:
        result.details[name] = context.details
    values = {str(k): float(v) for k, v in dict(values).items()}
    result.metrics.update(values)
    return values


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
                        classifier_settings: ClassifierSettings = ClassifierSettings(),
                        join: int = 0, use_fuser: Optional[bool] = None,
                        progress: Progress = SILENT) -> EvaluationResult:
    """Evaluate a trained checkpoint on a registered dataset's split; see ``evaluate``. With
    ``join`` K >= 2 each input is K clips of one identity joined, fused by the model's fuser
    (``use_fuser`` None or True) or their mean (``use_fuser`` False); see ``zoo.evaluate.joined``."""
    import registry
    from zoo.model import checkpoints
    from zoo.data.cache import cached
    from zoo.model.pipeline import FacePipeline
    from zoo.train.runs import dataset_defaults

    metric_names(metrics)  # unknown names fail before anything heavy starts
    if use_fuser is not None and not join:
        raise UsageError("--fuser and --no-fuser choose how joined clips are fused: give --join K too")
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
    if join:
        from zoo.evaluate.joined import JoinedClips, JoinedPipeline

        data = JoinedClips(data, join)
        drawing = JoinedPipeline(pipeline, join, use_fuser=use_fuser is not False)
        setup.update(joined=join, fusion=drawing.fusion, clips_left_out=data.left_out)
    else:
        drawing = pipeline
    return evaluate(drawing, data, metrics=metrics, metric_args=metric_args,
                    out=Path(out) if out is not None else default_out(file), seed=seed, device=pipeline.device,
                    train_dataset=lambda: split_of("train"), batch_size=batch_size,
                    classifier_settings=classifier_settings, progress=progress, setup=setup)
