"""Voice activity: which parts of a clip hold speech, by frame energy.

voice2face and SF2F drop silence before their features; here the same step is shared by
``generate`` (the silent windows of a long clip are dropped before their embeddings are fused,
and a clip with no speech at all gets one line) and anything else that needs it.

An energy detector, not webrtcvad: it needs no compiled package and works at any sample rate.
Frames are 20 ms. A frame can be speech only when its RMS reaches ``ABSOLUTE_FLOOR`` (-50 dBFS
of the file as recorded, before any normalisation: quieter is a pause or room noise). Where the
clip has pauses (its loud frames stand ``SPEECH_OVER_FLOOR`` times over its quiet ones), a frame
must also stand that far over the clip's noise floor (its 10th-percentile frame); a steady sound
with no pause in it is kept whole, since nothing in it stands out as silence.
"""

from __future__ import annotations

import torch

from zoo.errors import SilentAudioError

FRAME_SECONDS = 0.02
ABSOLUTE_FLOOR = 10 ** (-50 / 20)  # -50 dBFS
SPEECH_OVER_FLOOR = 4.0  # 12 dB above the clip's quiet frames
MIN_SPEECH_SHARE = 0.2  # a window with less speech than this is a pause


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


def voiced_windows(windows: torch.Tensor, sample_rate: int, source: str = "the clip") -> torch.Tensor:
    """The indices of the windows that hold speech; ``SilentAudioError`` when none does.

    A single window is always kept: it is the whole clip, and the decoder already refused a
    clip that is silent throughout.
    """
    if windows.shape[0] == 1:
        return torch.zeros(1, dtype=torch.long)
    keep = torch.nonzero(speech_share(windows, sample_rate) >= MIN_SPEECH_SHARE).flatten()
    if len(keep) == 0:
        raise SilentAudioError(f"{source}: no speech in any window: every part is quieter than -50 dBFS")
    return keep
