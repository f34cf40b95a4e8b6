"""What-if scenarios: edits to a baseline assessment's inputs, re-assessed and compared with the baseline.

A :class:`Scenario` is a baseline :class:`~planning.assess.Assessment` plus a tuple of edit records
(:class:`AddSite`, :class:`RemoveSite`, :class:`ChangeServices`, :class:`ScalePopulation`, :class:`ScaleDemand`,
:class:`SetPopulation`, :class:`ChangePolicy`). Every method returns a new scenario, so edits chain::

    what_if = (Scenario(baseline)
               .add_site("NEW-1", 111.59, 27.30, ["outpatient_pooling", "chronic_disease"])
               .remove_site("P99010200098")
               .scale_population(1.2, ["990103005"]))
    result = what_if.assess()
    change = what_if.diff()          # ScenarioDiff: tables and a GeoJSON layer

Nothing of the baseline is ever modified: :meth:`Scenario.region` builds copies of its layers.

Re-assessment reuses what did not change: the walking network, the resident points (their weights are
rescaled per sub-district when population changes, their positions never move), and for every service
whose sites are unchanged, the baseline's walk search and walk-time surface, cut back when the walk time
got shorter (``assess(..., reuse=baseline)``). Only the services whose sites changed, or all of them
when the walk reaches farther or the cell changes, are searched again.

:func:`diff` compares two assessments: per sub-district and service the coverage and class, the
requirement verdicts R1/R2/R3 that flipped, the sites added, removed or changed, and per service and
zone rule the area (km²) of blocked / priority / review zones added or lifted (shapely differences of
the zone polygons in the network's metric CRS). Layers are GeoDataFrames in EPSG:4326.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planning import rules
from planning.assess import Assessment, assess
from planning.coverage import Residents
from planning.errors import ParameterError
from planning.geometry import polygonal_parts
from planning.memo import Memo
from planning.text import Text, join
from planning.model import SERVICE_COLUMNS, WGS84, Region, Service, service_labels, validate_region
from planning.policy import Policy, reject_unknown_keys

# ====================================================================== edit records
def _services(services) -> tuple[str, ...]:
    if isinstance(services, (str, Service)):
        services = [services]
    out = []
    for s in services:
        try:
            out.append(Service(s).value)
        except ValueError:
            raise ParameterError(f"未知的业务类别：{s}",
                                 f"unknown service '{s}' (use {', '.join(SERVICE_COLUMNS)})") from None
    return tuple(sorted(set(out), key=SERVICE_COLUMNS.index))


@dataclass(frozen=True)
class AddSite:
    """Designate a new site at WGS84 ``lon``/``lat`` (degrees) holding ``services``.

    ``cross_region_settlement`` defaults to True (R4: new designations settle across regions) and
    ``info_system_ready`` to True (B5: a site without the upgrade cannot be designated).
    """

    pharmacy_id: str
    lon: float
    lat: float
    services: tuple[str, ...]
    name: str = ""
    address: str = ""
    chain: bool = False
    info_system_ready: bool = True
    cross_region_settlement: bool = True

    def __post_init__(self):
        object.__setattr__(self, "services", _services(self.services))
        if not (math.isfinite(self.lon) and math.isfinite(self.lat) and -180 <= self.lon <= 180
                and -90 <= self.lat <= 90):
            raise ParameterError(f"新增站点 {self.pharmacy_id} 的经纬度无效",
                                 f"site {self.pharmacy_id}: invalid lon/lat")

    def describe(self, lang: str = "zh") -> str:
        services = service_labels(self.services, lang)
        return Text(f"在 {self.lon:.5f}, {self.lat:.5f} 新增 {self.pharmacy_id}（{services}）",
                    f"add {self.pharmacy_id} ({services}) at {self.lon:.5f}, {self.lat:.5f}").get(lang)


@dataclass(frozen=True)
class RemoveSite:
    """Withdraw a designated site (all its services)."""

    pharmacy_id: str

    def describe(self, lang: str = "zh") -> str:
        return Text(f"撤销 {self.pharmacy_id}", f"remove {self.pharmacy_id}").get(lang)


@dataclass(frozen=True)
class ChangeServices:
    """Set the services a site holds (an empty tuple keeps the site with no service)."""

    pharmacy_id: str
    services: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "services", _services(self.services))

    def describe(self, lang: str = "zh") -> str:
        services = service_labels(self.services, lang)
        return Text(f"{self.pharmacy_id} 开通：{services or '无业务'}",
                    f"{self.pharmacy_id} holds {services or 'no service'}").get(lang)


def _check_scaling(edit, bad_factor: Text) -> None:
    """The factor of a scaling edit is a finite number >= 0 (else ``bad_factor``); its codes become a tuple
    of strings (one code may be given alone)."""
    factor = edit.factor
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor >= 0):
        raise ParameterError(bad_factor.zh, bad_factor.en)
    if edit.subdistrict_codes is not None:
        codes = (edit.subdistrict_codes,) if isinstance(edit.subdistrict_codes, str) else edit.subdistrict_codes
        object.__setattr__(edit, "subdistrict_codes", tuple(str(c) for c in codes))


def _where_words(codes: tuple[str, ...] | None, lang: str) -> str:
    """The sub-districts a scaling edit names, in words ("all sub-districts" for None)."""
    return Text("全部街道/乡镇", "all sub-districts").get(lang) if codes is None else join((Text(c, c) for c in codes), lang)


def _rows_of(codes: tuple[str, ...] | None, code_index: dict[str, int]) -> np.ndarray:
    """Row positions of the named sub-districts (every row for None)."""
    if codes is None:
        return np.arange(len(code_index))
    return np.array([code_index[c] for c in codes], dtype=np.int64)


@dataclass(frozen=True)
class ScalePopulation:
    """Multiply the population of some sub-districts (all when ``subdistrict_codes`` is None) by ``factor``;
    persons are rounded to whole numbers. Their demand columns (employees, chronic patients) follow by the
    same factor; :class:`ScaleDemand` changes one service's demand alone."""

    factor: float
    subdistrict_codes: tuple[str, ...] | None = None

    def __post_init__(self):
        _check_scaling(self, Text("人口倍数必须是非负数", "the population factor must be a number >= 0"))

    def describe(self, lang: str = "zh") -> str:
        where = _where_words(self.subdistrict_codes, lang)
        return Text(f"{where}人口 × {self.factor:g}", f"population x {self.factor:g} in {where}").get(lang)


