"""Reading talking-head videos with PyAV: the soundtrack as 16 kHz mono, and sampled frames.

PyAV's wheel carries FFmpeg, so mp4, mkv, webm and mov decode with nothing installed by hand.
Two passes over a file, one per stream, keep each simple: the soundtrack is decoded first (it is
cheap, and a video without one is rejected before any frame is decoded), then the frames.

Speed matters because prepare reads hours of video: every frame that others refer to must pass
through the decoder (when sampling is sparse, the decoder skips the rest), only the sampled
frames are converted, and face detection sees a small grey image made by FFmpeg's scaler.

Mono is the mean of the channels (wav2pix kept the left channel only, one of its defects), and
resampling is polyphase (scipy's ``resample_poly``) done in blocks, so an hour of 48 kHz stereo
never sits in memory at its native rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from zoo.errors import NoAudioTrackError, VideoError, last_line

TARGET_RATE = 16000
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov")
SKIP_NONREF_FRAMES = 5  # sampling sparser than this many frames lets the decoder skip some


@dataclass(frozen=True)
class Soundtrack:
    """A video's audio as mono float32 samples at ``rate``; ``start`` is the first sample's time (s)."""

    samples: np.ndarray
    rate: int
    start: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.size / self.rate

    def index_at(self, seconds: float) -> int:
        """The sample index at ``seconds`` on the video's timeline."""
        return int(round((seconds - self.start) * self.rate))


