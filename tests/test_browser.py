"""The dashboard and the simulation report in a real headless Chromium (Debian's package),
driven by Playwright with the system browser (no browser download). Without Chromium or
Playwright these tests skip; CI installs both. Screenshots go to $HADIS_ARTIFACTS
(default: test-artifacts/)."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from hadis.cli.main import app as cli
from hadis.profiles import load_profile
from hadis.serve import ServeConfig, build_app
from tests.serve_helpers import running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("HADIS_REQUIRE_BROWSER") == "1"  # CI sets it: never skip there
if CHROMIUM is None:
    if REQUIRED:
        raise RuntimeError("HADIS_REQUIRE_BROWSER=1 but no Chromium (apt-get install chromium)")
    pytest.skip("no Chromium on this machine (apt-get install chromium)", allow_module_level=True)
if REQUIRED:
    from playwright import sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.slow
ARTIFACTS = Path(os.environ.get("HADIS_ARTIFACTS", "test-artifacts"))
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _page(browser, width: int = 1280, height: int = 1000):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


def _points(n: int) -> str:
    """JS: the arrivals chart exists and holds at least n points (null-safe: the page
    builds its charts only after its first fetch)."""
    svg = "document.querySelector('#panel-arrivals svg')"
    return f"{svg} !== null && Number({svg}.dataset.points) >= {n}"


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _server(**config):
    profile = load_profile("hadis-l40s")
    config.setdefault("initial_demand_qps", 0.2)
    cfg = ServeConfig(workers=8, slo_s=60, time_scale=0.01, replan_period_s=50, **config)
    return build_app(
        profile, cfg, executor="profile", router="reference", discriminator="reference"
    )


def _load(base: str, stop: threading.Event, headers: dict[str, str] | None = None) -> None:
    """Requests back to back from two threads until stopped."""

    def run() -> None:
        with httpx.Client(timeout=30, headers=headers) as client:
            i = 0
            while not stop.is_set():
                client.post(f"{base}/v1/images/generations", json={"prompt": f"a cat {i}"})
                i += 1

    threads = [threading.Thread(target=run, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()


def test_dashboard_fills_live_shows_plan_changes_and_the_playground_works(browser) -> None:
    stop = threading.Event()
    # the first plan is made for 3 q/s; two clients back to back bring far less, so a
    # re-plan changes the plan
    with running_server(_server(gallery=4, initial_demand_qps=3.0)) as base:
        page, errors = _page(browser)
        page.goto(f"{base}/dashboard")
        page.wait_for_selector("#panel-arrivals svg")
        _load(base, stop)
        try:
            # charts fill with live points, and the load shows up in them
            page.wait_for_function(_points(4), timeout=30_000)
            page.wait_for_function(
                "document.querySelector('#panel-outcomes .legend') !== null && "
                "document.querySelector('#panel-outcomes .legend')"
                ".textContent.includes('ok (200)')",
                timeout=30_000,
            )
            # a plan change beyond the first plan reaches the timeline
            page.wait_for_selector(
                "#timeline li[data-reason='period'], #timeline li[data-reason='backlog']",
                timeout=30_000,
            )
            assert page.locator(".worker").count() == 8
            # the playground: an image and the path it took
            page.fill("#prompt", "a red ball on the grass")
            page.click("#generate")
            page.wait_for_selector("#result-image", timeout=20_000)
            path = page.inner_text("#result-meta td[data-field='path']")
            assert path in ("light", "direct-heavy", "escalated")
            assert page.eval_on_selector("#result-image", "img => img.naturalWidth") > 0
            page.wait_for_selector("#gallery figure", timeout=10_000)
            _shot(page, "dashboard.png")
        finally:
            stop.set()
        phone, phone_errors = _page(browser, 390, 844)
        phone.goto(f"{base}/dashboard")
        phone.wait_for_function(_points(2), timeout=30_000)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
        _shot(phone, "dashboard-phone.png")
        assert errors == [] and phone_errors == []


def test_dashboard_asks_for_the_api_key_when_auth_is_on(browser) -> None:
    with running_server(_server(api_keys=("sesame",))) as base:
        page, errors = _page(browser)
        page.goto(f"{base}/dashboard")
        page.wait_for_selector("#keybar.show", timeout=30_000)
        assert page.locator("#panel-arrivals").count() == 0  # no data without the key
        page.fill("#key", "sesame")
        page.click("#keybtn")
        page.wait_for_function(_points(2), timeout=45_000)
        # the 401 of the first try is the only console error (the browser logs it)
        assert all("401" in e for e in errors), errors


def test_report_page_opens_from_disk_and_shows_every_policy(browser, tmp_path: Path) -> None:
    out = tmp_path / "sim"
    res = CliRunner().invoke(cli, ["simulate", "--profile", "demo-cpu", "--out", str(out)])
    assert res.exit_code == 0, res.output
    page, errors = _page(browser, 1200, 900)
    page.goto((out / "report.html").as_uri())
    policies = ["hadis", "diffserve", "proteus", "infaas-acc", "clipper-light", "clipper-heavy"]
    rows = page.eval_on_selector_all(
        "#results tr[data-policy]", "rs => rs.map(r => r.dataset.policy)"
    )
    assert rows == [*policies, "oracle (reference)"]
    legend = page.inner_text("#chart-violations .legend")
    assert all(p in legend for p in policies)
    # hovering a window reads every policy's value there
    page.locator("#chart-quality svg").hover(position={"x": 600, "y": 100})
    tip = page.inner_text("#chart-quality .tip")
    assert all(f"{p}:" in tip for p in policies), tip
    _shot(page, "report.png")
    assert errors == []
