"""The assessment pipeline: access, coverage, requirements R1-R4, saturation classes and zones per service.

``assess(region, network, policy)`` returns an :class:`Assessment`, a frozen bundle of tables and
GeoDataFrames (EPSG:4326) in which every verdict names its rule ids. The Streamlit app, the CLI, the
report writers and the notebooks all read from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planning.access import ServiceAccess, service_access
from planning.coverage import Residents, coverage_table, resident_minutes, residents_along_streets
from planning.errors import ParameterError
from planning.isochrones import RasterGrid, WalkSurface, points_mask, polygonize_mask, walk_surface
from planning.model import WGS84, Region, Service, SubdistrictKind
from planning.network import Snap, WalkNetwork
from planning.policy import HARD_BLOCKS, Policy, load_policy

#: Saturation classes, from most to least served.
CLASSES = ("saturated", "balanced", "underserved", "blank")
CLASS_LABELS = {
    "saturated": ("相对饱和", "saturated"),
    "balanced": ("均衡", "balanced"),
    "underserved": ("相对不足", "underserved"),
    "blank": ("空白", "blank"),
}
#: Services that get saturation classes (dual channel is planned per county, rule R2).
CLASSIFIED_SERVICES = (Service.PERSONAL_ACCOUNT, Service.OUTPATIENT_POOLING, Service.CHRONIC_DISEASE)
#: The search horizon is this many times the walk budget, so walk times just beyond it are known.
HORIZON_FACTOR = 2.0


@dataclass(frozen=True, eq=False)
class Assessment:
    """Everything one assessment found. Tables are pandas DataFrames; layers GeoDataFrames in EPSG:4326.

    Attributes
    ----------
    pharmacies : GeoDataFrame
        The region's pharmacies plus ``subdistrict_code``, ``county_code``, ``snap_m`` (metres to the
        street), ``on_network``, ``r4_ok`` (cross-region settlement where services are held).
    coverage : DataFrame
        Per (sub-district ``code``, ``service``): population, covered, covered_share, uncovered, street_km.
    subdistricts : GeoDataFrame
        Per (sub-district, service): counts, measures, ``class`` and the ``class_rule`` / ``class_measure``
        that decided it, R1 and R3 verdicts.
    counties : GeoDataFrame
        Per (county, service): counts and the roll-up class, R2 verdict, fund rules B3/B4.
    zones : GeoDataFrame
        Per service, blocked / priority / review polygons, one feature per rule (``rule_ids``).
    uncovered : GeoDataFrame
        Per service, the residential area beyond the walk budget (polygon) with persons.
    circles : GeoDataFrame
        Per service, the union of its service circles.

    The three polygon layers are built from the assessment's rasters on first use, and
    :meth:`zones_for`, :meth:`uncovered_for` and :meth:`circles_for` build one service's only (a map
    showing one service never pays for the others).
    """

    region: Region
    network: WalkNetwork
    policy: Policy
    access: dict[Service, ServiceAccess]
    surfaces: dict[Service, WalkSurface]
    residents: Residents
    pharmacies: gpd.GeoDataFrame
    coverage: pd.DataFrame
    subdistricts: gpd.GeoDataFrame
    counties: gpd.GeoDataFrame
    rasters: _ZoneRasters
    searched: tuple[Service, ...] = tuple(Service)  # services whose walk search ran (the others were reused)
    notes: list[str] = field(default_factory=list)  # provenance lines, e.g. which scenario edits produced it

    @property
    def zones(self) -> gpd.GeoDataFrame:
        return _concat([self.zones_for(s) for s in Service])

    @property
    def uncovered(self) -> gpd.GeoDataFrame:
        return _concat([self.uncovered_for(s) for s in Service])

    @property
    def circles(self) -> gpd.GeoDataFrame:
        return _concat([self.circles_for(s) for s in Service])

    def zones_for(self, service: Service | str) -> gpd.GeoDataFrame:
        """Blocked / priority / review polygons of one service (see :func:`build_zones`), EPSG:4326."""
        service = Service(service)
        return self._cached(f"zones_{service.value}", lambda: build_zones(
            self.region, self.network, self.subdistricts, self.counties, self.rasters, self.policy, service,
            parts=self.zone_parts(service)))

    def zone_parts(self, service: Service | str) -> list[ZonePart]:
        """The zones of one service as cells on ``rasters.grid`` and boundaries (:class:`ZonePart`), before
        any polygon is made: what a comparison of two assessments needs."""
        service = Service(service)
        return self._cached(f"zone_parts_{service.value}", lambda: zone_parts(
            self.region, self.network, self.subdistricts, self.counties, self.rasters, self.policy, service))

    def uncovered_for(self, service: Service | str) -> gpd.GeoDataFrame:
        """One row: the residential area beyond the walk budget for one service, with its persons."""
        service = Service(service)
        return self._cached(f"uncovered_{service.value}", lambda: self.rasters.uncovered(service))

    def circles_for(self, service: Service | str) -> gpd.GeoDataFrame:
        """One row: the union of one service's service circles (minutes, area_km2)."""
        service = Service(service)
        return self._cached(f"circles_{service.value}", lambda: self.rasters.circles(service))

    def subdistrict_row(self, code: str, service: Service | str) -> dict:
        """The class/requirement row of one sub-district for one service, as a dict."""
        return self._rows("subdistricts")[(code, Service(service).value)]

    def county_row(self, code: str, service: Service | str) -> dict:
        """The roll-up row of one county for one service, as a dict."""
        return self._rows("counties")[(code, Service(service).value)]

    def locate(self, lon: float, lat: float) -> tuple[dict | None, dict | None]:
        """The sub-district and county rows (attribute dicts) holding a WGS84 point, or None."""
        point = shapely.Point(lon, lat)
        found = []
        for name in ("subdistricts", "counties"):
            layer = getattr(self.region, name)
            tree = self._cached(f"tree_{name}", lambda layer=layer: shapely.STRtree(layer.geometry.to_numpy()))
            hits = [i for i in tree.query(point, predicate="intersects")]
            found.append(layer.drop(columns="geometry").iloc[min(hits)].to_dict() if hits else None)
        return found[0], found[1]

    def _rows(self, table: str) -> dict:
        return self._cached(f"rows_{table}", lambda: {
            (row["code"], row["service"]): row
            for row in getattr(self, table).drop(columns="geometry").to_dict("records")})

    def _cached(self, key: str, build):
        cache = self.__dict__.setdefault("_lookup_cache", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]


