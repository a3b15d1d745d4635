"""Where a run stands, and the training state a checkpoint carries so a resume is exact.

The state holds the position (stage, epoch, batch within it, steps), the stage objective's
optimisers by name, and the random state of every process (under torchrun each rank draws its
own numbers; a resumed rank gets its own back). It is tensors and plain Python only, so it loads
with ``weights_only=True``: nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from zoo.errors import CheckpointError, UsageError
from zoo.hardware import Processes
from zoo.train.randomness import capture_random_states, restore_random_states


@dataclass
class Position:
    """Where a run stands; ``epoch`` and ``stage_step`` count within the current stage."""

    stage: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    stage_step: int = 0
    step: int = 0  # iterations over the whole run
    epochs_done: int = 0  # completed epochs over the whole run (names sample sheets, checkpoints)
    seconds: float = 0.0  # training time over the whole run (steps only: not saving or sheets)
    stage_seconds: float = 0.0  # training time within the current stage

    def advance(self, seconds: float) -> None:
        """One iteration done, which took ``seconds``."""
        self.seconds += seconds
        self.stage_seconds += seconds
        self.step += 1
        self.stage_step += 1
        self.batch_in_epoch += 1

    def end_epoch(self) -> None:
        """The current epoch is complete."""
        self.epoch += 1
        self.epochs_done += 1
        self.batch_in_epoch = 0

    def next_stage(self) -> "Position":
        """The start of the following stage."""
        return Position(stage=self.stage + 1, step=self.step, epochs_done=self.epochs_done, seconds=self.seconds)


def _gathered_random_states(procs: Processes) -> list:
    """Every rank's random state, in rank order (on every rank)."""
    mine = capture_random_states()
    if not procs.distributed:
        return [mine]
    states = [None] * procs.world_size
    torch.distributed.all_gather_object(states, mine)
    return states


def saved_state(position: Position, objective, procs: Processes) -> dict:
    """The training state to write with a checkpoint (every rank must call it: it gathers)."""
    states = _gathered_random_states(procs)
    return {"position": dataclasses.asdict(position), "step": position.step, "epoch": position.epochs_done,
            "optimizers": {name: opt.state_dict() for name, opt in objective.optimizers.items()},
            "random": states[0], "random_per_rank": states, "world_size": procs.world_size}


def restore_state(state: dict, procs: Processes) -> Position:
    """Put this rank's random state back and return the position; ``state["optimizers"]`` is
    normalised for older checkpoints (which saved ``optimizer_g`` and ``optimizer_d``)."""
    try:
        position = _position_of(state)
        per_rank = state.get("random_per_rank") or [state["random"]]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"the training state lacks {exc}; it cannot be resumed") from None
    if len(per_rank) != procs.world_size:
        raise UsageError(f"this run was saved by {len(per_rank)} process(es); resume it with the same "
                         f"number (now {procs.world_size}) to continue exactly")
    restore_random_states(per_rank[procs.rank])
    if "optimizers" not in state:
        state["optimizers"] = {"generator": state["optimizer_g"], "discriminator": state["optimizer_d"]}
    return position


def _position_of(state: dict) -> Position:
    if "position" in state:
        return Position(**state["position"])
    # Saved before stages existed: one stage, counters as they were.
    return Position(stage=0, epoch=state["epoch"], batch_in_epoch=state["batch_in_epoch"],
                    stage_step=state["step"], step=state["step"], epochs_done=state["epoch"])
