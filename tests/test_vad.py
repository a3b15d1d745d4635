"""Voice activity: silent windows of a long clip are dropped before fusion; no speech is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from datatrees import tone, write_audio
from train_helpers import run_cli, run_trainer
from zoo.errors import SilentAudioError, UsageError
from zoo.media.audio import sliding_windows
from zoo.media.vad import WEBRTC_INSTALL, check_detector, speech_share, voiced_windows


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


def real_speech_with_gaps(root, first: int, noise_db: float) -> np.ndarray:
    """Three real test clips from ``first`` on (sorted), each followed by 1 s of gap, with white
    noise ``noise_db`` below the speech throughout (docs/results/vad.md's condition)."""
    import soundfile

    paths = sorted((root / "test").glob("*/*.wav"))[first:first + 3]
    clips = [soundfile.read(p, dtype="float32")[0] for p in paths]
    level = float(np.median([np.sqrt(np.mean(c ** 2)) for c in clips])) * 10 ** (noise_db / 20)
    wave = np.concatenate([part for c in clips for part in (c, np.zeros(16000, np.float32))])
    return wave + level * np.random.default_rng(0).standard_normal(wave.size).astype(np.float32)


def test_webrtc_keeps_real_speech_under_noise_that_the_energy_detector_drops(youtubers_root):
    pytest.importorskip("webrtcvad", reason=f"the webrtc detector needs webrtcvad: {WEBRTC_INSTALL}")
    windows = torch.from_numpy(real_speech_with_gaps(youtubers_root, 250, noise_db=-10)).view(6, 16000)
    assert voiced_windows(windows, 16000, detector="webrtc").tolist() == [0, 2, 4]  # speech, gap, ...
    assert voiced_windows(windows, 16000).tolist() == [2]  # what the option is for
    at_8k = windows[:, ::2].contiguous()  # a rate webrtcvad takes as it is
    assert voiced_windows(at_8k, 8000, detector="webrtc").tolist() == [0, 2, 4]


def test_an_unknown_detector_or_a_missing_package_is_one_line(monkeypatch):
    with pytest.raises(UsageError, match="--vad must be one of energy, webrtc"):
        check_detector("nope")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "webrtcvad" else real(name, *a))
    with pytest.raises(UsageError, match="pip install webrtcvad-wheels"):
        check_detector("webrtc")


def test_generate_with_the_webrtc_detector(run_dir, youtubers_root, tmp_path):
    pytest.importorskip("webrtcvad", reason=f"the webrtc detector needs webrtcvad: {WEBRTC_INSTALL}")
    from zoo.media.audio import load_audio
    from zoo.model.pipeline import FacePipeline

    clip = write_audio(tmp_path / "gaps.wav", real_speech_with_gaps(youtubers_root, 250, noise_db=-10)[:, None])
    window = FacePipeline.from_checkpoint(run_dir, device="cpu").num_samples
    windows = sliding_windows(load_audio(clip, normalise=False), window, 16000, normalise=False)
    webrtc, energy = (len(voiced_windows(windows, 16000, detector=d)) for d in ("webrtc", "energy"))
    assert webrtc != energy  # so the note below tells which detector ran
    result = run_cli(["generate", str(clip), "--checkpoint", str(run_dir), "--out", str(tmp_path / "out"),
                      "--json", "--hop-seconds", "1", "--vad", "webrtc"])
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)["files"]
    assert entry["windows"] == webrtc and f"{len(windows) - webrtc} silent windows dropped" in entry["note"]
