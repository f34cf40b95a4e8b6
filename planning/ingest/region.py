"""Assembling a validated Region from reader results or files (build_region), and the pharmacy datum check."""

from __future__ import annotations

import dataclasses
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
from planning.completeness import DataCompleteness, LayerStatus
from planning.errors import MissingColumnError
from planning.ingest.datum import decide_datum
from planning.ingest.readers import (
    DEMAND_FIELDS, FUND_COLUMNS, read_boundaries, read_fund_status, read_pharmacies, read_population,
)
from planning.ingest.result import IngestResult, emptied_layer_error
from planning.ingest.sources import Source
from planning.ingest.vocabulary import Reason, code_key, name_key
from planning.settlement import missing_status_inputs
from planning.model import (
    COUNTY_SCHEMA, PHARMACY_SCHEMA, SUBDISTRICT_SCHEMA, WGS84, Region, Service, service_labels, validate_region,
)
from planning.netstore import NetworkStore, is_store
from planning.network import WalkNetwork, load_network
from planning.text import Text


class IngestWarning(UserWarning):
    """Something was assumed while assembling a region (a default value, a derived layer)."""


# ======================================================================================= region
_Input = Union[IngestResult, Source]


def build_region(
    *,
    pharmacies: _Input,
    subdistricts: _Input | None = None,
    counties: _Input | None = None,
    population: _Input | None = None,
    fund_status: _Input | None = None,
    network: str | os.PathLike | WalkNetwork | None = None,
    crs: str | coords.Datum = "auto",
    trust_crs: bool = False,
    boundary_crs: str | coords.Datum = "wgs84",
    name: str = "",
    fictional: bool = False,
) -> Region:
    """Assemble a validated :class:`~planning.model.Region` from reader results or files.

    Each input is an :class:`IngestResult` or a file (read with default options; ``crs`` is the
    pharmacies' datum, ``boundary_crs`` that of the boundaries). The steps, each rejecting rows it
    cannot place:

    0. every missing required column of any file is collected and reported in **one**
       :class:`MissingColumnError`. Missing layers do not stop the build; the rules needing them are not
       judged (``Region.completeness``): without ``subdistricts`` each county (or, without counties too,
       one area covering the network and the pharmacies) stands in as a sub-district, so circles, B1 and
       the designation check still run while R1, R2, the classes, B2 and the R3 priority areas are not
       judged; ``subdistricts="osm"`` reads the network file's closed township relations (admin_level 8)
       instead. Without a population table or column the population is unknown (kept as 0; the
       per-10,000 measures, classes and R3 shares are not judged, coverage is measured by street length);
    1. the pharmacy datum: ``crs="auto"`` (default) lets the data decide between WGS84, GCJ-02 and
       BD-09 (fit to the streets of ``network``, and the 区/街道 names in the addresses against the
       boundaries: :func:`planning.ingest.datum.decide_datum`); a declared ``crs`` the data clearly
       contradicts raises :class:`~planning.ingest.datum.DatumMismatchError` (naming the better datum
       and the figures) unless ``trust_crs``;
    2. counties: from ``counties``, or (when absent) dissolved from the sub-districts by county code
       (an :class:`IngestWarning` says so); fund status attached by code, else name (counties not
       listed read as "no deficit, no letter", with a warning, and listed as missing: B3/B4 not judged);
    3. sub-districts: county from their ``county_code``, else the code's 6-digit prefix, else the
       county holding them; none -> ``no_county``;
    4. population: a population table matched by code, else name (unmatched rows rejected), else the
       boundary file's population column; a sub-district left without -> ``no_population``;
    5. pharmacies outside every county and sub-district -> ``outside_boundaries``.

    ``network`` is a network file (also stored as ``Region.network_path``) or a loaded
    :class:`~planning.network.WalkNetwork`. ``Region.rejected`` lists every rejected row of every input:
    ``layer``, ``source``, ``row``, ``reason_code``, ``reason`` and ``values`` (the raw cells as
    "header=value; ..."). ``Region.completeness`` (:class:`planning.completeness.DataCompleteness`) holds
    the rows per layer, what was missing with the rules it disables, the datum decision and every
    warning raised on the way (which are also re-issued).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        region = _build(pharmacies=pharmacies, subdistricts=subdistricts, counties=counties, population=population,
                        fund_status=fund_status, network=network, crs=crs, trust_crs=trust_crs,
                        boundary_crs=boundary_crs, name=name, fictional=fictional)
    texts = []
    for warning in caught:
        text = str(warning.message)
        if text not in texts:
            texts.append(text)
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    completeness = dataclasses.replace(region.completeness, warnings=tuple(texts))
    return dataclasses.replace(region, completeness=completeness)


def _read_all(pharmacies, subdistricts, counties, population, fund_status, crs, boundary_crs):
    """Read every input given as a file, collecting missing-column errors so that one error lists them all."""
    missing: list[MissingColumnError] = []

    def read(value, reader, **kwargs):
        if value is None or isinstance(value, IngestResult):
            return value
        try:
            return reader(value, **kwargs)
        except MissingColumnError as exc:
            missing.append(exc)
            return None

    ph = read(pharmacies, read_pharmacies, crs=crs, trust_crs=True)  # the datum is decided below, with everything
    sd = read(subdistricts, read_boundaries, level="subdistrict", crs=boundary_crs)
    ct = read(counties, read_boundaries, level="county", crs=boundary_crs)
    pop = read(population, read_population)
    fund = read(fund_status, read_fund_status)
    if len(missing) == 1:
        raise missing[0]
    if missing:
        raise MissingColumnError("缺少以下必需输入：" + "；".join(e.message_zh for e in missing),
                                 "these required inputs are missing: " + "; ".join(e.message_en for e in missing))
    return ph, sd, ct, pop, fund


def _build(*, pharmacies, subdistricts, counties, population, fund_status, network, crs, trust_crs, boundary_crs,
           name, fictional) -> Region:
    if isinstance(subdistricts, str) and subdistricts.strip().lower() == OSM_BOUNDARIES:
        subdistricts = _osm_subdistricts(network)
    ph, sd, ct, pop, fund = _read_all(pharmacies, subdistricts, counties, population, fund_status, crs, boundary_crs)
    for given in (ph, sd, ct, pop, fund):  # a layer with every row rejected stops here, before any work
        if given is not None:
            given.require_rows()
    walk, fit_points = _checking_network(network, ph)
    extra: list[pd.DataFrame] = []
    given_sd = sd
    if sd is None:
        sd = _stand_in_subdistricts(ph, ct, walk)
        warnings.warn(_stand_in_note(ct).both(), IngestWarning, stacklevel=3)
    county_layer = _county_layer(ct, sd, stand_in=given_sd is None)
    fund_given = fund is not None or all(c in county_layer.columns for c in FUND_COLUMNS)
    county_layer, fund_rejected, fund_absent = _attach_fund(county_layer, fund)
    extra.append(fund_rejected)
    named_areas = [("county", county_layer)] if ct is not None else []
    if given_sd is not None:
        named_areas.append(("subdistrict", given_sd.clean))
    ph = _apply_datum(ph, crs, trust_crs, walk, named_areas, fit_points=fit_points)
    subs, rejected_subs = _assign_counties(sd, county_layer)
    extra.append(rejected_subs)
    subs, pop_rejected, no_population, population_unknown = _attach_population(subs, pop, sd)
    extra += [pop_rejected, no_population]
    places, outside = _locate_pharmacies(ph, sd, county_layer)
    extra.append(outside)
    frames = [f for f in [rejected_table(r) for r in (ph, sd, ct, pop, fund) if r is not None] + extra if len(f)]
    rejected = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    rejected["row"] = rejected["row"].astype(np.int64)
    for layer, given, kept in (("subdistricts", sd, subs), ("pharmacies", ph, places)):
        if given is not None and len(kept) == 0:  # every row read, none placed (no county, outside...)
            raise emptied_layer_error(layer, given.source, given.n_in, rejected[rejected["layer"] == layer])
    completeness = _completeness(ph, given_sd, ct, pop, fund, walk, network, rejected, fund_given=fund_given,
                                 fund_absent=fund_absent, dissolved=ct is None and given_sd is not None,
                                 has_population=not population_unknown)
    region = Region(
        name=name or Path(ph.source).stem,
        counties=_schema_frame(county_layer, COUNTY_SCHEMA),
        subdistricts=_schema_frame(subs.assign(population=subs["population"].astype(np.int64)), SUBDISTRICT_SCHEMA),
        pharmacies=_schema_frame(places, PHARMACY_SCHEMA),
        network_path=Path(network) if network is not None and not isinstance(network, WalkNetwork) else None,
        fictional=fictional,
        rejected=rejected[_REGION_REJECTED_COLUMNS],
        completeness=completeness,
    )
    return validate_region(region)


#: Pharmacies sampled (evenly through the sheet) to decide the datum against a network store's streets.
DATUM_SAMPLE_PHARMACIES = 200
#: Streets read around each sampled pharmacy, metres (a GCJ-02 or BD-09 offset in China is 100-700 m).
DATUM_SAMPLE_RADIUS_M = 1_000.0


def _checking_network(network, ph: IngestResult) -> tuple[WalkNetwork | None, np.ndarray | None]:
    """The streets the ingest checks the pharmacies against (datum, stand-in areas) and the pharmacies
    (positions in ``ph.clean``) whose streets they hold, None for all: the network given, the file read,
    or for a network store (:mod:`planning.netstore`, a province read tile by tile) the streets around
    an even sample of :data:`DATUM_SAMPLE_PHARMACIES` pharmacies."""
    if network is None or isinstance(network, WalkNetwork):
        return network, None
    if not is_store(network):
        return load_network(network), None
    store = NetworkStore.open(network)
    points = ph.clean.geometry
    sample = np.unique(np.linspace(0, len(points) - 1, min(len(points), DATUM_SAMPLE_PHARMACIES)).astype(np.int64))
    xy = shapely.get_coordinates(points.iloc[sample].to_crs(store.crs).to_numpy())
    return store.read_around(xy, DATUM_SAMPLE_RADIUS_M), sample


def _apply_datum(ph: IngestResult, crs, trust_crs: bool, network: WalkNetwork | None,
                 named_areas: list[tuple[str, gpd.GeoDataFrame]], *, fit_points: np.ndarray | None = None
                 ) -> IngestResult:
    """The pharmacies re-read in the datum the data decides (street fit, and the address check against
    the given ``named_areas``: (level, layer) pairs of real boundaries, never a stand-in)."""
    earlier = ph.datum_decision
    if earlier is not None:
        declared = earlier.declared
        trust_crs = trust_crs or earlier.decided_by == "confirmed"
    else:
        declared = ph.datum  # read some other way: its datum counts as declared
    if isinstance(crs, coords.Datum) or str(crs).strip().lower() != "auto":
        declared = coords.parse_datum(crs) if earlier is None or earlier.declared is None else declared
    clean = ph.clean
    raw_lon, raw_lat = coords.from_wgs84(clean.geometry.x.to_numpy(), clean.geometry.y.to_numpy(), ph.datum)
    decision = decide_datum(raw_lon, raw_lat, declared=declared, network=network,
                            addresses=clean["address"].tolist(), areas=named_areas,
                            rows=list(clean.index), ids=clean["pharmacy_id"].tolist(), names=clean["name"].tolist(),
                            trust_crs=trust_crs, fit_points=fit_points)
    if decision.decided_by == "undecided" and (decision.median_snap_m or decision.address_match_share):
        warnings.warn(f"{decision.message('zh')} / {decision.message('en')}", IngestWarning, stacklevel=4)
    if decision.mismatches:
        listed = "; ".join(f"{m.row}: {m.name} ({m.named} → {m.located})" for m in decision.mismatches[:10])
        more = f" …(+{len(decision.mismatches) - 10})" if len(decision.mismatches) > 10 else ""
        warnings.warn(f"{len(decision.mismatches)} 家药店地址中的区划与坐标所在区划不符 / {len(decision.mismatches)} "
                      f"pharmacies' addresses name another area than their point (row: name (named → located)): "
                      f"{listed}{more}", IngestWarning, stacklevel=4)
    if decision.used is not ph.datum:
        lon, lat = coords.to_wgs84(raw_lon, raw_lat, decision.used)
        clean = clean.set_geometry(gpd.points_from_xy(lon, lat, crs=WGS84), crs=WGS84)
    return dataclasses.replace(ph, clean=clean, datum=decision.used, datum_decision=decision)


def _completeness(ph, sd, ct, pop, fund, walk, network, rejected, *, fund_given: bool, fund_absent: list[str],
                  dissolved: bool, has_population: bool) -> DataCompleteness:
    counts = rejected["layer"].value_counts()

    def status(layer, result, missing=(), notes=()):
        if result is None:
            return LayerStatus(layer=layer, missing=tuple(missing), notes=tuple(notes))
        n_rejected = int(counts.get(layer, 0))
        return LayerStatus(layer=layer, source=result.source, rows_read=result.n_in, clean=result.n_in - n_rejected,
                           rejected=n_rejected, missing=tuple(missing), notes=(*result.note_lines(), *notes))

    services_known = "services" in ph.mapping
    missing_services = frozenset(s for s in Service if not services_known and s.value not in ph.mapping)
    ph_missing = [f"service:{s.value}" for s in Service if s in missing_services]
    ph_missing += [] if "cross_region_settlement" in ph.mapping else ["column:cross_region_settlement"]
    ph_missing += missing_status_inputs(ph.mapping)  # the settlement status: "not judged" without them
    ph_notes = []
    if missing_services:
        ph_notes.append(f"没有这些业务列，相应值未知（暂按“否”读入）：{service_labels(sorted(missing_services), 'zh')} / "
                        f"no column for {service_labels(sorted(missing_services), 'en')}: unknown (read as 'no' for now)")
    if ph.datum_decision is not None:
        ph_notes.append(f"{ph.datum_decision.message('zh')} / {ph.datum_decision.message('en')}")
    ct_notes = ["由街道/乡镇按县代码合并得到 / dissolved from the sub-districts by county code"] if dissolved else []
    fund_missing = () if fund_given else ("fund_status",)
    fund_notes = [f"表中没有这些县，B3/B4 对其无法判定：{fund_absent} / counties absent from the table, B3/B4 not judged "
                  f"for them: {fund_absent}"] if fund_absent else []
    demand_notes = _demand_notes(sd, pop)
    if pop is not None:
        pop_layer = status("population", pop, notes=demand_notes)
    elif has_population:
        pop_layer = LayerStatus(layer="population", notes=(
            "取自街道/乡镇边界的人口列 / from the sub-districts' population column", *demand_notes))
    else:
        pop_layer = LayerStatus(layer="population", missing=("population",), notes=(
            "没有人口数据：每万人指标和分类无法判定，覆盖按步行路网长度计算 / no population: the per-10,000 measures "
            "and classes are not judged; coverage is measured by street length",))
    sd_layer = status("subdistricts", sd) if sd is not None else LayerStatus(
        layer="subdistricts", missing=("subdistricts",), notes=(_stand_in_note(ct).both(),))
    network_notes = ()
    if network is not None and not isinstance(network, WalkNetwork) and is_store(network):
        store = NetworkStore.open(network)
        network_notes = (f"路网分块文件夹：{store.n_nodes:,} 个节点，{store.n_edges:,} 条边（按分块读取） / "
                         f"network store: {store.n_nodes:,} nodes, {store.n_edges:,} edges (read tile by tile)",)
    elif walk is not None:
        network_notes = (f"{walk.n_nodes:,} 个节点，{walk.n_edges:,} 条边，{walk.n_components} 个连通片 / "
                         f"{walk.n_nodes:,} nodes, {walk.n_edges:,} edges, {walk.n_components} connected piece(s)",)
    source = "" if network is None else Path(network).name if not isinstance(network, WalkNetwork) else "(loaded)"
    layers = (
        status("pharmacies", ph, ph_missing, ph_notes),
        sd_layer,
        status("counties", ct, notes=ct_notes),
        pop_layer,
        status("fund_status", fund, fund_missing, fund_notes),
        LayerStatus(layer="network", source=source, notes=network_notes,
                    missing=()),
    )
    return DataCompleteness(layers=layers, missing_services=missing_services, has_boundaries=sd is not None,
                            has_population=has_population, has_fund_status=fund_given, datum=ph.datum_decision)


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


def _county_layer(ct: IngestResult | None, sd: IngestResult, *, stand_in: bool) -> gpd.GeoDataFrame:
    """The counties given, else dissolved from the sub-districts by county code (warned), else (``sd`` is
    the one stand-in area) that area as its own county."""
    if ct is not None:
        return ct.clean.copy()
    if stand_in:
        return gpd.GeoDataFrame({"code": sd.clean["county_code"].to_numpy(), "name": sd.clean["name"].to_numpy()},
                                geometry=sd.clean.geometry.to_numpy(), crs=WGS84)
    subs = sd.clean
    county = subs["county_code"].where(subs["county_code"] != "", subs["code"].map(lambda c: c[:6]))
    dissolved = gpd.GeoDataFrame({"code": county}, geometry=subs.geometry, crs=WGS84).dissolve(by="code").reset_index()
    warnings.warn(f"没有县（市、区）边界：由街道/乡镇按县代码合并得到 {len(dissolved)} 个 / no county boundaries: "
                  f"{len(dissolved)} counties dissolved from the sub-districts by county code",
                  IngestWarning, stacklevel=3)
    dissolved["name"] = dissolved["code"]
    return dissolved


def _attach_fund(counties: gpd.GeoDataFrame, fund: IngestResult | None) -> tuple[gpd.GeoDataFrame, pd.DataFrame, list[str]]:
    counties = counties.copy()
    given = all(c in counties.columns for c in FUND_COLUMNS)
    for target in FUND_COLUMNS:
        if target not in counties.columns:
            counties[target] = False
    if fund is None:
        if not given:
            warnings.warn("没有基金运行情况表：B3、B4（基金亏损、预警函）无法判定 / no fund-status table: B3 and B4 "
                          "(fund deficit, warning letter) are not judged", IngestWarning, stacklevel=3)
        return counties, pd.DataFrame(columns=_REGION_REJECTED_COLUMNS), []
    claims, _contested, rejected = _match(fund, counties, digits=6, target=("县（市、区）", "county"))
    for target in FUND_COLUMNS:  # a county the table does not list stays unknown (NA): B3/B4 not judged there
        known = pd.array([pd.NA] * len(counties), dtype="boolean")
        for position, at in enumerate(counties.index):
            if at in claims:
                known[position] = bool(fund.clean.at[claims[at], target])
        counties[target] = known
    missing = [str(n) for i, n in zip(counties.index, counties["name"]) if i not in claims]
    if missing:
        warnings.warn(f"基金运行情况表中没有这些县，B3、B4 对其无法判定：{missing} / counties absent from the fund-status "
                      f"table, B3 and B4 not judged for them: {missing}", IngestWarning, stacklevel=3)
    return counties, rejected, missing


def _match(table: IngestResult, targets: pd.DataFrame, *, digits: int, target: tuple[str, str]
           ) -> tuple[dict[Any, int], set[Any], pd.DataFrame]:
    """Match the rows of a code/name table to ``targets`` by code (cut to ``digits``), else unique name.

    Returns {target index: table row} for targets claimed by exactly one row, and the rejections:
    rows matching nothing (``unmatched``) and rows claiming a target another row claims too
    (``duplicate_id``, all of them; those targets are returned as ``contested``).
    """
    by_code = {code_key(c, digits): i for i, c in zip(targets.index, targets["code"])}
    by_name = _unique_names(targets["name"])
    claims: dict[Any, list[int]] = {}
    unmatched: list[int] = []
    for row, record in table.clean.iterrows():
        at = by_code.get(code_key(record["code"], digits)) if record["code"] else None
        if at is None and record["name"]:
            at = by_name.get(name_key(record["name"]))
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
    keys = names.map(lambda n: name_key(str(n)))
    counts = keys.value_counts()
    return {k: i for i, k in zip(names.index, keys) if counts[k] == 1}


def _assign_counties(sd: IngestResult, counties: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    subs = sd.clean.copy()
    by_key = {code_key(c, 6): c for c in counties["code"]}
    by_name = _unique_names(counties["name"])
    tree = shapely.STRtree(counties.geometry.to_numpy())
    assigned: list[str | None] = []
    why: dict[Any, str] = {}
    for row, record in subs.iterrows():
        given = record["county_code"]
        if given:  # a county code, or failing that a county name
            at = by_name.get(name_key(given))
            assigned.append(by_key.get(code_key(given, 6)) or (counties.at[at, "code"] if at is not None else None))
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
                       ) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame, bool]:
    """Population from the table (matched against every sub-district read: rows matching one dropped
    since for another reason are not rejected twice), else the boundary file's column.

    With neither (no table, and not one population value in the boundaries) the population is unknown:
    every sub-district keeps ``population`` 0 and the last value returned is True (the rules needing
    residents are then not judged, see :data:`planning.completeness.RULES_DISABLED_BY`). Otherwise a
    sub-district left without a population is rejected (``no_population``)."""
    subs = subs.copy()
    pop_rejected = pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    if pop is None and not subs["population"].notna().any():
        return subs.assign(population=0.0), pop_rejected, pop_rejected.copy(), True
    if pop is not None:
        claims, contested, pop_rejected = _match(pop, sd.clean, digits=9, target=("街道/乡镇", "sub-district"))
        fields = ["population", *(f for f in DEMAND_FIELDS if f in pop.clean.columns)]
        for field in fields[1:]:
            if field not in subs.columns:
                subs[field] = np.nan
        for at, row in claims.items():
            if at in subs.index:
                for field in fields:
                    subs.at[at, field] = float(pop.clean.at[row, field])
        subs.loc[subs.index.isin(contested), fields] = np.nan  # two rows for one: neither is trusted
    missing = subs.index[subs["population"].isna().to_numpy()]
    no_population = _rejections("subdistricts", sd.source, missing, Reason.NO_POPULATION,
                                [_label(subs.loc[r]) for r in missing])
    return subs.drop(index=missing), pop_rejected, no_population, False


def population_from_points(region: Region, points: IngestResult) -> Region:
    """``region`` with each sub-district's population summed from weighted points (a population grid or
    residential buildings, ``persons`` column) when the files gave no population; unchanged otherwise.

    The completeness then says the population was derived (from which file) instead of missing, so the
    per-10,000 measures and classes are judged again. Points outside every sub-district count for none."""
    if region.population_known or region.completeness is None:
        return region
    from planning.geometry import first_containing

    subs = region.subdistricts
    xy = shapely.get_coordinates(shapely.centroid(points.clean.geometry.to_numpy())).reshape(-1, 2)
    inside = first_containing(subs.geometry.to_numpy(), xy)
    persons = points.clean["persons"].to_numpy(dtype=float)
    sums = np.bincount(inside[inside >= 0], weights=persons[inside >= 0], minlength=len(subs))
    layers = tuple(dataclasses.replace(layer, missing=(), notes=(
        f"由 {points.source} 汇总（{points.n_clean:,} 个点，合计 {sums.sum():,.0f} 人） / summed from {points.source} "
        f"({points.n_clean:,} points, {sums.sum():,.0f} persons)",)) if layer.layer == "population" else layer
        for layer in region.completeness.layers)
    completeness = dataclasses.replace(region.completeness, layers=layers, has_population=True)
    return dataclasses.replace(region, subdistricts=subs.assign(population=np.round(sums).astype(np.int64)),
                               completeness=completeness)


# ======================================================================================= without boundaries
#: ``build_region(subdistricts=OSM_BOUNDARIES)``: the township relations (admin_level 8) of the network file.
OSM_BOUNDARIES = "osm"
#: Code of the one stand-in area used when there are neither sub-district nor county boundaries.
STAND_IN_CODE = "000000000"
#: Margin of the stand-in area around the network and the pharmacies, metres.
STAND_IN_MARGIN_M = 1000.0


def _demand_notes(sd: IngestResult | None, pop: IngestResult | None) -> list[str]:
    """One note per demand column (:data:`DEMAND_FIELDS`) neither the boundaries nor the population table
    holds: the services whose policy reads it fall back to residents (planning.demand)."""
    from planning.demand import DEMAND_COLUMNS

    held = set()
    for result in (sd, pop):
        if result is not None:
            held |= {f for f in DEMAND_FIELDS if f in result.clean.columns and result.clean[f].notna().any()}
    return [f"没有“{DEMAND_COLUMNS[f].zh}”列：以它为需求的业务按常住参保人口计算 / no '{DEMAND_COLUMNS[f].en}' column: "
            f"the services whose demand it is are weighed by residents" for f in DEMAND_FIELDS if f not in held]


def _stand_in_note(counties: IngestResult | None) -> Text:
    if counties is not None:
        return Text("没有街道/乡镇边界：每个县（市、区）作为一个替代区域；R1、R2、分类、B2 和 R3 优先区无法判定",
                    "no sub-district boundaries: each county stands in as one area; R1, R2, the classes, B2 and "
                    "the R3 priority areas are not judged")
    return Text("没有街道/乡镇边界：以覆盖路网和药店的一个替代区域计算（服务圈、B1 和选址核查照常）；R1、R2、分类、B2 和 "
                "R3 优先区无法判定",
                "no sub-district boundaries: one stand-in area covering the network and the pharmacies (circles, B1 "
                "and the designation check still run); R1, R2, the classes, B2 and the R3 priority areas are not "
                "judged")


def _stand_in_subdistricts(ph: IngestResult, ct: IngestResult | None, walk: WalkNetwork | None) -> IngestResult:
    """Sub-districts standing in for missing boundaries: each county's polygon when counties are given,
    else one area, the convex hull of the network's nodes and the pharmacies widened by
    :data:`STAND_IN_MARGIN_M` metres. ``kind`` is town (R1, which needs street offices, is not judged)."""
    if ct is not None:
        counties = ct.clean
        clean = gpd.GeoDataFrame({"code": [f"{c}000" for c in counties["code"]], "name": counties["name"].to_numpy(),
                                  "kind": "town", "county_code": counties["code"].to_numpy(), "population": np.nan},
                                 geometry=counties.geometry.to_numpy(), crs=WGS84)
    else:
        points = ph.clean.geometry
        metric = walk.crs if walk is not None else points.estimate_utm_crs()
        xy = [shapely.get_coordinates(points.to_crs(metric).to_numpy())]
        if walk is not None:
            xy.append(walk.node_xy)
        hull = shapely.multipoints(np.concatenate(xy)).convex_hull.buffer(STAND_IN_MARGIN_M)
        area = gpd.GeoSeries([hull], crs=metric).to_crs(WGS84)
        name = Text("全区域（无街道/乡镇边界）", "whole area (no sub-district boundaries)")
        clean = gpd.GeoDataFrame({"code": [STAND_IN_CODE], "name": [name.zh], "kind": ["town"],
                                  "county_code": [STAND_IN_CODE[:6]], "population": [np.nan]},
                                 geometry=area.to_numpy(), crs=WGS84)
    clean.index = pd.RangeIndex(1, len(clean) + 1)
    empty = pd.DataFrame(columns=["source", "row", "reason_code", "reason"])
    return IngestResult(layer="subdistricts", source="", clean=clean, rejected=empty,
                        notes=pd.DataFrame(columns=["source", "row", "note_code", "note"]), n_in=len(clean))


def _osm_subdistricts(network) -> IngestResult:
    """The network file's complete township relations (admin_level 8), read as a boundary file (kind from
    the name: 街道 street, 镇/乡 town); every cut relation warned about; a :class:`MissingColumnError`
    naming them when none closes."""
    from planning.ingest.osm_boundaries import read_osm_boundaries

    if network is None or isinstance(network, WalkNetwork) or Path(network).suffix.lower() == ".graphml":
        raise MissingColumnError("subdistricts='osm' 需要 OSM 路网文件（.osm/.osm.pbf）",
                                 "subdistricts='osm' needs the street network as an OSM file (.osm/.osm.pbf)")
    found = read_osm_boundaries(network)
    for note in found.notes:
        warnings.warn(note, IngestWarning, stacklevel=4)
    if found.subdistricts.empty:
        cut = "; ".join(Text.parse(n).en for n in found.notes[:5])
        raise MissingColumnError(
            f"路网文件中没有能拼成闭合区域的街道/乡镇（admin_level 8）边界（文件中 {len(found.notes)} 个行政边界关系不完整）",
            f"the network file holds no closed township (admin_level 8) boundary ({len(found.notes)} admin "
            f"relation(s) in it are incomplete{': ' + cut if cut else ''})")
    geojson = found.subdistricts[["code", "name", "geometry"]].to_json().encode()
    return read_boundaries(geojson, level="subdistrict", source_name=f"{Path(network).name} (OSM admin_level 8)")


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
