"""Training as separate processes: SIGKILL at each stage of a save, Ctrl-C with and without
loader workers, and two ranks under torchrun (gloo)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT
from train_helpers import cli_args, run_trainer, weights
from zoo.model import checkpoints


def start(args: list, env: dict | None = None) -> subprocess.Popen:
    """``python main.py ARGS`` as its own process group, as a terminal runs it (Ctrl-C reaches
    the loader's workers too)."""
    env = {**os.environ, "WAV2PIX_ZOO_PLUGINS": "", "PYTHONUNBUFFERED": "1", "COLUMNS": "300", **(env or {})}
    return subprocess.Popen([sys.executable, "main.py", *args], cwd=REPO_ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(process, pattern, seconds=180.0):
    """Read the process's stdout until a line matches ``pattern``; return the lines read."""
    lines, deadline = [], time.monotonic() + seconds
    for line in process.stdout:
        lines.append(line)
        if re.search(pattern, line):
            return lines
        assert time.monotonic() < deadline, f"no line matched {pattern!r}"
    raise AssertionError(f"the process ended before a line matched {pattern!r}: {process.communicate()}")


# The first file written and the two steps that make a save visible run by default; the stages in
# between take the same path and run under -m slow (each kill is a 12 s pair of runs).
EVERY_RUN_STAGES = ("model", "published", "linked")


@pytest.mark.parametrize("stage", [stage if stage in EVERY_RUN_STAGES else pytest.param(stage, marks=pytest.mark.slow)
                                   for stage in checkpoints.SAVE_STAGES])
def test_sigkill_at_every_stage_of_a_save_leaves_a_resumable_uncorrupted_run(tmp_path, stage):
    """The kill lands inside the second save (end of epoch 2), at ``stage``; nothing is corrupt."""
    run = tmp_path / "run"
    args = cli_args(tmp_path, "--save-path", "run", "--epochs", "3", "--batch-size", "12")  # 2 steps an epoch
    process = start(args, env={checkpoints.KILL_ENV_VAR: f"{stage}:2"})
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, stderr
    last = run / "checkpoints" / "last"
    state = checkpoints.load_training_state(last)
    assert state["step"] == (4 if stage == "linked" else 2)  # the old checkpoint until last moves
    assert all(torch.isfinite(t).all() for t in weights(last).values())
    checkpoints.read_description(last / checkpoints.MODEL_FILE)
    json.loads((run / "config.json").read_text())
    resumed = run_trainer(tmp_path, resume=str(run), max_steps=state["step"] + 2, batch_size=12)
    assert resumed.step == state["step"] + 2
    assert checkpoints.load_training_state(last)["step"] == state["step"] + 2
    left = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert left == ["last", f"step_{state['step'] + 2:08d}"], left  # no staging, no orphaned save
    for line in (run / "stats.jsonl").read_text().splitlines():
        json.loads(line)


@pytest.mark.parametrize("workers", [0, 2])
def test_ctrl_c_finishes_the_step_saves_it_mid_epoch_and_exits_130(tmp_path, workers):
    run = tmp_path / "run"
    process = start(cli_args(tmp_path, "--save-path", "run", "--epochs", "500", "--log-every", "1",
                             "--num-workers", str(workers)))
    wait_for_line(process, r"^step 2 ")  # 6 steps an epoch: the stop lands at step 2 or just after
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    # one warning: loader workers ignore the group's SIGINT (the main process stops them itself)
    assert stderr.count("warning: interrupted: finishing this step and writing a checkpoint") == 1, stderr
    assert "Traceback" not in stderr + stdout, stderr
    reported = re.search(r"stopped at epoch (\d+), step (\d+); checkpoint: (\S+)", stdout)
    assert reported, stdout
    step = int(reported.group(2))
    state = checkpoints.load_training_state(run / "checkpoints" / "last")
    assert state["step"] == step and Path(reported.group(3)).name == f"step_{step:08d}"
    assert step % 6 != 0 and state["position"]["batch_in_epoch"] == step % 6  # mid-epoch, resumable from there
    assert (run / "checkpoints" / "last").resolve().name == f"step_{step:08d}"


@pytest.mark.parametrize("levers", [(), ("--arg", "objective.r1=10", "--arg", "objective.variety=2", "--z-dim", "4")],
                         ids=["default", "r1-and-best-of-k"])
def test_two_ranks_with_gloo_stay_identical_and_write_one_run(tmp_path, levers):
    env = {**os.environ, "WAV2PIX_ZOO_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "main.py", *cli_args(tmp_path, "--max-steps", "3", *levers)]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["ranks_in_sync"] is True and summary["step"] == 3
    config = json.loads((runs[0] / "config.json").read_text())
    assert config["world_size"] == 2
