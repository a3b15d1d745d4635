"""CUDA checks, deselected by default: `python -m pytest -m gpu` on a machine with a GPU."""

from __future__ import annotations

import json

import pytest
import torch

from train_helpers import run_cli, run_trainer, weights
from zoo.model.pipeline import FacePipeline

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("amp", [False, True])
def test_training_steps_on_cuda(tmp_path, amp):
    result = run_trainer(tmp_path, device="cuda", amp=amp, max_steps=3, batch_size=8)
    assert all(torch.isfinite(t).all() for t in weights(result.last_checkpoint).values())
    assert result.summary["peak_memory"]["cuda"] > 0


def test_generation_on_cuda_matches_the_cpu(tmp_path):
    run = run_trainer(tmp_path, device="cuda", max_steps=2).run_dir
    clip = torch.randn(2, 4000).clamp(-1, 1)
    on_gpu = FacePipeline.from_checkpoint(run, device="cuda")(clip)
    on_cpu = FacePipeline.from_checkpoint(run, device="cpu")(clip)
    torch.testing.assert_close(on_gpu, on_cpu, atol=2e-2, rtol=0)


def test_bench_on_cuda_reports_the_allocator_peak():
    result = run_cli(["bench", "--device", "cuda", "--batch-size", "8", "--repeats", "1", "--warmup", "1",
                      "--skip-loader", "--arg", "dataset.num_identities=3", "--arg",
                      "dataset.clips_per_identity=8", "--json"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["memory"]["peak_cuda_bytes"] > 0 and report["ours"]["pairs_per_s"] > 0
