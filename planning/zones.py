"""Zones of one assessment: the rules of :mod:`planning.rules` applied to every cell of one raster grid.

:class:`ZoneRasters` holds the masks of one assessment on its grid (network CRS, metres): each service's
circles (walk surface within the budget) and uncovered residential area, and the sub-district and
county label rasters. :func:`zone_parts` evaluates :func:`planning.rules.rule_flags` at every cell — the
same rule code the designation check runs at a clicked point — and keeps one :class:`ZonePart` per
rule (blocked: B1-B4, priority: R1-R3) and per soft block / gap pair that meet (review).
:func:`build_zones` turns parts into polygons (EPSG:4326): rules decided for whole areas (B2-B4, R1, R2)
are exact unions of the area boundaries, B1 is the circle polygon, R3 and review are their cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely

from planning import rules
from planning.coverage import Residents
from planning.geometry import polygonal_parts, union_of
from planning.isochrones import RasterGrid, points_mask, polygonize_mask
from planning.memo import Memo
from planning.model import WGS84, Region, Service
from planning.policy import Policy


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


@dataclass(frozen=True, eq=False)
class ZoneRasters:
    """Masks of one assessment on one grid (network CRS ``crs``, metres): circles and uncovered residents
    per service, sub-district and county labels (1 + row position in the region's layers, 0 outside), so
    zone algebra is cell-wise boolean logic. Masks and polygons are built when first asked for and kept in
    :attr:`memo` (a map of one service never pays for the others)."""

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
    subdistrict_county: np.ndarray  # int: position in county_codes of each sub-district's county, -1 unknown
    memo: Memo = field(default_factory=Memo, repr=False)

    @classmethod
    def build(cls, grid: RasterGrid, region: Region, network, residents: Residents, minutes: dict,
              surfaces: dict, policy: Policy, *, labels_from: ZoneRasters | None = None,
              weights: dict | None = None) -> ZoneRasters:
        """``minutes``: service value -> walk minutes of each resident point. ``labels_from``: an earlier
        build on the same grid and outlines, whose label rasters are taken. ``weights``: service value ->
        demand weight of each resident point (persons beyond the budget are counted with it; default the
        residents' own weights)."""
        # where someone lives beyond the budget; with the population unknown, every street point beyond it
        # (and where someone works, for a service whose demand counts the workplace points)
        lived_in = residents.persons > 0 if region.population_known else residents.street_m > 0
        working = residents.worker_points if weights is not None and residents.worker_points.any() else None
        beyond = {service: ~(resident_min <= policy.walk_minutes)
                  & (lived_in if working is None else lived_in | (working & (weights[service] > 0)))
                  for service, resident_min in minutes.items()}
        if labels_from is None:
            sd = region.subdistricts.to_crs(network.crs)
            counties = region.counties.to_crs(network.crs)
            position = {code: i for i, code in enumerate(counties["code"])}
            labels = {"subdistrict_labels": grid.rasterize(sd.geometry, range(1, len(sd) + 1)),
                      "subdistrict_codes": sd["code"].to_numpy(),
                      "county_labels": grid.rasterize(counties.geometry, range(1, len(counties) + 1)),
                      "county_codes": counties["code"].to_numpy(),
                      "subdistrict_county": np.array([position.get(c, -1) for c in sd["county_code"]], dtype=np.int64)}
        else:
            labels = {k: getattr(labels_from, k) for k in ("subdistrict_labels", "subdistrict_codes", "county_labels",
                                                           "county_codes", "subdistrict_county")}
        # the cells' sub-district and county depend on the labels alone: shared with the earlier build
        memo = Memo() if labels_from is None else Memo.holding({"cell_areas": labels_from.cell_areas()})
        return cls(grid=grid, crs=network.crs, budget_m=policy.budget_m, cell_m=policy.cell_m,
                   access_width_m=policy.access_width_m, surfaces=surfaces, residents=residents, beyond=beyond,
                   uncovered_persons={s: float((residents.persons if weights is None else weights[s])[b].sum())
                                      if region.population_known else np.nan for s, b in beyond.items()},
                   memo=memo, **labels)

    def uncovered_mask(self, service: Service) -> np.ndarray:
        """Cells within the access width of a resident point beyond the budget."""
        service = Service(service)
        return self.memo.get(("uncovered_mask", service), lambda: points_mask(
            self.residents.xy[self.beyond[service.value]], cell_m=self.cell_m, width_m=self.access_width_m,
            grid=self.grid)[0])

    def circle_mask(self, service: Service) -> np.ndarray:
        """Cells whose walk surface is within the budget (the drawn circles and zone B1)."""
        return self.surfaces[Service(service)].distance_m <= np.float32(self.budget_m)

    def cell_areas(self) -> tuple[np.ndarray, np.ndarray]:
        """Sub-district and county position (row in the region's layers) of every cell, -1 outside; a cell
        in a sub-district belongs to that sub-district's county (as a point does, :func:`rules.county_of`).
        int32 rasters (half the memory and reads of int64 at millions of cells)."""
        def build():
            subdistrict = self.subdistrict_labels.astype(np.int32) - 1
            return subdistrict, rules.county_of(subdistrict, self.county_labels.astype(np.int32) - 1,
                                                self.subdistrict_county).astype(np.int32)
        return self.memo.get("cell_areas", build)

    def at_points(self, mask: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """The value of a grid mask at each point (k x 2, metres, network CRS); False off the grid."""
        rows, cols = self.grid.cells(np.asarray(xy, dtype=float).reshape(-1, 2))
        on = rows >= 0
        out = np.zeros(len(rows), dtype=bool)
        out[on] = mask[rows[on], cols[on]]
        return out

    def polygon(self, mask: np.ndarray) -> shapely.MultiPolygon:
        return polygonize_mask(mask, self.grid.transform)

    def part_polygon(self, part: ZonePart, service: Service) -> shapely.MultiPolygon:
        """A zone part's polygon (network CRS): its boundary union, or its cells (B1: the circle polygon)."""
        if part.boundary is not None:
            return part.boundary
        return self.circle_polygon(service) if part.rule_ids == "B1" else self.polygon(part.mask)

    def circle_polygon(self, service: Service) -> shapely.MultiPolygon:
        """The union of one service's circles (network CRS), polygonised once for the circle layer and B1."""
        service = Service(service)
        return self.memo.get(("circle_polygon", service), lambda: self.polygon(self.circle_mask(service)))

    def circles(self, service: Service) -> gpd.GeoDataFrame:
        """One row: the union of one service's circles (``minutes``, ``area_km2``), EPSG:4326."""
        service = Service(service)
        polygon = self.circle_polygon(service)
        row = {"service": service.value, "minutes": self.budget_m / self.surfaces[service].speed_m_per_min,
               "area_km2": polygon.area / 1e6, "geometry": polygon}
        return gpd.GeoDataFrame([row], geometry="geometry", crs=self.crs).to_crs(WGS84)

    def uncovered(self, service: Service) -> gpd.GeoDataFrame:
        """One row: the residential area beyond the budget with its ``persons``, EPSG:4326."""
        service = Service(service)
        row = {"service": service.value, "persons": self.uncovered_persons[service.value],
               "geometry": self.polygon(self.uncovered_mask(service))}
        return gpd.GeoDataFrame([row], geometry="geometry", crs=self.crs).to_crs(WGS84)


def zone_parts(region: Region, crs: str, area: rules.AreaFacts, layers: ZoneRasters, policy: Policy,
               service: Service) -> list[ZonePart]:
    """The blocked, priority and review zones of one service as cells and boundaries (network CRS
    ``crs``), from :func:`planning.rules.rule_flags` at every cell. Zones with no cell are left out;
    review zones need more than one cell."""
    service = Service(service)
    subdistrict, county = layers.cell_areas()
    cells = rules.PlaceFacts(subdistrict=subdistrict, county=county, inside_circle=layers.circle_mask(service),
                             uncovered_residential=layers.uncovered_mask(service))
    flags = rules.rule_flags(area, cells, policy)
    boundaries = _area_boundaries(region, crs, area, policy)
    parts = [ZonePart("blocked" if rule in rules.BLOCK_RULES else "priority", rule, flags[rule],
                      boundaries.get(rule)) for rule in (*rules.BLOCK_RULES, *rules.GAP_RULES)]
    parts = [part for part in parts if part.mask.any()]
    parts += [ZonePart("review", f"{block},{gap}", mask, None)
              for block, gap, mask in rules.review_pairs(flags) if mask.sum() > 1]
    return parts


#: Code of each verdict in :func:`cell_decisions`: 1 + its position in :data:`planning.rules.VERDICTS`
#: (0: outside every sub-district, nothing drawn).
DECISION_CODES: dict[str, int] = {name: i + 1 for i, name in enumerate(rules.VERDICTS)}


def cell_decisions(area: rules.AreaFacts, layers: ZoneRasters, policy: Policy, service: Service) -> np.ndarray:
    """The verdict a click would read at every cell of one service, as :data:`DECISION_CODES` (uint8 on
    ``layers.grid``): the flags of :func:`planning.rules.rule_flags` at the cells (as :func:`zone_parts`),
    then "not judged" where the click is (:func:`planning.screening.read_places`): the centre off the
    network or on a piece without the service's sites (``WalkSurface.judgeable``), or missing inputs
    leaving a rule unknown (:func:`planning.rules.missing_input`). Outside every sub-district: 0."""
    return cell_verdicts(area, layers, policy, service, with_rule_sets=False)[0]


#: Bits of a cell's rule set (:func:`cell_verdicts`): inside a sub-district, not judged, then one bit
#: per block and gap rule in the order of :data:`planning.rules.BLOCK_RULES` and ``GAP_RULES``.
INSIDE_BIT, UNJUDGED_BIT = 1, 2
RULE_BITS: dict[str, int] = {rule: 4 << i for i, rule in enumerate((*rules.BLOCK_RULES, *rules.GAP_RULES))}


def cell_verdicts(area: rules.AreaFacts, layers: ZoneRasters, policy: Policy, service: Service, *,
                  with_rule_sets: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`cell_decisions` and, from the same flags, each cell's rule set (uint16 on ``layers.grid``,
    :data:`RULE_BITS` of the rules hitting it, :data:`UNJUDGED_BIT` where it is not judged,
    :data:`INSIDE_BIT` inside a sub-district; 0 outside): what hovering the decision map names.
    :func:`describe_rule_sets` reads a rule set back."""
    service = Service(service)
    subdistrict, county = layers.cell_areas()
    cells = rules.PlaceFacts(subdistrict=subdistrict.ravel(), county=county.ravel(),
                             inside_circle=layers.circle_mask(service).ravel(),
                             uncovered_residential=layers.uncovered_mask(service).ravel())
    flags = rules.rule_flags(area, cells, policy)
    judgeable = layers.surfaces[service].judgeable
    unjudged = rules.missing_input(area, flags, cells.county)
    if judgeable is not None:
        unjudged = unjudged | ~judgeable.ravel()
    outside = cells.subdistrict < 0
    codes = rules.verdict_codes(flags, unjudged).astype(np.uint8) + 1
    codes[outside] = 0
    if not with_rule_sets:
        return codes.reshape(layers.grid.shape), None
    rule_sets = np.where(outside, 0, INSIDE_BIT).astype(np.uint16)
    rule_sets[unjudged & ~outside] |= UNJUDGED_BIT
    for rule, bit in RULE_BITS.items():
        rule_sets[flags[rule] & ~outside] |= bit
    return codes.reshape(layers.grid.shape), rule_sets.reshape(layers.grid.shape)


def describe_rule_sets(values) -> dict[int, tuple[str, tuple[str, ...]]]:
    """Each rule set of :func:`cell_verdicts` in ``values`` (0 excluded) as its verdict (one of
    :data:`planning.rules.VERDICTS`, by :func:`planning.rules.verdict_codes`: the same precedence as the
    cells' colours) and the rule ids hitting it (blocks, then gaps)."""
    values = np.unique(np.asarray(values, dtype=np.uint16))
    values = values[(values & INSIDE_BIT) > 0]
    flags = {rule: (values & bit) > 0 for rule, bit in RULE_BITS.items()}
    verdicts = np.asarray(rules.VERDICTS)[rules.verdict_codes(flags, (values & UNJUDGED_BIT) > 0)]
    fired = rules.fired(flags) if len(values) else []
    return {int(v): (str(verdict), tuple(ids)) for v, verdict, ids in zip(values, verdicts, fired)}


def _area_boundaries(region: Region, crs: str, area: rules.AreaFacts, policy: Policy) -> dict[str, shapely.Geometry]:
    """Exact boundary unions of the rules decided for whole areas (:data:`planning.rules.AREA_RULES`):
    the same :func:`~planning.rules.rule_flags` asked once per sub-district and once per county."""
    n_sd, n_ct = len(area.subdistrict_codes), len(area.county_codes)
    none = np.zeros(n_sd + n_ct, dtype=bool)
    per_area = rules.PlaceFacts(
        subdistrict=np.concatenate([np.arange(n_sd), np.full(n_ct, -1)]).astype(np.int64),
        county=np.concatenate([area.subdistrict_county, np.arange(n_ct)]).astype(np.int64),
        inside_circle=none, uncovered_residential=none)
    flags = rules.rule_flags(area, per_area, policy)
    geometry = {"subdistrict": region.subdistricts.set_index("code").geometry.to_crs(crs),
                "county": region.counties.set_index("code").geometry.to_crs(crs)}
    out = {}
    for rule, level in rules.AREA_RULES.items():
        hits = flags[rule][:n_sd] if level == "subdistrict" else flags[rule][n_sd:]
        codes = (area.subdistrict_codes if level == "subdistrict" else area.county_codes)[hits]
        out[rule] = union_of(geometry[level], codes)
    return out


def build_zones(layers: ZoneRasters, parts: list[ZonePart], service: Service) -> gpd.GeoDataFrame:
    """Blocked, priority and review polygons of one service, one feature per rule (EPSG:4326), from its
    :func:`zone_parts`. Overlaps of less than one cell are dropped."""
    service = Service(service)
    features = [{"service": service.value, "zone": part.zone, "rule_ids": part.rule_ids,
                 "geometry": polygonal_parts(layers.part_polygon(part, service))} for part in parts]
    zones = gpd.GeoDataFrame(features, columns=["service", "zone", "rule_ids", "geometry"], geometry="geometry",
                             crs=layers.crs)
    return zones.to_crs(WGS84)
