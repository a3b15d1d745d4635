"""Tiny training runs for tests: a few synthetic speakers, short clips, small batches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from conftest import REPO_ROOT

TINY_DATA = {"num_identities": 3, "clips_per_identity": 8}


def tiny_options(runs_dir: Path, **overrides) -> dict:
    """Options for a run of a few seconds on CPU (float32: bf16 autocast, the default where native,
    has its own tests and only costs casts at these shapes)."""
    options = {"runs_dir": str(runs_dir), "dataset_args": dict(TINY_DATA), "batch_size": 4, "amp": False,
               "clip_seconds": 0.25, "log_every": 1, "num_workers": 0, "quiet": True, "device": "cpu"}
    options.update(overrides)
    return options


def run_trainer(runs_dir: Path, should_stop_at: int | None = None, **overrides):
    """Resolve options as the CLI does and train in this process; ``should_stop_at`` asks the
    loop to stop (as Ctrl-C does) once that many steps are done."""
    from zoo.train.callbacks import TrainingCallbacks
    from zoo.train.config import for_resume, resolve
    from zoo.train.loop import train

    options = tiny_options(runs_dir, **overrides)
    config, sources = for_resume(options["resume"], options) if options.get("resume") else resolve(options)

    class StepCounter(TrainingCallbacks):
        step = 0

        def on_step(self, step, epoch, pairs):
            self.step = step

    counter = StepCounter()
    limit = float("inf") if should_stop_at is None else should_stop_at
    return train(config, sources, callbacks=counter, should_stop=lambda: counter.step >= limit)


def cli_args(runs_dir: Path, *extra: str) -> list:
    """The same tiny run as command-line arguments."""
    return ["train", "--runs-dir", str(runs_dir), "--arg", "dataset.num_identities=3",
            "--arg", "dataset.clips_per_identity=8", "--batch-size", "4", "--clip-seconds", "0.25",
            "--num-workers", "0", "--quiet", "--device", "cpu", "--no-amp", *extra]


def run_cli(args: list, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python main.py ARGS`` in a fresh process, hermetic plugins."""
    environment = {**os.environ, "WAV2PIX_ZOO_PLUGINS": "", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "main.py", *args], cwd=REPO_ROOT, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def weights(checkpoint: Path) -> dict:
    """Every tensor of a checkpoint folder: generator side and discriminator."""
    tensors = {f"g.{k}": v for k, v in load_file(str(checkpoint / "model.safetensors")).items()}
    tensors.update({f"d.{k}": v for k, v in load_file(str(checkpoint / "discriminator.safetensors")).items()})
    return tensors


def torchrun(runs_dir: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The tiny run as two ranks under torchrun (gloo, one thread each)."""
    env = {**os.environ, "WAV2PIX_ZOO_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "main.py", *cli_args(runs_dir, *extra)]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def assert_same_weights(a: Path, b: Path) -> None:
    """Two checkpoints hold bitwise equal tensors."""
    import torch

    expected, actual = weights(a), weights(b)
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert not different, f"{len(different)} of {len(expected)} tensors differ, e.g. {different[:3]}"
