"""``python main.py prepare``: talking-head videos to training pairs, with progress and a summary."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from zoo.cli.output import console


def command(
    videos: str = typer.Argument(..., help="Folder of <identity>/<videos> (mp4, mkv, webm, mov), or a CSV of identity,path."),
    out: str = typer.Argument(..., help="Output folder (youtubers layout plus manifest.csv); re-running resumes it."),
    frame_every: float = typer.Option(1.0, help="Seconds between sampled frames."),
    context_seconds: float = typer.Option(4.0, help="Speech around each frame that windows are drawn from."),
    windows: int = typer.Option(5, help="Random speech windows (pairs) per kept face."),
    window_seconds: float = typer.Option(1.0, help="Length of each speech window."),
    margin: float = typer.Option(0.2, help="Crop margin on each side, as a fraction of the face size."),
    min_face: int = typer.Option(64, help="Smallest face kept, in frame pixels."),
    test_fraction: float = typer.Option(0.1, help="Share of each identity's videos held out for test (split by video)."),
    seed: int = typer.Option(0, help="Seed of the split and the window positions."),
    min_confidence: float = typer.Option(1.0, help="Haar cascade confidence (last-stage weight) a face must reach."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Build a training set from raw talking-head videos: face crops paired with speech windows."""
    from zoo.cli.progress import ConsoleProgress
    from zoo.prepare.runner import prepare

    summary = prepare(videos, out, frame_every=frame_every, context_seconds=context_seconds, windows=windows,
                      window_seconds=window_seconds, margin=margin, min_face=min_face,
                      test_fraction=test_fraction, seed=seed, min_confidence=min_confidence,
                      progress=ConsoleProgress(silent=quiet))
    show_summary(summary)


def show_summary(summary) -> None:
    """Print the summary of a prepare run as one table."""
    table = Table(title=f"prepare -> {summary.out}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("videos found", summary.videos_found),
        ("videos prepared now", summary.videos_prepared),
        ("videos already done (skipped)", summary.videos_already_done),
        ("videos skipped (unusable)", len(summary.failures)),
        ("frames seen", summary.frames_seen),
        ("faces kept", summary.faces_kept),
    ]
    rows += [(f"frames skipped: {reason}", n) for reason, n in sorted(summary.frames_skipped.items())]
    rows += [("pairs written", summary.pairs_written)]
    rows += [(f"{split}: videos / pairs in total", f"{summary.total_videos.get(split, 0)} / "
              f"{summary.total_pairs.get(split, 0)}") for split in ("train", "test")]
    rows += [("time", f"{summary.seconds:.1f} s for {summary.video_seconds:.0f} s of video")]
    for what, count in rows:
        table.add_row(what, str(count))
    console.print(table)
    for key, reason in summary.failures:
        console.print(Text(f"skipped {key}: {reason}", style="yellow"))
