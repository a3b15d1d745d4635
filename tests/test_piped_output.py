"""Output for scripts and for people: nothing wrapped into a pipe, rich tables on a terminal.

Every case runs ``python main.py`` in a real process, with a narrow ``COLUMNS`` so any wrapping
would show: piped through a pipe (``subprocess``'s capture) or on a pseudo-terminal (``pty``).
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

from conftest import REPO_ROOT, registered
from datatrees import tone, write_audio, write_bad_audio
from fake_pipelines import tiny_checkpoint
from train_helpers import run_cli
from zoo.hookspecs import KINDS

NARROW = {"COLUMNS": "40"}
BOX = re.compile("[┏┃━│└]")
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;)")  # a foreground colour escape


def run_on_terminal(args: list, env: dict) -> str:
    """``python main.py ARGS`` with stdout and stderr on a pseudo-terminal; what it showed."""
    master, slave = pty.openpty()
    environment = {**os.environ, "WAV2PIX_ZOO_PLUGINS": "", "TERM": "xterm-256color", **env}
    environment.pop("FORCE_COLOR", None)
    process = subprocess.Popen([sys.executable, "main.py", *args], cwd=REPO_ROOT, env=environment,
                               stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert process.wait(timeout=120) == 0
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_list_into_a_pipe_keeps_every_name_whole():
    result = run_cli(["list"], env=NARROW)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines() if line and not line.startswith("#")]
    first_fields = {row[0] for row in rows}
    for kind in KINDS:
        missing = set(registered(kind)) - first_fields
        assert not missing, f"{kind}: {missing} not whole in the piped output"
    assert [line for line in result.stdout.splitlines() if "frechet_distance" in line.split("\t")]
    assert not BOX.search(result.stdout)
    assert {len(row) for row in rows} == {5}  # name, description, distribution, parameters, details


def test_json_still_parses_when_narrow_and_piped():
    result = run_cli(["list", "metric", "--json"], env=NARROW)
    assert result.returncode == 0, result.stderr
    assert {item["name"] for item in json.loads(result.stdout)["metric"]} == set(registered("metric"))


def test_a_bad_file_is_one_line_with_its_path_once(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path)
    deep = tmp_path / "a" / "rather" / "long" / "folder" / "name" / "for" / "the" / "recordings"
    deep.mkdir(parents=True)
    bad, _ = write_bad_audio(deep, "header_only")
    good = write_audio(tmp_path / "good.wav", tone(0.5))
    result = run_cli(["generate", str(bad), str(good), "--checkpoint", str(checkpoint), "--out",
                      str(tmp_path / "out")], env=NARROW)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    mentioning = [line for line in lines if "header_only" in line]
    assert mentioning == [f"failed {bad}: the audio header announces no samples"]
    assert any(line.startswith(f"ok {good}: ") for line in lines)
    assert lines[-1] == f"1 of 2 files drawn into {tmp_path / 'out'}/, 1 failed"
    assert "Traceback" not in result.stderr


def test_a_usage_error_into_a_pipe_is_one_line():
    result = run_cli(["generate", "--no-such-option-with-a-rather-long-name"], env=NARROW)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: No such option: --no-such-option-with-a-rather-long-name (see 'main.py generate --help')"]


def test_piped_training_prints_plain_lines(tmp_path):
    result = run_cli(["train", "--runs-dir", str(tmp_path), "--arg", "dataset.num_identities=3",
                      "--arg", "dataset.clips_per_identity=8", "--batch-size", "4", "--clip-seconds", "0.25",
                      "--num-workers", "0", "--device", "cpu", "--max-steps", "2", "--log-every", "1"],
                     env=NARROW)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if re.match(r"step 2 +epoch 1/\d+ +d_loss", line)]
    assert any(line.startswith(f"run folder: {tmp_path}") for line in result.stdout.splitlines())
    assert "\r" not in result.stderr and "\x1b" not in result.stderr + result.stdout  # no bars, no escapes


def test_a_terminal_still_gets_bordered_tables_and_no_colour_honours_no_color():
    coloured = run_on_terminal(["plugins"], {"COLUMNS": "100"})
    plain = run_on_terminal(["plugins"], {"COLUMNS": "100", "NO_COLOR": "1"})
    assert BOX.search(coloured) and BOX.search(plain)  # rich tables, as before, for people
    assert COLOUR.search(coloured) and not COLOUR.search(plain)
