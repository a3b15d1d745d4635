"""Drawing what the demo page asks for: a face (and per-window faces) from one upload, or an
interpolation strip from two, with the checkpoints found under the runs folder.

An upload is written into a fresh temporary folder, decoded there by ``zoo.media.audio`` (so the
page accepts every format ``generate`` does), drawn by ``zoo.generate``'s ``Drawer`` into the same
folder, read back as PNG and deleted with the folder: nothing is written anywhere else. Error
lines name the file as the user called it, never the temporary path.
"""

from __future__ import annotations

import base64
import re
import tempfile
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from zoo.errors import CheckpointError, UsageError, ZooError
from zoo.generate import Drawer, GenerateOptions, interpolate
from zoo.hardware import resolve_device
from zoo.model import checkpoints
from zoo.model.pipeline import FacePipeline

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # one request, all its clips together
MAX_SECONDS = 60.0  # longest clip accepted
STEPS_RANGE = (2, 16)  # faces in an interpolation strip
PIPELINES_KEPT = 3  # models held in memory at once (least recently used dropped first)
NAME_LENGTH = 80


@dataclass
class Upload:
    """One clip as the page sent it: the file name the user knows, and its bytes."""

    name: str
    data: bytes


def display_name(name: Optional[str]) -> str:
    """The upload's own file name, safe to show: no folders, no control characters, not too long."""
    base = re.sub(r"[\x00-\x1f\x7f]", "", Path(str(name or "").replace("\\", "/")).name).strip()
    return (base or "recording")[:NAME_LENGTH]


def _suffix(name: str) -> str:
    # the decoder chooses PyAV's fallback by suffix (webm, m4a ...); anything odd is dropped
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""


@contextmanager
def staged(uploads: list[Upload]) -> Iterator[tuple[Path, list[Path]]]:
    """Write the uploads into a new temporary folder; yield it and their paths; delete it all.

    A ``ZooError`` raised inside names the temporary files: it is re-raised naming the uploads."""
    with tempfile.TemporaryDirectory(prefix="wav2pix-serve-") as folder:
        paths = []
        for index, upload in enumerate(uploads):
            paths.append(Path(folder) / f"clip-{index}{_suffix(upload.name)}")
            paths[-1].write_bytes(upload.data)
        try:
            yield Path(folder), paths
        except ZooError as exc:
            message = str(exc)
            for path, upload in zip(paths, uploads):
                message = message.replace(str(path), display_name(upload.name))
            raise type(exc)(message) from None


def png_data(path: Path) -> str:
    """A PNG file as a ``data:`` URL the page can show directly."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _choice(ident: str, file: Path) -> dict:
    """One entry of the checkpoint menu: what the run is, or why it cannot be used."""
    try:
        description = checkpoints.read_description(file)
    except CheckpointError as exc:
        return {"id": ident, "label": f"{ident} (unusable)", "error": str(exc)}
    parts = description["components"]
    return {"id": ident, "label": f"{ident} ({parts['encoder']['name']} + {parts['generator']['name']}, "
                                  f"{description['image_size']} px)"}


class FaceService:
    """The checkpoints the page may choose from, their pipelines (each loaded once), and drawing."""

    def __init__(self, runs_dir: str | Path = "runs", checkpoint: Optional[str] = None, device: str = "auto"):
        self.runs_dir = Path(runs_dir)
        self.device = str(resolve_device(device))  # a device that is not here fails now, not per request
        # a checkpoint given on the command line must exist now, not at the first request
        self.given = (str(checkpoint), checkpoints.resolve(checkpoint)) if checkpoint else None
        self._pipelines: OrderedDict = OrderedDict()
        self._loading = threading.Lock()

    # -- what may be chosen --------------------------------------------------------------------
    def _found(self) -> list[tuple[str, Path]]:
        """``(id, model file)`` of the given checkpoint, then of every run's last, newest first."""
        found = [self.given] if self.given else []
        runs = [p for p in self.runs_dir.glob(f"*/checkpoints/{checkpoints.LAST}/{checkpoints.MODEL_FILE}")
                if p.is_file()]
        for model in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True):
            if not any(model.resolve() == file.resolve() for _, file in found):
                found.append((model.parents[2].name, model))
        return found

    def choices(self) -> list[dict]:
        """The checkpoint menu: ``[{"id", "label"[, "error"]}]``, the default first."""
        return [_choice(ident, file) for ident, file in self._found()]

    def model_file(self, ident: Optional[str]) -> Path:
        """The model file of a menu entry (the default when ``ident`` is empty)."""
        found = self._found()
        if not found:
            checkpoints.newest_run_checkpoint(self.runs_dir)  # raises the line that says how to train
        if not ident:
            return found[0][1]
        for name, file in found:
            if name == ident:
                return file
        raise CheckpointError(f"no checkpoint '{ident}' here; choose one of: {', '.join(n for n, _ in found)}")

    # -- models, loaded once -------------------------------------------------------------------
    def pipeline(self, ident: Optional[str]) -> tuple[FacePipeline, threading.Lock, float]:
        """The pipeline of a checkpoint, its drawing lock, and the seconds spent loading it now
        (0 when it was already loaded). A checkpoint rewritten since is loaded afresh."""
        file = self.model_file(ident)
        key = (str(file.resolve()), file.stat().st_mtime_ns)
        with self._loading:  # two first requests for one model load it once
            if key not in self._pipelines:
                started = time.perf_counter()
                self._pipelines[key] = (FacePipeline.from_checkpoint(file, self.device), threading.Lock())
                while len(self._pipelines) > PIPELINES_KEPT:
                    self._pipelines.popitem(last=False)
                return (*self._pipelines[key], time.perf_counter() - started)
            self._pipelines.move_to_end(key)
            return (*self._pipelines[key], 0.0)

    # -- drawing -------------------------------------------------------------------------------
    def face(self, ident: Optional[str], upload: Upload) -> dict:
        """The clip's face (the fused windows' for a long clip) and its per-window faces."""
        pipeline, lock, load_s = self.pipeline(ident)
        options = GenerateOptions(max_seconds=MAX_SECONDS)
        with staged([upload]) as (folder, [path]), lock:  # the pipeline seeds torch while drawing
            result = Drawer(pipeline, options).draw_file(path, "face", folder)
            windows = png_data(Path(result.outputs[1])) if result.windows > 1 else None
            return {"file": display_name(upload.name), "seconds": round(result.seconds, 3),
                    "windows": result.windows, "note": result.note, "face": png_data(Path(result.outputs[0])),
                    "windows_image": windows, "load_s": round(load_s, 3)}

    def interpolation(self, ident: Optional[str], first: Upload, second: Upload, steps: int) -> dict:
        """A strip of ``steps`` faces from the first clip's voice to the second's."""
        low, high = STEPS_RANGE
        if not low <= steps <= high:
            raise UsageError(f"steps must be between {low} and {high}, not {steps}")
        pipeline, lock, load_s = self.pipeline(ident)
        options = GenerateOptions(max_seconds=MAX_SECONDS)
        with staged([first, second]) as (folder, paths), lock:
            strip = interpolate(pipeline, paths[0], paths[1], steps, folder, options)
            return {"files": [display_name(first.name), display_name(second.name)], "steps": steps,
                    "strip": png_data(strip), "load_s": round(load_s, 3)}
