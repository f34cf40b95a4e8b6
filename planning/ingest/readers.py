"""The readers: pharmacies, boundaries, population, fund status, population grids, buildings, and their row checks."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planning import coords
from planning.errors import FileTooLargeError, MissingColumnError, ParameterError, UnreadableFileError
from planning.ingest.checks import (
    blank_rows, code_column, duplicate_id_rows, finish_result, flag_columns, unreadable_cells, map_columns, map_unique, missing_required,
    number_columns, number_problem, point_lonlat, required_text,
    to_wgs84_checked,
)
from planning.ingest.datum import decide_datum
from planning.ingest.result import IngestResult, RowNotes, RowProblems
from planning.ingest.limits import DEFAULT_LIMITS, ReadingLimits
from planning.ingest.sources import Source, load_source, read_table, SourceFile, RawTable, frame_to_lonlat
from planning.ingest.vocabulary import (
    FIELD_UNITS, KIND_OF_WORD, FIELD_ALIASES, INVALID, Note, Reason, parse_code, norm_token, cell_text, infer_kind, parse_number,
    parse_date, parse_services, parse_state, stable_pharmacy_id,
)
from planning.model import PHARMACY_SCHEMA, SERVICE_COLUMNS, WGS84
from planning.network import WalkNetwork, load_network

#: Largest population raster read, cells (:attr:`ReadingLimits.max_raster_cells`).
DEFAULT_MAX_CELLS = DEFAULT_LIMITS.max_raster_cells
#: Urban per-capita housing floor area, m² per person (2020 census, 城镇家庭人均住房建筑面积 38.62 m²):
#: the default for estimating residents of a building from its floor area.
DEFAULT_M2_PER_PERSON = 38.6


# ======================================================================================= pharmacies
_TABLE_KINDS = ("csv", "xlsx")
_VECTOR_KINDS = ("geojson", "gpkg", "zip", "shp")


def read_pharmacies(
    source: Source,
    *,
    crs: str | coords.Datum = "auto",
    network: WalkNetwork | str | os.PathLike | None = None,
    trust_crs: bool = False,
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    layer: str | None = None,
    max_bytes: int | None = None,
    limits: ReadingLimits = DEFAULT_LIMITS,
) -> IngestResult:
    """Read designated pharmacies from CSV, XLSX, GeoJSON, GPKG or a zipped shapefile.

    Parameters
    ----------
    source : path, bytes or binary file-like
        The file; an upload's type is judged from ``source_name`` (or its ``.name``), else its content.
    crs : {"auto", "wgs84", "gcj02", "bd09"} or Datum
        The datum the longitude/latitude are written in (CGCS2000 = WGS84; Amap = GCJ-02; Baidu = BD-09).
        For GeoJSON/GPKG/shapefile points, the geometry is first reprojected to lon/lat from the file's CRS.
        "auto" (default): decided by the fit to ``network`` (:func:`planning.ingest.datum.decide_datum`);
        WGS84 when there is no network or the fit does not decide (the result's ``datum_decision`` says
        so). :func:`build_region` decides again with the boundaries (address check) as well.
    network : WalkNetwork or path, optional
        The walking network: the pharmacies' fit to its streets is checked under every datum.
    trust_crs : bool
        Keep a declared ``crs`` even when the street fit clearly points to another datum (otherwise
        :class:`~planning.ingest.datum.DatumMismatchError` is raised, naming the better datum).
    columns : dict, optional
        Explicit header -> field mapping (fields as in :data:`FIELD_ALIASES` ["pharmacies"]) for headers
        the alias table does not know.
    source_name : str, optional
        The name shown in reports (defaults to the file name).
    sheet : str or int, optional
        XLSX sheet; by default the first sheet with a recognisable header.
    encoding : str, optional
        CSV text encoding; by default UTF-8 (with or without BOM), then GBK/GB18030; UTF-16 with a BOM.
    layer : str, optional
        GPKG layer or shapefile name inside a zip.
    max_bytes : int, optional
        Size limit of the file, bytes (default ``limits.max_file_bytes``, 200 MiB).
    limits : ReadingLimits
        Every reading limit (:mod:`planning.ingest.limits`: rows, cells, characters per cell, sizes).

    Returns
    -------
    IngestResult
        ``clean`` follows :data:`planning.model.PHARMACY_SCHEMA`: Point geometry in EPSG:4326 (WGS84
        degrees), index = input row number. Without an id column, ``pharmacy_id`` is made from name and
        address (:func:`planning.ingest.vocabulary.stable_pharmacy_id`; a note says so). Rows sharing an
        id are rejected (``duplicate_id``, all of them) unless they are the same pharmacy twice (same
        name, every other cell equal, positions within :data:`EXACT_DUPLICATE_M` metres): then the
        first is kept (a note) and the others rejected as ``duplicate_row``.

    Raises
    ------
    FileTypeError, MissingColumnError, EmptyFileError, EncodingError, UnreadableFileError,
    FileTooLargeError, ArchiveError, UnsafeArchiveError, CoordinateSystemError, ParameterError
        All subclasses of :class:`planning.errors.PlanningError` with a bilingual message.
    """
    declared = None if str(crs).strip().lower() == "auto" else coords.parse_datum(crs)
    limits = limits.with_max_bytes(max_bytes)
    src = load_source(source, source_name, limits.max_file_bytes, _TABLE_KINDS + _VECTOR_KINDS)
    table = read_table(src, "pharmacies", columns, sheet=sheet, encoding=encoding, limits=limits,
                        gdal_layer=layer)
    mapping = map_columns(table.raw, "pharmacies", columns, src.name, table.notes)
    service_fields = [s for s in SERVICE_COLUMNS if s in mapping]
    if not service_fields and "services" not in mapping:
        aliases = FIELD_ALIASES["pharmacies"]["services"] + tuple(
            a for s in SERVICE_COLUMNS for a in FIELD_ALIASES["pharmacies"][s][:3])
        raise MissingColumnError(f"{src.name} 没有业务列（每项业务一列，或一列列出业务）：可用列名 {'、'.join(aliases)}",
                                 f"{src.name} has no service columns (one per service, or one listing them); "
                                 f"accepted headers: {', '.join(aliases)}")
    problems = RowProblems(table.raw.index)
    blank_rows(table, problems)
    unreadable_cells(table, problems)
    texts = {f: required_text(table, mapping, f, problems) for f in ("name", "address")}
    texts["pharmacy_id"] = required_text(table, mapping, "pharmacy_id", problems) if "pharmacy_id" in mapping \
        else _generated_ids(texts["name"], texts["address"], table.notes)
    if ("lon" in mapping) != ("lat" in mapping) and "lonlat" not in mapping and table.geometry is None:
        raise missing_required("lat" if "lon" in mapping else "lon", "pharmacies", src.name)
    lon, lat = point_lonlat(table, mapping, "pharmacies", src.name, problems)
    _pharmacy_duplicates(table, mapping, texts["pharmacy_id"], lon, lat, problems)
    services = _pharmacy_services(table, mapping, service_fields, problems)
    attributes = _pharmacy_attributes(table, mapping, problems)
    keep = ~problems.bad
    ok = keep & np.isfinite(lon) & np.isfinite(lat)
    if network is not None and not isinstance(network, WalkNetwork):
        network = load_network(network)
    decision = decide_datum(lon[ok], lat[ok], declared=declared, network=network, trust_crs=trust_crs)
    datum = decision.used
    lon, lat = to_wgs84_checked(lon, lat, datum, ok)
    data = {f: texts[f][keep] for f in ("pharmacy_id", "name", "address")}
    data.update({s: services[s][keep] for s in SERVICE_COLUMNS})
    data.update({f: values[keep] for f, values in attributes.items()})
    clean = gpd.GeoDataFrame(data, geometry=gpd.points_from_xy(lon[keep], lat[keep]), crs=WGS84,
                             index=table.raw.index[keep])
    clean = _integer_columns(clean)
    return dataclasses.replace(finish_result("pharmacies", src.name, table, problems, clean, datum, mapping),
                               datum_decision=decision)


#: Largest distance between two rows of the same pharmacy id still taken as the same pharmacy, metres.
EXACT_DUPLICATE_M = 5.0


def _generated_ids(names: pd.Series, addresses: pd.Series, notes: RowNotes) -> pd.Series:
    """:func:`stable_pharmacy_id` per row ("" where name or address is blank). Two different name|address
    keys hashing alike (12 hex digits: practically never) get "-2", "-3", ... in row order, with a note;
    rows with the same name and address share their id (duplicates, judged by :func:`_pharmacy_duplicates`)."""
    notes.add(0, Note.ID_GENERATED)
    ids = pd.Series("", index=names.index, dtype=object)
    owner: dict[str, tuple[str, str]] = {}  # id -> the (name, address) key that took it first
    first_row: dict[str, int] = {}
    for row in names.index:
        name, address = names[row], addresses[row]
        if not name or not address:
            continue
        base = stable_pharmacy_id(name, address)
        key = (norm_token(name).replace(" ", ""), norm_token(address).replace(" ", ""))
        candidate, k = base, 1
        while candidate in owner and owner[candidate] != key:
            k += 1
            candidate = f"{base}-{k}"
        if candidate != base:
            notes.add(row, Note.ID_SUFFIXED, rows=first_row[base], value=candidate)
        owner.setdefault(candidate, key)
        first_row.setdefault(candidate, int(row))
        ids[row] = candidate
    return ids


def _pharmacy_duplicates(table: RawTable, mapping: dict[str, str], ids: pd.Series, lon: np.ndarray,
                         lat: np.ndarray, problems: RowProblems) -> None:
    """Rows sharing an id: the same pharmacy repeated (every cell but the coordinates equal, positions within
    :data:`EXACT_DUPLICATE_M`) is kept once; otherwise every row of the id is rejected, naming all of them."""
    coordinate_headers = {mapping[f] for f in ("lon", "lat", "lonlat") if f in mapping}
    compared = [h for h in table.raw.columns if h not in coordinate_headers]
    position = {row: k for k, row in enumerate(table.raw.index)}
    present = ids[ids != ""]
    present = present[present.duplicated(keep=False)]  # only repeated ids (grouping all 100,000 took 3 s)
    for value, group in present.groupby(present, sort=False):
        if len(group) < 2:
            continue
        rows = list(group.index)
        first = rows[0]
        cells = [cell_text(table.raw.at[first, h]) for h in compared]
        exact = all([cell_text(table.raw.at[r, h]) for h in compared] == cells
                    and _metres_apart(lon, lat, position[first], position[r]) <= EXACT_DUPLICATE_M for r in rows[1:])
        if exact:
            for row in rows[1:]:
                problems.add(row, Reason.DUPLICATE_ROW, first=first, metres=f"{EXACT_DUPLICATE_M:g}")
            table.notes.add(first, Note.DUPLICATE_KEPT_ONCE, rows=", ".join(str(r) for r in rows[1:]))
        else:
            problems.add_all(rows, Reason.DUPLICATE_ID, value=value, rows=", ".join(str(r) for r in rows))


def _metres_apart(lon: np.ndarray, lat: np.ndarray, i: int, j: int) -> float:
    """Approximate distance between two lon/lat points, metres (equirectangular; inf when one is missing)."""
    if not (np.isfinite(lon[[i, j]]).all() and np.isfinite(lat[[i, j]]).all()):
        return float("inf")
    dx = (lon[i] - lon[j]) * 111_320.0 * np.cos(np.radians((lat[i] + lat[j]) / 2))
    dy = (lat[i] - lat[j]) * 110_574.0
    return float(np.hypot(dx, dy))


def _pharmacy_services(table: RawTable, mapping: dict[str, str], fields: list[str], problems: RowProblems
                       ) -> dict[str, pd.Series]:
    held = {s: pd.Series(False, index=table.raw.index) for s in SERVICE_COLUMNS}
    for service in fields:
        header = mapping[service]
        held[service] |= flag_columns(table, header, problems, Reason.UNKNOWN_SERVICE_VALUE)
        blank = table.raw.index[map_unique(table.raw[header], lambda v: cell_text(v) == "").astype(bool).to_numpy()]
        if len(blank):  # a blank cell is read as "no" as bureaus mark only "是"; said, so a planner can check it
            shown = ", ".join(str(r) for r in blank[:10]) + ("…" if len(blank) > 10 else "")
            table.notes.add(0, Note.BLANK_READ_AS_NO, column=header, count=len(blank), rows=shown)
    if "services" in mapping:
        header = mapping["services"]
        for row, cell in table.raw[header].items():
            found, unknown = parse_services(cell)
            for word in unknown:
                problems.add(row, Reason.UNKNOWN_SERVICE_VALUE, column=header, value=word)
            for service in found:
                held[service].at[row] = True
    return held


#: Defaults when a pharmacy column is absent (a note says so). Blank cells in yes/no columns are "no";
#: a blank ``suspensions`` cell is 0; other blank numbers are kept as NaN (unknown; the model allows NaN in
#: optional number columns). An absent ``info_system_ready`` has no default: the upgrade is unknown, the
#: settlement status says "not judged" and the data-completeness table names the column.
PHARMACY_DEFAULTS: dict[str, Any] = {"chain": False}
#: Pharmacy count fields: whole numbers (a fraction rejects the row), stored as int64; a column with a
#: blank cell stays float64 with NaN there (not pandas' nullable Int64, whose pd.NA breaks boolean masks).
INTEGER_FIELDS = frozenset({"suspensions", "months_operating", "earlier_suspensions"})


def _pharmacy_attributes(table: RawTable, mapping: dict[str, str], problems: RowProblems) -> dict[str, pd.Series]:
    out: dict[str, pd.Series] = {}
    for target, (check, _required) in PHARMACY_SCHEMA.items():
        if target in ("pharmacy_id", "name", "address") or target in SERVICE_COLUMNS:
            continue
        if target not in mapping:
            if target in PHARMACY_DEFAULTS:
                table.notes.add(0, Note.DEFAULT_USED, column=target, value=PHARMACY_DEFAULTS[target])
                out[target] = pd.Series(PHARMACY_DEFAULTS[target], index=table.raw.index, dtype=bool)
            elif target == "info_system_ready":
                table.notes.add(0, Note.UNKNOWN_WITHOUT_COLUMN, column=target)
            continue
        if check == "bool":
            out[target] = flag_columns(table, mapping[target], problems)
        elif check in ("date", "word"):
            out[target] = _parsed_cells(table, mapping[target], problems,
                                        parse_date if check == "date" else lambda v, f=target: parse_state(v, f))
        else:
            values = number_columns(table, mapping[target], problems, field=target)
            if target in INTEGER_FIELDS:
                fractional = values.notna() & (values != values.round())
                for row in values.index[fractional.to_numpy()]:
                    problems.add(row, Reason.INVALID_VALUE, column=mapping[target], value=cell_text(values[row]))
            out[target] = values.fillna(0.0) if target == "suspensions" else values
    return out


def _parsed_cells(table: RawTable, header: str, problems: RowProblems, parse) -> pd.Series:
    """A date or state-word column as its canonical text (None where blank); a cell ``parse`` cannot read
    (:data:`INVALID`) rejects the row, naming the column and the value."""
    parsed = table.raw[header].map(parse)
    for row in parsed.index[parsed.map(lambda v: v is INVALID).to_numpy()]:
        problems.add(row, Reason.INVALID_VALUE, column=header, value=cell_text(table.raw.at[row, header]))
    return parsed.map(lambda v: None if v is INVALID else v).astype(object)


def _integer_columns(clean: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Count fields as int64 when every cell is given; with a blank (NaN) the column stays float64."""
    for target in INTEGER_FIELDS:
        if target in clean.columns and not clean[target].isna().any():
            clean[target] = clean[target].astype(np.int64)
    return clean


