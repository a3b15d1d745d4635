"""Faces from speech files: sliding windows, fused embeddings, variations, interpolations, and a
whole test split drawn the way the seed's ``--inference`` did.

A clip longer than the encoder's window is cut into hopped windows; each window gets a face
(``<stem>_windows.png``) and the fusion of the windows' embeddings gets the clip's face
(``<stem>.png``): the model's fuser when it has one (SF2F's attention, Bai et al., 2022), else
their mean.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from zoo.media.audio import AUDIO_EXTENSIONS, FALLBACK_EXTENSIONS, ShortClipWarning, fit_length, load_audio, peak_normalise, sliding_windows
from zoo.callbacks import SILENT, Progress
from zoo.errors import UsageError, ZooError
from zoo.files import inside, make_folder
from zoo.media.images import save_grid, save_image
from zoo.media.vad import check_detector, voiced_windows
from zoo.model.pipeline import FacePipeline


@dataclass
class FileResult:
    """What one input file gave: its outputs, or why it failed."""

    input: str
    outputs: list = field(default_factory=list)
    windows: int = 0
    seconds: float = 0.0
    note: str = ""
    error: Optional[str] = None


@dataclass
class GenerateOptions:
    """How to cut and draw each clip."""

    window_seconds: Optional[float] = None  # default: the window the encoder was trained on
    hop_seconds: Optional[float] = None  # default: half a window
    num: int = 1  # faces per clip (noise or --stochastic dropout)
    seed: int = 0
    stochastic: bool = False
    max_seconds: Optional[float] = None  # refuse longer clips (the demo page's limit); None: any length
    vad: str = "energy"  # the voice-activity detector that drops silent windows (zoo.media.vad)


def expand_inputs(paths) -> tuple[list[Path], list[FileResult]]:
    """Files as given; folders become the audio files inside them, sorted. A folder without any
    is a failure of its own."""
    found, empty = [], []
    for path in map(Path, paths):
        if path.is_dir():
            audio_files = sorted(p for p in path.rglob("*")
                            if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS + FALLBACK_EXTENSIONS)
            found += audio_files
            if not audio_files:
                empty.append(FileResult(str(path), error=f"{path}: a folder with no audio files "
                                                         f"({', '.join(AUDIO_EXTENSIONS)} ...)"))
        else:
            found.append(path)  # a missing or unreadable file fails on its own, with its name
    return found, empty


def _unique_stems(files: list[Path]) -> dict:
    stems, used = {}, set()
    for file in files:
        stem, n = file.stem, 2
        while stem in used:
            stem, n = f"{file.stem}-{n}", n + 1
        used.add(stem)
        stems[file] = stem
    return stems


class Drawer:
    """Turns audio files into face images with one pipeline and one set of options."""

    def __init__(self, pipeline: FacePipeline, options: GenerateOptions):
        if options.num > 1 and not pipeline.has_noise and not options.stochastic:
            raise UsageError("--num N needs a generator with noise (z_dim > 0, or a diffusion sampler) or "
                             "--stochastic (dropout kept on) for a noise-free one like wav2pix's")
        if options.num > 1 and not pipeline.has_noise and not pipeline.has_dropout:
            raise UsageError("--num N: this generator has neither noise nor dropout, so every draw "
                             "is the same face; train with --z-dim or with a dropout generator")
        if options.num < 1:
            raise UsageError("--num must be at least 1")
        self.pipeline = pipeline
        self.options = options
        rate = pipeline.sample_rate
        self.window = int(round(options.window_seconds * rate)) if options.window_seconds else pipeline.num_samples
        self.hop = int(round(options.hop_seconds * rate)) if options.hop_seconds else max(1, self.window // 2)
        if self.window <= 0 or self.hop <= 0:
            raise UsageError("--window-seconds and --hop-seconds must be positive")
        check_detector(options.vad)  # before any file: a wrong name or a missing package is one line

    def embed_file(self, path: Path) -> tuple[torch.Tensor, torch.Tensor, float, str]:
        """``(per-window embeddings, fused embedding [1, D], seconds, note)`` of one file."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ShortClipWarning)
            wave = load_audio(path, self.pipeline.sample_rate, normalise=False, max_seconds=self.options.max_seconds)
            seconds = wave.shape[-1] / self.pipeline.sample_rate
            if wave.shape[-1] > self.window:
                windows = sliding_windows(wave, self.window, self.hop, normalise=False)
            else:
                windows = fit_length(wave, self.window).unsqueeze(0)
        note = f"zero-padded from {seconds:.2f} s" if any(issubclass(w.category, ShortClipWarning) for w in caught) else ""
        # before each window is normalised: a pause must stay quiet
        voiced = voiced_windows(windows, self.pipeline.sample_rate, str(path), self.options.vad)
        if len(voiced) < windows.shape[0]:
            note = ", ".join(filter(None, [note, f"{windows.shape[0] - len(voiced)} silent windows dropped"]))
        embeddings = self._embed(peak_normalise(windows[voiced]))
        return embeddings, self.pipeline.fuse(embeddings), seconds, note

    def _embed(self, windows: torch.Tensor) -> torch.Tensor:
        try:
            return self.pipeline.embed(windows)
        except RuntimeError as exc:
            raise UsageError(f"the encoder cannot take {self.window}-sample windows (it was trained on "
                             f"{self.pipeline.num_samples}); leave --window-seconds out") from exc

    def draw_file(self, path: Path, stem: str, out: Path) -> FileResult:
        """Write ``<stem>.png`` (and windows and variations where they apply) for one file."""
        result = FileResult(str(path))
        embeddings, fused, result.seconds, result.note = self.embed_file(path)
        result.windows = embeddings.shape[0]
        seed = self.options.seed
        result.outputs.append(str(save_image(self.pipeline.draw(fused, seed=seed), inside(out, f"{stem}.png"))))
        if result.windows > 1:
            faces = self.pipeline.draw(embeddings, seed=seed)
            result.outputs.append(str(save_grid(faces, inside(out, f"{stem}_windows.png"))))
        if self.options.num > 1:
            faces = self.pipeline.draw(fused.repeat(self.options.num, 1), seed=seed,
                                       stochastic=self.options.stochastic)
            result.outputs.append(str(save_grid(faces, inside(out, f"{stem}_samples.png"))))
        return result


