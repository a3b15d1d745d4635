"""Loss bookkeeping that never stalls the device: sums stay tensors until read, and a read
checks that every loss is finite."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import torch

from zoo.errors import TrainingError


class LossMeter:
    """Sums loss tensors on the device; reading them is the only host synchronisation."""

    def __init__(self):
        self.epoch_sums: dict = {}
        self.interval_sums: dict = {}
        self.epoch_steps = 0
        self.interval_steps = 0
        self.pairs = 0

    def add(self, stats: dict, pairs: int) -> None:
        for name, value in stats.items():
            self.epoch_sums[name] = self.epoch_sums.get(name, 0) + value
            self.interval_sums[name] = self.interval_sums.get(name, 0) + value
        self.epoch_steps += 1
        self.interval_steps += 1
        self.pairs += pairs

    @staticmethod
    def _means(sums: dict, steps: int) -> dict:
        if not sums:
            return {}
        names = list(sums)
        values = torch.stack([torch.as_tensor(sums[n], dtype=torch.float32) for n in names]).cpu() / steps
        return {n: float(v) for n, v in zip(names, values)}

    def interval(self) -> dict:
        means = self._means(self.interval_sums, max(self.interval_steps, 1))
        self.interval_sums, self.interval_steps = {}, 0
        return means

    def epoch_means(self) -> dict:
        return self._means(self.epoch_sums, max(self.epoch_steps, 1))


def check_finite(scalars: dict, step: int, last_checkpoint: Optional[Path]) -> None:
    """Stop with one clear line when a loss is NaN or infinite; good checkpoints stay."""
    bad = {k: v for k, v in scalars.items() if not math.isfinite(v)}
    if bad:
        kept = f"the last good checkpoint is {last_checkpoint}" if last_checkpoint else "no checkpoint was written yet"
        detail = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise TrainingError(f"loss became non-finite by step {step} ({detail}); stopping; {kept}. "
                            "Try a lower --lr-d/--lr-g.")
