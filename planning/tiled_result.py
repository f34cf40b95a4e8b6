"""A tiled assessment saved in its output folder and opened again, by the app, the reports and notebooks.

:func:`save_tiled` writes ``<folder>/result/``: ``manifest.json`` (the region's name and data
completeness, the policy, the tiles, each tile's run figures and raster files, the network store's
path; JSON through an allow-list codec, never pickle) and GeoParquet / Parquet tables: the region's
input layers (``region_*``), the merged tables and layers (``subdistricts``, ``counties``, ``coverage``,
``pharmacies``, ``zones``, ``circles``, ``uncovered``; EPSG:4326) and each tile's layers clipped to its
core (``tile_*``, network CRS, metres). :func:`open_tiled` reads them back into a
:class:`planning.tiles.TiledAssessment` whose tables equal the ones the run returned: summaries, tables
and reports read it as they read the run's own, and :meth:`~planning.tiles.TiledAssessment.detail`
re-assesses one county while the network store is where the run left it.

The region's worker layer, when it has one, is kept too (``region_workers``: a tiled run does not weigh
it, but the summaries say it was given); the rasters are the copies
:func:`planning.report_tiled.write_mosaics` made under ``<folder>/rasters``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from planning.codec import Codec
from planning.completeness import AddressMismatch, DataCompleteness, DatumDecision, LayerStatus
from planning.coords import Datum
from planning.errors import PlanningError
from planning.model import Region, Service
from planning.policy import Policy, SaturationThresholds
from planning.tiles import Tile, TiledAssessment, TileLayers, TileResult, pharmacy_owners
from planning.workers import WorkerLayer

#: Sub-folder of a tiled run's output folder holding the saved result.
RESULT_FOLDER = "result"
MANIFEST = "manifest.json"
#: Version of the saved form; a newer one is refused, never half-read.
FORMAT_VERSION = 1
MERGED_TABLES = ("subdistricts", "counties", "coverage", "pharmacies", "zones", "circles", "uncovered")
REGION_LAYERS = ("subdistricts", "counties", "pharmacies")
TILE_LAYERS = ("zones", "circles", "uncovered")

CODEC = Codec([Policy, SaturationThresholds, DataCompleteness, LayerStatus, DatumDecision, AddressMismatch, Tile],
              [Service, Datum])


class TiledResultError(PlanningError):
    """A folder that holds no saved tiled result, or one this version cannot read."""


def save_tiled(tiled: TiledAssessment, folder: str | os.PathLike) -> Path:
    """Save ``tiled`` under ``folder/result`` (module docstring). The tiles' rasters must already lie
    under ``folder`` (as :func:`planning.report_tiled.write_tiled` puts them); their paths are kept
    relative to it. Returns the manifest's path."""
    folder = Path(folder).resolve()
    target = folder / RESULT_FOLDER
    target.mkdir(parents=True, exist_ok=True)
    region = tiled.region
    for name in REGION_LAYERS:
        getattr(region, name).to_parquet(target / f"region_{name}.parquet")
    _plain_text(region.rejected).to_parquet(target / "region_rejected.parquet")
    workers = region.workers
    if workers is not None:
        workers.places.to_parquet(target / "region_workers.parquet")
    for name in MERGED_TABLES:
        getattr(tiled, name).to_parquet(target / f"{name}.parquet")
    for name in TILE_LAYERS:
        pieces = [getattr(tiled.layers[t.tile_id], name).assign(tile_id=t.tile_id) for t in tiled.tiles]
        gpd.GeoDataFrame(pd.concat(pieces, ignore_index=True), geometry="geometry",
                         crs=tiled.crs).to_parquet(target / f"tile_{name}.parquet")
    manifest = {
        "format": FORMAT_VERSION,
        "saved": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "region": {"name": region.name, "fictional": region.fictional,
                   "network_path": str(region.network_path) if region.network_path is not None else None,
                   "completeness": CODEC.encode(region.completeness),
                   "workers": None if workers is None else {"basis": workers.basis, "source": workers.source,
                                                            "unmatched": list(workers.unmatched),
                                                            "rows_rejected": workers.rows_rejected}},
        "policy": CODEC.encode(tiled.policy),
        "crs": tiled.crs,
        "tiles": CODEC.encode(tuple(tiled.tiles)),
        "street_m": tiled.street_m,
        "store_path": str(Path(tiled.store_path).resolve()),
        "seconds": tiled.seconds,
        "runs": {t.tile_id: {"nodes": tiled.results[t.tile_id].nodes, "seconds": tiled.results[t.tile_id].seconds,
                             "peak_mb": tiled.results[t.tile_id].peak_mb} for t in tiled.tiles},
        "layers": {t.tile_id: {"rasters": {s: {k: _inside(Path(p), folder) for k, p in kinds.items()}
                                           for s, kinds in tiled.layers[t.tile_id].rasters.items()},
                               "zone_km2": tiled.layers[t.tile_id].zone_km2,
                               "seconds": tiled.layers[t.tile_id].seconds} for t in tiled.tiles},
    }
    path = target / MANIFEST
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1, allow_nan=False), encoding="utf-8")
    return path


