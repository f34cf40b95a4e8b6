"""The assessment pipeline: access, coverage, requirements R1-R4, saturation classes and zones per service.

``assess(region, network, policy)`` returns an :class:`Assessment`, a frozen bundle of tables and
GeoDataFrames (EPSG:4326) in which every verdict names its rule ids. The Streamlit app, the CLI, the
report writers and the notebooks all read from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import geopandas as gpd
import numpy as np
import pandas as pd

from planning import rules
from planning.access import ServiceAccess, service_access
from planning.capacity import NodePairs, area_access_per_10k, e2sfca_at_nodes, nearer_nodes, site_capacity
from planning.coverage import Residents, coverage_table, resident_minutes, residents_along_streets
from planning.demand import ServiceDemand, point_weights, service_demand
from planning.errors import ParameterError
from planning.geometry import PolygonIndex
from planning.isochrones import RasterGrid, WalkSurface, walk_surface
from planning.memo import Memo
from planning.model import WGS84, Region, Service, SubdistrictKind
from planning.network import Snap, WalkNetwork
from planning.policy import DENSITY_BASES, Policy, load_policy
from planning.settlement import SUSPENDED, serves, settlement_status
from planning.workers import place_workers, worker_status
from planning.zones import ZonePart, ZoneRasters, build_zones, cell_decisions, cell_verdicts, zone_parts

#: The search horizon is this many times the walk budget, so walk times just beyond it are known.
HORIZON_FACTOR = 2.0


@dataclass(frozen=True, eq=False)
class Assessment:
    """Everything one assessment found. Tables are pandas DataFrames; layers GeoDataFrames in EPSG:4326.

    Attributes
    ----------
    pharmacies : GeoDataFrame
        The region's pharmacies plus ``subdistrict_code``, ``county_code``, ``snap_m`` (metres to the
        street), ``on_network``, ``r4_ok`` (cross-region settlement where services are held), the
        settlement status on ``policy.on`` (``settlement``, ``settlement_rules``, ``settlement_until``,
        ``settlement_not_judged``, see :mod:`planning.settlement`) and ``serves`` (whether it counts
        under the policy: every count, walk search and circle uses only these).
    coverage : DataFrame
        Per (sub-district ``code``, ``service``): population, covered, covered_share, uncovered, street_km.
    subdistricts : GeoDataFrame
        Per (sub-district, service): counts (``pharmacies``: those that serve; ``suspended``: holders
        whose settlement is suspended, counted or not), measures, ``class`` and the ``class_rule`` /
        ``class_measure`` that decided it, R1 and R3 verdicts.
    counties : GeoDataFrame
        Per (county, service): counts (as for sub-districts) and the roll-up class, R2 verdict, fund
        rules B3/B4.
    demand : dict
        Per service, its :class:`planning.demand.ServiceDemand` (whom it is for, per sub-district).
    resident_weights : dict
        Per service value, the demand weight of each resident point (persons; :meth:`weights_for`).
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
    rasters: ZoneRasters
    searched: tuple[Service, ...] = tuple(Service)  # services whose walk search ran (the others were reused)
    demand: dict[Service, ServiceDemand] = field(default_factory=dict)  # per service, its demand per sub-district
    resident_weights: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # per service, per point
    notes: tuple[str, ...] = ()  # provenance lines, e.g. which scenario edits produced it
    memo: Memo = field(default_factory=Memo, repr=False)  # derived values (polygons, lookups, map layers)

    @property
    def zones(self) -> gpd.GeoDataFrame:
        return _concat([self.zones_for(s) for s in Service])

    @property
    def uncovered(self) -> gpd.GeoDataFrame:
        return _concat([self.uncovered_for(s) for s in Service])

    @property
    def circles(self) -> gpd.GeoDataFrame:
        return _concat([self.circles_for(s) for s in Service])

    def weights_for(self, service: Service | str) -> np.ndarray:
        """The demand weight (persons) of each resident point for one service: residents scaled to the
        service's demand per sub-district (:func:`planning.demand.point_weights`)."""
        service = Service(service)
        return self.resident_weights.get(service.value, self.residents.persons)

    def zones_for(self, service: Service | str) -> gpd.GeoDataFrame:
        """Blocked / priority / review polygons of one service (see :mod:`planning.zones`), EPSG:4326."""
        service = Service(service)
        return self.memo.get(("zones", service), lambda: build_zones(self.rasters, self.zone_parts(service), service))

    def zone_parts(self, service: Service | str) -> list[ZonePart]:
        """The zones of one service as cells on ``rasters.grid`` and boundaries (:class:`ZonePart`), before
        any polygon is made: what a comparison of two assessments needs."""
        service = Service(service)
        return self.memo.get(("zone_parts", service), lambda: zone_parts(
            self.region, self.network.crs, self.area_facts(service), self.rasters, self.policy, service))

    def decisions(self, service: Service | str) -> np.ndarray:
        """The verdict a click would read at every cell of ``rasters.grid`` for one service, as
        :data:`planning.zones.DECISION_CODES` (uint8; 0 outside every sub-district): the decision map."""
        service = Service(service)
        if ("cell_verdicts", service) in self.memo.keys():  # the rule sets were asked for: same flags
            return self.decision_verdicts(service)[0]
        return self.memo.get(("decisions", service), lambda: cell_decisions(
            self.area_facts(service), self.rasters, self.policy, service))

    def decision_verdicts(self, service: Service | str) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`decisions` and the rules deciding each of its cells, from one evaluation of the rules:
        the bit sets of :func:`planning.zones.cell_verdicts` (uint16 on ``rasters.grid``; 0 outside every
        sub-district), what hovering the decision map names (:func:`planning.zones.describe_rule_sets`)."""
        service = Service(service)
        return self.memo.get(("cell_verdicts", service), lambda: cell_verdicts(
            self.area_facts(service), self.rasters, self.policy, service))

    def area_facts(self, service: Service | str) -> rules.AreaFacts:
        """What the tables decided per sub-district and county for one service, the input of
        :func:`planning.rules.rule_flags` (in the region's order of sub-districts and counties)."""
        service = Service(service)
        return self.memo.get(("area_facts", service), lambda: rules.AreaFacts.from_tables(
            self.subdistricts, self.counties, service,
            subdistrict_codes=self.region.subdistricts["code"].to_numpy(),
            subdistrict_county=self.rasters.subdistrict_county,
            county_codes=self.region.counties["code"].to_numpy(),
            unjudged=tuple(self.unjudged(service))))

    def unjudged(self, service: Service | str) -> dict[str, tuple[str, ...]]:
        """The rules of this policy that missing inputs leave unjudged for one service, with the inputs
        (:func:`planning.rules.unjudged_rules` of ``region.completeness``; empty when nothing is missing)."""
        return rules.unjudged_rules(_missing_inputs(self.region), Service(service), self.policy)

    @property
    def metric_crs(self) -> str:
        """The projected CRS (metres) of the network, the rasters and every area figure."""
        return self.network.crs

    def zone_areas_km2(self, service: Service | str, *, within: np.ndarray | None = None) -> dict[str, float]:
        """Area (km²) of each zone kind (blocked / priority / review) of one service inside the region's
        sub-districts (where the decision map draws) or the cells ``within`` (bool raster on
        ``rasters.grid``, e.g. a tile's core), counted on the grid's cells (a cell in two parts of one
        kind counts once); kinds without such a cell are left out."""
        union: dict[str, np.ndarray] = {}
        for part in self.zone_parts(service):
            union[part.zone] = part.mask | union[part.zone] if part.zone in union else part.mask
        inside = self.rasters.subdistrict_labels > 0 if within is None else within
        cell_km2 = self.rasters.cell_m ** 2 / 1e6
        areas = {zone: float((mask & inside).sum()) * cell_km2 for zone, mask in union.items()}
        return {zone: km2 for zone, km2 in areas.items() if km2 > 0}

    def uncovered_for(self, service: Service | str) -> gpd.GeoDataFrame:
        """One row: the residential area beyond the walk budget for one service, with its persons."""
        service = Service(service)
        return self.memo.get(("uncovered", service), lambda: self.rasters.uncovered(service))

    def persons_beyond(self, service: Service | str) -> float:
        """Residents (persons, the service's demand weights) beyond the walk budget for one service: the
        ``persons`` of :meth:`uncovered_for`, without drawing its polygon."""
        return float(self.rasters.uncovered_persons[Service(service).value])

    def circles_for(self, service: Service | str) -> gpd.GeoDataFrame:
        """One row: the union of one service's service circles (minutes, area_km2)."""
        service = Service(service)
        return self.memo.get(("circles", service), lambda: self.rasters.circles(service))

    def subdistrict_row(self, code: str, service: Service | str) -> dict:
        """The class/requirement row of one sub-district for one service, as a dict."""
        return self._rows("subdistricts")[(code, Service(service).value)]

    def county_row(self, code: str, service: Service | str) -> dict:
        """The roll-up row of one county for one service, as a dict."""
        return self._rows("counties")[(code, Service(service).value)]

    def areas_at(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """Row positions in the region's sub-districts and counties of the areas holding WGS84 points
        (degrees), -1 outside every one; the first polygon wins where borders overlap. A point in a
        sub-district belongs to that sub-district's county (:func:`planning.rules.county_of`)."""
        xy = np.column_stack([np.atleast_1d(np.asarray(lon, dtype=float)), np.atleast_1d(np.asarray(lat, dtype=float))])
        subdistricts, counties = self.memo.get("area_index", lambda: (
            PolygonIndex(self.region.subdistricts), PolygonIndex(self.region.counties)))
        subdistrict = subdistricts.first_containing(xy)
        return subdistrict, rules.county_of(subdistrict, counties.first_containing(xy), self.rasters.subdistrict_county)

    def locate(self, lon: float, lat: float) -> tuple[dict | None, dict | None]:
        """The sub-district and county rows (attribute dicts) holding a WGS84 point, or None."""
        subdistrict, county = (int(i[0]) for i in self.areas_at(lon, lat))
        records = self.memo.get("area_records", lambda: tuple(
            layer.drop(columns="geometry").to_dict("records") for layer in (self.region.subdistricts, self.region.counties)))
        return (dict(records[0][subdistrict]) if subdistrict >= 0 else None,
                dict(records[1][county]) if county >= 0 else None)

    def pharmacy_name(self, pharmacy_id: str) -> str | None:
        """The name of a pharmacy of this assessment, None for an unknown id."""
        names = self.memo.get("pharmacy_names", lambda: dict(zip(
            self.pharmacies["pharmacy_id"].astype(str), self.pharmacies["name"])))
        return names.get(str(pharmacy_id))

    def with_notes(self, *notes: str) -> Assessment:
        """The same assessment with provenance lines added (a new object; this one is unchanged)."""
        return replace(self, notes=self.notes + tuple(notes), memo=Memo())

    def _rows(self, table: str) -> dict:
        return self.memo.get(("rows", table), lambda: {
            (row["code"], row["service"]): row
            for row in getattr(self, table).drop(columns="geometry").to_dict("records")})


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

    With a policy ``workers_weight`` > 0, the region's worker layer adds workplace points to the resident
    points (:func:`planning.workers.place_workers`); asked for but absent, the data-completeness table
    (or, for a region without one, :attr:`Assessment.notes`) says so (:func:`planning.workers.worker_status`).

    ``reuse`` is an earlier assessment on the same ``network`` (a scenario's baseline, or the app's
    assessment at its widest walk setting). What it computed that this one would compute identically is
    taken from it, and the result is the same as without it:

    - the resident points and the sub-district/county label rasters, when the outlines (and, for the
      residents, the populations and the snap distance) are the same;
    - a service's walk search and walk surface, when that service's sites snap to the same places, the
      cell and snap distance are the same and the earlier horizon covers this one. They are cut back to
      this policy's horizon and speed (:meth:`ServiceAccess.within`, :meth:`WalkSurface.within`), so
      a shorter walk time or another speed needs no new search.

    :attr:`Assessment.searched` names the services whose walk search ran.
    """
    policy = policy or load_policy()
    if reuse is not None and reuse.network is not network:
        raise ParameterError("可复用的评估必须基于同一路网", "reuse must be an assessment on the same network object")
    # every pharmacy snapped once; each service's sites are rows of it (the same rule for the same point)
    snap = network.snap_lonlat(region.pharmacies.geometry.x.to_numpy(), region.pharmacies.geometry.y.to_numpy(),
                               max_snap_m=policy.max_snap_m)
    pharmacies = locate_pharmacies(region, network, policy, snap=snap)
    same_outlines = reuse is not None and _same_outlines(reuse.region, region)
    if residents is None:
        if (same_outlines and reuse.policy.max_snap_m == policy.max_snap_m
                and _same_frame(reuse.region.subdistricts, region.subdistricts, ["population"])):
            residents = reuse.residents
        else:
            residents = residents_along_streets(network, region.subdistricts, max_snap_m=policy.max_snap_m)
    residents = place_workers(residents, network, region.subdistricts,
                              region.workers if policy.weighs_workers else None, max_snap_m=policy.max_snap_m)
    region, worker_notes = worker_status(region, policy)
    grid = region_grid(region, network, policy)
    horizon_m = search_horizon_m(policy)
    access: dict[Service, ServiceAccess] = {}
    surfaces: dict[Service, WalkSurface] = {}
    minutes: dict[str, np.ndarray] = {}
    searched = []
    demand = {s: service_demand(region.subdistricts, s, policy.demand[s]) for s in Service}
    residents_per_area = region.subdistricts["population"].to_numpy(dtype=float)
    weights = {s.value: point_weights(residents.persons, residents.subdistrict, residents_per_area, demand[s])
               for s in Service}
    if residents.worker_points.any():  # the workplaces weigh workers x weight, in their sub-district's demand
        inside = residents.subdistrict >= 0
        workers = np.where(inside, residents.workers, 0.0)
        workers_per_area = np.bincount(residents.subdistrict[inside], weights=workers[inside],
                                       minlength=len(region.subdistricts))
        for s in Service:
            demand[s] = demand[s].with_workers(workers_per_area, policy.workers_weight[s])
            weights[s.value] = weights[s.value] + policy.workers_weight[s] * workers
    capacity, _ = site_capacity(pharmacies, policy.capacity_column)
    capacity_by_id = dict(zip(pharmacies["pharmacy_id"].astype(str), capacity))
    reach: dict[Service, np.ndarray] = {}
    # one walk search from every serving pharmacy for the E2SFCA of all services (each takes its subset)
    every_site, every_id = serving_sites(network, pharmacies, policy, snap=snap)
    pairs = NodePairs.search(network, every_site, policy.budget_m)
    point_node = nearer_nodes(network, residents.snap)  # where each resident's demand goes, for every service
    position_of = {str(i): k for k, i in enumerate(every_id)}
    for service in Service:
        sites, site_ids = service_sites(network, pharmacies, service, policy, snap=snap)
        if reuse is not None and _reusable(reuse, service, sites, site_ids, grid, policy, horizon_m):
            access[service] = reuse.access[service].within(horizon_m, speed_m_per_min=policy.speed_m_per_min)
            surfaces[service] = reuse.surfaces[service].within(horizon_m, speed_m_per_min=policy.speed_m_per_min)
        else:
            access[service] = service_access(network, sites, site_ids=site_ids, speed_m_per_min=policy.speed_m_per_min,
                                             max_minutes=policy.walk_minutes * HORIZON_FACTOR)
            surfaces[service] = walk_surface(access[service], cell_m=policy.cell_m, max_snap_m=policy.max_snap_m,
                                             grid=grid)
            searched.append(service)
        minutes[service.value] = resident_minutes(access[service], residents)
        found = e2sfca_at_nodes(network, sites, np.array([capacity_by_id[str(i)] for i in site_ids]), residents.snap,
                                weights[service.value], catchment_m=policy.budget_m, pairs=pairs,
                                subset=np.array([position_of[str(i)] for i in site_ids], dtype=np.int64),
                                point_node=point_node)
        reach[service] = area_access_per_10k(found.point_access, weights[service.value], residents.subdistrict,
                                             len(region.subdistricts))
    coverage = coverage_table(region.subdistricts, residents, minutes, policy.walk_minutes, weights_by_service=weights,
                              demand_by_service={s.value: d.total for s, d in demand.items()})
    subdistricts = classify_subdistricts(region, pharmacies, coverage, policy, e2sfca_per_10k=reach)
    counties = classify_counties(region, pharmacies, coverage, policy, subdistricts)
    labels = reuse.rasters if same_outlines and reuse.rasters.grid == grid else None
    rasters = ZoneRasters.build(grid, region, network, residents, minutes, surfaces, policy, labels_from=labels,
                                weights=weights)
    return Assessment(region=region, network=network, policy=policy, access=access, surfaces=surfaces,
                      residents=residents, pharmacies=pharmacies, coverage=coverage, subdistricts=subdistricts,
                      counties=counties, rasters=rasters, searched=tuple(searched), demand=demand,
                      resident_weights=weights, notes=worker_notes)


def search_horizon_m(policy: Policy) -> float:
    """The walk search's horizon, metres (the budget times :data:`HORIZON_FACTOR`), computed exactly as
    :func:`planning.access.service_access` does from minutes and speed."""
    return float(policy.walk_minutes * HORIZON_FACTOR) * policy.speed_m_per_min


def _reusable(previous: Assessment, service: Service, sites: Snap, site_ids: np.ndarray, grid: RasterGrid,
              policy: Policy, horizon_m: float) -> bool:
    """Whether ``previous``'s search and surface of ``service`` equal, once cut back to ``horizon_m``,
    what a new search from ``sites`` on ``grid`` would give."""
    old, surface = previous.access[service], previous.surfaces[service]
    return (old.max_distance_m >= horizon_m and surface.horizon_m >= horizon_m
            and surface.cell_m == policy.cell_m and surface.max_snap_m == policy.max_snap_m
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


def locate_pharmacies(region: Region, network: WalkNetwork, policy: Policy, *, snap: Snap | None = None
                      ) -> gpd.GeoDataFrame:
    """Pharmacies with their sub-district, county, distance to the street, R4 check, settlement status on
    ``policy.on`` and whether they serve under ``policy`` (:func:`planning.settlement.serves`). ``snap``:
    the region's pharmacies already snapped within ``policy.max_snap_m`` (row for row), else they are."""
    pharmacies = region.pharmacies.copy()
    joined = gpd.sjoin(pharmacies[["geometry"]], region.subdistricts[["code", "county_code", "geometry"]],
                       how="left", predicate="intersects")
    joined = joined[~joined.index.duplicated(keep="first")]
    pharmacies["subdistrict_code"] = joined["code"].reindex(pharmacies.index)
    pharmacies["county_code"] = joined["county_code"].reindex(pharmacies.index)
    snap = _snap_pharmacies(network, pharmacies, policy) if snap is None else snap
    pharmacies["snap_m"] = snap.access_m
    pharmacies["on_network"] = snap.on_network
    holds_any = pharmacies[[s.value for s in Service]].any(axis=1)
    if "cross_region_settlement" in pharmacies.columns:
        settles = rules.tri_state(pharmacies["cross_region_settlement"]).to_numpy()  # a blank cell stays unknown
        pharmacies["r4_ok"] = pd.array(~holds_any.to_numpy(), dtype="boolean") | settles
    else:
        pharmacies["r4_ok"] = pd.array([pd.NA] * len(pharmacies), dtype="boolean")
    status = settlement_status(pharmacies, policy.on)
    for column in status.columns:
        pharmacies[column] = status[column]
    pharmacies["serves"] = serves(pharmacies, policy)
    return pharmacies


def service_holders(pharmacies: gpd.GeoDataFrame, service: Service) -> gpd.GeoDataFrame:
    """The pharmacies that hold ``service`` and serve (``serves`` of :func:`locate_pharmacies`; a table
    without it: every holder): the one filter behind coverage, R1/R2, the counts and the B1 circles."""
    return pharmacies[_holds(pharmacies, service)]


def _holds(pharmacies: gpd.GeoDataFrame, service: Service) -> np.ndarray:
    """Bool per row: the filter of :func:`service_holders`."""
    held = pharmacies[service.value].astype(bool)
    if "serves" in pharmacies.columns:
        held &= pharmacies["serves"].astype(bool)
    return held.to_numpy(dtype=bool)


def _snap_pharmacies(network: WalkNetwork, pharmacies: gpd.GeoDataFrame, policy: Policy) -> Snap:
    return network.snap_lonlat(pharmacies.geometry.x.to_numpy(), pharmacies.geometry.y.to_numpy(),
                               max_snap_m=policy.max_snap_m)


def _sites(network: WalkNetwork, pharmacies: gpd.GeoDataFrame, held: np.ndarray, policy: Policy,
           snap: Snap | None) -> tuple[Snap, np.ndarray]:
    """The rows ``held`` snapped (from ``snap`` of every row when given) and their ids."""
    if snap is None:
        return _snap_pharmacies(network, pharmacies[held], policy), pharmacies["pharmacy_id"].to_numpy()[held]
    return snap.subset(held), pharmacies["pharmacy_id"].to_numpy()[held]


def serving_sites(network: WalkNetwork, pharmacies: gpd.GeoDataFrame, policy: Policy, *,
                  snap: Snap | None = None) -> tuple[Snap, np.ndarray]:
    """The pharmacies holding any service that serve, snapped as :func:`service_sites` snaps each service's
    (the same rule for the same point), and their ids: the union of every service's sites. ``snap``: every
    row of ``pharmacies`` already snapped within ``policy.max_snap_m``."""
    held = np.zeros(len(pharmacies), dtype=bool)
    for service in Service:
        held |= _holds(pharmacies, service)
    return _sites(network, pharmacies, held, policy, snap)


def service_sites(network: WalkNetwork, pharmacies: gpd.GeoDataFrame, service: Service,
                  policy: Policy, *, snap: Snap | None = None) -> tuple[Snap, np.ndarray]:
    """The pharmacies holding ``service`` that serve (:func:`service_holders`) snapped to the network
    (within ``policy.max_snap_m``; ``snap``: every row of ``pharmacies`` already snapped so), and their ids."""
    return _sites(network, pharmacies, _holds(pharmacies, service), policy, snap)


def classify_subdistricts(region: Region, pharmacies: gpd.GeoDataFrame, coverage: pd.DataFrame,
                          policy: Policy, *, e2sfca_per_10k: dict[Service, np.ndarray] | None = None
                          ) -> gpd.GeoDataFrame:
    """One row per (sub-district, service): counts, measures, class, R1 and R3 verdicts with rule ids.

    Densities: ``per_10k`` (pharmacies per 10,000 residents), ``per_10k_demand`` (per 10,000 of the
    service's demand, ``demand`` persons read from ``demand_basis``) and ``e2sfca_per_10k`` (capacity-
    weighted pharmacies within reach per 10,000 of that demand, :mod:`planning.capacity`; per service, in
    the region's order of sub-districts). The class reads the one its thresholds' ``density`` names;
    ``covered_share`` and ``uncovered`` are of the service's demand."""
    counts = _counts(pharmacies, "subdistrict_code")
    suspended = _suspended_counts(pharmacies, "subdistrict_code")
    coverage_rows = coverage.set_index(["code", "service"]).to_dict("index")
    unjudged = {s: rules.unjudged_rules(_missing_inputs(region), s, policy) for s in Service}
    known = region.population_known
    rows = []
    for position, sd in enumerate(region.subdistricts.itertuples()):
        street = sd.kind == SubdistrictKind.STREET.value
        for service in Service:
            cov = coverage_rows[(sd.code, service.value)]
            count = counts.get((sd.code, service.value), 0)
            demand = float(cov["population"])
            if not known:
                per_10k = np.nan
            elif sd.population > 0:
                per_10k = count / sd.population * 10_000
            else:  # nobody lives there: any pharmacy is a surplus, none is no density at all
                per_10k = float("inf") if count else 0.0
            row = {
                "code": sd.code, "name": sd.name, "kind": sd.kind, "county_code": sd.county_code,
                "service": service.value, "population": int(sd.population) if known else np.nan,
                "pharmacies": int(count), "suspended": suspended.get((sd.code, service.value), 0), "per_10k": per_10k,
                "residents_per_pharmacy": sd.population / count if count and known else np.nan,
                "covered_share": float(cov["covered_share"]) if known else np.nan,
                "uncovered": float(cov["uncovered"]) if known else np.nan,
                "street_km": float(cov["street_km"]), "street_covered_share": float(cov["street_covered_share"]),
                "demand": demand if known else np.nan, "demand_basis": policy.demand[service],
                "per_10k_demand": (count / demand * 10_000 if demand > 0 else (float("inf") if count else 0.0))
                if known else np.nan,
                "e2sfca_per_10k": float(e2sfca_per_10k[service][position]) if e2sfca_per_10k and known else np.nan,
            }
            if not _service_known(region, service):  # no column: its pharmacies and coverage are unknown
                row.update(pharmacies=np.nan, per_10k=np.nan, residents_per_pharmacy=np.nan, covered_share=np.nan,
                           uncovered=np.nan, street_covered_share=np.nan, per_10k_demand=np.nan, e2sfca_per_10k=np.nan)
            unknown = unjudged[service]
            basis = DENSITY_BASES[policy.thresholds[service].density]
            row.update(_class_columns(row[basis], row["covered_share"], count, service, policy, unknown,
                                      density_column=basis))
            row["class_rule"] = "S" if row["class"] is not None else None
            row["r1_ok"] = None if "R1" in unknown else rules.r1_met(service, urban_street=street, count=count,
                                                                     policy=policy)
            row["r1_shortfall"] = None if row["r1_ok"] is None else int(not row["r1_ok"])
            row["r3_ok"] = None if "R3" in unknown else rules.r3_met(service, covered_share=row["covered_share"],
                                                                     policy=policy)
            row["r3_uncovered"] = None if row["r3_ok"] is None else row["uncovered"]
            row["rule_ids"] = _rule_ids(row)
            row["not_judged"] = ",".join(unknown)
            rows.append(row)
    table = _tri_state_columns(pd.DataFrame(rows), ["r1_ok", "r3_ok"])
    geometry = region.subdistricts.set_index("code").geometry
    return gpd.GeoDataFrame(table, geometry=geometry.reindex(table["code"]).to_numpy(), crs=WGS84)


def classify_counties(region: Region, pharmacies: gpd.GeoDataFrame, coverage: pd.DataFrame,
                      policy: Policy, subdistricts: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """One row per (county, service): counts, roll-up class, R2 and the fund rules B3/B4. Densities and
    shares as in :func:`classify_subdistricts`, summed over the county's sub-districts (E2SFCA: the
    demand-weighted mean of their ``e2sfca_per_10k`` in ``subdistricts``, NaN without it)."""
    counts = _counts(pharmacies, "county_code")
    suspended = _suspended_counts(pharmacies, "county_code")
    sd_county = region.subdistricts.set_index("code")["county_code"]
    residents = region.subdistricts.groupby("county_code")["population"].sum()
    cov = coverage.assign(county_code=coverage["code"].map(sd_county))
    rolled = cov.groupby(["county_code", "service"])[["population", "covered"]].sum()
    reach: dict = {}
    if subdistricts is not None:
        known_reach = subdistricts[subdistricts["e2sfca_per_10k"].notna()]
        weighted = (known_reach["e2sfca_per_10k"] * known_reach["demand"]).groupby(
            [known_reach["county_code"], known_reach["service"]]).sum()
        total = known_reach.groupby(["county_code", "service"])["demand"].sum()
        reach = (weighted / total.where(total > 0)).to_dict()
    unjudged = {s: rules.unjudged_rules(_missing_inputs(region), s, policy) for s in Service}
    fund_known = "B3" not in unjudged[Service.PERSONAL_ACCOUNT]  # the fund table covers every service
    known = region.population_known
    rows = []
    for county in region.counties.itertuples():
        fund = (county.fund_deficit_last_year, county.fund_deficit_forecast, county.fund_warning_letter)
        listed = fund_known and not any(pd.isna(v) for v in fund)  # NA: the county is not in the fund table
        b3 = policy.applies("B3") and bool(fund[0]) if listed else None
        b4 = policy.applies("B4") and any(bool(v) for v in fund) if listed else None
        for service in Service:
            unknown = unjudged[service]
            demand, covered = rolled.loc[(county.code, service.value)] if (county.code, service.value) in rolled.index else (0, 0)
            population = float(residents.get(county.code, 0))
            count = counts.get((county.code, service.value), 0)
            per_10k = count / population * 10_000 if population else 0.0
            share = covered / demand if demand else 0.0
            row = {"code": county.code, "name": county.name, "service": service.value,
                   "population": int(population) if known else np.nan, "pharmacies": int(count),
                   "suspended": suspended.get((county.code, service.value), 0),
                   "per_10k": per_10k if known else np.nan, "demand": float(demand) if known else np.nan,
                   "demand_basis": policy.demand[service],
                   "per_10k_demand": count / demand * 10_000 if demand and known else np.nan,
                   "e2sfca_per_10k": reach.get((county.code, service.value), np.nan) if known else np.nan,
                   "covered_share": share if known else np.nan, "fund_b3": b3, "fund_b4": b4}
            if not _service_known(region, service):  # no column: its pharmacies and coverage are unknown
                row.update(pharmacies=np.nan, per_10k=np.nan, covered_share=np.nan, per_10k_demand=np.nan,
                           e2sfca_per_10k=np.nan)
            basis = DENSITY_BASES[policy.thresholds[service].density]
            row.update(_class_columns(row[basis], row["covered_share"], count, service, policy, unknown,
                                      density_column=basis))
            row["r2_ok"] = None if "R2" in unknown else rules.r2_met(service, count=count, policy=policy)
            row["r2_shortfall"] = None if row["r2_ok"] is None else int(not row["r2_ok"])
            ids = [r for r, hit in (("R2", row["r2_ok"] is False), ("B3", b3), ("B4", b4)) if hit]
            if row["class"] is not None:
                ids.append("S")
            row["rule_ids"] = ",".join(ids)
            row["not_judged"] = ",".join(unknown)
            rows.append(row)
    table = _tri_state_columns(pd.DataFrame(rows), ["r2_ok", "fund_b3", "fund_b4"])
    geometry = region.counties.set_index("code").geometry
    return gpd.GeoDataFrame(table, geometry=geometry.reindex(table["code"]).to_numpy(), crs=WGS84)


def _service_known(region: Region, service: Service) -> bool:
    """Whether the pharmacy sheet said which pharmacies hold ``service`` (False: it had no such column,
    so the tables give NaN for the service's pharmacies, densities and shares)."""
    return f"service:{service.value}" not in _missing_inputs(region)


def _missing_inputs(region: Region) -> tuple[str, ...]:
    """The inputs the region's files lacked (keys of ``planning.completeness.RULES_DISABLED_BY``)."""
    return region.completeness.missing if region.completeness is not None else ()


def _class_columns(per_10k: float, covered_share: float, count: int, service: Service, policy: Policy,
                   unknown=(), *, density_column: str = "per_10k") -> dict:
    """The class columns of one area row: class, deciding measure and its reason in both languages (None
    where S does not apply, or cannot be judged: ``unknown`` holds the unjudged rule ids). ``per_10k`` is
    the density the thresholds count, held in the row's ``density_column`` (named as the measure)."""
    if not rules.classifies(service, policy) or "S" in unknown:
        return {"class": None, "class_measure": None, "class_reason": None, "class_reason_zh": None}
    found = rules.classify(per_10k, covered_share, count, policy.thresholds[service])
    measure = density_column if found.measure == "per_10k" else found.measure
    return {"class": found.name, "class_measure": measure, "class_reason": found.reason.en,
            "class_reason_zh": found.reason.zh}


def _tri_state_columns(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Requirement outcomes as nullable ``boolean`` columns (``pd.NA``: the rule does not apply)."""
    for column in columns:
        table[column] = rules.tri_state(table[column]).to_numpy()
    return table


def _concat(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=WGS84)


def region_grid(region: Region, network: WalkNetwork, policy: Policy) -> RasterGrid:
    """The raster covering the network and every sub-district, padded by the snap distance (a place that
    far from a street still has a walk time) and the uncovered area's width."""
    sd_bounds = region.subdistricts.to_crs(network.crs).total_bounds
    net_min, net_max = network.node_xy.min(axis=0), network.node_xy.max(axis=0)
    bounds = (min(sd_bounds[0], net_min[0]), min(sd_bounds[1], net_min[1]),
              max(sd_bounds[2], net_max[0]), max(sd_bounds[3], net_max[1]))
    return RasterGrid.covering(bounds, cell_m=policy.cell_m, pad_cells=int(max(policy.access_width_m, policy.max_snap_m) // policy.cell_m) + 1)


def _counts(pharmacies: gpd.GeoDataFrame, by: str) -> dict[tuple[str, str], int]:
    """Serving holders per (area code in column ``by``, service value): :func:`service_holders` counted
    by area (the codes grouped as a plain column, not a filtered copy of the layer)."""
    codes = pharmacies[by].to_numpy()
    counts: dict[tuple[str, str], int] = {}
    for service in Service:
        grouped = pd.Series(codes[_holds(pharmacies, service)]).value_counts(dropna=True)
        counts.update({(code, service.value): int(n) for code, n in grouped.items()})
    return counts


def _suspended_counts(pharmacies: gpd.GeoDataFrame, by: str) -> dict[tuple[str, str], int]:
    """Holders whose settlement is suspended per (area code, service value), counted as serving or not."""
    if "settlement" not in pharmacies.columns:
        return {}
    suspended = (pharmacies["settlement"] == SUSPENDED).to_numpy(dtype=bool, na_value=False)
    codes = pharmacies[by].to_numpy()
    counts: dict[tuple[str, str], int] = {}
    for service in Service:
        held = pharmacies[service.value].astype(bool).to_numpy(dtype=bool, na_value=False)
        grouped = pd.Series(codes[suspended & held]).value_counts(dropna=True)
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
