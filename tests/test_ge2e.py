"""The ge2e encoder: Resemblyzer's GE2E model rebuilt on torchaudio, checked against Resemblyzer's
own output; frozen by default; listed with what to install when its weights are absent."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import registry
from train_helpers import cli_args, run_cli
from zoo import UsageError

ge2e = pytest.importorskip("plugins.ge2e")
WEIGHTS = ge2e.packaged_weights()
needs_weights = pytest.mark.skipif(WEIGHTS is None, reason=ge2e.MISSING)
# Resemblyzer's own code imports librosa and webrtcvad; the reference check needs all three.
REFERENCE = all(importlib.util.find_spec(m) for m in ("librosa", "webrtcvad")) and WEIGHTS is not None
needs_reference = pytest.mark.skipif(not REFERENCE, reason="the reference check needs Resemblyzer and what it "
                                     f"imports: {ge2e.INSTALL} and pip install librosa webrtcvad-wheels")
# Measured: cosine 1.0 and at most 4e-7 apart per element on youtubers clips (float32 rounding).
MIN_COSINE = 0.99999
MAX_ABS = 1e-5


def youtubers_clips(root, count: int = 2) -> list[np.ndarray]:
    """``count`` real 1 s clips of each of the two speakers."""
    import soundfile

    clips = []
    for speaker in sorted((root / "test").iterdir()):
        for path in sorted(speaker.glob("*.wav"))[:count]:
            clips.append(soundfile.read(path, dtype="float32")[0])
    return clips


@needs_reference
def test_matches_resemblyzer_embed_utterance_on_real_speech(youtubers_root):
    from resemblyzer import VoiceEncoder, normalize_volume

    reference = VoiceEncoder(device="cpu", verbose=False)
    ours = registry.create("encoder", "ge2e").eval()
    clips = youtubers_clips(youtubers_root)
    cases = [np.stack(clips),  # a batch of 1 s clips: one window each, zero-padded to 1.6 s
             np.concatenate(clips[:3])[None],  # 3 s: three windows, the last padded
             clips[0][None, :8000],  # half a second
             0.01 * clips[-1][None]]  # quiet: raised to -30 dBFS first, as preprocess_wav does
    for batch in cases:
        with torch.no_grad():
            got = ours(torch.from_numpy(batch)).numpy()
        for wave, embedding in zip(batch, got):
            expected = reference.embed_utterance(normalize_volume(wave, -30, increase_only=True))
            cosine = float(expected @ embedding / np.linalg.norm(expected) / np.linalg.norm(embedding))
            assert cosine >= MIN_COSINE and np.abs(expected - embedding).max() <= MAX_ABS, (batch.shape, cosine)


@needs_reference
def test_partial_windows_are_resemblyzers():
    from resemblyzer import VoiceEncoder

    for n in (1, 4000, 16000, 25599, 25600, 32000, 40000, 48000, 160000):
        wav_slices, mel_slices = VoiceEncoder.compute_partial_slices(n, rate=1.3, min_coverage=0.75)
        starts, padded = ge2e.partial_starts(n)
        assert starts == [s.start for s in mel_slices], n
        assert padded == max(n, wav_slices[-1].stop), n


@needs_weights
def test_frozen_by_default_and_trainable_on_request():
    encoder = registry.create("encoder", "ge2e", embed_dim=256)
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)["model_state"]
    assert torch.equal(encoder.lstm.weight_hh_l2, state["lstm.weight_hh_l2"])
    assert torch.equal(encoder.linear.weight, state["linear.weight"])
    assert encoder.project is None and not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.lstm.training and not encoder.linear.training
    projected = registry.create("encoder", "ge2e", embed_dim=64)
    assert [n for n, p in projected.named_parameters() if p.requires_grad] == ["project.weight", "project.bias"]
    tuned = registry.create("encoder", "ge2e", trainable=True).train()
    tuned(0.1 * torch.randn(2, 4000)).sum().backward()
    assert tuned.lstm.training and tuned.lstm.weight_ih_l0.grad is not None


@needs_weights
def test_other_sample_rates_are_resampled_to_16k():
    encoder = registry.create("encoder", "ge2e", sample_rate=8000, num_samples=8000).eval()
    wave = torch.sin(torch.arange(16000) * 0.05)[None] * 0.3
    with torch.no_grad():
        at_16k = registry.create("encoder", "ge2e").eval()(wave)
        at_8k = encoder(wave[:, ::2].contiguous())
    assert float(torch.nn.functional.cosine_similarity(at_16k, at_8k)) > 0.9


def test_without_weights_it_is_listed_with_the_reason_and_refuses_to_build(monkeypatch):
    monkeypatch.setattr(ge2e, "packaged_weights", lambda: None)
    registry.reset()
    try:
        component = registry.get("encoder", "ge2e")
        assert component.meta["unavailable"] == ge2e.MISSING
        with pytest.raises(UsageError, match="pip install --no-deps resemblyzer==0.1.4"):
            registry.create("encoder", "ge2e")
    finally:
        registry.reset()


def test_bad_weights_file_is_one_line(tmp_path):
    bad = tmp_path / "pretrained.pt"
    bad.write_bytes(b"not a checkpoint")
    from zoo import CheckpointError

    with pytest.raises(CheckpointError, match="not a GE2E checkpoint"):
        registry.create("encoder", "ge2e", weights=str(bad))


def test_train_without_the_package_says_what_to_install(tmp_path):
    # A resemblyzer package without pretrained.pt first on the path: what a machine without the
    # wheel's weights sees (find_spec finds this one; nothing imports it).
    shadow = tmp_path / "shadow" / "resemblyzer"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise SystemExit('imported: it must not be')\n")
    env = {"PYTHONPATH": str(tmp_path / "shadow")}
    result = run_cli(cli_args(tmp_path / "runs", "--encoder", "ge2e", "--max-steps", "1"), env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install --no-deps resemblyzer==0.1.4" in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    listed = run_cli(["list", "encoder", "ge2e", "--json"], env=env)
    assert listed.returncode == 0
    assert "pip install --no-deps resemblyzer==0.1.4" in listed.stdout


def test_a_weights_path_that_is_not_there_is_refused_before_any_work():
    from zoo.train.config import resolve

    with pytest.raises(UsageError, match="nowhere.pt: no such file"):
        resolve({"encoder": "ge2e", "encoder_args": {"weights": "nowhere.pt"}})


@needs_weights
def test_voice2face_ge2e_trains_with_the_pretrained_encoder_left_as_shipped(tmp_path):
    import json

    from train_helpers import run_trainer, weights

    result = run_trainer(tmp_path, preset="voice2face_ge2e", max_steps=2, batch_size=4)
    assert result.step == 2
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["options"]["encoder"] == "ge2e" and config["options"]["embed_dim"] == 256
    assert [s["objective"] for s in config["stages"]] == ["gan"]  # nothing to pretrain
    saved = weights(result.last_checkpoint)
    shipped = torch.load(WEIGHTS, map_location="cpu", weights_only=True)["model_state"]
    for name in ("lstm.weight_ih_l0", "lstm.bias_hh_l2", "linear.weight"):
        assert torch.equal(saved[f"g.encoder.{name}"], shipped[name]), f"the frozen encoder's {name} moved"
