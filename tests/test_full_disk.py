"""A full disk or an unwritable folder: one line naming the path, and nothing already written lost.

Real file systems where the machine allows it (a small tmpfs mounted for the test: root only;
skipped elsewhere), and a patched failure at every write site, which runs on any machine.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from datatrees import write_audio
from train_helpers import cli_args, run_cli, run_trainer, weights
from zoo import files
from zoo.errors import StorageError
from zoo.model import checkpoints

NO_SPACE = OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return run_trainer(tmp_path_factory.mktemp("runs"), save_path="tiny", max_steps=1).run_dir


@pytest.fixture
def small_disk(tmp_path):
    """``mount(name, size, readonly=False)``: a fresh tmpfs of ``size`` under ``tmp_path``."""
    mounted = []

    def mount(name: str, size: str, readonly: bool = False) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root; the patched-write tests cover every site")
        path = tmp_path / name
        path.mkdir()
        options = f"size={size},mode=0755" + (",ro" if readonly else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the patched-write tests cover every site")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(disk: Path, leave: int = 0) -> Path:
    """Write zeros until ``disk`` is full, then give ``leave`` bytes back."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        chunk = bytes(1 << 20)
        while True:
            try:
                if os.write(fd, chunk) == 0:
                    break
            except OSError:
                break
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    return filler


