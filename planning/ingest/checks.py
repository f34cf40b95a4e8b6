"""Mapping a file's headers to fields, and the row checks every reader shares (blanks, ids, flags, numbers, points)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import shapely

from planning import coords
from planning.errors import MissingColumnError, ParameterError
from planning.ingest.result import IngestResult, RowNotes, RowProblems
from planning.ingest.sources import RawTable
from planning.ingest.vocabulary import (
    COMMA_DECIMAL, FIELD_UNITS, REQUIRED_COLUMNS, FIELD_ALIASES, INVALID, Note, Reason, UncomputedFormula, norm_header,
    cell_text, comma_decimal_value, is_scientific_code, number_unit, parse_code, parse_coordinate, parse_flag,
    parse_number, units_text,
)


# ======================================================================================= column mapping
def map_columns(raw: pd.DataFrame, layer: str, columns: Mapping[str, str] | None, name: str,
                 notes: RowNotes) -> dict[str, str]:
    """Field -> header of ``raw``: explicit ``columns`` (header -> field) first, then the alias table."""
    fields = FIELD_ALIASES[layer]
    mapping: dict[str, str] = {}
    for header, target in (columns or {}).items():
        if target not in fields:
            raise ParameterError(f"列映射的目标“{target}”未知，可用：{list(fields)}",
                                 f"column mapping target {target!r} is unknown; fields: {list(fields)}")
        if header not in raw.columns:
            raise MissingColumnError(f"{name} 中没有列映射指定的列“{header}”（有：{list(raw.columns)}）",
                                     f"{name} has no column {header!r} named in the column mapping "
                                     f"(columns: {list(raw.columns)})")
        mapping[target] = header
    explicit = set(mapping)
    taken = set(mapping.values())
    candidates: dict[str, list[tuple[int, int, str]]] = {}  # field -> (alias rank, column position, header)
    for position, header in enumerate(raw.columns):
        if header in taken:
            continue
        key = norm_header(_repeated_header_base(str(header), raw.columns))
        for target, aliases in FIELD_ALIASES[layer].items():
            ranks = [i for i, alias in enumerate(aliases) if norm_header(alias) == key]
            if ranks:
                candidates.setdefault(target, []).append((ranks[0], position, header))
                break
    for target, found in candidates.items():
        found.sort()
        if target not in explicit:
            mapping[target] = found[0][2]
        for _rank, _position, header in found[target not in explicit:]:
            notes.add(0, Note.COLUMN_IGNORED, column=header, value=f"“{mapping[target]}” used for {target}")
    absent = [target for target in REQUIRED_COLUMNS[layer] if target not in mapping]
    if absent:
        raise _missing_all(absent, layer, name)
    return mapping


def _repeated_header_base(header: str, headers: pd.Index) -> str:
    """"经度" for "经度.1", the label a second 经度 column gets (so it is noted as not used, never dropped
    unseen); any other header as it is."""
    base, dot, number = header.rpartition(".")
    return base if dot and number.isdigit() and base in headers else header


def missing_required(target: str, layer: str, name: str, extra: str = "") -> MissingColumnError:
    aliases = FIELD_ALIASES[layer].get(target, ())
    return MissingColumnError(f"{name} 缺少必需列“{target}”{extra}（可用列名：{'、'.join(aliases)}）",
                              f"{name} lacks the required column '{target}'{extra} "
                              f"(accepted headers: {', '.join(aliases)})")


def _missing_all(targets: list[str], layer: str, name: str) -> MissingColumnError:
    """One error naming every missing required column (so one run reports them all)."""
    if len(targets) == 1:
        return missing_required(targets[0], layer, name)
    zh = "；".join(f"“{t}”（可用列名：{'、'.join(FIELD_ALIASES[layer].get(t, ()))}）" for t in targets)
    en = "; ".join(f"'{t}' (accepted headers: {', '.join(FIELD_ALIASES[layer].get(t, ()))})" for t in targets)
    return MissingColumnError(f"{name} 缺少必需列 {zh}", f"{name} lacks the required columns {en}")


# ======================================================================================= shared row checks
def map_unique(cells: pd.Series, function) -> pd.Series:
    """``cells.map(function)`` calling ``function`` once per distinct cell (blank cells as NaN): a column of
    100,000 是/否 flags is a handful of calls, not 100,000."""
    codes, uniques = pd.factorize(cells, use_na_sentinel=True)
    values = np.array([function(v) for v in uniques] + [function(np.nan)], dtype=object)
    return pd.Series(values[codes], index=cells.index, dtype=object)  # code -1 (blank) takes the last value


def blank_rows(table: RawTable, problems: RowProblems) -> None:
    blank = pd.concat([map_unique(table.raw.iloc[:, i], lambda v: cell_text(v) == "").astype(bool)
                       for i in range(len(table.raw.columns))], axis=1).all(axis=1) if len(table.raw.columns) else \
        pd.Series(True, index=table.raw.index)
    if table.geometry is not None:
        blank &= table.geometry.isna() | table.geometry.is_empty
    problems.add_all(table.raw.index[blank.to_numpy()], Reason.EMPTY_ROW)


def required_text(table: RawTable, mapping: dict[str, str], target: str, problems: RowProblems) -> pd.Series:
    values = table.raw[mapping[target]].map(cell_text)
    for row in values.index[(values == "").to_numpy()]:
        if not problems.has(row):
            problems.add(row, Reason.MISSING_VALUE, column=mapping[target])
    return values


def code_column(table: RawTable, mapping: dict[str, str], problems: RowProblems, *, required: bool) -> pd.Series:
    """The administrative codes as text ("" where absent); a code in scientific notation (Excel's
    "9.90102E+8": digits lost) rejects its row, so does a blank one when ``required``."""
    if "code" not in mapping:
        return pd.Series("", index=table.raw.index, dtype=object)
    codes = (required_text(table, mapping, "code", problems) if required else table.raw[mapping["code"]]).map(parse_code)
    for row in codes.index[codes.map(is_scientific_code).to_numpy()]:
        problems.add(row, Reason.CODE_AS_NUMBER, column=mapping["code"], value=codes[row])
    return codes


def duplicate_id_rows(ids: pd.Series, problems: RowProblems) -> None:
    """Every row sharing a non-empty id with another is rejected, naming all of them."""
    present = ids[ids != ""]
    for value, group in present.groupby(present, sort=False):
        if len(group) > 1:
            rows = ", ".join(str(r) for r in group.index)
            problems.add_all(group.index, Reason.DUPLICATE_ID, value=value, rows=rows)


def flag_columns(table: RawTable, header: str, problems: RowProblems, reason: Reason = Reason.INVALID_VALUE) -> pd.Series:
    """A yes/no column as bool (blank = False); unknown values reject the row."""
    parsed = map_unique(table.raw[header], parse_flag)
    for row in parsed.index[parsed.isna().to_numpy()]:
        if not isinstance(table.raw.at[row, header], UncomputedFormula):  # said once by unreadable_cells
            problems.add(row, reason, column=header, value=cell_text(table.raw.at[row, header]))
    return parsed.fillna(False).astype(bool)


def number_columns(table: RawTable, header: str, problems: RowProblems, reason: Reason = Reason.INVALID_VALUE, *,
                   field: str = "") -> pd.Series:
    """A numeric column as float (blank = NaN); junk, or a unit ``field`` does not take
    (:data:`FIELD_UNITS`: "85%" or "3个月" in a count), rejects the row."""
    units = FIELD_UNITS.get(field, ())
    parsed = table.raw[header].map(lambda cell: parse_number(cell, units))
    bad = parsed.map(lambda v: v is INVALID)
    for row in parsed.index[bad.to_numpy()]:
        number_problem(problems, row, header, table.raw.at[row, header], units, reason)
    return parsed.map(lambda v: np.nan if v is None or v is INVALID else v).astype(float)


def number_problem(problems: RowProblems, row: int, header: str, cell: Any, units: tuple[str, ...],
                   reason: Reason) -> None:
    """Reject ``row`` for the number cell ``cell``: a unit it does not take, else ``reason``."""
    if isinstance(cell, UncomputedFormula):
        return  # said once by unreadable_cells
    unit = number_unit(cell)
    if unit:
        expected = units_text(units)
        problems.add(row, Reason.UNIT_IN_NUMBER, column=header, value=cell_text(cell), unit=unit,
                     expected=expected.zh, expected_en=expected.en)
    else:
        problems.add(row, reason, column=header, value=cell_text(cell))


def unreadable_cells(table: RawTable, problems: RowProblems) -> None:
    """Reject every row holding a cell that cannot be taken as given: a formula without a computed value
    (an XLSX never saved by Excel), or a cell longer than the reading limit (cut short by the reader)."""
    for row, (header, length, limit) in table.long_cells.items():
        problems.add(row, Reason.CELL_TOO_LONG, column=header, length=length, limit=limit)
    for header in table.raw.columns:
        column = table.raw[header]
        for row in column.index[column.map(lambda v: isinstance(v, UncomputedFormula)).to_numpy()]:
            problems.add(row, Reason.FORMULA_NOT_COMPUTED, column=header, value=str(column[row]))


def _lonlat_checks(lon: np.ndarray, lat: np.ndarray, rows: pd.Index, problems: RowProblems) -> None:
    finite = np.isfinite(lon) & np.isfinite(lat)
    inside = coords.in_china(lon, lat)
    swapped = coords.in_china(lat, lon)
    for k in np.flatnonzero(finite & ~inside):
        reason = Reason.SWAPPED_LON_LAT if swapped[k] else Reason.OUTSIDE_CHINA
        problems.add(rows[k], reason, lon=f"{lon[k]:g}", lat=f"{lat[k]:g}")


def point_lonlat(table: RawTable, mapping: dict[str, str], layer: str, name: str, problems: RowProblems
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Raw longitude/latitude per row (NaN where missing), from point geometry or lon/lat columns."""
    rows = table.raw.index
    lon = np.full(len(rows), np.nan)
    lat = np.full(len(rows), np.nan)
    todo = np.ones(len(rows), dtype=bool)
    if table.geometry is not None:
        geoms = table.geometry.to_numpy()
        present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        types = shapely.get_type_id(geoms)
        points = present & (types == 0)
        lon[points], lat[points] = shapely.get_x(geoms[points]), shapely.get_y(geoms[points])
        for k in np.flatnonzero(present & ~points):
            problems.add(rows[k], Reason.WRONG_GEOMETRY_TYPE, expected="Point", value=geoms[k].geom_type)
        todo = ~present
    has_columns = ("lon" in mapping and "lat" in mapping) or "lonlat" in mapping
    if not has_columns:
        if table.geometry is None:
            raise missing_required("lon", layer, name, "/lat")
        for k in np.flatnonzero(todo):
            if not problems.has(rows[k]):
                problems.add(rows[k], Reason.MISSING_COORDINATE, column="geometry")
    else:
        if "lon" in mapping and "lat" in mapping:  # plain decimals column-wise (row by row took 9 s per 100,000)
            plain_lon, plain_lat = (_plain_decimals(table.raw[mapping[f]]) for f in ("lon", "lat"))
            plain = todo & np.isfinite(plain_lon) & np.isfinite(plain_lat)
            lon[plain], lat[plain] = plain_lon[plain], plain_lat[plain]
            todo = todo & ~plain
        for k in np.flatnonzero(todo):
            row = rows[k]
            values = _coordinate_cells(table.raw.loc[row], mapping)
            for column, cell in values:
                parsed = parse_coordinate(cell)
                if isinstance(cell, UncomputedFormula):
                    continue  # said once by unreadable_cells
                if parsed is None:
                    problems.add(row, Reason.MISSING_COORDINATE, column=column)
                elif parsed is COMMA_DECIMAL:
                    problems.add(row, Reason.COMMA_DECIMAL, column=column, value=cell_text(cell),
                                 suggested=comma_decimal_value(cell))
                elif parsed is INVALID:
                    problems.add(row, Reason.NON_NUMERIC_COORDINATE, column=column, value=cell_text(cell))
            if len(values) == 2 and all(isinstance(parse_coordinate(c), float) for _, c in values):
                lon[k], lat[k] = (parse_coordinate(c) for _, c in values)
            elif len(values) == 1 and isinstance(parse_coordinate(values[0][1]), float):  # one number, not "lng,lat"
                problems.add(row, Reason.NON_NUMERIC_COORDINATE, column=values[0][0], value=cell_text(values[0][1]))
    for k in np.flatnonzero(~(np.isfinite(lon) & np.isfinite(lat))):  # safety net: no row kept without a point
        if not problems.has(rows[k]):
            problems.add(rows[k], Reason.MISSING_COORDINATE, column="lon/lat")
    _lonlat_checks(lon, lat, rows, problems)
    return lon, lat


