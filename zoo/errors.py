"""One family of errors for the whole project.

The core raises these; the CLI boundary (``zoo.cli.app``) turns each into one line on stderr and an
exit code, never a traceback. ``exit_code`` says which: 1 for a runtime failure, 2 for a usage
error (a bad option, an unknown component), as click does for its own usage errors.
"""

from __future__ import annotations


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


class AudioError(ZooError):
    """An audio file could not be read or is unusable (silent, too short, not audio)."""


class DataError(ZooError):
    """A dataset root, layout, manifest or image is missing or malformed."""


class CheckpointError(ZooError):
    """A checkpoint is missing, truncated, of the wrong architecture or not ours."""


class TrainingError(ZooError):
    """Training had to stop (a NaN or infinite loss, an unusable configuration)."""