def the_error_line(result) -> str:
    """The one ``error:`` line a failed command printed, last, with no traceback anywhere."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0]), result.stderr
    return errors[0]


# -- real file systems ---------------------------------------------------------------------------------------
def test_a_full_disk_mid_training_is_one_line_and_keeps_the_last_checkpoint(small_disk):
    disk = small_disk("disk", "320m")
    run_trainer(disk, save_path="run", epochs=1, batch_size=12)  # 2 steps, one checkpoint
    run, last = disk / "run", disk / "run" / "checkpoints" / "last"
    good, step = weights(last), checkpoints.load_training_state(last)["step"]
    filler = fill(disk, leave=512 * 1024)  # room for a stats line and a sample sheet, not a checkpoint
    full = run_cli(cli_args(disk, "--resume", str(run), "--epochs", "2", "--batch-size", "12"))
    assert full.returncode == 1
    line = the_error_line(full)
    assert "No space left on device" in line and str(run / "checkpoints") in line
    assert checkpoints.load_training_state(last)["step"] == step
    assert all(torch.equal(good[k], v) for k, v in weights(last).items())
    assert not list((run / "checkpoints").glob(".tmp-*"))  # the failed save left nothing behind
    filler.unlink()
    again = run_trainer(disk, resume=str(run), epochs=2, batch_size=12)  # with room again, it goes on
    assert again.step == 2 * step == checkpoints.load_training_state(last)["step"]


def test_a_cache_on_a_disk_too_small_is_one_line_before_a_byte_is_written(small_disk, tmp_path):
    cache = small_disk("cache", "128k")
    result = run_cli(cli_args(tmp_path, "--max-steps", "1"), env={"WAV2PIX_ZOO_CACHE": str(cache)})
    assert result.returncode == 1
    line = the_error_line(result)
    assert str(cache) in line and "MiB" in line and "--no-cache" in line
    assert list(cache.iterdir()) == []


def test_an_unwritable_runs_folder_is_one_line(small_disk):
    runs = small_disk("readonly", "1m", readonly=True)
    result = run_cli(cli_args(runs, "--max-steps", "1"))
    assert result.returncode == 1
    line = the_error_line(result)
    assert str(runs) in line and "Read-only file system" in line


def test_generate_on_a_full_disk_fails_each_file_with_one_line(small_disk, run_dir, tmp_path):
    disk = small_disk("out", "4m")
    fill(disk)
    speech = write_audio(tmp_path / "hello.wav")
    result = run_cli(["generate", str(speech), "--checkpoint", str(run_dir), "--out", str(disk / "faces")])
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "No space left on device" in failed[0] and "hello.png" in failed[0]
    assert not list((disk / "faces").glob(".tmp-*"))


# -- a patched failure at every write site -------------------------------------------------------------------
def _failing(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _writers(run_dir: Path, folder: Path) -> dict:
    """Every way the project writes a file, each aimed at an existing file in ``folder``."""
    from zoo.evaluate.face_classifier import save_classifier
    from zoo.media.images import write_png

    def checkpoint():
        model = torch.nn.Linear(2, 2)
        checkpoints.save_checkpoint(folder, "existing", model=model, discriminator=model, description={}, state={})

    def classifier():
        class Tiny:
            model, identities, image_size, info = torch.nn.Linear(2, 2), ["a"], 16, {}

        from zoo.evaluate.face_classifier import ClassifierSettings

        save_classifier(Tiny(), folder / "existing", ClassifierSettings())

    return {
        "json (config, summary, metrics)": lambda: files.write_json(folder / "existing", {"a": 1}),
        "text (report, stats)": lambda: files.write_text(folder / "existing", "new"),
        "picture (samples, grids, faces)": lambda: write_png(np.zeros((4, 4, 3), np.uint8), folder / "existing"),
        "face classifier cache": classifier,
        "checkpoint folder": checkpoint,
    }


WRITERS = ["json (config, summary, metrics)", "text (report, stats)", "picture (samples, grids, faces)",
           "face classifier cache", "checkpoint folder"]


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("where", ["write", "flush", "rename"])
def test_every_writer_fails_with_one_line_and_keeps_the_old_file(run_dir, tmp_path, monkeypatch, writer, where):
    old = tmp_path / "existing"
    if writer == "checkpoint folder":
        old.mkdir()
        (old / "kept").write_text("old")
    else:
        old.write_text("old")
    if where == "write":  # the bytes themselves do not fit
        monkeypatch.setattr(Path, "write_bytes", _failing)
        monkeypatch.setattr("PIL.Image.Image.save", _failing)
    elif where == "flush":
        monkeypatch.setattr(files, "fsync_path", _failing)
    else:
        monkeypatch.setattr(files.os, "replace", _failing)
        monkeypatch.setattr(files.os, "rename", _failing)
    try:
        _writers(run_dir, tmp_path)[writer]()
    except StorageError as exc:
        assert str(old) in str(exc) and "No space left on device" in str(exc) and "\n" not in str(exc)
    else:
        assert where == "flush" and writer == "picture (samples, grids, faces)"  # pictures skip the fsync
    monkeypatch.undo()
    kept = (old / "kept") if writer == "checkpoint folder" else old
    if not (where == "flush" and writer == "picture (samples, grids, faces)"):
        assert kept.read_text() == "old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_stats_line_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    from zoo.train.runs import StatsLog

    log = StatsLog(tmp_path)
    log.append({"epoch": 0})
    monkeypatch.setattr(Path, "open", _failing)
    with pytest.raises(StorageError, match="stats.jsonl: cannot write .No space left on device"):
        log.append({"epoch": 1})
    monkeypatch.undo()
    assert (tmp_path / "stats.jsonl").read_text() == '{"epoch": 0}\n'


@pytest.mark.parametrize("maker", ["run folder", "generate out", "evaluation out"])
def test_a_folder_that_cannot_be_made_is_one_line_naming_it(run_dir, tmp_path, monkeypatch, maker):
    from types import SimpleNamespace

    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    target = tmp_path / "place"
    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(StorageError, match="place: cannot write .Permission denied"):
        if maker == "run folder":
            from zoo.train.runs import create_run_dir

            create_run_dir(SimpleNamespace(runs_dir=str(target), save_path="run"))
        elif maker == "generate out":
            from zoo.generate import GenerateOptions, generate_files
            from zoo.model.pipeline import FacePipeline

            monkeypatch.undo()
            pipeline = FacePipeline.from_checkpoint(run_dir, device="cpu")
            monkeypatch.setattr(Path, "mkdir", denied)
            generate_files(pipeline, [], target, GenerateOptions())
        else:
            from zoo.evaluate.report import write_outputs

            write_outputs(SimpleNamespace(table=[]), target, None, torch.zeros(0))


def test_a_folder_whose_swap_fails_halfway_puts_the_old_one_back(tmp_path, monkeypatch):
    """The older checkpoint is moved aside before the new one takes its name: if that second
    rename fails, the older one must come back, not wait in a temporary folder to be swept."""
    target = tmp_path / "step_00000006"
    target.mkdir()
    (target / "model.safetensors").write_text("the last good weights")
    real_rename, calls = os.rename, []

    def second_rename_fails(source, destination):
        calls.append(source)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_rename(source, destination)

    monkeypatch.setattr(files.os, "rename", second_rename_fails)
    with pytest.raises(StorageError, match="step_00000006: cannot write"):
        with files.replacing(target, folder=True) as staging:
            (staging / "model.safetensors").write_text("new weights")
    assert (target / "model.safetensors").read_text() == "the last good weights"
    assert [p.name for p in tmp_path.iterdir()] == ["step_00000006"]
