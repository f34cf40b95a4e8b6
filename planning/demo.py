"""The embedded demo region 示例市（虚构）: a fictional city to try the planner without any data.

The files in ``geodata/demo/`` are written by ``python -m geodata.demo.generate`` (deterministic);
``geodata/demo/README.md`` describes the region and the planted situations a planner should find.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from planning.model import Region, validate_region
from planning.settlement import DATE_COLUMNS
from planning.workers import worker_points

#: Folder holding network.osm.gz, counties/subdistricts/pharmacies/workers.geojson and planted.json.
DEMO_DIR = Path(__file__).resolve().parents[1] / "geodata" / "demo"
DEMO_NAME = "示例市（虚构）"

#: Where the planted situations are (codes, pharmacy ids, EPSG:4326 lon/lat, rule ids), as written
#: by the generator to planted.json. Keys: r1_no_chronic_street, r2_no_dual_channel_county,
#: saturated_core_street, blank_town, fund_deficit_county, fund_forecast_county,
#: cutoff_neighbourhood (name, point, polygon, across_river_pharmacies, walkable_river_bridges),
#: work_area (临溪物流园: the workplace of workers.geojson that makes an R3 priority when workers count),
#: traps (OSM way ids of the motorway, the private service bridge and the foot=no underpass), network.
PLANTED: dict = json.loads((DEMO_DIR / "planted.json").read_text(encoding="utf-8"))

#: 澜湾花园小区, the neighbourhood cut off by the river: representative point and outline (EPSG:4326).
CUTOFF_POINT: tuple[float, float] = tuple(PLANTED["cutoff_neighbourhood"]["point"])
CUTOFF_POLYGON: shapely.Polygon = shapely.Polygon(PLANTED["cutoff_neighbourhood"]["polygon"])


def load_demo_region() -> Region:
    """The demo region as a validated :class:`~planning.model.Region` (layers in EPSG:4326), with its
    worker layer (counted only under a policy with ``workers_weight`` > 0)."""

    def read(name: str) -> gpd.GeoDataFrame:
        return gpd.read_file(DEMO_DIR / name, engine="pyogrio")

    pharmacies = read("pharmacies.geojson")
    for column in DATE_COLUMNS:  # GDAL reads ISO dates as datetimes; the ingest readers give ISO text
        if column in pharmacies.columns:
            dates = pd.to_datetime(pharmacies[column], errors="coerce")
            pharmacies[column] = [None if pd.isna(d) else d.date().isoformat() for d in dates]

    return validate_region(
        Region(
            name=DEMO_NAME,
            counties=read("counties.geojson"),
            subdistricts=read("subdistricts.geojson"),
            pharmacies=pharmacies,
            network_path=DEMO_DIR / "network.osm.gz",
            fictional=True,
            workers=worker_points(read("workers.geojson"), source="workers.geojson"),
        )
    )
