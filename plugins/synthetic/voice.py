"""Procedural speech-like audio for the synthetic dataset (not an entry point).

A source-filter model in the manner of Klatt's cascade synthesiser (Klatt, JASA 1980): a
glottal source (a sawtooth at the speaker's pitch, plus breath noise) or frication noise is
shaped by a cascade of second-order formant resonators. Each identity has a pitch range, a
vocal-tract length that scales every formant (shorter tracts, higher formants: Fant 1960),
breathiness and a speaking rate; each clip draws its own syllables, intonation and noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Formants (Hz) of five vowels for an adult male tract (Peterson & Barney 1952, rounded), and how
# far each opens the jaw and spreads the lips: the face draws its mouth from these.
VOWELS = {
    "a": ((730, 1090, 2440, 3400), 1.0, 1.0),
    "e": ((530, 1840, 2480, 3500), 0.6, 1.1),
    "i": ((270, 2290, 3010, 3700), 0.3, 1.25),
    "o": ((570, 840, 2410, 3300), 0.7, 0.7),
    "u": ((300, 870, 2240, 3200), 0.35, 0.55),
}
VOWEL_NAMES = tuple(VOWELS)
BANDWIDTHS = (80.0, 100.0, 140.0, 180.0)
# Loudness of each class of sound relative to a vowel.
LEVELS = {"s": 0.2, "sh": 0.22, "f": 0.12, "stop": 0.3, "nasal": 0.35}
# Consonant onsets: kind, duration (s), resonances for the noise (Hz, before tract scaling).
CONSONANTS = (
    ("none", 0.0, None),
    ("s", 0.09, (4800, 6200, 7000, 7600)),
    ("sh", 0.09, (2600, 3400, 4400, 5400)),
    ("f", 0.07, (3000, 5000, 6500, 7500)),
    ("stop", 0.05, (1800, 2800, 3800, 4800)),
    ("nasal", 0.07, (260, 1000, 2200, 3300)),
)


@dataclass(frozen=True)
class VoiceTraits:
    """What stays the same for one identity's voice."""

    pitch: float  # median fundamental frequency, Hz
    pitch_range: float  # intonation swing, semitones
    tract_scale: float  # formant multiplier: 1.0 is an adult male tract, ~1.18 adult female
    breathiness: float  # breath noise mixed into the voiced source, 0 .. 0.5
    rate: float  # syllables per second
    tilt: float  # one-pole low-pass on the source: larger is a darker, softer voice


@dataclass(frozen=True)
class Segment:
    """A stretch of samples with one sound: a vowel, a consonant onset or a pause."""

    start: int
    stop: int
    kind: str  # a vowel name, a consonant kind, or "pause"
    loudness: float
    formants: tuple