@dataclass(frozen=True)
class SetPopulation:
    """Set one sub-district's resident insured population (persons); its demand columns follow in
    proportion (unknown when it had nobody before: the demand then falls back to the new residents)."""

    code: str
    persons: int

    def __post_init__(self):
        if isinstance(self.persons, bool) or not isinstance(self.persons, (int, np.integer, float)) \
                or not self.persons >= 0 or not float(self.persons).is_integer():
            raise ParameterError("人口必须是非负整数", "persons must be a whole number >= 0")
        object.__setattr__(self, "persons", int(self.persons))

    def describe(self, lang: str = "zh") -> str:
        return Text(f"{self.code} 人口设为 {self.persons:,}", f"population of {self.code} = {self.persons:,}").get(lang)


@dataclass(frozen=True)
class ScaleDemand:
    """Multiply a service's demand in some sub-districts (all when ``subdistrict_codes`` is None) by
    ``factor``: growth and ageing (MDJ-2025 art. 5), e.g. ``ScaleDemand("chronic_disease", 1.15, old_city)``.
    The column the policy reads the service's demand from is scaled (:mod:`planning.demand`), so services
    sharing it change together (chronic disease and dual channel by default); where it has no value, the
    residents it falls back to are scaled into it. Residents (and the per-resident densities) stay."""

    service: Service
    factor: float
    subdistrict_codes: tuple[str, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "service", Service(self.service))
        _check_scaling(self, Text("需求倍数必须是非负数", "the demand factor must be a number >= 0"))

    def describe(self, lang: str = "zh") -> str:
        where = _where_words(self.subdistrict_codes, lang)
        return Text(f"{where}{self.service.label('zh')}需求 × {self.factor:g}",
                    f"{self.service.label('en')} demand x {self.factor:g} in {where}").get(lang)


@dataclass(frozen=True, init=False)
class ChangePolicy:
    """Change policy parameters, as :meth:`planning.policy.Policy.with_changes` takes them
    (``ChangePolicy(walk_minutes=10)``, ``ChangePolicy(rules=frozenset({...}))``)."""

    changes: tuple[tuple[str, Any], ...]

    def __init__(self, **changes: Any):
        reject_unknown_keys(changes, {f.name for f in fields(Policy)})
        object.__setattr__(self, "changes", tuple(sorted(changes.items())))

    def as_dict(self) -> dict[str, Any]:
        return dict(self.changes)

    def describe(self, lang: str = "zh") -> str:
        return Text("政策参数：", "policy: ").get(lang) + ", ".join(f"{k}={v!r}" for k, v in self.changes)


Edit = AddSite | RemoveSite | ChangeServices | ScalePopulation | SetPopulation | ScaleDemand | ChangePolicy
_POPULATION_EDITS = (ScalePopulation, SetPopulation)


