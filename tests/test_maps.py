"""Map layers: raster layers as Web Mercator PNG overlays land on the right cells, the walk-time bands are
the thirds of the walk time, and the streets travel as a once-loaded script that still works offline."""

from __future__ import annotations

import base64
import io
import json
import os
import re

import numpy as np
import pytest
from affine import Affine
from PIL import Image
from pyproj import Transformer

from planning.assess import assess
from planning import maps
from planning.maps import (
    ASSESSMENT_LAYERS,
    DECISION_PANE,
    RASTER_PANE,
    assessment_map,
    base_map,
    checked_point_group,
    mask_image,
    serve_scripts_from,
    street_layer,
    use_local_leaflet,
    walk_time_image,
)
from planning.model import Service
from planning.synthetic import SYNTHETIC_CRS, street_grid, synthetic_region

POOLING = Service.OUTPATIENT_POOLING


def decode(url: str) -> tuple[np.ndarray, list[int]]:
    """The palette codes of a PNG data URL and the alpha of each palette entry."""
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.mode == "P"
    alpha = list(image.info["transparency"])
    return np.asarray(image), alpha


def sample(codes: np.ndarray, bounds, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The code of the image pixel under each WGS84 point (the image spans ``bounds`` in Web Mercator)."""
    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    (south, west), (north, east) = bounds
    x0, y0 = to_merc.transform(west, south)
    x1, y1 = to_merc.transform(east, north)
    x, y = to_merc.transform(lon, lat)
    cols = np.floor((x - x0) / (x1 - x0) * codes.shape[1]).astype(int)
    rows = np.floor((y1 - y) / (y1 - y0) * codes.shape[0]).astype(int)
    return codes[rows, cols]


def cell_centres(transform: Affine, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = transform @ (cols + 0.5, rows + 0.5)
    return Transformer.from_crs(SYNTHETIC_CRS, "EPSG:4326", always_xy=True).transform(x, y)


def steady_cells(raster: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells whose 8 neighbours hold the same value (a nearest-neighbour warp cannot move them to another value)."""
    same = np.ones(raster.shape, dtype=bool)
    same[[0, -1], :] = same[:, [0, -1]] = False
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            same[1:-1, 1:-1] &= raster[1 + dr:raster.shape[0] - 1 + dr, 1 + dc:raster.shape[1] - 1 + dc] == raster[1:-1, 1:-1]
    return np.nonzero(same)


def test_mask_image_puts_every_cell_where_it_is_with_an_edge_ring():
    transform = Affine(20.0, 0, 400_000.0, 0, -20.0, 3_501_000.0)  # 20 m cells, UTM 50N
    mask = np.zeros((60, 90), dtype=bool)
    mask[10:40, 20:70] = True  # a 1,000 x 600 m block
    mask[50, 80] = True  # one lone cell
    url, bounds = mask_image(mask, transform, SYNTHETIC_CRS, "#0072b2", fill_alpha=0.2, edge_alpha=0.9)
    codes, alpha = decode(url)
    assert alpha[:3] == [0, 51, 230]  # transparent, fill, edge
    rows, cols = steady_cells(mask)
    got = sample(codes, bounds, *cell_centres(transform, rows, cols))
    assert (got[mask[rows, cols]] > 0).all() and (got[~mask[rows, cols]] == 0).all()
    # Inside the block, away from its border, the fill; on its outermost cells, the edge colour.
    lon, lat = cell_centres(transform, np.array([25, 10, 39, 25]), np.array([45, 45, 45, 20]))
    assert list(sample(codes, bounds, lon, lat)) == [1, 2, 2, 2]
    assert sample(codes, bounds, *cell_centres(transform, np.array([50]), np.array([80])))[0] == 2


@pytest.fixture(scope="module")
def small():
    network = street_grid(20, seed=4)
    region = synthetic_region(network, counties_per_side=1, subdistricts_per_county_side=2, n_pharmacies=6, seed=4)
    return assess(region, network)


def test_walk_time_bands_are_thirds_of_the_walk_time(small):
    surface = small.surfaces[POOLING]
    third = small.policy.budget_m / 3
    expected = np.where(surface.distance_m <= third, 1, np.where(surface.distance_m <= 2 * third, 2,
                                                                 np.where(surface.distance_m <= 3 * third, 3, 0)))
    url, bounds = walk_time_image(small, POOLING)
    codes, alpha = decode(url)
    assert alpha[0] == 0 and all(a > 0 for a in alpha[1:4])
    rows, cols = steady_cells(expected)
    got = sample(codes, bounds, *cell_centres(surface.transform, rows, cols))
    assert set(np.unique(expected[rows, cols])) == {0, 1, 2, 3}
    np.testing.assert_array_equal(got, expected[rows, cols])


def test_hovering_the_decision_map_names_the_verdict_and_rules_of_the_cell_under_the_pointer(small):
    """The hover keys come from the same rule flags as the colours: each cell's key reads back as its
    drawn verdict, and as exactly the rules whose zone holds the cell; the key image is the colour
    image's pixels (one reprojection of the grid for both)."""
    from planning import rules
    from planning.zones import describe_rule_sets

    for service in Service:
        codes, rule_sets = small.decision_verdicts(service)
        assert np.array_equal(codes, small.decisions(service))
        described = describe_rule_sets(rule_sets)
        assert ((rule_sets == 0) == (codes == 0)).all()
        verdict_of = {key: rules.VERDICTS.index(verdict) + 1 for key, (verdict, _) in described.items()}
        assert np.array_equal(np.vectorize(lambda k: verdict_of.get(int(k), 0))(rule_sets), codes)
        for part in small.zone_parts(service):  # inside the sub-districts, where the map is drawn
            for rule in part.rule_ids.split(","):
                holding = np.asarray([rule in described[int(k)][1] for k in rule_sets[part.mask & (codes > 0)]])
                assert holding.all(), (service, part.rule_ids)
        tips = maps.decision_tips(small, service, "en")
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(tips.url.split(",", 1)[1]))).convert("RGB"))
        keys = image[..., 0].astype(np.uint16) + 256 * image[..., 1].astype(np.uint16)
        drawn, _ = maps._to_web_mercator(codes, small.rasters.grid.transform, small.rasters.crs)
        assert keys.shape == drawn.shape == (tips.transform[5], tips.transform[4])
        assert ((keys == 0) == (drawn == 0)).all()
        assert set(np.unique(keys)) - {0} == set(tips.lines)
        for key, lines in tips.lines.items():
            verdict, rule_ids = described[key]
            assert lines[0] == maps.t(f"verdict_{verdict}", "en")
            assert (len(lines) == 2) == bool(rule_ids) and all(r in lines[-1] for r in rule_ids)


