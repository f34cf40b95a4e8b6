"""Getting raw rows out of a file: bytes, paths and uploads, type detection, CSV/XLSX tables, geo files, safe zips."""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Union

import geopandas as gpd
import numpy as np
import pandas as pd

from planning.errors import (
    ArchiveError, CoordinateSystemError, EmptyFileError, EncodingError, FileTooLargeError, FileTypeError,
    ParameterError, UnreadableFileError, UnsafeArchiveError,
)
from planning.ingest.result import RowNotes
from planning.ingest.vocabulary import NORMAL_ALIASES, Note, norm_header, cell_text
from planning.model import WGS84

#: Largest input file accepted by default, bytes (200 MiB).
DEFAULT_MAX_BYTES = 200 * 2**20
#: An archive (zipped shapefile, XLSX) may hold at most this many times ``max_bytes`` once uncompressed.
UNCOMPRESSED_FACTOR = 4
#: Rows searched for the header row (titles above the header are common in bureau sheets).
HEADER_SCAN_ROWS = 20

Source = Union[str, os.PathLike, bytes, bytearray, IO[bytes]]


# ======================================================================================= sources
@dataclass(frozen=True)
class SourceFile:
    name: str
    kind: str  # csv, xlsx, geojson, gpkg, zip, shp, tif
    data: bytes | None = None
    path: Path | None = None

    def bytes(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()


_KIND_OF_SUFFIX = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
                   ".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".zip": "zip", ".shp": "shp",
                   ".tif": "tif", ".tiff": "tif"}
_KIND_LABEL = {"csv": "CSV", "xlsx": "XLSX", "geojson": "GeoJSON", "gpkg": "GeoPackage (.gpkg)",
               "zip": "zipped shapefile (.zip)", "shp": "shapefile (.shp on disk)", "tif": "GeoTIFF"}


def load_source(source: Source, source_name: str | None, max_bytes: int, accepted: tuple[str, ...]) -> SourceFile:
    """Read (or locate) the input, check its size and decide its type from the name, else the content."""
    path: Path | None = None
    data: bytes | None = None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise UnreadableFileError(f"找不到文件：{path}", f"file not found: {path}")
        size = path.stat().st_size
        name = source_name or path.name
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        size = len(data)
        name = source_name or "upload"
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
        size = len(data)
        name = source_name or Path(str(getattr(source, "name", "upload"))).name
    else:
        raise FileTypeError("无法读取此类输入", f"cannot read an input of type {type(source).__name__}")
    if size > max_bytes:
        raise FileTooLargeError(f"文件 {name} 超过大小上限 {max_bytes / 2**20:.0f} MB",
                                f"file {name} exceeds the size limit of {max_bytes / 2**20:.0f} MB")
    if size == 0:
        raise EmptyFileError(f"文件 {name} 是空的", f"file {name} is empty")
    if data is not None:
        head = data[:4096]
    else:
        with path.open("rb") as handle:
            head = handle.read(4096)
    kind = _detect_kind(name, head, data, path)
    if kind not in accepted:
        labels = ", ".join(_KIND_LABEL[k] for k in accepted)
        raise FileTypeError(f"文件 {name} 的类型（{_KIND_LABEL.get(kind, kind)}）不适用，可用：{labels}",
                            f"file {name} is {_KIND_LABEL.get(kind, kind)}; accepted here: {labels}")
    if kind == "shp" and path is None:
        raise FileTypeError(f"单独的 .shp 文件不够：请把 .shp/.shx/.dbf/.prj/.cpg 打包成 zip 上传（{name}）",
                            f"a bare .shp is not enough: upload .shp/.shx/.dbf/.prj/.cpg zipped together ({name})")
    return SourceFile(name=name, kind=kind, data=data, path=path)


