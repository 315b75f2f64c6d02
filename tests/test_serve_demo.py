"""``labkit demo``: the Streamlit page run in-process (AppTest) and in a real headless browser
(Playwright driving Debian's chromium), with the screenshot saved to artifacts/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import require_debian_package
from pipeline_models import tiny_config

from labkit.artifacts import artifacts_dir
from labkit.data.synth import default_root

pytest.importorskip("streamlit")
CHROMIUM = Path(os.environ.get("LABKIT_CHROMIUM", "/usr/bin/chromium"))
APP = Path(__file__).resolve().parents[1] / "labkit" / "serve" / "demo_app.py"
SEQ = default_root() / "sequences" / "test" / "seq07"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SEQ.is_dir():
        pytest.skip(f"generated sequence not found at {SEQ} (make data)")
    return tiny_config(tmp_path_factory.mktemp("demo_models"),
                       tracker={"min_hits": 1, "high_score": 0.001, "low_score": 0.0, "new_track_score": 0.001})


def test_page_runs_the_example_frame_and_clip(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LABKIT_DEMO_CONFIG", str(config))
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    assert not at.exception and at.title[0].value == "Capstone pipeline demo"
    assert at.radio[0].value.startswith("embedded frame")
    at.button[0].click().run()
    assert not at.exception
    summary = [m.value for m in at.markdown if "objects**" in m.value]
    assert summary and int(summary[0].split("**")[1].split()[0]) > 0  # the tiny detector finds boxes at conf 0.001
    at.radio[0].set_value(at.radio[0].options[1]).run()
    at.slider[0].set_value(5).run()
    at.button[0].click().run()
    assert not at.exception
    lines = [m.value for m in at.markdown if "frames**" in m.value]
    assert lines and lines[0].startswith("**5 frames**") and "0 track ids" not in lines[0]


def test_browser_shows_the_overlay(config: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    require_debian_package("chromium", CHROMIUM.is_file(), f"the demo's browser test looks for {CHROMIUM}")
    from labkit.serve.process import ServerProcess

    shot = artifacts_dir() / "demo_ui.png"
    shot.unlink(missing_ok=True)
    with ServerProcess(config, command="demo", timeout_s=180) as server, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(server.url, timeout=120_000)
        page.get_by_text("Capstone pipeline demo").wait_for(timeout=120_000)
        page.get_by_role("button", name="Run").click()
        page.get_by_text("overlay:").wait_for(timeout=180_000)
        widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        assert 320 in widths  # the overlay: the 320x240 frame with the objects drawn on it
        assert "objects" in page.inner_text("body")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.is_file() and shot.stat().st_size > 10_000