def test_streets_travel_once_as_a_data_script_and_the_export_opens_offline(small):
    fmap = use_local_leaflet(base_map(small.region, service=POOLING, network=small.network))
    html = fmap.get_root().render()
    scripts = re.findall(r'<script src="(data:text/javascript;base64,[^"]+)"', html)
    assert len(scripts) == 1  # use_local_leaflet kept it
    source = base64.b64decode(scripts[0].split(",", 1)[1]).decode("utf-8")
    name, data = re.fullmatch(r'window\["(plannerStreets[0-9a-f]{12})"\] = (.*);', source, re.S).groups()
    streets = json.loads(data)
    assert [f["properties"]["group"] for f in streets["features"]] == street_layer(small.network)["group"].tolist()
    assert f'window["{name}"]' in html and '"coordinates"' not in html.split("<script src=")[0]
    assert "imperial: false" in html  # a metric scale bar
    exported = assessment_map(small, service=POOLING, network=small.network).get_root().render()
    # decision, its hover keys, walk time, circles, uncovered
    assert exported.count("data:image/png;base64,") == 5
    assert f'"pane": "{RASTER_PANE}"' in exported and f'"pane": "{DECISION_PANE}"' in exported
    assert len(ASSESSMENT_LAYERS) == 10


def test_the_checked_point_is_marked_where_it_was_clicked():
    import folium

    fmap = folium.Map(location=[27.3, 111.6], zoom_start=13)
    checked_point_group(111.602554, 27.299181, "en").add_to(fmap)
    html = fmap.get_root().render()
    # Leaflet takes [lat, lon]: the ring and its centre dot both stand on the clicked point.
    assert len(re.findall(r"L\.circleMarker\(\s*\[27\.299181, 111\.602554\]", html)) == 2
    assert "Location checked: 111.602554, 27.299181" in html


