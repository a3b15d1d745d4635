"""How fast the ``diffusion`` preset trains and samples on this machine (issue 22):

    python benchmarks/diffusion_speed.py                      # CPU, 64 px, batch 16
    python benchmarks/diffusion_speed.py --size 128 --json    # one JSON object
    python benchmarks/diffusion_speed.py --device cuda --amp

Training: pairs per second of the ``diffusion`` objective's step (encoder, UNet, speaker
classifier, flow-matching loss, Adam) on in-memory batches, so the data loader is not timed (as
``bench``'s step timing). Sampling: milliseconds per face of the generator's Euler sampler with
classifier-free guidance at 10, 25 and 50 steps, speech encoding excluded. Timings are medians of
repeats after a warm-up; run it on a quiet machine (other jobs on the cores change them a lot).
The process's CPU seconds are reported beside the wall time: on a busy machine they show what the
work costs, though not how long it takes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project's own modules, whatever the working folder

import torch  # noqa: E402


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, choices=(64, 128))
    parser.add_argument("--batch-size", type=int, default=16, help="training batch (the preset's 16)")
    parser.add_argument("--train-steps", type=int, default=10, help="timed training steps (after 2 warm-up)")
    parser.add_argument("--faces", type=int, default=4, help="faces drawn per sampling call")
    parser.add_argument("--steps", default="10,25,50", help="sampler steps to time, comma separated")
    parser.add_argument("--guidance", type=float, default=2.0, help="guidance scale (1: one UNet pass per step)")
    parser.add_argument("--repeats", type=int, default=3, help="timed sampling calls per step count")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast in training")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(options: argparse.Namespace, device: torch.device):
    """The preset's model and objective, as the trainer builds them, for three identities."""
    from zoo.train.config import resolve
    from zoo.train.parts import build_objective, build_parts, describe_run

    config, _ = resolve({"preset": "diffusion", "image_size": options.size, "batch_size": options.batch_size,
                         "device": str(device), "amp": options.amp})
    parts = build_parts(describe_run(config, ["a", "b", "c"]), device)
    return config, parts, build_objective(config, parts, device)


def time_training(config, objective, device: torch.device, options) -> dict:
    """Pairs per second of the objective's step on one fixed random batch."""
    from zoo import Batch

    rows = options.batch_size
    batch = Batch(wave=(0.3 * torch.randn(rows, config.num_samples, device=device)).clamp(-1, 1),
                  image=(torch.rand(rows, 3, options.size, options.size, device=device) * 2 - 1)
                  .contiguous(memory_format=torch.channels_last),
                  wrong=None, identity=torch.randint(0, 3, (rows,), device=device))
    for _ in range(2):
        objective.step(batch)
    synchronise(device)
    times, cpu = [], []
    for _ in range(options.train_steps):
        started, started_cpu = time.perf_counter(), time.process_time()
        stats = objective.step(batch)
        float(stats["g_loss"])  # waits for the step
        synchronise(device)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    median = statistics.median(times)
    return {"batch_size": rows, "step_s_median": round(median, 4), "pairs_per_s": round(rows / median, 2),
            "cpu_s_per_step_median": round(statistics.median(cpu), 4)}


@torch.no_grad()
def time_sampling(parts, device: torch.device, options) -> dict:
    """Milliseconds per face of the sampler at each step count."""
    model = parts.model.eval()
    generator = model.generator
    generator.guidance = options.guidance
    embedding = model.encoder((0.3 * torch.randn(options.faces, model.encoder.num_samples, device=device)).clamp(-1, 1))
    results, cpu = {}, {}
    for steps in (int(s) for s in options.steps.split(",")):
        generator.steps = steps
        generator(embedding)  # warm-up
        synchronise(device)
        times, cpu_times = [], []
        for _ in range(options.repeats):
            started, started_cpu = time.perf_counter(), time.process_time()
            generator(embedding)
            synchronise(device)
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - started_cpu)
        results[str(steps)] = round(1000 * statistics.median(times) / options.faces, 1)
        cpu[str(steps)] = round(1000 * statistics.median(cpu_times) / options.faces, 1)
    return results, cpu


def main(argv=None) -> dict:
    options = arguments(argv)
    device = torch.device(options.device)
    torch.manual_seed(0)
    config, parts, objective = build(options, device)
    generator = parts.model.generator
    report = {
        "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "image_size": options.size, "amp": options.amp,
        "generator_parameters": sum(p.numel() for p in generator.parameters()),
        "encoder_parameters": sum(p.numel() for p in parts.model.encoder.parameters()),
        "training": time_training(config, objective, device, options),
    }
    wall, cpu = time_sampling(parts, device, options)
    report["sampling"] = {"faces_per_call": options.faces, "guidance": options.guidance,
                          "ms_per_face_by_steps": wall, "cpu_ms_per_face_by_steps": cpu}
    if options.json:
        print(json.dumps(report, indent=2))
    else:
        training, sampling = report["training"], report["sampling"]
        print(f"{report['device']}, {report['threads']} threads, {options.size} px, UNet "
              f"{report['generator_parameters']:,} parameters")
        print(f"training: {training['pairs_per_s']} pairs/s (batch {training['batch_size']}, "
              f"{training['step_s_median']} s per step, {training['cpu_s_per_step_median']} CPU s)")
        for steps, ms in sampling["ms_per_face_by_steps"].items():
            print(f"sampling: {steps:>3} steps, guidance {options.guidance}: {ms} ms per face "
                  f"({sampling['cpu_ms_per_face_by_steps'][steps]} CPU ms)")
    return report


if __name__ == "__main__":
    main()
