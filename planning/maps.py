"""Folium maps of a region: boundaries, sub-districts, pharmacies by service, and the street network."""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import html
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import folium
from branca.element import Template
from folium.elements import JSCSSMixin
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from PIL import Image
from rasterio import warp
from scipy import ndimage

from planning.i18n import t
from planning.model import Region, Service, service_labels
from planning.present import for_people
from planning.rules import CLASS_LABELS
from planning.settlement import STATUS_LABELS, SUSPENDED, TERMINATED, status_text
from planning.text import Text
from planning.network import WalkNetwork
from planning.zones import DECISION_CODES, describe_rule_sets

#: One colour per service, used for markers and legends (colour-blind-safe Okabe-Ito palette).
SERVICE_COLOURS = {
    Service.PERSONAL_ACCOUNT: "#999999",
    Service.OUTPATIENT_POOLING: "#0072B2",
    Service.CHRONIC_DISEASE: "#E69F00",
    Service.DUAL_CHANNEL: "#CC79A7",
}
#: Street classes drawn on overview maps (service ways, footways and tracks stay in the analysis only).
_MAJOR_STREETS = ("trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link", "tertiary")
_LOCAL_STREETS = ("residential", "living_street", "unclassified", "pedestrian")


#: Basemaps a planner may choose. None draws no tiles (offline, and the default for the fictional demo);
#: OpenStreetMap and Tianditu (天地图, needs the user's key) are WGS84/CGCS2000 tiles that line up
#: with the tool's WGS84 data (Amap/Baidu tiles would be offset by GCJ-02/BD-09, so they are not offered).
BASEMAPS = ("none", "osm", "tianditu")


def add_basemap(fmap: folium.Map, basemap: str = "none", *, tianditu_key: str = "") -> None:
    """Add the chosen basemap tiles (see :data:`BASEMAPS`); "none" adds nothing."""
    if basemap == "osm":
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap", control=False).add_to(fmap)
    elif basemap == "tianditu":
        if not tianditu_key:
            from planning.errors import ParameterError

            raise ParameterError("使用天地图底图需要填写天地图密钥（tk）", "the Tianditu basemap needs your Tianditu key (tk)")
        for layer in ("vec", "cva"):  # streets, then Chinese labels
            folium.TileLayer(
                tiles=(f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                       f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
                       f"&TILECOL={{x}}&tk={tianditu_key}"),
                attr="天地图 Tianditu", name=f"Tianditu {layer}", subdomains="01234567", control=False,
            ).add_to(fmap)
    elif basemap != "none":
        from planning.errors import ParameterError

        raise ParameterError(f"未知底图：{basemap}", f"unknown basemap '{basemap}' (use {', '.join(BASEMAPS)})")


def use_local_leaflet(fmap: folium.Map, base_url: str = "/app/static/leaflet") -> folium.Map:
    """Point every element's assets at the vendored Leaflet under ``base_url`` (the Streamlit app serves
    ``static/`` there) and drop folium's other CDN assets, which these maps do not use. Scripts the map
    carries itself (``data:`` URLs, see :class:`StreetLayer`) stay."""
    stack = [fmap]
    while stack:
        element = stack.pop()
        stack.extend(getattr(element, "_children", {}).values())
        if hasattr(element, "default_js"):
            element.default_js = [(n, f"{base_url}/leaflet.js" if n == "leaflet" else url)
                                  for n, url in element.default_js if n == "leaflet" or url.startswith("data:")]
            element.default_css = [(n, f"{base_url}/leaflet.css") for n, _ in element.default_css if n == "leaflet_css"]
    return fmap


#: How many published scripts :func:`serve_scripts_from` keeps (one per street network, newest used first).
PUBLISHED_SCRIPTS_KEPT = 16


def serve_scripts_from(fmap: folium.Map, folder: Path, base_url: str) -> folium.Map:
    """Move the scripts the map carries as ``data:`` URLs (the streets, :class:`StreetLayer`) into files in
    ``folder``, which the web server publishes at ``base_url``, and point the map at them.

    Why: a Streamlit app sends the whole map to the browser on every rerun, so the demo's 1.8 MB street
    script crossed the network at each slider move or click (2.1 MB per rerun measured); as a file it
    crosses once and the browser keeps it. Files are named by content (the layer's hashed name), written
    once, and the oldest beyond :data:`PUBLISHED_SCRIPTS_KEPT` are removed. When ``folder`` cannot be
    written, the ``data:`` URLs stay and the map works as before.
    """
    stack = [fmap]
    while stack:
        element = stack.pop()
        stack.extend(getattr(element, "_children", {}).values())
        scripts = getattr(element, "default_js", None)
        if scripts and any(url.startswith("data:") for _, url in scripts):
            element.default_js = [(name, _publish(name, url, Path(folder), base_url) if url.startswith("data:") else url)
                                  for name, url in scripts]
    return fmap


def _publish(name: str, data_url: str, folder: Path, base_url: str) -> str:
    """The URL of ``data_url``'s script written to ``folder/<name>.js``, or ``data_url`` if it cannot be written."""
    path = folder / f"{name}.js"
    try:
        if path.exists():
            path.touch()  # recently used: kept by the pruning below
        else:
            folder.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.partial")
            partial.write_bytes(base64.b64decode(data_url.split(",", 1)[1]))
            partial.replace(path)  # atomic: a browser never reads half a script
            published = sorted(folder.glob("*.js"), key=lambda f: f.stat().st_mtime, reverse=True)
            for old in published[PUBLISHED_SCRIPTS_KEPT:]:
                old.unlink(missing_ok=True)
    except OSError:
        return data_url
    return f"{base_url}/{path.name}"


#: Characters of user text that must not reach a folium map as themselves, and what they become.
#: ``< > & " '`` because tooltips are written with ``innerHTML`` (a pharmacy named ``<img onerror=...>``
#: would run its script); a backtick, ``$`` and a backslash because plain tooltips sit inside a JavaScript
#: template literal; ``{`` and ``}`` because folium renders every map script through Jinja a second time,
#: so a name holding ``{{ ... }}`` would be evaluated on the server. Entities show as the characters.
_UNSAFE_IN_MAPS = {"`": "&#96;", "$": "&#36;", "\\": "&#92;", "{": "&#123;", "}": "&#125;"}


def safe_text(value) -> str:
    """``value`` as text that shows verbatim in a folium tooltip, popup or GeoJSON property and runs
    nowhere: HTML-escaped (``html.escape``) and with the characters of :data:`_UNSAFE_IN_MAPS` as entities.
    Every user-derived string drawn on a map passes through here once (escaping twice would show ``&amp;``)."""
    text = html.escape(str(value), quote=True)
    return "".join(_UNSAFE_IN_MAPS.get(ch, ch) for ch in text) if any(ch in text for ch in _UNSAFE_IN_MAPS) else text


def safe_geojson(data: dict) -> dict:
    """A copy of a GeoJSON FeatureCollection dict whose string property values went through
    :func:`safe_text` (numbers, booleans and geometry untouched)."""
    return {**data, "features": [
        {**feature, "properties": {key: safe_text(value) if isinstance(value, str) else value
                                   for key, value in (feature.get("properties") or {}).items()}}
        for feature in data.get("features", [])]}


def escape_user_text(element):
    """Make a folium element tree built elsewhere (scenario or siting layers) safe to render: every plain
    :class:`folium.Tooltip` text and every GeoJSON layer's string properties go through :func:`safe_text`.
    Elements this module made are already safe and are left alone; so is anything done before (the call
    is idempotent). Returns ``element``."""
    stack = [element]
    while stack:
        item = stack.pop()
        stack.extend(getattr(item, "_children", {}).values())
        if getattr(item, "_planner_escaped", False):
            continue
        if isinstance(item, folium.Tooltip):
            item.text = safe_text(item.text)
        elif isinstance(item, folium.GeoJson) and isinstance(getattr(item, "data", None), dict):
            item.data = safe_geojson(item.data)
        item._planner_escaped = True
    return element


