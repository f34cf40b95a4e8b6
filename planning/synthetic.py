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
