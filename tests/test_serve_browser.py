"""serve in a real browser: headless Chromium, driven by Selenium, on a live ``python main.py serve``.

The server is a real process on 127.0.0.1 (``--port 0``: the port it found is read from its
first line) with a tiny untrained checkpoint; Chromium gets a fake microphone, so recording
goes through MediaRecorder and the WebM decoding exactly as a person's would. The tests skip,
saying why, where Chromium, its driver or Selenium cannot be found (``.ci/run`` installs them).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from conftest import REPO_ROOT
from datatrees import tone, write_audio
from train_helpers import run_cli
from zoo.media.images import decode_image

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1000,1100", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
WAIT = 60  # seconds for a face on a busy machine


def _chromium() -> tuple[str, str]:
    """Chromium's binary and driver, or a skip saying what is missing."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
    binary = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        missing = " and ".join(n for n, p in (("Chromium", binary), ("chromedriver", driver)) if p is None)
        pytest.skip(f"no {missing} found (apt-get install chromium chromium-driver)")
    return binary, driver


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="wav2pix-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    yield chrome
    chrome.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tiny_runs):
    """A live ``serve`` process on a free port; its address. It must stop cleanly on Ctrl-C."""
    environment = {**os.environ, "WAV2PIX_ZOO_PLUGINS": ""}
    process = subprocess.Popen([sys.executable, "main.py", "serve", "--runs-dir", str(tiny_runs), "--port", "0",
                                "--device", "cpu"], cwd=REPO_ROOT, env=environment, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(120, process.kill)  # a server that never says where it is
    watchdog.start()
    first = process.stdout.readline()
    watchdog.cancel()
    found = re.match(r"serving (http://127\.0\.0\.1:\d+/)", first)
    assert found, f"serve did not start: {first!r} {process.stderr.read() if process.poll() is not None else ''}"
    yield found.group(1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in err, err


def open_page(browser, url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, WAIT).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#checkpoint option"))
    return By, WebDriverWait


def shown(browser, By, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def wait_for_face(browser, By, WebDriverWait, caption_start: str) -> None:
    """Wait until the page shows a face for the clip named ``caption_start``, or an error."""
    WebDriverWait(browser, WAIT).until(
        lambda b: shown(b, By, "caption").startswith(caption_start) or shown(b, By, "error"))
    assert shown(browser, By, "error") == ""


def face_pixels(browser, By, element_id: str):
    source = browser.find_element(By.ID, element_id).get_attribute("src")
    assert source.startswith("data:image/png;base64,")
    return decode_image(base64.b64decode(source.split(",", 1)[1]))


def test_upload_a_clip_and_see_the_face(browser, server, tmp_path):
    clip = write_audio(tmp_path / "hello.wav", tone(1.0, freq=180.0))
    By, WebDriverWait = open_page(browser, server)
    assert shown(browser, By, "checkpoint").startswith("tiny-run (wave_cnn + dcgan, 64 px)")
    browser.find_element(By.ID, "file").send_keys(str(clip))
    wait_for_face(browser, By, WebDriverWait, "hello.wav")
    assert shown(browser, By, "caption") == "hello.wav: 1.00 s, 7 windows"
    assert re.fullmatch(r"drawn in \d+\.\d\d s \(model loaded in \d+\.\d\d s\)", shown(browser, By, "status"))
    assert face_pixels(browser, By, "face").shape == (64, 64, 3)
    assert browser.find_element(By.ID, "windows").is_displayed()
    screenshot = tmp_path / "serve.png"
    assert browser.save_screenshot(str(screenshot))
    assert decode_image(screenshot).shape[1] >= 900


def test_a_bad_or_oversized_file_shows_one_line(browser, server, tiny_runs, tmp_path):
    notes = tmp_path / "notes.wav"
    notes.write_text("a shopping list, not a recording\n" * 20)
    cli = run_cli(["generate", str(notes), "--checkpoint", str(tiny_runs / "tiny-run"), "--out", str(tmp_path / "out")])
    [failed] = [line for line in cli.stdout.splitlines() if line.startswith("failed ")]
    reason = failed.removeprefix(f"failed {notes}: ")
    By, WebDriverWait = open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(notes))
    WebDriverWait(browser, WAIT).until(lambda b: shown(b, By, "error"))
    assert shown(browser, By, "error") == f"notes.wav: {reason}"
    assert "not a recognised audio file" in reason
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * (21 * 2**20))
    browser.find_element(By.ID, "file").send_keys(str(big))
    WebDriverWait(browser, WAIT).until(lambda b: shown(b, By, "error").startswith("big.wav"))
    assert shown(browser, By, "error") == ("big.wav: the upload is 21.0 MB, over the 20 MB limit; "
                                           "send a shorter clip or a compressed one (ogg, mp3, webm)")


def test_record_from_the_microphone_then_interpolate(browser, server, tmp_path):
    clip = write_audio(tmp_path / "first.wav", tone(0.5, freq=120.0))
    By, WebDriverWait = open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(clip))
    wait_for_face(browser, By, WebDriverWait, "first.wav")
    browser.find_element(By.ID, "record").click()  # Chromium's fake microphone: a beeping tone
    WebDriverWait(browser, WAIT).until(lambda b: shown(b, By, "record") == "■ Stop")
    time.sleep(1.2)
    browser.find_element(By.ID, "record").click()
    wait_for_face(browser, By, WebDriverWait, "recording-2.webm")
    # one face or several, with a note where generate adds one (e.g. the fake microphone's pauses)
    assert re.fullmatch(r"recording-2\.webm: \d\.\d\d s(, \d+ windows)?( \(.+\))?", shown(browser, By, "caption"))
    browser.find_element(By.ID, "interpolate").click()
    WebDriverWait(browser, WAIT).until(lambda b: shown(b, By, "strip-caption") or shown(b, By, "error"))
    assert shown(browser, By, "strip-caption") == "first.wav → recording-2.webm, 8 faces"
    strip = face_pixels(browser, By, "strip")
    assert strip.shape[1] > 7 * strip.shape[0]  # eight faces side by side