def _geojson(layer: gpd.GeoDataFrame) -> dict:
    """A layer as a GeoJSON dict with its strings made safe for a map (:func:`safe_geojson`), made once
    and kept by the caller (folium re-serialising a GeoDataFrame on every Streamlit rerun cost a third
    of a second on the demo)."""
    return safe_geojson(json.loads(layer.to_json(drop_id=True)))


def _safe_layer(data: dict, **options) -> folium.GeoJson:
    """A folium GeoJson layer of ``data`` made by :func:`_geojson` (its strings already safe), marked so
    :func:`escape_user_text` does not escape them a second time."""
    layer = folium.GeoJson(data, **options)
    layer._planner_escaped = True
    return layer


def _for_display(layer: gpd.GeoDataFrame, tolerance_deg: float = 2e-4) -> gpd.GeoDataFrame:
    """Lighter polygons for the browser: pixel staircases simplified (~20 m, one cell) and coordinates
    rounded (~1 m). Topology is not preserved (four times faster, and Leaflet draws the result the same),
    so a piece narrower than about one cell may drop from the map; exported files keep every cell."""
    layer = layer.copy()
    simplified = shapely.simplify(layer.geometry.to_numpy(), tolerance_deg, preserve_topology=False)
    layer["geometry"] = shapely.transform(simplified, lambda xy: np.round(xy, 5))
    return layer


def region_map(region: Region, *, network: WalkNetwork | None = None, lang: str = "zh",
               subdistricts: bool = True, layer_control: bool = True, pharmacies: bool = True) -> folium.Map:
    """A Leaflet map of ``region`` with no basemap tiles (works offline; the demo draws its own streets).

    Layers: counties, sub-districts (tooltip: name, kind, population), the walking network when
    given, and pharmacies coloured by their highest service (dual channel > chronic disease >
    outpatient pooling > personal account), each toggled in the layer control.
    """
    fmap = fitted_map(region.counties.total_bounds)

    if subdistricts:
        layer = region.subdistricts.copy()
        layer["kind_label"] = layer["kind"].map(lambda k: t(f"kind_{k}", lang))
        if not region.population_known:  # 0 stands for "unknown" in the layer: say so, never show 0
            layer["population"] = t("population_unknown", lang)
        _safe_layer(
            _geojson(layer[["code", "name", "kind_label", "population", "geometry"]]),
            name=t("subdistricts", lang),
            style_function=lambda f: {"color": "#555555", "weight": 1, "fillColor": "#f3efe0", "fillOpacity": 0.6},
            tooltip=folium.GeoJsonTooltip(["name", "code", "kind_label", "population"],
                                          aliases=["", "", "", t("population", lang)]),
        ).add_to(fmap)
    _safe_layer(
        _geojson(region.counties[["code", "name", "geometry"]]),
        name=t("counties", lang),
        style_function=lambda f: {"color": "#222222", "weight": 3, "fillOpacity": 0},
        tooltip=folium.GeoJsonTooltip(["name", "code"], aliases=["", ""]),
    ).add_to(fmap)
    if network is not None:
        StreetLayer(network, name=t("streets", lang)).add_to(fmap)
    if pharmacies:
        group = folium.FeatureGroup(name=t("pharmacies", lang))
        _add_pharmacies(group, region.pharmacies, lang)
        group.add_to(fmap)
    if layer_control:
        folium.LayerControl(collapsed=False).add_to(fmap)
    return fmap


def street_layer(network: WalkNetwork) -> gpd.GeoDataFrame:
    """Major and local streets as two merged MultiLineStrings in EPSG:4326, rounded to about 1 m, so a
    city's streets weigh a few MB in the browser instead of one feature per edge (built once per network)."""
    return network.memo.get("maps.street_layer", lambda: _street_layer(network))


def _street_layer(network: WalkNetwork) -> gpd.GeoDataFrame:
    rows = []
    for group, classes in (("major", _MAJOR_STREETS), ("local", _LOCAL_STREETS)):
        lines = network.edge_lines[np.isin(network.edge_highway, classes)]
        rows.append({"group": group, "geometry": shapely.multilinestrings(lines) if len(lines) else None})
    layer = gpd.GeoDataFrame(rows, geometry="geometry", crs=network.crs).dropna().to_crs("EPSG:4326")
    layer["geometry"] = shapely.set_precision(layer.geometry.to_numpy(), 1e-5)
    return layer


class MetricScale(folium.MacroElement):
    """A scale bar in metres and kilometres only (Leaflet's default adds miles and feet)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false, maxWidth: 160}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)


class FocusWithoutScrolling(folium.MacroElement):
    """Leaflet focuses the map on every mouse press (for its arrow-key panning), and a focused element is
    scrolled into view: where the map is partly below the window's edge (1100 x 800), a press scrolled
    the page by 171 px before the button came up, and the click was read at another place than the one
    pressed. Here the map takes focus without scrolling (arrow keys still pan it)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map) {
            var keyboard = map.keyboard;
            if (!keyboard || !keyboard.enabled()) return;
            keyboard.disable();
            keyboard._onMouseDown = function () {
                if (!this._focused) this._map.getContainer().focus({preventScroll: true});
            };
            keyboard.enable();
        })({{ this._parent.get_name() }});
        {% endmacro %}
    """)


class RefitWhenShown(folium.MacroElement):
    """A map drawn while hidden (an app tab not yet opened) has no size, so Leaflet fits its bounds into
    nothing and shows an empty grey view once the tab opens. Here the map watches its container and,
    when it gets a size after having none, recomputes its size and fits ``bounds`` (``[[south, west],
    [north, east]]``, degrees) again at each resize of the next 1.5 s (the frame settles in steps); on any
    later resize it only recomputes its size (the planner's own view is kept)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map, bounds) {
            var container = map.getContainer();
            if (typeof ResizeObserver === "undefined") return;
            var hidden = container.clientWidth === 0 || container.clientHeight === 0, refitUntil = 0;
            new ResizeObserver(function () {
                if (container.clientWidth === 0 || container.clientHeight === 0) { hidden = true; return; }
                map.invalidateSize();
                if (hidden) { hidden = false; refitUntil = Date.now() + 1500; }
                // the frame around the map settles over a few resizes once shown: fit at each of them
                if (Date.now() < refitUntil) map.fitBounds(bounds);
            }).observe(container);
        })({{ this._parent.get_name() }}, {{ this.bounds }});
        {% endmacro %}
    """)

    def __init__(self, bounds: list[list[float]]):
        super().__init__()
        self._name = "RefitWhenShown"
        self.bounds = json.dumps([[float(v) for v in corner] for corner in bounds])


def fitted_map(bounds_lonlat) -> folium.Map:
    """An offline Leaflet map (no tiles, canvas drawing) fitted to ``bounds_lonlat`` (west, south, east,
    north; degrees), with the metric scale bar, focus without scrolling and a refit when first shown."""
    west, south, east, north = (float(v) for v in bounds_lonlat)
    fmap = folium.Map(tiles=None, prefer_canvas=True)
    MetricScale().add_to(fmap)
    FocusWithoutScrolling().add_to(fmap)
    fmap.fit_bounds([[south, west], [north, east]])
    RefitWhenShown([[south, west], [north, east]]).add_to(fmap)
    return fmap


class StreetLayer(JSCSSMixin, folium.map.Layer):
    """The streets of ``network`` (:func:`street_layer`) as a map layer whose GeoJSON travels as a script
    the browser loads once (a ``data:`` URL), not as text inside the map's own script.

    Why: folium turns every rendered script into a Jinja template, and streamlit-folium renders the map
    on every rerun, so 1.3 MB of inline demo streets cost 0.3 s per rerun. The data URL is built once per
    network; the component loads its scripts only when the map is first drawn, and the HTML export
    embeds it like any other script, so the layer still works offline. The app goes one step further
    and publishes the script as a file (:func:`serve_scripts_from`), so reruns do not carry it at all.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        if (!{{ this._parent.get_name() }}.getPane({{ this.pane|tojson }})) {
            var streetPane = {{ this._parent.get_name() }}.createPane({{ this.pane|tojson }});
            streetPane.style.zIndex = 350;
            streetPane.style.pointerEvents = "none";
        }
        var {{ this.get_name() }} = L.geoJson(window[{{ this.global_name|tojson }}], {
            interactive: false,
            pane: {{ this.pane|tojson }},
            style: function (feature) {
                var major = feature.properties.group === "major";
                return {color: major ? "#8c8c8c" : "#c4c4c4", weight: major ? 2.5 : 1};
            }
        });
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    #: The streets' own pane under the overlays (z-index 400): with a canvas of their own, redrawing the
    #: assessment layers after a parameter change does not redraw tens of thousands of street segments.
    pane = "plannerStreets"

    def __init__(self, network: WalkNetwork, *, name: str = "streets", show: bool = True):
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "StreetLayer"
        def build() -> tuple[str, str]:
            geojson = street_layer(network).to_json(drop_id=True)
            # Named by content: two networks in one browser session never share a variable.
            global_name = "plannerStreets" + hashlib.sha256(geojson.encode("utf-8")).hexdigest()[:12]
            script = f"window[{json.dumps(global_name)}] = {geojson};"
            return global_name, "data:text/javascript;base64," + base64.b64encode(script.encode("utf-8")).decode("ascii")

        self.global_name, url = network.memo.get("maps.street_script", build)
        self.default_js = [(self.global_name, url)]


