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
    import geopandas as gpd
    import shapely

    from planning.model import Region, SERVICE_COLUMNS

    rng = np.random.default_rng(seed)
    (x0, y0), (x1, y1) = network.node_xy.min(axis=0) - 1, network.node_xy.max(axis=0) + 1
    c_side, s_side = counties_per_side, subdistricts_per_county_side
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
            kind = "street" if ci == 0 else "town"
            subdistricts.append({"code": f"{county_code}{si + 1:03d}", "name": f"合成{ci + 1}-{si + 1}"
                                 f"{'街道' if kind == 'street' else '镇'}", "kind": kind, "county_code": county_code,
                                 "population": int(round(sbox.area / 1e6 * persons_per_km2)), "geometry": sbox})
    edges = rng.integers(0, network.n_edges, n_pharmacies)
    spots = shapely.line_interpolate_point(network.edge_lines[edges], rng.uniform(0, 1, n_pharmacies),
                                           normalized=True)
    held = rng.random((n_pharmacies, 4)) < np.array(service_shares)
    pharmacies = gpd.GeoDataFrame(
        {"pharmacy_id": [f"P{i:06d}" for i in range(n_pharmacies)],
         "name": [f"合成药店{i}" for i in range(n_pharmacies)],
         "address": [f"合成路{i}号" for i in range(n_pharmacies)],
         **{column: held[:, k] for k, column in enumerate(SERVICE_COLUMNS)},
         "chain": rng.random(n_pharmacies) < 0.6, "info_system_ready": np.ones(n_pharmacies, dtype=bool),
         "cross_region_settlement": np.ones(n_pharmacies, dtype=bool)},
        geometry=spots, crs=network.crs,
    )
    to_wgs = {"crs": network.crs}
    return Region(
        name="合成区域（虚构）",
        counties=gpd.GeoDataFrame(counties, geometry="geometry", **to_wgs).to_crs("EPSG:4326"),
        subdistricts=gpd.GeoDataFrame(subdistricts, geometry="geometry", **to_wgs).to_crs("EPSG:4326"),
        pharmacies=pharmacies.to_crs("EPSG:4326"),
        fictional=True,
    )