#: Environment variable naming the folder the app lists tiled results from (default: ``results`` in the
#: workspace's settings folder, :func:`planning.workspace.settings_folder`).
RESULTS_ENV = "PHARMACY_PLANNER_RESULTS"


def results_folder() -> Path:
    """Where the app looks for tiled results: ``$PHARMACY_PLANNER_RESULTS``, else ``results`` in the
    workspace's settings folder. Only folders under it are offered (a browser never names a server path)."""
    from planning.workspace import settings_folder

    configured = os.environ.get(RESULTS_ENV, "").strip()
    return Path(configured).expanduser() if configured else settings_folder() / "results"


@dataclass(frozen=True)
class SavedResult:
    """What a saved result's manifest says about it, read without opening its tables: its ``folder``,
    the region's ``name``, when it was ``saved`` (ISO 8601, UTC), its number of ``tiles``, and ``stamp``
    (the manifest's modification time, ns: a result saved again is another result)."""

    folder: Path
    name: str
    saved: str
    tiles: int
    stamp: int

    def label(self) -> str:
        return f"{self.folder.name} · {self.name} · {self.saved[:16].replace('T', ' ')}"


def describe_saved(folder: str | os.PathLike) -> SavedResult:
    """The :class:`SavedResult` of ``folder`` (a tiled run's output folder)."""
    folder = Path(folder).resolve()
    manifest = _manifest(folder)
    return SavedResult(folder=folder, name=str(manifest["region"]["name"]), saved=str(manifest.get("saved", "")),
                       tiles=len(CODEC.decode(manifest["tiles"])), stamp=(folder / RESULT_FOLDER / MANIFEST).stat().st_mtime_ns)


