"""Voice activity: silent windows of a long clip are dropped before fusion; no speech is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from datatrees import tone, write_audio
from train_helpers import run_cli, run_trainer
from zoo.errors import SilentAudioError
from zoo.media.audio import sliding_windows
from zoo.media.vad import speech_share, voiced_windows


def spoken(seconds: float, rng) -> np.ndarray:
    """A syllable-like signal: a 180 Hz tone switched on and off every 0.1 s, at speech loudness."""
    t = np.arange(int(seconds * 16000)) / 16000
    envelope = (np.floor(t / 0.1) % 2 == 0) * 0.5 + 0.1
    return (envelope * np.sin(2 * np.pi * 180 * t) + 0.001 * rng.standard_normal(t.size)).astype(np.float32)


def test_a_pause_in_the_middle_is_found_and_dropped():
    rng = np.random.default_rng(0)
    pause = 0.0005 * rng.standard_normal(32000).astype(np.float32)  # -66 dBFS: room noise
    wave = torch.from_numpy(np.concatenate([spoken(2, rng), pause, spoken(2, rng)]))
    windows = sliding_windows(wave, 16000, 8000, normalise=False)
    share = speech_share(windows, 16000)
    assert share[4:7].max() == 0 and share[:3].min() > 0.5
    assert voiced_windows(windows, 16000).tolist() == [0, 1, 2, 3, 7, 8, 9, 10]


def test_a_steady_sound_is_kept_and_silence_is_refused():
    steady = torch.from_numpy(tone(3.0)[:, 0].astype(np.float32))
    assert len(voiced_windows(sliding_windows(steady, 16000, 8000, normalise=False), 16000)) == 5
    quiet = 0.001 * torch.randn(48000, generator=torch.Generator().manual_seed(0))
    with pytest.raises(SilentAudioError, match="no speech in any window"):
        voiced_windows(sliding_windows(quiet, 16000, 8000, normalise=False), 16000, "quiet.wav")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return run_trainer(tmp_path_factory.mktemp("runs"), save_path="tiny", max_steps=1).run_dir


def test_generate_fuses_only_the_spoken_windows(run_dir, tmp_path):
    rng = np.random.default_rng(1)
    samples = np.concatenate([spoken(1, rng), 0.0003 * rng.standard_normal(16000), spoken(1, rng)])
    clip = write_audio(tmp_path / "pause.wav", samples[:, None])
    result = run_cli(["generate", str(clip), "--checkpoint", str(run_dir), "--out", str(tmp_path / "out"),
                      "--json", "--hop-seconds", "0.25"])
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)["files"]
    assert "silent windows dropped" in entry["note"]


def test_a_long_clip_without_speech_is_one_line(run_dir, tmp_path):
    clip = write_audio(tmp_path / "hiss.wav", 0.0005 * np.random.default_rng(2).standard_normal((48000, 1)))
    result = run_cli(["generate", str(clip), "--checkpoint", str(run_dir), "--out", str(tmp_path / "out")])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no speech in any window" in result.stdout + result.stderr
