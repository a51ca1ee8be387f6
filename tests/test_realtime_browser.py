"""The voice page (connections/realtime/page) in a real headless Chromium, against the real server and models:
a spoken question goes in through Chromium's fake microphone, the reply comes back as text and played audio."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.measures import words
from benchmarks.server import free_port
from tests.conftest import ROOT, ServerProcess
from tests.speech import espeak, with_silence
from utils.audio import SAMPLE_RATE

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
FAKE_MIC_RATE = 48000  # what Chromium's fake capture reads most surely: 16-bit PCM at 48 kHz
# (Germany, not France: tiny.en often hears espeak's "of France" as "and friends")
QUESTION = "What is the capital of Germany?"

# The first turn has both sides, its reply has been played, and the server has finished it (or the page failed).
FIRST_TURN_ANSWERED = """() => {
  const s = window.s2s, turn = s && s.turns[0];
  if (document.body.dataset.state === "error") return true;
  return Boolean(turn && turn.user && turn.assistant && s.audioDeltas > 0 && turn.playedMs > 0
                 && s.playedMs > 0 && !["speaking", "thinking", "replying"].includes(turn.status));
}"""


def sync_playwright():
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} (bash scripts/install_browser.sh)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("needs playwright (bash scripts/install_browser.sh)")
    return sync_playwright


def fake_microphone_wav(path: Path, samples: np.ndarray, after_s: float = 10.0) -> Path:
    """`samples` (int16, 16 kHz) as the WAV Chromium's fake microphone plays: 48 kHz 16-bit, with `after_s` of
    silence after it, since Chromium plays the file in a loop and the reply must come before the question again."""
    import soundfile as sf
    import soxr

    audio = with_silence(samples, before_s=1.0, after_s=after_s).astype(np.float32) / 32768
    sf.write(str(path), soxr.resample(audio, SAMPLE_RATE, FAKE_MIC_RATE), FAKE_MIC_RATE, subtype="PCM_16")
    return path


def talk_through_page(url: str, wav: Path, screenshot: Path, timeout_s: float = 90.0) -> dict:
    """Opens the page at `url` in headless Chromium with `wav` as the microphone, presses Start, waits until the
    first turn is answered and played (or `timeout_s` has passed), saves a screenshot and returns `window.s2s` with
    the page's state, its status line, its console messages and whether it timed out."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    log: list[str] = []
    with sync_playwright()() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 900, "height": 720})
            page.on("console", lambda m: log.append(f"console.{m.type}: {m.text}"))
            page.on("pageerror", lambda e: log.append(f"page error: {e}"))
            page.goto(url)
            page.get_by_role("button", name="Start").click()
            started = time.monotonic()
            try:
                page.wait_for_function(FIRST_TURN_ANSWERED, timeout=timeout_s * 1000, polling=250)
                timed_out = False
            except PlaywrightTimeout:
                timed_out = True
            result = page.evaluate("window.s2s")
            result.pop("session", None)  # the server's settings: long, and not what is checked
            result.update(
                body_state=page.evaluate("document.body.dataset.state"),
                status_line=page.locator("#status").inner_text(),
                waited_s=round(time.monotonic() - started, 1),
                timed_out=timed_out,
                log=log,
            )
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return result


@pytest.fixture(scope="module")
def realtime_server():
    sync_playwright()  # skips before the server starts when the browser is missing
    port = free_port()
    srv = ServerProcess("--realtime_port", str(port))
    srv.realtime_port = port
    yield srv
    srv.stop()


def test_the_page_answers_a_spoken_question(realtime_server, tmp_path):
    wav = fake_microphone_wav(tmp_path / "question.wav", espeak(QUESTION))
    page = talk_through_page(f"http://localhost:{realtime_server.realtime_port}/", wav, ARTIFACTS / "realtime_page.png")
    context = f"page: {page}\nserver stderr:\n" + "\n".join(realtime_server.stderr[-30:])

    assert not page["timed_out"], f"no answered turn after {page['waited_s']} s; " + context
    assert page["body_state"] == "listening", context
    assert page["state"] == "listening" and not page["error"], context
    assert not [line for line in page["log"] if line.startswith("page error")], context
    turn = page["turns"][0]
    assert {"capital", "germany"} & set(words(turn["user"])), context
    assert re.search(r"[A-Za-z]{2,}", turn["assistant"]), context
    assert page["audioDeltas"] > 0 and page["playedMs"] > 0 and turn["playedMs"] > 0, context
    assert turn["status"] in ("done", "interrupted"), context
    # from the speech_stopped event, and from the end of the speech in the audio the page sent (audio_end_ms)
    assert turn["latencyMs"] is not None and 0 < turn["latencyMs"] < 30000, context
    assert turn["speechEndLatencyMs"] is not None and 100 < turn["speechEndLatencyMs"] < 30000, context
