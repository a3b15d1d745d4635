"""The training loop: wav2pix's conditional GAN, resumable, observable, on CPU, GPU or many GPUs.

The loop takes callbacks for progress and a ``should_stop`` function instead of importing a
user interface (as stylegan2-ada's loop does), so the CLI, tests and benchmarks drive it alike.
Only rank 0 writes files. Losses stay on the device and are read once per log interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

import registry
from zoo.model import checkpoints
from zoo.train.config import TrainConfig
from zoo.errors import UsageError
from zoo.hardware import peak_memory_bytes, start_processes, stop_processes
from zoo.train.callbacks import TrainingCallbacks
from zoo.train.meters import LossMeter, check_finite
from zoo.model.speech_to_face import SpeechToFace
from zoo.train.randomness import capture_random_states, restore_random_states, seed_everything
from zoo.files import write_json
from zoo.train.runs import CONFIG_FILE, StatsLog, create_run_dir
from zoo.train.batches import TrainingData
from zoo.train.parts import build_training_parts, describe_run


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
    """Builds everything a run needs from a resolved config, then runs epochs."""

    def __init__(self, config: TrainConfig, sources: Optional[dict] = None,
                 callbacks: Optional[TrainingCallbacks] = None,
                 should_stop: Callable[[], bool] = lambda: False):
        self.config = config
        self.sources = sources or {}
        self.callbacks = callbacks or TrainingCallbacks()
        self.should_stop = should_stop
        self.step = 0
        self.epoch = 0
        self.skip_batches = 0
        self.batch_in_epoch = 0
        self.saved_step = -1
        self.last_checkpoint: Optional[Path] = None

    # -- set-up ------------------------------------------------------------------------------
    def setup(self) -> "Trainer":
        config = self.config
        self.procs, self.device = start_processes(config.device)
        seed_everything(config.seed + self.procs.rank)
        self.data = TrainingData(config, self.procs, self.device, self.callbacks,
                                 workers_chosen=self.sources.get("num_workers") == "option")
        self.description = describe_run(config, self.data.identities)
        self.parts = build_training_parts(config, self.description, self.device)
        self.run_dir = self._prepare_run_dir()
        if config.resume:
            self._restore(Path(config.resume))
        else:
            self._load_pretrained()
        self._wrap_models()
        self.writer = self._tensorboard()
        return self

    @property
    def model(self) -> SpeechToFace:
        """Encoder, generator and classifier, unwrapped (what checkpoints hold)."""
        return self.parts.model

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
        if c.pre_trained_disc:
            file = checkpoints.resolve(c.pre_trained_disc).with_name(checkpoints.DISCRIMINATOR_FILE)
            checkpoints.load_weights(self.discriminator, file)
            self.callbacks.message(f"discriminator initialised from {c.pre_trained_disc}")

    def _restore(self, run_dir: Path) -> None:
        folder = run_dir / "checkpoints" / checkpoints.LAST
        if not (folder / checkpoints.MODEL_FILE).is_file():
            raise UsageError(f"--resume {run_dir}: no checkpoints/{checkpoints.LAST} to resume from")
        checkpoints.load_weights(self.model, folder / checkpoints.MODEL_FILE)
        checkpoints.load_weights(self.discriminator, folder / checkpoints.DISCRIMINATOR_FILE)
        state = checkpoints.load_training_state(folder)
        self.parts.optimizer_g.load_state_dict(state["optimizer_g"])
        self.parts.optimizer_d.load_state_dict(state["optimizer_d"])
        self.step, self.epoch, self.skip_batches = state["step"], state["epoch"], state["batch_in_epoch"]
        self.batch_in_epoch = self.skip_batches
        restore_random_states(state["random"])
        self.callbacks.message(f"resumed {run_dir} at epoch {self.epoch}, step {self.step}")

    def _wrap_models(self) -> None:
        model, discriminator = self.model, self.discriminator
        if self.config.compile:
            model, discriminator = torch.compile(model), torch.compile(discriminator)
        if self.procs.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            unused = "identity" not in self.config.terms  # the classifier then takes no part
            model = DDP(model, device_ids=ids, find_unused_parameters=unused)
            discriminator = DDP(discriminator, device_ids=ids)
        self.gan_step = self.parts.gan_step(self.config.amp, model, discriminator)

    def _tensorboard(self):
        if self.run_dir is None:
            return None
        from torch.utils.tensorboard import SummaryWriter

        name = self.config.vis_screen or self.run_dir.name
        return SummaryWriter(log_dir=str(self.run_dir / "tensorboard" / name))

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        c = self.config
        steps_per_epoch = self.data.steps_per_epoch
        total = c.epochs * steps_per_epoch if c.max_steps is None else min(c.max_steps, c.epochs * steps_per_epoch)
        self.callbacks.on_start({"run_dir": self.run_dir, "steps_per_epoch": steps_per_epoch,
                                 "total_steps": total, "start_step": self.step, "epochs": c.epochs,
                                 "start_epoch": self.epoch, "device": str(self.device)})
        interrupted = False
        log_stats = StatsLog(self.run_dir, self.epoch) if self.run_dir else None
        while self.epoch < c.epochs and self.step < total and not interrupted:
            interrupted = self._run_epoch(total, log_stats)
        if self.saved_step != self.step:  # stopped mid-epoch: save where it stands
            if self.procs.is_main:
                self._write_samples(f"step_{self.step:08d}")
            self._save(keep=False)
        summary = self._finish()
        return TrainResult(self.run_dir, self.step, self.epoch, interrupted, self.last_checkpoint, summary)

    def _run_epoch(self, total: int, log_stats: Optional[StatsLog]) -> bool:
        """Train one epoch (or its rest after a resume); True when asked to stop."""
        meter = LossMeter()
        started = time.perf_counter()
        for batch in self.data.epoch(self.epoch, self.skip_batches):
            stats = self.gan_step(batch)
            meter.add(stats, batch.wave.shape[0] * self.procs.world_size)
            self.step += 1
            self.batch_in_epoch += 1
            self.callbacks.on_step(self.step, self.epoch, meter.pairs)
            if self.step % self.config.log_every == 0:
                self._log(meter.interval())
            stop = self.should_stop()
            if (stop or self.step >= total) and self.batch_in_epoch < self.data.steps_per_epoch:
                check_finite(meter.epoch_means(), self.step, self.last_checkpoint)
                self.skip_batches = self.batch_in_epoch  # resume continues mid-epoch
                return stop
            if stop:
                break
        self._end_epoch(meter, time.perf_counter() - started, log_stats)
        return self.should_stop()

    def _log(self, scalars: dict) -> None:
        check_finite(scalars, self.step, self.last_checkpoint)
        self.callbacks.on_log(self.step, self.epoch, scalars)
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(f"train/{name}", value, self.step)

    def _end_epoch(self, meter: LossMeter, seconds: float, log_stats: Optional[StatsLog]) -> None:
        means = meter.epoch_means()
        check_finite(means, self.step, self.last_checkpoint)
        record = {"epoch": self.epoch, "step": self.step, **means,
                  "pairs_per_s": meter.pairs / max(seconds, 1e-9)}
        self.epoch += 1
        self.skip_batches = 0
        self.batch_in_epoch = 0
        if self.procs.is_main:
            log_stats.append(record)
            self._write_samples(f"epoch_{self.epoch:04d}")
        keep = self.epoch % self.config.checkpoint_every == 0
        self._save(keep=keep)
        self.callbacks.on_epoch(record)

    # -- outputs -----------------------------------------------------------------------------
    def _write_samples(self, name: str) -> None:
        from zoo.train.samples import write_sample_grid

        path = self.run_dir / "samples" / f"{name}.png"
        grid = write_sample_grid(self.model, self.data.samples, path, self.device)
        if self.writer is not None:
            self.writer.add_image("samples", grid, self.step, dataformats="HWC")

    def _save(self, keep: bool) -> None:
        if not self.procs.is_main:
            return
        name = f"epoch_{self.epoch:04d}" if keep else f"step_{self.step:08d}"
        state = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.skip_batches,
                 "optimizer_g": self.parts.optimizer_g.state_dict(),
                 "optimizer_d": self.parts.optimizer_d.state_dict(),
                 "random": capture_random_states()}
        self.saved_step = self.step
        self.last_checkpoint = checkpoints.save_checkpoint(
            self.run_dir / "checkpoints", name, model=self.model, discriminator=self.discriminator,
            description=self.description, state=state, keep=keep)
        self.callbacks.message(f"checkpoint {self.last_checkpoint}")

    def _finish(self) -> dict:
        summary = {"step": self.step, "epoch": self.epoch, "peak_memory": peak_memory_bytes(self.device)}
        if self.procs.distributed:
            summary["ranks_in_sync"] = ranks_hold_same_weights(self.model, self.discriminator, self.device)
        if self.writer is not None:
            self.writer.close()
        if self.procs.is_main:
            write_json(self.run_dir / "summary.json", summary)
        return summary

    def close(self) -> None:
        stop_processes()


def ranks_hold_same_weights(model, discriminator, device) -> bool:
    """Compare a checksum of every weight across ranks (DDP must keep them identical)."""
    import torch.distributed as dist

    local = torch.stack([torch.cat([p.detach().double().flatten() for p in m.parameters()]).sum()
                         for m in (checkpoints.unwrap(model), checkpoints.unwrap(discriminator))]).to(device)
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