def _plan(voice: VoiceTraits, rng: np.random.Generator, num_samples: int, rate: int) -> list[Segment]:
    """Random syllables (consonant onset + vowel) and pauses covering ``num_samples``."""
    segments, position = [], -int(rng.uniform(0.0, 1.0 / voice.rate) * rate)  # random phase
    while position < num_samples:
        if rng.random() < 0.12:  # a word boundary
            length = int(rng.uniform(0.06, 0.18) * rate)
            segments.append(Segment(position, position + length, "pause", 0.0, ()))
            position += length
            continue
        syllable = int(rate / voice.rate * rng.uniform(0.75, 1.25))
        kind, seconds, resonances = CONSONANTS[rng.integers(len(CONSONANTS))]
        onset = min(int(seconds * rate * rng.uniform(0.8, 1.2)), syllable // 2)
        loudness = float(rng.uniform(0.45, 1.0))
        if onset:
            segments.append(Segment(position, position + onset, kind, loudness, resonances))
        vowel = VOWEL_NAMES[rng.integers(len(VOWEL_NAMES))]
        segments.append(Segment(position + onset, position + syllable, vowel, loudness, VOWELS[vowel][0]))
        position += syllable
    return segments


def _pitch_contour(voice: VoiceTraits, rng: np.random.Generator, segments: list, num_samples: int,
                   rate: int) -> np.ndarray:
    """F0 per sample: declination over the clip, an accent per syllable, slow wobble."""
    semitones = np.zeros(num_samples, np.float32)
    for seg in segments:
        lo, hi = max(seg.start, 0), min(seg.stop, num_samples)
        if hi > lo and seg.kind in VOWELS:
            semitones[lo:hi] = rng.uniform(-0.5, 0.5) * voice.pitch_range
    # Smooth the steps so intonation glides instead of jumping (a ~40 ms moving average).
    semitones = _moving_average(semitones, max(1, int(0.04 * rate)))
    t = np.arange(num_samples, dtype=np.float32) / rate
    semitones += -1.5 * t / max(t[-1], 1e-3) + 0.3 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
    return voice.pitch * np.exp2(semitones / 12.0) * rng.uniform(0.95, 1.05)


def _moving_average(signal: np.ndarray, width: int) -> np.ndarray:
    """A centred box filter in O(N) through a running sum (np.convolve is O(N * width))."""
    padded = np.pad(signal.astype(np.float64), (width // 2, width - width // 2), mode="edge")
    running = np.cumsum(padded)
    return ((running[width:] - running[:-width]) / width).astype(np.float32)


def _envelope(segments: list, num_samples: int, rate: int) -> np.ndarray:
    """Amplitude per sample: each sound rises and falls with raised-cosine ramps."""
    envelope = np.zeros(num_samples, np.float32)
    ramp_len = max(2, int(0.015 * rate))
    full_rise = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp_len, dtype=np.float32))
    for seg in segments:
        length = seg.stop - seg.start
        if seg.loudness <= 0 or length <= 0:
            continue
        shape = np.full(length, seg.loudness, np.float32)
        ramp = min(ramp_len, length // 2)
        if ramp:
            rise = full_rise if ramp == ramp_len else full_rise[::max(1, ramp_len // ramp)][:ramp]
            shape[:ramp] *= rise
            shape[-ramp:] *= rise[::-1]
        lo, hi = max(seg.start, 0), min(seg.stop, num_samples)
        if hi > lo:
            envelope[lo:hi] = shape[lo - seg.start:hi - seg.start]
    return envelope


def _cascade(formants: tuple, scale: float, rate: int) -> tuple:
    """Klatt's second-order resonators, each with unit gain at 0 Hz, multiplied into one filter.

    Returns ``(b, a)`` for ``lfilter``; resonances above 0.45 x the sample rate are left out.
    """
    gain, denominator = 1.0, np.ones(1)
    for freq, bandwidth in zip(formants, BANDWIDTHS):
        freq = freq * scale
        if freq >= 0.45 * rate:
            continue
        c = -np.exp(-2 * np.pi * bandwidth * scale / rate)
        b = 2 * np.exp(-np.pi * bandwidth * scale / rate) * np.cos(2 * np.pi * freq / rate)
        gain *= 1.0 - b - c
        denominator = np.convolve(denominator, (1.0, -b, -c))
    return np.array([gain]), denominator


def synthesise(voice: VoiceTraits, rng: np.random.Generator, num_samples: int, rate: int) -> tuple:
    """One clip: float32 ``[num_samples]`` (not normalised) and what is heard at its centre.

    The second value is ``(mouth_open, mouth_width)`` at the middle sample, the instant the paired
    face shows: jaw opening of the vowel times the loudness there, 0 in a pause.
    """
    from scipy.signal import lfilter

    segments = _plan(voice, rng, num_samples, rate)
    f0 = _pitch_contour(voice, rng, segments, num_samples, rate)
    envelope = _envelope(segments, num_samples, rate)
    phase = np.cumsum(f0 / rate, dtype=np.float64)
    source = (phase % 1.0).astype(np.float32) - 0.5  # sawtooth: harmonics fall 6 dB/octave
    source = lfilter([1.0 - voice.tilt], [1.0, -voice.tilt], source).astype(np.float32)
    source /= max(float(np.abs(source).max()), 1e-6)
    noise = rng.standard_normal(num_samples).astype(np.float32)
    breath = 0.5 * voice.breathiness * noise
    hiss = np.diff(noise, prepend=0.0) * 0.35  # frication: white noise tilted towards the highs
    output = np.zeros(num_samples, np.float32)
    for seg in segments:
        lo, hi = max(seg.start, 0), min(seg.stop, num_samples)
        if hi - lo < 8 or seg.kind == "pause":
            continue
        voiced = seg.kind in VOWELS or seg.kind == "nasal"
        excitation = (source[lo:hi] + breath[lo:hi]) if voiced else hiss[lo:hi]
        b, a = _cascade(seg.formants, voice.tract_scale, rate)
        shaped = lfilter(b, a, excitation)
        # Level each sound by its class, not by the resonators' gain (which soars for the high
        # fricative resonances); the envelope then ramps it to zero at both ends, so no filter
        # state needs carrying from one sound to the next.
        level = LEVELS.get(seg.kind, 1.0) / max(float(np.sqrt(np.mean(shaped ** 2))), 1e-8)
        output[lo:hi] = shaped * (level * envelope[lo:hi])
    output += rng.uniform(0.002, 0.01) * noise[::-1]  # room noise, independent of the breath
    return output, _mouth_at(segments, envelope, num_samples // 2)


def _mouth_at(segments: list, envelope: np.ndarray, sample: int) -> tuple:
    for seg in segments:
        if seg.start <= sample < seg.stop:
            if seg.kind in VOWELS:
                _, jaw, spread = VOWELS[seg.kind]
                return float(jaw * envelope[sample]), spread
            if seg.kind in ("nasal", "stop", "pause"):
                return 0.0, 1.0
            return float(0.25 * envelope[sample]), 1.1  # fricatives: teeth apart, lips spread
    return 0.0, 1.0
