"""Getting raw rows out of a file: bytes, paths and uploads, type detection, CSV/XLSX tables, geo files, safe zips."""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
import dataclasses
from pathlib import Path, PurePosixPath
from typing import IO, Any, Union

import geopandas as gpd
import numpy as np
import pandas as pd

from planning.errors import (
    ArchiveError, CoordinateSystemError, EmptyFileError, EncodingError, FileTooLargeError, FileTypeError,
    ParameterError, UnreadableFileError, UnsafeArchiveError,
)
from planning.ingest.limits import DEFAULT_LIMITS, ReadingLimits
from planning.ingest.result import RowNotes
from planning.ingest.vocabulary import NORMAL_ALIASES, Note, UncomputedFormula, norm_header, cell_text
from planning.model import WGS84

#: Largest input file accepted by default, bytes (200 MiB; see :mod:`planning.ingest.limits`).
DEFAULT_MAX_BYTES = DEFAULT_LIMITS.max_file_bytes
#: A zipped shapefile may hold at most this many times ``max_bytes`` once uncompressed.
UNCOMPRESSED_FACTOR = DEFAULT_LIMITS.uncompressed_factor
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
    #: Cells longer than the limit (cut short in ``raw``): row -> (column, characters, limit).
    long_cells: dict[int, tuple[str, int, int]] = dataclasses.field(default_factory=dict)


def read_table(src: SourceFile, layer: str, columns: Mapping[str, str] | None, *, sheet: str | int | None,
                encoding: str | None, limits: ReadingLimits, gdal_layer: str | None = None) -> RawTable:
    """The file's rows (CSV, XLSX or a geo file), read within ``limits``."""
    notes = RowNotes(src.name)
    if src.kind not in ("csv", "xlsx"):
        return _read_geo(src, notes, gdal_layer=gdal_layer, limits=limits)
    long_cells: dict[int, tuple[int, int]] = {}  # row position -> (column position, characters)
    if src.kind == "csv":
        rows = _csv_rows(src, encoding, notes, limits, long_cells)
    else:
        rows = _xlsx_rows(src, layer, columns, sheet, limits, long_cells)
    raw = _rows_to_frame(rows, layer, columns, src.name)
    first = int(raw.index[0]) - 1 if len(raw) else 0  # position of the first data row in ``rows``
    marked = {k + 1: (str(raw.columns[j]), n, limits.max_cell_chars) for k, (j, n) in long_cells.items()
              if k >= first and j < len(raw.columns)}
    return RawTable(raw=raw, geometry=None, notes=notes, long_cells=marked)


#: Characters of an over-long cell kept in the rejected table.
LONG_CELL_SHOWN = 200


def _cut_long_cells(row: list[Any], position: int, limit: int, long_cells: dict[int, tuple[int, int]]) -> None:
    """Cut the cells of ``row`` longer than ``limit`` characters to :data:`LONG_CELL_SHOWN`, noting the first."""
    for j, cell in enumerate(row):
        if isinstance(cell, str) and len(cell) > limit:
            long_cells.setdefault(position, (j, len(cell)))
            row[j] = cell[:LONG_CELL_SHOWN] + "…"


_UTF8_BOM = b"\xef\xbb\xbf"


def _decode(data: bytes, name: str, encoding: str | None, notes: RowNotes) -> str:
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
    if data.startswith(_UTF8_BOM):  # a UTF-8 byte-order mark over GBK text (some export tools write one)
        try:
            text = data[len(_UTF8_BOM):].decode("gb18030")
        except UnicodeDecodeError:
            pass
        else:
            notes.add(0, Note.BOM_OVER_GBK)
            return text
        raise EncodingError(f"{name} 以 UTF-8 BOM 开头，但正文既不是 UTF-8 也不是 GBK/GB18030：请另存为 UTF-8 CSV",
                            f"{name} starts with a UTF-8 byte-order mark, but its text is neither UTF-8 nor "
                            f"GBK/GB18030: save it as UTF-8 CSV")
    raise EncodingError(f"{name} 既不是 UTF-8 也不是 GBK/GB18030 编码：请另存为 UTF-8 CSV",
                        f"{name} is neither UTF-8 nor GBK/GB18030: save it as UTF-8 CSV")