#: Above this many pharmacies a map draws them as one :class:`PointCanvasLayer` (compact arrays, tooltips
#: written as text) instead of a GeoJSON layer: a province's 100,000 pharmacies made a 41 MB map.html
#: and 8 s of GeoJSON building; as arrays they weigh about a fifth and take well under a second.
LARGE_POINT_LAYER = 5_000


def _add_pharmacies(group: folium.FeatureGroup, pharmacies: gpd.GeoDataFrame | dict, lang: str) -> None:
    """Pharmacies as one GeoJSON layer of circle markers coloured by their highest service, with tooltips
    (one layer, not a marker object per pharmacy: a quarter of the bytes and far less work per rerun).
    ``pharmacies`` is the layer, or its :func:`pharmacy_geojson` / :func:`pharmacy_points` made earlier;
    a layer of more than :data:`LARGE_POINT_LAYER` pharmacies is drawn as a :class:`PointCanvasLayer`."""
    if isinstance(pharmacies, PointData) or (not isinstance(pharmacies, dict) and len(pharmacies) > LARGE_POINT_LAYER):
        PointCanvasLayer(pharmacies if isinstance(pharmacies, PointData) else pharmacy_points(pharmacies, lang)
                         ).add_to(group)
        return
    data = pharmacies if isinstance(pharmacies, dict) else pharmacy_geojson(pharmacies, lang)
    _safe_layer(
        data,
        marker=folium.CircleMarker(radius=4, color="#333333", weight=0.5, fill=True, fill_opacity=0.95),
        style_function=lambda f: {"fillColor": f["properties"]["colour"], "color": f["properties"]["ring"],
                                  "weight": f["properties"]["ring_weight"]},
        tooltip=folium.GeoJsonTooltip(["name", "store", "address", "services", "status"],
                                      aliases=["", "", "", t("services", lang), t("settlement_status", lang)]),
    ).add_to(group)


#: The ring of a pharmacy marker by settlement status (colour, stroke weight in pixels): a suspended
#: pharmacy has a thick red ring, a terminated one a thick black ring (its fill stays its services').
STATUS_RINGS = {SUSPENDED: ("#d62728", 2.5), TERMINATED: ("#000000", 2.5)}
DEFAULT_RING = ("#333333", 0.5)


def _status_words(pharmacies: gpd.GeoDataFrame, lang: str) -> list[str]:
    """Each pharmacy's settlement status in words, with its rules and end date (blank: no status column)."""
    if "settlement" not in pharmacies.columns:
        return [""] * len(pharmacies)
    until = pharmacies["settlement_until"] if "settlement_until" in pharmacies.columns else [None] * len(pharmacies)
    return [status_text(status, rules or "", end).get(lang)
            for status, rules, end in zip(pharmacies["settlement"], pharmacies["settlement_rules"], until)]


def _rings(pharmacies: gpd.GeoDataFrame) -> list[tuple[str, float]]:
    statuses = pharmacies["settlement"] if "settlement" in pharmacies.columns else [None] * len(pharmacies)
    return [STATUS_RINGS.get(status, DEFAULT_RING) for status in statuses]


@dataclasses.dataclass(frozen=True)
class PointData:
    """Points for a :class:`PointCanvasLayer`, as one JSON text of arrays (no objects, so no ``{``):
    ``[lons, lats, colour_codes, palette, text_rows]`` with lon/lat in WGS84 degrees rounded to 1e-5
    (about 1 m) and ``text_rows`` the tooltip lines of each point, plain text (shown with ``textContent``,
    never parsed as HTML). ``<``, ``>``, ``&``, ``{`` and ``}`` inside strings are ``\\u`` escapes, so the
    text can sit in a ``<script>`` and pass folium's Jinja rendering unchanged."""

    json_text: str
    count: int


