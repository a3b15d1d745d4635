"""compare: two tiny models end to end (table, JSON, both pictures), resume after a kill, and a
failing entry reported beside the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import REPO_ROOT
from train_helpers import run_cli
from zoo.media.images import decode_image

SMALL = ["--batch-size", "4", "--arg", "dataset.num_identities=3", "--arg",
        "dataset.clips_per_identity=8", "--eval-every", "1", "--metrics", "identity_accuracy,recall_at_k",
        "--device", "cpu", "--quiet"]
TINY = ["--epochs", "2", *SMALL]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "board"
    broken = tmp_path_factory.mktemp("broken")
    (broken / "config.json").write_text("{}")  # a run folder with no checkpoint
    result = run_cli(["compare", "default", "retrieval", str(broken), "--out", str(out), *TINY], timeout=600)
    return result, out


def test_the_leaderboard_ranks_every_model_with_the_reference_first(compared):
    result, out = compared
    assert result.returncode == 1, result.stderr  # one entry failed, the others are there
    board = json.loads((out / "leaderboard.json").read_text())
    models = [row["model"] for row in board["rows"]]
    assert set(models) == {"default", "retrieval", models[-1]} and board["rows"][-1]["error"]
    for row in board["rows"][:2]:
        assert 0 <= row["metrics"]["identity_accuracy"] <= 1 and row["pairs_seen"] == 2 * 6 * 4
        assert row["train_seconds"] > 0 and row["parameters"] > 0 and "--save-path" in row["command"]
        assert [p["epoch"] for p in row["curve"]] == [1, 2]
    assert board["reference"]["real"]["identity_accuracy"] >= 0.9
    assert board["reference"]["chance"]["identity_accuracy"] == pytest.approx(1 / 3)
    table = (out / "leaderboard.md").read_text()
    assert table.index("*real faces*") < table.index("| default") and "failed:" in table
    assert "retrieval" in result.stdout and "Traceback" not in result.stderr


def test_the_pictures_show_every_model_beside_the_real_faces(compared):
    _, out = compared
    faces = decode_image(out / "faces.png")
    assert faces.shape[0] > 3 * 64 and faces.shape[1] > 3 * 64  # 3 identities x (real + 2 models)
    curves = decode_image(out / "curves.png")
    assert curves.shape[1] >= 600


def test_done_entries_are_reused(compared):
    _, out = compared
    again = run_cli(["compare", "default", "--out", str(out), *TINY], timeout=600)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "runs" / "default" / "compare-done.json").read_text())["budget"] == ["epochs", 2.0]
    assert "reusing default" in again.stderr and "training default" not in again.stderr


def test_an_interrupted_comparison_resumes(tmp_path):
    out = tmp_path / "board"
    env = {**os.environ, "WAV2PIX_ZOO_PLUGINS": "", "PYTHONUNBUFFERED": "1"}
    args = ["compare", "default", "--out", str(out), *SMALL, "--epochs", "3"]
    process = subprocess.Popen([sys.executable, "main.py", *args], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = out / "runs" / "default" / "checkpoints" / "last"
    deadline = time.monotonic() + 300
    while not last.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.kill()  # the compare and (below it) the training process die mid-run
    process.wait()
    subprocess.run(["pkill", "-f", str(out)], check=False)
    resumed = run_cli(args, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((out / "runs" / "default" / "summary.json").read_text())
    assert summary["epoch"] == 3