# ====================================================================== the scenario
@dataclass(frozen=True, eq=False)
class Scenario:
    """A baseline assessment and the edits applied to its inputs (in order). Immutable: methods return new
    scenarios; :meth:`region`, :meth:`policy`, :meth:`residents` and :meth:`assess` are computed once."""

    baseline: Assessment
    edits: tuple[Edit, ...] = ()
    name: str = ""
    memo: Memo = field(default_factory=Memo, repr=False)  # the derived region, residents and assessment

    # ------------------------------------------------------------------ building
    def with_edits(self, *edits: Edit) -> Scenario:
        """A new scenario with ``edits`` appended (checked against the sites and sub-districts they name)."""
        scenario = Scenario(self.baseline, self.edits + tuple(edits), self.name)
        scenario._check()
        return scenario

    def add_site(self, pharmacy_id: str, lon: float, lat: float, services, *, name: str = "", address: str = "",
                 chain: bool = False, info_system_ready: bool = True, cross_region_settlement: bool = True) -> Scenario:
        """Designate a new site at WGS84 ``lon``/``lat`` (see :class:`AddSite`)."""
        return self.with_edits(AddSite(str(pharmacy_id), float(lon), float(lat), services, name=name,
                                       address=address, chain=chain, info_system_ready=info_system_ready,
                                       cross_region_settlement=cross_region_settlement))

    def remove_site(self, pharmacy_id: str) -> Scenario:
        """Withdraw a site."""
        return self.with_edits(RemoveSite(str(pharmacy_id)))

    def change_services(self, pharmacy_id: str, services) -> Scenario:
        """Set the services a site holds."""
        return self.with_edits(ChangeServices(str(pharmacy_id), services))

    def scale_population(self, factor: float, subdistrict_codes=None) -> Scenario:
        """Multiply population (of the given sub-district codes, or everywhere) by ``factor``."""
        return self.with_edits(ScalePopulation(factor, subdistrict_codes))

    def set_population(self, code: str, persons: int) -> Scenario:
        """Set one sub-district's population (persons)."""
        return self.with_edits(SetPopulation(str(code), persons))

    def scale_demand(self, service, factor: float, subdistrict_codes=None) -> Scenario:
        """Multiply a service's demand (of the given sub-district codes, or everywhere) by ``factor``."""
        return self.with_edits(ScaleDemand(service, factor, subdistrict_codes))

    def change_policy(self, **changes: Any) -> Scenario:
        """Change policy parameters (:meth:`planning.policy.Policy.with_changes`)."""
        return self.with_edits(ChangePolicy(**changes))

    def _check(self) -> None:
        ids = set(self.baseline.region.pharmacies["pharmacy_id"])
        codes = set(self.baseline.region.subdistricts["code"])
        for edit in self.edits:
            if isinstance(edit, AddSite):
                if edit.pharmacy_id in ids:
                    raise ParameterError(f"药店编号 {edit.pharmacy_id} 已存在",
                                         f"pharmacy id {edit.pharmacy_id} already exists")
                ids.add(edit.pharmacy_id)
            elif isinstance(edit, (RemoveSite, ChangeServices)):
                if edit.pharmacy_id not in ids:
                    raise ParameterError(f"找不到药店 {edit.pharmacy_id}",
                                         f"no pharmacy {edit.pharmacy_id} in the scenario")
                if isinstance(edit, RemoveSite):
                    ids.discard(edit.pharmacy_id)
            elif isinstance(edit, (ScalePopulation, SetPopulation, ScaleDemand)):
                named = [edit.code] if isinstance(edit, SetPopulation) else list(edit.subdistrict_codes or [])
                missing = sorted(set(named) - codes)
                if missing:
                    raise ParameterError(f"找不到街道/乡镇 {missing[0]}", f"no sub-district {missing[0]}")
            elif isinstance(edit, ChangePolicy):
                pass
            else:
                raise ParameterError(f"不支持的编辑：{edit!r}", f"unsupported edit {edit!r}")
        self.policy()  # validates every policy change

    def describe(self, lang: str = "zh") -> pd.DataFrame:
        """One row per edit: its position, kind (the edit's class name) and a short description in ``lang``."""
        return pd.DataFrame({"edit": range(1, len(self.edits) + 1), "kind": [type(e).__name__ for e in self.edits],
                             "description": [e.describe(lang) for e in self.edits]})

    # ------------------------------------------------------------------ derived inputs
    def policy(self) -> Policy:
        """The baseline policy with every :class:`ChangePolicy` applied in order."""
        policy = self.baseline.policy
        for edit in self.edits:
            if isinstance(edit, ChangePolicy):
                policy = policy.with_changes(**edit.as_dict())
        return policy

    def region(self) -> Region:
        """The edited region: copies of the baseline's layers (EPSG:4326), validated."""
        return self.memo.get("region", self._build_region)

    def _build_region(self) -> Region:
        base = self.baseline.region
        pharmacies = base.pharmacies.copy()
        subdistricts = base.subdistricts.copy()
        population = subdistricts["population"].to_numpy(dtype=float).copy()
        code_index = {c: i for i, c in enumerate(subdistricts["code"])}
        added: list[dict] = []
        for edit in self.edits:
            if isinstance(edit, (RemoveSite, ChangeServices)) and added:  # new rows first, in edit order
                pharmacies = _append_sites(pharmacies, added)
                added = []
            if isinstance(edit, AddSite):
                added.append(_site_row(edit, pharmacies))
            elif isinstance(edit, RemoveSite):
                pharmacies = pharmacies[pharmacies["pharmacy_id"] != edit.pharmacy_id]
            elif isinstance(edit, ChangeServices):
                row = pharmacies["pharmacy_id"] == edit.pharmacy_id
                for column in SERVICE_COLUMNS:
                    pharmacies.loc[row, column] = column in edit.services
            elif isinstance(edit, ScalePopulation):
                rows = _rows_of(edit.subdistrict_codes, code_index)
                factor = np.full(len(rows), float(edit.factor))
                population[rows] = np.rint(population[rows] * edit.factor)
                subdistricts = _demand_follows(subdistricts, rows, factor)
            elif isinstance(edit, SetPopulation):
                row = code_index[edit.code]
                before = population[row]
                population[row] = edit.persons
                factor = np.array([edit.persons / before if before > 0 else np.nan])
                subdistricts = _demand_follows(subdistricts, np.array([row]), factor)
            elif isinstance(edit, ScaleDemand):
                subdistricts = _scaled_demand(subdistricts, population, self.policy().demand[edit.service], edit,
                                              code_index)
        if added:
            pharmacies = _append_sites(pharmacies, added)
        pharmacies = pharmacies.reset_index(drop=True)
        for column in SERVICE_COLUMNS:
            pharmacies[column] = pharmacies[column].astype(bool)
        if self.population_changed():
            subdistricts["population"] = population.astype(np.int64)
        name = base.name + (f" · {self.name}" if self.name else " · scenario")
        return validate_region(replace(base, name=name, pharmacies=pharmacies, subdistricts=subdistricts))

    def demand_changed(self) -> bool:
        """Whether any edit touches a service's demand."""
        return any(isinstance(e, ScaleDemand) for e in self.edits)

    def population_changed(self) -> bool:
        """Whether any edit touches population (a :class:`ScaleDemand` of a service whose demand is the
        residents does)."""
        return any(isinstance(e, _POPULATION_EDITS) or (isinstance(e, ScaleDemand)
                                                         and self.policy().demand[e.service] == "population")
                   for e in self.edits)

    def residents(self) -> Residents:
        """The baseline's resident points, their persons rescaled per sub-district to the edited population
        (positions unchanged). A sub-district that had nobody gets its persons spread by street length
        (evenly over its points when they stand for no street length)."""
        return self.memo.get("residents", self._build_residents)

    def _build_residents(self) -> Residents:
        residents = self.baseline.residents
        if not self.population_changed():
            return residents
        old = self.baseline.region.subdistricts["population"].to_numpy(dtype=float)
        new = self.region().subdistricts["population"].to_numpy(dtype=float)
        sd = residents.subdistrict
        inside = sd >= 0
        ratio = np.divide(new, old, out=np.zeros(len(old)), where=old > 0)
        persons = residents.persons.copy()
        persons[inside] *= ratio[sd[inside]]
        for i in np.flatnonzero((old <= 0) & (new > 0)):  # nobody before: spread the new population
            members = np.flatnonzero(sd == i)
            if len(members) == 0:
                continue
            share = residents.street_m[members]
            share = share / share.sum() if share.sum() > 0 else np.full(len(members), 1 / len(members))
            persons[members] = new[i] * share
        return replace(residents, persons=persons)

    def changed_services(self) -> tuple[Service, ...]:
        """The services whose walk search ran again (:attr:`Assessment.searched` of :meth:`assess`): those
        whose sites changed, or every one when the walk reaches farther than the baseline's search."""
        return self.assess().searched

    # ------------------------------------------------------------------ results
    def assess(self) -> Assessment:
        """Assess the edited region on the baseline's network, recomputing only the changed services."""
        return self.memo.get("assessment", self._assess)

    def _assess(self) -> Assessment:
        result = assess(self.region(), self.baseline.network, self.policy(), residents=self.residents(),
                        reuse=self.baseline)
        return result.with_notes(f"scenario: {len(self.edits)} edit(s); services searched again: "
                                 f"{', '.join(s.value for s in result.searched) or 'none'}")

    def diff(self, *, services=None) -> ScenarioDiff:
        """:func:`diff` of the baseline and this scenario's assessment."""
        return diff(self.baseline, self.assess(), services=services)