def point_data(lon, lat, colours, rows) -> PointData:
    """:class:`PointData` of points at ``lon``/``lat`` (WGS84 degrees) coloured ``colours`` (hex strings)
    with tooltip lines ``rows`` (one list of plain strings per point)."""
    palette, codes = np.unique(np.asarray(colours, dtype=object).astype(str), return_inverse=True)
    arrays = [np.round(np.asarray(lon, dtype=float), 5).tolist(), np.round(np.asarray(lat, dtype=float), 5).tolist(),
              codes.tolist(), palette.tolist(), [[str(v) for v in row] for row in rows]]
    text = json.dumps(arrays, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch in "<>&{}":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return PointData(text, len(arrays[0]))


def pharmacy_points(pharmacies: gpd.GeoDataFrame, lang: str = "zh") -> PointData:
    """Pharmacies as :class:`PointData`: coloured by their highest service like :func:`pharmacy_geojson`,
    tooltip lines name, store type, address, services and the settlement status where the table has one
    (built column by column: fast for 100,000; the rings of :data:`STATUS_RINGS` are the GeoJSON layer's)."""
    order = [Service.DUAL_CHANNEL, Service.CHRONIC_DISEASE, Service.OUTPATIENT_POOLING, Service.PERSONAL_ACCOUNT]
    held = np.column_stack([pharmacies[s.value].astype(bool).to_numpy() for s in order])
    combos, which = np.unique(held, axis=0, return_inverse=True)
    which = np.asarray(which).ravel()
    combo_labels = [service_labels([s for s, h in zip(order, combo) if h], lang) for combo in combos]
    combo_colours = [next((SERVICE_COLOURS[s] for s, h in zip(order, combo) if h), "#000000") for combo in combos]
    stores = np.where(pharmacies["chain"].astype(bool).to_numpy(), t("chain", lang), t("single", lang))
    services_title = t("services", lang)
    names = pharmacies["name"].fillna("").astype(str).tolist()
    addresses = pharmacies["address"].fillna("").astype(str).tolist() if "address" in pharmacies.columns \
        else [""] * len(names)
    rows = [[name, store, address, f"{services_title}: {combo_labels[k]}", *([status] if status else [])]
            for name, store, address, k, status in zip(names, stores.tolist(), addresses, which.tolist(),
                                                       _status_words(pharmacies, lang))]
    xy = shapely.get_coordinates(pharmacies.geometry.to_crs("EPSG:4326").to_numpy())
    return point_data(xy[:, 0], xy[:, 1], [combo_colours[k] for k in which], rows)


class PointCanvasLayer(folium.map.Layer):
    """Many points as canvas circle markers built in the browser from :class:`PointData` (inline, so the
    HTML export stays one offline file), with one tooltip for the whole layer whose lines are set as
    ``textContent``: a hostile name shows as text and runs nothing, whatever it holds.

    Why: one GeoJSON feature object per point cost about 400 bytes and folium's per-feature tooltip
    machinery; at 100,000 pharmacies that was 41 MB of map.html and 15 s to write it."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var data = {{ this.data.json_text }};
            var lons = data[0], lats = data[1], codes = data[2], palette = data[3], rows = data[4];
            var renderer = L.canvas({padding: 0.3});
            var group = L.featureGroup();
            for (var i = 0; i < lons.length; i++) {
                var marker = L.circleMarker([lats[i], lons[i]], {renderer: renderer, radius: {{ this.radius }},
                    color: "#333333", weight: 0.5, fill: true, fillColor: palette[codes[i]], fillOpacity: 0.95});
                marker.plannerIndex = i;
                group.addLayer(marker);
            }
            group.bindTooltip(function (layer) {
                var box = document.createElement("div");
                rows[layer.plannerIndex].forEach(function (line) {
                    var div = document.createElement("div");
                    div.textContent = line;
                    box.appendChild(div);
                });
                return box;
            });
            return group;
        })();
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, data: PointData, *, name: str = "points", radius: float = 3, show: bool = True):
        super().__init__(name=name, overlay=True, control=False, show=show)
        self._name = "PointCanvasLayer"
        self.data = data
        self.radius = float(radius)


def checked_point_group(lon: float, lat: float, lang: str = "zh") -> folium.FeatureGroup:
    """The point a designation check is about (WGS84 degrees) as a ringed marker, so the verdict under
    the map can be read against its place."""
    group = folium.FeatureGroup(name=t("check_point", lang))
    folium.CircleMarker([lat, lon], radius=9, color="#000000", weight=3, fill=True, fill_color="#ffffff",
                        fill_opacity=0.5, tooltip=f"{t('check_point', lang)}: {lon:.6f}, {lat:.6f}").add_to(group)
    folium.CircleMarker([lat, lon], radius=2, color="#000000", weight=0, fill=True, fill_color="#000000",
                        fill_opacity=1).add_to(group)
    return group


def pharmacy_geojson(pharmacies: gpd.GeoDataFrame, lang: str = "zh") -> dict:
    """Pharmacies as GeoJSON points with display properties: name, store type, address, services, colour,
    settlement status in words and the marker ring (:data:`STATUS_RINGS`; strings made safe for a map by :func:`safe_geojson`; not for export)."""
    order = [Service.DUAL_CHANNEL, Service.CHRONIC_DISEASE, Service.OUTPATIENT_POOLING, Service.PERSONAL_ACCOUNT]
    held = [[s for s in order if getattr(row, s.value)] for row in pharmacies.itertuples()]
    layer = gpd.GeoDataFrame({
        "name": pharmacies["name"].to_numpy(),
        "store": [t("chain", lang) if chain else t("single", lang) for chain in pharmacies["chain"]],
        "address": pharmacies["address"].to_numpy(),
        "services": [service_labels(h, lang) for h in held],
        "colour": [SERVICE_COLOURS[h[0]] if h else "#000000" for h in held],
        "status": _status_words(pharmacies, lang),
        "ring": [ring for ring, _ in _rings(pharmacies)],
        "ring_weight": [weight for _, weight in _rings(pharmacies)],
    }, geometry=pharmacies.geometry.to_numpy(), crs=pharmacies.crs)
    return _geojson(layer)


_ASSETS = Path(__file__).resolve().parent / "assets" / "leaflet"


def assessment_map(assessment, *, service: Service | str = Service.OUTPATIENT_POOLING, lang: str = "zh",
                   network: WalkNetwork | None = None, extra_layers=()) -> folium.Map:
    """The region map plus, for one service, sub-districts coloured by class, its 15-minute circles,
    the uncovered residential area and the blocked / priority / review zones (each a toggled layer).

    Polygons are simplified for display (about one raster cell); exported files keep them exact.
    Pass ``network`` to draw the streets (useful without a basemap). The map is :func:`base_map` plus
    :func:`assessment_layers`; the app sends the two separately so a rerun does not re-send the base.
    ``extra_layers``: more folium layers drawn on top (listed in the layer control too).
    """
    fmap = base_map(assessment.region, service=service, network=network, lang=lang, layer_control=False)
    for group in (*assessment_layers(assessment, service=service, lang=lang, layers=ASSESSMENT_LAYERS), *extra_layers):
        group.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    return fmap


#: Marker colours of the sites a what-if added, withdrew or changed.
SITE_CHANGE_COLOURS = {"site_added": "#1a9850", "site_removed": "#000000", "site_changed": "#f1a340"}
#: Fill colours of the zone areas a what-if added or lifted.
ZONE_CHANGE_COLOURS = {"added": "#b2182b", "lifted": "#1a9850"}


def site_plan_map(plan, *, lang: str = "zh", network: WalkNetwork | None = None) -> folium.Map:
    """The assessment map of a site plan's service plus its suggested sites, numbered by rank
    (``plan``: a :class:`planning.siting.SitePlan`)."""
    group = folium.FeatureGroup(name=t("suggested_sites", lang))
    for row in plan.sites.itertuples():
        folium.Marker(
            [row.lat, row.lon],
            icon=folium.DivIcon(html=f'<div style="font:bold 12px sans-serif;color:white;background:#1a9850;'
                                     f'border:1px solid #333;border-radius:50%;width:20px;height:20px;'
                                     f'text-align:center;line-height:20px">{int(row.rank)}</div>'),
            tooltip=f"#{int(row.rank)} +{row.gain_persons:,.0f} ({row.covered_share:.1%}) {row.rule_ids}",
        ).add_to(group)
    return escape_user_text(assessment_map(plan.assessment, service=plan.service, lang=lang, network=network,
                                           extra_layers=[group]))


def scenario_diff_map(diff, *, service: Service | str = Service.OUTPATIENT_POOLING, lang: str = "zh") -> folium.Map:
    """A folium map of what a scenario changed for one service (``diff``: a
    :class:`planning.scenario.ScenarioDiff`): changed sub-districts (coloured by their class after), zone
    areas added (red) and lifted (green), sites added, withdrawn or changed."""
    service = Service(service)
    fmap = region_map(diff.after.region, lang=lang, subdistricts=False, layer_control=False)
    layer = diff.layer
    groups = []
    changed = layer[(layer["change"] == "subdistrict") & (layer["service"] == service.value)]
    if len(changed):
        shown = changed[["name", "class_before", "class_after", "covered_share_before", "covered_share_after",
                         "requirements", "geometry"]].copy()
        for column in ("covered_share_before", "covered_share_after"):
            shown[column] = shown[column].map(lambda v: f"{v:.1%}")
        shown = shown.fillna("")
        groups.append(folium.GeoJson(
            shown, name=t("changed_subdistricts", lang),
            style_function=lambda f: {"color": "#333333", "weight": 2, "fillOpacity": 0.5,
                                      "fillColor": CLASS_COLOURS.get(f["properties"]["class_after"], "#cccccc")},
            tooltip=folium.GeoJsonTooltip(["name", "class_before", "class_after", "covered_share_before",
                                           "covered_share_after", "requirements"])))
    for change, colour in ZONE_CHANGE_COLOURS.items():
        part = layer[(layer["change"] == change) & (layer["service"] == service.value)]
        if len(part):
            part = part[["zone", "rule_ids", "area_km2", "geometry"]].copy()
            part["geometry"] = part.geometry.simplify(1e-4, preserve_topology=True)
            groups.append(folium.GeoJson(
                part, name=t(f"zones_{change}", lang),
                style_function=lambda f, c=colour: {"color": c, "weight": 1, "fillColor": c, "fillOpacity": 0.45},
                tooltip=folium.GeoJsonTooltip(["zone", "rule_ids", "area_km2"])))
    groups.append(site_changes_group(diff, lang))
    for group in groups:
        group.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    return escape_user_text(fmap)


def site_changes_group(diff, lang: str = "zh") -> folium.FeatureGroup:
    """The sites a scenario added (green), withdrew (black) or whose services changed (orange), as a
    feature group of circle markers with tooltips (``diff``: a :class:`planning.scenario.ScenarioDiff`)."""
    group = folium.FeatureGroup(name=t("site_changes", lang))
    layer = diff.layer
    for row in layer[layer["change"].isin(list(SITE_CHANGE_COLOURS))].itertuples():
        folium.CircleMarker([row.geometry.y, row.geometry.x], radius=7, color="#222222", weight=1.5, fill=True,
                            fill_color=SITE_CHANGE_COLOURS[row.change], fill_opacity=0.95,
                            tooltip=f"{t(row.change, lang)}: {row.name} ({row.code})").add_to(group)
    return escape_user_text(group)


#: The layers :func:`assessment_layers` can draw: vectors bottom to top (classes, zones, pharmacies) and the
#: raster layers (walk time, circles, uncovered area) in :data:`RASTER_PANE` above them.
ASSESSMENT_LAYERS = ("decision", "classes", "walk_time", "circles", "uncovered", "zone_blocked", "zone_priority",
                     "zone_review", "workers", "pharmacies")
#: The first view: the decision map, circles and uncovered area as outlines over it, the pharmacies.
DEFAULT_LAYERS = ("decision", "circles", "uncovered", "pharmacies")
#: The second view: the saturation classes instead of the decision.
CLASS_VIEW_LAYERS = ("classes", "circles", "uncovered", "pharmacies")
def with_worker_layer(layers: tuple[str, ...], region: Region) -> tuple[str, ...]:
    """``layers`` with the worker layer drawn under the pharmacies when ``region`` has one (the app's
    preset views show where people work whenever it is known), else ``layers`` unchanged."""
    if region.workers is None or "workers" in layers:
        return tuple(layers)
    rest = tuple(x for x in layers if x != "pharmacies")
    return (*rest, "workers", *(("pharmacies",) if "pharmacies" in layers else ()))


#: Layers left unticked in the layer control when every layer is drawn (the HTML export).
_OFF_WHEN_ALL = {"classes", "walk_time", "zone_blocked", "zone_priority", "zone_review"}
#: Leaflet pane of the raster layers: above the vector overlays (z-index 400), so class fills do not
#: hide them, and below markers. Images take no pointer events, so tooltips and clicks reach the vectors.
RASTER_PANE = "plannerRasters"


def base_map(region: Region, *, service: Service | str, network: WalkNetwork | None = None, lang: str = "zh",
             layer_control: bool = True, layers: tuple[str, ...] = DEFAULT_LAYERS) -> folium.Map:
    """What does not change with the assessment: counties, streets and the legend of ``service`` for the
    assessment ``layers`` drawn over it (:func:`legend_html`)."""
    fmap = region_map(region, network=network, lang=lang, subdistricts=False, layer_control=layer_control,
                      pharmacies=False)
    fmap.get_root().html.add_child(folium.Element(legend_html(Service(service), lang, layers=layers)))
    folium.map.CustomPane(DECISION_PANE, z_index=390, pointer_events=False).add_to(fmap)
    folium.map.CustomPane(RASTER_PANE, z_index=450, pointer_events=False).add_to(fmap)
    return fmap


def assessment_layers(assessment, *, service: Service | str, lang: str = "zh",
                      layers: tuple[str, ...] = DEFAULT_LAYERS) -> list[folium.FeatureGroup]:
    """One service's assessment as feature groups, only those named in ``layers`` (see
    :data:`ASSESSMENT_LAYERS`): classes, circles, uncovered area, the three zones, the worker layer (when
    the region has one, :mod:`planning.workers`), pharmacies on top."""

    service = Service(service)
    groups = []
    wanted = set(layers)

    def group(key: str, show: bool = True, name: str | None = None) -> folium.FeatureGroup:
        groups.append(folium.FeatureGroup(name=name or t(key, lang), show=show))
        return groups[-1]

    table = assessment.subdistricts[assessment.subdistricts["service"] == service.value]
    if "decision" in wanted:
        url, bounds = assessment.memo.get(("maps.image_decision", service), lambda: decision_image(assessment, service))
        decision = group("decision")
        _image_layer(url, bounds, pane=DECISION_PANE).add_to(decision)
        # hovering a place names its verdict and the rules deciding it, read from the same cells
        CellTipLayer(assessment.memo.get(("maps.decision_tips", service, lang),
                                         lambda: decision_tips(assessment, service, lang))).add_to(decision)
    if "classes" in wanted and table["class"].notna().any():
        reason = Text("class_reason_zh", "class_reason").get(lang)
        columns = ["name", "code", "class", reason, "per_10k", "e2sfca_per_10k", "covered_share", "rule_ids",
                   "geometry"]
        shown = _for_display(table[columns], tolerance_deg=2e-5).rename(columns={reason: "class_reason"})
        shown["class_label"] = shown["class"].map(lambda c: CLASS_LABELS[c].get(lang) if c else "")
        shown["covered_share"] = shown["covered_share"].map(lambda v: f"{v:.0%}")
        for column in ("per_10k", "e2sfca_per_10k"):
            shown[column] = shown[column].map(lambda v: f"{v:.2f}" if np.isfinite(v) else "—")
        _safe_layer(
            assessment.memo.get(("maps.geojson_classes", service, lang), lambda: _geojson(shown)),
            style_function=lambda f: {"color": "#444444", "weight": 1, "fillOpacity": 0.55,
                                      "fillColor": CLASS_COLOURS.get(f["properties"]["class"], "#ffffff")},
            tooltip=folium.GeoJsonTooltip(["name", "class_label", "class_reason", "per_10k", "e2sfca_per_10k",
                                           "covered_share", "rule_ids"],
                                          aliases=["", t("class", lang), t("measure", lang), t("per_10k", lang),
                                                   t("e2sfca_per_10k", lang), t("covered_share", lang),
                                                   t("rule_ids", lang)]),
        ).add_to(group("classes", show=set(layers) != set(ASSESSMENT_LAYERS)))
    policy = assessment.policy
    if "walk_time" in wanted:
        url, bounds = assessment.memo.get(("maps.image_walk_time", service), lambda: walk_time_image(assessment, service))
        _image_layer(url, bounds).add_to(group("walk_time", show=set(layers) != set(ASSESSMENT_LAYERS)))
    if "circles" in wanted:
        url, bounds = assessment.memo.get(("maps.image_circles", service), lambda: mask_image(
            assessment.rasters.circle_mask(service), assessment.rasters.grid.transform, assessment.rasters.crs,
            SERVICE_COLOURS[service], fill_alpha=0.0, edge_alpha=0.95, edge_px=2))
        _image_layer(url, bounds).add_to(group("circles", name=t("circles_minutes", lang, minutes=policy.walk_minutes)))
    if "uncovered" in wanted:
        url, bounds = assessment.memo.get(("maps.image_uncovered", service), lambda: mask_image(
            assessment.rasters.uncovered_mask(service), assessment.rasters.grid.transform, assessment.rasters.crs,
            UNCOVERED_COLOUR, fill_alpha=0.0, edge_alpha=0.8, edge_px=1))
        _image_layer(url, bounds).add_to(group("uncovered"))
    zones_wanted = [z for z in ("blocked", "priority", "review") if f"zone_{z}" in wanted]
    zones = (assessment.memo.get(("maps.display_zones", service), lambda: _for_display(assessment.zones_for(service)))
             if zones_wanted else None)
    for zone in zones_wanted:
        part = zones[zones["zone"] == zone]
        if len(part):
            _safe_layer(assessment.memo.get(("maps.geojson_zone", service, zone),
                                              lambda part=part: _geojson(part[["zone", "rule_ids", "geometry"]])),
                           style_function=lambda f, z=zone: {"color": ZONE_COLOURS[z], "weight": 1,
                                                             "fillColor": ZONE_COLOURS[z], "fillOpacity": 0.3},
                           tooltip=folium.GeoJsonTooltip(["rule_ids"], aliases=[t("rule_ids", lang)]),
                           ).add_to(group(f"zone_{zone}", show=set(layers) != set(ASSESSMENT_LAYERS)))
    workers = assessment.region.workers
    if "workers" in wanted and workers is not None and len(workers.places):
        _safe_layer(assessment.memo.get(("maps.geojson_workers", lang), lambda: _geojson(worker_display(workers, lang))),
                    style_function=lambda f: {"color": WORKERS_COLOUR, "weight": 2, "dashArray": "6 4",
                                              "fillColor": WORKERS_COLOUR, "fillOpacity": 0.08},
                    marker=folium.CircleMarker(radius=6, color=WORKERS_COLOUR, weight=2, fill=True,
                                               fill_color="#ffffff", fill_opacity=0.9),
                    tooltip=folium.GeoJsonTooltip(["label", "workers_text"], aliases=["", t("workers", lang)]),
                    ).add_to(group("workers", name=t("workers_layer", lang)))
    if "pharmacies" in wanted:
        pharmacies = assessment.pharmacies  # the region's, with the settlement status
        data = (assessment.memo.get(("maps.pharmacy_points", lang), lambda: pharmacy_points(pharmacies, lang))
                if len(pharmacies) > LARGE_POINT_LAYER else
                assessment.memo.get(("maps.pharmacy_geojson", lang), lambda: pharmacy_geojson(pharmacies, lang)))
        _add_pharmacies(group("pharmacies"), data, lang)
    return groups


#: Fill of an area whose class the data could not decide (never a class colour).
NOT_JUDGED_COLOUR = "#ffffff"
#: County columns the overview's tooltip names, in order.
OVERVIEW_COLUMNS = ("name", "class", "class_reason", "pharmacies", "per_10k", "covered_share", "r2_ok", "rule_ids",
                    "not_judged")


def overview_map(result, *, service: Service | str, lang: str = "zh") -> folium.Map:
    """A province's or city's overview by county: each county of ``result`` (a merged
    :class:`planning.tiles.TiledAssessment`, or an :class:`planning.assess.Assessment`) filled by its
    class for ``service`` (white: not judged), its sub-districts outlined, the county's class, measure,
    pharmacies, R2 outcome and rule ids in its tooltip (the counties table, as :func:`for_people` words
    it), and a legend of the classes. No basemap (works offline)."""
    service = Service(service)
    counties = result.counties[result.counties["service"] == service.value]
    fmap = fitted_map(result.region.counties.total_bounds)
    _safe_layer(_geojson(_for_display(result.region.subdistricts[["geometry"]], tolerance_deg=1e-4)),
                name=t("subdistricts", lang), style_function=lambda f: {"color": "#777777", "weight": 0.6,
                                                                       "fillOpacity": 0}).add_to(fmap)
    shown = for_people(counties[list(OVERVIEW_COLUMNS)], lang)
    tooltip = list(shown.columns)
    shown["fill"] = counties["class"].map(lambda c: CLASS_COLOURS.get(c, NOT_JUDGED_COLOUR) if c else NOT_JUDGED_COLOUR
                                          ).to_numpy()
    shown = gpd.GeoDataFrame(shown, geometry=_for_display(counties[["geometry"]], tolerance_deg=1e-4).geometry.to_numpy(),
                             crs=counties.crs)
    _safe_layer(_geojson(shown), name=t("counties", lang),
                style_function=lambda f: {"color": "#222222", "weight": 2, "fillOpacity": 0.6,
                                          "fillColor": f["properties"]["fill"]},
                tooltip=folium.GeoJsonTooltip(tooltip)).add_to(fmap)
    legend = legend_html(service, lang, layers=("classes",),
                         extra=[("fill", NOT_JUDGED_COLOUR, t("verdict_not_judged", lang))])
    fmap.get_root().html.add_child(folium.Element(legend))
    folium.LayerControl(collapsed=False).add_to(fmap)
    return fmap


def worker_display(workers, lang: str = "zh") -> gpd.GeoDataFrame:
    """The worker layer's places for the map (EPSG:4326): ``label`` (name, else kind; "（估算）" /
    "(estimate)" for an OSM estimate), ``workers_text`` (persons) and the geometry (simplified)."""
    places = workers.places
    names = places["name"].fillna("").astype(str) if "name" in places.columns else pd.Series("", index=places.index)
    label = names.where(names != "", places["kind"].astype(str))
    if workers.basis == "osm_estimate":
        label = label + Text("（估算）", " (estimate)").get(lang)
    shown = gpd.GeoDataFrame({"label": label, "workers_text": places["workers"].map(lambda v: f"{v:,.0f}")},
                             geometry=places.geometry, crs=places.crs)
    return _for_display(shown, tolerance_deg=2e-5)


CLASS_COLOURS = {"saturated": "#7b3294", "balanced": "#a6dba0", "underserved": "#fdb863", "blank": "#e66101"}
#: The decision map's outcomes (planning.rules.VERDICTS) in the Okabe-Ito palette, told apart with every
#: common colour-vision deficiency: vermillion, yellow, sky blue, bluish green, and a light grey for "not
#: judged" (the pharmacies' blue, orange, grey and pink dots stay distinct from them).
DECISION_COLOURS = {"blocked": "#d55e00", "review": "#f0e442", "priority": "#56b4e9", "allowed": "#009e73",
                    "not_judged": "#dddddd"}
#: The zone layers mean what the decision colours mean: the same colours.
ZONE_COLOURS = {zone: DECISION_COLOURS[zone] for zone in ("blocked", "priority", "review")}
DECISION_ALPHA = 0.5
UNCOVERED_COLOUR = "#cc0000"
#: The worker layer (where people work): dashed outlines of work areas, rings at workplace points.
WORKERS_COLOUR = "#5e3c99"
#: Pharmacies holding no listed service (drawn black).
NO_SERVICE_COLOUR = "#000000"
#: Leaflet pane of the decision colours: under the outlines of the raster pane, above the vector overlays.
DECISION_PANE = "plannerDecision"
#: Walk-time bands (thirds of the walk time), nearest first.
WALK_BAND_COLOURS = ("#08519c", "#4292c6", "#9ecae1")


# ----------------------------------------------------------------------------- raster layers as images
# The circles, the uncovered area and the walk time are cell rasters of the assessment's grid. Drawn as
# a PNG they weigh tens of kB and take milliseconds; polygonising the demo's uncovered cells gave 34,000
# vertices, 190 kB and 0.13 s per map. Exported files (gap report, GeoTIFF) keep the exact layers.

def mask_image(mask: np.ndarray, transform, crs: str, colour: str, *, fill_alpha: float,
               edge_alpha: float, edge_px: int = 1) -> tuple[str, list[list[float]]]:
    """A boolean raster (``transform`` in the metric ``crs``) as a PNG data URL in Web Mercator: true cells
    in ``colour`` at ``fill_alpha``, the outer ``edge_px`` rings of pixels at ``edge_alpha``, the rest
    transparent (``fill_alpha`` 0: an outline that never muddies the colours under it). Returns the URL
    and its ``[[south, west], [north, east]]`` bounds (WGS84 degrees) for Leaflet."""
    codes, bounds = _to_web_mercator(mask.view(np.uint8), transform, crs)
    inside = codes > 0
    codes[inside & ~ndimage.binary_erosion(inside, iterations=edge_px)] = 2
    return _png_url(codes, [(colour, fill_alpha), (colour, edge_alpha)]), bounds


def decision_image(assessment, service: Service) -> tuple[str, list[list[float]]]:
    """The decision map of ``service`` (:meth:`planning.assess.Assessment.decisions`, the click's verdict
    at every cell) in :data:`DECISION_COLOURS`, as :func:`mask_image` returns it."""
    codes = assessment.decision_verdicts(Service(service))[0]
    codes, bounds = _to_web_mercator(codes, assessment.rasters.grid.transform, assessment.rasters.crs)
    palette = [(DECISION_COLOURS[name], DECISION_ALPHA) for name in DECISION_CODES]
    return _png_url(codes, palette), bounds


@dataclasses.dataclass(frozen=True)
class CellTips:
    """What hovering a raster layer says, cell by cell: ``url`` a PNG (data URL, opaque RGB, EPSG:3857
    pixels) whose red + 256 x green is each pixel's key, ``transform`` its ``(left, pixel width, top,
    pixel height, width, height)`` in EPSG:3857 metres, and ``lines`` the plain-text tooltip lines of
    each key that occurs (key 0: no tooltip)."""

    url: str
    transform: tuple[float, float, float, float, int, int]
    lines: dict[int, list[str]]

    @property
    def json_text(self) -> str:
        return json.dumps({"url": self.url, "transform": self.transform, "lines": self.lines}, ensure_ascii=False)


def decision_tips(assessment, service: Service, lang: str = "zh") -> CellTips:
    """The decision map's hover text of ``service``: at each cell its verdict and the rule ids deciding it
    (:meth:`planning.assess.Assessment.decision_verdicts`, the cells the colours are drawn from)."""
    service = Service(service)
    rule_sets = assessment.decision_verdicts(service)[1]
    mercator = mercator_grid(rule_sets.shape, assessment.rasters.grid.transform, assessment.rasters.crs)
    keys = mercator.take(rule_sets)
    present = np.flatnonzero(np.bincount(keys.ravel()))
    lines = {}
    for key, (verdict, rule_ids) in describe_rule_sets(present).items():
        lines[key] = [t(f"verdict_{verdict}", lang)] + ([f"{t('rule_ids', lang)}: {', '.join(rule_ids)}"]
                                                         if rule_ids else [])
    if len(present) <= 256:  # a palette image: pixel = palette position, palette colour = (key % 256, key // 256, 0)
        image = Image.fromarray(np.searchsorted(present, keys).astype(np.uint8), mode="P")
        image.putpalette(np.column_stack([present & 0xFF, present >> 8, np.zeros_like(present)]).astype(np.uint8).tobytes())
    else:
        image = Image.fromarray(np.dstack([keys & 0xFF, keys >> 8, np.zeros_like(keys)]).astype(np.uint8), mode="RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    target = mercator.transform
    return CellTips("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
                    (target.c, target.a, target.f, target.e, keys.shape[1], keys.shape[0]), lines)


class CellTipLayer(folium.map.Layer):
    """A tooltip following the pointer over a raster (:class:`CellTips`): the key image is drawn once into
    a canvas in the browser and each mouse move reads its pixel, so the text is the cell's under the
    pointer, with no polygon built or sent. Lines are set as ``textContent``."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var tips = {{ this.tips.json_text }};
            var t = tips.transform, pixels = null, map = null;
            var image = new Image();
            image.onload = function () {
                var canvas = document.createElement("canvas");
                canvas.width = image.width; canvas.height = image.height;
                var context = canvas.getContext("2d", {willReadFrequently: true});
                context.drawImage(image, 0, 0);
                pixels = context.getImageData(0, 0, image.width, image.height).data;
            };
            image.src = tips.url;
            var tooltip = L.tooltip({direction: "top", offset: [0, -10], className: "planner-cell-tip"});
            function hide() { if (map && map.hasLayer(tooltip)) map.closeTooltip(tooltip); }
            function move(event) {  // a DOM event on the map's container: over a control or the legend, no text
                if (!pixels || !map) return;
                if (event.target.closest && event.target.closest(".leaflet-control, #planner-legend")) return hide();
                if (othersOpen()) return hide();
                var e = {latlng: map.mouseEventToLatLng(event)};
                var p = L.CRS.EPSG3857.project(e.latlng);
                var col = Math.floor((p.x - t[0]) / t[1]), row = Math.floor((p.y - t[2]) / t[3]);
                if (col < 0 || row < 0 || col >= t[4] || row >= t[5]) return hide();
                var at = 4 * (row * t[4] + col), lines = tips.lines[pixels[at] + 256 * pixels[at + 1]];
                if (!lines) return hide();
                var box = document.createElement("div");
                lines.forEach(function (line) {
                    var div = document.createElement("div");
                    div.textContent = line;
                    box.appendChild(div);
                });
                tooltip.setLatLng(e.latlng).setContent(box);
                if (!map.hasLayer(tooltip)) map.openTooltip(tooltip);
            }
            // over a pharmacy (or any feature with its own tooltip) that tooltip speaks alone
            var other = null;
            function othersOpen() { return other !== null; }
            function opened(e) { if (e.tooltip !== tooltip) { other = e.tooltip; hide(); } }
            function closed(e) { if (e.tooltip === other) other = null; }
            var Tips = L.Layer.extend({
                onAdd: function (m) {
                    map = m;
                    L.DomEvent.on(m.getContainer(), "mousemove", move);
                    L.DomEvent.on(m.getContainer(), "mouseleave", hide);
                    m.on("tooltipopen", opened);
                    m.on("tooltipclose", closed);
                },
                onRemove: function (m) {
                    hide();
                    L.DomEvent.off(m.getContainer(), "mousemove", move);
                    L.DomEvent.off(m.getContainer(), "mouseleave", hide);
                    m.off("tooltipopen", opened);
                    m.off("tooltipclose", closed);
                    map = null;
                }
            });
            return new Tips();
        })();
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, tips: CellTips, *, name: str = "cell tips"):
        super().__init__(name=name, overlay=True, control=False, show=True)
        self._name = "CellTipLayer"
        self.tips = tips


