"""Scoring one model of a comparison: the full metrics on the test split, the cost of training
it, and quality against training time from the checkpoints it kept along the way."""

from __future__ import annotations

import json
from pathlib import Path

from zoo.callbacks import Progress
from zoo.model import checkpoints


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def parameter_count(checkpoint: Path) -> int:
    """Weights of the model and its discriminator, counted from the safetensors headers."""
    from safetensors import safe_open

    total = 0
    for name in (checkpoints.MODEL_FILE, checkpoints.DISCRIMINATOR_FILE):
        with safe_open(str(checkpoint / name), framework="pt") as handle:
            total += sum(_numel(handle.get_slice(key).get_shape()) for key in handle.keys())
    return total


def _numel(shape) -> int:
    count = 1
    for size in shape:
        count *= int(size)
    return count


class _Every:
    """An evenly spread subset of a dataset's items (for the quick quality curve)."""

    def __init__(self, dataset, count: int):
        step = max(1, len(dataset) // max(1, count))
        self.dataset, self.indices = dataset, list(range(0, len(dataset), step))[:count]
        self.identities = dataset.identities
        self.labels = [dataset.labels[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return self.dataset[self.indices[i]]

    def load_image(self, i: int):
        loader = getattr(self.dataset, "load_image", None)
        return loader(self.indices[i]) if loader else self.dataset[self.indices[i]]["image"]


def curve(run: Path, options, progress: Progress) -> list[dict]:
    """``curve_metrics`` on a subset of the test split for every checkpoint the run kept, with
    the training time it had reached (from stats.jsonl)."""
    import registry
    from zoo.data.cache import cached
    from zoo.evaluate.evaluator import evaluate
    from zoo.model.pipeline import FacePipeline
    from zoo.train.runs import dataset_defaults

    seconds_at = {record["epoch"] + 1: record.get("seconds") for record in _read_jsonl(run / "stats.jsonl")}
    points = []
    for folder in sorted((run / "checkpoints").glob("epoch_*")):
        epoch = int(folder.name.split("_")[1])
        pipeline = FacePipeline.from_checkpoint(folder, options.device)
        name, root, args = dataset_defaults(pipeline.source, options.dataset, options.data, None)

        def split(which: str):
            return cached(registry.create("dataset", name, root=root, split=which, image_size=pipeline.image_size,
                                          sample_rate=pipeline.sample_rate, num_samples=pipeline.num_samples, **args))

        result = evaluate(pipeline, _Every(split("test"), options.curve_clips), metrics=list(options.curve_metrics),
                          seed=options.seed, train_dataset=lambda: split("train"), progress=progress)
        points.append({"epoch": epoch, "seconds": seconds_at.get(epoch), **result.metrics})
    return points


def evaluate_entry(outcome, options, progress: Progress) -> dict:
    """Everything the leaderboard says about one trained (or given) model."""
    from zoo.evaluate.evaluator import evaluate_checkpoint

    entry = outcome.entry
    run = entry.run_dir
    last = checkpoints.resolve(run).parent
    result = evaluate_checkpoint(run, dataset=options.dataset, root=options.data, split="test",
                                 metrics=options.metrics, out=options.out / "evaluations" / entry.name,
                                 seed=options.seed, device=options.device, progress=progress)
    stats, summary = _read_jsonl(run / "stats.jsonl"), _read_json(run / "summary.json")
    config = _read_json(run / "config.json")
    marker = _read_json(run / "compare-done.json")
    options_used = config.get("options", {})
    world = int(config.get("world_size", 1))
    steps = int(summary.get("step", 0))
    train_seconds = stats[-1].get("seconds") if stats else None
    pairs = steps * int(options_used.get("batch_size", 0)) * world
    return {
        "metrics": result.metrics, "table": result.table,
        "parameters": parameter_count(last), "steps": steps, "pairs_seen": pairs,
        "train_seconds": train_seconds, "wall_seconds": round(outcome.wall_seconds, 1) or marker.get("wall_seconds"),
        "pairs_per_s": pairs / train_seconds if train_seconds else None,
        "peak_rss_bytes": summary.get("peak_memory", {}).get("rss"),
        "command": marker.get("command") or (f"(given run) {run}" if entry.existing else ""),
        "curve": curve(run, options, progress), "run": str(run),
    }
