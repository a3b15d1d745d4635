"""Loader and synthetic-data throughput: a script run by hand (or from ``main.py bench``), not a test.

    python benchmarks/loader_bench.py [--root ../shared/data/youtubers] [--workers 2] [--json]

Measures, on this machine:
- youtubers pairs/s through ``make_loader`` (with mismatched faces, batch 64) at 64 and 128 px:
  cold (decoding JPEG and WAV every item), the one-off cache build, and cached (memory maps);
- synthetic pairs generated per second on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO))

from zoo.cache import cached  # noqa: E402
from zoo.data import WithMismatch, available_cores, make_loader  # noqa: E402

DEFAULT_ROOT = REPO.parent / "shared" / "data" / "youtubers"


def loader_pairs_per_second(dataset, *, batch_size: int = 64, workers: int = 2, epochs: int = 1,
                            warmup_epochs: int = 0) -> float:
    """Pairs per second delivered by ``make_loader`` over ``dataset`` with mismatched faces."""
    loader = make_loader(WithMismatch(dataset, seed=0, warn=False), batch_size=batch_size,
                         num_workers=workers, shuffle=True, seed=0, drop_last=False)
    for _ in range(warmup_epochs):
        for _batch in loader:
            pass
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            count += len(batch["identity"])
    return count / (time.perf_counter() - start)


def bench_youtubers(root: Path = DEFAULT_ROOT, sizes=(64, 128), batch_size: int = 64,
                    workers: int = 2, split: str = "train") -> list[dict]:
    """Cold, build and cached figures for each image size, with a throw-away cache folder."""
    from plugins.datasets import youtubers

    rows = []
    with tempfile.TemporaryDirectory(prefix="wav2pix-bench-") as cache_dir:
        for size in sizes:
            dataset = youtubers(str(root), split, image_size=size)
            cold = loader_pairs_per_second(dataset, batch_size=batch_size, workers=workers)
            start = time.perf_counter()
            fast = cached(dataset, cache_dir=cache_dir, progress=False, workers=workers)
            build = time.perf_counter() - start
            warm = loader_pairs_per_second(fast, batch_size=batch_size, workers=workers, epochs=3,
                                           warmup_epochs=1)
            single = loader_pairs_per_second(fast, batch_size=batch_size, workers=0, epochs=3)
            rows.append({"image_size": size, "pairs": len(dataset), "workers": workers,
                         "cold_pairs_per_s": round(cold), "cache_build_s": round(build, 2),
                         "build_pairs_per_s": round(len(dataset) / build),
                         "cached_pairs_per_s": round(warm), "cached_in_process_pairs_per_s": round(single)})
    return rows


def bench_synthetic(count: int = 500, image_size: int = 64) -> dict:
    """Synthetic pairs generated per second on one core (torch and the process pinned to one)."""
    from plugins.synthetic import synthetic

    threads = torch.get_num_threads()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        torch.set_num_threads(1)
        if affinity:
            os.sched_setaffinity(0, {min(affinity)})
        dataset = synthetic(image_size=image_size, num_identities=10, clips_per_identity=count // 10)
        dataset.raw_item(0)  # imports and first-call set-up are not generation
        start = time.perf_counter()
        for index in range(len(dataset)):
            dataset[index]
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
        if affinity:
            os.sched_setaffinity(0, affinity)
    return {"image_size": image_size, "pairs": len(dataset), "pairs_per_s_one_core": round(len(dataset) / seconds)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--workers", type=int, default=min(2, available_cores()))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, available_cores()))
    result = {"cores": available_cores(), "synthetic": bench_synthetic()}
    if (args.root / "train").is_dir():
        result["youtubers"] = bench_youtubers(args.root, batch_size=args.batch_size, workers=args.workers)
    else:
        result["youtubers"] = f"skipped: no data at {args.root}"
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"cores: {result['cores']}")
        print(f"synthetic: {result['synthetic']}")
        for row in result["youtubers"] if isinstance(result["youtubers"], list) else [result["youtubers"]]:
            print(f"youtubers: {row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
