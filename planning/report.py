"""Outputs of an assessment: the GeoJSON gap report, tables (XLSX, CSV), walk-time grids, the HTML map.

The gap report is one GeoJSON FeatureCollection in EPSG:4326 (RFC 7946) whose features carry a
``layer`` property (schema: ``planning/schemas/gap_report.schema.json``):

=================  ====================================================================================
``layer``          one feature per ...
=================  ====================================================================================
``subdistrict``    sub-district: kind, population, per service its class, deciding measure, pharmacies,
                   per 10,000, demand (persons the service is for), covered share (of that demand),
                   street covered share (of street length) and E2SFCA capacity within reach per
                   10,000 of demand; R1 shortfall; all rule ids. Unknown values are null
``county``         county: fund status (B3/B4), R2 (dual channel), classes per service, rule ids
``uncovered``      service: the residential area beyond the walk budget and the persons living there
``zone``           service and rule: blocked (B1-B4), priority (R1-R3) and review polygons
``circle``         service: the union of its 15-minute service circles
``pharmacy``       pharmacy: services, sub-district, distance to the street, R4, risk class, settlement status
                   (``settlement``, ``settlement_rules``, ``settlement_until``) and ``serves`` (counts under the policy)
``workplace``      place of the region's worker layer (:mod:`planning.workers`; none without one): ``workers``
                   (persons), ``kind``, ``name``, ``basis``, ``estimate`` (true for an OSM estimate), ``source``
=================  ====================================================================================

``metadata`` holds the policy, ``not_judged`` (per service: rule id -> the missing inputs) and, for a
region built from files, ``data_completeness`` (one record per input layer) and ``datum`` (the pharmacy
datum used and the fit under each candidate).

QGIS opens the file directly (filter on ``layer``); ``write_gap_report(..., split=True)`` writes one
file per layer instead (every layer of :data:`LAYERS`, an empty collection where it has no feature).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from planning.assess import Assessment
from planning import rules
from planning.rules import CLASSIFIED_SERVICES, R1_SERVICES
from planning.bulk import collector_paused
from planning.geometry import geojson_geometry
from planning.model import Service
from planning.report_docx import docx_bytes, load_libraries, write_docx  # noqa: F401 (the report's public writers live here too)
from planning.report_whatif import scenario_docx_bytes, write_scenario_docx  # noqa: F401 (the what-if report)
from planning.report_xlsx import check_lang, county_summary, write_people_xlsx, write_safe_csv
from planning.screening import pharmacy_flags
from planning.text import Text

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "gap_report.schema.json"
LAYERS = ("subdistrict", "county", "uncovered", "zone", "circle", "pharmacy", "workplace")
#: Grid the gap report's coordinates are rounded to, degrees (1e-7 degrees is about 1 cm).
COORDINATE_PRECISION_DEG = 1e-7


def gap_report(assessment: Assessment) -> dict:
    """The gap report as a GeoJSON FeatureCollection (a dict ready for ``json.dump``)."""
    with collector_paused():  # a million coordinate lists (planning.bulk)
        return _gap_report(assessment)


def _gap_report(assessment: Assessment) -> dict:
    features = []
    features += _subdistrict_features(assessment)
    features += _county_features(assessment)
    for row in assessment.uncovered.itertuples():
        features.append(_feature("uncovered", row.geometry, service=row.service, persons=_finite(row.persons),
                                 minutes=assessment.policy.walk_minutes))
    for row in assessment.zones.itertuples():
        features.append(_feature("zone", row.geometry, service=row.service, zone=row.zone, rule_ids=row.rule_ids))
    for row in assessment.circles.itertuples():
        features.append(_feature("circle", row.geometry, service=row.service, minutes=row.minutes,
                                 area_km2=round(row.area_km2, 4)))
    features += _pharmacy_features(assessment)
    features += _workplace_features(assessment)
    policy = assessment.policy
    return {
        "type": "FeatureCollection",
        "name": "pharmacy_gap_report",
        "metadata": {
            "region": assessment.region.name, "fictional": assessment.region.fictional,
            "policy": policy.policy_id, "walk_minutes": policy.walk_minutes,
            "speed_m_per_min": policy.speed_m_per_min, "access_width_m": policy.access_width_m,
            "rules": sorted(policy.rules), "crs": "EPSG:4326",
            "not_judged": {s.value: {rule: list(inputs) for rule, inputs in assessment.unjudged(s).items()}
                           for s in Service},
            **(assessment.region.completeness.records() if assessment.region.completeness is not None else {}),
        },
        "features": features,
    }


def write_gap_report(assessment: Assessment, path: str | Path, *, split: bool = False) -> list[Path]:
    """Write the gap report as GeoJSON (one file, or one file per layer ``<stem>_<layer>.geojson``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = gap_report(assessment)
    if not split:
        path.write_bytes(_json_bytes(report))
        return [path]
    written = []
    for layer in LAYERS:
        part = {**report, "name": f"pharmacy_gap_report_{layer}",
                "features": [f for f in report["features"] if f["properties"]["layer"] == layer]}
        target = path.with_name(f"{path.stem}_{layer}.geojson")
        target.write_bytes(_json_bytes(part))
        written.append(target)
    return written


def tables(assessment) -> dict[str, pd.DataFrame]:
    """The report tables of an assessment (or a merged :class:`planning.tiles.TiledAssessment`) by sheet
    name: sub-districts, counties, coverage, pharmacies, zones, rejected and, for a region built from
    files, completeness (:meth:`planning.completeness.DataCompleteness.frame`)."""
    subdistricts = pd.DataFrame(assessment.subdistricts.drop(columns="geometry"))
    counties = pd.DataFrame(assessment.counties.drop(columns="geometry"))
    pharmacies = pd.DataFrame(assessment.pharmacies.drop(columns="geometry")).assign(
        lon=assessment.pharmacies.geometry.x, lat=assessment.pharmacies.geometry.y)
    flags = pharmacy_flags(assessment.pharmacies)
    pharmacies = pharmacies.merge(flags, on="pharmacy_id", how="left")
    zones = pd.DataFrame(assessment.zones.drop(columns="geometry")).assign(
        area_km2=_areas_km2(assessment.zones, assessment.metric_crs))
    found = {"subdistricts": subdistricts, "counties": counties, "coverage": assessment.coverage,
             "pharmacies": pharmacies, "zones": zones, "rejected": assessment.region.rejected}
    if assessment.region.completeness is not None:
        found["completeness"] = assessment.region.completeness.frame()
    return found


def write_tables(assessment: Assessment, folder: str | Path, *, lang: str = "zh") -> list[Path]:
    """Write ``tables.xlsx`` for people in ``lang`` ("zh" or "en"; see :mod:`planning.report_xlsx`: a
    概要 sheet per county, one sheet per table, a 字段说明 field guide) and one UTF-8 CSV (with BOM, so
    Excel reads the Chinese names) per table with the machine column names, for GIS joins. Text that a
    spreadsheet would take for a formula is text in both (the CSVs prefix it with ``'``)."""
    check_lang(lang)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    all_tables = tables(assessment)
    xlsx = folder / "tables.xlsx"
    _write_xlsx(assessment, all_tables, xlsx, lang)
    written = [xlsx]
    for name, table in all_tables.items():
        target = folder / f"{name}.csv"
        write_safe_csv(table, target)
        written.append(target)
    return written


def gap_report_bytes(assessment: Assessment) -> bytes:
    """The gap report as UTF-8 GeoJSON bytes (for a download button)."""
    return _json_bytes(gap_report(assessment))


def tables_xlsx_bytes(assessment: Assessment, *, lang: str = "zh") -> bytes:
    """``tables.xlsx`` for people (see :func:`write_tables`) in memory, for a download button."""
    buffer = io.BytesIO()
    _write_xlsx(assessment, tables(assessment), buffer, check_lang(lang))
    return buffer.getvalue()


def html_map_string(assessment: Assessment, *, service: Service | str = Service.OUTPATIENT_POOLING,
                    lang: str = "zh") -> str:
    """The self-contained offline HTML map as a string (see :func:`write_html_map`)."""
    from planning.maps import assessment_map, offline_html

    # The streets travel inline (a data: script), so the map is readable offline without basemap tiles.
    return offline_html(assessment_map(assessment, service=service, lang=lang, network=assessment.network))


def _json_bytes(document: dict) -> bytes:
    """Compact UTF-8 JSON: no spaces after separators (a tenth of a province's gap report), strict
    (a non-finite number raises instead of writing ``NaN``, which is not JSON)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _write_xlsx(assessment: Assessment, all_tables: dict[str, pd.DataFrame], target, lang: str) -> None:
    policy = assessment.policy
    title = Text(f"{assessment.region.name} 定点零售药店布局评估概要 · 策略 {policy.title_zh} · "
                 f"步行 {policy.walk_minutes:g} 分钟，{policy.speed_m_per_min:g} 米/分钟",
                 f"{assessment.region.name}: pharmacy planning assessment · policy {policy.title_en} · "
                 f"{policy.walk_minutes:g}-minute walk at {policy.speed_m_per_min:g} m/min").get(lang)
    write_people_xlsx(all_tables, county_summary(assessment), target, lang=lang, title=title)


def write_walk_time_grids(assessment: Assessment, folder: str | Path) -> list[Path]:
    """One GeoTIFF per service of walk minutes to the nearest site (float32, nodata = inf beyond the
    horizon), in the network's metric CRS, for heatmaps in a GIS."""
    import rasterio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for service, surface in assessment.surfaces.items():
        target = folder / f"walk_minutes_{service.value}.tif"
        data = surface.minutes.astype(np.float32)
        with rasterio.open(target, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1,
                           dtype="float32", crs=surface.crs, transform=surface.transform, nodata=np.inf,
                           compress="deflate") as dst:
            dst.write(data, 1)
        written.append(target)
    return written


def write_html_map(assessment: Assessment, path: str | Path, *, service: Service | str = Service.OUTPATIENT_POOLING,
                   lang: str = "zh") -> Path:
    """A self-contained HTML map (Leaflet inlined, no tiles) that opens without internet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_map_string(assessment, service=service, lang=lang), encoding="utf-8")
    return path


def _subdistrict_features(assessment: Assessment) -> list[dict]:
    table = assessment.subdistricts
    features = []
    for code, rows in table.groupby("code", sort=False):
        first = rows.iloc[0]
        by_service = rows.set_index("service")
        properties = {"code": code, "name": first["name"], "kind": first["kind"], "county_code": first["county_code"],
                      "population": _whole(first["population"])}
        for service in Service:
            row = by_service.loc[service.value]
            properties[f"pharmacies_{service.value}"] = _whole(row["pharmacies"])
            properties[f"covered_share_{service.value}"] = _finite(row["covered_share"])
            properties[f"street_covered_share_{service.value}"] = _finite(row["street_covered_share"])
            properties[f"demand_{service.value}"] = _whole(row["demand"])
            properties[f"e2sfca_per_10k_{service.value}"] = _finite(row["e2sfca_per_10k"])
            if service in CLASSIFIED_SERVICES:
                properties[f"class_{service.value}"] = row["class"]
                properties[f"class_measure_{service.value}"] = row["class_measure"]
                properties[f"per_10k_{service.value}"] = _finite(row["per_10k"])
        r1_missing = [s for s in R1_SERVICES if rules.outcome(by_service.loc[s.value, "r1_ok"]) is False]
        r1_unjudged = all("R1" in assessment.unjudged(s) for s in R1_SERVICES)
        properties["r1_missing"] = None if r1_unjudged else ",".join(s.value for s in r1_missing)  # null: not judged
        properties["rule_ids"] = ",".join(sorted({r for ids in rows["rule_ids"] for r in ids.split(",") if r}))
        features.append(_feature("subdistrict", first.geometry, **properties))
    return features


def _county_features(assessment: Assessment) -> list[dict]:
    features = []
    for code, rows in assessment.counties.groupby("code", sort=False):
        first = rows.iloc[0]
        by_service = rows.set_index("service")
        properties = {"code": code, "name": first["name"], "population": _whole(first["population"]),
                      "fund_b3": rules.outcome(first["fund_b3"]), "fund_b4": rules.outcome(first["fund_b4"]),
                      "dual_channel_pharmacies": _whole(by_service.loc[Service.DUAL_CHANNEL.value, "pharmacies"]),
                      "r2_ok": rules.outcome(by_service.loc[rules.R2_SERVICE.value, "r2_ok"])}
        for service in CLASSIFIED_SERVICES:
            properties[f"class_{service.value}"] = by_service.loc[service.value, "class"]
        properties["rule_ids"] = ",".join(sorted({r for ids in rows["rule_ids"] for r in ids.split(",") if r}))
        features.append(_feature("county", first.geometry, **properties))
    return features


def _pharmacy_features(assessment: Assessment) -> list[dict]:
    """One point feature per pharmacy, built column by column (a province's 100,000 pharmacies took 20 s
    row by row; this takes about one second). Coordinates rounded like :func:`_feature`."""
    pharmacies = assessment.pharmacies
    risk = pharmacy_flags(pharmacies)["risk_class"].to_numpy()  # aligned with the pharmacies' rows
    held = np.column_stack([pharmacies[s.value].astype(bool).to_numpy() for s in Service])
    names = np.array([s.value for s in Service], dtype=object)
    services = [",".join(names[row]) for row in held]
    xy = shapely.get_coordinates(shapely.set_precision(pharmacies.geometry.to_numpy(), COORDINATE_PRECISION_DEG))
    columns = zip(
        _json_values(pharmacies["pharmacy_id"]), _json_values(pharmacies["name"]), services,
        [code if isinstance(code, str) else None for code in pharmacies["subdistrict_code"]],
        _json_values(np.round(pharmacies["snap_m"].to_numpy(dtype=float), 1)),
        pharmacies["on_network"].astype(bool).tolist(),
        [rules.outcome(value) for value in pharmacies["r4_ok"]], risk.tolist(),
        pharmacies["settlement"].tolist(), pharmacies["settlement_rules"].tolist(),
        _json_values(pharmacies["settlement_until"]), pharmacies["serves"].astype(bool).tolist(), xy.tolist())
    return [{"type": "Feature",
             "properties": {"layer": "pharmacy", "pharmacy_id": pid, "name": name, "services": held_services,
                            "subdistrict_code": code, "snap_m": snap, "on_network": on_network, "r4_ok": r4,
                            "risk_class": risk_class, "settlement": status, "settlement_rules": status_rules,
                            "settlement_until": until, "serves": serves},
             "geometry": {"type": "Point", "coordinates": point}}
            for pid, name, held_services, code, snap, on_network, r4, risk_class, status, status_rules, until, serves,
            point in columns]


def _workplace_features(assessment: Assessment) -> list[dict]:
    """One feature per place of the region's worker layer (points or polygons, EPSG:4326); none without one."""
    layer = assessment.region.workers
    if layer is None:
        return []
    places = layer.places
    names = places["name"] if "name" in places.columns else [None] * len(places)
    return [_feature("workplace", geometry, workers=round(float(workers), 1), kind=str(kind),
                     name=name if isinstance(name, str) and name else None, basis=layer.basis,
                     estimate=layer.basis == "osm_estimate", source=layer.source)
            for geometry, workers, kind, name in zip(places.geometry, places["workers"], places["kind"], names)]


def _json_values(values) -> list:
    """``values`` as a list of plain Python values with NaN, NA and infinities as None (strict JSON)."""
    return [None if value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value))
            else value for value in (values.tolist() if hasattr(values, "tolist") else list(values))]


