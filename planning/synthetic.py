"""Synthetic street networks of any size, for tests, benchmarks and scale experiments."""

from __future__ import annotations

import numpy as np

from planning.network import WalkNetwork

#: A UTM zone over eastern China; synthetic networks are placed at its false origin plus an offset.
SYNTHETIC_CRS = "EPSG:32650"


def street_grid(
    nodes_per_side: int,
    *,
    spacing_m: float = 60.0,
    jitter_m: float = 8.0,
    drop_fraction: float = 0.08,
    seed: int = 0,
) -> WalkNetwork:
    """A jittered square street grid with some blocks merged (edges dropped), in EPSG:32650 metres.

    ``nodes_per_side ** 2`` nodes; each node moved by up to ``jitter_m``; ``drop_fraction`` of the
    edges removed at random (dead ends and larger blocks, possibly a few isolated nodes, all kept).
    ``nodes_per_side=550`` gives the 302,500-node benchmark case (about 33 x 33 km at 60 m).
    """
    rng = np.random.default_rng(seed)
    side = int(nodes_per_side)
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    xy = np.column_stack([jj.ravel(), ii.ravel()]).astype(float) * spacing_m
    xy += rng.uniform(-jitter_m, jitter_m, size=xy.shape)
    xy += np.array([400_000.0, 3_500_000.0])
    index = ii * side + jj
    u = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    v = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    keep = rng.random(len(u)) >= drop_fraction
    return WalkNetwork.from_arrays(xy, u[keep], v[keep], crs=SYNTHETIC_CRS,
                                   edge_highway=np.full(int(keep.sum()), "residential"),
                                   source=f"synthetic grid {side}x{side}")


def synthetic_region(
    network: WalkNetwork,
    *,
    counties_per_side: int = 2,
    subdistricts_per_county_side: int = 2,
    n_pharmacies: int = 100,
    persons_per_km2: float = 8_000.0,
    service_shares: tuple[float, float, float, float] = (1.0, 0.5, 0.35, 0.03),
    seed: int = 0,
):
    """A Region over a synthetic network: square counties cut into square sub-districts, pharmacies on
    random edges. Service shares are the probability of holding personal account, outpatient pooling,
    chronic disease and dual channel. Sub-districts in the first county are streets, the rest towns.
    Codes use the fictional prefix 98. Returns a :class:`planning.model.Region` in EPSG:4326."""
    import shapely

    rng = np.random.default_rng(seed)
    (x0, y0), (x1, y1) = network.node_xy.min(axis=0) - 1, network.node_xy.max(axis=0) + 1
    counties, subdistricts = _square_areas((x0, y0, x1, y1), counties_per_side, subdistricts_per_county_side,
                                           persons_per_km2, street_county=lambda ci: ci == 0)
    edges = rng.integers(0, network.n_edges, n_pharmacies)
    along = rng.uniform(0, 1, n_pharmacies) * network.edge_length[edges]
    spots = shapely.points(network.points_at(edges, along))  # no LineStrings: a million-node grid would hold 385 MB
    return _region(counties, subdistricts, _pharmacy_table(spots, rng, service_shares), network.crs)


def write_synthetic_province(
    folder,
    *,
    counties_per_side: int = 6,
    county_nodes_side: int = 472,
    spacing_m: float = 60.0,
    jitter_m: float = 8.0,
    drop_fraction: float = 0.08,
    subdistricts_per_county_side: int = 3,
    n_pharmacies: int = 50_000,
    persons_per_km2: float = 2_000.0,
    service_shares: tuple[float, float, float, float] = (1.0, 0.5, 0.35, 0.03),
    seed: int = 0,
):
    """A synthetic province written county by county, so the generator holds one county at a time: a
    jittered street grid of ``(counties_per_side * county_nodes_side) ** 2`` nodes (EPSG:32650 metres,
    ``spacing_m`` apart) into a network store at ``folder / "network"`` (:mod:`planning.netstore`), and
    its Region (returned, EPSG:4326): square counties of ``subdistricts_per_county_side ** 2`` square
    sub-districts (those of every sixth county urban streets, the rest towns) with ``persons_per_km2``
    residents, and ``n_pharmacies`` pharmacies spread uniformly. Node positions and dropped edges are
    hashes of their ids, so every county sees its neighbours' border nodes where they are.

    The defaults give the benchmark province: 36 counties, 8,020,224 nodes, 50,000 pharmacies."""
    from pathlib import Path

    import shapely

    from planning.netstore import EdgeChunk, write_store_chunks

    rng = np.random.default_rng(seed)
    side = counties_per_side * county_nodes_side
    origin = np.array([400_000.0, 3_000_000.0])

    def node_xy(ids: np.ndarray) -> np.ndarray:
        row, col = np.divmod(ids, side)
        jitter = np.column_stack([_unit_hash(ids, seed, 1), _unit_hash(ids, seed, 2)]) * 2 - 1
        return origin + np.column_stack([col, row]) * spacing_m + jitter * jitter_m

    def county_edges(ci: int) -> EdgeChunk:
        cy, cx = divmod(ci, counties_per_side)
        rows = np.arange(cy * county_nodes_side, (cy + 1) * county_nodes_side)
        cols = np.arange(cx * county_nodes_side, (cx + 1) * county_nodes_side)
        u = (rows[:, None] * side + cols[None, :]).ravel()
        row, col = np.divmod(u, side)
        right, up = u[col < side - 1], u[row < side - 1]
        edge_u = np.concatenate([right, up])
        edge_v = np.concatenate([right + 1, up + side])
        edge_id = np.concatenate([2 * right, 2 * up + 1])
        keep = _unit_hash(edge_id, seed, 3) >= drop_fraction
        edge_u, edge_v, edge_id = edge_u[keep], edge_v[keep], edge_id[keep]
        order = np.argsort(edge_id)
        edge_u, edge_v, edge_id = edge_u[order], edge_v[order], edge_id[order]
        nodes = np.unique(np.concatenate([edge_u, edge_v]))
        xy = node_xy(nodes)
        ends = np.stack([xy[np.searchsorted(nodes, edge_u)], xy[np.searchsorted(nodes, edge_v)]], axis=1)
        return EdgeChunk(edge_id=edge_id, u=edge_u, v=edge_v, coord_start=np.arange(0, 2 * len(edge_u) + 1, 2),
                         coords=ends.reshape(-1, 2), highway=np.full(len(edge_u), "residential"),
                         off_ground=np.zeros(len(edge_u), dtype=bool), node_id=nodes, node_xy=xy, node_osmid=nodes)

    folder = Path(folder)
    store = write_store_chunks((county_edges(ci) for ci in range(counties_per_side ** 2)), folder / "network",
                               crs=SYNTHETIC_CRS, source=f"synthetic province {side}x{side}", n_nodes=side * side)
    half = spacing_m / 2
    bounds = (origin[0] - half, origin[1] - half, origin[0] + (side - 0.5) * spacing_m,
              origin[1] + (side - 0.5) * spacing_m)
    counties, subdistricts = _square_areas(bounds, counties_per_side, subdistricts_per_county_side, persons_per_km2,
                                           street_county=lambda ci: ci % 6 == 0)
    xy = np.column_stack([rng.uniform(bounds[0], bounds[2], n_pharmacies), rng.uniform(bounds[1], bounds[3], n_pharmacies)])
    region = _region(counties, subdistricts, _pharmacy_table(shapely.points(xy), rng, service_shares), SYNTHETIC_CRS)
    return region, store


