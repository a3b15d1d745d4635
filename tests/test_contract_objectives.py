"""Contract tests generated from the registry for training objectives: every objective a preset
trains with (now or later) builds over that preset's tiny models, owns named optimisers over the
run's own parameters, and one step returns detached finite scalars and moves each optimiser's
parameters."""

from __future__ import annotations

import pytest
import torch
from conftest import registered

import registry

IDENTITIES = ["a", "b", "c"]
SIZE = 64


def stage_using(objective: str):
    """``(preset, stage index)`` of the first preset (by name) that trains with ``objective``."""
    for preset in registered("preset"):
        options = registry.create("preset", preset)
        stages = [s.objective for s in options.stages] or [options.options.get("objective", "gan")]
        if objective in stages:
            return preset, stages.index(objective)
    return None, 0


def objectives_with_presets() -> list:
    return [pytest.param(name, *stage_using(name), id=name) for name in registered("objective")
            if stage_using(name)[0] is not None]


def tiny_stage_config(preset: str, index: int, tmp_path):
    """The preset's options for stage ``index``, at 64 px with quarter-second clips; a sampler
    generator is made narrow (its sampling is not what an objective's step runs)."""
    from zoo.train.config import resolve
    from zoo.train.stages import plan_stages

    options = {"preset": preset, "runs_dir": str(tmp_path), "image_size": SIZE, "clip_seconds": 0.25,
               "device": "cpu", "batch_size": 4}
    generator = registry.create("preset", preset).options.get("generator", "dcgan_bn")
    if registry.get("generator", generator).meta.get("sampler", False):
        options["generator_args"] = {"width": 8, "steps": 1}
    config, sources = resolve(options)
    return plan_stages(config, sources)[index].config


def batch_of(rows: int, num_samples: int):
    from zoo import Batch

    torch.manual_seed(0)
    image = (torch.rand(rows, 3, SIZE, SIZE) * 2 - 1).contiguous(memory_format=torch.channels_last)
    return Batch(wave=(0.3 * torch.randn(rows, num_samples)).clamp(-1, 1), image=image,
                 wrong=image.roll(1, dims=0), identity=torch.tensor([0, 0, 1, 1, 2, 2][:rows]))


def test_every_objective_is_trained_by_some_preset():
    """The contract below builds each objective over a preset that names it: an objective no
    preset uses would silently go untested."""
    untested = [name for name in registered("objective") if stage_using(name)[0] is None]
    assert untested == [], f"no preset trains with {untested}: the objective contract cannot build them"


@pytest.mark.parametrize("name,preset,index", objectives_with_presets())
def test_objective_step_trains_its_own_optimisers_and_logs_finite_scalars(name, preset, index, tmp_path):
    from zoo.train.parts import build_objective, build_parts, describe_run

    config = tiny_stage_config(preset, index, tmp_path)
    parts = build_parts(describe_run(config, IDENTITIES), torch.device("cpu"))
    if config.freeze_encoder:
        parts.model.freeze_encoder()
    objective = build_objective(config, parts, torch.device("cpu"))
    train = registry.create("dataset", "synthetic", split="train", image_size=SIZE, num_samples=config.num_samples,
                            num_identities=len(IDENTITIES), clips_per_identity=4)
    objective.setup(train)
    objective.bind(lambda module: module)
    assert objective.optimizers and all(isinstance(o, torch.optim.Optimizer) for o in objective.optimizers.values())
    owned = {id(p) for module in (parts.model, parts.discriminator) for p in module.parameters()}
    groups = {key: [p for g in o.param_groups for p in g["params"]] for key, o in objective.optimizers.items()}
    assert all(params and all(id(p) in owned for p in params) for params in groups.values()), \
        "an optimiser over parameters that are not the run's (they would not be saved)"
    before = {key: [p.detach().clone() for p in params] for key, params in groups.items()}
    stats = objective.step(batch_of(6, config.num_samples))
    assert stats and all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad
                         and torch.isfinite(v) for v in stats.values()), stats
    for key, params in groups.items():
        assert any(not torch.equal(a, p) for a, p in zip(before[key], params)), f"optimiser {key} moved nothing"
