"""Run folders: ``runs/<name>/`` with the resolved options, per-epoch stats and checkpoints.

Named as stylegan2-ada names its runs: a number that grows, then what the run is, so a
listing sorts by age and still says what each run was.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

from zoo.errors import CheckpointError, UsageError, last_line
from zoo.files import is_plain_name, make_folder, storage_error, write_text

CONFIG_FILE = "config.json"
STATS_FILE = "stats.jsonl"


def auto_name(runs_dir: Path, config) -> str:
    """``00003-synthetic-wave_cnn-dcgan-64``: the next free number, then the run's parts."""
    numbers = [int(m.group(1)) for p in runs_dir.glob("*") if (m := re.match(r"^(\d{5})-", p.name))]
    following = max(numbers, default=-1) + 1
    return f"{following:05d}-{config.dataset}-{config.encoder}-{config.generator}-{config.image_size}"


def create_run_dir(config) -> Path:
    """Make the run folder; refuse to train over another run's files."""
    runs_dir = make_folder(config.runs_dir)
    name = config.save_path or auto_name(runs_dir, config)
    if not is_plain_name(name):
        raise UsageError(f"--save-path must be a plain folder name, not '{name}'")
    run_dir = runs_dir / name
    if (run_dir / CONFIG_FILE).exists():
        raise UsageError(f"{run_dir} already holds a run: use --resume {run_dir} to continue it, "
                         "or choose another --save-path")
    return make_folder(run_dir)


def read_config(run_dir: Path) -> dict:
    """The resolved options a run was started with."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise UsageError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or bytes
        raise CheckpointError(f"{path}: unreadable run configuration ({last_line(exc)})") from None
    if not isinstance(record, dict) or not isinstance(record.get("options"), dict):
        raise CheckpointError(f"{path}: not a run configuration (no mapping of options)")
    return record


def run_of_checkpoint(model_file: Path) -> Optional[Path]:
    """The run folder holding ``<run>/checkpoints/<name>/model.safetensors``, if it is one."""
    folder = Path(model_file).parent.parent
    if folder.name == "checkpoints" and (folder.parent / CONFIG_FILE).is_file():
        return folder.parent
    return None


def dataset_defaults(model_file: Path, dataset: Optional[str], root: Optional[str],
                     dataset_args: Optional[dict]) -> tuple[str, Optional[str], dict]:
    """Dataset, root and arguments: the user's, else the checkpoint's run's own (when it is the
    same dataset), else ``youtubers``."""
    run = run_of_checkpoint(model_file)
    options = read_config(run).get("options", {}) if run is not None else {}
    name = dataset or options.get("dataset") or "youtubers"
    same = name == options.get("dataset")
    root = root if root is not None else (options.get("data") if same else None)
    args = dataset_args if dataset_args is not None else (dict(options.get("dataset_args") or {}) if same else {})
    return name, root, args


class StatsLog:
    """Appends one JSON object per epoch to ``stats.jsonl``, truncating lines past a resume."""

    def __init__(self, run_dir: Path, resume_step: Optional[int] = None):
        self.path = Path(run_dir) / STATS_FILE
        if resume_step is not None and self.path.exists():
            self._keep_until(resume_step)

    def _keep_until(self, step: int) -> None:
        """Keep the epochs that ended at or before ``step`` (the resumed checkpoint's)."""
        kept = []
        for line in self.path.read_bytes().decode("utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                break  # a line cut short by a kill: drop it and everything after
            if not isinstance(record, dict) or not isinstance(record.get("step", 0), int):
                break
            if record.get("step", 0) <= step:
                kept.append(line)
        write_text(self.path, "".join(f"{line}\n" for line in kept))

    def append(self, record: dict) -> None:
        """Add one line, flushed to disk; a full disk is one ``StorageError`` line."""
        try:
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise storage_error(self.path, exc) from None
