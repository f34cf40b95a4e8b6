"""Assembling a validated Region from reader results or files (build_region), and the pharmacy datum check."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planning import coords
from planning.errors import MissingColumnError
from planning.ingest.readers import FUND_COLUMNS, read_boundaries, read_fund_status, read_pharmacies, read_population
from planning.ingest.result import IngestResult
from planning.ingest.sources import Source
from planning.ingest.vocabulary import Reason, _code_key, _name_key
from planning.model import COUNTY_SCHEMA, PHARMACY_SCHEMA, SUBDISTRICT_SCHEMA, WGS84, Region, validate_region


class IngestWarning(UserWarning):
    """Something was assumed while assembling a region (a default value, a derived layer)."""


# ======================================================================================= region
_Input = Union[IngestResult, Source]


def build_region(
    *,
    pharmacies: _Input,
    subdistricts: _Input,
    counties: _Input | None = None,
    population: _Input | None = None,
    fund_status: _Input | None = None,
    network: str | os.PathLike | None = None,
    crs: str | coords.Datum = "wgs84",
    boundary_crs: str | coords.Datum = "wgs84",
    name: str = "",
    fictional: bool = False,
) -> Region:
    """Assemble a validated :class:`~planning.model.Region` from reader results or files.

    Each input is an :class:`IngestResult` or a file (read with default options; ``crs`` is the
    pharmacies' datum, ``boundary_crs`` that of the boundaries). The steps, each rejecting rows it
    cannot place:

    1. counties: from ``counties``, or (when absent) dissolved from the sub-districts by county code
       (an :class:`IngestWarning` says so); fund status attached by code, else name (counties not
       listed are "no deficit, no letter", with a warning);
    2. sub-districts: county from their ``county_code``, else the code's 6-digit prefix, else the
       county holding them; none -> ``no_county``;
    3. population: a population table matched by code, else name (unmatched rows rejected), else the
       boundary file's population column; a sub-district left without -> ``no_population``;
    4. pharmacies outside every county and sub-district -> ``outside_boundaries``.

    ``Region.rejected`` lists every rejected row of every input: ``layer``, ``source``, ``row``,
    ``reason_code``, ``reason`` and ``values`` (the raw cells as "header=value; ...").
    """
    ph = pharmacies if isinstance(pharmacies, IngestResult) else read_pharmacies(pharmacies, crs=crs)
    sd = subdistricts if isinstance(subdistricts, IngestResult) else \
        read_boundaries(subdistricts, level="subdistrict", crs=boundary_crs)
    ct = None if counties is None else counties if isinstance(counties, IngestResult) else \
        read_boundaries(counties, level="county", crs=boundary_crs)
    pop = None if population is None else population if isinstance(population, IngestResult) else \
        read_population(population)
    fund = None if fund_status is None else fund_status if isinstance(fund_status, IngestResult) else \
        read_fund_status(fund_status)
    extra: list[pd.DataFrame] = []
    county_layer = _county_layer(ct, sd)
    county_layer, fund_rejected = _attach_fund(county_layer, fund)
    extra.append(fund_rejected)
    subs, rejected_subs = _assign_counties(sd, county_layer)
    extra.append(rejected_subs)
    if pop is None and not subs["population"].notna().any() and len(subs):
        raise MissingColumnError("没有人口数据：请提供人口表，或在街道/乡镇边界中加入人口列",
                                 "no population: give a population table or a population column in the sub-districts")
    subs, pop_rejected, no_population = _attach_population(subs, pop, sd)
    extra += [pop_rejected, no_population]
    places, outside = _locate_pharmacies(ph, sd, county_layer)
    extra.append(outside)
    frames = [f for f in [rejected_table(r) for r in (ph, sd, ct, pop, fund) if r is not None] + extra if len(f)]
    rejected = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    rejected["row"] = rejected["row"].astype(np.int64)
    region = Region(
        name=name or Path(ph.source).stem,
        counties=_schema_frame(county_layer, COUNTY_SCHEMA),
        subdistricts=_schema_frame(subs.assign(population=subs["population"].astype(np.int64)), SUBDISTRICT_SCHEMA),
        pharmacies=_schema_frame(places, PHARMACY_SCHEMA),
        network_path=Path(network) if network is not None else None,
        fictional=fictional,
        rejected=rejected[_REGION_REJECTED_COLUMNS],
    )
    return validate_region(region)


_REGION_REJECTED_COLUMNS = ["layer", "source", "row", "reason_code", "reason", "values"]


def rejected_table(result: IngestResult) -> pd.DataFrame:
    """A reader's rejected table in the Region form (raw cells folded into one ``values`` column)."""
    if result.rejected.empty:
        return pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    raw = result.rejected.drop(columns=["source", "row", "reason_code", "reason"])
    values = raw.apply(lambda r: "; ".join(f"{k}={v}" for k, v in r.items() if v != ""), axis=1) if len(raw.columns) \
        else pd.Series("", index=raw.index)
    return pd.DataFrame({"layer": result.layer, "source": result.rejected["source"], "row": result.rejected["row"],
                         "reason_code": result.rejected["reason_code"], "reason": result.rejected["reason"],
                         "values": values})


def _rejections(layer: str, source: str, where: Iterable[int], reason: Reason, values: Iterable[str],
                **detail: Any) -> pd.DataFrame:
    where = [int(r) for r in where]
    return pd.DataFrame({"layer": layer, "source": source, "row": pd.Series(where, dtype=np.int64),
                         "reason_code": reason.value, "reason": [reason.text(**detail)] * len(where),
                         "values": list(values)}, columns=_REGION_REJECTED_COLUMNS)


def _schema_frame(gdf: gpd.GeoDataFrame, schema: dict[str, tuple[str, bool]]) -> gpd.GeoDataFrame:
    keep = [c for c in schema if c in gdf.columns]
    out = gpd.GeoDataFrame(gdf[keep].reset_index(drop=True), geometry=gdf.geometry.reset_index(drop=True), crs=WGS84)
    for column in keep:
        if schema[column][0] == "str":
            out[column] = out[column].astype(object)
    return out


def _county_layer(ct: IngestResult | None, sd: IngestResult) -> gpd.GeoDataFrame:
    if ct is not None:
        return ct.clean.copy()
    subs = sd.clean
    county = subs["county_code"].where(subs["county_code"] != "", subs["code"].map(lambda c: c[:6]))
    dissolved = gpd.GeoDataFrame({"code": county}, geometry=subs.geometry, crs=WGS84).dissolve(by="code").reset_index()
    warnings.warn(f"没有县（市、区）边界：由街道/乡镇按县代码合并得到 {len(dissolved)} 个 / no county boundaries: "
                  f"{len(dissolved)} counties dissolved from the sub-districts by county code",
                  IngestWarning, stacklevel=3)
    dissolved["name"] = dissolved["code"]
    return dissolved


def _attach_fund(counties: gpd.GeoDataFrame, fund: IngestResult | None) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    counties = counties.copy()
    given = all(c in counties.columns for c in FUND_COLUMNS)
    for target in FUND_COLUMNS:
        if target not in counties.columns:
            counties[target] = False
    if fund is None:
        if not given:
            warnings.warn("没有基金运行情况表：全部县按“无亏损、无预警函”处理 / no fund-status table: every county "
                          "taken as no deficit, no warning letter", IngestWarning, stacklevel=3)
        return counties, pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    claims, _contested, rejected = _match(fund, counties, digits=6, target=("县（市、区）", "county"))
    for at, row in claims.items():
        for target in FUND_COLUMNS:
            counties.at[at, target] = bool(fund.clean.at[row, target])
    missing = [str(n) for i, n in zip(counties.index, counties["name"]) if i not in claims]
    if missing:
        warnings.warn(f"基金运行情况表中没有这些县，按“无亏损”处理：{missing} / counties absent from the fund-status "
                      f"table, taken as no deficit: {missing}", IngestWarning, stacklevel=3)
    return counties, rejected


def _match(table: IngestResult, targets: pd.DataFrame, *, digits: int, target: tuple[str, str]
           ) -> tuple[dict[Any, int], set[Any], pd.DataFrame]:
    """Match the rows of a code/name table to ``targets`` by code (cut to ``digits``), else unique name.

    Returns {target index: table row} for targets claimed by exactly one row, and the rejections:
    rows matching nothing (``unmatched``) and rows claiming a target another row claims too
    (``duplicate_id``, all of them; those targets are returned as ``contested``).
    """
    by_code = {_code_key(c, digits): i for i, c in zip(targets.index, targets["code"])}
    by_name = _unique_names(targets["name"])
    claims: dict[Any, list[int]] = {}
    unmatched: list[int] = []
    for row, record in table.clean.iterrows():
        at = by_code.get(_code_key(record["code"], digits)) if record["code"] else None
        if at is None and record["name"]:
            at = by_name.get(_name_key(record["name"]))
        if at is None:
            unmatched.append(row)
        else:
            claims.setdefault(at, []).append(row)
    labels = [_label(table.clean.loc[r]) for r in unmatched]
    frames = [_rejections(table.layer, table.source, unmatched, Reason.UNMATCHED, labels,
                          value="、".join(labels), target=target[0], target_en=target[1])]
    for at, rows in claims.items():
        if len(rows) > 1:
            frames.append(_rejections(table.layer, table.source, rows, Reason.DUPLICATE_ID,
                                      [_label(table.clean.loc[r]) for r in rows], value=targets.at[at, "name"],
                                      rows=", ".join(map(str, rows))))
    frames = [f for f in frames if len(f)]
    rejected = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    contested = {at for at, rows in claims.items() if len(rows) > 1}
    return {at: rows[0] for at, rows in claims.items() if len(rows) == 1}, contested, rejected


def _label(record: pd.Series) -> str:
    return "; ".join(f"{k}={record[k]}" for k in ("code", "name") if k in record and record[k] != "")


def _unique_names(names: pd.Series) -> dict[str, Any]:
    keys = names.map(lambda n: _name_key(str(n)))
    counts = keys.value_counts()
    return {k: i for i, k in zip(names.index, keys) if counts[k] == 1}


def _assign_counties(sd: IngestResult, counties: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    subs = sd.clean.copy()
    by_key = {_code_key(c, 6): c for c in counties["code"]}
    by_name = _unique_names(counties["name"])
    tree = shapely.STRtree(counties.geometry.to_numpy())
    assigned: list[str | None] = []
    why: dict[Any, str] = {}
    for row, record in subs.iterrows():
        given = record["county_code"]
        if given:  # a county code, or failing that a county name
            at = by_name.get(_name_key(given))
            assigned.append(by_key.get(_code_key(given, 6)) or (counties.at[at, "code"] if at is not None else None))
            if assigned[-1] is None:
                why[row] = f"county_code {given}"
            continue
        county = by_key.get(record["code"][:6])
        if county is None:
            hits = tree.query(record.geometry.representative_point(), predicate="within")
            county = counties["code"].iloc[int(hits[0])] if len(hits) else None
        assigned.append(county)
        if county is None:
            why[row] = f"code {record['code']}"
    subs["county_code"] = pd.Series(assigned, index=subs.index, dtype=object)
    bad = list(why)
    frames = [_rejections("subdistricts", sd.source, [r], Reason.NO_COUNTY, [_label(subs.loc[r])], value=why[r])
              for r in bad]
    rejected = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    return subs.drop(index=bad), rejected


def _attach_population(subs: gpd.GeoDataFrame, pop: IngestResult | None, sd: IngestResult
                       ) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Population from the table (matched against every sub-district read: rows matching one dropped
    since for another reason are not rejected twice), else the boundary file's column."""
    subs = subs.copy()
    pop_rejected = pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    if pop is not None:
        claims, contested, pop_rejected = _match(pop, sd.clean, digits=9, target=("街道/乡镇", "sub-district"))
        for at, row in claims.items():
            if at in subs.index:
                subs.at[at, "population"] = float(pop.clean.at[row, "population"])
        subs.loc[subs.index.isin(contested), "population"] = np.nan  # two rows for one: neither is trusted
    missing = subs.index[subs["population"].isna().to_numpy()]
    no_population = _rejections("subdistricts", sd.source, missing, Reason.NO_POPULATION,
                                [_label(subs.loc[r]) for r in missing])
    return subs.drop(index=missing), pop_rejected, no_population


def _locate_pharmacies(ph: IngestResult, sd: IngestResult, counties: gpd.GeoDataFrame
                       ) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    areas = np.concatenate([counties.geometry.to_numpy(), sd.clean.geometry.to_numpy()])
    points = ph.clean.geometry.to_numpy()
    inside = np.zeros(len(points), dtype=bool)
    if len(areas) and len(points):
        hit, _ = shapely.STRtree(areas).query(points, predicate="intersects")
        inside[np.unique(hit)] = True
    rows = ph.clean.index[~inside]
    values = [f"pharmacy_id={ph.clean.at[r, 'pharmacy_id']}; name={ph.clean.at[r, 'name']}" for r in rows]
    return ph.clean[inside], _rejections("pharmacies", ph.source, rows, Reason.OUTSIDE_BOUNDARIES, values)


def check_pharmacy_datum(result: IngestResult | gpd.GeoDataFrame, network, *,
                         declared: str | coords.Datum | None = None) -> coords.DatumDiagnostic:
    """:func:`planning.coords.check_datum_offset` for pharmacies already read (WGS84 geometry).

    ``declared`` defaults to the datum ``result`` was read with (WGS84 for a bare GeoDataFrame); a
    :class:`~planning.coords.DatumOffsetWarning` is issued when the pharmacies fit the street network
    much better under another datum.
    """
    gdf = result.clean if isinstance(result, IngestResult) else result
    datum = coords.parse_datum(declared if declared is not None else
                               result.datum if isinstance(result, IngestResult) else coords.Datum.WGS84)
    lon, lat = coords.from_wgs84(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy(), datum)
    return coords.check_datum_offset(lon, lat, network, declared=datum)