def test_the_app_serves_the_street_script_as_a_file_written_once(small, tmp_path, monkeypatch):
    def street_map():
        return use_local_leaflet(base_map(small.region, service=POOLING, network=small.network))

    data_url = next(url for _, url in _scripts(street_map()) if url.startswith("data:"))
    folder = tmp_path / "generated"
    html = serve_scripts_from(street_map(), folder, "/app/static/generated").get_root().render()
    assert "data:text/javascript" not in html  # the page carries a short URL, not the streets
    (published,) = folder.glob("*.js")
    assert f'<script src="/app/static/generated/{published.name}"></script>' in html
    assert published.read_bytes() == base64.b64decode(data_url.split(",", 1)[1])  # the very same script
    assert re.fullmatch(r"plannerStreets[0-9a-f]{12}\.js", published.name)  # named by content

    # Later reruns find the file and leave it alone (only its time is touched, for pruning).
    published.write_bytes(b"kept")
    serve_scripts_from(street_map(), folder, "/app/static/generated")
    assert published.read_bytes() == b"kept"

    # Only the newest PUBLISHED_SCRIPTS_KEPT files stay when a new one is written.
    monkeypatch.setattr(maps, "PUBLISHED_SCRIPTS_KEPT", 2)
    for i, name in enumerate(["old1.js", "old2.js"]):
        (folder / name).write_text("x")
        os.utime(folder / name, (1_000 + i, 1_000 + i))
    published.unlink()
    serve_scripts_from(street_map(), folder, "/app/static/generated")
    assert sorted(f.name for f in folder.glob("*.js")) == sorted([published.name, "old2.js"])

    # A folder that cannot be written: the map keeps its data: URL and still works.
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    html = serve_scripts_from(street_map(), blocked / "generated", "/x").get_root().render()
    assert data_url in html


def _scripts(fmap) -> list[tuple[str, str]]:
    found, stack = [], [fmap]
    while stack:
        element = stack.pop()
        stack.extend(getattr(element, "_children", {}).values())
        found += getattr(element, "default_js", [])
    return found


def cie_lab(colour: str) -> np.ndarray:
    """CIE L*a*b* (D65) of a "#rrggbb" colour: the space the legend's colour distances are measured in."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])  # relative to the D65 white
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


#: Least CIE76 distance between two legend swatches of one kind drawn together (about where colours
#: stop being confused at a glance; the Okabe-Ito set keeps it under colour-vision deficiencies).
MIN_DELTA_E = 20.0


def assert_distinct(entries) -> None:
    from itertools import combinations

    for kind in {k for k, _, _ in entries}:
        same = [(c, label) for k, c, label in entries if k == kind]
        for (a, la), (b, lb) in combinations(same, 2):
            assert np.linalg.norm(cie_lab(a) - cie_lab(b)) >= MIN_DELTA_E, (kind, la, lb)


def test_the_legend_lists_exactly_the_drawn_layers_in_distinct_colours():
    from planning.maps import CLASS_VIEW_LAYERS, DECISION_COLOURS, DEFAULT_LAYERS, legend_entries, legend_html

    decision = legend_entries(POOLING, "zh", layers=DEFAULT_LAYERS)
    labels = [label for _, _, label in decision]
    assert labels[:5] == ["禁止新增", "需审核", "优先配置", "允许", "无法判定"]
    assert "无已登记业务的药店" in labels and "服务圈" in labels and "未覆盖居住区" in labels
    assert not {"相对饱和", "禁止新增区"} & set(labels)  # classes and zones are not drawn: not listed
    classes = legend_entries(POOLING, "zh", layers=CLASS_VIEW_LAYERS)
    assert [label for _, _, label in classes][:4] == ["相对饱和", "均衡", "相对不足", "空白"]
    assert "禁止新增" not in [label for _, _, label in classes]
    zones_only = legend_entries(POOLING, "en", layers=("zone_blocked", "zone_review"))
    assert [label for _, _, label in zones_only] == ["blocked zone", "review zone"]
    for view in (DEFAULT_LAYERS, CLASS_VIEW_LAYERS, ("zone_blocked", "zone_priority", "zone_review", "pharmacies")):
        assert_distinct(legend_entries(POOLING, "zh", layers=view))
    assert len(set(DECISION_COLOURS.values())) == 5
    html = legend_html(POOLING, "zh", layers=DEFAULT_LAYERS)
    assert html.count("data-legend=") == len(decision)


def test_the_decision_map_is_the_rules_verdict_at_every_cell(small):
    """Its codes come from the one precedence (rules.verdict_codes) and leave out only what lies outside
    every sub-district; a click's verdict is checked against it in tests/test_one_truth.py."""
    from planning.zones import DECISION_CODES

    codes = small.decisions(POOLING)
    assert codes.shape == small.rasters.grid.shape and codes.dtype == np.uint8
    subdistrict, _ = small.rasters.cell_areas()
    assert ((codes == 0) == (subdistrict < 0)).all()
    inside_circle = small.rasters.circle_mask(POOLING) & (subdistrict >= 0)
    assert np.isin(codes[inside_circle], [DECISION_CODES["blocked"], DECISION_CODES["review"]]).all()  # B1
    assert set(np.unique(codes)) <= {0, *DECISION_CODES.values()}
