"""``bench``: how fast this machine trains and draws, measured in one process.

Measured after warm-up, as medians over repeated timed blocks:

- our training iteration (the ``gan`` objective's ``GanStep``) and the seed-style iteration
  (the ``gan_seed`` objective, fed from pageable host memory as the reference's loader fed it)
  on the same models, weights, batch and device, in interleaved blocks (ours, seed, seed,
  ours ...) so a busy machine slows both alike; their ratio;
- the data loader's pairs/s over the training split, cold (decoding every item) and cached
  (``zoo.data.cache`` memory maps), exactly as training builds it (``TrainingData``);
- ``generate`` latency per clip: the ``FacePipeline`` on one clip, and per clip in a batch;
- peak memory (process RSS; on CUDA the allocator's peak per step);
- achieved FLOP/s of our step (FLOPs counted from the layer shapes, ``zoo.bench.flops``) against the
  measured rate of a large matrix multiply.

A timed block runs enough iterations to last ``block_seconds`` (at least one) and is bracketed
by device synchronisation only: inside it, our losses stay on the device.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import time
from dataclasses import replace
from typing import Callable, Optional

import torch

from zoo.callbacks import SILENT, Progress
from zoo.contracts import Batch
from zoo.data.cache import META_NAME, cached, entry_for
from zoo.train.config import TrainConfig, resolve
from zoo.bench.flops import count_forward_flops, matmul_flops_per_second, ours_step_flops, seed_step_flops
from zoo.hardware import Processes, cpu_cores, peak_memory_bytes, resolve_device
from zoo.model.speech_to_face import build_discriminator, build_speech_to_face
from zoo.model.pipeline import FacePipeline
from zoo.train.randomness import seed_everything
from zoo.train.parts import TrainingParts, build_objective, build_parts, describe_run
from zoo.train.batches import TrainingData

BLOCK_SECONDS = 0.5  # a timed block lasts at least this long (one iteration at least)
MAX_BLOCK_ITERATIONS = 100


def synchronize(device: torch.device) -> None:
    """Wait for the device (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the two steps -------------------------------------------------------------------------------
class TimedStep:
    """One training iteration to time in blocks: ``run(n)`` does n iterations and returns seconds."""

    def __init__(self, name: str, iterate: Callable[[], dict], device: torch.device):
        self.name, self.iterate, self.device = name, iterate, device
        self.seconds_per_iteration: list[float] = []
        self.peak_cuda = 0
        self.stats: dict = {}

    def run(self, iterations: int, record: bool = True) -> float:
        """Run ``iterations`` back to back; record seconds per iteration unless warming up."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        synchronize(self.device)
        start = time.perf_counter()
        for _ in range(iterations):
            self.stats = self.iterate()
        synchronize(self.device)
        seconds = time.perf_counter() - start
        if record:
            self.seconds_per_iteration.append(seconds / iterations)
        if self.device.type == "cuda":
            self.peak_cuda = max(self.peak_cuda, torch.cuda.max_memory_allocated(self.device))
        return seconds

    def summary(self, batch_size: int, flops: int) -> dict:
        """Median throughput, the final losses (read once, here) and the FLOP rate."""
        seconds = statistics.median(self.seconds_per_iteration)
        losses = {name: float(value) for name, value in self.stats.items()}
        finite = all(math.isfinite(v) for v in losses.values())
        result = {"iterations_per_s": 1 / seconds, "pairs_per_s": batch_size / seconds,
                  "seconds_per_iteration": seconds, "timed_iterations_s": self.seconds_per_iteration,
                  "final_losses": losses if finite else {k: None for k in losses},
                  "losses_finite": finite, "flops_per_iteration": flops,
                  "achieved_flops_per_s": flops / seconds}
        if self.device.type == "cuda":
            result["peak_cuda_bytes"] = self.peak_cuda
        return result


def pageable(items: dict) -> dict:
    """A copy of a collated batch in ordinary (unpinned) host memory, as the reference had."""
    return {k: torch.empty(v.shape, dtype=v.dtype).copy_(v) if isinstance(v, torch.Tensor) else v
            for k, v in items.items()}


def pageable_batch(items: dict) -> Batch:
    """A collated batch as a ``Batch`` in pageable host memory: what the seed-style step eats."""
    host = pageable(items)
    return Batch(wave=host["wave"], image=host["image"], wrong=host.get("wrong_image"), identity=host["identity"])


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """True when two modules hold bitwise equal parameters and buffers."""
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def fresh_copy(model: torch.nn.Module, build, description: dict, device: torch.device) -> torch.nn.Module:
    """A newly built module of ``description`` holding ``model``'s weights (contiguous)."""
    copy = build(description).to(device)
    copy.load_state_dict(model.state_dict())
    return copy


def interleave(steps: list, repeats: int, iterations: int) -> None:
    """Time ``repeats`` blocks of each step, alternating the order (A B, B A, ...)."""
    for repeat in range(repeats):
        for step in (steps if repeat % 2 == 0 else steps[::-1]):
            step.run(iterations)


def block_iterations(step: TimedStep, block_seconds: float) -> int:
    """Iterations per block so that one block lasts about ``block_seconds``."""
    seconds = step.run(1, record=False)
    return max(1, min(MAX_BLOCK_ITERATIONS, math.ceil(block_seconds / max(seconds, 1e-9))))


# -- the loader ----------------------------------------------------------------------------------
def loader_pairs_per_second(data: TrainingData, batches: int, warmup: int, device: torch.device) -> float:
    """Pairs/s of ``data``'s batches on the device, after ``warmup`` batches (workers start)."""
    def endless():
        epoch = 0
        while True:
            yield from data.epoch(epoch)
            epoch += 1

    stream = endless()
    for _ in range(warmup):
        next(stream)
    synchronize(device)
    start, pairs = time.perf_counter(), 0
    for _ in range(batches):
        pairs += next(stream).wave.shape[0]
    synchronize(device)
    return pairs / (time.perf_counter() - start)


def cache_exists(source, wave_dtype: str) -> bool:
    """Whether ``source`` already has a cache entry (then ``cached`` only opens it)."""
    if not hasattr(source, "cache_key"):
        return False
    return (entry_for(source, wave_dtype=wave_dtype) / META_NAME).is_file()


def bench_loader(config: TrainConfig, procs: Processes, device: torch.device, batches: int,
                 warmup: int) -> tuple[dict, TrainingData]:
    """Cold and cached loader throughput; returns the figures and the cached training data."""
    cold = TrainingData(replace(config, cache=False), procs, device)
    cold_rate = loader_pairs_per_second(cold, batches, warmup, device)
    source = cold.train.dataset
    existed = cache_exists(source, config.wave_dtype)
    start = time.perf_counter()
    cached(source, wave_dtype=config.wave_dtype)
    build_seconds = time.perf_counter() - start
    warm = TrainingData(replace(config, cache=True), procs, device)
    # A cached batch takes about a millisecond: time five times as many for a steady figure.
    cached_rate = loader_pairs_per_second(warm, 5 * batches, warmup, device)
    figures = {"pairs": len(warm.train), "batches_timed": batches, "cached_batches_timed": 5 * batches,
               "cold_workers": cold.loader.num_workers, "cached_workers": warm.loader.num_workers,
               "cold_pairs_per_s": cold_rate, "cached_pairs_per_s": cached_rate,
               "cache_reused": existed, "cache_build_s": 0.0 if existed else build_seconds}
    return figures, warm


# -- generate, FLOPs, the machine ----------------------------------------------------------------
def generate_latency(model, description: dict, device: torch.device, waves: torch.Tensor,
                     repeats: int) -> dict:
    """Seconds per clip for the inference pipeline: one clip alone, and within a batch."""
    pipeline = FacePipeline(fresh_copy(model, build_speech_to_face, description, device), description, device)

    def median_seconds(batch: torch.Tensor) -> float:
        pipeline(batch)  # warm-up (the result comes back to the host, so this waits for it)
        times = []
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            pipeline(batch)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    single = median_seconds(waves[:1])
    batched = median_seconds(waves) / len(waves)
    return {"single_clip_ms": 1000 * single, "batched_ms_per_clip": 1000 * batched,
            "batch": len(waves), "clips_per_s_batched": 1 / batched}


def forward_flops(model, discriminator, wave: torch.Tensor, image: torch.Tensor) -> tuple[int, int]:
    """FLOPs of one generator-side and one discriminator forward at the batch's shapes."""
    generator = count_forward_flops(model, wave)
    embedding = torch.zeros(wave.shape[0], model.encoder.embed_dim, device=wave.device)
    return generator, count_forward_flops(discriminator, image, embedding)


def cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    """What the figures were measured on."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {"torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "device": str(device), "device_name": name,
            "cpu": cpu_name(), "cpu_count": cpu_cores(), "threads": torch.get_num_threads(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0}


# -- the whole bench -----------------------------------------------------------------------------
def run_bench(user: dict, *, repeats: int = 5, warmup: int = 2, skip_seed: bool = False,
              skip_loader: bool = False, loader_batches: Optional[int] = None,
              block_seconds: float = BLOCK_SECONDS, progress: Progress = SILENT) -> dict:
    """Run every measurement for the training options ``user`` (as ``resolve`` takes them).

    Returns one JSON-ready dict; every number in it is finite.
    """
    config, _ = resolve({**user, "quiet": True})
    device = resolve_device(config.device)
    seed_everything(config.seed)
    result = {"machine": machine(device), "options": _options(config, repeats, warmup)}
    if skip_loader:
        data = TrainingData(replace(config, cache=False), Processes(), device)
    else:
        progress.message("loader: cold, then cached")
        batches = loader_batches or max(4, 2 * repeats)
        result["loader"], data = bench_loader(config, Processes(), device, batches, warmup)
    items = next(iter(data.loader))
    description = describe_run(config, data.identities)
    parts = build_parts(description, device)
    seed_parts = None
    if not skip_seed:
        seed_parts = (fresh_copy(parts.model, build_speech_to_face, description, device),
                      fresh_copy(parts.discriminator, build_discriminator, description, device))
        result["same_initial_weights"] = all(same_weights(a, b) for a, b in
                                             zip((parts.model, parts.discriminator), seed_parts))
    steps = _timed_steps(config, parts, seed_parts, data, items, device)
    progress.message(f"steps: {warmup} warm-up and {repeats} timed blocks each")
    timed, forward = _time_steps(steps, config, parts, data.to_batch(items), repeats, warmup, block_seconds)
    result.update(timed)
    if "loader" in result:
        result["loader"]["cached_over_step"] = result["loader"]["cached_pairs_per_s"] / result["ours"]["pairs_per_s"]
    progress.message("generate, matrix multiply")
    result["generate"] = generate_latency(parts.model, description, device, items["wave"], repeats)
    result["flops"] = _flop_rates(config, device, forward, result["ours"])
    result["memory"] = _peak_memory(device, steps)
    result["machine"]["load_average_1m_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return result


def _time_steps(steps: list, config: TrainConfig, parts, batch, repeats: int, warmup: int,
                block_seconds: float) -> tuple[dict, tuple]:
    """Warm up, time interleaved blocks, summarise each step; also the two forwards' FLOPs."""
    g_flops, d_flops = forward_flops(parts.model, parts.discriminator, batch.wave, batch.image)
    for _ in range(warmup):
        for step in steps:
            step.run(1, record=False)
    iterations = block_iterations(steps[0], block_seconds)
    interleave(steps, repeats, iterations)
    with_wrong = batch.wrong is not None
    timed = {"iterations_per_block": iterations,
             "ours": steps[0].summary(config.batch_size, ours_step_flops(g_flops, d_flops, with_wrong))}
    if len(steps) > 1:
        timed["seed"] = steps[1].summary(config.batch_size, seed_step_flops(g_flops, d_flops, with_wrong))
        timed["speedup"] = timed["ours"]["pairs_per_s"] / timed["seed"]["pairs_per_s"]
    return timed, (g_flops, d_flops)


def _options(config: TrainConfig, repeats: int, warmup: int) -> dict:
    names = ("encoder", "generator", "discriminator", "image_size", "batch_size", "device", "amp",
             "compile", "dataset", "data")
    return {**{n: getattr(config, n) for n in names}, "repeats": repeats, "warmup": warmup}


def _timed_steps(config, parts, seed_parts, data: TrainingData, items: dict, device) -> list[TimedStep]:
    """Ours first (from the loader's host batch, moved as training moves it), then the seed's."""
    objective = build_objective(config, parts, device)
    if config.compile:
        objective.bind(torch.compile)
    steps = [TimedStep("ours", lambda: objective.step(data.to_batch(items)), device)]
    if seed_parts is not None:
        seed = build_objective(replace(config, objective="gan_seed", amp=False), TrainingParts(*seed_parts), device)
        host = pageable_batch(items)
        steps.append(TimedStep("seed", lambda: seed.step(host), device))
    return steps


def _peak_memory(device: torch.device, steps: list) -> dict:
    """Process RSS peak; on CUDA the allocator's peak over the run (steps reset it per block)."""
    peak = peak_memory_bytes(device)
    memory = {"peak_rss_bytes": peak["rss"]}
    if "cuda" in peak:
        memory["peak_cuda_bytes"] = max([peak["cuda"]] + [step.peak_cuda for step in steps])
    return memory


def _flop_rates(config: TrainConfig, device: torch.device, forward: tuple, ours: dict) -> dict:
    """Our achieved FLOP/s against a matmul in the precision our convolutions compute in."""
    g_flops, d_flops = forward
    rate = matmul_flops_per_second(device, torch.float32)
    rates = {"generator_forward": g_flops, "discriminator_forward": d_flops,
             "matmul_float32_flops_per_s": rate}
    if config.amp:
        rate = matmul_flops_per_second(device, torch.bfloat16)
        rates["matmul_bfloat16_flops_per_s"] = rate
    elif device.type == "cuda" and torch.backends.cudnn.allow_tf32:
        # cuDNN runs float32 convolutions in TF32 by default (Ampere and later): compare like with like.
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            rate = matmul_flops_per_second(device, torch.float32)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = previous
        rates["matmul_tf32_flops_per_s"] = rate
    rates["ours_achieved_flops_per_s"] = ours["achieved_flops_per_s"]
    rates["ours_utilisation"] = ours["achieved_flops_per_s"] / rate
    return rates