def _csv_rows(src: SourceFile, encoding: str | None, notes: RowNotes, limits: ReadingLimits,
              long_cells: dict[int, tuple[int, int]]) -> list[list[Any]]:
    """The CSV's rows: the delimiter chosen from the first rows, then one streaming pass that stops at the
    first row past ``limits`` (rows, cells) and cuts over-long cells (``long_cells``)."""
    text = _decode(src.bytes(), src.name, encoding, notes).replace("\x00", "")
    if csv.field_size_limit() < limits.max_file_bytes:  # one long cell is a rejected row, not an unread file
        csv.field_size_limit(limits.max_file_bytes)
    best, best_score = ",", (-1, -1)
    try:
        for delimiter in (",", "\t", ";", "|"):
            head = list(itertools.islice(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter),
                                         HEADER_SCAN_ROWS))
            score = _delimiter_score(head)
            if score > best_score:
                best, best_score = delimiter, score
        rows: list[list[Any]] = []
        cells = 0
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=best):
            cells += len(row)
            limits.check_rows(src.name, len(rows) + 1, cells)
            _cut_long_cells(row, len(rows), limits.max_cell_chars, long_cells)
            rows.append(row)
    except csv.Error as exc:
        raise UnreadableFileError(f"{src.name} 不是有效的 CSV：{exc}", f"{src.name} is not valid CSV: {exc}") from exc
    return rows


def _delimiter_score(rows: list[list[str]]) -> tuple[int, int]:
    """(most known headers in one of the first rows, non-blank cells of the first non-blank row)."""
    known = max((sum(1 for cell in row if norm_header(cell) in _ALL_ALIASES) for row in rows[:HEADER_SCAN_ROWS]),
                default=0)
    first = next((row for row in rows if any(cell.strip() for cell in row)), [])
    return known, sum(1 for cell in first if cell.strip())


_ALL_ALIASES = set().union(*(s for fields in NORMAL_ALIASES.values() for s in fields.values()))


def _xlsx_rows(src: SourceFile, layer: str, columns: Mapping[str, str] | None, sheet: str | int | None,
               limits: ReadingLimits, long_cells: dict[int, tuple[int, int]]) -> list[list[Any]]:
    """The rows of the chosen sheet (``sheet``, else the first with a recognisable header), cached values
    only; a formula without a cached value is an :class:`UncomputedFormula`. The workbook's uncompressed
    size is checked from the zip directory before openpyxl opens it, rows and cells while streaming."""
    import openpyxl

    data = src.bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        total = sum(info.file_size for info in archive.infolist())
        limits.check_uncompressed(src.name, total, min(limits.max_xlsx_uncompressed_bytes,
                                                       limits.max_uncompressed_bytes))
        has_formulas = any(_member_holds(archive, info, (b"<f>", b"<f ", b":f>", b":f "))
                           for info in archive.infolist() if info.filename.startswith("xl/worksheets/"))
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formulas = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False) if has_formulas else None
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
        first: tuple[str, list[list[Any]], dict] | None = None
        for name in candidates:
            cut: dict[int, tuple[int, int]] = {}
            rows = _sheet_rows(book[name], src.name, limits, cut)
            first = (name, rows, cut) if first is None else first
            if _header_score(rows, layer, columns)[1] >= 2:
                first = (name, rows, cut)
                break
        if first is None:
            return []
        name, rows, cut = first
        long_cells.update(cut)
        if formulas is not None:
            _mark_uncomputed(rows, formulas[name])
        return rows
    except (ParameterError, FileTooLargeError):
        raise
    except Exception as exc:
        raise UnreadableFileError(f"无法读取 Excel 文件 {src.name}：{exc}", f"cannot read workbook {src.name}: {exc}") from exc
    finally:
        book.close()
        if formulas is not None:
            formulas.close()


def _sheet_rows(worksheet, name: str, limits: ReadingLimits, long_cells: dict[int, tuple[int, int]]
                ) -> list[list[Any]]:
    """A worksheet's rows as lists, streamed within ``limits``."""
    if hasattr(worksheet, "reset_dimensions"):
        worksheet.reset_dimensions()
    rows: list[list[Any]] = []
    cells = 0
    for values in worksheet.iter_rows(min_row=1, values_only=True):
        row = list(values)
        cells += len(row)
        limits.check_rows(name, len(rows) + 1, cells)
        _cut_long_cells(row, len(rows), limits.max_cell_chars, long_cells)
        rows.append(row)
    return rows


def _mark_uncomputed(rows: list[list[Any]], worksheet) -> None:
    """Blank cells of ``rows`` that hold a formula in ``worksheet`` (the same sheet read for formulas)
    become :class:`UncomputedFormula`: the file carries no computed value for them."""
    if hasattr(worksheet, "reset_dimensions"):
        worksheet.reset_dimensions()
    for i, values in enumerate(worksheet.iter_rows(min_row=1, max_row=len(rows), values_only=True)):
        row = rows[i]
        for j, value in enumerate(values):
            if j < len(row) and row[j] is None and isinstance(value, str) and value.startswith("="):
                row[j] = UncomputedFormula(value)