def walk_time_image(assessment, service: Service) -> tuple[str, list[list[float]]]:
    """The walk time to ``service`` within the walk time, in three bands (thirds of it, nearest darkest),
    as :func:`mask_image` returns it."""
    surface = assessment.surfaces[Service(service)]
    third = np.float32(assessment.policy.budget_m / 3)
    bands = np.ceil(surface.distance_m / third)  # 1, 2, 3 within the budget; 0 on a site itself
    codes = np.where(np.isfinite(bands) & (bands <= 3), np.maximum(bands, 1), 0).astype(np.uint8)
    codes, bounds = _to_web_mercator(codes, surface.transform, surface.crs)
    return _png_url(codes, [(c, 0.55) for c in WALK_BAND_COLOURS]), bounds


def _to_web_mercator(codes: np.ndarray, transform, crs: str) -> tuple[np.ndarray, list[list[float]]]:
    """A raster of codes (0 = nothing) moved to EPSG:3857 (nearest cell, about the same pixel size), the
    projection Leaflet stretches image overlays in, and its WGS84 bounds."""
    mercator = mercator_grid(codes.shape, transform, crs)
    return mercator.take(codes), mercator.bounds


@dataclasses.dataclass(frozen=True, eq=False)
class MercatorGrid:
    """Where each pixel of a raster grid's EPSG:3857 image takes its cell from (nearest cell, as GDAL
    warps it): ``source`` is the flat cell index + 1 per pixel (0: no cell), ``transform`` the image's
    affine transform (EPSG:3857 metres), ``bounds`` its ``[[south, west], [north, east]]`` (WGS84)."""

    source: np.ndarray
    transform: object
    bounds: list[list[float]]

    def take(self, codes: np.ndarray) -> np.ndarray:
        """``codes`` (on the grid this was made for) as the EPSG:3857 image, 0 where no cell lies."""
        flat = codes.reshape(-1)
        out = flat[np.maximum(self.source, 1) - 1]
        out[self.source == 0] = 0
        return out


