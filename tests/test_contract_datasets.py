"""The dataset contract (DESIGN.md section 3), checked for every registered dataset.

A dataset that needs files is built from small fixture trees in the layouts we know (wav2pix's
YouTubers layout, then the generic folder layout); the first one it accepts is checked. A dataset
that needs no root (``needs_root=False``) is built without one.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch

import registry
from conftest import registered
from datatrees import folder_tree, youtubers_tree
from zoo.data.loader import collate
from zoo.data.mismatch import WithMismatch
from zoo.errors import DataError, ZooError

DATASETS = registered("dataset")
SIZES = {"image_size": 24, "sample_rate": 8000, "num_samples": 3000}
STANDARD = ("root", "split", "image_size", "sample_rate", "num_samples")


def _small_options(factory) -> dict:
    """Shrink the dataset where the factory allows it, so the test stays quick."""
    accepted = inspect.signature(factory).parameters
    wanted = {"num_identities": 3, "clips_per_identity": 3}
    return {k: v for k, v in wanted.items() if k in accepted}


@pytest.fixture(scope="module")
def fixture_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("contract")
    return [youtubers_tree(base / "youtubers"), folder_tree(base / "folder", split="train")]


def _build(name: str, roots) -> object:
    component = registry.get("dataset", name)
    options = {**SIZES, **_small_options(component.factory)}
    if not component.meta.get("needs_root", True):
        return registry.create("dataset", name, split="train", **options)
    for root in roots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return registry.create("dataset", name, root=str(root), split="train", **options)
        except ZooError:
            continue
    pytest.skip(f"dataset '{name}' accepts none of the fixture layouts")


@pytest.mark.parametrize("name", DATASETS)
def test_factory_takes_the_standard_arguments(name):
    parameters = inspect.signature(registry.get("dataset", name).factory).parameters
    assert all(arg in parameters for arg in STANDARD), f"{name} lacks one of {STANDARD}"
    assert parameters["split"].default == "train"
    assert registry.get("dataset", name).description


@pytest.mark.parametrize("name", DATASETS)
def test_items_have_the_contract_shape(name, fixture_roots):
    data = _build(name, fixture_roots)
    assert len(data) > 0 and len(data.labels) == len(data)
    assert list(data.identities) == sorted(data.identities) and len(set(data.identities)) == len(data.identities)
    for index in sorted({0, len(data) // 2, len(data) - 1}):
        item = data[index]
        wave, image = item["wave"], item["image"]
        assert wave.dtype == torch.float32 and wave.shape == (SIZES["num_samples"],)
        assert torch.isfinite(wave).all() and wave.abs().max() <= 1.0 + 1e-6
        assert image.dtype == torch.float32 and image.shape == (3, SIZES["image_size"], SIZES["image_size"])
        assert -1.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.01
        assert item["identity"] == data.labels[index] and 0 <= item["identity"] < len(data.identities)
        assert isinstance(item.get("key"), str) and item["key"]
    keys = [data[i]["key"] for i in range(len(data))]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("name", DATASETS)
def test_items_batch_with_mismatched_faces(name, fixture_roots):
    data = _build(name, fixture_roots)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = WithMismatch(data, seed=0)
    batch = collate([wrapped[i] for i in range(min(len(data), 4))])
    assert batch["wave"].shape[0] == batch["image"].shape[0] == batch["identity"].shape[0]
    if wrapped.has_mismatch:
        assert batch["wrong_image"].shape == batch["image"].shape
        assert (batch["wrong_identity"] != batch["identity"]).all()


@pytest.mark.parametrize("name", DATASETS)
def test_describes_itself_for_the_cache(name, fixture_roots):
    data = _build(name, fixture_roots)
    assert hasattr(data, "split") and hasattr(data, "root")
    if hasattr(data, "cache_key"):
        key = data.cache_key()
        assert key == data.cache_key() and key["image_size"] == SIZES["image_size"]
        assert key["num_samples"] == SIZES["num_samples"] and "dataset" in key


@pytest.mark.parametrize("name", DATASETS)
def test_missing_root_is_a_one_line_data_error(name, tmp_path):
    component = registry.get("dataset", name)
    if not component.meta.get("needs_root", True):
        pytest.skip(f"dataset '{name}' needs no root")
    for root in (None, str(tmp_path / "absent"), str(tmp_path)):
        with pytest.raises(DataError) as caught:
            component.factory(root=root)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", DATASETS)
def test_labels_match_items_without_loading(name, fixture_roots):
    data = _build(name, fixture_roots)
    labels = np.asarray(data.labels)
    assert labels.min() >= 0 and labels.max() < len(data.identities)
    assert set(labels.tolist()) == set(range(len(data.identities)))  # no identity without items
