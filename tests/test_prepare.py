"""``prepare``: talking-head videos in, youtubers-layout face/speech pairs out (issue 8).

The videos are made here with PyAV from real faces of ../shared/data/youtubers (see
``talking_heads``): each face drifts over a plain background, and the stereo soundtrack's two
channels differ by a probe tone that only a true channel mean removes.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
import soundfile
from PIL import Image

from talking_heads import PROBE_HZ, SPEECH_F0_HZ, make_videos, write_talking_head
from zoo.errors import DataError, UsageError
from zoo.callbacks import Progress, Task
from zoo.prepare.runner import assign_splits, count_test_videos, prepare, VideoJob
from zoo.prepare.state import STATE_FILE
from zoo.prepare.video_pairs import window_starts
from zoo.media.video import StreamResampler

WINDOWS = 2
SECONDS = 3.0       # 3 s at one frame a second: frames at 0, 1 and 2 s
OPTIONS = {"windows": WINDOWS, "test_fraction": 0.5, "seed": 3}


def read_manifest(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def videos(youtubers_root, tmp_path_factory):
    """Two talking heads per identity, plus a corrupt file and a video with no soundtrack."""
    folder = tmp_path_factory.mktemp("videos")
    heads = make_videos(youtubers_root, folder, per_identity=2, seconds=SECONDS)
    first, second = sorted({head.identity for head in heads.values()})
    (folder / first / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
    any_face = next(iter(heads.values())).face
    write_talking_head(folder / second / "silent.mp4", any_face, seconds=2.0, with_audio=False)
    return folder, heads


@pytest.fixture(scope="module")
def prepared(videos, tmp_path_factory):
    folder, heads = videos
    out = tmp_path_factory.mktemp("prepared") / "out"
    summary = prepare(folder, out, **OPTIONS)
    return out, summary, read_manifest(out), heads


def test_summary_counts_frames_faces_and_pairs(prepared):
    out, summary, manifest, heads = prepared
    assert summary.videos_found == len(heads) + 2
    assert summary.videos_prepared == len(heads) == 4
    assert summary.frames_seen == len(heads) * 3
    assert summary.faces_kept + sum(summary.frames_skipped.values()) == summary.frames_seen
    assert summary.faces_kept >= summary.frames_seen - 1, summary.frames_skipped
    assert summary.pairs_written == summary.faces_kept * WINDOWS == len(manifest)


def test_corrupt_and_silent_videos_are_reported_and_skipped(prepared):
    out, summary, manifest, heads = prepared
    reasons = {Path(key).name: reason for key, reason in summary.failures}
    assert set(reasons) == {"broken.mp4", "silent.mp4"}
    assert "not a readable video" in reasons["broken.mp4"]
    assert "no audio track" in reasons["silent.mp4"]
    assert {row["source_video"] for row in manifest} == set(heads)


def test_each_face_is_paired_with_its_windows_under_consecutive_numbers(prepared):
    out, summary, manifest, heads = prepared
    by_frame = defaultdict(list)
    for row in manifest:
        by_frame[(row["source_video"], row["time_seconds"])].append(row)
    for rows in by_frame.values():
        ks = sorted(int(r["k"]) for r in rows)
        assert ks == list(range(ks[0], ks[0] + WINDOWS))
        assert len({(out / r["image"]).read_bytes() for r in rows}) == 1
    for identity in {h.identity for h in heads.values()}:
        listed = sorted(int(r["k"]) for r in manifest if r["identity"] == identity)
        on_disk = sorted(int(p.stem.rsplit("_", 1)[1]) for p in out.glob(f"*/{identity}/*.png"))
        assert listed == on_disk == list(range(len(listed)))  # unique across both splits
        assert len(list(out.glob(f"*/{identity}/*.wav"))) == len(listed)


def test_audio_is_one_second_of_16k_mono_pcm_from_around_the_frame(prepared):
    out, summary, manifest, heads = prepared
    for row in manifest:
        info = soundfile.info(out / row["audio"])
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 16000)
        start = float(row["window_start"])
        assert 0 <= start and start + 1.0 <= SECONDS + 0.05
        assert abs(start + 0.5 - float(row["time_seconds"])) <= 2.0 + 0.5
    for row in manifest[::3]:
        clip, _ = soundfile.read(out / row["audio"], dtype="float32")
        begin = int(round(float(row["window_start"]) * 16000))
        expected = heads[row["source_video"]].speech(16000)[begin:begin + 16000]
        assert np.corrcoef(clip[: expected.size], expected)[0, 1] > 0.9  # right place, right mix


def test_mono_is_the_mean_of_the_channels(prepared):
    out, summary, manifest, heads = prepared
    clip, rate = soundfile.read(out / manifest[0]["audio"], dtype="float32")
    spectrum = np.abs(np.fft.rfft(clip))
    freqs = np.fft.rfftfreq(clip.size, 1 / rate)
    probe = spectrum[np.abs(freqs - PROBE_HZ) < 30].max()
    voice = spectrum[np.abs(freqs - SPEECH_F0_HZ) < 30].max()
    assert probe < 0.02 * voice  # one channel alone carries the probe at about half the voice


def test_crops_are_png_rgb_and_hold_the_pasted_face(prepared):
    out, summary, manifest, heads = prepared
    for row in manifest[::WINDOWS]:
        head = heads[row["source_video"]]
        moment = float(row["time_seconds"])
        assert abs(moment - round(moment)) < 0.1
        x, y, size = (int(row[c]) for c in ("crop_x", "crop_y", "crop_size"))
        with Image.open(out / row["image"]) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (size, size))
            pixels = np.asarray(image).astype(float)
        drawn = head.frame(moment)[y:y + size, x:x + size].astype(float)
        assert np.abs(pixels - drawn).mean() < 8
        assert np.abs(pixels[..., ::-1] - drawn).mean() > 25  # so a red/blue swap would show
        px, py, psize = head.motion.box(moment)
        overlap = (max(0, min(x + size, px + psize) - max(x, px))
                   * max(0, min(y + size, py + psize) - max(y, py)))
        assert overlap >= 0.9 * psize ** 2 and overlap >= 0.35 * size ** 2


def test_a_haar_detector_finds_a_face_in_the_crops(prepared):
    import cv2

    out, summary, manifest, heads = prepared
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")
    found = 0
    rows = manifest[::WINDOWS]
    for row in rows:
        grey = cv2.cvtColor(np.asarray(Image.open(out / row["image"])), cv2.COLOR_RGB2GRAY)
        size = grey.shape[0]
        found += len(cascade.detectMultiScale(grey, 1.1, 3, minSize=(size // 3, size // 3))) > 0
    assert found >= 0.8 * len(rows)


def test_split_is_by_video(prepared):
    out, summary, manifest, heads = prepared
    split_of = defaultdict(set)
    for row in manifest:
        split_of[row["source_video"]].add(row["split"])
        assert row["image"].startswith(f"{row['split']}/{row['identity']}/")
    assert all(len(splits) == 1 for splits in split_of.values())
    for identity in {h.identity for h in heads.values()}:
        splits = sorted(next(iter(split_of[k])) for k, h in heads.items() if h.identity == identity)
        assert splits == ["test", "train"]
    assert summary.total_videos == {"train": 2, "test": 2}


def test_assign_splits_is_seeded_per_identity_and_whole_videos():
    jobs = [VideoJob(f"a/{i}.mp4", "a", Path(f"{i}.mp4")) for i in range(10)]
    jobs += [VideoJob("b/0.mp4", "b", Path("0.mp4"))]
    jobs += [VideoJob(f"c/{i}.mp4", "c", Path(f"{i}.mp4")) for i in range(2)]
    splits = assign_splits(jobs, 0.2, seed=0)
    assert assign_splits(list(reversed(jobs)), 0.2, seed=0) == splits  # order does not matter
    assert sum(splits[j.key] == "test" for j in jobs if j.identity == "a") == 2
    assert splits["b/0.mp4"] == "train"  # a single video stays in train
    assert sorted(splits[f"c/{i}.mp4"] for i in range(2)) == ["test", "train"]
    tests_by_seed = {frozenset(k for k, s in assign_splits(jobs, 0.2, seed).items() if s == "test")
                     for seed in range(6)}
    assert len(tests_by_seed) > 1
    assert set(assign_splits(jobs, 0.0, seed=0).values()) == {"train"}
    assert [count_test_videos(n, 0.1) for n in (1, 2, 9, 10, 30)] == [0, 1, 1, 1, 3]


def test_rerun_skips_done_videos_and_refuses_other_options(prepared, videos):
    out, summary, manifest, heads = prepared
    before = (out / "manifest.csv").read_bytes()
    again = prepare(videos[0], out, **OPTIONS)
    assert again.videos_already_done == len(heads)
    assert again.videos_prepared == again.pairs_written == again.frames_seen == 0
    assert len(again.failures) == 2
    assert (out / "manifest.csv").read_bytes() == before
    with pytest.raises(UsageError, match="--windows"):
        prepare(videos[0], out, **{**OPTIONS, "windows": 3})


class _StopDuringSecondVideo(Progress):
    """Interrupts the run (as Ctrl-C would) once the second video has written some pairs."""

    def __init__(self):
        self.keys = []

    def task(self, label, total=None):
        if label.strip() == "videos":
            return Task()
        self.keys.append(label.strip())
        stopper = self

        class StopInSecondVideo(Task):
            def update(self, done, total=None, **fields):
                if len(stopper.keys) == 2 and done > 1.5:
                    raise KeyboardInterrupt

        return StopInSecondVideo()


def _crash(videos_folder: Path, out: Path) -> str:
    """Run prepare until it is interrupted in its second video; return that video's key."""
    stopper = _StopDuringSecondVideo()
    with pytest.raises(KeyboardInterrupt):
        prepare(videos_folder, out, progress=stopper, **OPTIONS)
    state = json.loads((out / STATE_FILE).read_text())
    assert list(state["videos"]) == stopper.keys[:1]
    assert len(list(out.glob("*/*/*.png"))) > sum(v["pairs"] for v in state["videos"].values())
    return stopper.keys[1]