# ======================================================================================= boundaries
def read_boundaries(
    source: Source,
    *,
    level: Literal["county", "subdistrict"],
    crs: str | coords.Datum = "wgs84",
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    layer: str | None = None,
    max_bytes: int | None = None,
    limits: ReadingLimits = DEFAULT_LIMITS,
) -> IngestResult:
    """Read county or sub-district polygons from GeoJSON, GPKG or a zipped shapefile.

    The file's CRS (.prj, GeoJSON CRS84, GPKG srs) is honoured and the result reprojected to EPSG:4326;
    ``crs`` declares an extra GCJ-02/BD-09 offset for boundaries digitised on Chinese web maps. A
    shapefile's .cpg gives its text encoding; without one the .dbf is read as UTF-8, else GBK/GB18030.
    Invalid polygons are repaired with ``shapely.make_valid`` (a note says so) or rejected.

    Sub-districts get ``kind`` from a kind column (街道/镇/street/town) or, where it is blank, from the
    name (街道/办事处 -> street, 镇/乡/苏木 -> town). ``county_code`` and ``population`` are kept when
    the file has them; :func:`build_region` assigns missing county codes by code prefix or geometry
    and attaches a population table.

    Returns
    -------
    IngestResult
        ``clean`` has code, name and geometry (Polygon/MultiPolygon, EPSG:4326) plus, for sub-districts,
        kind, county_code ("" when not given) and population (float, NaN when not given); for
        counties, any fund-status columns present.
    """
    if level not in ("county", "subdistrict"):
        raise ParameterError(f"level 应为 county 或 subdistrict，而不是 {level!r}",
                             f"level must be 'county' or 'subdistrict', not {level!r}")
    datum = coords.parse_datum(crs)
    target_layer = "counties" if level == "county" else "subdistricts"
    limits = limits.with_max_bytes(max_bytes)
    src = load_source(source, source_name, limits.max_file_bytes, _VECTOR_KINDS)
    table = read_table(src, target_layer, columns, sheet=None, encoding=None, limits=limits, gdal_layer=layer)
    mapping = map_columns(table.raw, target_layer, columns, src.name, table.notes)
    problems = RowProblems(table.raw.index)
    blank_rows(table, problems)
    unreadable_cells(table, problems)
    codes = code_column(table, mapping, problems, required=True)
    names = required_text(table, mapping, "name", problems)
    duplicate_id_rows(codes, problems)
    geometry = _polygons(table, datum, problems)
    data: dict[str, pd.Series] = {"code": codes, "name": names}
    if level == "subdistrict":
        data["kind"] = _kinds(table, mapping, names, problems)
        data["county_code"] = table.raw[mapping["county_code"]].map(parse_code) if "county_code" in mapping else \
            pd.Series("", index=table.raw.index)
        for field in ("population", *DEMAND_FIELDS):
            data[field] = _population_values(table, mapping, problems, field=field) if field in mapping else \
                pd.Series(np.nan, index=table.raw.index)
    else:
        for target in ("fund_deficit_last_year", "fund_deficit_forecast", "fund_warning_letter"):
            if target in mapping:
                data[target] = flag_columns(table, mapping[target], problems)
    keep = ~problems.bad
    clean = gpd.GeoDataFrame({k: v[keep] for k, v in data.items()}, geometry=geometry[keep], crs=WGS84,
                             index=table.raw.index[keep])
    _overlap_notes(clean, table.notes)
    return finish_result(target_layer, src.name, table, problems, clean, datum, mapping)


