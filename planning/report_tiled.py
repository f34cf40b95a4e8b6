"""Outputs of a tiled assessment (:class:`planning.tiles.TiledAssessment`) that scale to a province.

- ``province.gpkg``: one GeoPackage with the layers ``subdistricts``, ``counties``, ``pharmacies``,
  ``zones``, ``circles`` and ``uncovered`` (EPSG:4326; machine column names, as the gap report);
- ``counties/<code>.geojson``: per county its sub-district rows, its county rows and its zones, for a
  county bureau's GIS;
- ``tables.xlsx`` and the CSVs of :func:`planning.report.write_tables`, for people;
- ``walk_time/<service>.vrt`` (walk minutes, float32, NaN beyond the horizon) and
  ``decisions/<service>.vrt`` (bands: decision code of :data:`planning.zones.DECISION_CODES`, circle
  0/1, uncovered 0/1), each a GDAL virtual mosaic of the tiles' GeoTIFFs under ``rasters/`` (network
  CRS, metres; every cell from the tile owning it). QGIS and rasterio open them as one raster;
- ``result/``: the result itself (:mod:`planning.tiled_result`), which
  :func:`planning.tiled_result.open_tiled` reads back for the app, the reports and notebooks.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from xml.sax.saxutils import escape

import geopandas as gpd
import numpy as np
import rasterio

from planning import report
from planning.model import Service
from planning.tiled_result import save_tiled
from planning.tiles import TiledAssessment

#: GeoPackage layers of ``province.gpkg``, in order.
PROVINCE_LAYERS = ("subdistricts", "counties", "pharmacies", "zones", "circles", "uncovered")


def write_tiled(tiled: TiledAssessment, folder: str | Path, *, lang: str = "zh") -> list[Path]:
    """Write the outputs listed in the module docstring into ``folder``; returns the main files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gpkg = folder / "province.gpkg"
    for layer in PROVINCE_LAYERS:
        _geopackage_ready(getattr(tiled, layer)).to_file(gpkg, layer=layer, driver="GPKG", engine="pyogrio")
    written = [gpkg, *write_county_geojson(tiled, folder / "counties")]
    written += report.write_tables(tiled, folder, lang=lang)[:1]
    written += write_mosaics(tiled, folder)
    written.append(save_tiled(tiled, folder))  # the app, the reports and notebooks open the folder again
    return written


def write_county_geojson(tiled: TiledAssessment, folder: Path) -> list[Path]:
    """One GeoJSON per county: its sub-district rows, county rows and zones (clipped to the county),
    each feature with a ``layer`` property."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    outlines = tiled.region.counties.set_index("code").geometry
    for code in tiled.region.counties["code"]:
        parts = [tiled.subdistricts[tiled.subdistricts["county_code"] == code].assign(layer="subdistricts"),
                 tiled.counties[tiled.counties["code"] == code].assign(layer="counties")]
        zones = tiled.zones.copy()
        zones["geometry"] = zones.geometry.intersection(outlines.loc[code])
        parts.append(zones[~zones.geometry.is_empty].assign(layer="zones"))
        features = []
        for part in parts:
            features += json.loads(_geopackage_ready(part).to_json(na="null", drop_id=True))["features"]
        target = folder / f"{code}.geojson"
        target.write_text(json.dumps({"type": "FeatureCollection", "name": f"county_{code}", "features": features},
                                     ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        written.append(target)
    return written


def write_mosaics(tiled: TiledAssessment, folder: Path) -> list[Path]:
    """Copy the tiles' GeoTIFFs under ``folder/rasters`` and write one VRT per service and kind."""
    (folder / "rasters").mkdir(parents=True, exist_ok=True)
    written = []
    for service in Service:
        for kind, subfolder in (("walk_minutes", "walk_time"), ("decisions", "decisions")):
            sources = []
            for tile in tiled.tiles:
                source = Path(tiled.layers[tile.tile_id].rasters[service.value][kind])
                target = folder / "rasters" / source.name
                if source.resolve() != target.resolve():
                    shutil.copyfile(source, target)
                sources.append(target)
            vrt = folder / subfolder / f"{service.value}.vrt"
            write_vrt(sources, vrt)
            written.append(vrt)
    return written


def write_vrt(sources: list[Path], target: Path) -> Path:
    """A GDAL VRT mosaic of GeoTIFFs on one aligned grid (same CRS, cell size, band types): the extent
    of all, each source placed by its transform; nodata cells of one source never hide another's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    metas = []
    for path in sources:
        with rasterio.open(path) as source:
            metas.append((path, source.transform, source.width, source.height, source.count, source.dtypes[0],
                          source.nodata, source.crs.to_wkt()))
    cell = metas[0][1].a
    x0 = min(m[1].c for m in metas)
    y_top = max(m[1].f for m in metas)
    right = max(m[1].c + m[2] * cell for m in metas)
    bottom = min(m[1].f - m[3] * cell for m in metas)
    width, height = round((right - x0) / cell), round((y_top - bottom) / cell)
    gdal_type = {"float32": "Float32", "uint8": "Byte"}[metas[0][5]]
    nodata = metas[0][6]
    nodata_text = "nan" if nodata is not None and np.isnan(nodata) else f"{nodata:g}" if nodata is not None else None
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
             f"  <SRS>{escape(metas[0][7])}</SRS>",
             f"  <GeoTransform>{x0!r}, {cell!r}, 0, {y_top!r}, 0, {-cell!r}</GeoTransform>"]
    for band in range(1, metas[0][4] + 1):
        lines.append(f'  <VRTRasterBand dataType="{gdal_type}" band="{band}">')
        if nodata_text is not None:
            lines.append(f"    <NoDataValue>{nodata_text}</NoDataValue>")
        for path, transform, w, h, *_ in metas:
            col, row = round((transform.c - x0) / cell), round((y_top - transform.f) / cell)
            lines += ["    <ComplexSource>",
                      f'      <SourceFilename relativeToVRT="1">{escape(_relative(path, target.parent))}</SourceFilename>',
                      f"      <SourceBand>{band}</SourceBand>",
                      f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
                      f'      <DstRect xOff="{col}" yOff="{row}" xSize="{w}" ySize="{h}"/>']
            if nodata_text is not None:
                lines.append(f"      <NODATA>{nodata_text}</NODATA>")
            lines.append("    </ComplexSource>")
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start).replace(os.sep, "/")


def _geopackage_ready(layer: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Columns a GeoPackage holds: nullable booleans as 0/1/NULL floats, objects as text (None kept)."""
    out = layer.copy()
    for column in out.columns:
        if column == out.geometry.name:
            continue
        if str(out[column].dtype) == "boolean":
            out[column] = out[column].astype("Float64")
        elif out[column].dtype == object:
            out[column] = out[column].map(_text_or_none)
    return out


def _text_or_none(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else str(value)
