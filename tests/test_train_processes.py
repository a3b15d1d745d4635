"""Training as separate processes: SIGKILL mid-epoch, Ctrl-C, and two ranks under torchrun (gloo)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch

from conftest import REPO_ROOT
from train_helpers import cli_args, run_cli, weights
from zoo.model import checkpoints


def start(args: list) -> subprocess.Popen:
    env = {**os.environ, "WAV2PIX_ZOO_PLUGINS": "", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "main.py", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, process, seconds=120.0):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigkill_mid_epoch_leaves_a_resumable_uncorrupted_run(tmp_path):
    run = tmp_path / "run"
    process = start(cli_args(tmp_path, "--save-path", "run", "--epochs", "500"))
    last = run / "checkpoints" / "last"
    wait_for(last, process)
    time.sleep(1.0)  # well into later epochs: the kill may land mid-step or mid-save
    process.kill()
    process.wait()
    json.loads((run / "config.json").read_text())
    state = checkpoints.load_training_state(last)
    assert all(torch.isfinite(t).all() for t in weights(last).values())
    checkpoints.read_description(last / checkpoints.MODEL_FILE)
    resumed = run_cli(cli_args(tmp_path, "--resume", str(run), "--max-steps", str(state["step"] + 2)))
    assert resumed.returncode == 0, resumed.stderr
    assert checkpoints.load_training_state(last)["step"] == state["step"] + 2
    for line in (run / "stats.jsonl").read_text().splitlines():
        json.loads(line)  # a line cut by the kill was dropped on resume


def test_ctrl_c_finishes_the_step_writes_a_checkpoint_and_exits_130(tmp_path):
    run = tmp_path / "run"
    process = start(cli_args(tmp_path, "--save-path", "run", "--epochs", "500"))
    wait_for(run / "checkpoints" / "last", process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    step = checkpoints.load_training_state(run / "checkpoints" / "last")["step"]
    assert (run / "checkpoints" / "last").resolve().name == f"step_{step:08d}"


def test_two_ranks_with_gloo_stay_identical_and_write_one_run(tmp_path):
    env = {**os.environ, "WAV2PIX_ZOO_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "main.py", *cli_args(tmp_path, "--max-steps", "3")]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["ranks_in_sync"] is True and summary["step"] == 3
    config = json.loads((runs[0] / "config.json").read_text())
    assert config["world_size"] == 2