class StreamResampler:
    """Polyphase resampling of an unbounded stream, block by block.

    The output equals ``scipy.signal.resample_poly`` over the whole signal (to float rounding):
    each block is filtered together with ``pad`` input samples of real context on both sides,
    the block starts on a multiple of ``down`` so its output lands on whole output samples, and
    the context's output is dropped. Zeros stand before the first sample and after the last,
    exactly as ``resample_poly`` assumes.
    """

    def __init__(self, rate_in: int, rate_out: int, block: int = 1 << 16):
        divisor = math.gcd(int(rate_in), int(rate_out))
        self.up, self.down = int(rate_out) // divisor, int(rate_in) // divisor
        # resample_poly's filter has 10 * max(up, down) taps per side at the upsampled rate.
        reach = math.ceil(10 * max(self.up, self.down) / self.up) + 2
        self.pad = self.down * math.ceil(reach / self.down)
        self.block = self.down * max(1, block // self.down)
        self._pending: list[np.ndarray] = [np.zeros(self.pad, np.float32)]
        self._pending_size = self.pad
        self._seen = 0
        self._produced = 0

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Take the next input samples; return whatever output is now final (maybe empty)."""
        self._pending.append(np.asarray(samples, np.float32))
        self._pending_size += samples.size
        self._seen += samples.size
        if self._pending_size < 2 * self.pad + self.block:
            return np.zeros(0, np.float32)
        buffer = np.concatenate(self._pending)
        outputs = []
        while buffer.size >= 2 * self.pad + self.block:
            outputs.append(self._filter(buffer[: 2 * self.pad + self.block], self.block))
            buffer = buffer[self.block:]
        self._pending, self._pending_size = [buffer], buffer.size
        return np.concatenate(outputs)

    def flush(self) -> np.ndarray:
        """The remaining output once the input has ended."""
        total = math.ceil(self._seen * self.up / self.down)
        tail = np.concatenate(self._pending + [np.zeros(self.pad, np.float32)])
        return self._filter(tail, None, total - self._produced)

    def _filter(self, segment: np.ndarray, block: int | None, count: int | None = None) -> np.ndarray:
        from scipy.signal import resample_poly

        if self.up == self.down:
            out = segment[self.pad:]
        else:
            out = resample_poly(segment, self.up, self.down)[self.pad * self.up // self.down:]
        count = block * self.up // self.down if count is None else count
        self._produced += count
        return out[:count].astype(np.float32, copy=False)


def _open(path: Path):
    import av

    if not path.is_file():
        raise VideoError(f"{path}: file not found")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{path}: not a readable video ({_ffmpeg_reason(exc)})") from None


def _ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's own words for an error, without its errno and file name."""
    strerror = getattr(exc, "strerror", None)
    return strerror.splitlines()[-1] if strerror else last_line(exc)


def read_soundtrack(path: Path, rate: int = TARGET_RATE) -> Soundtrack:
    """Decode the first audio stream of ``path`` to mono float32 at ``rate`` (mean of channels)."""
    import av

    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            raise NoAudioTrackError(f"{path}: no audio track")
        stream = container.streams.audio[0]
        to_float = av.AudioResampler(format="fltp")  # sample format only: rate and layout kept
        resampler, start, pieces = None, None, []
        try:
            for frame in container.decode(stream):
                if resampler is None:
                    resampler = StreamResampler(frame.sample_rate, rate)
                    start = float(frame.time) if frame.time is not None else 0.0
                for converted in to_float.resample(frame):
                    pieces.append(resampler.feed(converted.to_ndarray().mean(axis=0)))
        except (av.FFmpegError, ValueError) as exc:
            raise VideoError(f"{path}: audio stream is corrupt ({_ffmpeg_reason(exc)})") from None
    if resampler is None:
        raise NoAudioTrackError(f"{path}: audio track holds no samples")
    pieces.append(resampler.flush())
    return Soundtrack(np.concatenate(pieces), rate, start)


@dataclass(frozen=True)
class VideoInfo:
    """What prepare needs to know about a video stream before decoding it."""

    width: int
    height: int
    duration: float  # seconds, 0.0 when the container does not say


def probe_video(path: Path) -> VideoInfo:
    """Size and duration of the first video stream of ``path``, which must also have sound.

    Reads only the container's header: cheap enough to check every input before any work.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        if not container.streams.audio:
            raise NoAudioTrackError(f"{path}: no audio track")
        stream = container.streams.video[0]
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, duration)


def sample_frames(path: Path, every: float) -> Iterator[tuple[float, object]]:
    """Yield ``(time, frame)`` for the first frame at or after each multiple of ``every`` seconds.

    The sampling grid starts at the first frame; the times yielded are presentation times on the
    container's timeline (the soundtrack's ``start`` is on the same one). Frames are PyAV
    ``VideoFrame`` objects left in their decoded pixel format: convert only what you keep
    (``frame_grey``, ``frame_rgb``). A decoding error after the first frame ends the video early
    (damaged tails are common); one before it is a ``VideoError``.
    """
    import av

    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame and slice threads: decoding is most of the cost
        origin, target, index, rate = None, 0.0, 0, stream.average_rate or 25
        half_frame = 0.5 / float(rate)
        if every >= SKIP_NONREF_FRAMES * 2 * half_frame:
            # Frames no other frame refers to (most B-frames) need not be decoded at all: about
            # 1.5x faster, and a sampled frame is then at most a frame or two after its target.
            stream.codec_context.skip_frame = "NONREF"
        try:
            for frame in container.decode(stream):
                time = float(frame.time) if frame.time is not None else index / float(rate)
                index += 1
                origin = time if origin is None else origin
                if time - origin + half_frame >= target:
                    yield time, frame
                    while target <= time - origin + half_frame:
                        target += every
        except av.FFmpegError as exc:
            if origin is None:
                raise VideoError(f"{path}: video stream is corrupt ({_ffmpeg_reason(exc)})") from None


def frame_grey(frame, width: int, height: int) -> np.ndarray:
    """The frame as a ``[height, width]`` uint8 grey image, scaled by FFmpeg (area filter)."""
    small = frame.reformat(width=width, height=height, format="gray", interpolation="AREA")
    return small.to_ndarray()


def frame_rgb(frame) -> np.ndarray:
    """The frame as ``[H, W, 3]`` uint8 RGB."""
    return frame.to_ndarray(format="rgb24")
