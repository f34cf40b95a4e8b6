"""The places MDJ-2025 art. 13 suggests pharmacies stand by, from the tags of an OSM file.

Art. 13 suggests placing designated pharmacies around communities, commercial areas, elderly-care
institutions and large hospitals, and in rural township centres and markets (集市). Each kind of
:data:`PLACE_KINDS` is recognised by its OSM tags, on nodes and on closed ways (their centroid):

=================  ==========================================================================
kind               OSM tags
=================  ==========================================================================
``hospital``       amenity=hospital|clinic|doctors, healthcare=hospital|clinic|centre|doctor
``market``         amenity=marketplace
``commercial``     shop=mall|department_store|supermarket, landuse=commercial|retail
``elderly_care``   amenity=nursing_home, social_facility=nursing_home|assisted_living|group_home
``township``       place=town|village|township
=================  ==========================================================================

Communities (居住社区) are what the street-point candidates already cover. Read with pyosmium (raw tags,
node locations for the way centroids), in WGS84.
"""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import shapely

from planning.model import WGS84
from planning.text import Text

#: Place kinds, their words and the OSM (key, values) that make them.
PLACE_KINDS: dict[str, tuple[Text, tuple[tuple[str, frozenset[str]], ...]]] = {
    "hospital": (Text("医院、诊所", "hospital or clinic"),
                 (("amenity", frozenset({"hospital", "clinic", "doctors"})),
                  ("healthcare", frozenset({"hospital", "clinic", "centre", "doctor"})))),
    "market": (Text("集市、农贸市场", "market"), (("amenity", frozenset({"marketplace"})),)),
    "commercial": (Text("商业区、商场", "commercial area or mall"),
                   (("shop", frozenset({"mall", "department_store", "supermarket"})),
                    ("landuse", frozenset({"commercial", "retail"})))),
    "elderly_care": (Text("养老机构", "elderly-care facility"),
                     (("amenity", frozenset({"nursing_home"})),
                      ("social_facility", frozenset({"nursing_home", "assisted_living", "group_home"})))),
    "township": (Text("乡镇中心", "township centre"), (("place", frozenset({"town", "village", "township"})),)),
}


def place_kind(tags) -> str | None:
    """The :data:`PLACE_KINDS` key a tag mapping makes, the first that matches; None for none."""
    for kind, (_words, rules) in PLACE_KINDS.items():
        if any(tags.get(key) in values for key, values in rules):
            return kind
    return None


def read_osm_places(path: str | os.PathLike) -> gpd.GeoDataFrame:
    """The art. 13 places of an OSM XML/PBF file: ``kind``, ``name`` ("" without one), ``osm_id`` ("n123" /
    "w456") and a point geometry (a way's centroid), EPSG:4326."""
    import osmium

    rows: list[tuple[str, str, str, float, float]] = []
    processor = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
    for obj in processor:
        tags = obj.tags
        kind = place_kind(tags)
        if kind is None:
            continue
        name = tags.get("name:zh") or tags.get("name") or ""
        if obj.is_node():
            if obj.location.valid():
                rows.append((kind, name, f"n{obj.id}", obj.location.lon, obj.location.lat))
            continue
        xy = [(n.location.lon, n.location.lat) for n in obj.nodes if n.location.valid()]
        if not xy:
            continue
        shape = shapely.Polygon(xy) if len(xy) >= 4 and xy[0] == xy[-1] else shapely.LineString(xy) \
            if len(xy) >= 2 else shapely.Point(xy[0])
        centre = shape.centroid if shape.is_valid and not shape.is_empty else shapely.Point(np.mean(xy, axis=0))
        rows.append((kind, name, f"w{obj.id}", centre.x, centre.y))
    kinds, names, ids, lon, lat = (list(column) for column in zip(*rows)) if rows else ([], [], [], [], [])
    return gpd.GeoDataFrame({"kind": kinds, "name": names, "osm_id": ids},
                            geometry=gpd.points_from_xy(lon, lat), crs=WGS84)