#: Two polygons of one layer sharing at least this share of the smaller one's area are noted as
#: overlapping (neighbours share only their border; a few per cent is digitising slack).
OVERLAP_SHARE = 0.05


def _overlap_notes(layer: gpd.GeoDataFrame, notes: RowNotes) -> None:
    """Note both rows of every pair of polygons overlapping by :data:`OVERLAP_SHARE` or more of the
    smaller one's area (the same area twice under two codes, or a backup left in the file)."""
    geoms = layer.geometry.to_numpy()
    if len(geoms) < 2:
        return
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    if not len(left):
        return
    shared = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    smaller = np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right]))
    share = np.divide(shared, smaller, out=np.zeros_like(shared), where=smaller > 0)
    rows, codes = layer.index.to_numpy(), layer["code"].to_numpy()
    for i, j, fraction in zip(left[share >= OVERLAP_SHARE], right[share >= OVERLAP_SHARE], share[share >= OVERLAP_SHARE]):
        for a, b in ((i, j), (j, i)):
            notes.add(rows[a], Note.OVERLAPS, rows=int(rows[b]), value=f"{codes[b]}", share=f"{fraction:.0%}")


def _polygons(table: RawTable, datum: coords.Datum, problems: RowProblems) -> gpd.GeoSeries:
    """Polygon geometry per row in WGS84, converted from ``datum`` and repaired where invalid."""
    if table.geometry is None:
        raise UnreadableFileError("文件没有几何", "the file has no geometry")
    rows = table.raw.index
    geoms = table.geometry.to_numpy().copy()
    if datum is not coords.Datum.WGS84:
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(coords.to_wgs84(xy[:, 0], xy[:, 1], datum)))
    for k, geom in enumerate(geoms):
        row = rows[k]
        if geom is None or geom.is_empty:
            if not problems.has(row):
                problems.add(row, Reason.EMPTY_GEOMETRY)
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.add(row, Reason.WRONG_GEOMETRY_TYPE, expected="Polygon/MultiPolygon", value=geom.geom_type)
            continue
        if not geom.is_valid:
            why = shapely.is_valid_reason(geom)
            repaired = _polygonal(shapely.make_valid(geom))
            if repaired is None:
                problems.add(row, Reason.INVALID_GEOMETRY, value=why)
                continue
            table.notes.add(row, Note.GEOMETRY_REPAIRED, value=why)
            geoms[k] = geom = repaired
        point = geom.representative_point()
        if not coords.in_china(point.x, point.y):
            problems.add(row, Reason.OUTSIDE_CHINA, lon=f"{point.x:g}", lat=f"{point.y:g}")
    return gpd.GeoSeries(geoms, index=rows, crs=WGS84)