def assess(
    region: Region,
    network: WalkNetwork,
    policy: Policy | None = None,
    *,
    residents: Residents | None = None,
    reuse: Assessment | None = None,
) -> Assessment:
    """Assess ``region`` on ``network`` under ``policy`` (default: the ``default`` preset).

    ``residents`` may be passed to reuse a population surface (scenarios do); by default residents are
    spread along each sub-district's streets (:func:`planning.coverage.residents_along_streets`).

    ``reuse`` is an earlier assessment on the same ``network`` (a scenario's baseline, or the app's
    assessment at its widest walk setting). What it computed that this one would compute identically is
    taken from it, and the result is the same as without it:

    - the resident points and the sub-district/county label rasters, when the outlines (and, for the
      residents, the populations) are the same;
    - a service's walk search and walk surface, when that service's sites snap to the same places, the
      cell and access width are the same and the earlier horizon covers this one. They are cut back to
      this policy's horizon and speed (:meth:`ServiceAccess.within`, :meth:`WalkSurface.within`), so
      a shorter walk time or another speed needs no new search.

    :attr:`Assessment.searched` names the services whose walk search ran.
    """
    policy = policy or load_policy()
    if reuse is not None and reuse.network is not network:
        raise ParameterError("可复用的评估必须基于同一路网", "reuse must be an assessment on the same network object")
    pharmacies = locate_pharmacies(region, network, policy)
    same_outlines = reuse is not None and _same_outlines(reuse.region, region)
    if residents is None:
        if same_outlines and _same_frame(reuse.region.subdistricts, region.subdistricts, ["population"]):
            residents = reuse.residents
        else:
            residents = residents_along_streets(network, region.subdistricts)
    grid = _region_grid(region, network, policy)
    horizon_m = _horizon_m(policy)
    access: dict[Service, ServiceAccess] = {}
    surfaces: dict[Service, WalkSurface] = {}
    minutes: dict[str, np.ndarray] = {}
    searched = []
    for service in Service:
        sites, site_ids = service_sites(network, pharmacies, service, policy)
        if reuse is not None and _reusable(reuse, service, sites, site_ids, grid, policy, horizon_m):
            access[service] = reuse.access[service].within(horizon_m, speed_m_per_min=policy.speed_m_per_min)
            surfaces[service] = reuse.surfaces[service].within(horizon_m, speed_m_per_min=policy.speed_m_per_min)
        else:
            access[service] = service_access(network, sites, site_ids=site_ids, speed_m_per_min=policy.speed_m_per_min,
                                             max_minutes=policy.walk_minutes * HORIZON_FACTOR)
            surfaces[service] = walk_surface(access[service], cell_m=policy.cell_m,
                                             access_width_m=policy.access_width_m, grid=grid)
            searched.append(service)
        minutes[service.value] = resident_minutes(access[service], residents)
    coverage = coverage_table(region.subdistricts, residents, minutes, policy.walk_minutes)
    subdistricts = classify_subdistricts(region, pharmacies, coverage, policy)
    counties = classify_counties(region, pharmacies, coverage, policy)
    labels = reuse.rasters if same_outlines and reuse.rasters.grid == grid else None
    rasters = _ZoneRasters.build(grid, region, network, residents, minutes, surfaces, policy, labels_from=labels)
    return Assessment(region=region, network=network, policy=policy, access=access, surfaces=surfaces,
                      residents=residents, pharmacies=pharmacies, coverage=coverage, subdistricts=subdistricts,
                      counties=counties, rasters=rasters, searched=tuple(searched))