def _site_row(edit: AddSite, pharmacies: gpd.GeoDataFrame) -> dict:
    row = {column: np.nan for column in pharmacies.columns if column != "geometry"}
    if "risk_flag" in pharmacies.columns:
        row["risk_flag"] = False
    row.update({
        "pharmacy_id": edit.pharmacy_id, "name": edit.name or edit.pharmacy_id, "address": edit.address or "—",
        **{column: column in edit.services for column in SERVICE_COLUMNS},
        "chain": bool(edit.chain), "info_system_ready": bool(edit.info_system_ready),
        "cross_region_settlement": bool(edit.cross_region_settlement),
        "geometry": shapely.Point(edit.lon, edit.lat),
    })
    return row


def _demand_follows(subdistricts: pd.DataFrame, rows: np.ndarray, factor: np.ndarray) -> pd.DataFrame:
    """A population edit scales the demand columns (employees, chronic patients) of the same rows by the
    same factor (NaN: unknown, e.g. a sub-district set from 0 residents, which then falls back to them)."""
    from planning.demand import DEMAND_COLUMNS

    changed = {}
    for column in DEMAND_COLUMNS:
        if column != "population" and column in subdistricts.columns:
            values = pd.to_numeric(subdistricts[column], errors="coerce").to_numpy(dtype=float).copy()
            values[rows] = np.rint(values[rows] * factor)
            changed[column] = values
    return subdistricts.assign(**changed) if changed else subdistricts


