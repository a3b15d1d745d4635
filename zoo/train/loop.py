"""The training loop: resumable, observable, staged, on CPU, GPU or many GPUs.

The loop takes callbacks for progress and a ``should_stop`` function instead of importing a user
interface (as stylegan2-ada's loop does), so the CLI, tests and benchmarks drive it alike. What a
step does belongs to the stage's objective (a plugin); the loop keeps the epochs, the stages,
checkpoints, resume, DDP, sample sheets and progress. Only rank 0 writes files; the others wait
for it at every checkpoint. Losses stay on the device and are read once per log interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

import registry
from zoo.files import write_json
from zoo.hardware import peak_memory_bytes, start_processes, stop_processes
from zoo.model import checkpoints
from zoo.model.speech_to_face import SpeechToFace
from zoo.train.batches import TrainingData
from zoo.train.callbacks import TrainingCallbacks
from zoo.train.config import TrainConfig
from zoo.train.ema import WeightAverage, recalibrate
from zoo.train.meters import LossMeter, check_finite
from zoo.train.parts import build_objective, build_parts, describe_run
from zoo.train.randomness import seed_everything
from zoo.train.runs import CONFIG_FILE, StatsLog, create_run_dir
from zoo.train.stages import StagePlan, plan_stages
from zoo.train.state import Position, restore_state, saved_state


@dataclass
class TrainResult:
    """What a finished (or stopped) run leaves behind."""

    run_dir: Optional[Path]
    step: int
    epoch: int
    interrupted: bool = False
    last_checkpoint: Optional[Path] = None
    summary: dict = field(default_factory=dict)


class Trainer:
    """Builds everything a run needs from a resolved config, then runs its stages."""

    def __init__(self, config: TrainConfig, sources: Optional[dict] = None,
                 callbacks: Optional[TrainingCallbacks] = None,
                 should_stop: Callable[[], bool] = lambda: False):
        self.config = config
        self.sources = sources or {}
        self.callbacks = callbacks or TrainingCallbacks()
        self.should_stop = should_stop
        self.position = Position()
        self.saved_step = -1
        self.last_checkpoint: Optional[Path] = None
        self.objective = None
        self.restored: Optional[dict] = None
        self.average: Optional[WeightAverage] = None

    # -- set-up ------------------------------------------------------------------------------
    def setup(self) -> "Trainer":
        """Processes, data, models, run folder, and the state to start from."""
        config = self.config
        self.procs, self.device = start_processes(config.device)
        seed_everything(config.seed + self.procs.rank)
        self.data = TrainingData(config, self.procs, self.device, self.callbacks,
                                 workers_chosen=self.sources.get("num_workers") == "option")
        self.description = describe_run(config, self.data.identities)
        # Seeded again here, so the initial weights never depend on what building the data drew,
        # and with the same seed on every rank: DDP broadcasts only what an objective wraps, so a
        # part no objective trains (the diffusion run's discriminator) must start equal everywhere.
        seed_everything(config.seed)
        self.parts = build_parts(self.description, self.device)
        seed_everything(config.seed + self.procs.rank)  # noise and dropout differ between ranks
        self.stages = plan_stages(config, self.sources)
        self.run_dir = self._prepare_run_dir()
        if config.resume:
            self.restored = self._restore(Path(config.resume))
        else:
            self._load_pretrained()
            self.average = WeightAverage(self.model, config.ema) if config.ema > 0 else None
        self.writer = self._tensorboard()
        return self

    @property
    def model(self) -> SpeechToFace:
        """Encoder, generator and classifier, unwrapped (what checkpoints hold)."""
        return self.parts.model

    @property
    def sampler(self) -> SpeechToFace:
        """What draws the sample sheets and fills the checkpoints: the weights' moving average
        under ``--ema``, else the trained weights themselves."""
        return self.model if self.average is None else self.average.model

    @property
    def discriminator(self) -> torch.nn.Module:
        """The discriminator, unwrapped."""
        return self.parts.discriminator

    def _prepare_run_dir(self) -> Optional[Path]:
        if not self.procs.is_main:
            return None
        if self.config.resume:
            return Path(self.config.resume)
        run_dir = create_run_dir(self.config)
        write_json(run_dir / CONFIG_FILE, self._config_record(run_dir))
        write_json(run_dir / checkpoints.DESCRIPTION_FILE, self.description)
        return run_dir

    def _config_record(self, run_dir: Path) -> dict:
        return {
            "run": run_dir.name,
            "options": self.config.to_dict(),
            "sources": self.sources,
            "model": self.description,
            "stages": [{"name": s.name, "objective": s.config.objective, "epochs": s.epochs,
                        "max_steps": s.max_steps} for s in self.stages],
            "plugins": [{k: d[k] for k in ("distribution", "version", "hooks")} for d in registry.distributions()],
            "torch": torch.__version__,
            "device": str(self.device),
            "world_size": self.procs.world_size,
        }

    def _load_pretrained(self) -> None:
        c = self.config
        if c.pre_trained_gen:
            checkpoints.load_weights(self.model, checkpoints.resolve(c.pre_trained_gen))
            self.callbacks.message(f"generator initialised from {c.pre_trained_gen}")
        if c.pre_trained_encoder:
            checkpoints.load_weights(self.model.encoder, checkpoints.resolve(c.pre_trained_encoder), prefix="encoder.")
            self.callbacks.message(f"speech encoder initialised from {c.pre_trained_encoder}")
        if c.pre_trained_disc:
            file = checkpoints.resolve(c.pre_trained_disc).with_name(checkpoints.DISCRIMINATOR_FILE)
            checkpoints.load_weights(self.discriminator, file)
            self.callbacks.message(f"discriminator initialised from {c.pre_trained_disc}")

    def _restore(self, run_dir: Path) -> dict:
        folder = run_dir / "checkpoints" / checkpoints.LAST
        if not (folder / checkpoints.MODEL_FILE).is_file():
            from zoo.errors import UsageError

            raise UsageError(f"--resume {run_dir}: no checkpoints/{checkpoints.LAST} to resume from")
        checkpoints.load_weights(self.model, folder / checkpoints.MODEL_FILE)
        checkpoints.load_weights(self.discriminator, folder / checkpoints.DISCRIMINATOR_FILE)
        state = checkpoints.load_training_state(folder)
        self._restore_average(state)
        self.position = restore_state(state, self.procs)
        self.callbacks.message(f"resumed {run_dir} at stage {self.stages[self.position.stage].name}, "
                               f"epoch {self.position.epoch}, step {self.position.step}")
        return state

    def _restore_average(self, state: dict) -> None:
        """Under ``--ema`` the checkpoint's model file holds the average and the training state
        the trained weights: put each back where it belongs."""
        if self.config.ema <= 0:
            return
        self.average = WeightAverage(self.model, self.config.ema)  # the model holds the file's average
        if "trained_model" in state:
            self.model.load_state_dict(state["trained_model"])
            self.average.load_state_dict(state["average"])

    def _tensorboard(self):
        if self.run_dir is None:
            return None
        from torch.utils.tensorboard import SummaryWriter

        name = self.config.vis_screen or self.run_dir.name
        return SummaryWriter(log_dir=str(self.run_dir / "tensorboard" / name))

    # -- stages ------------------------------------------------------------------------------
    def _enter_stage(self, stage: StagePlan) -> None:
        """A fresh objective for ``stage``: its optimisers restored when resuming inside it."""
        if stage.config.freeze_encoder and not self.model.encoder_frozen:
            self.model.freeze_encoder()
        self.objective = build_objective(stage.config, self.parts, self.device)
        restored = self.restored
        if restored is not None and self.position.stage == stage.index:
            for name, optimizer in self.objective.optimizers.items():
                optimizer.load_state_dict(restored["optimizers"][name])
        self.restored = None
        self.objective.setup(self.data.train.dataset)
        self.objective.bind(self._wrap)

    def _wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """What an objective runs forward through: compiled and/or DDP-wrapped as configured."""
        if self.config.compile:
            module = torch.compile(module)
        if self.procs.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            # A part of the module may sit out a step (the classifier without the identity term).
            return DDP(module, device_ids=ids, find_unused_parameters=True)
        return module

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Run the stages from where the run stands; stop early when asked."""
        steps_per_epoch = self.data.steps_per_epoch
        totals = [stage.total_steps(steps_per_epoch) for stage in self.stages]
        self.callbacks.on_start({"run_dir": self.run_dir, "steps_per_epoch": steps_per_epoch,
                                 "total_steps": sum(totals), "start_step": self.position.step,
                                 "epochs": sum(s.epochs for s in self.stages),
                                 "start_epoch": self.position.epochs_done, "device": str(self.device)})
        log_stats = StatsLog(self.run_dir, self.position.step if self.config.resume else None) \
            if self.run_dir else None
        interrupted = False
        for stage in self.stages[self.position.stage:]:
            interrupted = self._run_stage(stage, totals[stage.index], log_stats)
            if interrupted:
                break
            if stage.index + 1 < len(self.stages):
                self.position = self.position.next_stage()
        if self.saved_step != self.position.step:  # stopped mid-epoch: save where it stands
            self._write_outputs(f"step_{self.position.step:08d}", keep=False)
        summary = self._finish()
        return TrainResult(self.run_dir, self.position.step, self.position.epochs_done, interrupted,
                           self.last_checkpoint, summary)

    def _run_stage(self, stage: StagePlan, total: int, log_stats: Optional[StatsLog]) -> bool:
        """Train one stage to its end (or its rest after a resume); True when asked to stop."""
        self._enter_stage(stage)
        if len(self.stages) > 1:
            self.callbacks.message(f"stage {stage.index + 1}/{len(self.stages)}: {stage.name} "
                                   f"({stage.config.objective}, {total} steps)")
        while (self.position.epoch < stage.epochs and self.position.stage_step < total
               and not stage.out_of_time(self.position.stage_seconds)):
            if self._run_epoch(stage, total, log_stats):
                return True
        if self.saved_step != self.position.step:  # the stage ended mid-epoch (--max-steps)
            self._write_outputs(f"step_{self.position.step:08d}", keep=False)
        return False

    def _run_epoch(self, stage: StagePlan, total: int, log_stats: Optional[StatsLog]) -> bool:
        """Train one epoch (or its rest after a resume); True when asked to stop."""
        meter, started, position = LossMeter(), time.perf_counter(), self.position
        tick = started
        for batch in self.data.epoch(position.epoch, position.batch_in_epoch):
            stats = self.objective.step(batch)
            if self.average is not None:
                self.average.update(self.model)
            meter.add(stats, batch.wave.shape[0] * self.procs.world_size)
            now = time.perf_counter()
            position.advance(now - tick)
            tick = now
            self.callbacks.on_step(position.step, position.epochs_done, meter.pairs)
            if position.step % self.config.log_every == 0:
                self._log(meter.interval())
            stop = self._agreed(self.should_stop())
            spent = position.stage_step >= total or self._agreed(stage.out_of_time(position.stage_seconds))
            if (stop or spent) and position.batch_in_epoch < self.data.steps_per_epoch:
                check_finite(meter.epoch_means(), position.step, self.last_checkpoint)
                return stop  # resume continues mid-epoch
            if stop:
                break
        self._end_epoch(stage, meter, time.perf_counter() - started, log_stats)
        return self._agreed(self.should_stop())

    def _agreed(self, stop: bool) -> bool:
        """Whether any process was asked to stop: every rank stops at the same step."""
        if not self.procs.distributed:
            return stop
        flag = torch.tensor([1.0 if stop else 0.0], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def _log(self, scalars: dict) -> None:
        check_finite(scalars, self.position.step, self.last_checkpoint)
        self.callbacks.on_log(self.position.step, self.position.epochs_done, scalars)
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(f"train/{name}", value, self.position.step)

    def _end_epoch(self, stage: StagePlan, meter: LossMeter, seconds: float, log_stats: Optional[StatsLog]) -> None:
        means = meter.epoch_means()
        check_finite(means, self.position.step, self.last_checkpoint)
        record = {"epoch": self.position.epochs_done, "step": self.position.step, **means,
                  "pairs_per_s": meter.pairs / max(seconds, 1e-9), "seconds": round(self.position.seconds, 3)}
        if len(self.stages) > 1:
            record["stage"] = stage.name
        self.position.end_epoch()
        if log_stats is not None:
            log_stats.append(record)
        self._write_outputs(f"epoch_{self.position.epochs_done:04d}",
                            keep=self.position.epochs_done % self.config.checkpoint_every == 0)
        self.callbacks.on_epoch(record)

    # -- outputs -----------------------------------------------------------------------------
    def _write_outputs(self, samples_name: str, keep: bool) -> None:
        """A sample sheet and a checkpoint of where the run stands, drawn by the weights'
        average with BatchNorm statistics of its own (see ``zoo.train.ema``)."""
        if self.average is not None:
            recalibrate(self.average.model, self.data.calibration_waves(), frozen=self.model.frozen,
                        seed=self.config.seed)
        self._write_samples(samples_name)
        self._save(keep)

    def _write_samples(self, name: str) -> None:
        if not self.procs.is_main:
            return
        from zoo.train.samples import write_sample_grid

        path = self.run_dir / "samples" / f"{name}.png"
        grid = write_sample_grid(self.sampler, self.data.samples, path, self.device)
        if self.writer is not None:
            self.writer.add_image("samples", grid, self.position.step, dataformats="HWC")

    def _save(self, keep: bool) -> None:
        """Every rank hands over its random state; rank 0 writes; the others wait for it."""
        state = saved_state(self.position, self.objective, self.procs)
        if self.average is not None:
            state.update(trained_model=self.model.state_dict(), average=self.average.state_dict())
        self.saved_step = self.position.step
        if self.procs.is_main:
            name = f"epoch_{self.position.epochs_done:04d}" if keep else f"step_{self.position.step:08d}"
            self.last_checkpoint = checkpoints.save_checkpoint(
                self.run_dir / "checkpoints", name, model=self.sampler, discriminator=self.discriminator,
                description=self.description, state=state, keep=keep)
            self.callbacks.message(f"checkpoint {self.last_checkpoint}")
        if self.procs.distributed:
            torch.distributed.barrier()

    def _finish(self) -> dict:
        summary = {"step": self.position.step, "epoch": self.position.epochs_done,
                   "peak_memory": peak_memory_bytes(self.device)}
        if self.procs.distributed:
            parts = [self.model, self.discriminator] + ([self.average.model] if self.average else [])
            summary["ranks_in_sync"] = ranks_hold_same_weights(parts, self.device)
        if self.writer is not None:
            self.writer.close()
        if self.procs.is_main:
            write_json(self.run_dir / "summary.json", summary)
        return summary

    def close(self) -> None:
        """Leave the process group, if any."""
        stop_processes()


def ranks_hold_same_weights(modules, device) -> bool:
    """Compare a checksum of every weight of ``modules`` across ranks (DDP must keep them
    identical, and the moving average that follows them)."""
    import torch.distributed as dist

    local = torch.stack([torch.cat([p.detach().double().flatten() for p in checkpoints.unwrap(m).parameters()]).sum()
                         for m in modules]).to(device)
    gathered = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, local)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def train(config: TrainConfig, sources: Optional[dict] = None,
          callbacks: Optional[TrainingCallbacks] = None,
          should_stop: Callable[[], bool] = lambda: False) -> TrainResult:
    """Set up and run a training run; always leaves the process group."""
    trainer = Trainer(config, sources, callbacks, should_stop)
    try:
        return trainer.setup().run()
    finally:
        trainer.close()
