"""A run's stages: what each one trains, with which options, for how long.

A plain run is one stage with the configured objective. A preset may bring several (voice2face
pretrains its speech encoder as a speaker classifier before the GAN; SF2F trains its fuser with
encoder and decoder frozen after the GAN). The run's budget (``--epochs``, ``--max-steps``) is
split between stages by their ``share``, so a budget means the same for a staged preset as for a
plain run. A stage's options apply over the run's, except those the user gave: they always win.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from zoo.train.config import TrainConfig


@dataclass(frozen=True)
class StagePlan:
    """One stage as the loop runs it."""

    index: int
    name: str
    config: TrainConfig  # the run's options with the stage's applied (objective among them)
    epochs: int
    max_steps: Optional[int]  # this stage's part of --max-steps, if one was given
    max_seconds: Optional[float] = None  # this stage's part of --max-minutes, if one was given

    def out_of_time(self, stage_seconds: float) -> bool:
        """Whether this stage's part of ``--max-minutes`` is spent."""
        return self.max_seconds is not None and stage_seconds >= self.max_seconds

    def total_steps(self, steps_per_epoch: int) -> int:
        """Iterations in this stage: its epochs, capped by its part of ``--max-steps``."""
        total = self.epochs * steps_per_epoch
        return total if self.max_steps is None else min(total, self.max_steps)


def split_budget(total: int, shares: list[float]) -> list[int]:
    """``total`` split in proportion to ``shares``, at least 1 each, summing to ``total`` when it
    allows (the last stage takes the rounding)."""
    scale = sum(shares)
    parts = [max(1, round(total * share / scale)) for share in shares[:-1]]
    return parts + [max(1, total - sum(parts))]


def plan_stages(config: TrainConfig, sources: dict) -> list[StagePlan]:
    """The stages of a run in order (one when ``config.stages`` is empty)."""
    stages = list(config.stages) or [{"name": "train", "objective": config.objective, "share": 1.0, "options": {}}]
    shares = [float(s.get("share", 1.0)) for s in stages]
    epochs = split_budget(config.epochs, shares)
    steps = split_budget(config.max_steps, shares) if config.max_steps is not None else [None] * len(stages)
    seconds = [None] * len(stages)
    if config.max_minutes is not None:
        seconds = [60.0 * config.max_minutes * share / sum(shares) for share in shares]
    plans = []
    for index, stage in enumerate(stages):
        overrides = {k: v for k, v in stage.get("options", {}).items() if sources.get(k) != "option"}
        stage_config = dataclasses.replace(config, objective=stage["objective"], **overrides)
        plans.append(StagePlan(index, stage["name"], stage_config, epochs[index], steps[index], seconds[index]))
    return plans