def _files_match_manifest(out: Path) -> bool:
    rows = read_manifest(out)
    listed = {row["image"] for row in rows} | {row["audio"] for row in rows}
    return {p.relative_to(out).as_posix() for p in out.glob("*/*/*.*")} == listed


def test_an_interrupted_video_is_redone_cleanly(prepared, videos, tmp_path):
    out = tmp_path / "out"
    _crash(videos[0], out)
    prepare(videos[0], out, **OPTIONS)
    assert (out / "manifest.csv").read_bytes() == (prepared[0] / "manifest.csv").read_bytes()
    assert _files_match_manifest(out)


def test_the_leftovers_of_an_interrupted_video_are_removed(videos, tmp_path):
    import shutil

    folder = shutil.copytree(videos[0], tmp_path / "videos")
    out = tmp_path / "out"
    interrupted = _crash(folder, out)
    (folder / interrupted).unlink()  # the user drops the video it was working on
    summary = prepare(folder, out, **OPTIONS)
    assert interrupted not in {row["source_video"] for row in read_manifest(out)}
    assert summary.videos_already_done == 1
    assert _files_match_manifest(out)


def test_a_full_disk_stops_prepare_with_one_line_and_keeps_the_finished_videos(prepared, videos, tmp_path,
                                                                               monkeypatch):
    import errno

    from zoo.errors import StorageError
    from zoo.prepare import video_pairs

    out, real_write = tmp_path / "out", video_pairs.write_wav

    def full_after_the_first_video(path, pcm, rate):
        state = out / STATE_FILE
        if state.exists() and json.loads(state.read_text())["videos"]:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, pcm, rate)

    monkeypatch.setattr(video_pairs, "write_wav", full_after_the_first_video)
    with pytest.raises(StorageError) as caught:
        prepare(videos[0], out, **OPTIONS)
    message = str(caught.value)
    assert "No space left on device" in message and "preprocessed_frame_" in message and "\n" not in message
    assert len(json.loads((out / STATE_FILE).read_text())["videos"]) == 1
    assert _files_match_manifest(out)  # the unfinished video's files are gone, the finished one's kept
    monkeypatch.undo()
    prepare(videos[0], out, **OPTIONS)  # with room again, it finishes where it stopped
    assert (out / "manifest.csv").read_bytes() == (prepared[0] / "manifest.csv").read_bytes()