def _square_areas(bounds, counties_per_side: int, subdistricts_per_county_side: int, persons_per_km2: float, *,
                  street_county) -> tuple[list[dict], list[dict]]:
    """Square counties over ``bounds`` (metres) cut into square sub-districts, as rows with shapely boxes;
    ``street_county(index)`` says whose sub-districts are urban streets."""
    import shapely

    (x0, y0, x1, y1), c_side, s_side = bounds, counties_per_side, subdistricts_per_county_side
    counties, subdistricts = [], []
    for ci in range(c_side * c_side):
        cx, cy = divmod(ci, c_side)
        county_code = f"98{ci + 1:04d}"
        cw, ch = (x1 - x0) / c_side, (y1 - y0) / c_side
        box = shapely.box(x0 + cx * cw, y0 + cy * ch, x0 + (cx + 1) * cw, y0 + (cy + 1) * ch)
        counties.append({"code": county_code, "name": f"合成{ci + 1}区", "fund_deficit_last_year": False,
                         "fund_deficit_forecast": False, "fund_warning_letter": False, "geometry": box})
        for si in range(s_side * s_side):
            sx, sy = divmod(si, s_side)
            sw, sh = cw / s_side, ch / s_side
            sbox = shapely.box(x0 + cx * cw + sx * sw, y0 + cy * ch + sy * sh,
                               x0 + cx * cw + (sx + 1) * sw, y0 + cy * ch + (sy + 1) * sh)
            kind = "street" if street_county(ci) else "town"
            subdistricts.append({"code": f"{county_code}{si + 1:03d}", "name": f"合成{ci + 1}-{si + 1}"
                                 f"{'街道' if kind == 'street' else '镇'}", "kind": kind, "county_code": county_code,
                                 "population": int(round(sbox.area / 1e6 * persons_per_km2)), "geometry": sbox})
    return counties, subdistricts


def _pharmacy_table(spots, rng: np.random.Generator, service_shares) -> dict:
    """Columns of synthetic pharmacies at ``spots`` (shapely points) holding services at random."""
    from planning.model import SERVICE_COLUMNS

    n = len(spots)
    held = rng.random((n, 4)) < np.array(service_shares)
    return {"pharmacy_id": [f"P{i:06d}" for i in range(n)], "name": [f"合成药店{i}" for i in range(n)],
            "address": [f"合成路{i}号" for i in range(n)], **{column: held[:, k] for k, column in enumerate(SERVICE_COLUMNS)},
            "chain": rng.random(n) < 0.6, "info_system_ready": np.ones(n, dtype=bool),
            "cross_region_settlement": np.ones(n, dtype=bool), "geometry": spots}


def _region(counties: list[dict], subdistricts: list[dict], pharmacies: dict, crs: str):
    import geopandas as gpd

    from planning.model import Region

    layer = lambda rows: gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).to_crs("EPSG:4326")
    return Region(name="合成区域（虚构）", counties=layer(counties), subdistricts=layer(subdistricts),
                  pharmacies=layer(pharmacies), fictional=True)


def _unit_hash(ids: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """A uniform number in [0, 1) per integer id (splitmix64 of id, seed and salt): the same id gives
    the same number in every county that sees it."""
    with np.errstate(over="ignore"):
        z = np.asarray(ids, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64((seed * 1_000_003 + salt) & 0xFFFFFFFF) * np.uint64(0xD1B54A32D192ED03)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