def _polygonal(geom) -> shapely.Geometry | None:
    """The polygonal part of a repaired geometry (Polygon or MultiPolygon), None if there is none."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return None if geom.is_empty else geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not parts:
        return None
    merged = shapely.union_all(parts)
    return merged if merged.geom_type in ("Polygon", "MultiPolygon") else None


def _kinds(table: RawTable, mapping: dict[str, str], names: pd.Series, problems: RowProblems) -> pd.Series:
    out = pd.Series("", index=table.raw.index, dtype=object)
    for row in table.raw.index:
        given = norm_token(table.raw.at[row, mapping["kind"]]) if "kind" in mapping else ""
        if given:
            kind = KIND_OF_WORD.get(given)
            if kind is None:
                problems.add(row, Reason.INVALID_VALUE, column=mapping["kind"],
                             value=cell_text(table.raw.at[row, mapping["kind"]]))
                continue
        else:
            kind = infer_kind(names[row])
            if kind is None and names[row]:
                problems.add(row, Reason.UNKNOWN_KIND, value=names[row])
                continue
        out[row] = kind or ""
    return out


#: Optional persons columns of a population table or boundary file: the demand of some services
#: (planning.demand). Blank means unknown (that service falls back to residents there).
DEMAND_FIELDS = ("employees", "chronic_patients")


def _population_values(table: RawTable, mapping: dict[str, str], problems: RowProblems, *,
                       required: bool = False, field: str = "population") -> pd.Series:
    """Persons in ``field`` (population, or a :data:`DEMAND_FIELDS` column) as float (NaN when blank,
    unless ``required``); negative or non-numeric rejects the row."""
    header = mapping[field]
    units = FIELD_UNITS[field]
    out = pd.Series(np.nan, index=table.raw.index)
    for row, cell in table.raw[header].items():
        value = parse_number(cell, units)
        if value is None:
            if required and not problems.has(row):
                problems.add(row, Reason.INVALID_POPULATION, value="（空 / blank）")
            continue
        if value is INVALID:
            number_problem(problems, row, header, cell, units, Reason.INVALID_POPULATION)
            continue
        if value < 0:
            problems.add(row, Reason.INVALID_POPULATION, value=cell_text(cell))
            continue
        out[row] = round(value)
    return out


# ======================================================================================= population, fund status
def read_population(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    max_bytes: int | None = None,
    limits: ReadingLimits = DEFAULT_LIMITS,
) -> IngestResult:
    """Read resident insured population (常住参保人口, persons) per sub-district from CSV or XLSX.

    Needs a population column and a code or a name column. Populations such as "4.68万" or "46,800"
    are understood; blank, negative or non-numeric values reject the row. :func:`build_region` matches
    rows to sub-districts by code (9 digits; a 12-digit statistics code ending in 000 matches too),
    else by name, and rejects the rows that match nothing.

    Returns
    -------
    IngestResult
        ``clean`` is a DataFrame with ``code`` ("" when absent), ``name`` ("" when absent),
        ``population`` (int, persons) and, when the table has them, ``employees`` (城镇职工参保人数) and
        ``chronic_patients`` (门诊慢特病人数): float persons, NaN for a blank cell (the demand of some
        services, :mod:`planning.demand`).
    """
    limits = limits.with_max_bytes(max_bytes)
    src = load_source(source, source_name, limits.max_file_bytes, _TABLE_KINDS)
    table = read_table(src, "population", columns, sheet=sheet, encoding=encoding, limits=limits)
    mapping = map_columns(table.raw, "population", columns, src.name, table.notes)
    if "code" not in mapping and "name" not in mapping:
        raise missing_required("code", "population", src.name, "或“name”/ or 'name'")
    problems = RowProblems(table.raw.index)
    blank_rows(table, problems)
    unreadable_cells(table, problems)
    codes = code_column(table, mapping, problems, required=False)
    names = table.raw[mapping["name"]].map(cell_text) if "name" in mapping else pd.Series("", index=table.raw.index)
    for row in table.raw.index[((codes == "") & (names == "")).to_numpy()]:
        if not problems.has(row):
            problems.add(row, Reason.MISSING_VALUE, column=mapping.get("code", mapping.get("name")))
    duplicate_id_rows(codes, problems)
    population = _population_values(table, mapping, problems, required=True)
    demand = {f: _population_values(table, mapping, problems, field=f) for f in DEMAND_FIELDS if f in mapping}
    keep = ~problems.bad
    clean = pd.DataFrame({"code": codes[keep], "name": names[keep],
                          "population": population[keep].astype(np.int64),
                          **{f: values[keep] for f, values in demand.items()}}, index=table.raw.index[keep])
    return finish_result("population", src.name, table, problems, clean, coords.Datum.WGS84, mapping)


FUND_COLUMNS = ("fund_deficit_last_year", "fund_deficit_forecast", "fund_warning_letter")


def read_fund_status(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    max_bytes: int | None = None,
    limits: ReadingLimits = DEFAULT_LIMITS,
) -> IngestResult:
    """Read each county's employee-fund status (rules B3, B4) from CSV or XLSX.

    Columns: a county code or name, and at least one of last year's deficit (上年亏损), the forecast
    deficit (预计亏损) and a warning letter (预警函), as yes/no values. An absent status column is "no"
    for every county (a note says so); blank cells are "no".

    Returns
    -------
    IngestResult
        ``clean`` is a DataFrame with ``code``, ``name`` and the three bool columns.
    """
    limits = limits.with_max_bytes(max_bytes)
    src = load_source(source, source_name, limits.max_file_bytes, _TABLE_KINDS)
    table = read_table(src, "fund_status", columns, sheet=sheet, encoding=encoding, limits=limits)
    mapping = map_columns(table.raw, "fund_status", columns, src.name, table.notes)
    if "code" not in mapping and "name" not in mapping:
        raise missing_required("code", "fund_status", src.name, "或“name”/ or 'name'")
    if not any(f in mapping for f in FUND_COLUMNS):
        raise missing_required("fund_deficit_last_year", "fund_status", src.name,
                       "（或 fund_deficit_forecast / fund_warning_letter）")
    problems = RowProblems(table.raw.index)
    blank_rows(table, problems)
    unreadable_cells(table, problems)
    codes = code_column(table, mapping, problems, required=False)
    names = table.raw[mapping["name"]].map(cell_text) if "name" in mapping else pd.Series("", index=table.raw.index)
    for row in table.raw.index[((codes == "") & (names == "")).to_numpy()]:
        if not problems.has(row):
            problems.add(row, Reason.MISSING_VALUE, column=mapping.get("code", mapping.get("name")))
    duplicate_id_rows(codes, problems)
    data = {"code": codes, "name": names}
    for target in FUND_COLUMNS:
        if target in mapping:
            data[target] = flag_columns(table, mapping[target], problems)
        else:
            table.notes.add(0, Note.DEFAULT_USED, column=target, value=False)
            data[target] = pd.Series(False, index=table.raw.index)
    keep = ~problems.bad
    clean = pd.DataFrame({k: v[keep] for k, v in data.items()}, index=table.raw.index[keep])
    return finish_result("fund_status", src.name, table, problems, clean, coords.Datum.WGS84, mapping)


# ======================================================================================= population surfaces
def read_population_grid(
    source: Source,
    *,
    crs: str | coords.Datum = "wgs84",
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    band: int = 1,
    max_cells: int | None = None,
    max_bytes: int | None = None,
    limits: ReadingLimits = DEFAULT_LIMITS,
) -> IngestResult:
    """Read a population grid as weighted points: a GeoTIFF (persons per cell) or a table/GeoJSON of points.

    For a raster, every cell holding a positive finite value (not nodata) becomes a point at the cell
    centre; a negative value rejects the cell (``row`` = 1-based cell number in row-major order). For
    points, the columns are lon/lat (or point geometry) and persons; rows are checked like pharmacy
    coordinates. ``crs`` declares a GCJ-02/BD-09 offset of lon/lat inputs.

    Returns
    -------
    IngestResult
        ``clean`` is a GeoDataFrame of points (EPSG:4326) with ``persons`` (float), ready for
        :func:`planning.coverage.residents_from_points`.
    """
    datum = coords.parse_datum(crs)
    limits = limits.with_max_bytes(max_bytes)
    src = load_source(source, source_name, limits.max_file_bytes, ("tif",) + _TABLE_KINDS + ("geojson", "gpkg", "zip"))
    if src.kind == "tif":
        return _read_raster(src, datum, band, limits.max_raster_cells if max_cells is None else max_cells)
    table = read_table(src, "population_points", columns, sheet=None, encoding=None, limits=limits)
    mapping = map_columns(table.raw, "population_points", columns, src.name, table.notes)
    problems = RowProblems(table.raw.index)
    blank_rows(table, problems)
    unreadable_cells(table, problems)
    lon, lat = point_lonlat(table, mapping, "population_points", src.name, problems)
    persons = _population_values(table, mapping | {"population": mapping["persons"]}, problems, required=True)
    keep = ~problems.bad
    lon, lat = to_wgs84_checked(lon, lat, datum, keep)
    clean = gpd.GeoDataFrame({"persons": persons[keep].astype(float)},
                             geometry=gpd.points_from_xy(lon[keep], lat[keep]), crs=WGS84, index=table.raw.index[keep])
    return finish_result("population_points", src.name, table, problems, clean, datum, mapping)


def _read_raster(src: SourceFile, datum: coords.Datum, band: int, max_cells: int) -> IngestResult:
    import rasterio
    from rasterio.io import MemoryFile

    notes = RowNotes(src.name)
    try:
        with MemoryFile(src.bytes()) as memory, memory.open(driver="GTiff") as dataset:
            if dataset.width * dataset.height > max_cells:
                raise FileTooLargeError(f"{src.name} 的栅格超过 {max_cells:,} 个像元", f"{src.name} has more than "
                                        f"{max_cells:,} cells")
            if not 1 <= band <= dataset.count:
                raise ParameterError(f"波段 {band} 不存在（共 {dataset.count} 个）", f"no band {band} ({dataset.count} bands)")
            values = dataset.read(band, masked=True).astype(float).filled(np.nan)
            transform, raster_crs = dataset.transform, dataset.crs
    except (FileTooLargeError, ParameterError):
        raise
    except rasterio.errors.RasterioError as exc:
        raise UnreadableFileError(f"无法读取栅格 {src.name}：{exc}", f"cannot read raster {src.name}: {exc}") from exc
    flat = values.ravel()
    cells = np.flatnonzero(np.isfinite(flat) & (flat != 0))
    r, c = np.divmod(cells, values.shape[1])
    x, y = rasterio.transform.xy(transform, r, c, offset="center")
    points = gpd.GeoSeries(gpd.points_from_xy(np.asarray(x, float), np.asarray(y, float)),
                           crs=raster_crs.to_wkt() if raster_crs else None, index=cells + 1)
    points = frame_to_lonlat(points, src.name, notes)
    negative = flat[cells] < 0
    raw = pd.DataFrame({"value": flat[cells]}, index=pd.Index(cells + 1, name="row"), dtype=object)
    table = RawTable(raw=raw, geometry=points, notes=notes)
    problems = RowProblems(raw.index)
    for row in raw.index[negative]:
        problems.add(row, Reason.INVALID_POPULATION, value=cell_text(raw.at[row, "value"]))
    keep = ~problems.bad
    geoms = points.to_numpy()[keep]
    lon, lat = coords.to_wgs84(shapely.get_x(geoms), shapely.get_y(geoms), datum)
    clean = gpd.GeoDataFrame({"persons": flat[cells][keep]}, geometry=gpd.points_from_xy(lon, lat), crs=WGS84,
                             index=raw.index[keep])
    return finish_result("population_points", src.name, table, problems, clean, datum, {})


def read_workers(
    source: Source,
    *,
    crs: str | coords.Datum = "wgs84",
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    sheet: str | int | None = None,
    max_bytes: int | None = None,
    limits: ReadingLimits = DEFAULT_LIMITS,
) -> IngestResult:
    """Read where people work (:mod:`planning.workers`): workplaces with their workers (就业人数, 从业人员,
    persons), as points (lon/lat columns, or a GeoJSON/GPKG of points or polygons) or as a table of
    workers per sub-district (a code or a name column, no coordinates). Blank, negative or non-numeric
    workers reject the row; so do coordinates that cannot be read.

    Returns
    -------
    IngestResult
        ``clean`` is a GeoDataFrame (EPSG:4326) with ``workers`` (float) and ``kind`` for places, or a
        DataFrame with ``code``, ``name`` ("" when absent) and ``workers`` for a per-sub-district table.
    """
    datum = coords.parse_datum(crs)
    limits = limits.with_max_bytes(max_bytes)
    src = load_source(source, source_name, limits.max_file_bytes, _TABLE_KINDS + ("geojson", "gpkg", "zip"))
    table = read_table(src, "workers", columns, sheet=sheet, encoding=None, limits=limits)
    mapping = map_columns(table.raw, "workers", columns, src.name, table.notes)
    if "workers" not in mapping:
        raise missing_required("workers", "workers", src.name)
    problems = RowProblems(table.raw.index)
    blank_rows(table, problems)
    unreadable_cells(table, problems)
    workers = _population_values(table, mapping | {"population": mapping["workers"]}, problems, required=True)
    kinds = table.raw[mapping["kind"]].map(cell_text) if "kind" in mapping else pd.Series("workplace", index=table.raw.index)
    has_points = table.geometry is not None or ("lon" in mapping and "lat" in mapping)
    if not has_points:
        if "code" not in mapping and "name" not in mapping:
            raise missing_required("code", "workers", src.name, "或“name”或经纬度 / or 'name' or lon/lat")
        codes = code_column(table, mapping, problems, required=False)
        names = table.raw[mapping["name"]].map(cell_text) if "name" in mapping else pd.Series("", index=table.raw.index)
        keep = ~problems.bad
        clean = pd.DataFrame({"code": codes[keep], "name": names[keep], "workers": workers[keep].astype(float)},
                             index=table.raw.index[keep])
        return finish_result("workers", src.name, table, problems, clean, coords.Datum.WGS84, mapping)
    areal = table.geometry is not None and bool(np.isin(shapely.get_type_id(table.geometry.to_numpy()), [3, 6]).any())
    if areal:  # work areas: every row a polygon, kept whole
        shapes = _polygons(table, datum, problems)
        keep = ~problems.bad
        geometry = shapes[keep].to_numpy()
    else:
        lon, lat = point_lonlat(table, mapping, "workers", src.name, problems)
        keep = ~problems.bad
        lon, lat = to_wgs84_checked(lon, lat, datum, keep)
        geometry = gpd.points_from_xy(lon[keep], lat[keep])
    clean = gpd.GeoDataFrame({"workers": workers[keep].astype(float), "kind": kinds[keep]},
                             geometry=geometry, crs=WGS84, index=table.raw.index[keep])
    return finish_result("workers", src.name, table, problems, clean, datum, mapping)


def read_buildings(
    source: Source,
    *,
    crs: str | coords.Datum = "wgs84",
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    layer: str | None = None,
    m2_per_person: float = DEFAULT_M2_PER_PERSON,
    max_bytes: int | None = None,
    limits: ReadingLimits = DEFAULT_LIMITS,
) -> IngestResult:
    """Read residential building footprints with the residents each holds.

    ``persons`` comes from a persons column when there is one, else from the floor area: footprint
    area (m², measured in a local UTM zone) x floors (a floors column, 1 when absent or blank) /
    ``m2_per_person`` (default 38.6 m², the 2020 census urban per-capita housing floor area).

    Returns
    -------
    IngestResult
        ``clean`` is a GeoDataFrame of polygons (EPSG:4326) with ``persons`` (float).
    """
    if not m2_per_person > 0:
        raise ParameterError("人均面积必须为正数", "m2_per_person must be positive (m² per person)")
    datum = coords.parse_datum(crs)
    limits = limits.with_max_bytes(max_bytes)
    src = load_source(source, source_name, limits.max_file_bytes, _VECTOR_KINDS)
    table = read_table(src, "buildings", columns, sheet=None, encoding=None, limits=limits, gdal_layer=layer)
    mapping = map_columns(table.raw, "buildings", columns, src.name, table.notes)
    problems = RowProblems(table.raw.index)
    unreadable_cells(table, problems)
    geometry = _polygons(table, datum, problems)
    if "persons" in mapping:
        persons = _population_values(table, mapping | {"population": mapping["persons"]}, problems, required=True)
    else:
        floors = number_columns(table, mapping["floors"], problems, field="floors").fillna(1.0) if "floors" in mapping else \
            pd.Series(1.0, index=table.raw.index)
        for row in floors.index[(floors <= 0).to_numpy()]:
            problems.add(row, Reason.INVALID_VALUE, column=mapping.get("floors", "floors"), value=floors[row])
        area = _area_m2(geometry)
        persons = area * floors / m2_per_person
    keep = ~problems.bad
    clean = gpd.GeoDataFrame({"persons": persons[keep].astype(float)}, geometry=geometry[keep], crs=WGS84,
                             index=table.raw.index[keep])
    return finish_result("buildings", src.name, table, problems, clean, datum, mapping)


def _area_m2(geometry: gpd.GeoSeries) -> pd.Series:
    valid = geometry[~(geometry.isna() | geometry.is_empty)]
    if valid.empty:
        return pd.Series(0.0, index=geometry.index)
    area = valid.to_crs(valid.estimate_utm_crs()).area
    return area.reindex(geometry.index).fillna(0.0)

