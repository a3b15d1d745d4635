"""zoo.media.audio: every common format, rate and channel count in; every kind of bad file refused."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from datatrees import BAD_KINDS, tone, write_audio, write_bad_audio, write_opus
from zoo.media import audio
from zoo.errors import AudioError, ZooError

FORMATS = [  # (extension, soundfile format, subtype, lossy)
    ("wav", "WAV", "PCM_U8", False),
    ("wav", "WAV", "PCM_16", False),
    ("wav", "WAV", "PCM_24", False),
    ("wav", "WAV", "PCM_32", False),
    ("wav", "WAV", "FLOAT", False),
    ("flac", "FLAC", "PCM_16", False),
    ("ogg", "OGG", "VORBIS", True),
    ("mp3", "MP3", "MPEG_LAYER_III", True),
]


def dominant_frequency(wave: torch.Tensor, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave.numpy() * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def band_energy(wave: torch.Tensor, rate: int, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(wave.numpy())) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / rate)
    return float(spectrum[np.abs(freqs - freq) < 20].sum() / spectrum.sum())


@pytest.mark.parametrize("ext,fmt,subtype,lossy", FORMATS, ids=[f"{f[0]}-{f[2]}" for f in FORMATS])
@pytest.mark.parametrize("channels", [1, 2])
def test_every_format_and_channel_count_loads_as_mono_float(tmp_path, ext, fmt, subtype, lossy, channels):
    path = write_audio(tmp_path / f"clip.{ext}", tone(0.5, 16000, 440, channels), 16000,
                       format=fmt, subtype=subtype)
    wave = audio.load_audio(path, 16000)
    assert wave.dtype == torch.float32 and wave.dim() == 1
    assert abs(len(wave) - 8000) <= (1200 if lossy else 0)  # codecs may pad a frame
    assert wave.abs().max().item() == pytest.approx(1.0, abs=1e-6)
    # Channel c carries 440 * 1.5**c Hz: every channel must be heard in the mono mix.
    for channel in range(channels):
        assert band_energy(wave, 16000, 440 * 1.5 ** channel) > 0.8 / channels - 0.15


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("ext,fmt,subtype", [("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_24"),
                                             ("ogg", "OGG", "VORBIS")])
def test_any_rate_is_resampled_to_the_requested_one(tmp_path, rate, ext, fmt, subtype):
    path = write_audio(tmp_path / f"clip.{ext}", tone(0.5, rate, 1000), rate, format=fmt, subtype=subtype)
    wave = audio.load_audio(path, 16000)
    assert abs(len(wave) - 8000) <= (1200 if ext == "ogg" else 1)
    assert dominant_frequency(wave, 16000) == pytest.approx(1000, abs=15)


def test_stereo_becomes_the_mean_of_both_channels_not_the_left_one(tmp_path):
    left, right = tone(0.5, 16000, 300), tone(0.5, 16000, 1100)
    path = write_audio(tmp_path / "stereo.wav", np.concatenate([left, right], axis=1))
    wave = audio.load_audio(path, 16000)
    assert band_energy(wave, 16000, 300) > 0.3
    assert band_energy(wave, 16000, 1100) > 0.3  # the right channel is heard too


def test_quiet_clip_is_peak_normalised(tmp_path):
    path = write_audio(tmp_path / "quiet.wav", tone(0.5, amplitude=0.01), subtype="FLOAT")
    wave = audio.load_audio(path, 16000)
    assert wave.abs().max().item() == pytest.approx(1.0, abs=1e-5)
    raw = audio.load_audio(path, 16000, normalise=False)
    assert raw.abs().max().item() == pytest.approx(0.01, rel=1e-3)


def test_pyav_fallback_reads_m4a(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "clip.m4a"
    samples = tone(0.5, 16000, 440)[:, 0].astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    wave = audio.load_audio(path, 16000)
    assert dominant_frequency(wave, 16000) == pytest.approx(440, abs=15)


@pytest.mark.parametrize("ext", ["mka", "mkv"])
def test_pyav_fallback_reads_packed_stereo_pcm_per_channel_at_full_scale(tmp_path, ext):
    """Interleaved 16-bit stereo in Matroska: each channel keeps its own tone at its own level."""
    av = pytest.importorskip("av")
    rate, path = 16000, tmp_path / f"stereo.{ext}"
    t = np.arange(rate) / rate
    levels, tones = (0.5, 0.25), (300.0, 1100.0)
    pcm = (np.stack([level * np.sin(2 * np.pi * f * t) for level, f in zip(levels, tones)], axis=1)
           * 32767).astype(np.int16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="stereo")
        for start in range(0, rate, 1024):
            frame = av.AudioFrame.from_ndarray(pcm[start:start + 1024].reshape(1, -1), format="s16", layout="stereo")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    samples, read_rate = audio.read_audio(path)
    assert read_rate == rate and samples.shape == (rate, 2) and samples.dtype == np.float32
    for channel, (level, freq) in enumerate(zip(levels, tones)):
        wave = torch.from_numpy(samples[:, channel].copy())
        assert band_energy(wave, rate, freq) > 0.95, f"channel {channel} lost its {freq} Hz tone"
        assert np.abs(samples[:, channel]).max() == pytest.approx(level, abs=1e-3)  # scaled, not 16383


@pytest.mark.parametrize("suffix", [".webm", ".ogg"])
def test_a_browser_recording_in_opus_decodes(tmp_path, suffix):
    # MediaRecorder gives Opus in WebM (Chromium) or Ogg (Firefox): PyAV's fallback or libsndfile
    path = write_opus(tmp_path / f"recording{suffix}", tone(1.0, 48000, 330))
    wave = audio.load_audio(path, 16000)
    assert wave.shape[0] == pytest.approx(16000, abs=400)
    assert dominant_frequency(wave, 16000) == pytest.approx(330, abs=15)


def test_a_clip_over_the_length_limit_is_refused_in_either_decoder(tmp_path):
    wav = write_audio(tmp_path / "long.wav", tone(2.0))
    webm = write_opus(tmp_path / "long.webm", tone(2.0, 48000))
    with pytest.raises(audio.AudioTooLongError, match=r"long.wav: the clip lasts 2.0 s, over the 1.5 s limit"):
        audio.load_audio(wav, 16000, max_seconds=1.5)
    with pytest.raises(audio.AudioTooLongError, match=r"long.webm: the clip lasts more than 1.5 s, over the 1.5 s"):
        audio.load_audio(webm, 16000, max_seconds=1.5)
    assert audio.load_audio(webm, 16000, max_seconds=2.5).shape[0] == pytest.approx(32000, abs=400)
    assert audio.load_audio(wav, 16000, max_seconds=2.0).shape[0] == 32000  # the limit itself is allowed


# -- bad input: one line, the file's name, the right kind of error ----------------------------------


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_raises_one_line_naming_the_file(tmp_path, kind):
    path, expected = write_bad_audio(tmp_path, kind)
    with pytest.raises(expected) as caught:
        audio.load_audio(path, 16000)
    message = str(caught.value)
    assert isinstance(caught.value, AudioError) and isinstance(caught.value, ZooError)
    assert "\n" not in message and path.name in message


@pytest.mark.parametrize("ext,fmt,subtype", [("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"),
                                             ("ogg", "OGG", "VORBIS"), ("mp3", "MP3", "MPEG_LAYER_III")])
def test_truncated_file_is_refused(tmp_path, ext, fmt, subtype, capfd):
    whole = write_audio(tmp_path / f"whole.{ext}", tone(1.0), format=fmt, subtype=subtype)
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(whole.read_bytes()[: os.path.getsize(whole) // 2])
    with pytest.raises(audio.CorruptAudioError) as caught:
        audio.load_audio(cut, 16000)
    assert "cut." in str(caught.value) and "\n" not in str(caught.value)
    assert capfd.readouterr().err == ""  # the mp3 decoder's own chatter stays quiet


def test_silent_clip_can_be_allowed_and_stays_finite(tmp_path):
    path = write_audio(tmp_path / "silent.wav", np.zeros((8000, 1)))
    wave = audio.load_audio(path, 16000, allow_silent=True)
    assert torch.isfinite(wave).all() and wave.abs().max() == 0


def test_peak_normalise_never_divides_by_zero():
    batch = torch.stack([torch.zeros(100), torch.full((100,), 1e-6), torch.linspace(-0.5, 0.25, 100)])
    out = audio.peak_normalise(batch)
    assert torch.isfinite(out).all()
    assert out[0].abs().max() == 0 and out[1].abs().max() < 1e-5  # not amplified to full scale
    assert out[2].abs().max().item() == pytest.approx(1.0)


# -- fitting to the encoder's window -----------------------------------------------------------------------
@pytest.mark.parametrize("length,window", [(16001, 16000), (16002, 16000), (20000, 16000), (16000, 16000)])
def test_fit_length_crops_the_centre_to_exactly_the_window(length, window):
    wave = torch.arange(length, dtype=torch.float32)
    out = audio.fit_length(wave, window)
    assert out.shape == (window,)
    before, after = int(out[0]), length - 1 - int(out[-1])
    assert abs(before - after) <= 1 and torch.equal(out, wave[before:before + window])


def test_short_clip_is_zero_padded_around_the_centre_with_a_warning():
    wave = torch.ones(10)
    with pytest.warns(audio.ShortClipWarning):
        out = audio.fit_length(wave, 16)
    assert out.shape == (16,) and out.sum() == 10
    assert torch.equal(out[3:13], wave) and out[:3].abs().sum() == 0 and out[13:].abs().sum() == 0


def _encoder_clip(path, sample_rate=16000, num_samples=16000):
    """What a dataset serves: load, centre crop or pad, peak-normalise."""
    wave = audio.load_audio(path, sample_rate, normalise=False)
    return audio.peak_normalise(audio.fit_length(wave, num_samples))


def test_an_encoder_clip_is_exactly_the_window(tmp_path):
    path = write_audio(tmp_path / "long.wav", tone(1.3, 22050), 22050)
    clip = _encoder_clip(path)
    assert clip.shape == (16000,) and clip.abs().max().item() == pytest.approx(1.0, abs=1e-6)
    short = write_audio(tmp_path / "short.wav", tone(0.5))
    with pytest.warns(audio.ShortClipWarning):
        assert _encoder_clip(short).shape == (16000,)


def test_sliding_windows_cover_every_sample():
    wave = torch.arange(1, 101, dtype=torch.float32)
    windows = audio.sliding_windows(wave, 30, 20, normalise=False)
    assert windows.shape[1] == 30
    assert torch.equal(windows[0], wave[:30]) and torch.equal(windows[1], wave[20:50])
    assert torch.equal(windows[-1], wave[-30:])  # the tail window, so nothing is dropped
    covered = torch.unique(windows)
    assert torch.equal(covered, wave)


def test_sliding_windows_normalise_each_window_and_handle_short_clips():
    wave = torch.cat([torch.full((50,), 0.1), torch.full((50,), 0.8)])
    windows = audio.sliding_windows(wave, 50, 50)
    assert windows.shape == (2, 50) and torch.allclose(windows.abs().amax(dim=1), torch.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", audio.ShortClipWarning)
        assert audio.sliding_windows(torch.ones(10), 50).shape == (1, 50)
