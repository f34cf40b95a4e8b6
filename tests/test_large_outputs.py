"""Outputs at a province's size (issue 14 item 6): the big-layer map path renders and stays XSS-safe,
the gap report round-trips with the same features. Sizes here are small: the threshold is lowered so the
big-layer code runs on a handful of points (benchmarks/bench_large.py measures 100,000)."""

from __future__ import annotations

import json

import geopandas as gpd
import jsonschema
import numpy as np
import pytest

from test_hostile_inputs import XSS_NAME, hostile_assessment


@pytest.fixture(scope="module")
def hostile():
    return hostile_assessment()


@pytest.fixture
def large_threshold(monkeypatch):
    """Every pharmacy layer takes the big-layer path (PointCanvasLayer)."""
    import planning.maps

    monkeypatch.setattr(planning.maps, "LARGE_POINT_LAYER", 2)


def test_big_point_layer_carries_every_pharmacy_as_text(hostile, large_threshold):
    from planning import report
    from planning.maps import PointCanvasLayer, pharmacy_points

    page = report.html_map_string(hostile)
    assert PointCanvasLayer.__name__ in page or "L.circleMarker" in page
    start = page.index("var data = ") + len("var data = ")
    data = json.loads(page[start:page.index(";\n", start)])
    lons, lats, codes, palette, rows = data
    pharmacies = hostile.region.pharmacies
    assert len(lons) == len(lats) == len(codes) == len(rows) == len(pharmacies)
    np.testing.assert_allclose(lons, pharmacies.geometry.x, atol=1e-5)
    np.testing.assert_allclose(lats, pharmacies.geometry.y, atol=1e-5)
    assert [row[0] for row in rows] == pharmacies["name"].tolist()  # verbatim: shown with textContent
    # Nothing in the script could close it, start a tag or a Jinja expression.
    script = page[start:page.index(";\n", start)]
    assert not set(script) & set("<>&{}")
    assert "SSTI-FIRED" not in page
    assert pharmacy_points(pharmacies).count == len(pharmacies)


def test_big_point_layer_shows_hostile_names_as_text_in_the_browser(hostile, large_threshold, tmp_path):
    """The exported map.html in Debian chromium, only local requests allowed: every canvas marker is
    drawn, hovering one opens its tooltip with the hostile name as text, and no script runs."""
    from browser import CHROMIUM, NO_CHROMIUM, is_local_file, local_page

    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    playwright = pytest.importorskip("playwright.sync_api")
    from planning import report

    path = report.write_html_map(hostile, tmp_path / "map.html")
    outside: list[str] = []
    with playwright.sync_playwright() as p:
        browser, page = local_page(p, viewport=(1000, 800), allowed=is_local_file, blocked=outside)
        page.goto(path.as_uri())
        page.locator(".leaflet-container").wait_for(timeout=30_000)
        title = page.title()
        markers = page.evaluate("""() => {
            const map = Object.values(window).find(v => v instanceof L.Map);
            const found = [];
            map.eachLayer(l => { if (l instanceof L.CircleMarker && l.plannerIndex !== undefined) found.push(l); });
            window.__plannerMarkers = found;
            return found.length;
        }""")
        assert markers == len(hostile.region.pharmacies)
        for index in range(markers):
            point = page.evaluate("""(i) => {
                const map = Object.values(window).find(v => v instanceof L.Map);
                const marker = window.__plannerMarkers[i];
                map.setView(marker.getLatLng(), 17, {animate: false});
                marker.bringToFront();
                const p = map.latLngToContainerPoint(marker.getLatLng());
                const box = map.getContainer().getBoundingClientRect();
                return {x: box.left + p.x, y: box.top + p.y};
            }""", index)
            page.wait_for_timeout(100)
            page.mouse.move(point["x"] + 30, point["y"] + 30)
            page.mouse.move(point["x"], point["y"], steps=4)
            page.wait_for_timeout(60)
            page.mouse.move(point["x"] + 0.5, point["y"])
            tooltip = page.locator(".leaflet-tooltip:not(.planner-cell-tip)")  # the pharmacy's, not the cell's
            tooltip.first.wait_for(timeout=5_000)
            assert XSS_NAME in tooltip.first.inner_text()
            # over a pharmacy its tooltip speaks alone: the cell's is closed (Leaflet fades it out at opacity 0)
            assert page.evaluate("""() => [...document.querySelectorAll('.planner-cell-tip')]
                .every(e => getComputedStyle(e).opacity === '0')""")
            assert page.title() == title
        page.wait_for_timeout(300)  # an onerror would fire after its image failed to load
        assert page.title() == title
        assert page.locator(".leaflet-tooltip img").count() == 0
        browser.close()
    assert outside == [], f"map.html asked for outside resources: {outside}"


