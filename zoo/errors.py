"""One family of errors for the whole project, and the two facts every boundary needs about them.

The core raises these; the CLI boundary (``zoo.cli.app``) turns each into one line on stderr and
an exit code, never a traceback. ``exit_code`` says which: 1 for a runtime failure, 2 for a usage
error (a bad option, an unknown component), as click does for its own usage errors; an interrupted
command exits with ``INTERRUPTED_EXIT_CODE`` (128 + SIGINT, as shells report it).
"""

from __future__ import annotations

INTERRUPTED_EXIT_CODE = 130


class ZooError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 1


class UsageError(ZooError):
    """The user asked for something that cannot be: a bad option value or combination."""

    exit_code = 2


class PluginError(ZooError):
    """A plugin broke a registry rule (duplicate or invalid name, bad factory)."""


class UnknownComponentError(UsageError):
    """No registered component of that kind has that name, or it takes no such argument."""


class DataError(ZooError):
    """A dataset root, layout, manifest or image is missing or malformed."""


class CheckpointError(ZooError):
    """A checkpoint is missing, truncated, of the wrong architecture or not ours."""


class TrainingError(ZooError):
    """Training had to stop (a NaN or infinite loss, an unusable configuration)."""


class StorageError(ZooError):
    """A file or folder could not be written: a full disk, no permission, a read-only place."""


class MetricSkipped(ZooError):
    """Raised by a metric that cannot run in this setting; the message says why, in one line.

    The evaluator records it as a skip (not a failure) and goes on with the other metrics.
    """


# -- audio and video ----------------------------------------------------------------------------
class AudioError(ZooError):
    """An audio file could not be read or is unusable (silent, too short, not audio)."""


class AudioNotFoundError(AudioError):
    """The path does not exist or is not a regular file."""


class EmptyAudioError(AudioError):
    """The file is empty, or its header announces no samples."""


class NotAudioError(AudioError):
    """The file is not in any audio format we can decode (text, an image, random bytes)."""


class CorruptAudioError(AudioError):
    """The file starts as audio but is truncated or damaged."""


class InvalidSamplesError(AudioError):
    """The decoded samples contain NaN or infinite values."""


class SilentAudioError(AudioError):
    """Every sample is (nearly) zero."""


class AudioTooShortError(AudioError):
    """The clip is shorter than the shortest usable clip."""


class AudioTooLongError(AudioError):
    """The clip is longer than the caller accepts (the demo page's length limit)."""


class VideoError(DataError):
    """A video cannot be opened or decoded, or lacks the streams needed."""


class NoAudioTrackError(AudioError):
    """The video has no audio stream, or it holds no samples."""


def last_line(exc: BaseException, *, with_type: bool = False) -> str:
    """The last line of an error's message: enough to act on, never a traceback.

    ``with_type`` prefixes the exception's class name (for errors from code we do not own, such
    as a plugin's import); an empty message gives the class name alone.
    """
    lines = str(exc).strip().splitlines()
    message = lines[-1].strip() if lines else ""
    if not message:
        return type(exc).__name__
    return f"{type(exc).__name__}: {message}" if with_type else message
