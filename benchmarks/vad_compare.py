"""Voice-activity detectors compared on real speech with inserted gaps of known position.

The zoo's energy detector (``zoo/media/vad.py``, the default) and its ``--vad webrtc`` option
(webrtcvad in ``WEBRTC_MODE``, one detector over a file's windows in order) against webrtcvad's
other modes and a fresh detector per window, on the youtubers test clips: 1 s of real speech,
then 1 s of gap, and so on, under six conditions (what fills the gaps, what lies under
everything, how loud the speaker is), cut into recordings of ``--pairs`` clip-and-gap pairs
(6 s by default, a file ``generate`` might get; 0: one long recording), each judged on its own.
Every detector judges 20 ms frames; a 1 s window is kept when at least ``MIN_SPEECH_SHARE`` of
its frames are speech, the rule ``generate`` applies before fusing a long clip's windows.

Ground truth is by construction: every frame of an inserted clip counts as speech, every frame
of a gap as not. A clip's own pauses between words therefore count against every detector
alike, and the few near-silent clips of the test split (a pause cut out as "speech") too; the
second table leaves out clips whose peak is below -30 dBFS.

    OMP_WAIT_POLICY=PASSIVE nice -n 19 python benchmarks/vad_compare.py [DATA] [--clips N] [--pairs P]

needs ``pip install webrtcvad-wheels==2.0.14.post1`` and the youtubers data (default
../shared/data/youtubers). Prints Markdown tables (docs/results/vad.md holds one run's).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the zoo of this checkout
from zoo.media.vad import MIN_SPEECH_SHARE, WEBRTC_MODE, _speech, frame_rms, webrtc_frames  # noqa: E402

RATE = 16000
FRAME = 320  # 20 ms, the energy detector's frame and one webrtcvad accepts
WINDOW = RATE  # 1 s: a clip, and a gap
QUIET_PEAK = 10 ** (-30 / 20)


def db(value: float) -> float:
    return 10 ** (value / 20)


def load_clips(root: Path, count: int) -> list[np.ndarray]:
    """``count`` test clips spread evenly over the split (both speakers); 0: all of them."""
    paths = sorted((root / "test").glob("*/*.wav"))
    picks = np.linspace(0, len(paths) - 1, count or len(paths)).round().astype(int)
    return [soundfile.read(paths[i], dtype="float32")[0][:WINDOW] for i in picks]


def conditions(clips: list[np.ndarray], rng: np.random.Generator) -> dict:
    """Name -> (wave, truth per 1 s window): speech, gap, speech, gap ..."""
    speech_rms = float(np.median([np.sqrt(np.mean(c ** 2)) for c in clips]))

    def build(gap, under=0.0, scale=1.0):
        parts = []
        for clip in clips:
            parts += [clip * scale, gap()]
        wave = np.concatenate(parts)
        if under:
            wave = wave + under * rng.standard_normal(len(wave)).astype(np.float32)
        return np.clip(wave, -1, 1).astype(np.float32)

    zeros = lambda: np.zeros(WINDOW, np.float32)  # noqa: E731
    burst = lambda: (speech_rms * rng.standard_normal(WINDOW)).astype(np.float32)  # noqa: E731
    truth = np.tile([True, False], len(clips))
    return {
        "digital silence in the gaps": (build(zeros), truth),
        "room noise -60 dBFS throughout": (build(zeros, under=db(-60)), truth),
        "white noise 20 dB under speech throughout": (build(zeros, under=speech_rms * db(-20)), truth),
        "white noise 10 dB under speech throughout": (build(zeros, under=speech_rms * db(-10)), truth),
        "white-noise bursts as loud as speech in the gaps": (build(burst), truth),
        "quiet speaker (-25 dB), room noise -75 dBFS": (build(zeros, under=db(-75), scale=db(-25)), truth),
    }


def energy_frames(wave: np.ndarray) -> np.ndarray:
    """The zoo's decision per 20 ms frame, judged over the whole recording as ``speech_share``."""
    windows = torch.from_numpy(wave).view(-1, WINDOW)
    return _speech(torch.stack([frame_rms(w, RATE) for w in windows])).flatten().numpy()


def zoo_webrtc_frames(wave: np.ndarray) -> np.ndarray:
    """``generate --vad webrtc``: one detector over the 1 s windows in order."""
    return torch.cat(webrtc_frames(torch.from_numpy(wave).view(-1, WINDOW), RATE)).numpy()


