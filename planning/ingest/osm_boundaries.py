"""County and township boundaries from the administrative relations of an OSM file (admin_level 6 and 8).

An OSM extract usually cuts boundary relations: some member ways, or some of their nodes, are not in the
file. :func:`read_osm_boundaries` assembles each ``boundary=administrative`` relation of level 6 (county,
区/县) or 8 (township, 街道/镇/乡) from the member ways present (their present nodes, in order), polygonises
the lines with shapely, and reports per relation how many member ways were missing and whether a closed
area could be formed. Incomplete relations give the part that closes, or nothing; every one is named in
the notes. Read with pyosmium (raw tags), in WGS84.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import geopandas as gpd
import shapely

from planning.model import WGS84

#: OSM admin_level -> layer: 6 county (区/县), 8 township (街道/镇/乡).
ADMIN_LEVELS = {"6": "county", "8": "subdistrict"}


@dataclass(frozen=True)
class OsmBoundaries:
    """``counties`` and ``subdistricts``: GeoDataFrames (EPSG:4326) with ``osm_id``, ``name``, ``code`` (the
    relation's ``ref``/``admin_code``/… tag when present, else "osm:<id>"), ``complete`` (bool); ``notes``:
    one bilingual line per incomplete or unassembled relation."""

    counties: gpd.GeoDataFrame
    subdistricts: gpd.GeoDataFrame
    notes: tuple[str, ...]


def read_osm_boundaries(path: str | os.PathLike) -> OsmBoundaries:
    """Assemble admin_level 6 and 8 relations of an OSM XML/PBF file as far as the file allows."""
    import osmium

    relations: dict[int, dict] = {}
    for obj in osmium.FileProcessor(str(path), osmium.osm.RELATION):
        tags = dict(obj.tags)
        if tags.get("boundary") == "administrative" and tags.get("admin_level") in ADMIN_LEVELS:
            relations[obj.id] = {"tags": tags,
                                 "ways": [m.ref for m in obj.members if m.type == "w" and m.role in ("outer", "")]}
    wanted = {w for r in relations.values() for w in r["ways"]}
    way_nodes: dict[int, list[int]] = {}
    for obj in osmium.FileProcessor(str(path), osmium.osm.WAY):
        if obj.id in wanted:
            way_nodes[obj.id] = [n.ref for n in obj.nodes]
    needed = {n for nodes in way_nodes.values() for n in nodes}
    where: dict[int, tuple[float, float]] = {}
    for obj in osmium.FileProcessor(str(path), osmium.osm.NODE):
        if obj.id in needed and obj.location.valid():
            where[obj.id] = (obj.location.lon, obj.location.lat)
    rows = {"county": [], "subdistrict": []}
    notes: list[str] = []
    for rel_id, rel in relations.items():
        tags = rel["tags"]
        name = tags.get("name:zh") or tags.get("name") or f"osm:{rel_id}"
        lines, missing_ways, cut_ways = [], 0, 0
        for way in rel["ways"]:
            nodes = way_nodes.get(way)
            if nodes is None:
                missing_ways += 1
                continue
            points = [where[n] for n in nodes if n in where]
            cut_ways += len(points) < len(nodes)
            if len(points) >= 2:
                lines.append(shapely.LineString(points))
        polygons = list(shapely.polygonize(lines).geoms) if lines else []
        area = shapely.union_all(polygons) if polygons else None
        complete = missing_ways == 0 and cut_ways == 0 and area is not None
        if not complete:
            got = "已拼出部分闭合区域 / a closed part was assembled" if area is not None else \
                "无法拼出闭合区域 / no closed area could be formed"
            notes.append(f"{name}（admin_level {tags['admin_level']}）：缺 {missing_ways} 条成员路段、{cut_ways} 条被截断，"
                         f"{got.split(' / ')[0]} / {name} (admin_level {tags['admin_level']}): {missing_ways} member "
                         f"ways missing, {cut_ways} cut; {got.split(' / ')[1]}")
        if area is None:
            continue
        code = next((tags[k] for k in ("ref", "admin_code", "china_class:code", "ref:gb") if k in tags), f"osm:{rel_id}")
        rows[ADMIN_LEVELS[tags["admin_level"]]].append({"osm_id": rel_id, "name": name, "code": code,
                                                        "complete": complete, "geometry": area})

    def frame(items):
        return gpd.GeoDataFrame(items, columns=["osm_id", "name", "code", "complete", "geometry"], geometry="geometry",
                                crs=WGS84)

    return OsmBoundaries(counties=frame(rows["county"]), subdistricts=frame(rows["subdistrict"]), notes=tuple(notes))
