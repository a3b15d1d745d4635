"""serve: the demo page's routes through Starlette's test client, with a tiny untrained checkpoint.

Good audio gives the same faces ``generate`` draws; every kind of bad audio gets the CLI's
reason naming the user's file; oversized and overlong uploads, wrong methods and missing
checkpoints are one JSON line with a 4xx status; nothing is left on disk.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import tempfile
import threading
import time

import numpy as np
import pytest
from starlette.testclient import TestClient

from datatrees import BAD_KINDS, tone, write_audio, write_bad_audio, write_opus
from fake_pipelines import tiny_checkpoint
from train_helpers import run_cli
from zoo.generate import Drawer, GenerateOptions, interpolate
from zoo.media.audio import load_audio
from zoo.media.images import decode_image
from zoo.model.pipeline import FacePipeline
from zoo.serve.app import create_app
from zoo.serve.faces import FaceService

UPLOADABLE_BAD_KINDS = [k for k in BAD_KINDS if k not in ("missing", "directory")]  # a browser sends bytes


@pytest.fixture(scope="module")
def client(tiny_runs):
    with TestClient(create_app(FaceService(tiny_runs, device="cpu"))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return write_audio(tmp_path_factory.mktemp("speech") / "hello.wav", tone(1.0, freq=180.0))


def post_clip(client, path, name=None, route="/api/face", **fields):
    with open(path, "rb") as handle:
        return client.post(route, files={"audio": (name or path.name, handle.read())}, data=fields)


def pixels(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    return decode_image(base64.b64decode(data_url.split(",", 1)[1]))


def test_the_page_and_its_files_come_from_the_app_itself(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text and client.get(asset).status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # no CDN


def test_checkpoints_are_the_runs_and_the_one_given(tmp_path):
    given = tiny_checkpoint(tmp_path / "given")
    broken = tmp_path / "runs" / "broken" / "checkpoints" / "last"
    broken.mkdir(parents=True)
    (broken / "model.safetensors").write_bytes(b"not a checkpoint")
    service = FaceService(tmp_path / "runs", checkpoint=str(given), device="cpu")
    with TestClient(create_app(service)) as client:
        body = client.get("/api/checkpoints").json()
    assert [c["id"] for c in body["checkpoints"]] == [str(given), "broken"]
    assert body["checkpoints"][0]["label"].endswith("(wave_cnn + dcgan, 64 px)")
    assert "not a readable safetensors checkpoint" in body["checkpoints"][1]["error"]
    assert body["limits"] == {"max_bytes": 20 * 2**20, "max_seconds": 60.0, "steps": [2, 16]}


def test_good_audio_gives_the_faces_generate_draws(client, tiny_runs, speech, tmp_path):
    response = post_clip(client, speech, checkpoint="tiny-run")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["file"] == "hello.wav" and body["windows"] == 7 and body["seconds"] == pytest.approx(1.0)
    assert body["latency_s"] > 0
    pipeline = FacePipeline.from_checkpoint(tiny_runs / "tiny-run", device="cpu")
    expected = Drawer(pipeline, GenerateOptions()).draw_file(speech, "hello", tmp_path)
    assert np.array_equal(pixels(body["face"]), decode_image(expected.outputs[0]))
    assert np.array_equal(pixels(body["windows_image"]), decode_image(expected.outputs[1]))


def test_a_browser_recording_draws_and_the_model_is_loaded_once(tiny_runs, monkeypatch, tmp_path):
    loads = []
    original = FacePipeline.from_checkpoint
    monkeypatch.setattr(FacePipeline, "from_checkpoint", lambda *a, **k: loads.append(a) or original(*a, **k))
    recording = write_opus(tmp_path / "recording-1.webm", tone(0.5, 48000, 200))
    with TestClient(create_app(FaceService(tiny_runs, device="cpu"))) as client:
        first, second = (post_clip(client, recording).json() for _ in range(2))
    assert len(loads) == 1 and first["load_s"] > 0 and second["load_s"] == 0
    assert first["file"] == "recording-1.webm" and first["seconds"] == pytest.approx(0.5, abs=0.03)
    assert np.array_equal(pixels(first["face"]), pixels(second["face"]))


@pytest.mark.parametrize("kind", UPLOADABLE_BAD_KINDS)
def test_each_bad_audio_kind_gets_the_cli_reason(client, tmp_path, kind):
    path, expected = write_bad_audio(tmp_path, kind)
    with pytest.raises(expected) as caught:
        load_audio(path, 16000, normalise=False)
    response = post_clip(client, path)
    assert response.status_code == 422
    assert response.json() == {"error": str(caught.value).replace(str(path), path.name)}


def test_an_upload_over_the_size_limit_is_refused(client):
    response = client.post("/api/face", files={"audio": ("big.wav", b"\0" * (21 * 2**20))})
    assert response.status_code == 413
    assert response.json()["error"].startswith("the upload is 21.0 MB, over the 20 MB limit")


def test_a_body_sent_in_chunks_is_cut_at_the_limit(tiny_runs):
    # straight through ASGI: the test client would read a streamed body whole before sending it
    app = create_app(FaceService(tiny_runs, device="cpu"), max_bytes=2**20)
    head = b'--x\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
    received, replies = [], []

    async def receive():
        received.append(1)
        body = head if len(received) == 1 else b"\0" * 2**16
        return {"type": "http.request", "body": body, "more_body": len(received) < 64}  # 4 MB in all

    async def send(message):
        replies.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/face", "raw_path": b"/api/face", "query_string": b"",
             "headers": [(b"content-type", b"multipart/form-data; boundary=x")], "http_version": "1.1",
             "scheme": "http", "server": ("testserver", 80), "client": ("testclient", 1), "root_path": ""}
    asyncio.run(app(scope, receive, send))
    assert replies[0]["status"] == 413
    error = json.loads(b"".join(m.get("body", b"") for m in replies[1:]))["error"]
    assert error.startswith("the upload is over the 1 MB limit")
    assert len(received) <= 2**20 // 2**16 + 2  # refused at the limit, not after the whole body


def test_a_clip_over_the_length_limit_is_refused(client, tmp_path):
    long = write_audio(tmp_path / "lecture.wav", tone(61.0, rate=8000), rate=8000)
    response = post_clip(client, long)
    assert response.status_code == 413
    assert response.json()["error"] == "lecture.wav: the clip lasts 61.0 s, over the 60 s limit; send a shorter clip"


def test_wrong_method_unknown_route_and_missing_field(client, speech):
    wrong = client.get("/api/face")
    assert wrong.status_code == 405 and wrong.json() == {"error": "GET /api/face: Method Not Allowed"}
    assert "POST" in wrong.headers["allow"]
    assert client.get("/api/nothing").json() == {"error": "GET /api/nothing: Not Found"}
    missing = client.post("/api/face", data={"checkpoint": "tiny-run"})
    assert missing.status_code == 400 and "file field 'audio'" in missing.json()["error"]
    steps = client.post("/api/interpolate", files={"first": ("a.wav", speech.read_bytes()),
                                                   "second": ("b.wav", speech.read_bytes())}, data={"steps": "1"})
    assert steps.status_code == 400 and steps.json() == {"error": "steps must be between 2 and 16, not 1"}


def test_a_missing_checkpoint_is_a_404_line(client, speech, tmp_path):
    unknown = post_clip(client, speech, checkpoint="no-such-run")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "no checkpoint 'no-such-run' here; choose one of: tiny-run"}
    with TestClient(create_app(FaceService(tmp_path / "empty", device="cpu"))) as empty:
        assert empty.get("/api/checkpoints").json()["checkpoints"] == []
        none = post_clip(empty, speech)
    assert none.status_code == 404 and "train one with `python main.py train`" in none.json()["error"]


def test_serve_refuses_a_missing_checkpoint_with_one_line(tmp_path):
    result = run_cli(["serve", "--checkpoint", str(tmp_path / "nowhere"), "--port", "0"])
    assert result.returncode == 1 and result.stderr == f"error: {tmp_path / 'nowhere'}: no such checkpoint file or folder\n"


def test_serve_refuses_a_port_in_use_with_one_line(tiny_runs):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--runs-dir", str(tiny_runs), "--port", str(port)])
    assert result.returncode == 2
    assert result.stderr == (f"error: cannot listen on 127.0.0.1:{port} (Address already in use); "
                             "choose another --port or --host\n")


def test_two_clips_give_the_interpolation_strip_generate_draws(client, tiny_runs, speech, tmp_path):
    other = write_audio(tmp_path / "other.wav", tone(0.5, freq=90.0))
    response = client.post("/api/interpolate", data={"steps": "5"},
                           files={"first": ("hello.wav", speech.read_bytes()), "second": ("other.wav", other.read_bytes())})
    assert response.status_code == 200, response.text
    assert response.json()["files"] == ["hello.wav", "other.wav"]
    pipeline = FacePipeline.from_checkpoint(tiny_runs / "tiny-run", device="cpu")
    expected = interpolate(pipeline, speech, other, 5, tmp_path, GenerateOptions())
    assert np.array_equal(pixels(response.json()["strip"]), decode_image(expected))


def test_nothing_is_left_on_disk(tiny_runs, speech, tmp_path, monkeypatch):
    temporary = tmp_path / "temporary"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    before = sorted(p for p in tiny_runs.rglob("*"))
    bad, _ = write_bad_audio(tmp_path, "text")
    with TestClient(create_app(FaceService(tiny_runs, device="cpu"))) as client:
        assert post_clip(client, speech).status_code == 200 and post_clip(client, bad).status_code == 422
    assert list(temporary.iterdir()) == [] and sorted(p for p in tiny_runs.rglob("*")) == before


def test_a_bug_is_one_500_line_and_the_server_goes_on(tiny_runs, speech, monkeypatch):
    service = FaceService(tiny_runs, device="cpu")
    monkeypatch.setattr(service, "face", lambda *a: 1 / 0)
    with TestClient(create_app(service)) as client:
        broken = post_clip(client, speech)
        assert broken.status_code == 500
        assert broken.json() == {"error": "internal error: ZeroDivisionError: division by zero"}
        assert client.get("/api/checkpoints").status_code == 200


def test_drawing_runs_beside_the_page_not_in_front_of_it(tiny_runs, speech, monkeypatch):
    service = FaceService(tiny_runs, device="cpu")
    release, answered = threading.Event(), {}
    original = service.face

    def slow_face(*args):
        assert release.wait(timeout=20), "the page was not served while drawing"
        return original(*args)

    monkeypatch.setattr(service, "face", slow_face)
    with TestClient(create_app(service)) as client:
        drawing = threading.Thread(target=lambda: answered.update(face=post_clip(client, speech)))
        drawing.start()
        time.sleep(0.2)
        assert client.get("/api/checkpoints").status_code == 200  # served while the face is drawn
        assert client.get("/").status_code == 200
        release.set()
        drawing.join(timeout=30)
    assert answered["face"].status_code == 200


def test_error_lines_never_name_the_temporary_folder(client, tmp_path):
    path, _ = write_bad_audio(tmp_path, "silent")
    error = post_clip(client, path, name="../../etc/My Voice.wav").json()["error"]
    assert error.startswith("My Voice.wav: the clip is silent") and "wav2pix-serve" not in error
