"""zoo.data.mismatch (mismatched faces), zoo.data.loader (collate, make_loader) and zoo.data.cache (the preprocessing cache)."""

from __future__ import annotations

import gc
import os
import pickle
import warnings
from collections import Counter

import numpy as np
import pytest
import torch

from datatrees import folder_tree, write_audio
from plugins.datasets import folder
from zoo.data import cache as zoo_cache
from zoo.media.audio import AudioError
from zoo.data.loader import EpochSampler, collate, make_loader
from zoo.data.mismatch import SingleIdentityWarning, WithMismatch
from zoo.errors import DataError

SMALL = {"image_size": 16, "sample_rate": 16000, "num_samples": 2000}


class TinyDataset(torch.utils.data.Dataset):
    """Items whose image encodes their own index, so a test can see which item was drawn."""

    def __init__(self, labels, fail_at=None):
        self.labels = list(labels)
        self.identities = [f"id{i}" for i in range(max(self.labels) + 1)]
        self.fail_at = fail_at

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        if index == self.fail_at:
            raise AudioError(f"clip_{index}.wav: the audio file is damaged")
        return {"wave": torch.full((8,), float(index)), "image": torch.full((3, 4, 4), float(index)),
                "identity": self.labels[index], "key": f"k{index}"}


# -- mismatched faces ----------------------------------------------------------------------------------
def test_wrong_faces_always_come_from_another_identity_and_cover_them_all():
    labels = [0] * 5 + [1] * 2 + [2] * 9
    data = WithMismatch(TinyDataset(labels), seed=1)
    seen = Counter()
    for epoch in range(30):
        for index in range(len(labels)):
            item = data[(epoch, index)]
            wrong = int(item["wrong_image"][0, 0, 0])
            assert labels[wrong] != labels[index] and item["wrong_identity"] == labels[wrong]
            seen[wrong] += 1
    assert set(seen) == set(range(len(labels)))  # every face serves as someone's wrong face


def test_wrong_faces_are_uniform_over_the_other_items():
    labels = [0] * 2 + [1] * 6
    data = WithMismatch(TinyDataset(labels), seed=0)
    draws = Counter(data.wrong_index(0, epoch) for epoch in range(3000))
    assert set(draws) == set(range(2, 8))
    assert max(draws.values()) / min(draws.values()) < 1.5


def test_mismatch_is_reproducible_for_a_seed():
    labels = [0, 0, 1, 1, 2, 2]
    first = [WithMismatch(TinyDataset(labels), seed=3).wrong_index(i, 5) for i in range(6)]
    again = [WithMismatch(TinyDataset(labels), seed=3).wrong_index(i, 5) for i in range(6)]
    other_seed = [WithMismatch(TinyDataset(labels), seed=4).wrong_index(i, 5) for i in range(6)]
    next_epoch = [WithMismatch(TinyDataset(labels), seed=3).wrong_index(i, 6) for i in range(6)]
    assert first == again and (first != other_seed or first != next_epoch)


def test_single_identity_warns_and_switches_mismatch_off():
    with pytest.warns(SingleIdentityWarning, match="single identity"):
        data = WithMismatch(TinyDataset([0, 0, 0]))
    assert data.has_mismatch is False and "wrong_image" not in data[1]
    assert data.identities == ["id0"]  # the description passes through


def test_draws_are_the_same_with_and_without_workers():
    labels = [0] * 50 + [1] * 50
    data = WithMismatch(TinyDataset(labels), seed=0)
    sampler = EpochSampler(len(labels), seed=2)
    sampler.set_epoch(3)
    in_process = list(make_loader(data, batch_size=50, num_workers=0, sampler=sampler))
    with_workers = make_loader(data, batch_size=50, num_workers=2, sampler=sampler)
    if with_workers.num_workers < 2:
        pytest.skip("needs two cores")
    for a, b in zip(in_process, list(with_workers)):
        assert torch.equal(a["wrong_image"], b["wrong_image"])  # resumable whatever the workers


def test_epoch_sampler_orders_by_epoch_skips_and_shards():
    sampler = EpochSampler(10, seed=1)
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert sorted(i for _, i in first) == list(range(10)) and list(sampler) != first
    sampler.set_epoch(0, skip=4)
    assert list(sampler) == first[4:] and len(sampler) == 6
    ranks = [EpochSampler(10, seed=1, rank=r, world_size=2) for r in (0, 1)]
    shards = [[i for _, i in s] for s in ranks]
    assert sorted(shards[0] + shards[1]) == list(range(10))


# -- collate and loader -----------------------------------------------------------------------------------
def test_collate_stacks_tensors_ints_and_keeps_strings():
    batch = collate([TinyDataset([0, 1])[i] for i in range(2)])
    assert batch["wave"].shape == (2, 8) and batch["image"].shape == (2, 3, 4, 4)
    assert batch["identity"].dtype == torch.int64 and batch["identity"].tolist() == [0, 1]
    assert batch["key"] == ["k0", "k1"]


def test_loader_shuffles_by_seed_and_caps_workers():
    data = TinyDataset(list(range(10)) * 3)
    order = lambda seed: [k for b in make_loader(data, 4, seed=seed) for k in b["key"]]  # noqa: E731
    assert order(1) == order(1) and order(1) != order(2)
    assert sorted(order(1)) == sorted(f"k{i}" for i in range(30))
    capped = make_loader(data, 4, num_workers=10_000)
    assert 1 <= capped.num_workers <= (os.cpu_count() or 1)
    assert make_loader(data, 4, device="cpu").pin_memory is False
    assert make_loader(data, 4, device="cuda").pin_memory is True  # decided, not iterated