#: A cell :func:`parse_coordinate` reads as exactly ``float(text)``: ASCII digits, one optional point, a sign.
_PLAIN_DECIMAL = r"^[+-]?[0-9]+(?:\.[0-9]+)?$"


def _plain_decimals(cells: pd.Series) -> np.ndarray:
    """Each cell as a float where it is a plain decimal (a finite float, or text matching
    :data:`_PLAIN_DECIMAL`), else NaN: those cells go through :func:`parse_coordinate` one by one."""
    values = cells.to_numpy(dtype=object)
    is_float = np.array([type(v) is float for v in values])
    out = np.full(len(values), np.nan)
    if is_float.any():
        out[is_float] = values[is_float].astype(float)
    text = pd.Series(values[~is_float]).astype(str).str.strip()
    matched = text.str.match(_PLAIN_DECIMAL).fillna(False).to_numpy(dtype=bool)
    rest = np.flatnonzero(~is_float)
    out[rest[matched]] = text[matched].astype(float).to_numpy()
    return np.where(np.isfinite(out), out, np.nan)


def _coordinate_cells(record: pd.Series, mapping: dict[str, str]) -> list[tuple[str, Any]]:
    """[(column, lon cell), (column, lat cell)], splitting a combined "lon,lat" cell when that is all there is."""
    if "lon" in mapping and "lat" in mapping:
        return [(mapping["lon"], record[mapping["lon"]]), (mapping["lat"], record[mapping["lat"]])]
    header = mapping["lonlat"]
    text = unicodedata.normalize("NFKC", cell_text(record[header]))
    parts = [p for p in re.split(r"[,;\s]+", text) if p]
    if not parts:
        return [(header, None)]
    if len(parts) != 2:
        return [(header, text)]
    return [(header, parts[0]), (header, parts[1])]


def to_wgs84_checked(lon: np.ndarray, lat: np.ndarray, datum: coords.Datum, ok: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    out_lon, out_lat = lon.copy(), lat.copy()
    if ok.any():
        out_lon[ok], out_lat[ok] = coords.to_wgs84(lon[ok], lat[ok], datum)
    return out_lon, out_lat


def finish_result(layer: str, src_name: str, table: RawTable, problems: RowProblems, clean: pd.DataFrame,
            datum: coords.Datum, mapping: dict[str, str]) -> IngestResult:
    return IngestResult(layer=layer, source=src_name, clean=clean, rejected=problems.frame(table.raw, src_name),
                        notes=table.notes.frame(), n_in=len(table.raw), datum=datum, mapping=mapping)