def _scaled_demand(subdistricts: pd.DataFrame, population: np.ndarray, column: str, edit: ScaleDemand,
                   code_index: dict[str, int]) -> pd.DataFrame:
    """``subdistricts`` with ``column`` scaled by ``edit`` in its sub-districts (the current ``population``
    where the column has no value: the residents the demand fell back to)."""
    rows = _rows_of(edit.subdistrict_codes, code_index)
    if column == "population":
        population[rows] = np.rint(population[rows] * edit.factor)  # in place: residents are this column
        return subdistricts
    values = (pd.to_numeric(subdistricts[column], errors="coerce").to_numpy(dtype=float).copy()
              if column in subdistricts.columns else np.full(len(subdistricts), np.nan))
    base = np.where(np.isfinite(values[rows]), values[rows], population[rows])
    values[rows] = np.rint(base * edit.factor)
    return subdistricts.assign(**{column: values})


def _append_sites(pharmacies: gpd.GeoDataFrame, rows: list[dict]) -> gpd.GeoDataFrame:
    new = gpd.GeoDataFrame(rows, geometry="geometry", crs=WGS84)
    for column in pharmacies.columns:  # keep the baseline's dtypes where the new values allow it
        if column != "geometry" and column in new and pharmacies[column].dtype == bool:
            new[column] = new[column].fillna(False).astype(bool)
    table = pd.concat([pharmacies, new[[c for c in pharmacies.columns if c in new.columns]]], ignore_index=True)
    return gpd.GeoDataFrame(table, geometry="geometry", crs=WGS84)