def _horizon_m(policy: Policy) -> float:
    """The walk search's horizon, metres (the budget times :data:`HORIZON_FACTOR`), computed exactly as
    :func:`planning.access.service_access` does from minutes and speed."""
    return float(policy.walk_minutes * HORIZON_FACTOR) * policy.speed_m_per_min


def _reusable(previous: Assessment, service: Service, sites: Snap, site_ids: np.ndarray, grid: RasterGrid,
              policy: Policy, horizon_m: float) -> bool:
    """Whether ``previous``'s search and surface of ``service`` equal, once cut back to ``horizon_m``,
    what a new search from ``sites`` on ``grid`` would give."""
    old, surface = previous.access[service], previous.surfaces[service]
    return (old.max_distance_m >= horizon_m and surface.horizon_m >= horizon_m
            and surface.cell_m == policy.cell_m and surface.access_width_m == policy.access_width_m
            and surface.transform == grid.transform and surface.distance_m.shape == grid.shape
            and old.sites.max_snap_m == sites.max_snap_m and np.array_equal(old.site_ids, site_ids)
            and all(np.array_equal(getattr(old.sites, k), getattr(sites, k))
                    for k in ("edge", "offset_m", "access_m", "on_network")))


def _same_frame(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> bool:
    return a is b or (len(a) == len(b) and a[columns].reset_index(drop=True).equals(b[columns].reset_index(drop=True)))


def _same_outlines(a: Region, b: Region) -> bool:
    """Whether two regions have the same sub-districts and counties (codes, order and geometry)."""
    return (_same_frame(a.subdistricts, b.subdistricts, ["code", "county_code", "geometry"])
            and _same_frame(a.counties, b.counties, ["code", "geometry"]))


def locate_pharmacies(region: Region, network: WalkNetwork, policy: Policy) -> gpd.GeoDataFrame:
    """Pharmacies with their sub-district, county, distance to the street and R4 check."""
    pharmacies = region.pharmacies.copy()
    joined = gpd.sjoin(pharmacies[["geometry"]], region.subdistricts[["code", "county_code", "geometry"]],
                       how="left", predicate="intersects")
    joined = joined[~joined.index.duplicated(keep="first")]
    pharmacies["subdistrict_code"] = joined["code"].reindex(pharmacies.index)
    pharmacies["county_code"] = joined["county_code"].reindex(pharmacies.index)
    snap = network.snap_lonlat(pharmacies.geometry.x.to_numpy(), pharmacies.geometry.y.to_numpy(),
                               max_snap_m=policy.max_snap_m)
    pharmacies["snap_m"] = snap.access_m
    pharmacies["on_network"] = snap.on_network
    holds_any = pharmacies[[s.value for s in Service]].any(axis=1)
    if "cross_region_settlement" in pharmacies.columns:
        pharmacies["r4_ok"] = ~holds_any | pharmacies["cross_region_settlement"].fillna(False).astype(bool)
    else:
        pharmacies["r4_ok"] = pd.NA
    return pharmacies


def service_sites(network: WalkNetwork, pharmacies: gpd.GeoDataFrame, service: Service,
                  policy: Policy) -> tuple[Snap, np.ndarray]:
    """The pharmacies holding ``service`` snapped to the network (within ``policy.max_snap_m``), and their ids."""
    holders = pharmacies[pharmacies[service.value].astype(bool)]
    snap = network.snap_lonlat(holders.geometry.x.to_numpy(), holders.geometry.y.to_numpy(),
                               max_snap_m=policy.max_snap_m)
    return snap, holders["pharmacy_id"].to_numpy()


def classify(per_10k: float, covered_share: float, count: int, thresholds) -> tuple[str, str, str, str]:
    """Class of one area, the measure that decided it, and a short reason in English and in Chinese.

    Order: blank (no site and almost nobody covered) -> saturated (dense and nearly all covered) ->
    underserved (sparse or too few covered) -> balanced.
    """
    t = thresholds
    if count == 0 and covered_share < t.blank_max_covered_share:
        return "blank", "covered_share", (
            f"no pharmacy of this service and {covered_share:.0%} covered < {t.blank_max_covered_share:.0%}"), (
            f"无该业务药店，且时限内覆盖率 {covered_share:.0%} < {t.blank_max_covered_share:.0%}")
    if per_10k >= t.saturated_per_10k and covered_share >= t.saturated_min_covered_share:
        return "saturated", "per_10k", (
            f"{per_10k:.2f} per 10,000 >= {t.saturated_per_10k:g} and {covered_share:.0%} covered"), (
            f"每万人 {per_10k:.2f} 家 ≥ {t.saturated_per_10k:g}，且时限内覆盖率 {covered_share:.0%}")
    if per_10k < t.underserved_per_10k:
        return "underserved", "per_10k", f"{per_10k:.2f} per 10,000 < {t.underserved_per_10k:g}", (
            f"每万人 {per_10k:.2f} 家 < {t.underserved_per_10k:g}")
    if covered_share < t.underserved_min_covered_share:
        return "underserved", "covered_share", (
            f"{covered_share:.0%} covered < {t.underserved_min_covered_share:.0%}"), (
            f"时限内覆盖率 {covered_share:.0%} < {t.underserved_min_covered_share:.0%}")
    return "balanced", "per_10k", (
        f"{per_10k:.2f} per 10,000 within [{t.underserved_per_10k:g}, {t.saturated_per_10k:g})"), (
        f"每万人 {per_10k:.2f} 家，介于 [{t.underserved_per_10k:g}, {t.saturated_per_10k:g})")


def classify_subdistricts(region: Region, pharmacies: gpd.GeoDataFrame, coverage: pd.DataFrame,
                          policy: Policy) -> gpd.GeoDataFrame:
    """One row per (sub-district, service): counts, measures, class, R1 and R3 verdicts with rule ids."""
    counts = _counts(pharmacies, "subdistrict_code")
    coverage_rows = coverage.set_index(["code", "service"]).to_dict("index")
    rows = []
    for sd in region.subdistricts.itertuples():
        street = sd.kind == SubdistrictKind.STREET.value
        n_pool = counts.get((sd.code, Service.OUTPATIENT_POOLING.value), 0)
        n_chronic = counts.get((sd.code, Service.CHRONIC_DISEASE.value), 0)
        r1_missing = [s for s, n in ((Service.OUTPATIENT_POOLING, n_pool), (Service.CHRONIC_DISEASE, n_chronic)) if n == 0]
        for service in Service:
            cov = coverage_rows[(sd.code, service.value)]
            count = counts.get((sd.code, service.value), 0)
            if sd.population > 0:
                per_10k = count / sd.population * 10_000
            else:  # nobody lives there: any pharmacy is a surplus, none is no density at all
                per_10k = float("inf") if count else 0.0
            row = {
                "code": sd.code, "name": sd.name, "kind": sd.kind, "county_code": sd.county_code,
                "service": service.value, "population": int(sd.population), "pharmacies": int(count),
                "per_10k": per_10k,
                "residents_per_pharmacy": sd.population / count if count else np.nan,
                "covered_share": float(cov["covered_share"]), "uncovered": float(cov["uncovered"]),
                "street_km": float(cov["street_km"]),
            }
            if service in CLASSIFIED_SERVICES and policy.applies("S"):
                cls, measure, reason, reason_zh = classify(per_10k, row["covered_share"], count,
                                                           policy.thresholds[service])
                row.update({"class": cls, "class_measure": measure, "class_reason": reason,
                            "class_reason_zh": reason_zh, "class_rule": "S"})
            else:
                row.update({"class": None, "class_measure": None, "class_reason": None, "class_reason_zh": None,
                            "class_rule": None})
            if policy.applies("R1") and street and service in (Service.OUTPATIENT_POOLING, Service.CHRONIC_DISEASE):
                row["r1_ok"] = service not in r1_missing
                row["r1_shortfall"] = 0 if row["r1_ok"] else 1
            else:
                row["r1_ok"], row["r1_shortfall"] = None, None
            if policy.applies("R3") and service in CLASSIFIED_SERVICES:
                target = policy.thresholds[service].underserved_min_covered_share
                row["r3_ok"] = row["covered_share"] >= target
                row["r3_uncovered"] = row["uncovered"]
            else:
                row["r3_ok"], row["r3_uncovered"] = None, None
            row["rule_ids"] = _rule_ids(row)
            rows.append(row)
    table = pd.DataFrame(rows)
    geometry = region.subdistricts.set_index("code").geometry
    return gpd.GeoDataFrame(table, geometry=geometry.reindex(table["code"]).to_numpy(), crs=WGS84)


def classify_counties(region: Region, pharmacies: gpd.GeoDataFrame, coverage: pd.DataFrame,
                      policy: Policy) -> gpd.GeoDataFrame:
    """One row per (county, service): counts, roll-up class, R2 and the fund rules B3/B4."""
    counts = _counts(pharmacies, "county_code")
    sd_county = region.subdistricts.set_index("code")["county_code"]
    cov = coverage.assign(county_code=coverage["code"].map(sd_county))
    rolled = cov.groupby(["county_code", "service"])[["population", "covered"]].sum()
    rows = []
    for county in region.counties.itertuples():
        b3 = policy.applies("B3") and bool(county.fund_deficit_last_year)
        b4 = policy.applies("B4") and bool(county.fund_deficit_last_year or county.fund_deficit_forecast
                                           or county.fund_warning_letter)
        for service in Service:
            population, covered = rolled.loc[(county.code, service.value)] if (county.code, service.value) in rolled.index else (0, 0)
            count = counts.get((county.code, service.value), 0)
            per_10k = count / population * 10_000 if population else 0.0
            share = covered / population if population else 0.0
            row = {"code": county.code, "name": county.name, "service": service.value,
                   "population": int(population), "pharmacies": int(count), "per_10k": per_10k,
                   "covered_share": share, "fund_b3": b3, "fund_b4": b4}
            if service in CLASSIFIED_SERVICES and policy.applies("S"):
                cls, measure, reason, reason_zh = classify(per_10k, share, count, policy.thresholds[service])
                row.update({"class": cls, "class_measure": measure, "class_reason": reason,
                            "class_reason_zh": reason_zh})
            else:
                row.update({"class": None, "class_measure": None, "class_reason": None, "class_reason_zh": None})
            if policy.applies("R2") and service is Service.DUAL_CHANNEL:
                row["r2_ok"] = count >= 1
                row["r2_shortfall"] = 0 if count >= 1 else 1
            else:
                row["r2_ok"], row["r2_shortfall"] = None, None
            ids = [r for r, hit in (("R2", row["r2_ok"] is False), ("B3", b3), ("B4", b4)) if hit]
            if row["class"] is not None:
                ids.append("S")
            row["rule_ids"] = ",".join(ids)
            rows.append(row)
    table = pd.DataFrame(rows)
    geometry = region.counties.set_index("code").geometry
    return gpd.GeoDataFrame(table, geometry=geometry.reindex(table["code"]).to_numpy(), crs=WGS84)


@dataclass(frozen=True, eq=False)
class ZonePart:
    """One zone feature of one service before it becomes a polygon: its cells on the assessment grid
    (``mask``) and, for zones made of whole sub-districts or counties (B2-B4, R1, R2), their exact
    ``boundary`` union (network CRS). ``boundary`` is None when the zone is exactly its cells (B1, R3,
    review), so two assessments on one grid can compare it cell by cell."""

    zone: str  # blocked / priority / review
    rule_ids: str
    mask: np.ndarray
    boundary: shapely.MultiPolygon | None


def zone_parts(region: Region, network: WalkNetwork, subdistricts: gpd.GeoDataFrame, counties: gpd.GeoDataFrame,
               layers: _ZoneRasters, policy: Policy, service: Service) -> list[ZonePart]:
    """The blocked, priority and review zones of one service (see :func:`build_zones`), as cells and
    boundaries. Zones with no cell are left out; review zones need more than one cell."""
    sd_geometry = region.subdistricts.set_index("code").geometry.to_crs(network.crs)
    county_geometry = region.counties.set_index("code").geometry.to_crs(network.crs)
    overall = subdistricts[subdistricts["service"] == Service.PERSONAL_ACCOUNT.value].set_index("code")["class"]
    sd = subdistricts[subdistricts["service"] == service.value]
    county_rows = counties[counties["service"] == service.value]
    blocks: list[ZonePart] = []
    priorities: list[ZonePart] = []
    if policy.applies("B1"):
        blocks.append(ZonePart("blocked", "B1", layers.circle_mask(service), None))
    if policy.applies("B2"):
        codes = sd.loc[(sd["class"] == "saturated") | (sd["code"].map(overall) == "saturated"), "code"]
        blocks.append(ZonePart("blocked", "B2", layers.subdistrict_mask(codes), _union(sd_geometry, codes)))
    for rule, column in (("B3", "fund_b3"), ("B4", "fund_b4")):
        codes = county_rows.loc[county_rows[column], "code"]
        blocks.append(ZonePart("blocked", rule, layers.county_mask(codes), _union(county_geometry, codes)))
    if policy.applies("R3"):
        weak = sd.loc[sd["class"].isin(["blank", "underserved"]), "code"]
        mask = layers.uncovered_mask(service) & layers.subdistrict_mask(weak) & ~layers.circle_mask(service)
        priorities.append(ZonePart("priority", "R3", mask, None))
    codes = sd.loc[sd["r1_ok"] == False, "code"]  # noqa: E712 (None means "rule does not apply")
    priorities.append(ZonePart("priority", "R1", layers.subdistrict_mask(codes), _union(sd_geometry, codes)))
    codes = county_rows.loc[county_rows["r2_ok"] == False, "code"]  # noqa: E712
    priorities.append(ZonePart("priority", "R2", layers.county_mask(codes), _union(county_geometry, codes)))

    parts = [part for part in blocks + priorities if part.mask.any()]
    hard = np.zeros(layers.grid.shape, dtype=bool)
    for block in blocks:
        if block.rule_ids in HARD_BLOCKS:
            hard |= block.mask
    for block in blocks:  # one review zone per soft block/priority pair that meets
        if block.rule_ids in HARD_BLOCKS:
            continue
        for priority in priorities:
            review = block.mask & priority.mask & ~hard
            if review.sum() > 1:
                parts.append(ZonePart("review", f"{block.rule_ids},{priority.rule_ids}", review, None))
    return parts


def build_zones(region: Region, network: WalkNetwork, subdistricts: gpd.GeoDataFrame, counties: gpd.GeoDataFrame,
                layers: _ZoneRasters, policy: Policy, service: Service,
                parts: list[ZonePart] | None = None) -> gpd.GeoDataFrame:
    """Blocked, priority and review polygons of one service, one feature per rule (EPSG:4326).

    blocked: B1 (same-service circles), B2 (saturated sub-districts, for the service or for all
    designated pharmacies), B3 (deficit counties), B4 (balance-only counties). priority: R3, the
    uncovered residential area of blank or underserved sub-districts outside every same-service
    circle; R1/R2 shortfalls, the failing street office or county. review: where a soft block (B1, B2,
    B4) and a priority meet, outside hard blocks (B3). B2-B4 and R1-R2 are exact unions of the
    boundary polygons; B1 is the circle layer's polygon; R3 and review come from the assessment's raster
    (cell ``policy.cell_m``).
    Overlaps of less than one cell are dropped. ``parts``: the :func:`zone_parts`, when already made.
    """
    if parts is None:
        parts = zone_parts(region, network, subdistricts, counties, layers, policy, service)
    features = [{"service": service.value, "zone": part.zone, "rule_ids": part.rule_ids,
                 "geometry": _polygonal(layers.part_polygon(part, service))} for part in parts]
    zones = gpd.GeoDataFrame(features, columns=["service", "zone", "rule_ids", "geometry"], geometry="geometry",
                             crs=network.crs)
    return zones.to_crs(WGS84)


def _union(geometry: gpd.GeoSeries, codes) -> shapely.MultiPolygon:
    return shapely.union_all(geometry.reindex(list(codes)).to_numpy()) if len(codes) else shapely.MultiPolygon()


def _polygonal(geometry) -> shapely.MultiPolygon:
    """The polygon parts of an overlay result as one MultiPolygon (drops stray boundary lines and points)."""
    parts = shapely.get_parts(geometry)
    polygons = [p for p in parts if p.geom_type == "Polygon" and not p.is_empty]
    for multi in (p for p in parts if p.geom_type in ("MultiPolygon", "GeometryCollection")):
        polygons += [q for q in shapely.get_parts(multi) if q.geom_type == "Polygon"]
    return shapely.MultiPolygon(polygons)


@dataclass(frozen=True, eq=False)
class _ZoneRasters:
    """Masks of one assessment on one grid (network CRS): circles and uncovered residents per service,
    sub-district and county labels, so zone algebra is cell-wise boolean logic. A service's uncovered
    mask is rasterised when first asked for (a map of one service never pays for the others)."""

    grid: RasterGrid
    crs: str
    budget_m: float
    cell_m: float
    access_width_m: float
    surfaces: dict
    residents: Residents
    beyond: dict  # service value -> bool per resident point: someone lives there beyond the budget
    uncovered_persons: dict
    subdistrict_labels: np.ndarray
    subdistrict_codes: np.ndarray
    county_labels: np.ndarray
    county_codes: np.ndarray

    @classmethod
    def build(cls, grid: RasterGrid, region: Region, network: WalkNetwork, residents: Residents, minutes: dict,
              surfaces: dict, policy: Policy, *, labels_from: _ZoneRasters | None = None) -> _ZoneRasters:
        """``labels_from``: an earlier build on the same grid and outlines, whose label rasters are taken."""
        beyond = {service: ~(resident_min <= policy.walk_minutes) & (residents.persons > 0)
                  for service, resident_min in minutes.items()}
        if labels_from is None:
            sd = region.subdistricts.to_crs(network.crs)
            counties = region.counties.to_crs(network.crs)
            labels = {"subdistrict_labels": grid.rasterize(sd.geometry, range(1, len(sd) + 1)),
                      "subdistrict_codes": sd["code"].to_numpy(),
                      "county_labels": grid.rasterize(counties.geometry, range(1, len(counties) + 1)),
                      "county_codes": counties["code"].to_numpy()}
        else:
            labels = {k: getattr(labels_from, k) for k in
                      ("subdistrict_labels", "subdistrict_codes", "county_labels", "county_codes")}
        return cls(grid=grid, crs=network.crs, budget_m=policy.budget_m, cell_m=policy.cell_m,
                   access_width_m=policy.access_width_m, surfaces=surfaces, residents=residents, beyond=beyond,
                   uncovered_persons={s: float(residents.persons[b].sum()) for s, b in beyond.items()}, **labels)

    def uncovered_mask(self, service: Service) -> np.ndarray:
        """Cells within the access width of a resident point beyond the budget."""
        cache = self.__dict__.setdefault("_uncovered_masks", {})
        if service not in cache:
            cache[service] = points_mask(self.residents.xy[self.beyond[service.value]], cell_m=self.cell_m,
                                         width_m=self.access_width_m, grid=self.grid)[0]
        return cache[service]

    def circle_mask(self, service: Service) -> np.ndarray:
        return self.surfaces[service].distance_m <= np.float32(self.budget_m)

    def subdistrict_mask(self, codes) -> np.ndarray:
        return np.isin(self.subdistrict_labels, 1 + np.flatnonzero(np.isin(self.subdistrict_codes, list(codes))))

    def county_mask(self, codes) -> np.ndarray:
        return np.isin(self.county_labels, 1 + np.flatnonzero(np.isin(self.county_codes, list(codes))))

    def polygon(self, mask: np.ndarray) -> shapely.MultiPolygon:
        return polygonize_mask(mask, self.grid.transform)

    def part_polygon(self, part: ZonePart, service: Service) -> shapely.MultiPolygon:
        """A zone part's polygon (network CRS): its boundary union, or its cells (B1: the circle polygon)."""
        if part.boundary is not None:
            return part.boundary
        return self.circle_polygon(service) if part.rule_ids == "B1" else self.polygon(part.mask)

    def circle_polygon(self, service: Service) -> shapely.MultiPolygon:
        """The union of one service's circles (network CRS), polygonised once for the circle layer and B1."""
        cache = self.__dict__.setdefault("_circle_polygons", {})
        if service not in cache:
            cache[service] = self.polygon(self.circle_mask(service))
        return cache[service]

    def circles(self, service: Service) -> gpd.GeoDataFrame:
        polygon = self.circle_polygon(service)
        row = {"service": service.value, "minutes": self.budget_m / self.surfaces[service].speed_m_per_min,
               "area_km2": polygon.area / 1e6, "geometry": polygon}
        return gpd.GeoDataFrame([row], geometry="geometry", crs=self.crs).to_crs(WGS84)

    def uncovered(self, service: Service) -> gpd.GeoDataFrame:
        row = {"service": service.value, "persons": self.uncovered_persons[service.value],
               "geometry": self.polygon(self.uncovered_mask(service))}
        return gpd.GeoDataFrame([row], geometry="geometry", crs=self.crs).to_crs(WGS84)


def _concat(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=WGS84)


def _region_grid(region: Region, network: WalkNetwork, policy: Policy) -> RasterGrid:
    """The raster covering the network and every sub-district, padded by the access width."""
    sd_bounds = region.subdistricts.to_crs(network.crs).total_bounds
    net_min, net_max = network.node_xy.min(axis=0), network.node_xy.max(axis=0)
    bounds = (min(sd_bounds[0], net_min[0]), min(sd_bounds[1], net_min[1]),
              max(sd_bounds[2], net_max[0]), max(sd_bounds[3], net_max[1]))
    return RasterGrid.covering(bounds, cell_m=policy.cell_m, pad_cells=int(policy.access_width_m // policy.cell_m) + 1)


def _counts(pharmacies: gpd.GeoDataFrame, by: str) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for service in Service:
        grouped = pharmacies[pharmacies[service.value].astype(bool)].groupby(by).size()
        counts.update({(code, service.value): int(n) for code, n in grouped.items()})
    return counts


def _rule_ids(row: dict) -> str:
    ids = []
    if row["r1_ok"] is False:
        ids.append("R1")
    if row["r3_ok"] is False:
        ids.append("R3")
    if row["class_rule"]:
        ids.append(row["class_rule"])
    return ",".join(ids)
