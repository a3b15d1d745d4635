"""The preprocessing cache trusts nothing on disk: damaged entries are found and rebuilt, killed
builds are swept, a full disk is one line, and building never moves the global random state."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from datatrees import folder_tree
from plugins.datasets import folder
from train_helpers import run_trainer, weights
from zoo.callbacks import Progress
from zoo.data import cache as zoo_cache
from zoo.data import cache_build
from zoo.errors import StorageError

SMALL = {"image_size": 16, "sample_rate": 16000, "num_samples": 2000}


class Recorder(Progress):
    """Keeps every message the cache sends."""

    def __init__(self):
        self.messages = []

    def message(self, text):
        self.messages.append(text)


@pytest.fixture
def small_folder(tmp_path):
    root = folder_tree(tmp_path / "data", stems=("a1", "a2", "a3"), split="train")
    return folder(str(root), "train", **SMALL)


def items_equal(cached, source):
    return all(torch.equal(cached[i]["image"], source[i]["image"])
               and torch.allclose(cached[i]["wave"], source[i]["wave"], atol=1e-3) for i in range(len(source)))


def _truncate(entry):
    path = entry / "images.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zero_the_data(entry):
    """Keep the header, zero every face: once served as faces of -1."""
    path = entry / "images.npy"
    offset = np.load(path, mmap_mode="r").offset
    data = path.read_bytes()
    path.write_bytes(data[:offset] + bytes(len(data) - offset))


def _zero_everything(entry):
    path = entry / "images.npy"
    path.write_bytes(bytes(path.stat().st_size))


def _garbage_meta(entry):
    (entry / "meta.json").write_text("{\"format\": 2, \"key\": ")


def _meta_without_checksum(entry):
    meta = json.loads((entry / "meta.json").read_text())
    del meta["checksum"]
    (entry / "meta.json").write_text(json.dumps(meta))


def _waves_of_another_shape(entry):
    np.save(entry / "waves.npy", np.zeros((2, 3), np.float32))


DAMAGE = {"truncated_images": _truncate, "zero_filled_faces": _zero_the_data, "zero_filled_file": _zero_everything,
          "corrupt_meta": _garbage_meta, "meta_without_checksum": _meta_without_checksum,
          "waves_of_another_shape": _waves_of_another_shape}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_entry_is_rebuilt_with_a_one_line_note(small_folder, tmp_path, damage):
    first = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    DAMAGE[damage](first.directory)
    recorder = Recorder()
    again = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0, progress=recorder)
    [note] = recorder.messages
    assert "damaged" in note and "rebuilding" in note and str(first.directory) in note and "\n" not in note
    assert again.directory == first.directory and items_equal(again, small_folder)
    cache_build.check_entry(again.directory, zoo_cache.FORMAT_VERSION, zoo_cache.WAVE_DTYPES)


def test_a_sound_entry_is_opened_silently_and_rebuild_builds_it_again(small_folder, tmp_path, monkeypatch):
    zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    recorder, decoded = Recorder(), []
    original = small_folder.raw_item
    monkeypatch.setattr(small_folder, "raw_item", lambda i: decoded.append(i) or original(i))
    zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0, progress=recorder)
    assert recorder.messages == [] and decoded == []
    rebuilt = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0, rebuild=True)
    assert sorted(decoded) == list(range(len(small_folder))) and items_equal(rebuilt, small_folder)


def test_the_key_holds_the_wave_type_and_the_decoders_versions(small_folder, tmp_path, monkeypatch):
    half = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    full = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0, wave_dtype="float32")
    assert full.directory != half.directory and half.directory.exists()  # both configurations kept
    assert np.load(full.directory / "waves.npy").dtype == np.float32
    for index in range(len(small_folder)):  # float32 keeps the decoded samples exactly
        assert torch.equal(full[index]["wave"], small_folder[index]["wave"])
    versions = zoo_cache.decoder_versions()
    assert {"wav2pix-zoo", "libsndfile", "soundfile", "pillow", "numpy", "torchaudio"} <= set(versions)
    monkeypatch.setattr(zoo_cache, "decoder_versions", lambda: {**versions, "pillow": "99.0"})
    upgraded = zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    assert upgraded.directory != half.directory and not half.directory.exists()  # superseded, pruned
    assert upgraded.meta["key"]["decoders"]["pillow"] == "99.0"


def test_building_never_touches_the_global_random_state(small_folder, tmp_path):
    before = torch.random.get_rng_state()
    zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    assert torch.equal(before, torch.random.get_rng_state())


def test_cold_warm_and_rebuilt_caches_train_the_same_weights(tmp_path, monkeypatch):
    """The same --seed gives the same weights whether the cache is built, reused or rebuilt
    (``train --rebuild-cache``), and only the rebuild writes the entry again."""
    monkeypatch.setenv("WAV2PIX_ZOO_CACHE", str(tmp_path / "cache"))

    def entry_identity():
        [entry] = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
        return (entry / "meta.json").stat().st_ino

    cold = run_trainer(tmp_path / "cold", max_steps=1)
    built = entry_identity()
    warm = run_trainer(tmp_path / "warm", max_steps=1)
    assert entry_identity() == built
    rebuilt = run_trainer(tmp_path / "rebuilt", max_steps=1, rebuild_cache=True)
    assert entry_identity() != built
    a = weights(cold.last_checkpoint)
    for other in (warm, rebuilt):
        b = weights(other.last_checkpoint)
        assert all(torch.equal(a[key], b[key]) for key in a)


# -- killed builds and full disks -------------------------------------------------------------------------
def _staging(cache, name, owner=None, age=0.0):
    folder = cache / f".tmp-{name}-abc123"
    folder.mkdir(parents=True)
    (folder / "images.npy").write_bytes(b"partial")
    if owner is not None:
        (folder / cache_build.OWNER_NAME).write_text(owner)
    then = time.time() - age
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (then, then))
    return folder


def test_staging_folders_of_killed_builds_are_swept_when_the_cache_is_opened(small_folder, tmp_path):
    import socket

    cache = tmp_path / "cache"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    killed = _staging(cache, "killed", owner=f"{host} {int(dead.stdout)}")
    live = _staging(cache, "live", owner=f"{host} {os.getpid()}")
    unknown_fresh = _staging(cache, "fresh")
    unknown_old = _staging(cache, "old", age=cache_build.STALE_SECONDS + 60)
    other_host_old = _staging(cache, "away", owner=f"elsewhere-{host} 1", age=cache_build.STALE_SECONDS + 60)
    zoo_cache.cached(small_folder, cache_dir=cache, workers=0)
    assert not killed.exists() and not unknown_old.exists() and not other_host_old.exists()
    assert live.exists() and unknown_fresh.exists()  # a build that may still be running is left alone


def test_too_little_free_space_is_one_line_naming_the_cache_before_any_write(small_folder, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(cache_build.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    with pytest.raises(StorageError) as caught:
        zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    message = str(caught.value)
    assert str(tmp_path / "cache") in message and "MiB" in message and "\n" not in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_full_disk_while_allocating_is_one_line_and_leaves_nothing(small_folder, tmp_path, monkeypatch):
    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_build.os, "posix_fallocate", no_space)
    with pytest.raises(StorageError, match="No space left on device"):
        zoo_cache.cached(small_folder, cache_dir=tmp_path / "cache", workers=0)
    assert list((tmp_path / "cache").iterdir()) == []
