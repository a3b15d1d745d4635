"""Voice activity: which parts of a clip hold speech, by frame energy.

voice2face and SF2F drop silence before their features; here the same step is shared by
``generate`` (the silent windows of a long clip are dropped before their embeddings are fused,
and a clip with no speech at all gets one line) and anything else that needs it.

Two detectors (docs/results/vad.md measures them): ``energy``, the default, needs no compiled
package; ``webrtc`` (webrtcvad, mode 2, from ``webrtcvad-wheels``) drops far fewer speech windows
under steady noise or from a quiet speaker, and is as good on clean recordings. Both judge 20 ms
frames, and a window with less than ``MIN_SPEECH_SHARE`` of speech frames is a pause.

The energy detector: A frame can be speech only when its RMS reaches ``ABSOLUTE_FLOOR`` (-50 dBFS
of the file as recorded, before any normalisation: quieter is a pause or room noise). Where the
clip has pauses (its loud frames stand ``SPEECH_OVER_FLOOR`` times over its quiet ones), a frame
must also stand that far over the clip's noise floor (its 10th-percentile frame); a steady sound
with no pause in it is kept whole, since nothing in it stands out as silence.
"""

from __future__ import annotations

import importlib.util

import torch

from zoo.errors import SilentAudioError, UsageError

FRAME_SECONDS = 0.02
ABSOLUTE_FLOOR = 10 ** (-50 / 20)  # -50 dBFS
SPEECH_OVER_FLOOR = 4.0  # 12 dB above the clip's quiet frames
MIN_SPEECH_SHARE = 0.2  # a window with less speech than this is a pause
DETECTORS = ("energy", "webrtc")
WEBRTC_MODE = 2  # on clips of a few seconds the best of the four modes (docs/results/vad.md)
WEBRTC_RATES = (8000, 16000, 32000, 48000)  # what webrtcvad accepts
WEBRTC_INSTALL = "pip install webrtcvad-wheels==2.0.14.post1"


def frame_rms(wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """RMS of consecutive ``FRAME_SECONDS`` frames of ``wave[T]`` (a short clip is one frame)."""
    frame = max(1, int(round(FRAME_SECONDS * sample_rate)))
    count = max(1, wave.shape[-1] // frame)
    frames = torch.nn.functional.pad(wave, (0, max(0, frame * count - wave.shape[-1])))[: frame * count]
    return frames.view(count, frame).float().square().mean(dim=1).sqrt()


def _speech(rms: torch.Tensor) -> torch.Tensor:
    """Which frames of a set of frame energies are speech (see the module docstring)."""
    loud = rms >= ABSOLUTE_FLOOR
    floor, top = torch.quantile(rms.flatten(), 0.1), torch.quantile(rms.flatten(), 0.9)
    if top < SPEECH_OVER_FLOOR * floor:  # no pauses: a steady sound, kept where loud enough
        return loud
    return loud & (rms >= SPEECH_OVER_FLOOR * floor)


def speech_share(windows: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The share of speech frames in each of ``windows[W, T]`` (as recorded), judged against the
    whole set's noise floor, so a window that is all pause is not measured against itself."""
    return _speech(torch.stack([frame_rms(w, sample_rate) for w in windows])).float().mean(dim=1)


def _pcm16k(wave: torch.Tensor, sample_rate: int) -> tuple[bytes, int]:
    """``wave[T]`` as 16-bit PCM bytes at a rate webrtcvad takes (resampled to 16 kHz if need be)."""
    if sample_rate not in WEBRTC_RATES:
        import torchaudio

        wave, sample_rate = torchaudio.functional.resample(wave.float(), sample_rate, 16000), 16000
    return (wave.float().clamp(-1, 1) * 32767).round().to(torch.int16).numpy().tobytes(), sample_rate


def webrtc_frames(windows: torch.Tensor, sample_rate: int) -> list[torch.Tensor]:
    """webrtcvad's speech flag for each 20 ms frame of each of ``windows[W, T]``, in order, by one
    detector that carries its state from window to window, as over a recording (a fresh detector
    per window misses a quiet speaker: it has not adapted yet; docs/results/vad.md)."""
    try:
        import webrtcvad
    except ImportError:
        raise UsageError(f"--vad webrtc needs webrtcvad: {WEBRTC_INSTALL}") from None
    detector = webrtcvad.Vad(WEBRTC_MODE)
    flags = []
    for window in windows:
        pcm, rate = _pcm16k(window, sample_rate)
        step = 2 * int(FRAME_SECONDS * rate)  # bytes of int16 per frame
        flags.append(torch.tensor([detector.is_speech(pcm[i:i + step], rate)
                                   for i in range(0, len(pcm) - step + 1, step)] or [False]))
    return flags


def webrtc_share(windows: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The share of webrtcvad's speech frames in each of ``windows[W, T]``."""
    return torch.stack([flags.float().mean() for flags in webrtc_frames(windows, sample_rate)])


def check_detector(detector: str) -> str:
    """``detector`` if it is one of ``DETECTORS`` and installed, else a usage error saying why."""
    if detector not in DETECTORS:
        raise UsageError(f"--vad must be one of {', '.join(DETECTORS)}, not '{detector}'")
    if detector == "webrtc" and importlib.util.find_spec("webrtcvad") is None:
        raise UsageError(f"--vad webrtc needs webrtcvad: {WEBRTC_INSTALL}")
    return detector


def voiced_windows(windows: torch.Tensor, sample_rate: int, source: str = "the clip",
                   detector: str = "energy") -> torch.Tensor:
    """The indices of the windows that hold speech by ``detector``; ``SilentAudioError`` when
    none does.

    A single window is always kept: it is the whole clip, and the decoder already refused a
    clip that is silent throughout.
    """
    share = webrtc_share if check_detector(detector) == "webrtc" else speech_share
    if windows.shape[0] == 1:
        return torch.zeros(1, dtype=torch.long)
    keep = torch.nonzero(share(windows, sample_rate) >= MIN_SPEECH_SHARE).flatten()
    if len(keep) == 0:
        why = "webrtcvad hears no speech" if detector == "webrtc" else "every part is quieter than -50 dBFS"
        raise SilentAudioError(f"{source}: no speech in any window: {why}")
    return keep
