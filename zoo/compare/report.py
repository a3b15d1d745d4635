"""A comparison's outputs: ``leaderboard.json`` and ``leaderboard.md`` (one row per model, with
the real faces and chance as the first rows), ``faces.png`` (one row per identity: the real face,
then each model's face for the same test clip) and ``curves.png`` (quality against training
time, one line per model). Pictures are drawn with Pillow, as the evaluator's are."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from zoo.evaluate.report import format_number
from zoo.files import write_json, write_text

RANKED_BY = ("face_verification", "identity_accuracy")  # the first one measured ranks the table
SHOWN_IDENTITIES = 8
COLOURS = ((52, 101, 164), (204, 0, 0), (78, 154, 6), (196, 160, 0), (117, 80, 123), (206, 92, 0),
           (143, 89, 2), (32, 74, 135))


def rank_metric(rows: list[dict]) -> str:
    """The figure the table is ranked by: the first of ``RANKED_BY`` that a model reports."""
    measured = {name for row in rows for name in row.get("metrics", {})}
    return next((name for name in RANKED_BY if name in measured), "")


def _reference(rows: list[dict]) -> dict:
    """The real-face and chance values of every figure, from any model's evaluation table."""
    real, chance = {}, {}
    for row in rows:
        for line in row.get("table", []):
            if line.get("real") is not None:
                real.setdefault(line["metric"], line["real"])
            if line.get("chance") is not None:
                chance.setdefault(line["metric"], line["chance"])
    return {"real": real, "chance": chance}


def figures(rows: list[dict]) -> list[str]:
    """The generated-face figures, in the evaluator's order, present in any row."""
    names = []
    for row in rows:
        for line in row.get("table", []):
            if line["metric"] not in names:
                names.append(line["metric"])
    return names