@functools.lru_cache(maxsize=8)
def _mercator_grid(shape: tuple[int, int], transform, crs: str) -> MercatorGrid:
    rows, cols = shape
    left, top = transform.c, transform.f
    right, bottom = left + cols * transform.a, top + rows * transform.e
    target, width, height = warp.calculate_default_transform(crs, "EPSG:3857", cols, rows, left, bottom, right, top)
    cells = np.arange(1, rows * cols + 1, dtype=np.int32 if rows * cols < 2**31 - 1 else np.int64).reshape(rows, cols)
    source = np.zeros((height, width), dtype=cells.dtype)
    warp.reproject(cells, source, src_transform=transform, src_crs=crs, dst_transform=target, dst_crs="EPSG:3857",
                   resampling=warp.Resampling.nearest, src_nodata=0, dst_nodata=0)
    xs = [target.c, target.c + width * target.a]
    ys = [target.f + height * target.e, target.f]
    lons, lats = warp.transform("EPSG:3857", "EPSG:4326", xs, ys)
    source.setflags(write=False)
    return MercatorGrid(source, target, [[lats[0], lons[0]], [lats[1], lons[1]]])


def mercator_grid(shape: tuple[int, int], transform, crs: str) -> MercatorGrid:
    """The :class:`MercatorGrid` of a raster grid (``shape`` rows x columns, ``transform`` in ``crs``),
    computed once per grid: every image of an assessment and of its re-thresholded neighbours (the app's
    slider) shares it."""
    return _mercator_grid(tuple(int(n) for n in shape), transform, str(crs))


