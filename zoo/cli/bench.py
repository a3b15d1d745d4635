"""``python main.py bench``: run ``zoo.bench.benchmark`` and show its figures as a table or one JSON object."""

from __future__ import annotations

import json
from typing import List, Optional

import typer
from rich.table import Table

from zoo.cli.options import DATA, HARDWARE, component_args, component_option, flag
from zoo.cli.output import console
from zoo.errors import UsageError
from zoo.train.config import default_of


def command(
    encoder: Optional[str] = component_option("encoder", "Speech encoder", default_of("encoder")),
    generator: Optional[str] = component_option("generator", "Face generator", default_of("generator")),
    discriminator: Optional[str] = component_option("discriminator", "Discriminator", default_of("discriminator")),
    image_size: Optional[int] = typer.Option(None, "--image-size", "--size", help=f"Face size, 64 or 128 \\[default: {default_of('image_size')}].", rich_help_panel=DATA),
    batch_size: Optional[int] = typer.Option(None, help=f"Pairs per iteration \\[default: {default_of('batch_size')}].", rich_help_panel=DATA),
    dataset: Optional[str] = component_option("dataset", "Dataset", f"{default_of('dataset')}, needs no data", DATA),
    data: Optional[str] = typer.Option(None, help="Dataset root folder.", rich_help_panel=DATA),
    arg: Optional[List[str]] = typer.Option(None, help="Component argument KIND.KEY=VALUE, e.g. dataset.num_identities=3 (repeatable).", rich_help_panel=DATA),
    device: Optional[str] = typer.Option(None, help=f"auto, cpu, cuda or cuda:N \\[default: {default_of('device')}].", rich_help_panel=HARDWARE),
    amp: bool = typer.Option(False, "--amp", help="bf16 autocast in our step (CUDA, or a CPU with native bf16).", rich_help_panel=HARDWARE),
    compile: bool = typer.Option(False, "--compile", help="torch.compile our step's models.", rich_help_panel=HARDWARE),
    repeats: int = typer.Option(5, help="Timed blocks per measurement; medians are reported."),
    warmup: int = typer.Option(2, help="Untimed iterations (and loader batches) first."),
    skip_seed: bool = typer.Option(False, "--skip-seed", help="Do not time the seed-style step."),
    skip_loader: bool = typer.Option(False, "--skip-loader", help="Do not time the data loader."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
) -> None:
    """Time our training step beside the seed's, the loader, generation, memory and FLOP/s."""
    options = {"encoder": encoder, "generator": generator, "discriminator": discriminator,
               "image_size": image_size, "batch_size": batch_size, "dataset": dataset, "data": data,
               "device": device, "amp": flag(amp), "compile": flag(compile), **component_args(arg)}
    raise typer.Exit(run(options, repeats=repeats, warmup=warmup, skip_seed=skip_seed,
                         skip_loader=skip_loader, as_json=as_json))


def run(options: dict, *, repeats: int, warmup: int, skip_seed: bool, skip_loader: bool,
        as_json: bool) -> int:
    """Check the options, run the bench, print the result; return the exit code."""
    from zoo.bench.benchmark import run_bench
    from zoo.cli.progress import ConsoleProgress

    if repeats < 1 or warmup < 0:
        raise UsageError(f"--repeats must be at least 1 and --warmup at least 0, not {repeats} and {warmup}")
    result = run_bench(options, repeats=repeats, warmup=warmup, skip_seed=skip_seed,
                       skip_loader=skip_loader, progress=ConsoleProgress(silent=as_json))
    if as_json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        show(result)
    return 0


def _si(value: float, unit: str = "") -> str:
    """``1.23e9`` -> ``1.23 G``: three significant figures with an SI prefix."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def _mib(count: float) -> str:
    return f"{count / 2**20:,.0f} MiB"


def show(result: dict) -> None:
    """The figures as one rich table, with the machine and the options above it."""
    m, o = result["machine"], result["options"]
    console.print(f"[bold]{m['device_name']}[/bold] ({m['device']}), {m['cpu_count']} cores, "
                  f"threads {m['threads']}, torch {m['torch']}, {m['date']}, load {m['load_average_1m']:.2f}"
                  f" -> {m['load_average_1m_end']:.2f}", highlight=False)
    console.print(f"{o['encoder']} + {o['generator']} + {o['discriminator']}, {o['image_size']}px, "
                  f"batch {o['batch_size']}, amp {o['amp']}, compile {o['compile']}, dataset {o['dataset']}, "
                  f"{o['warmup']} warm-up, median of {o['repeats']} blocks of {result['iterations_per_block']}",
                  highlight=False)
    table = Table(title="bench", title_justify="left")
    for column in ("measure", "value", "note"):
        table.add_column(column)
    for row in _step_rows(result) + _loader_rows(result) + _other_rows(result):
        table.add_row(*row)
    console.print(table)


def _step_rows(result: dict) -> list:
    rows = []
    for key, label in (("ours", "our step"), ("seed", "seed-style step")):
        step = result.get(key)
        if step is None:
            continue
        finite = "losses finite" if step["losses_finite"] else "[red]losses NOT finite[/red]"
        memory = f", CUDA peak {_mib(step['peak_cuda_bytes'])}" if "peak_cuda_bytes" in step else ""
        rows.append((f"{label} pairs/s", f"{step['pairs_per_s']:.1f}",
                     f"{step['iterations_per_s']:.3g} it/s, {_si(step['flops_per_iteration'], 'FLOP')}/it, "
                     f"{finite}{memory}"))
    if "speedup" in result:
        same = "same initial weights" if result["same_initial_weights"] else "[red]weights differed[/red]"
        rows.append(("ours / seed-style", f"{result['speedup']:.2f}x", same))
    return rows


def _loader_rows(result: dict) -> list:
    loader = result.get("loader")
    if loader is None:
        return []
    build = "cache reused" if loader["cache_reused"] else f"cache built in {loader['cache_build_s']:.1f} s"
    return [("loader cold pairs/s", f"{loader['cold_pairs_per_s']:.0f}", f"{loader['cold_workers']} workers, decoding"),
            ("loader cached pairs/s", f"{loader['cached_pairs_per_s']:.0f}",
             f"{loader['cached_workers']} workers, {build}"),
            ("cached loader / our step", f"{loader['cached_over_step']:.1f}x", "pairs/s supplied over consumed")]


def _other_rows(result: dict) -> list:
    g, f, mem = result["generate"], result["flops"], result["memory"]
    rows = [("generate, one clip", f"{g['single_clip_ms']:.1f} ms", "FacePipeline, eval mode"),
            ("generate, per clip in a batch", f"{g['batched_ms_per_clip']:.2f} ms", f"batch {g['batch']}"),
            ("our achieved FLOP/s", _si(f["ours_achieved_flops_per_s"], "FLOP/s"),
             f"{100 * f['ours_utilisation']:.1f}% of the measured matmul rate"),
            ("matmul float32", _si(f["matmul_float32_flops_per_s"], "FLOP/s"),
             "torch.mm, or oneDNN's product where faster (CPU)")]
    if "matmul_bfloat16_flops_per_s" in f:
        rows.append(("matmul bfloat16", _si(f["matmul_bfloat16_flops_per_s"], "FLOP/s"), "the rate --amp is held to"))
    if "matmul_tf32_flops_per_s" in f:
        rows.append(("matmul TF32", _si(f["matmul_tf32_flops_per_s"], "FLOP/s"), "cuDNN's float32 convolutions use TF32"))
    rows.append(("peak RSS", _mib(mem["peak_rss_bytes"]), "the whole process"))
    if "peak_cuda_bytes" in mem:
        rows.append(("peak CUDA allocated", _mib(mem["peak_cuda_bytes"]), "the whole process"))
    return rows
