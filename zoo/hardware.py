"""Devices and processes: ``--device auto|cpu|cuda[:n]`` and torch.distributed under torchrun.

Nothing here looks for CUDA at import time; the suite runs on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from zoo.errors import UsageError


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The torch device a user means; ``auto`` picks CUDA when present, else the CPU."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        device = torch.device(name if ":" in name else f"cuda:{local_rank}")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return device
    raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, not '{name}'")


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast runs at full speed here: a CUDA card that supports it, or a CPU
    with avx512_bf16 or AMX (on AVX2-only CPUs bf16 is emulated and about 20x slower)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_cores() -> int:
    """The cores this process may use (respects affinity masks and containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Processes:
    """Where this process stands among torchrun's: rank 0 alone writes files."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start_processes(device_name: str) -> tuple[Processes, torch.device]:
    """Join torchrun's process group when WORLD_SIZE > 1 (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    procs = Processes(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world_size)
    device = resolve_device(device_name, procs.local_rank)
    if procs.distributed and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(backend=backend)
    return procs, device


def stop_processes() -> None:
    """Leave the process group, if any."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def peak_memory_bytes(device: torch.device) -> dict:
    """Peak resident memory of this process and, on CUDA, the allocator's peak."""
    import resource

    peak = {"rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if device.type == "cuda":
        peak["cuda"] = torch.cuda.max_memory_allocated(device)
    return peak