def test_loader_drop_last_and_sampler():
    data = TinyDataset([0] * 10)
    assert [len(b["key"]) for b in make_loader(data, 4, shuffle=False, drop_last=True)] == [4, 4]
    sampler = [9, 8, 7]
    assert [k for b in make_loader(data, 2, sampler=sampler) for k in b["key"]] == ["k9", "k8", "k7"]


def test_worker_errors_come_back_as_one_line(monkeypatch):
    # After a worker error PyTorch waits this long for the worker to join; keep the test short.
    monkeypatch.setattr(torch.utils.data._utils, "MP_STATUS_CHECK_INTERVAL", 0.2)
    loader = make_loader(TinyDataset([0] * 8, fail_at=5), batch_size=2, num_workers=1, shuffle=False)
    with pytest.raises(AudioError) as caught:
        list(loader)
    message = str(caught.value)
    del caught, loader
    gc.collect()
    assert message == "clip_5.wav: the audio file is damaged"


# -- the preprocessing cache -------------------------------------------------------------------------------
@pytest.fixture
def small_folder(tmp_path):
    root = folder_tree(tmp_path / "data", stems=("a1", "a2", "a3"), split="train")
    return folder(str(root), "train", **SMALL)


def test_cached_items_match_the_source(small_folder, tmp_path):
    data = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    assert isinstance(data, zoo_cache.CachedDataset)
    assert data.identities == small_folder.identities and data.labels == small_folder.labels
    assert data.keys == small_folder.keys and data.split == "train"
    for index in range(len(small_folder)):
        fresh, kept = small_folder[index], data[index]
        assert torch.equal(fresh["image"], kept["image"])
        assert torch.allclose(fresh["wave"], kept["wave"], atol=1e-3) and kept["wave"].dtype == torch.float32
        assert kept["identity"] == fresh["identity"] and kept["key"] == fresh["key"]
    assert torch.equal(data.load_image(2), small_folder[2]["image"])


def test_cache_is_reused_and_never_decodes_again(small_folder, tmp_path, monkeypatch):
    first = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)

    def no_decoding(index):
        raise AssertionError("decoded again")

    monkeypatch.setattr(small_folder, "raw_item", no_decoding)
    again = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    assert again.directory == first.directory
    assert again[0]["image"].shape == (3, 16, 16)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.directory.name]  # no leftovers


def test_changing_a_source_file_or_an_option_makes_a_new_entry(small_folder, tmp_path):
    first = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    audio_file = small_folder.pairs[0].audio
    stat = audio_file.stat()
    os.utime(audio_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    assert touched.directory != first.directory
    assert not first.directory.exists()  # the superseded entry is cleaned away
    bigger = folder(str(small_folder.root), "train", image_size=24, sample_rate=16000, num_samples=2000)
    resized = zoo_cache.cached(bigger, cache_dir=tmp_path / "cache", workers=0)
    assert resized[0]["image"].shape == (3, 24, 24) and resized.directory != touched.directory
    assert touched.directory.exists()  # another configuration is not superseded


def test_cache_uses_the_environment_variable(small_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("WAV2PIX_ZOO_CACHE", str(tmp_path / "from_env"))
    data = zoo_cache.cached(small_folder, workers=0)
    assert data.directory.parent == tmp_path / "from_env"


def test_failed_build_leaves_nothing_and_says_which_file(small_folder, tmp_path):
    write_audio(small_folder.pairs[1].audio, np.zeros((0, 1)))  # now a header with no samples
    with pytest.raises(AudioError, match=small_folder.pairs[1].audio.name):
        zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    assert list((tmp_path / "cache").iterdir()) == []


def test_cached_dataset_pickles_without_its_arrays_and_feeds_workers(small_folder, tmp_path):
    data = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=2)
    data[0]  # maps the arrays
    assert len(pickle.dumps(data)) < 20_000
    loader = make_loader(WithMismatch(data, seed=0), batch_size=4, num_workers=2, shuffle=True)
    batches = list(loader)
    assert sum(len(b["key"]) for b in batches) == len(data)
    assert all(b["wrong_image"].shape == (len(b["key"]), 3, 16, 16) for b in batches)


def test_dataset_without_cache_key_passes_through(tmp_path):
    data = TinyDataset([0, 1])
    assert zoo_cache.cached(data, cache_dir=tmp_path) is data


def test_cache_refuses_items_of_the_wrong_shape(small_folder, tmp_path, monkeypatch):
    original = small_folder.raw_item

    def wrong_shape(index):
        raw = original(index)
        return {**raw, "wave": raw["wave"][:10]}

    monkeypatch.setattr(small_folder, "raw_item", wrong_shape)
    with pytest.raises(DataError, match="shape"):
        zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not list((tmp_path / "cache").iterdir())


def test_cached_batches_equal_item_by_item_batches(small_folder, tmp_path):
    data = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    indices = [4, 0, 3]
    together = data.__getitems__(indices)
    one_by_one = collate([data[i] for i in indices])
    batch = collate(together)
    for key in ("wave", "image", "identity"):
        assert torch.equal(batch[key], one_by_one[key])
    assert batch["key"] == one_by_one["key"]
    assert isinstance(together[1]["identity"], int) and together[1]["key"] == data.keys[0]
    wrapped = collate(WithMismatch(data, seed=0).__getitems__(indices))
    assert (wrapped["wrong_identity"] != wrapped["identity"]).all()
    assert wrapped["wrong_image"].shape == wrapped["image"].shape
