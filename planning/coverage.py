"""Population surface and covered shares: who lives within the walk budget of each service.

Residents are weighted points on the walking network. By default each sub-district's resident insured
population is spread over its walkable streets by length (a point every ``spacing_m`` along every
edge, weighted by the length it stands for); a user-supplied layer of weighted points (building
centroids, population-grid cells) can replace that. A resident's walk time to the nearest site of a
service is the exact point query of :class:`planning.access.ServiceAccess`, so coverage needs no
search beyond the one per service.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planning.access import ServiceAccess
from planning.geometry import first_containing
from planning.network import DEFAULT_MAX_SNAP_M, Snap, WalkNetwork

#: Default spacing of resident points along the streets, metres.
DEFAULT_RESIDENT_SPACING_M = 25.0


@dataclass(frozen=True, eq=False)
class Residents:
    """Weighted resident points on the network.

    ``snap`` places each point on an edge; ``persons`` is its weight (residents it stands for);
    ``subdistrict`` is the row position in the sub-district layer (-1: outside every sub-district,
    such points carry no weight); ``xy`` is the point in the network CRS, metres; ``street_m`` is
    the street length each point stands for (metres; 0 for points from a building or grid layer).
    ``workers`` is the number of people working at each point (persons; None: nobody): the points
    :func:`planning.workers.place_workers` appends for the worker layer have ``persons`` 0, ``street_m``
    0 and their workers here; a resident point has none.
    """

    snap: Snap
    persons: np.ndarray
    subdistrict: np.ndarray
    xy: np.ndarray
    street_m: np.ndarray
    workers: np.ndarray | None = None

    def __post_init__(self):
        if self.workers is None:
            object.__setattr__(self, "workers", np.zeros(len(self.persons)))

    def __len__(self) -> int:
        return len(self.persons)

    @property
    def worker_points(self) -> np.ndarray:
        """Boolean per point: a workplace point (appended for the worker layer), not a resident point."""
        return self.workers > 0

    def residents_only(self) -> Residents:
        """The resident points alone (this object when it holds no workplace point)."""
        keep = ~self.worker_points
        if keep.all():
            return self
        return Residents(snap=self.snap.subset(keep), persons=self.persons[keep], subdistrict=self.subdistrict[keep],
                         xy=self.xy[keep], street_m=self.street_m[keep])


def residents_along_streets(
    network: WalkNetwork,
    subdistricts: gpd.GeoDataFrame,
    *,
    spacing_m: float = DEFAULT_RESIDENT_SPACING_M,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    street_m: np.ndarray | None = None,
) -> Residents:
    """Spread each sub-district's ``population`` over its walkable streets by length.

    Every edge is cut into pieces of at most ``spacing_m`` metres; a point at each piece's middle
    stands for ``population x piece length / street length of its sub-district`` residents. Points on
    a tunnel, a bridge, another level or a small piece are placed by the snap rule
    (:meth:`WalkNetwork.place_street_points`): on the nearest ground street of the connected city within
    ``max_snap_m`` when there is one (their access walk counted), so nobody lives in a tunnel.
    Sub-districts holding no street get no point: :func:`coverage_table` reports them with
    ``street_km = 0`` and their residents as not covered.

    ``street_m`` (metres per sub-district, in the layer's order) is the street length to divide by when
    ``network`` is a part of a larger one (a tile, :mod:`planning.tiles`) and a sub-district reaches
    beyond it: :func:`street_length_by_subdistrict` measured where the sub-district lies whole.
    """
    def street_points():  # the points and their snaps depend on the network only: kept on it
        edge, piece, offset = _street_pieces(network, spacing_m)
        snap = network.place_street_points(edge, offset, max_snap_m=max_snap_m)
        # where no point moved, the snap holds these very arrays and the positions are the street points'
        kept = snap.edge is edge and snap.offset_m is offset
        return edge, piece, snap.snapped_xy if kept else network.points_at(edge, offset), snap

    edge, piece, xy, snap = network.memo.get(("coverage.street_points", float(spacing_m), float(max_snap_m)),
                                             street_points)
    polygons = subdistricts.to_crs(network.crs).geometry.to_numpy()
    subdistrict = first_containing(polygons, xy)
    street_length = _street_length(subdistrict, piece, len(polygons)) if street_m is None else np.asarray(street_m, float)
    population = subdistricts["population"].to_numpy(dtype=float)
    persons = np.zeros(len(edge))
    inside = subdistrict >= 0
    persons[inside] = population[subdistrict[inside]] * piece[inside] / street_length[subdistrict[inside]]
    return Residents(snap=snap, persons=persons, subdistrict=subdistrict, xy=xy, street_m=piece)


def street_length_by_subdistrict(network: WalkNetwork, subdistricts: gpd.GeoDataFrame, *,
                                 spacing_m: float = DEFAULT_RESIDENT_SPACING_M) -> np.ndarray:
    """Walkable street length (metres) in each sub-district, as :func:`residents_along_streets`
    measures it (its pieces' middles inside the polygon), in the layer's order."""
    edge, piece, offset = _street_pieces(network, spacing_m)
    xy = network.points_at(edge, offset)
    polygons = subdistricts.to_crs(network.crs).geometry.to_numpy()
    return _street_length(first_containing(polygons, xy), piece, len(polygons))


def _street_pieces(network: WalkNetwork, spacing_m: float):
    """Every edge cut into pieces of at most ``spacing_m``: (edge, piece length, middle offset)."""
    counts = np.maximum(np.ceil(network.edge_length / spacing_m).astype(np.int64), 1)
    edge = np.repeat(np.arange(network.n_edges), counts)
    rank = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    piece = network.edge_length[edge] / counts[edge]
    offset = (rank + 0.5) * piece
    return edge, piece, offset


def _street_length(subdistrict: np.ndarray, piece: np.ndarray, n_areas: int) -> np.ndarray:
    inside = subdistrict >= 0
    return np.bincount(subdistrict[inside], weights=piece[inside], minlength=n_areas)


def residents_from_points(
    network: WalkNetwork,
    subdistricts: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    *,
    persons_column: str = "persons",
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> Residents:
    """Residents from weighted points (building centroids or grid-cell centres, any CRS).

    Points off the network keep their weight but get no walk time (counted as not covered).
    """
    projected = points.to_crs(network.crs)
    centroids = projected.geometry.centroid
    xy = shapely.get_coordinates(centroids.to_numpy())
    snap = network.snap(xy, max_snap_m=max_snap_m)
    polygons = subdistricts.to_crs(network.crs).geometry.to_numpy()
    return Residents(snap=snap, persons=projected[persons_column].to_numpy(dtype=float),
                     subdistrict=first_containing(polygons, xy), xy=xy, street_m=np.zeros(len(xy)))


def resident_minutes(access: ServiceAccess, residents: Residents) -> np.ndarray:
    """Walk time (minutes) from every resident point to the nearest site (``inf`` beyond the horizon,
    ``nan`` off the network)."""
    return access.nearest_distance(residents.snap) / access.speed_m_per_min


def coverage_table(
    subdistricts: gpd.GeoDataFrame,
    residents: Residents,
    minutes_by_service: dict[str, np.ndarray],
    budget_minutes: float,
    *,
    weights_by_service: dict[str, np.ndarray] | None = None,
    demand_by_service: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Covered demand per sub-district and service.

    A service's demand is its residents by default; ``weights_by_service`` (service value -> weight of
    each resident point, persons) and ``demand_by_service`` (-> demand per sub-district, persons) give
    each service its own (:mod:`planning.demand`). Returns one row per (sub-district ``code``,
    ``service``) with ``population`` (the service's demand, persons),
    ``covered`` (persons within ``budget_minutes``), ``covered_share`` (0-1; 0 where no resident
    could be placed), ``uncovered`` (persons), ``street_km`` (walkable street length in the
    sub-district, km), ``street_covered_km`` (of it, km within ``budget_minutes``) and
    ``street_covered_share`` (0-1; NaN without streets): coverage by street length, which needs no
    population (street-spread residents only; 0 km for points from a building or grid layer).
    """
    n = len(subdistricts)
    inside = residents.subdistrict >= 0
    # Sums over the points of each sub-district as weighted counts over all points, a point left out
    # weighing 0 (the same sums, term for term; no copies of the millions of masked points per service)
    area = np.where(inside, residents.subdistrict, 0)

    def per_area(weights: np.ndarray, where: np.ndarray) -> np.ndarray:
        return np.bincount(area, weights=np.where(where, weights, 0.0), minlength=n)[:n]

    street_km = per_area(residents.street_m, inside) / 1000
    rows = []
    for service, minutes in minutes_by_service.items():
        weights = residents.persons if weights_by_service is None else weights_by_service[service]
        population = subdistricts["population"].to_numpy(dtype=float) if demand_by_service is None \
            else np.asarray(demand_by_service[service], dtype=float)
        placed = per_area(weights, inside)
        ok = inside & (minutes <= budget_minutes)
        covered = np.minimum(per_area(weights, ok), population)
        share = np.divide(covered, population, out=np.zeros(n), where=population > 0)
        street_covered_km = per_area(residents.street_m, ok) / 1000
        rows.append(pd.DataFrame({
            "code": subdistricts["code"].to_numpy(), "service": service, "population": population,
            "placed": placed, "covered": covered, "covered_share": share,
            "uncovered": population - covered, "street_km": street_km, "street_covered_km": street_covered_km,
            "street_covered_share": np.divide(street_covered_km, street_km, out=np.full(n, np.nan),
                                              where=street_km > 0),
        }))
    return pd.concat(rows, ignore_index=True)
