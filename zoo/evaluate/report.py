"""The evaluator's files: ``metrics.json``, ``report.md`` and two pictures, nothing else.

Pictures are drawn with Pillow (no matplotlib): real beside generated faces per identity, and a
bar chart with one pair of bars per figure, generated beside real, each pair scaled to its own
larger value because the figures live on different scales (a share, a distance).
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from zoo.files import make_folder, write_json, write_text
from zoo.media.images import save_grid

FACES_PER_IDENTITY = 4
MAX_IDENTITIES_SHOWN = 16
GENERATED_COLOUR = (52, 101, 164)
REAL_COLOUR = (150, 150, 150)


def write_outputs(result, out: Path, dataset, faces: torch.Tensor) -> dict:
    """Write every file of one evaluation into ``out``; returns ``{name: path}``."""
    make_folder(out)
    files = {"metrics.json": str(out / "metrics.json"), "report.md": str(out / "report.md")}
    grid = real_vs_generated(dataset, faces, out / "real_vs_generated.png")
    if grid is not None:
        files["real_vs_generated.png"] = str(grid)
    if result.table:
        files["metrics.png"] = str(bar_chart(result.table, out / "metrics.png"))
    result.files = files
    write_json(out / "metrics.json", jsonable(result.to_json()), strict=True)
    write_text(out / "report.md", markdown(result))
    return files


def jsonable(value):
    """JSON has no NaN or infinity: such values become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


# -- pictures ----------------------------------------------------------------------------------------------
def real_vs_generated(dataset, faces: torch.Tensor, path: Path,
                      per_identity: int = FACES_PER_IDENTITY) -> Optional[Path]:
    """One row per identity: real face, generated face, real, generated ... for a few clips."""
    from zoo.evaluate.context import labels_of

    labels = labels_of(dataset)
    tiles, names = [], []
    for identity, name in enumerate(dataset.identities[:MAX_IDENTITIES_SHOWN]):
        members = torch.nonzero(labels == identity).flatten()
        if len(members) == 0:
            continue
        chosen = members[np.linspace(0, len(members) - 1, min(per_identity, len(members))).round().astype(int)]
        row = []
        for index in chosen.tolist():
            row += [_real_image(dataset, index), faces[index]]
        blank = torch.ones_like(faces[0])  # white tiles pad identities with fewer clips
        row += [blank] * (2 * per_identity - len(row))
        tiles += row
        names.append(str(name))
    if not tiles:
        return None
    scale = 2 if faces.shape[-1] <= 64 else 1
    return save_grid(torch.stack(tiles), path, nrow=2 * per_identity, row_labels=names, scale=scale)


def _real_image(dataset, index: int) -> torch.Tensor:
    loader = getattr(dataset, "load_image", None)
    return torch.as_tensor(loader(index) if loader is not None else dataset[index]["image"]).float()


def bar_chart(rows: list[dict], path: Path, width: int = 800) -> Path:
    """Generated (blue) beside real (grey) per figure, each pair scaled to its larger value; under
    each figure's name, the model behind it and which way is better."""
    from PIL import Image, ImageDraw

    from zoo.media.images import save_image

    font, small = _font(13), _font(11)
    row_height, top, label_width, value_width = 46, 40, 240, 90
    height = top + row_height * len(rows) + 10
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((10, 10), "generated", fill=GENERATED_COLOUR, font=font)
    draw.text((100, 10), "real faces", fill=REAL_COLOUR, font=font)
    draw.text((200, 10), "(each pair of bars scaled to its larger value)", fill=(90, 90, 90), font=font)
    span = width - label_width - value_width - 20
    for number, row in enumerate(rows):
        y = top + number * row_height
        draw.text((10, y + 13), row["metric"], fill=(20, 20, 20), font=font, anchor="lm")
        caption = ", ".join(part for part in (row.get("model"), row["better"] and f"{row['better']} is better") if part)
        draw.text((10, y + 31), caption, fill=(110, 110, 110), font=small, anchor="lm")
        values = [row["generated"], row["real"]]
        largest = max((abs(v) for v in values if v is not None and math.isfinite(v)), default=0.0) or 1.0
        for offset, value, colour in ((4, values[0], GENERATED_COLOUR), (22, values[1], REAL_COLOUR)):
            if value is None or not math.isfinite(value):
                continue
            length = int(round(span * abs(value) / largest))
            draw.rectangle((label_width, y + offset, label_width + max(length, 1), y + offset + 14), fill=colour)
            draw.text((label_width + length + 6, y + offset + 7), format_number(value), fill=(20, 20, 20),
                      font=font, anchor="lm")
    return save_image(np.asarray(image), path)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


# -- report.md ---------------------------------------------------------------------------------------------
def format_number(value) -> str:
    """Four significant digits; empty for a missing value."""
    if value is None:
        return ""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def table_markdown(rows: list[dict]) -> list[str]:
    """The metrics table: generated, real faces, chance, which way is better, and the model."""
    lines = ["| metric | generated | real faces | chance | better | model |", "|---|---:|---:|---:|---|---|"]
    for row in rows:
        lines.append(f"| {row['metric']} | {format_number(row['generated'])} | {format_number(row['real'])} | "
                     f"{format_number(row['chance'])} | {row['better']} | {row.get('model', '')} |")
    return lines


def confusion_markdown(title: str, identities: list, matrix: list) -> list[str]:
    """One confusion matrix: rows the true identity, columns the one the classifier named."""
    lines = [f"**{title}** (rows: true speaker; columns: the classifier's answer)", "",
             "| true \\ named | " + " | ".join(map(str, identities)) + " |",
             "|---|" + "---:|" * len(identities)]
    for name, counts in zip(identities, matrix, strict=True):
        if sum(counts):
            lines.append(f"| {name} | " + " | ".join(str(c) for c in counts) + " |")
    return lines + [""]


def markdown(result) -> str:
    """The whole ``report.md``."""
    setup = result.setup
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Evaluation: {setup.get('checkpoint', 'pipeline')}", "",
             f"Dataset `{setup.get('dataset', '?')}` split `{setup.get('split', '?')}` "
             f"({setup.get('clips')} clips, {setup.get('identities')} identities, "
             f"{setup.get('image_size', '?')} px); seed {setup.get('seed')}; device {setup.get('device')}; {when}.", ""]
    lines += table_markdown(result.table) + [""]
    for title, entries in (("Skipped", result.skipped), ("Errors", result.errors)):
        if entries:
            lines += [f"**{title}**", ""] + [f"- {name}: {text}" for name, text in entries.items()] + [""]
    notes = [f"- {line}" for details in result.details.values() for line in details.get("notes", [])]
    if notes:
        lines += ["**Notes**", ""] + notes + [""]
    for name, details in result.details.items():
        confusion = details.get("confusion")
        if confusion:
            lines += [f"## Identity confusion ({name})", ""]
            for column, matrix in confusion.items():
                if column != "identities":
                    lines += confusion_markdown(f"{column} faces", confusion["identities"], matrix)
    lines += ["## Pictures", ""]
    if "real_vs_generated.png" in result.files:
        lines += ["Real (left of each pair) beside generated faces, one row per identity:", "",
                  "![real beside generated](real_vs_generated.png)", ""]
    if "metrics.png" in result.files:
        lines += ["![metrics: generated vs real](metrics.png)", ""]
    return "\n".join(lines)