def _member_holds(archive: zipfile.ZipFile, info: zipfile.ZipInfo, needles: tuple[bytes, ...]) -> bool:
    """Whether a zip member's bytes contain one of ``needles`` (read in 1 MiB pieces, never whole)."""
    tail = b""
    with archive.open(info) as member:
        while chunk := member.read(1 << 20):
            window = tail + chunk
            if any(n in window for n in needles):
                return True
            tail = window[-8:]
    return False


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


def _read_geo(src: SourceFile, notes: RowNotes, *, gdal_layer: str | None, limits: ReadingLimits) -> RawTable:
    with tempfile.TemporaryDirectory(prefix="planning-ingest-") as folder:
        folder = Path(folder)
        if src.kind == "zip":
            path = _extract_shapefile(src, folder, gdal_layer, limits)
            gdal_layer = None
        elif src.path is not None:
            path = src.path
        else:
            path = folder / f"upload.{src.kind}"
            path.write_bytes(src.data)
        frame = _gdal_read(path, src, notes, gdal_layer, limits)
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
    long_cells: dict[int, tuple[str, int, int]] = {}
    for column in raw.columns:
        lengths = raw[column].map(lambda v: len(v) if isinstance(v, str) else 0)
        for row in raw.index[(lengths > limits.max_cell_chars).to_numpy()]:
            long_cells.setdefault(int(row), (column, int(lengths[row]), limits.max_cell_chars))
            raw.at[row, column] = raw.at[row, column][:LONG_CELL_SHOWN] + "…"
    return RawTable(raw=raw, geometry=geometry, notes=notes, long_cells=long_cells)


def _geojson_object_limit(limits: ReadingLimits) -> str:
    """OGR_GEOJSON_MAX_OBJ_SIZE for GDAL's GeoJSON reader, MB. GDAL counts a single object's parsed size
    (its json-c objects, about twice the text or more: a 131 MiB file passed its default of 200); the file
    size limit already bounds the text, so GDAL is allowed four times that."""
    return str(4 * -(-limits.max_file_bytes // 2**20))


def _gdal_read(path: Path, src: SourceFile, notes: RowNotes, gdal_layer: str | None,
               limits: ReadingLimits) -> pd.DataFrame:
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
        if driver == "GeoJSON":
            pyogrio.set_gdal_config_options({"OGR_GEOJSON_MAX_OBJ_SIZE": _geojson_object_limit(limits)})
        layers = [str(row[0]) for row in pyogrio.list_layers(target)]
        if gdal_layer is None and len(layers) > 1:
            notes.add(0, Note.LAYER_CHOSEN, value=layers[0], layers="、".join(layers), layers_en=", ".join(layers))
            gdal_layer = layers[0]
        elif gdal_layer is not None and gdal_layer not in layers:
            raise ParameterError(f"{src.name} 中没有图层“{gdal_layer}”（有：{'、'.join(layers)}）",
                                 f"{src.name} has no layer {gdal_layer!r} (layers: {', '.join(layers)})")
        info = pyogrio.read_info(target, layer=gdal_layer)
        features = int(info.get("features", -1))
        if features >= 0:
            limits.check_rows(src.name, features, features * (len(info.get("fields", ())) + 1))
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
    except (EncodingError, FileTooLargeError, ParameterError):
        raise
    except Exception as exc:  # pyogrio DataSourceError, DataLayerError, shapely errors...
        raise UnreadableFileError(f"无法读取 {src.name}：{exc}", f"cannot read {src.name}: {exc}") from exc




def _safe_member(info: zipfile.ZipInfo, name: str) -> None:
    member = info.filename.replace("\\", "/")
    parts = PurePosixPath(member).parts
    is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
    if member.startswith("/") or re.match(r"^[a-zA-Z]:", member) or ".." in parts or is_link:
        raise UnsafeArchiveError(f"{name} 含有不安全的路径“{info.filename}”，未读取",
                                 f"{name} holds an unsafe member path {info.filename!r}; nothing was read")


def _extract_shapefile(src: SourceFile, folder: Path, gdal_layer: str | None, limits: ReadingLimits) -> Path:
    """Copy the chosen shapefile's parts from the zip into ``folder`` as layer.* and return the .shp path."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(src.data) if src.data is not None else src.path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnreadableFileError(f"{src.name} 不是有效的 zip 文件", f"{src.name} is not a valid zip file") from exc
    with archive:
        infos = archive.infolist()
        for info in infos:
            _safe_member(info, src.name)
        limits.check_uncompressed(src.name, sum(i.file_size for i in infos), limits.max_uncompressed_bytes)
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