def test_gap_report_round_trips_with_the_same_features(hostile, tmp_path):
    from planning import report

    path = report.write_gap_report(hostile, tmp_path / "gap.geojson")[0]
    document = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(document, json.loads(report.SCHEMA_PATH.read_text(encoding="utf-8")))
    assert document == json.loads(json.dumps(report.gap_report(hostile), ensure_ascii=False))
    read = gpd.read_file(path)  # GDAL's reader, as QGIS opens it
    assert len(read) == len(document["features"])
    pharmacies = read[read["layer"] == "pharmacy"].set_index("pharmacy_id")
    expected = hostile.pharmacies.set_index("pharmacy_id")
    assert sorted(pharmacies.index) == sorted(expected.index)
    assert pharmacies.loc[expected.index, "name"].tolist() == expected["name"].tolist()
    np.testing.assert_allclose(pharmacies.loc[expected.index].geometry.x, expected.geometry.x, atol=1e-7)
    np.testing.assert_allclose(pharmacies.loc[expected.index].geometry.y, expected.geometry.y, atol=1e-7)
    np.testing.assert_allclose(pharmacies.loc[expected.index, "snap_m"], expected["snap_m"], atol=0.05)


# The fast column-wise coordinate reading must agree with the cell-by-cell parser on every kind of cell.
_COORDINATE_CELLS = [
    "112.91", " 112.91 ", "+112.9", "112", "112.", ".5", "1.129e2", "112,91", "112°54′36″", "１１２.９１",
    "", "abc", "112.9.1", "-112.5", "nan", "inf", "112.91x", "٣٤.٥",
]


def test_coordinates_read_column_wise_agree_with_the_cell_parser(tmp_path):
    """Every row is read either with its coordinates exactly as parse_coordinate gives them, or rejected
    with a reason when parse_coordinate cannot give both (an independent per-cell oracle)."""
    import csv
    import itertools

    from planning import ingest
    from planning.ingest.vocabulary import parse_coordinate

    pairs = list(itertools.product(_COORDINATE_CELLS, ["28.2", "28", " 28.20 ", "28°12′", "", "x"]))
    path = tmp_path / "p.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["药店编码", "药店名称", "地址", "经度", "纬度", "门诊统筹"])
        for k, (lon, lat) in enumerate(pairs):
            writer.writerow([f"P{k}", f"药店{k}", f"路{k}号", lon, lat, "是"])
    result = ingest.read_pharmacies(path, crs="wgs84")
    assert result.n_in == len(pairs) == len(result.clean) + len(result.rejected)
    kept = {row["pharmacy_id"]: (row.geometry.x, row.geometry.y) for _, row in result.clean.iterrows()}
    for k, (lon, lat) in enumerate(pairs):
        expected = parse_coordinate(lon), parse_coordinate(lat)
        if f"P{k}" in kept:
            assert kept[f"P{k}"] == pytest.approx(expected, abs=1e-9), (lon, lat)
        else:
            parsed = all(isinstance(v, float) for v in expected)
            assert not parsed or not (73 <= expected[0] <= 136 and 3 <= expected[1] <= 54), (lon, lat)