def markdown(board: dict) -> str:
    """The leaderboard as a Markdown table, then each model's exact command."""
    names = board["figures"]
    head = ["model", *names, "weights", "pairs seen", "pairs/s", "train s", "peak RSS MiB"]
    lines = [f"# Leaderboard ({board['dataset']}, {board['budget']}, seed {board['seed']})", "",
             f"Ranked by `{board['ranked_by']}`.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, title in (("real", "*real faces*"), ("chance", "*chance*")):
        values = board["reference"][label]
        cells = [title, *(format_number(values.get(n)) for n in names)] + [""] * 5
        lines.append("| " + " | ".join(cells) + " |")
    for row in board["rows"]:
        if row.get("error"):
            cells = [row["model"], f"failed: {row['error']}"] + [""] * (len(head) - 2)
            lines.append("| " + " | ".join(cells) + " |")
            continue
        m = row["metrics"]
        rss = row.get("peak_rss_bytes")
        lines.append("| " + " | ".join([row["model"], *(format_number(m.get(n)) for n in names),
                                        f"{row['parameters']:,}", f"{row['pairs_seen']:,}",
                                        format_number(row.get("pairs_per_s")), format_number(row.get("train_seconds")),
                                        f"{rss / 2**20:,.0f}" if rss else ""]) + " |")
    lines += ["", "## Commands", ""]
    lines += [f"- {row['model']}: `{row.get('command', '')}`" for row in board["rows"] if row.get("command")]
    return "\n".join(lines) + "\n"


def faces_picture(rows: list[dict], options, path: Path):
    """Rows: identities; columns: the real face, then each model's face for the same test clip."""
    import registry
    from zoo.media.images import render_grid, write_png
    from zoo.model.pipeline import FacePipeline
    from zoo.train.runs import dataset_defaults

    good = [row for row in rows if not row.get("error")]
    if not good:
        return None
    columns, labels = [], None
    for row in good:
        pipeline = FacePipeline.from_checkpoint(row["run"], options.device)
        name, root, args = dataset_defaults(pipeline.source, options.dataset, options.data, None)
        data = registry.create("dataset", name, root=root, split="test", image_size=pipeline.image_size,
                               sample_rate=pipeline.sample_rate, num_samples=pipeline.num_samples, **args)
        chosen = _first_clip_per_identity(data)
        if labels is None:
            labels = [data.identities[data.labels[i]] for i in chosen]
            columns.append(torch.stack([torch.as_tensor(data[i]["image"]).float() for i in chosen]))
        columns.append(pipeline(torch.stack([torch.as_tensor(data[i]["wave"]) for i in chosen]), seed=options.seed))
    tiles = torch.stack(columns, dim=1).flatten(0, 1)
    scale = 2 if tiles.shape[-1] <= 64 else 1
    grid = render_grid(tiles, nrow=len(columns), row_labels=labels, scale=scale)
    heading = "columns: real face, " + ", ".join(row["model"] for row in good)
    return write_png(_with_heading(grid, heading), path)


def _with_heading(grid: np.ndarray, text: str) -> np.ndarray:
    """The picture with a line of text above it."""
    from PIL import Image, ImageDraw

    from zoo.evaluate.report import _font

    canvas = Image.new("RGB", (grid.shape[1], grid.shape[0] + 24), (255, 255, 255))
    canvas.paste(Image.fromarray(grid), (0, 24))
    ImageDraw.Draw(canvas).text((6, 5), text, fill=(30, 30, 30), font=_font(13))
    return np.asarray(canvas)


def _first_clip_per_identity(data) -> list[int]:
    chosen = {}
    for index, label in enumerate(data.labels):
        chosen.setdefault(label, index)
    return [chosen[label] for label in sorted(chosen)][:SHOWN_IDENTITIES]


def curves_picture(rows: list[dict], metric: str, path: Path, size=(760, 420)):
    """``metric`` against training seconds, one line per model, with a legend."""
    from PIL import Image, ImageDraw

    from zoo.evaluate.report import _font
    from zoo.media.images import save_image

    series = [(row["model"], [(p["seconds"], p[metric]) for p in row.get("curve", [])
                              if p.get("seconds") is not None and p.get(metric) is not None])
              for row in rows if not row.get("error")]
    series = [(name, points) for name, points in series if points]
    if not series:
        return None
    width, height = size
    left, top, right, bottom = 60, 40, width - 170, height - 50
    xs = [x for _, points in series for x, _ in points]
    x_max = max(xs) or 1.0
    image = Image.new("RGB", size, (255, 255, 255))
    draw, font = ImageDraw.Draw(image), _font(13)
    draw.text((10, 10), f"{metric} against training time (s)", fill=(20, 20, 20), font=font)
    draw.rectangle((left, top, right, bottom), outline=(160, 160, 160))
    for fraction in (0.0, 0.5, 1.0):
        y = bottom - fraction * (bottom - top)
        draw.text((10, y - 7), f"{fraction:.1f}", fill=(90, 90, 90), font=font)
    draw.text((right - 40, bottom + 8), f"{x_max:.0f} s", fill=(90, 90, 90), font=font)
    for number, (name, points) in enumerate(series):
        colour = COLOURS[number % len(COLOURS)]
        pixels = [(left + x / x_max * (right - left), bottom - min(max(v, 0.0), 1.0) * (bottom - top))
                  for x, v in sorted(points)]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for x, y in pixels:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        draw.text((right + 12, top + 18 * number), name, fill=colour, font=font)
    return save_image(np.asarray(image), path)


def write_report(rows: list[dict], entries, options) -> dict:
    """Write every output of a comparison into ``options.out``; returns the leaderboard."""
    metric = rank_metric(rows)

    def order(row):
        value = row.get("metrics", {}).get(metric)
        return (row.get("error") is not None, -(value if value is not None and math.isfinite(value) else -1e9))

    rows = sorted(rows, key=order)
    board = {"dataset": options.dataset, "budget": f"{options.budget.amount:g} {options.budget.kind}",
             "seed": options.seed, "ranked_by": metric, "figures": figures(rows),
             "reference": _reference(rows), "rows": rows, "files": {}}
    out = options.out
    faces = faces_picture(rows, options, out / "faces.png")
    curves = curves_picture(rows, options.curve_metrics[0], out / "curves.png") if options.curve_metrics else None
    board["files"] = {k: str(v) for k, v in (("faces.png", faces), ("curves.png", curves)) if v}
    board["files"].update({"leaderboard.md": str(out / "leaderboard.md"), "leaderboard.json": str(out / "leaderboard.json")})
    write_text(out / "leaderboard.md", markdown(board))
    write_json(out / "leaderboard.json", _without_tables(board))
    return board


def _without_tables(board: dict) -> dict:
    """The JSON keeps every figure and drops the per-model evaluation tables (in evaluations/)."""
    return {**board, "rows": [{k: v for k, v in row.items() if k != "table"} for row in board["rows"]]}
