"""Every registered metric honours the contract of ``zoo.evaluate.context``, the moment it is registered.

A metric factory, built with its defaults, returns a callable ``metric(context) -> {name: float}``
whose ``_real`` and ``_chance`` names have a partner, or raises ``MetricSkipped`` with a reason;
it never downloads.
"""

from __future__ import annotations

import math

import pytest
import inspect

from conftest import registered
from fake_pipelines import PairedFacePipeline

METRICS = registered("metric")


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """A tiny synthetic split, its training split, and one shared tiny classifier."""
    import registry
    from zoo.evaluate.face_classifier import ClassifierSettings, load_or_train

    common = dict(image_size=32, sample_rate=16000, num_samples=2000, num_identities=3)
    train = registry.create("dataset", "synthetic", split="train", clips_per_identity=8, **common)
    test = registry.create("dataset", "synthetic", split="test", clips_per_identity=3, **common)
    cache = tmp_path_factory.mktemp("metric-contract-cache")
    settings = ClassifierSettings(epochs=1, min_steps=8, batch_size=16)
    classifier = load_or_train(train, settings=settings, cache_dir=cache)
    return {"train": train, "test": test, "cache": cache, "classifier": classifier}


def _context(setting):
    from zoo import MetricContext

    test = setting["test"]
    return MetricContext(PairedFacePipeline(test), test, train_source=setting["train"],
                         classifier_factory=lambda train, context: setting["classifier"],
                         cache_dir=setting["cache"], batch_size=8)


def test_the_built_in_metrics_are_registered():
    assert {"face_detection", "identity_accuracy", "frechet_distance", "kid", "fid", "recall_at_k", "landmarks68",
            "face_verification", "face_retrieval", "face_matching", "face_frechet"} <= set(METRICS)


@pytest.mark.parametrize("name", METRICS)
def test_metric_is_described_and_says_which_way_is_better(name):
    import registry

    component = registry.get("metric", name)
    assert component.description.strip()
    assert component.meta.get("better", "higher") in ("higher", "lower")
    if component.distribution == "wav2pix-zoo":  # the built-ins name the model behind their figures
        assert str(component.meta.get("model", "")).strip(), f"{name} does not say which model it measures with"


@pytest.mark.parametrize("name", METRICS)
def test_metric_returns_named_floats_or_a_reasoned_skip(name, setting):
    import registry
    from zoo import MetricSkipped

    metric = registry.create("metric", name)
    context = _context(setting)
    try:
        values = metric(context)
    except MetricSkipped as skipped:
        assert str(skipped).strip(), f"{name} skipped without saying why"
        return
    assert values and all(isinstance(k, str) for k in values)
    assert all(isinstance(v, float) and math.isfinite(v) for v in values.values())
    for key in values:
        for suffix in ("_real", "_chance"):
            if key.endswith(suffix):
                assert key[: -len(suffix)] in values, f"{key} has no generated partner"
    import json

    json.dumps(context.details)  # whatever a metric reports beside its numbers must be JSON-ready


@pytest.mark.parametrize("name", METRICS)
def test_metric_factory_builds_without_allocating_or_reading(name):
    """Building a metric only records its options: the work happens when it is called."""
    import registry

    metric = registry.create("metric", name)
    assert callable(metric)
    assert not inspect.signature(metric).parameters.keys() - {"context"}, "metric(context) is the contract"