def is_tiled_result(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` (a tiled run's output folder) holds a saved result."""
    return (Path(folder) / RESULT_FOLDER / MANIFEST).is_file()


def list_tiled_results(root: str | os.PathLike) -> list[Path]:
    """``root`` and its direct sub-folders that hold a saved result, by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [root] if is_tiled_result(root) else []
    return found + sorted(p for p in root.iterdir() if p.is_dir() and is_tiled_result(p))


def open_tiled(folder: str | os.PathLike) -> TiledAssessment:
    """The tiled assessment saved in ``folder`` (a tiled run's output folder) by :func:`save_tiled`."""
    folder = Path(folder).resolve()
    source = folder / RESULT_FOLDER
    manifest = _manifest(folder)
    crs = manifest["crs"]
    about = manifest["region"]
    region = Region(name=about["name"], fictional=bool(about["fictional"]),
                    network_path=Path(about["network_path"]) if about["network_path"] else None,
                    completeness=CODEC.decode(about["completeness"]),
                    rejected=pd.read_parquet(source / "region_rejected.parquet"), workers=_workers(source, about),
                    **{name: gpd.read_parquet(source / f"region_{name}.parquet") for name in REGION_LAYERS})
    merged = {name: _tri_state(_read(source / f"{name}.parquet"), source / f"{name}.parquet") for name in MERGED_TABLES}
    tiles = CODEC.decode(manifest["tiles"])
    pieces = {name: gpd.read_parquet(source / f"tile_{name}.parquet") for name in TILE_LAYERS}
    layers = {}
    for tile in tiles:
        saved = manifest["layers"][tile.tile_id]
        own = {name: _without_tile_id(pieces[name], tile.tile_id) for name in TILE_LAYERS}
        rasters = {s: {k: str(_within(folder, p)) for k, p in kinds.items()} for s, kinds in saved["rasters"].items()}
        layers[tile.tile_id] = TileLayers(tile_id=tile.tile_id, rasters=rasters, zone_km2=saved["zone_km2"],
                                          seconds=saved["seconds"], **own)
    owners = pharmacy_owners(region, tiles, crs)
    results = {}
    for tile in tiles:
        core, run = set(tile.core), manifest["runs"][tile.tile_id]
        rows = lambda table: pd.DataFrame(table[table["code"].isin(core)].drop(columns="geometry", errors="ignore"))
        owned = merged["pharmacies"]["pharmacy_id"].astype(str).isin(set(owners.get(tile.tile_id, ())))
        results[tile.tile_id] = TileResult(tile=tile, subdistricts=rows(merged["subdistricts"]),
                                           coverage=rows(merged["coverage"]),
                                           pharmacies=pd.DataFrame(merged["pharmacies"][owned.to_numpy()]),
                                           layers=layers[tile.tile_id], nodes=run["nodes"], seconds=run["seconds"],
                                           peak_mb=run["peak_mb"])
    return TiledAssessment(region=region, policy=CODEC.decode(manifest["policy"]), crs=crs, tiles=tiles,
                           results=results, layers=layers, store_path=Path(manifest["store_path"]),
                           street_m=manifest["street_m"], work_dir=folder, seconds=manifest["seconds"], **merged)


def _manifest(folder: Path) -> dict:
    """The manifest of the result saved in ``folder``; a missing, unreadable or newer one is refused."""
    path = folder / RESULT_FOLDER / MANIFEST
    if not path.is_file():
        raise TiledResultError(f"{folder} 中没有分块评估结果（缺少 {RESULT_FOLDER}/{MANIFEST}）",
                               f"{folder} holds no tiled result (no {RESULT_FOLDER}/{MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TiledResultError(f"{MANIFEST} 无法读取：{exc}", f"{MANIFEST} cannot be read: {exc}") from exc
    version = manifest.get("format") if isinstance(manifest, dict) else None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise TiledResultError(f"该分块结果由更新的版本保存（格式 {version}），本版本只能读取格式 {FORMAT_VERSION}：请升级",
                               f"this tiled result was saved by a newer version (format {version}); this version "
                               f"reads format {FORMAT_VERSION}: please upgrade")
    return manifest


def _workers(source: Path, about: dict) -> WorkerLayer | None:
    kept = about.get("workers")
    if kept is None:
        return None
    return WorkerLayer(places=gpd.read_parquet(source / "region_workers.parquet"), basis=kept["basis"],
                       source=kept["source"], unmatched=tuple(kept["unmatched"]), rows_rejected=kept["rows_rejected"])


def _read(path: Path) -> pd.DataFrame:
    """A GeoParquet file as a GeoDataFrame, a plain Parquet file as a DataFrame."""
    try:
        return gpd.read_parquet(path)
    except ValueError:  # no geometry column: a plain table
        return pd.read_parquet(path)


def _tri_state(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Requirement outcomes as the assessment holds them: the file's boolean columns that pandas reads
    as objects (True / False / missing) hold ``pd.NA`` for missing, not ``None``."""
    schema = pq.read_schema(path)
    for column in table.columns:
        if table[column].dtype == object and pa.types.is_boolean(schema.field(column).type):
            table[column] = table[column].where(table[column].notna(), pd.NA)
    return table


def _plain_text(table: pd.DataFrame) -> pd.DataFrame:
    """The rejected rows with text cells (row numbers and reasons of mixed types)."""
    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return out


def _without_tile_id(layer: gpd.GeoDataFrame, tile_id: str) -> gpd.GeoDataFrame:
    mine = layer[layer["tile_id"] == tile_id].drop(columns="tile_id")
    return gpd.GeoDataFrame(mine.reset_index(drop=True), geometry="geometry", crs=layer.crs)


def _inside(path: Path, folder: Path) -> str:
    """A tile's raster as a path relative to ``folder`` (POSIX form): the file itself when it lies under
    ``folder``, else its copy under ``folder/rasters``; a raster with neither cannot be saved."""
    path = path.resolve()
    if path.is_relative_to(folder):
        return path.relative_to(folder).as_posix()
    if (folder / "rasters" / path.name).is_file():
        return f"rasters/{path.name}"
    raise TiledResultError(f"栅格 {path} 不在结果文件夹 {folder} 内（先写出拼接栅格）",
                           f"raster {path} is not inside {folder} (write the mosaics first)")


def _within(folder: Path, relative: str) -> Path:
    """A saved relative path under ``folder``; one leaving it (``..``, absolute) is refused."""
    parts = PurePosixPath(relative)
    if parts.is_absolute() or ".." in parts.parts:
        raise TiledResultError(f"清单中的路径 {relative!r} 指向结果文件夹之外", f"the manifest path {relative!r} leaves the folder")
    return folder.joinpath(*parts.parts)
