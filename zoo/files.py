"""Writing files safely, and where the caches live: one way to do each, for the whole project.

Every file the project writes for a user (checkpoints, run records, reports, pictures, cache
entries, prepare's bookkeeping) goes through ``replacing``: the content is written under a
temporary name beside its target, flushed to disk, then renamed onto the target in one atomic
step. A reader sees the old file or the new one, never half of one; a failure (a full disk, a
kill, an exception in the writer) removes the temporary and leaves the old file as it was. An
``OSError`` becomes one ``StorageError`` line naming the path.

Names that come from data (a dataset's identities and keys, a file's stem) are names, never
paths: ``check_name`` refuses one that is not a single path component, and ``inside`` is how a
writer turns a name into a path, refusing any that would land outside its output folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Union

from zoo.errors import DataError, StorageError, last_line

PathLike = Union[str, os.PathLike]
CACHE_ENV_VAR = "WAV2PIX_ZOO_CACHE"
TEMPORARY_PREFIX = ".tmp-"


def cache_root(override: Optional[PathLike] = None) -> Path:
    """The cache folder: ``override``, else ``$WAV2PIX_ZOO_CACHE``, else ``~/.cache/wav2pix-zoo``."""
    if override:
        return Path(override).expanduser()
    value = os.environ.get(CACHE_ENV_VAR)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "wav2pix-zoo"


def storage_error(path: PathLike, exc: OSError) -> StorageError:
    """One line for a failed write: the path and the system's reason (disk full, permission)."""
    reason = exc.strerror or last_line(exc)
    return StorageError(f"{path}: cannot write ({reason}); anything written before is left as it was")


def is_plain_name(name) -> bool:
    """Whether ``name`` is one path component: not empty, ``.`` or ``..``, no separator or NUL."""
    return isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


def check_name(name, what: str = "name") -> str:
    """Return ``name`` if it is a plain name (see ``is_plain_name``), else one ``DataError``."""
    if not is_plain_name(name):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise DataError(f"{what} {shown} is not a plain name (names must not be empty, '.' or '..', "
                        "nor hold '/', '\\' or NUL): a name must never act as a path")
    return name


def inside(folder: PathLike, name: str) -> Path:
    """``folder / name`` for a writer, refused (``DataError``) unless it resolves to an entry
    directly inside ``folder``: a key such as ``../../x`` can never make a writer leave it."""
    folder = Path(folder)
    target = folder / name
    if not is_plain_name(name) or target.resolve().parent != folder.resolve():
        raise DataError(f"{name!r}: not a plain file name; writing it would leave {folder}")
    return target


def make_folder(path: PathLike) -> Path:
    """Create ``path`` and its parents if missing; a failure is one ``StorageError`` line."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(path, exc) from None
    return path


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush every file directly inside ``folder``, then the folder itself."""
    for path in [*folder.iterdir(), folder]:
        fsync_path(path)


def remove_path(path: Path) -> None:
    """Delete a file, link or folder tree if it exists (never raises for a missing one)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def replacing(target: PathLike, *, folder: bool = False, sync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically.

    ``folder`` makes the temporary an empty folder (a checkpoint, a cache entry) instead of a
    path for a file. With ``sync`` the content is flushed to disk before the rename, so a crash
    right after leaves the new content, not an empty file. A folder replaces an existing target
    folder only after the new one is complete.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary_beside(target, folder)
    except OSError as exc:
        raise storage_error(target, exc) from None
    try:
        yield temporary
        if sync:
            fsync_tree(temporary) if folder else fsync_path(temporary)
        if folder:
            os.chmod(temporary, 0o755)  # mkdtemp makes it private; ours is plain shared data
            _replace_folder(temporary, target)
        else:
            os.replace(temporary, target)
    except OSError as exc:
        remove_path(temporary)
        raise storage_error(target, exc) from None
    except BaseException:
        remove_path(temporary)
        raise


def _temporary_beside(target: Path, folder: bool) -> Path:
    """A new, empty temporary folder or file in ``target``'s folder, named after it."""
    prefix = f"{TEMPORARY_PREFIX}{target.name}-"
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    handle, name = tempfile.mkstemp(prefix=prefix, dir=target.parent)
    os.close(handle)
    return Path(name)


def _replace_folder(temporary: Path, target: Path) -> None:
    """Put a finished folder at ``target``, moving an older one aside first and deleting it after.

    If the new folder cannot take its place, the older one is put back: a failed save never
    loses the last good one.
    """
    if not target.exists() and not target.is_symlink():
        os.rename(temporary, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}old-{target.name}-", dir=target.parent))
    try:
        os.rename(target, old / target.name)
    except OSError:
        shutil.rmtree(old, ignore_errors=True)
        raise
    try:
        os.rename(temporary, target)
    except OSError:
        os.rename(old / target.name, target)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete what interrupted ``replacing`` calls left in ``folder`` (never a finished file)."""
    removed = []
    if folder.is_dir():
        for path in folder.glob(f"{TEMPORARY_PREFIX}*"):
            remove_path(path)
            removed.append(path)
    return removed


def write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with replacing(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text(path: PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: PathLike, data, *, strict: bool = False) -> Path:
    """Write ``data`` as indented JSON atomically. ``strict`` refuses NaN and infinity (JSON has
    neither); otherwise values JSON cannot hold are written as their string."""
    text = json.dumps(data, indent=2, default=str, allow_nan=not strict)
    return write_text(path, text + "\n")
