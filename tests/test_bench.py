"""bench: a tiny run gives complete, finite JSON; FLOPs by hand; the two iterations' structure.

No timing is asserted anywhere: these machines are shared.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from main import app
from zoo.bench.flops import count_forward_flops, ours_step_flops, seed_step_flops

TINY = ["--arg", "dataset.num_identities=3", "--arg", "dataset.clips_per_identity=8", "--batch-size", "4",
        "--size", "64", "--device", "cpu", "--repeats", "1", "--warmup", "1"]
STEP_FIELDS = {"iterations_per_s", "pairs_per_s", "seconds_per_iteration", "timed_iterations_s",
               "final_losses", "losses_finite", "flops_per_iteration", "achieved_flops_per_s"}


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: two OpenMP threads spin against the other processes on a shared
    two-core machine and can run ten times slower; these tests measure nothing anyway."""
    torch.set_num_threads(1)


def bench(*args):
    outcome = CliRunner().invoke(app, ["bench", *args], env={"COLUMNS": "200"})
    return outcome.exit_code, outcome.stdout, outcome.stderr


def numbers(value):
    """Every number inside a JSON value (bools are flags, not measurements)."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def reject_constant(name):
    raise AssertionError(f"non-finite number {name} in the JSON")


@pytest.fixture(scope="module")
def report():
    torch.set_num_threads(1)
    code, out, err = bench(*TINY, "--encoder", "segan", "--json")
    assert code == 0, err
    return json.loads(out, parse_constant=reject_constant)


def test_tiny_bench_gives_every_field_finite(report):
    assert {"machine", "options", "loader", "ours", "seed", "speedup", "same_initial_weights",
            "iterations_per_block", "generate", "flops", "memory"} <= report.keys()
    for step in ("ours", "seed"):
        assert STEP_FIELDS <= report[step].keys(), step
        assert report[step]["losses_finite"] is True
        assert {"d_loss", "g_loss"} <= report[step]["final_losses"].keys()
    assert report["same_initial_weights"] is True
    assert {"cold_pairs_per_s", "cached_pairs_per_s", "cache_build_s", "cached_over_step"} <= report["loader"].keys()
    assert {"single_clip_ms", "batched_ms_per_clip"} <= report["generate"].keys()
    assert {"matmul_float32_flops_per_s", "ours_achieved_flops_per_s", "ours_utilisation"} <= report["flops"].keys()
    assert {"torch", "device_name", "cpu_count", "threads", "date"} <= report["machine"].keys()
    values = numbers(report)
    assert values and all(math.isfinite(v) for v in values)
    positive = [report[s][k] for s in ("ours", "seed") for k in ("pairs_per_s", "flops_per_iteration")]
    assert all(v > 0 for v in positive) and report["memory"]["peak_rss_bytes"] > 0
    # The seed-style iteration runs the generator twice: more FLOPs for the same pairs.
    assert report["seed"]["flops_per_iteration"] > report["ours"]["flops_per_iteration"]


def test_the_table_and_the_skips():
    code, out, err = bench(*TINY, "--skip-seed", "--skip-loader")
    assert code == 0, err
    assert "our step pairs/s" in out and "seed-style" not in out and "loader" not in out


@pytest.mark.parametrize("args, message", [(["--repeats", "0"], "--repeats"), (["--size", "96"], "96")])
def test_usage_errors_exit_2_with_one_line(args, message):
    code, _, err = bench("--device", "cpu", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_flops_of_single_layers_by_hand():
    # Conv2d 3->8, 3x3, padding 1 on 2x3x5x5: 2*8*5*5 outputs x 3*3*3 multiply-adds, 2 FLOPs each.
    assert count_forward_flops(nn.Conv2d(3, 8, 3, padding=1), torch.zeros(2, 3, 5, 5)) == 2 * 400 * 27
    # Linear 10->4 on 2 rows: 2*4 outputs x 10 multiply-adds.
    assert count_forward_flops(nn.Linear(10, 4), torch.zeros(2, 10)) == 2 * 8 * 10
    # Conv1d 2->3, k5, stride 2 on length 11: 4 output steps x 3 channels x 2*5 multiply-adds.
    assert count_forward_flops(nn.Conv1d(2, 3, 5, stride=2), torch.zeros(1, 2, 11)) == 2 * 12 * 10
    # ConvTranspose2d 4->2, 4x4, stride 2: each of 4*3*3 inputs feeds 2*4*4 outputs.
    assert count_forward_flops(nn.ConvTranspose2d(4, 2, 4, 2, 1), torch.zeros(1, 4, 3, 3)) == 2 * 36 * 32
    # A network sums its counted layers; activations cost nothing here.
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(200, 4))
    assert count_forward_flops(net, torch.zeros(2, 3, 5, 5)) == 2 * 400 * 27 + 2 * 8 * 200


def test_counting_changes_no_state():
    net = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.Dropout(0.5))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    count_forward_flops(net, torch.randn(8, 1, 16))
    assert net.training and all(m.training for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_step_flops_follow_the_iterations():
    g, d = 100, 10
    assert ours_step_flops(g, d) == 3 * g + 13 * d and seed_step_flops(g, d) == 6 * g + 13 * d
    assert ours_step_flops(g, d, with_wrong=False) == 3 * g + 10 * d


# -- the two iterations -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def steps():
    """Our step and the seed-style step from the same weights, a batch of 2 (tiny data)."""
    torch.set_num_threads(1)
    from zoo.bench.benchmark import fresh_copy, pageable_batch
    from zoo.train.config import resolve
    from zoo.hardware import Processes
    from zoo.model.speech_to_face import build_discriminator, build_speech_to_face
    from zoo.train.parts import TrainingParts, build_objective, build_parts, describe_run
    from zoo.train.batches import TrainingData

    config, _ = resolve({"encoder": "segan", "batch_size": 2, "device": "cpu", "clip_seconds": 0.25,
                         "num_workers": 0, "cache": False, "quiet": True,
                         "dataset_args": {"num_identities": 3, "clips_per_identity": 4}})
    device = torch.device("cpu")
    data = TrainingData(config, Processes(), device)
    items = next(iter(data.loader))
    description = describe_run(config, data.identities)
    parts = build_parts(description, device)
    seed_parts = TrainingParts(fresh_copy(parts.model, build_speech_to_face, description, device),
                               fresh_copy(parts.discriminator, build_discriminator, description, device))
    seed = build_objective(replace(config, objective="gan_seed"), seed_parts, device)
    objective = build_objective(config, parts, device)
    return parts, objective.step, seed, data.to_batch(items), pageable_batch(items), objective


def forward_calls(*modules):
    counts = [0] * len(modules)
    for i, module in enumerate(modules):
        module.register_forward_hook(lambda *_a, i=i: counts.__setitem__(i, counts[i] + 1))
    return counts


def test_forward_counts_of_both_iterations(steps):
    parts, ours, seed, batch, host, _ = steps
    mine = forward_calls(parts.model, parts.discriminator)
    ours(batch)
    assert mine[0] == 1 and mine[1] == 5  # three groups one by one on the CPU, then fake and real
    theirs = forward_calls(seed.model, seed.discriminator)
    stats = seed.step(host)
    assert theirs == [2, 5] and all(torch.isfinite(v) for v in stats.values())


def test_scoring_groups_one_by_one_means_one_batched_forward(steps):
    """On the CPU the groups are scored separately under one spectral-norm evaluation: the same
    scores, gradients and power-iteration state as one concatenated forward."""
    parts, _, _, batch, _, objective = steps
    embedding = torch.randn(batch.image.shape[0], parts.model.encoder.embed_dim)
    groups = [batch.image, batch.wrong, batch.image.flip(-1)]
    results = []
    for separately in (True, False):
        critic = copy.deepcopy(parts.discriminator)  # the configured discriminator, same state each time
        critic.zero_grad(set_to_none=True)
        step = objective._step_over(parts.model, critic)
        step.score_separately = separately
        scores, _ = step.score_groups(groups, embedding)
        scores.square().sum().backward()
        results.append((scores.detach(), {k: v.clone() for k, v in critic.state_dict().items()},
                        [p.grad.clone() for p in critic.parameters()]))
    (s1, state1, grads1), (s2, state2, grads2) = results
    torch.testing.assert_close(s1, s2)
    for key in state1:  # the power iteration ran exactly once either way
        torch.testing.assert_close(state1[key], state2[key], msg=key)
    for a, b in zip(grads1, grads2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