def _feature(layer: str, geometry, **properties) -> dict:
    clean = {"layer": layer}
    for key, value in properties.items():
        if isinstance(value, (np.bool_,)):
            value = bool(value)
        elif isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.floating):
            value = float(value)
        if value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):  # strict JSON
            value = None
        clean[key] = value
    # Pointwise rounding: the coordinates only (GEOS's default mode also re-validates every polygon, 1.3 s
    # for the demo's zones; rounding to 1 cm cannot invalidate polygons drawn from 20 m cells).
    geometry = (shapely.set_precision(geometry, COORDINATE_PRECISION_DEG, mode="pointwise")
                if not geometry.is_empty else geometry)
    return {"type": "Feature", "properties": clean, "geometry": geojson_geometry(geometry)}


def _finite(value: float) -> float | None:
    """A measure rounded to 4 decimals; None (JSON null: not known) for NaN and infinity."""
    return round(float(value), 4) if np.isfinite(value) else None


def _whole(value: float) -> int | None:
    """Persons or pharmacies as a whole number; None (JSON null) where unknown (no population, no column)."""
    return int(value) if np.isfinite(value) else None


def _areas_km2(layer, metric_crs: str) -> np.ndarray:
    return layer.to_crs(metric_crs).area.to_numpy() / 1e6