# ====================================================================== the difference of two assessments
@dataclass(frozen=True, eq=False)
class ScenarioDiff:
    """What changed between two assessments (``before``: the baseline; ``after``: a scenario).

    Attributes
    ----------
    summary : DataFrame
        Per service: pharmacies, population, covered persons and covered share before/after, their deltas,
        R1 failing street offices and R2 failing counties before/after, blocked area (km²) before/after.
    coverage : DataFrame
        Per (sub-district ``code``, ``service``): population, pharmacies, covered persons, covered share and
        class before/after, with deltas and ``class_changed``.
    class_changes : DataFrame
        The rows of ``coverage`` whose class changed.
    requirements : DataFrame
        The requirement verdicts that changed: ``rule`` (R1, R2, R3), ``level`` (subdistrict / county),
        ``code``, ``name``, ``service``, ``ok_before``, ``ok_after``, ``change`` (met / broken / applies /
        no longer applies).
    sites : DataFrame
        Sites added, removed or whose services changed, with lon/lat (EPSG:4326).
    zones : DataFrame
        Per ``service``, ``zone`` (blocked / priority / review) and ``rule_ids``: ``area_before_km2``,
        ``area_after_km2``, ``added_km2`` and ``lifted_km2`` (blocks added or lifted).
    layer : GeoDataFrame
        EPSG:4326 features with ``change`` = ``subdistrict`` (a sub-district x service whose class, covered
        share or requirement changed), ``added`` / ``lifted`` (zone areas), ``site_added`` /
        ``site_removed`` / ``site_changed``.
    """

    before: Assessment
    after: Assessment
    services: tuple[Service, ...]
    summary: pd.DataFrame
    coverage: pd.DataFrame
    class_changes: pd.DataFrame
    requirements: pd.DataFrame
    sites: pd.DataFrame
    zones: pd.DataFrame
    layer: gpd.GeoDataFrame = field(repr=False)

    def to_geojson(self) -> dict:
        """The change layer as a GeoJSON FeatureCollection (EPSG:4326), a dict ready for ``json.dump``."""
        collection = json.loads(self.layer.to_json(na="null", drop_id=True))
        collection["name"] = "scenario_diff"
        collection["metadata"] = {"before": self.before.region.name, "after": self.after.region.name,
                                  "crs": "EPSG:4326", "services": [s.value for s in self.services]}
        return collection

    def write_geojson(self, path: str | Path) -> Path:
        """Write :meth:`to_geojson` to ``path`` (UTF-8)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_geojson(), ensure_ascii=False), encoding="utf-8")
        return path

    def map(self, *, service: Service | str = Service.OUTPATIENT_POOLING, lang: str = "zh"):
        """A folium map of the changes for one service (:func:`planning.maps.scenario_diff_map`)."""
        from planning.maps import scenario_diff_map

        return scenario_diff_map(self, service=service, lang=lang)




def nearest_site(assessment: Assessment, lon: float, lat: float, *, within_m: float = 150.0) -> dict | None:
    """The designated pharmacy nearest to the WGS84 point ``lon``/``lat`` in a straight line, if it stands
    within ``within_m`` metres (measured in the network's metric CRS): its attributes plus ``distance_m``.
    The app uses it to withdraw a pharmacy by clicking next to it."""
    pharmacies = assessment.region.pharmacies
    if not len(pharmacies):
        return None
    here = gpd.GeoSeries([shapely.Point(lon, lat)], crs=WGS84).to_crs(assessment.network.crs).iloc[0]
    distance = pharmacies.geometry.to_crs(assessment.network.crs).distance(here).to_numpy()
    nearest = int(np.argmin(distance))
    if not distance[nearest] <= within_m:
        return None
    row = pharmacies.drop(columns="geometry").iloc[nearest].to_dict()
    return {**row, "lon": pharmacies.geometry.iloc[nearest].x, "lat": pharmacies.geometry.iloc[nearest].y,
            "distance_m": float(distance[nearest])}


def diff(before: Assessment, after: Assessment, *, services=None) -> ScenarioDiff:
    """Compare two assessments of the same region and network (a baseline and a scenario).

    ``services`` limits the zone comparison (the costly part: zone polygons are built for both sides) and the
    layer to some services; by default all. Zone areas are compared in the network's metric CRS; parts
    smaller than one raster cell (``policy.cell_m``²) are dropped as edge noise.
    """
    if services is None:
        services = tuple(Service)
    else:
        services = tuple(Service(s) for s in ([services] if isinstance(services, (str, Service)) else services))
    coverage = _coverage_diff(before, after)
    requirements = _requirement_diff(before, after)
    sites = _site_diff(before, after)
    zones, zone_features = _zone_diff(before, after, services)
    summary = _summary(before, after, coverage, zones)
    layer = _layer(before, after, coverage, requirements, sites, zone_features, services)
    return ScenarioDiff(before=before, after=after, services=services, summary=summary, coverage=coverage,
                        class_changes=coverage[coverage["class_changed"]].reset_index(drop=True),
                        requirements=requirements, sites=sites, zones=zones, layer=layer)


def _coverage_diff(before: Assessment, after: Assessment) -> pd.DataFrame:
    keys = ["code", "service"]
    columns = ["population", "pharmacies", "covered_share", "class"]

    def side(a: Assessment) -> pd.DataFrame:
        table = pd.DataFrame(a.subdistricts[["code", "name", "kind", "service"] + columns])
        covered = a.coverage.set_index(keys)["covered"]
        table["covered"] = covered.reindex(pd.MultiIndex.from_frame(table[keys])).to_numpy()
        return table

    b, a = side(before), side(after)
    merged = b.merge(a.drop(columns=["name", "kind"]), on=keys, how="outer", suffixes=("_before", "_after"))
    merged["covered_delta"] = merged["covered_after"] - merged["covered_before"]
    merged["covered_share_delta"] = merged["covered_share_after"] - merged["covered_share_before"]
    merged["class_changed"] = merged["class_before"].fillna("") != merged["class_after"].fillna("")
    order = ["code", "name", "kind", "service", "population_before", "population_after", "pharmacies_before",
             "pharmacies_after", "covered_before", "covered_after", "covered_delta", "covered_share_before",
             "covered_share_after", "covered_share_delta", "class_before", "class_after", "class_changed"]
    return merged[order]


def _requirement_diff(before: Assessment, after: Assessment) -> pd.DataFrame:
    rows = []
    for rule, level, table, column in (("R1", "subdistrict", "subdistricts", "r1_ok"),
                                       ("R3", "subdistrict", "subdistricts", "r3_ok"),
                                       ("R2", "county", "counties", "r2_ok")):
        b = pd.DataFrame(getattr(before, table)[["code", "name", "service", column]])
        a = pd.DataFrame(getattr(after, table)[["code", "service", column]])
        merged = b.merge(a, on=["code", "service"], how="outer", suffixes=("_before", "_after"))
        for row in merged.itertuples(index=False):
            ok_b, ok_a = rules.outcome(getattr(row, f"{column}_before")), rules.outcome(getattr(row, f"{column}_after"))
            if ok_b == ok_a:
                continue
            change = ("met" if ok_a else "broken") if ok_b is not None and ok_a is not None else (
                "applies" if ok_b is None else "no longer applies")
            rows.append({"rule": rule, "level": level, "code": row.code, "name": row.name, "service": row.service,
                         "ok_before": ok_b, "ok_after": ok_a, "change": change})
    return pd.DataFrame(rows, columns=["rule", "level", "code", "name", "service", "ok_before", "ok_after", "change"])


def _site_diff(before: Assessment, after: Assessment) -> pd.DataFrame:
    def services(table: pd.DataFrame) -> pd.Series:
        held = table[list(SERVICE_COLUMNS)].astype(bool)
        return held.apply(lambda r: ",".join(c for c in SERVICE_COLUMNS if r[c]), axis=1)

    b = before.region.pharmacies.set_index("pharmacy_id")
    a = after.region.pharmacies.set_index("pharmacy_id")
    sb, sa = services(b), services(a)
    rows = []
    for pid in a.index.difference(b.index, sort=False):
        rows.append(("site_added", pid, a.loc[pid, "name"], "", sa[pid], a.loc[pid, "geometry"]))
    for pid in b.index.difference(a.index, sort=False):
        rows.append(("site_removed", pid, b.loc[pid, "name"], sb[pid], "", b.loc[pid, "geometry"]))
    for pid in b.index.intersection(a.index, sort=False):
        if sb[pid] != sa[pid]:
            rows.append(("site_changed", pid, a.loc[pid, "name"], sb[pid], sa[pid], a.loc[pid, "geometry"]))
    table = pd.DataFrame(rows, columns=["change", "pharmacy_id", "name", "services_before", "services_after",
                                        "geometry"])
    table["lon"] = [g.x for g in table["geometry"]]
    table["lat"] = [g.y for g in table["geometry"]]
    return table.drop(columns="geometry")


def _zone_diff(before: Assessment, after: Assessment, services) -> tuple[pd.DataFrame, list[dict]]:
    """Zone areas before/after and the parts added or lifted (network CRS). Zones that are cells on a grid
    both assessments share (B1, R3, review) are compared cell by cell: areas are cell counts and the added
    and lifted parts are polygonised from mask differences, the same polygons a vector overlay of their
    cell outlines gives, without building either side's full polygons. Boundary unions (B2-B4, R1, R2)
    are overlaid as vectors."""
    min_area = before.policy.cell_m ** 2
    grid = before.rasters.grid
    same_grid = grid == after.rasters.grid
    empty = shapely.MultiPolygon()
    rows, features = [], []
    for service in services:
        parts_before = {(p.zone, p.rule_ids): p for p in before.zone_parts(service)}
        parts_after = {(p.zone, p.rule_ids): p for p in after.zone_parts(service)}
        for key in dict.fromkeys(list(parts_before) + list(parts_after)):
            b, a = parts_before.get(key), parts_after.get(key)
            if same_grid and (b or a).boundary is None:
                no_cells = np.zeros(grid.shape, dtype=bool)
                mb, ma = (b.mask if b else no_cells), (a.mask if a else no_cells)
                area_before, area_after = mb.sum() * min_area, ma.sum() * min_area
                if np.array_equal(mb, ma):
                    added = lifted = empty
                else:
                    added = polygonal_parts(before.rasters.polygon(ma & ~mb), min_area=min_area)
                    lifted = polygonal_parts(before.rasters.polygon(mb & ~ma), min_area=min_area)
            else:
                gb = before.rasters.part_polygon(b, service) if b else empty
                ga = after.rasters.part_polygon(a, service) if a else empty
                area_before, area_after = gb.area, ga.area
                if shapely.equals_exact(ga, gb, tolerance=0.0):  # unchanged (the usual case): no overlay needed
                    added = lifted = empty
                else:
                    added = polygonal_parts(shapely.difference(ga, gb), min_area=min_area)
                    lifted = polygonal_parts(shapely.difference(gb, ga), min_area=min_area)
            zone, rule_ids = key
            rows.append({"service": service.value, "zone": zone, "rule_ids": rule_ids,
                         "area_before_km2": area_before / 1e6, "area_after_km2": area_after / 1e6,
                         "added_km2": added.area / 1e6, "lifted_km2": lifted.area / 1e6})
            for change, geometry in (("added", added), ("lifted", lifted)):
                if not geometry.is_empty:
                    features.append({"change": change, "service": service.value, "zone": zone, "rule_ids": rule_ids,
                                     "area_km2": geometry.area / 1e6, "geometry": geometry})
    columns = ["service", "zone", "rule_ids", "area_before_km2", "area_after_km2", "added_km2", "lifted_km2"]
    return pd.DataFrame(rows, columns=columns), features


def _summary(before: Assessment, after: Assessment, coverage: pd.DataFrame, zones: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for service in Service:
        part = coverage[coverage["service"] == service.value]
        row = {"service": service.value}
        for suffix, a in (("before", before), ("after", after)):
            population = part[f"population_{suffix}"].sum()
            covered = part[f"covered_{suffix}"].sum()
            sd = a.subdistricts[a.subdistricts["service"] == service.value]
            ct = a.counties[a.counties["service"] == service.value]
            row.update({
                f"pharmacies_{suffix}": int(a.region.pharmacies[service.value].astype(bool).sum()),
                f"population_{suffix}": float(population), f"covered_{suffix}": float(covered),
                f"covered_share_{suffix}": float(covered / population) if population else 0.0,
                f"r1_failing_{suffix}": int(sd["r1_ok"].eq(False).sum()),
                f"r2_failing_{suffix}": int(ct["r2_ok"].eq(False).sum()),
            })
        row["covered_delta"] = row["covered_after"] - row["covered_before"]
        row["covered_share_delta"] = row["covered_share_after"] - row["covered_share_before"]
        blocked = zones[(zones["service"] == service.value) & (zones["zone"] == "blocked")]
        row["blocked_added_km2"] = float(blocked["added_km2"].sum()) if len(blocked) else np.nan
        row["blocked_lifted_km2"] = float(blocked["lifted_km2"].sum()) if len(blocked) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _layer(before: Assessment, after: Assessment, coverage: pd.DataFrame, requirements: pd.DataFrame,
           sites: pd.DataFrame, zone_features: list[dict], services) -> gpd.GeoDataFrame:
    values = [s.value for s in services]
    columns = ["change", "service", "code", "name", "class_before", "class_after", "covered_share_before",
               "covered_share_after", "covered_share_delta", "requirements", "zone", "rule_ids", "area_km2", "geometry"]
    records: list[dict] = []
    geometry = after.region.subdistricts.set_index("code").geometry
    req: dict[tuple[str, str], str] = {}
    for row in requirements[requirements["level"] == "subdistrict"].itertuples(index=False):
        key = (row.code, row.service)
        req[key] = ",".join(filter(None, [req.get(key, ""), f"{row.rule}:{row.change}"]))
    for row in coverage[coverage["service"].isin(values)].itertuples(index=False):
        changes = req.get((row.code, row.service), "")
        if not (row.class_changed or changes or abs(row.covered_share_delta) >= 0.001):
            continue
        records.append({"change": "subdistrict", "service": row.service, "code": row.code, "name": row.name,
                        "class_before": row.class_before, "class_after": row.class_after,
                        "covered_share_before": row.covered_share_before,
                        "covered_share_after": row.covered_share_after,
                        "covered_share_delta": row.covered_share_delta, "requirements": changes,
                        "geometry": geometry.get(row.code)})
    county_geometry = after.region.counties.set_index("code").geometry
    for row in requirements[(requirements["level"] == "county") & requirements["service"].isin(values)].itertuples():
        records.append({"change": "county", "service": row.service, "code": row.code, "name": row.name,
                        "requirements": f"{row.rule}:{row.change}", "geometry": county_geometry.get(row.code)})
    zone_layer = gpd.GeoDataFrame(zone_features, columns=["change", "service", "zone", "rule_ids", "area_km2",
                                                          "geometry"],
                                  geometry="geometry", crs=before.network.crs).to_crs(WGS84)
    invalid = ~zone_layer.is_valid  # reprojection can make cell-corner touches cross by a rounding error
    if invalid.any():
        zone_layer.loc[invalid, "geometry"] = [polygonal_parts(shapely.make_valid(g), min_area=0.0)
                                               for g in zone_layer.geometry[invalid]]
    records += zone_layer.to_dict("records")
    for row in sites.itertuples(index=False):
        records.append({"change": row.change, "code": row.pharmacy_id, "name": row.name,
                        "requirements": f"{row.services_before} -> {row.services_after}",
                        "geometry": shapely.Point(row.lon, row.lat)})
    return gpd.GeoDataFrame(records, columns=columns, geometry="geometry", crs=WGS84)
