"""Hostile and messy input (issue 14): no script runs, no template fires, no impossible point is judged,
an emptied layer is a planner's error, and bad input never reads as an internal error.

Cases are tables; each runs through the public surface a planner uses (the CLI, the readers, the map
export, the app through AppTest) and checks the outcome against the hand-written expectation in its row.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from planning.assess import assess
from planning.synthetic import street_grid, synthetic_region

ROOT = Path(__file__).resolve().parents[1]

#: A name that runs a script wherever it is written as HTML, and one that Jinja would evaluate.
XSS_NAME = """<img src=x onerror="document.title='pwned'">"""
JINJA_NAME = "{{ 'SSTI' ~ '-FIRED' }}"
HOSTILE_NAME = XSS_NAME + JINJA_NAME + "`${document.title='pwned2'}`"


def hostile_assessment(name: str = HOSTILE_NAME):
    """A small synthetic region whose every pharmacy, sub-district and county carries ``name`` (plus its
    own index, so names stay distinct), assessed."""
    network = street_grid(20, seed=4)
    region = synthetic_region(network, counties_per_side=1, subdistricts_per_county_side=2, n_pharmacies=6, seed=4)
    layers = {}
    for layer_name in ("pharmacies", "subdistricts", "counties"):
        layer = getattr(region, layer_name).copy()
        layer["name"] = [f"{name}{i}" for i in range(len(layer))]
        if "address" in layer.columns:
            layer["address"] = name
        layers[layer_name] = layer
    return assess(dataclasses.replace(region, **layers), network)


def decoded_scripts(page: str) -> str:
    """The page with the JSON string escapes folium's ``tojson`` writes turned back into characters,
    so a tag hidden as ``\\u003cimg`` is seen as ``<img``."""
    return (page.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&").replace("\\u0027", "'")
            .replace('\\"', '"'))


# ----------------------------------------------------------------------------- 1. stored XSS, template injection
@pytest.fixture(scope="module")
def hostile():
    return hostile_assessment()


def test_safe_text_shows_every_character_and_runs_none():
    from html import unescape

    from planning.maps import safe_text

    for text in (HOSTILE_NAME, "普通药店 & 分店", "a\\b`c$d{e}f", "", "{# comment #}{% if 1 %}"):
        escaped = safe_text(text)
        assert unescape(escaped) == text  # a browser shows exactly the user's text
        assert not set(escaped) & set("<>\"'`${}\\")


@pytest.mark.parametrize("where", ["export", "region_map", "scenario_site_changes", "scenario_map"])
def test_no_hostile_name_reaches_a_map_unescaped(hostile, where):
    from planning import report
    from planning.maps import escape_user_text, offline_html, region_map, site_changes_group
    from planning.scenario import RemoveSite, Scenario

    if where == "export":
        page = report.html_map_string(hostile)
        expected = len(hostile.region.pharmacies) + len(hostile.region.subdistricts) + len(hostile.region.counties)
    elif where == "region_map":
        page = offline_html(region_map(hostile.region))
        expected = len(hostile.region.pharmacies) + len(hostile.region.subdistricts) + len(hostile.region.counties)
    elif where == "scenario_site_changes":  # the app draws a what-if's site changes on its own map
        import folium

        removed = hostile.region.pharmacies["pharmacy_id"].iloc[0]
        change = Scenario(hostile).with_edits(RemoveSite(removed)).diff()
        fmap = folium.Map()
        escape_user_text(site_changes_group(change, "zh")).add_to(fmap)
        page = fmap.get_root().render()
        expected = 1
    else:  # a notebook shows ScenarioDiff.map() as it is
        removed = hostile.region.pharmacies["pharmacy_id"].iloc[0]
        change = Scenario(hostile).with_edits(RemoveSite(removed)).diff()
        page = change.map(service="personal_account", lang="zh").get_root().render()
        expected = 1
    text = decoded_scripts(page)
    assert "<img" not in text and "onerror=\"" not in text
    assert "SSTI-FIRED" not in text  # Jinja did not evaluate the name
    assert "${document" not in text
    shown = "&lt;img src=x onerror=&quot;document.title=&#x27;pwned&#x27;&quot;&gt;&#123;&#123; &#x27;SSTI&#x27;"
    assert text.count(shown) >= expected  # every name is there, as text


def test_escaping_twice_is_not_done(hostile):
    """The export escapes maps made outside planning.maps; layers made inside are escaped once only."""
    from planning import report

    assert "&amp;lt;img" not in decoded_scripts(report.html_map_string(hostile))


BROWSER_HOVER = """
() => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  const found = [];  // folium binds a GeoJSON layer's tooltip to the layer; its features open it
  map.eachLayer(group => {
    if (group instanceof L.GeoJSON && group.getTooltip()) group.eachLayer(layer => found.push([group, layer]));
  });
  window.__plannerHover = found;
  return found.map(([group, layer]) => layer.getLatLng ? "marker" : "polygon");
}
"""

BROWSER_VIEW = """
(index) => {
  // Centre the map on feature ``index`` and bring it to the front of the canvas.
  const map = Object.values(window).find(v => v instanceof L.Map);
  const layer = window.__plannerHover[index][1];
  if (layer.getLatLng) {
    map.setView(layer.getLatLng(), 16, {animate: false});
  } else {
    map.fitBounds(layer.getBounds(), {animate: false});
  }
  layer.bringToFront();
}
"""

BROWSER_POINT = """
(index) => {
  // A page point inside feature ``index`` (once the view has settled): the inside point nearest the
  // middle of the view (the legend and the layer list sit in the corners).
  const map = Object.values(window).find(v => v instanceof L.Map);
  const layer = window.__plannerHover[index][1];
  const box = map.getContainer().getBoundingClientRect();
  let point = null;
  if (layer.getLatLng) {
    point = map.latLngToContainerPoint(layer.getLatLng());
  } else {
    const b = layer.getBounds();
    const nw = map.latLngToContainerPoint(b.getNorthWest()), se = map.latLngToContainerPoint(b.getSouthEast());
    const middle = map.getSize().divideBy(2);
    for (let i = 1; i < 40; i++) for (let j = 1; j < 40; j++) {
      const p = L.point(nw.x + (se.x - nw.x) * i / 40, nw.y + (se.y - nw.y) * j / 40);
      if (layer._containsPoint(map.containerPointToLayerPoint(p)) && (!point || p.distanceTo(middle) < point.distanceTo(middle))) point = p;
    }
  }
  return point ? {x: box.left + point.x, y: box.top + point.y} : null;
}
"""

#: True once the tooltip of feature ``index`` is open for that very feature.
BROWSER_OPEN = """
(index) => {
  const [group, layer] = window.__plannerHover[index];
  return group.isTooltipOpen() && group.getTooltip()._source === layer;
}
"""
BROWSER_TOOLTIP_TEXT = "(index) => window.__plannerHover[index][0].getTooltip().getElement().innerText"


def test_hovering_every_marker_and_polygon_runs_no_script(hostile, tmp_path):
    """The exported map.html in Debian chromium (only local requests allowed): with every layer ticked,
    each tooltip-bearing feature is hovered with the mouse; its tooltip opens showing the hostile name as
    text, and ``document.title`` never changes."""
    from browser import CHROMIUM, NO_CHROMIUM, is_local_file, local_page

    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    playwright = pytest.importorskip("playwright.sync_api")
    from planning import report

    path = report.write_html_map(hostile, tmp_path / "map.html")
    outside: list[str] = []

    with playwright.sync_playwright() as p:
        browser, page = local_page(p, viewport=(1200, 900), allowed=is_local_file, blocked=outside)
        page.goto(path.as_uri())
        page.locator(".leaflet-container").wait_for(timeout=30_000)
        title = page.title()
        for box in page.locator(".leaflet-control-layers-overlays input[type=checkbox]").all():
            if not box.is_checked():
                box.check()
        kinds = page.evaluate(BROWSER_HOVER)
        counts = {k: kinds.count(k) for k in ("marker", "polygon")}
        assert counts["marker"] == len(hostile.region.pharmacies)
        assert counts["polygon"] >= len(hostile.region.subdistricts) + len(hostile.region.counties)
        hovered = named = 0
        for index in range(len(kinds)):
            page.evaluate(BROWSER_VIEW, index)
            page.wait_for_timeout(100)  # the canvas redraws and re-clips its paths after the move
            point = page.evaluate(BROWSER_POINT, index)
            if point is None:  # a sliver too thin to hit at this zoom
                continue
            # Leaflet's canvas tests the hover at most every 32 ms and drops the moves between, so the
            # mouse comes to rest on the point and then nudges it once the throttle has passed.
            page.mouse.move(point["x"] + 30, point["y"] + 30)
            page.mouse.move(point["x"], point["y"], steps=4)
            page.wait_for_timeout(60)
            page.mouse.move(point["x"] + 0.5, point["y"])
            page.wait_for_function(BROWSER_OPEN, arg=index, timeout=5_000)
            text = page.evaluate(BROWSER_TOOLTIP_TEXT, index)
            if kinds[index] == "marker":
                assert XSS_NAME in text, text  # the name shows as text
            named += XSS_NAME in text
            hovered += 1
            assert page.title() == title
        page.wait_for_timeout(300)  # an onerror fires after the image fails to load
        assert page.title() == title
        assert page.locator(".leaflet-tooltip img").count() == 0
        browser.close()
    assert hovered >= len(kinds) - 2, (hovered, len(kinds))
    # Pharmacies, sub-districts (class layer) and the county tooltips all showed the name.
    assert named >= len(hostile.region.pharmacies) + len(hostile.region.subdistricts) + len(hostile.region.counties)
    assert outside == []


# ----------------------------------------------------------------------------- 2. impossible points
@pytest.mark.parametrize("lon, lat", [("500", "27.3"), ("nan", "27.3"), ("111.6", "inf"), ("-inf", "27.3"),
                                      ("1e308", "27.3"), ("-1e308", "-95")])
def test_check_refuses_an_impossible_point_before_any_work(lon, lat):
    run = subprocess.run([sys.executable, "-m", "planning", "check", "--demo", "--quiet", "--lon", lon, "--lat", lat],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "impossible point" in run.stderr and "坐标不可能存在" in run.stderr
    assert run.stdout == ""


@pytest.mark.parametrize("lon, lat", [(float("nan"), 27.3), (181.0, 27.3), (111.6, -90.5), ("x", 1.0)])
def test_check_location_refuses_an_impossible_point(demo, lon, lat):
    from planning.errors import ParameterError
    from planning.screening import check_location

    with pytest.raises(ParameterError):
        check_location(demo, lon, lat, ["outpatient_pooling"])


def test_check_json_is_strict():
    from planning.cli import _strict_json

    document = _strict_json({"a": float("nan"), "b": [float("inf"), 1.5], "c": "x"})
    assert json.dumps(document, allow_nan=False) == '{"a": null, "b": [null, 1.5], "c": "x"}'