def fresh_webrtc_frames(wave: np.ndarray) -> np.ndarray:
    """The zoo's mode with a fresh detector for each 1 s window (what the zoo does NOT do)."""
    return np.concatenate([zoo_webrtc_frames(w) for w in wave.reshape(-1, WINDOW)])


def streaming_webrtc_frames(wave: np.ndarray, mode: int) -> np.ndarray:
    """webrtcvad over the whole recording in one pass, as Resemblyzer runs it."""
    import webrtcvad

    vad = webrtcvad.Vad(mode)
    pcm = (np.clip(wave, -1, 1) * 32767).round().astype(np.int16).tobytes()
    step = 2 * FRAME
    return np.array([vad.is_speech(pcm[i:i + step], RATE) for i in range(0, len(pcm) - step + 1, step)])


def score(frames: np.ndarray, truth: np.ndarray, keep: np.ndarray) -> dict:
    """Frame and window rates against the windows' truth (``keep``: which clips count)."""
    per_window = frames.reshape(len(truth), -1)
    voiced = per_window.mean(axis=1) >= MIN_SPEECH_SHARE
    speech = truth & keep
    frame_truth = np.repeat(truth, per_window.shape[1])
    frame_keep = np.repeat(keep | ~truth, per_window.shape[1])
    return {
        "speech frames dropped": 1 - frames[frame_truth & frame_keep].mean(),
        "gap frames kept": frames[~frame_truth].mean(),
        "frame accuracy": (frames == frame_truth)[frame_keep].mean(),
        "speech windows dropped": 1 - voiced[speech].mean(),
        "gap windows kept": voiced[~truth].mean(),
    }


def timed(detector, wave: np.ndarray, pairs: int) -> tuple[np.ndarray, float]:
    """The detector's frames over ``wave`` cut into recordings of ``pairs`` clip-and-gap pairs
    each (0: one recording), each judged on its own as ``generate`` judges a file; CPU seconds."""
    size = 2 * WINDOW * pairs or len(wave)
    start = time.process_time()
    frames = np.concatenate([detector(wave[i:i + size]) for i in range(0, len(wave), size)])
    return frames, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/youtubers"))
    parser.add_argument("--clips", type=int, default=0, help="0: every test clip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=3,
                        help="clip-and-gap pairs per recording, each judged on its own (0: one long recording)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clips = load_clips(Path(args.data), args.clips)
    loud = np.array([np.abs(c).max() >= QUIET_PEAK for c in clips])
    detectors = {"energy (zoo default)": energy_frames,
                 f"webrtcvad mode {WEBRTC_MODE} (zoo --vad webrtc)": zoo_webrtc_frames,
                 f"webrtcvad mode {WEBRTC_MODE}, a fresh detector per window": fresh_webrtc_frames,
                 **{f"webrtcvad mode {m}": (lambda w, m=m: streaming_webrtc_frames(w, m))
                    for m in range(4) if m != WEBRTC_MODE}}
    rows, cpu = {True: [], False: []}, {name: [0.0, 0.0] for name in detectors}
    for condition, (wave, truth) in conditions(clips, np.random.default_rng(args.seed)).items():
        keep_all, keep_loud = np.ones(len(truth), bool), np.repeat(loud, 2) | ~truth
        for name, detector in detectors.items():
            frames, seconds = timed(detector, wave, args.pairs)
            cpu[name][0] += seconds
            cpu[name][1] += len(wave) / RATE
            rows[True].append((condition, name, score(frames, truth, keep_all)))
            rows[False].append((condition, name, score(frames, truth, keep_loud)))
    recordings = f"recordings of {2 * args.pairs} s" if args.pairs else "one recording"
    print(f"{len(clips)} clips, {int((~loud).sum())} of them with a peak below -30 dBFS; {recordings}\n")
    for everything, title in ((True, "all clips"), (False, "clips peaking at -30 dBFS or more")):
        print(f"### {title}\n")
        keys = list(rows[everything][0][2])
        print("| condition | detector | " + " | ".join(keys) + " |")
        print("|---|---|" + "---|" * len(keys))
        for condition, name, values in rows[everything]:
            print(f"| {condition} | {name} | " + " | ".join(f"{100 * values[k]:.1f}%" for k in keys) + " |")
        print()
    print("### CPU time per second of audio (one thread)\n")
    print("| detector | CPU ms per s of audio |\n|---|---|")
    for name, (seconds, audio) in cpu.items():
        print(f"| {name} | {1000 * seconds / audio:.3f} |")


if __name__ == "__main__":
    main()
