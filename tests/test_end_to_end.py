"""The README's promise, end to end: `python main.py train` with no options learns who speaks.

Slow (about 7 minutes on 2 CPU cores): run with `python -m pytest -m slow`.
"""

from __future__ import annotations

import json

import pytest

from train_helpers import run_cli

pytestmark = pytest.mark.slow


def test_default_training_run_draws_faces_that_match_their_speakers(tmp_path):
    trained = run_cli(["train", "--runs-dir", str(tmp_path), "--quiet"], timeout=1500)
    assert trained.returncode == 0, trained.stderr[-2000:]
    [run] = list(tmp_path.iterdir())
    assert (run / "samples" / "epoch_0010.png").is_file()
    evaluated = run_cli(["evaluate", "--checkpoint", str(run), "--metrics", "identity_accuracy", "--json",
                         "--quiet"], timeout=1500)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    metrics = json.loads(evaluated.stdout)["metrics"]
    assert metrics["identity_accuracy_chance"] == pytest.approx(0.1)
    assert metrics["identity_accuracy"] > 0.4  # measured 0.74; chance is 0.1
