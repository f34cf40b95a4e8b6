"""The app in a real browser: Debian chromium driven by playwright, with every non-local request blocked.

It starts ``streamlit run app.py`` on a free loopback port, waits for the Leaflet map inside the
streamlit-folium component, clicks a point, expects the designation verdict, and saves a screenshot
to ``test-artifacts/``. A second test opens the exported ``map.html`` from a loopback server the same
way: nothing outside asked for, Leaflet started, the inline street layer drawn, no console error.
Skipped with a reason when chromium or playwright is missing (``scripts/test.sh`` installs both).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from browser import CHROMIUM, NO_CHROMIUM, is_loopback, local_page

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser_workspace(tmp_path_factory) -> Path:
    """The served app's workspace folder (its project files)."""
    return tmp_path_factory.mktemp("workspace")


def started_app(env: dict, address: str) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` bound to ``address`` on a free port, once it answers; (process, loopback URL)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", address, "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"streamlit did not start: {process.stdout.read().decode(errors='replace')[-2000:]}")
    return process, url


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, browser_workspace):
    env = {**os.environ, "PHARMACY_PLANNER_CACHE": str(tmp_path_factory.mktemp("cache")),
           "PHARMACY_PLANNER_WORKSPACE": str(browser_workspace)}
    process, url = started_app(env, "127.0.0.1")
    yield url
    process.terminate()
    process.wait(timeout=20)


def test_beyond_loopback_the_app_refuses_without_accounts_and_signs_in_with_them(tmp_path):
    """Bound to every interface: without accounts the page says how to set them up and shows nothing else;
    once an account exists, a wrong password is refused and the right one opens the app."""
    playwright = pytest.importorskip("playwright.sync_api")
    from planning.accounts import add_user

    folder = tmp_path / "workspace"
    env = {**os.environ, "PHARMACY_PLANNER_CACHE": str(tmp_path / "cache"), "PHARMACY_PLANNER_WORKSPACE": str(folder)}
    process, url = started_app(env, "0.0.0.0")
    outside: list[str] = []
    try:
        with playwright.sync_playwright() as p:
            browser, page = local_page(p, viewport=(1400, 900), allowed=is_loopback, blocked=outside)
            page.goto(url)
            page.get_by_text("pharmacy-plan add-user").first.wait_for(timeout=60_000)
            assert page.get_by_text("医保定点零售药店布局规划").count() == 0
            add_user(folder / "accounts.toml", "zhang", "planner", "right-password")
            page.reload()
            page.get_by_label("用户名").fill("zhang")
            page.get_by_label("密码").fill("wrong-password")
            page.get_by_role("button", name="登录").click()
            page.get_by_text("用户名或密码不正确").wait_for(timeout=30_000)
            assert page.get_by_text("医保定点零售药店布局规划").count() == 0
            page.get_by_label("密码").fill("right-password")
            page.get_by_role("button", name="登录").click()
            page.get_by_text("医保定点零售药店布局规划").wait_for(timeout=90_000)
            page.get_by_text("已登录：zhang（规划人员）").wait_for(timeout=10_000)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert outside == []


def test_map_renders_offline_and_a_click_gives_a_verdict(app_url):
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    outside_requests: list[str] = []
    local_requests: list[str] = []

    with playwright.sync_playwright() as p:
        browser, page = local_page(p, viewport=(1400, 1000), allowed=is_loopback, blocked=outside_requests,
                                   passed=local_requests)
        started = time.monotonic()
        page.goto(app_url)
        page.get_by_text("医保定点零售药店布局规划").wait_for(timeout=90_000)
        frame = page.frame_locator("iframe[title*='streamlit_folium']")
        frame.locator(".leaflet-container").wait_for(timeout=90_000)
        # Vector layers are drawn on a canvas (prefer_canvas), the streets on their own canvas, circles and
        # uncovered area as images in the raster pane; the legend is plain HTML.
        frame.locator(".leaflet-overlay-pane canvas").first.wait_for(timeout=60_000)
        frame.locator(".leaflet-plannerStreets-pane canvas").first.wait_for(timeout=10_000)
        images = frame.locator(".leaflet-plannerRasters-pane img.leaflet-image-layer")
        images.nth(1).wait_for(timeout=10_000)
        assert images.count() == 2
        frame.locator("#planner-legend").wait_for(timeout=10_000)
        map_seconds = time.monotonic() - started
        container = frame.locator(".leaflet-container")
        box = container.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.45)
        page.get_by_text("核查位置").wait_for(timeout=60_000)
        verdicts = ["禁止新增", "需审核", "优先配置", "允许"]
        body = page.locator("section.main, [data-testid='stMain']").first.inner_text()
        assert any(v in body for v in verdicts), body[-1500:]
        assert "MDJ-2025" in body or "HN-2025" in body or "允许" in body  # verdicts cite their articles
        # Off every feature inside the map (the top-left corner is outside the region), so the click's
        # tooltip closes before the screenshot; then the verdict under the map.
        page.mouse.move(box["x"] + 60, box["y"] + 12, steps=8)
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / "app-map.png"))
        page.get_by_text("核查位置").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "app-verdict.png"))
        # What-if: add a pharmacy at the clicked point; the sidebar counts the edit, the map keeps working.
        page.get_by_role("button", name="在此处新增定点药店（情景）").click()
        page.get_by_text("情景：1 项修改").wait_for(timeout=60_000)
        page.get_by_text("地图与选址核查使用情景结果").wait_for(timeout=10_000)
        images.nth(1).wait_for(timeout=30_000)
        browser.close()
    assert map_seconds < 90
    assert outside_requests == []  # the map needed nothing from the internet
    # The streets came once as a file the app serves, not inside every rerun's map.
    assert any(urlparse(url).path.startswith("/app/static/generated/plannerStreets") for url in local_requests), local_requests


def test_work_survives_a_reload_and_two_browser_contexts_edit_one_project(app_url, browser_workspace):
    """Two sessions (separate browser contexts) on one project each add a pharmacy at a map click: both
    edits and both checks are in the project file, and a reload shows both edits."""
    playwright = pytest.importorskip("playwright.sync_api")
    from planning import workspace

    url = f"{app_url}/?project=browser-shared"
    outside: list[str] = []

    def add_pharmacy_at_a_click(page, x: float, y: float, edits_after: int) -> None:
        page.goto(url)
        frame = page.frame_locator("iframe[title*='streamlit_folium']")
        frame.locator(".leaflet-overlay-pane canvas").first.wait_for(timeout=90_000)
        box = frame.locator(".leaflet-container").bounding_box()
        page.mouse.click(box["x"] + box["width"] * x, box["y"] + box["height"] * y)
        page.get_by_text("核查位置").wait_for(timeout=60_000)
        page.get_by_role("button", name="在此处新增定点药店（情景）").click()
        page.get_by_text(f"情景：{edits_after} 项修改").wait_for(timeout=60_000)

    with playwright.sync_playwright() as p:
        browser, first = local_page(p, viewport=(1400, 900), allowed=is_loopback, blocked=outside)
        second_context = browser.new_context(viewport={"width": 1400, "height": 900})
        second = second_context.new_page()
        second.route("**/*", lambda route: route.continue_() if is_loopback(route.request.url)
                     else (outside.append(route.request.url), route.abort()))
        add_pharmacy_at_a_click(first, 0.5, 0.45, 1)
        add_pharmacy_at_a_click(second, 0.42, 0.55, 2)  # the second session sees the first's edit too
        first.reload()
        first.get_by_text("情景：2 项修改").wait_for(timeout=90_000)
        browser.close()
    project = workspace.open(browser_workspace / "browser-shared.sqlite")
    added = project.edits("what-if demo")
    assert [e.pharmacy_id for e in added] == ["NEW-1", "NEW-2"]
    assert len(project.checks()) == 2
    assert outside == []


@pytest.fixture(scope="module")
def exported_map_url(demo, tmp_path_factory):
    """The exported ``map.html`` (as ``pharmacy-plan assess --out`` writes it) served from a loopback server."""
    import functools
    import http.server
    import threading

    from planning import report

    folder = tmp_path_factory.mktemp("map")
    report.write_html_map(demo, folder / "map.html")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/map.html", folder / "map.html"
    server.shutdown()
    server.server_close()


def test_exported_map_opens_with_every_outside_request_blocked(exported_map_url):
    """map.html carries Leaflet and the street layer inline: with every non-loopback request aborted the
    page asks for nothing outside, Leaflet starts, the streets are drawn, and the console has no error."""
    playwright = pytest.importorskip("playwright.sync_api")
    url, path = exported_map_url
    html = path.read_text(encoding="utf-8")
    assert "plannerStreets" in html  # the street layer travels inside the file
    blocked: list[str] = []
    requested: list[str] = []
    errors: list[str] = []

    with playwright.sync_playwright() as p:
        browser, page = local_page(p, viewport=(1200, 900), allowed=is_loopback, blocked=blocked)
        page.on("request", lambda request: requested.append(request.url))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.locator(".leaflet-container").wait_for(timeout=30_000)
        page.locator(".leaflet-plannerStreets-pane canvas, .leaflet-plannerStreets-pane path").first.wait_for(
            timeout=30_000)
        page.locator("#planner-legend").wait_for(timeout=10_000)
        leaflet = page.evaluate("typeof L === 'object' && typeof L.version === 'string' ? L.version : null")
        streets = page.evaluate("Object.keys(window).filter(k => k.startsWith('plannerStreets'))"
                                ".map(k => window[k].features.length)")
        page.wait_for_timeout(500)  # late errors (tiles, fonts) would show by now
        browser.close()
    assert blocked == [], f"map.html asked for outside resources: {blocked}"
    outside = [u for u in requested if urlparse(u).scheme in ("http", "https")
               and urlparse(u).hostname not in ("127.0.0.1", "localhost")]
    assert outside == [], outside
    assert leaflet, "Leaflet did not initialise"
    assert streets and all(n > 0 for n in streets), streets
    assert errors == [], errors


@pytest.mark.parametrize("width, height", [(1400, 900), (1100, 800)])
def test_decision_map_legend_and_verdict_panel_in_view(app_url, width, height):
    """The first view is the decision map (its colours in their own pane); the legend lists the drawn layers
    in colours far enough apart; a click's verdict appears beside the map without scrolling, and hovering
    the same place names that verdict."""
    playwright = pytest.importorskip("playwright.sync_api")
    from test_maps import MIN_DELTA_E, cie_lab

    from planning.demo import load_demo_region
    from planning.maps import DEFAULT_LAYERS, legend_entries, with_worker_layer
    from planning.model import Service

    ARTIFACTS.mkdir(exist_ok=True)
    outside: list[str] = []
    with playwright.sync_playwright() as p:
        browser, page = local_page(p, viewport=(width, height), allowed=is_loopback, blocked=outside)
        page.goto(app_url)
        page.get_by_text("医保定点零售药店布局规划").wait_for(timeout=90_000)
        frame = page.frame_locator("iframe[title*='streamlit_folium']")
        frame.locator(".leaflet-plannerDecision-pane img.leaflet-image-layer").first.wait_for(timeout=90_000)
        swatches = frame.locator("#planner-legend [data-legend]")
        swatches.first.wait_for(timeout=10_000)
        drawn = [(swatches.nth(i).get_attribute("data-legend"), swatches.nth(i).get_attribute("data-colour"))
                 for i in range(swatches.count())]
        expected = legend_entries(Service.OUTPATIENT_POOLING, "zh",  # the demo knows where people work
                                  layers=with_worker_layer(DEFAULT_LAYERS, load_demo_region()))
        assert drawn == [(kind, colour) for kind, colour, _ in expected]
        fills = [cie_lab(c) for kind, c in drawn if kind == "fill"]
        assert min(np.linalg.norm(a - b) for i, a in enumerate(fills) for b in fills[i + 1:]) >= MIN_DELTA_E
        page.get_by_text("点击地图上任意位置").wait_for(timeout=10_000)
        box = frame.locator(".leaflet-container").bounding_box()
        # hovering the map names the verdict of the cell under the pointer (first place inside the region)
        tip, hovered = frame.locator(".planner-cell-tip"), None
        for fx, fy in ((0.5, 0.45), (0.45, 0.6), (0.55, 0.6), (0.4, 0.5), (0.6, 0.5), (0.5, 0.7)):
            at = (box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            page.mouse.move(*at, steps=4)
            page.wait_for_timeout(200)
            if tip.count() and tip.first.is_visible():
                hovered = tip.first.inner_text().splitlines()
                break
        assert hovered, "no hover text anywhere near the centre of the demo's decision map"
        page.mouse.click(*at)
        page.get_by_text("核查位置").wait_for(timeout=60_000)
        # pressing the map does not scroll the page under the pointer (the click is read where it was pressed)
        assert frame.locator(".leaflet-container").bounding_box() == box
        panel = page.locator(".st-key-verdict-panel")
        verdict = panel.locator("h3").first
        verdict.wait_for(timeout=10_000)
        shown = verdict.bounding_box()
        assert page.evaluate("window.scrollY") == 0
        assert shown["y"] >= 0 and shown["y"] + shown["height"] <= height, shown  # in view, no scrolling
        assert shown["x"] >= box["x"] + box["width"] - 5  # beside the map, not under it
        assert hovered[0] in verdict.inner_text(), (hovered, verdict.inner_text())  # the click's verdict
        page.mouse.move(box["x"] + 60, box["y"] + 12, steps=8)  # onto the zoom control: no stale hover text
        page.wait_for_timeout(300)
        assert not (tip.count() and tip.first.is_visible())
        page.screenshot(path=str(ARTIFACTS / f"app-decision-{width}x{height}.png"))
        browser.close()
    assert outside == []