def _detect_kind(name: str, head: bytes, data: bytes | None, path: Path | None) -> str:
    suffix = Path(name).suffix.lower()
    if head.startswith(b"\xd0\xcf\x11\xe0") or suffix == ".xls":
        raise FileTypeError(f"{name} 是旧版 Excel（.xls）：请另存为 .xlsx 或 CSV",
                            f"{name} is an old Excel 97-2003 file (.xls): save it as .xlsx or CSV")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(io.BytesIO(data) if data is not None else path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise UnreadableFileError(f"{name} 不是有效的 zip/xlsx 文件", f"{name} is not a valid zip/xlsx file") from exc
        if "[Content_Types].xml" not in names:
            return "zip"
        if not any(n.startswith(("word/", "ppt/")) for n in names):
            return "xlsx"  # a workbook, possibly damaged (the XLSX reader says so)
        raise FileTypeError(f"{name} 是 Word/PowerPoint 等 Office 文档，不是 Excel 工作簿：请另存为 .xlsx 或 CSV",
                            f"{name} is an Office document (Word, PowerPoint...), not an Excel workbook: "
                            f"save the table as .xlsx or CSV")
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tif"
    if suffix in _KIND_OF_SUFFIX and _KIND_OF_SUFFIX[suffix] not in ("xlsx", "zip", "gpkg", "tif"):
        return _KIND_OF_SUFFIX[suffix]
    if suffix in _KIND_OF_SUFFIX:
        raise UnreadableFileError(f"{name} 的内容与扩展名 {suffix} 不符", f"{name}: content does not match its suffix {suffix}")
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "geojson"
    if suffix and suffix not in (".csv", ".txt"):
        raise FileTypeError(f"无法识别的文件类型：{name}", f"unrecognised file type: {name}")
    return "csv"


# ======================================================================================= tables
@dataclass
class RawTable:
    """Raw input rows (index = row number, object cells), optional geometry, and notes so far."""

    raw: pd.DataFrame
    geometry: gpd.GeoSeries | None
    notes: RowNotes


def read_table(src: SourceFile, layer: str, columns: Mapping[str, str] | None, *, sheet: str | int | None,
                encoding: str | None, max_bytes: int, gdal_layer: str | None = None) -> RawTable:
    notes = RowNotes(src.name)
    if src.kind == "csv":
        rows = _csv_rows(src, encoding)
        raw = _rows_to_frame(rows, layer, columns, src.name)
    elif src.kind == "xlsx":
        rows = _xlsx_rows(src, layer, columns, sheet, max_bytes)
        raw = _rows_to_frame(rows, layer, columns, src.name)
    else:
        return _read_geo(src, notes, gdal_layer=gdal_layer, max_bytes=max_bytes)
    return RawTable(raw=raw, geometry=None, notes=notes)


def _decode(data: bytes, name: str, encoding: str | None) -> str:
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise EncodingError(f"无法用 {encoding} 解码 {name}", f"cannot decode {name} as {encoding}") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ("utf-16",)
    else:
        candidates = ("utf-8-sig", "gb18030")
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            continue
    raise EncodingError(f"{name} 既不是 UTF-8 也不是 GBK/GB18030 编码：请另存为 UTF-8 CSV",
                        f"{name} is neither UTF-8 nor GBK/GB18030: save it as UTF-8 CSV")


def _csv_rows(src: SourceFile, encoding: str | None) -> list[list[Any]]:
    text = _decode(src.bytes(), src.name, encoding).replace("\x00", "")
    best: list[list[str]] | None = None
    best_score: tuple[int, int] = (-1, -1)
    for delimiter in (",", "\t", ";", "|"):
        try:
            rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        except csv.Error as exc:
            raise UnreadableFileError(f"{src.name} 不是有效的 CSV：{exc}", f"{src.name} is not valid CSV: {exc}") from exc
        score = _delimiter_score(rows)
        if best is None or score > best_score:
            best, best_score = rows, score
    return best or []


def _delimiter_score(rows: list[list[str]]) -> tuple[int, int]:
    """(most known headers in one of the first rows, non-blank cells of the first non-blank row)."""
    known = max((sum(1 for cell in row if norm_header(cell) in _ALL_ALIASES) for row in rows[:HEADER_SCAN_ROWS]),
                default=0)
    first = next((row for row in rows if any(cell.strip() for cell in row)), [])
    return known, sum(1 for cell in first if cell.strip())


_ALL_ALIASES = set().union(*(s for fields in NORMAL_ALIASES.values() for s in fields.values()))


def _xlsx_rows(src: SourceFile, layer: str, columns: Mapping[str, str] | None, sheet: str | int | None,
               max_bytes: int) -> list[list[Any]]:
    import openpyxl

    data = src.bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        _check_archive_sizes(archive, src.name, max_bytes)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for damaged workbooks
        raise UnreadableFileError(f"无法读取 Excel 文件 {src.name}：{exc}", f"cannot read workbook {src.name}: {exc}") from exc
    try:
        names = book.sheetnames
        if sheet is not None:
            chosen = names[sheet] if isinstance(sheet, int) and 0 <= sheet < len(names) else sheet
            if chosen not in names:
                raise ParameterError(f"工作表“{sheet}”不存在（有：{names}）", f"no sheet {sheet!r} (sheets: {names})")
            candidates = [chosen]
        else:
            candidates = names
        first: list[list[Any]] | None = None
        for name in candidates:
            worksheet = book[name]
            if hasattr(worksheet, "reset_dimensions"):
                worksheet.reset_dimensions()
            rows = [list(r) for r in worksheet.iter_rows(min_row=1, values_only=True)]
            first = rows if first is None else first
            if _header_score(rows, layer, columns)[1] >= 2:
                return rows
        return first or []
    except ParameterError:
        raise
    except Exception as exc:
        raise UnreadableFileError(f"无法读取 Excel 文件 {src.name}：{exc}", f"cannot read workbook {src.name}: {exc}") from exc
    finally:
        book.close()


def _header_score(rows: list[list[Any]], layer: str, columns: Mapping[str, str] | None) -> tuple[int, int]:
    """(index of the most likely header row among the first rows, its number of known headers)."""
    known = set().union(*NORMAL_ALIASES[layer].values()) | {norm_header(c) for c in (columns or {})}
    best, best_score = None, 0
    for i, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        score = sum(1 for cell in row if norm_header(cell_text(cell)) in known)
        if score > best_score:
            best, best_score = i, score
    if best is None:  # nothing recognised: the first non-blank row is the header
        best = next((i for i, row in enumerate(rows) if any(cell_text(c) for c in row)), 0)
    return best, best_score


def _rows_to_frame(rows: list[list[Any]], layer: str, columns: Mapping[str, str] | None, name: str) -> pd.DataFrame:
    """Rows below the header as an object DataFrame indexed by the spreadsheet row number (1-based)."""
    while rows and not any(cell_text(c) for c in rows[-1]):
        rows = rows[:-1]  # trailing blank lines are not rows
    if not rows:
        raise EmptyFileError(f"文件 {name} 没有内容", f"file {name} has no content")
    header_at, _ = _header_score(rows, layer, columns)
    header = [cell_text(c) for c in rows[header_at]]
    body = rows[header_at + 1:]
    if not body:
        raise EmptyFileError(f"文件 {name} 只有表头，没有数据行", f"file {name} has a header but no data row")
    width = max(len(header), max(len(r) for r in body))
    labels = _unique_labels(header + [""] * (width - len(header)))
    cells = [list(r) + [None] * (width - len(r)) for r in body]
    frame = pd.DataFrame(cells, columns=labels, dtype=object)
    frame.index = pd.Index(np.arange(header_at + 2, header_at + 2 + len(body)), name="row")
    return frame


def _unique_labels(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    labels = []
    for j, label in enumerate(header):
        label = label or f"列{j + 1}"
        if label in seen:
            seen[label] += 1
            label = f"{label}.{seen[label]}"
        else:
            seen[label] = 0
        labels.append(label)
    return labels


# ======================================================================================= geo files
_DRIVER = {"geojson": "GeoJSON", "gpkg": "GPKG", "zip": "ESRI Shapefile", "shp": "ESRI Shapefile"}  # GDAL drivers
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def _read_geo(src: SourceFile, notes: RowNotes, *, gdal_layer: str | None, max_bytes: int) -> RawTable:
    with tempfile.TemporaryDirectory(prefix="planning-ingest-") as folder:
        folder = Path(folder)
        if src.kind == "zip":
            path = _extract_shapefile(src, folder, gdal_layer, max_bytes)
            gdal_layer = None
        elif src.path is not None:
            path = src.path
        else:
            path = folder / f"upload.{src.kind}"
            path.write_bytes(src.data)
        frame = _gdal_read(path, src, notes, gdal_layer)
    if len(frame) == 0:
        raise EmptyFileError(f"文件 {src.name} 没有要素", f"file {src.name} has no feature")
    geometry = frame.geometry if isinstance(frame, gpd.GeoDataFrame) else None
    if geometry is not None:
        geometry = frame_to_lonlat(geometry, src.name, notes)
    attributes = pd.DataFrame(frame.drop(columns=[frame.geometry.name]) if geometry is not None else frame)
    raw = attributes.astype(object)
    raw.columns = _unique_labels([str(c) for c in raw.columns])
    raw.index = pd.Index(np.arange(1, len(raw) + 1), name="row")
    if geometry is not None:
        geometry = geometry.set_axis(raw.index)
    return RawTable(raw=raw, geometry=geometry, notes=notes)


def _gdal_read(path: Path, src: SourceFile, notes: RowNotes, gdal_layer: str | None) -> pd.DataFrame:
    import pyogrio

    driver = _DRIVER[src.kind]
    if driver == "ESRI Shapefile":  # GDAL has no prefix for it: check the .shp file code (9994) ourselves
        with open(path, "rb") as handle:
            if handle.read(4) != b"\x00\x00\x27\x0a":
                raise UnreadableFileError(f"{src.name} 中的 .shp 文件已损坏", f"the .shp file in {src.name} is damaged")
        target = str(path)
    else:
        target = f"{driver}:{path}"
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(target)]
        if gdal_layer is None and len(layers) > 1:
            notes.add(0, Note.LAYER_CHOSEN, value=layers)
        encodings: list[str | None] = [None]
        if driver == "ESRI Shapefile" and not path.with_suffix(".cpg").exists():
            encodings = ["utf-8", "gb18030"]  # no .cpg: try UTF-8, then GBK/GB18030
        last: Exception | None = None
        for encoding in encodings:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return pyogrio.read_dataframe(target, layer=gdal_layer, encoding=encoding, on_invalid="ignore")
            except UnicodeDecodeError as exc:
                last = exc
        raise EncodingError(f"{src.name} 的属性表既不是 UTF-8 也不是 GBK：请提供 .cpg 文件",
                            f"{src.name}: the attribute table is neither UTF-8 nor GBK; add a .cpg file") from last
    except EncodingError:
        raise
    except Exception as exc:  # pyogrio DataSourceError, DataLayerError, shapely errors...
        raise UnreadableFileError(f"无法读取 {src.name}：{exc}", f"cannot read {src.name}: {exc}") from exc


def _check_archive_sizes(archive: zipfile.ZipFile, name: str, max_bytes: int) -> None:
    limit = UNCOMPRESSED_FACTOR * max_bytes
    total = sum(info.file_size for info in archive.infolist())
    if total > limit:
        raise FileTooLargeError(f"{name} 解压后超过 {limit / 2**20:.0f} MB", f"{name} uncompresses to more than "
                                f"{limit / 2**20:.0f} MB")


def _safe_member(info: zipfile.ZipInfo, name: str) -> None:
    member = info.filename.replace("\\", "/")
    parts = PurePosixPath(member).parts
    is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
    if member.startswith("/") or re.match(r"^[a-zA-Z]:", member) or ".." in parts or is_link:
        raise UnsafeArchiveError(f"{name} 含有不安全的路径“{info.filename}”，未读取",
                                 f"{name} holds an unsafe member path {info.filename!r}; nothing was read")


def _extract_shapefile(src: SourceFile, folder: Path, gdal_layer: str | None, max_bytes: int) -> Path:
    """Copy the chosen shapefile's parts from the zip into ``folder`` as layer.* and return the .shp path."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(src.data) if src.data is not None else src.path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnreadableFileError(f"{src.name} 不是有效的 zip 文件", f"{src.name} is not a valid zip file") from exc
    with archive:
        infos = archive.infolist()
        for info in infos:
            _safe_member(info, src.name)
        _check_archive_sizes(archive, src.name, max_bytes)
        stems: dict[str, dict[str, zipfile.ZipInfo]] = {}
        for info in infos:
            stem, suffix = os.path.splitext(info.filename.replace("\\", "/"))
            if suffix.lower() in _SHAPEFILE_PARTS and not info.is_dir():
                stems.setdefault(stem, {})[suffix.lower()] = info
        shapefiles = sorted(s for s, parts in stems.items()
                            if ".shp" in parts and not PurePosixPath(s).name.startswith("."))  # skip ._ files
        if gdal_layer is not None:
            shapefiles = [s for s in shapefiles if PurePosixPath(s).name == gdal_layer or s == gdal_layer]
        if not shapefiles:
            raise ArchiveError(f"{src.name} 中没有 .shp 文件", f"{src.name} holds no .shp file")
        if len(shapefiles) > 1:
            raise ArchiveError(f"{src.name} 中有多个 shapefile {shapefiles}：请指定 layer", f"{src.name} holds several "
                               f"shapefiles {shapefiles}; choose one with layer=")
        parts = stems[shapefiles[0]]
        missing = [p for p in (".shx", ".dbf") if p not in parts]
        if missing:
            raise ArchiveError(f"{src.name} 中的 shapefile 缺少 {missing}", f"the shapefile in {src.name} lacks {missing}")
        for suffix, info in parts.items():
            _copy_member(archive, info, folder / f"layer{suffix}", src.name)
    return folder / "layer.shp"


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, name: str) -> None:
    """Copy one member, never writing more than its declared size (a lying header is refused)."""
    written = 0
    try:
        with archive.open(info) as member, target.open("wb") as out:
            while chunk := member.read(1 << 20):
                written += len(chunk)
                if written > info.file_size:
                    raise UnsafeArchiveError(f"{name} 中“{info.filename}”的大小与声明不符",
                                             f"{name}: member {info.filename!r} is larger than declared")
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise UnreadableFileError(f"{name} 中的“{info.filename}”已损坏或加密：{exc}",
                                  f"{name}: member {info.filename!r} is damaged or encrypted: {exc}") from exc


def frame_to_lonlat(geometry: gpd.GeoSeries, name: str, notes: RowNotes) -> gpd.GeoSeries:
    """Geometry in EPSG:4326 (from any CRS; a missing CRS is assumed lon/lat when the values allow it)."""
    geometry = geometry.force_2d() if geometry.has_z.any() else geometry
    if geometry.crs is None:
        bounds = geometry.total_bounds
        degrees = -180 <= bounds[0] and bounds[2] <= 180 and -90 <= bounds[1] and bounds[3] <= 90
        if np.all(np.isfinite(bounds)) and degrees:
            notes.add(0, Note.CRS_ASSUMED, value="EPSG:4326")
            return geometry.set_crs(WGS84)
        if not np.all(np.isfinite(bounds)):
            return geometry.set_crs(WGS84)
        raise CoordinateSystemError(f"{name} 没有坐标系（缺少 .prj），且坐标不是经纬度：请提供 .prj 文件",
                                    f"{name} has no CRS (no .prj) and its coordinates are not lon/lat; add the .prj")
    try:
        return geometry.to_crs(WGS84) if geometry.crs != WGS84 else geometry
    except Exception as exc:
        raise CoordinateSystemError(f"{name} 的坐标系无法转换为 WGS84：{geometry.crs}",
                                    f"{name}: cannot transform its CRS {geometry.crs} to WGS84") from exc