def _png_url(codes: np.ndarray, palette: list[tuple[str, float]]) -> str:
    """A palette PNG (code 0 transparent, code i coloured ``palette[i - 1]`` = (hex colour, alpha)) as a data URL."""
    image = Image.fromarray(codes, mode="P")
    rgb = [0, 0, 0]
    for colour, _ in palette:
        rgb += [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    image.putpalette(rgb)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=bytes([0] + [round(255 * a) for _, a in palette]), compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image_layer(url: str, bounds: list[list[float]], pane: str = RASTER_PANE) -> folium.raster_layers.ImageOverlay:
    return folium.raster_layers.ImageOverlay(url, bounds=bounds, pane=pane, interactive=False,
                                             pixelated=True, control=False)


def legend_entries(service: Service, lang: str = "zh", *, layers: tuple[str, ...] = DEFAULT_LAYERS
                   ) -> list[tuple[str, str, str]]:
    """What the legend lists for the drawn ``layers``, exactly those: ``(kind, colour, label)`` with kind
    "fill", "outline", "dot" or "ring", in drawing order."""
    wanted = set(layers)
    entries: list[tuple[str, str, str]] = []
    if "decision" in wanted:
        entries += [("fill", DECISION_COLOURS[v], t(f"verdict_{v}", lang)) for v in DECISION_COLOURS]
    if "classes" in wanted:
        entries += [("fill", CLASS_COLOURS[c], CLASS_LABELS[c].get(lang)) for c in CLASS_COLOURS]
    if "walk_time" in wanted:
        entries += [("fill", c, f"{t('walk_time', lang)} {i}/3") for i, c in enumerate(WALK_BAND_COLOURS, start=1)]
    if "circles" in wanted:
        entries.append(("outline", SERVICE_COLOURS[service], t("circles", lang)))
    if "uncovered" in wanted:
        entries.append(("outline", UNCOVERED_COLOUR, t("uncovered", lang)))
    if "decision" not in wanted:  # with the decision map drawn, its entries already name these colours
        entries += [("fill", ZONE_COLOURS[z], t(f"zone_{z}", lang)) for z in ZONE_COLOURS if f"zone_{z}" in wanted]
    if "workers" in wanted:
        entries.append(("outline", WORKERS_COLOUR, t("workers_layer", lang)))
    if "pharmacies" in wanted:
        entries += [("dot", SERVICE_COLOURS[s], s.label(lang)) for s in Service]
        entries.append(("dot", NO_SERVICE_COLOUR, t("no_listed_service", lang)))
        entries += [("ring", ring, STATUS_LABELS[status].get(lang)) for status, (ring, _w) in STATUS_RINGS.items()]
    return entries


def legend_html(service: Service, lang: str = "zh", *, layers: tuple[str, ...] = DEFAULT_LAYERS,
                extra: Sequence[tuple[str, str, str]] = ()) -> str:
    """A fixed legend box listing exactly the drawn ``layers`` (:func:`legend_entries`) and then ``extra``
    entries (same form); each swatch carries ``data-legend`` (its kind) for the browser test's colour check."""
    styles = {"fill": "background:{c};border:1px solid #555",
              "outline": "background:transparent;border:2px solid {c}",
              "dot": "background:{c};border:1px solid #555;border-radius:50%",
              "ring": "background:#ffffff;border:3px solid {c};border-radius:50%;width:8px;height:8px"}
    rows = [f"<b>{t('legend', lang)} · {service.label(lang)}</b>"]
    for kind, colour, label in [*legend_entries(service, lang, layers=layers), *extra]:
        style = styles[kind].format(c=colour)
        rows.append(f'<div><span data-legend="{kind}" data-colour="{colour}" style="display:inline-block;width:12px;'
                    f'height:12px;margin-right:6px;vertical-align:middle;{style}"></span>{safe_text(label)}</div>')
    return ('<div id="planner-legend" style="position:fixed;bottom:24px;left:12px;z-index:9999;background:white;'
            'padding:8px 10px;border:1px solid #999;border-radius:4px;font:12px/1.5 sans-serif">'
            + "".join(rows) + "</div>")


def offline_html(fmap: folium.Map) -> str:
    """The map as one self-contained HTML page: Leaflet inlined from the vendored copy, no CDN link,
    no basemap tiles, so it opens on a machine with no internet. User text in it is made safe first
    (:func:`escape_user_text`)."""
    escape_user_text(fmap)
    fmap.default_js = []
    fmap.default_css = []
    css = (_ASSETS / "leaflet.css").read_text(encoding="utf-8")
    for image in (_ASSETS / "images").glob("*.png"):
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        css = css.replace(f"url(images/{image.name})", f"url(data:image/png;base64,{data})")
    js = (_ASSETS / "leaflet.js").read_text(encoding="utf-8")
    fmap.get_root().header.add_child(folium.Element(f"<style>{css}</style><script>{js}</script>"), name="leaflet_inline")
    return fmap.get_root().render()