def test_out_folder_not_made_by_prepare_is_refused(videos, tmp_path):
    (tmp_path / "keep.txt").write_text("someone's data")
    with pytest.raises(UsageError, match="not made by prepare"):
        prepare(videos[0], tmp_path, **OPTIONS)


def test_cli_prepare_from_a_csv(videos, tmp_path):
    from typer.testing import CliRunner

    import main

    folder, heads = videos
    key = sorted(heads)[0]
    table = tmp_path / "videos.csv"
    table.write_text(f"identity,path\n{heads[key].identity},{heads[key].path}\nsomeone,missing.mp4\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(main.app, ["prepare", str(table), str(out), "--windows", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "pairs written" in result.output and "file not found" in result.output
    rows = read_manifest(out)
    assert 1 <= len(rows) <= 3 and {r["split"] for r in rows} == {"train"}


@pytest.mark.parametrize("make_input, code, words", [
    (lambda d: d / "absent", 1, "VIDEOS folder not found"),
    (lambda d: d, 1, "no videos found"),
    (lambda d: (d / "v.csv").write_bytes(b"\xff\xfe\x00bad") and d / "v.csv", 1, "unreadable CSV"),
    (lambda d: (d / "v.csv").write_text("only-one-field\n") and d / "v.csv", 1, "line 1"),
])
def test_cli_bad_inputs_give_one_line_and_an_exit_code(tmp_path, make_input, code, words):
    from typer.testing import CliRunner

    import main

    source = make_input(tmp_path)
    result = CliRunner().invoke(main.app, ["prepare", str(source), str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == code
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0]


def test_bad_options_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="--windows"):
        prepare(tmp_path, tmp_path / "out", windows=0)
    with pytest.raises(UsageError, match="--context-seconds"):
        prepare(tmp_path, tmp_path / "out", context_seconds=0.5, window_seconds=1.0)
    with pytest.raises(DataError):
        prepare(tmp_path / "absent", tmp_path / "out")


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_stream_resampler_equals_resampling_the_whole_signal(rate):
    from scipy.signal import resample_poly
    from math import gcd

    signal = np.random.default_rng(rate).standard_normal(rate * 3).astype(np.float32)
    resampler = StreamResampler(rate, 16000, block=4000)
    pieces = [resampler.feed(block) for block in np.array_split(signal, 29)] + [resampler.flush()]
    streamed = np.concatenate(pieces)
    g = gcd(rate, 16000)
    whole = resample_poly(signal, 16000 // g, rate // g)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_windows_stay_inside_the_context_and_the_soundtrack():
    from zoo.prepare.runner import PrepareOptions

    options = PrepareOptions(windows=50, context_seconds=4.0, window_seconds=1.0)
    rng = np.random.default_rng(0)
    available = 10 * 16000
    for centre in (0, 16000, 80000, available - 1):
        starts = window_starts(centre, available, options, rng)
        assert starts.min() >= 0 and starts.max() + 16000 <= available
        low = min(max(0, centre - 32000), available - 64000)
        assert starts.min() >= low and starts.max() + 16000 <= low + 64000
    assert window_starts(available, available, options, rng) is None  # frame after the audio ends
    assert window_starts(100, 8000, options, rng) is None  # half a second of audio: no window


def test_build_prepared_folder_gives_both_splits_for_later_tests(youtubers_root, tmp_path):
    from talking_heads import build_prepared_folder

    out, summary, heads = build_prepared_folder(youtubers_root, tmp_path, seconds=2.0, windows=1)
    assert summary.failures == [] and summary.pairs_written == summary.faces_kept >= len(heads)
    assert {row["split"] for row in read_manifest(out)} == {"train", "test"}


def test_square_crops_grow_by_the_margin_and_stay_inside_the_frame():
    from zoo.media.faces import Face, square_crop_box

    middle = square_crop_box(Face(100, 80, 50, 5.0), 320, 240, margin=0.2)
    assert (middle.size, middle.x, middle.y) == (70, 90, 70)  # 50 px + 10 px on each side
    corner = square_crop_box(Face(0, 0, 50, 5.0), 320, 240, margin=0.2)
    assert (corner.x, corner.y, corner.size) == (0, 0, 70)  # shifted in, not cut
    huge = square_crop_box(Face(20, 10, 220, 5.0), 320, 240, margin=0.5)
    assert huge.size == 240 and 0 <= huge.x <= 320 - 240 and huge.y == 0


def test_detection_looks_coarse_first_and_fine_enough_for_min_face():
    from zoo.media.faces import CASCADE_WINDOW, detection_levels

    for width, height, min_face in ((1920, 1080, 64), (640, 360, 64), (240, 180, 64), (1280, 720, 200)):
        levels = detection_levels(width, height, min_face)
        assert [lvl[2] for lvl in levels] == sorted(lvl[2] for lvl in levels)  # coarse to fine
        assert min_face * levels[-1][2] >= CASCADE_WINDOW  # the smallest face still fills the window
        assert all(w % 2 == 0 and h % 2 == 0 and w <= width for w, h, _ in levels)
    assert len(detection_levels(1920, 1080, 64)) == 2


def test_two_training_steps_run_on_the_prepared_output(prepared, tmp_path):
    from train_helpers import run_trainer, weights

    out, _, _, _ = prepared
    result = run_trainer(tmp_path, dataset="youtubers", data=str(out), dataset_args={}, batch_size=2,
                         clip_seconds=1.0, max_steps=2)
    assert result.step == 2
    assert all(torch.isfinite(t).all() for t in weights(result.last_checkpoint).values())
    config = json.loads((result.run_dir / "config.json").read_text())
    assert len(config["model"]["identities"]) == 2
    # the youtubers reader serves prepare's RGB crops as they are, never red/blue swapped
    import registry
    from zoo.media.images import load_face, to_tensor

    data = registry.create("dataset", "youtubers", root=str(out), split="train", image_size=64)
    stored = to_tensor(load_face(data.pairs[0].image, 64, swap_channels=False))
    assert torch.equal(data[0]["image"], stored)