def generate_files(pipeline: FacePipeline, inputs, out: Path, options: GenerateOptions,
                   on_file: Callable[[FileResult], None] = lambda r: None,
                   progress: Progress = SILENT) -> list[FileResult]:
    """Draw every input; a bad file is recorded with its reason and the rest still run.

    ``on_file`` hears each file's result as soon as it is known.
    """
    drawer = Drawer(pipeline, options)
    files, results = expand_inputs(inputs)
    for failure in results:
        on_file(failure)
    make_folder(out)
    with progress.task("generating", len(files)) as task:
        for done, (file, stem) in enumerate(_unique_stems(files).items(), start=1):
            try:
                result = drawer.draw_file(file, stem, out)
            except UsageError:
                raise  # the options are wrong for every file: stop at once
            except ZooError as exc:
                result = FileResult(str(file), error=str(exc))
            results.append(result)
            on_file(result)
            task.update(done)
    return results


def interpolate(pipeline: FacePipeline, first: Path, second: Path, steps: int, out: Path,
                options: GenerateOptions) -> Path:
    """A strip of ``steps`` faces morphing from one clip's embedding to the other's."""
    if steps < 2:
        raise UsageError("--interpolate needs at least 2 steps")
    drawer = Drawer(pipeline, options)
    _, a, _, _ = drawer.embed_file(first)
    _, b, _, _ = drawer.embed_file(second)
    weights = torch.linspace(0, 1, steps).unsqueeze(1)
    faces = pipeline.draw((1 - weights) * a + weights * b, seed=options.seed)
    make_folder(out)
    return save_grid(faces, inside(out, f"{Path(first).stem}_to_{Path(second).stem}.png"), nrow=steps)


def report(results: list[FileResult], started: float) -> dict:
    """The JSON summary ``--json`` prints."""
    return {
        "outputs": [o for r in results for o in r.outputs],
        "files": [asdict(r) for r in results],
        "failures": [{"input": r.input, "error": r.error} for r in results if r.error],
        "seconds": round(time.perf_counter() - started, 3),
    }


def generate_split(checkpoint, *, dataset: str, root: Optional[str], split: str, out: Path,
                   device: str = "auto", dataset_args: Optional[dict] = None, runs_dir: str = "runs",
                   batch_size: int = 64, max_identities: int = 10, progress: Progress = SILENT,
                   sampling: Optional[dict] = None) -> dict:
    """One face per clip of a dataset split, ``<identity>_<k>.png``, plus a real-beside-generated
    grid, as the seed's ``--inference`` wrote them. ``sampling``: a sampler's ``steps`` and
    ``guidance`` (``FacePipeline.set_sampling``)."""
    import registry
    from zoo.train.runs import dataset_defaults

    pipeline = FacePipeline.from_checkpoint(checkpoint, device, runs_dir)
    pipeline.set_sampling(**(sampling or {}))
    # the arguments of the data the run trained on, unless told otherwise
    _, _, dataset_args = dataset_defaults(pipeline.source, dataset, root, dataset_args)
    data = registry.create("dataset", dataset, root=root, split=split, image_size=pipeline.image_size,
                           sample_rate=pipeline.sample_rate, num_samples=pipeline.num_samples,
                           **dataset_args)
    out = make_folder(out)
    written, sheet, rows = 0, [], []
    with progress.task(f"drawing the {split} split", len(data)) as task:
        for start in range(0, len(data), batch_size):
            items = [data[i] for i in range(start, min(start + batch_size, len(data)))]
            faces = pipeline(torch.stack([torch.as_tensor(it["wave"]) for it in items]))
            for item, face in zip(items, faces):
                save_image(face, inside(out, f"{item['key']}.png"))  # a key is a name, never a path
                written += 1
                name = data.identities[item["identity"]]
                if name not in rows and len(rows) < max_identities:
                    rows.append(name)
                    sheet += [torch.as_tensor(item["image"]), face]
            task.update(written)
    scale = 2 if pipeline.image_size <= 64 else 1  # as the training sample sheets
    grid = save_grid(torch.stack(sheet), inside(out, "grid.png"), nrow=2, row_labels=rows, scale=scale) if sheet else None
    return {"written": written, "folder": str(out), "grid": str(grid) if grid else None}
