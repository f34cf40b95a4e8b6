"""Read a planner's own files into the model's layers, keeping every input row: clean or rejected with a reason.

Readers (each returns an :class:`IngestResult`; ``counts in = clean + rejected``, always)
    :func:`read_pharmacies`      CSV (UTF-8, GBK/GB18030, UTF-16), XLSX, GeoJSON, GPKG, zipped shapefile
    :func:`read_boundaries`      county or sub-district polygons: GeoJSON, GPKG, zipped shapefile
    :func:`read_population`      population per sub-district: CSV, XLSX
    :func:`read_fund_status`     county fund status (rules B3, B4): CSV, XLSX
    :func:`read_population_grid` a population raster (GeoTIFF) or weighted points, as points with ``persons``
    :func:`read_buildings`       residential building footprints, with ``persons`` per building
:func:`build_region` assembles a :class:`planning.model.Region` from them (or straight from files), joining
pharmacies to boundaries, sub-districts to counties and population to sub-districts, and fills
``Region.rejected`` with every row that did not make it.

Row numbers
    ``row`` is the row number the planner sees in Excel for CSV/XLSX (the header row counts, so with
    the header on the first line the first data row is row 2), and the feature number (first
    feature = 1) for GeoJSON, GPKG and shapefiles.

Column names, accepted values and defaults are tabulated by :func:`columns_markdown` (docs/INPUT_FORMATS.md).
Coordinates are converted to WGS84 with :mod:`planning.coords`; every layer is returned in EPSG:4326.

Safety: nothing read is executed or unpickled (no pickle, no formulas evaluated: XLSX cells give their
cached values), files and archive contents have size limits, and zipped shapefiles are read from a
private temporary folder into which only the shapefile's own parts are copied under fixed names.
GDAL is always told which driver to use, so a renamed file cannot select another format.
"""

from __future__ import annotations

import csv
import datetime as _dt
import enum
import io
import math
import os
import re
import tempfile
import unicodedata
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal, Union

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planning import coords
from planning.errors import (
    ArchiveError, CoordinateSystemError, EmptyFileError, EncodingError, FileTooLargeError, FileTypeError,
    MissingColumnError, ParameterError, UnreadableFileError, UnsafeArchiveError,
)
from planning.model import (
    COUNTY_SCHEMA, PHARMACY_SCHEMA, SERVICE_COLUMNS, SUBDISTRICT_SCHEMA, WGS84, Region, Service,
    SubdistrictKind, validate_region,
)

#: Largest input file accepted by default, bytes (200 MiB).
DEFAULT_MAX_BYTES = 200 * 2**20
#: An archive (zipped shapefile, XLSX) may hold at most this many times ``max_bytes`` once uncompressed.
UNCOMPRESSED_FACTOR = 4
#: Largest population raster read, cells.
DEFAULT_MAX_CELLS = 20_000_000
#: Rows searched for the header row (titles above the header are common in bureau sheets).
HEADER_SCAN_ROWS = 20
#: Urban per-capita housing floor area, m² per person (2020 census, 城镇家庭人均住房建筑面积 38.62 m²):
#: the default for estimating residents of a building from its floor area.
DEFAULT_M2_PER_PERSON = 38.6

Source = Union[str, os.PathLike, bytes, bytearray, IO[bytes]]
Layer = Literal["pharmacies", "counties", "subdistricts", "population", "fund_status", "population_points",
                "buildings"]


class IngestWarning(UserWarning):
    """Something was assumed while assembling a region (a default value, a derived layer)."""


# ======================================================================================= reasons
class Reason(str, enum.Enum):
    """Why an input row was rejected. ``Reason.X.text(**detail)`` gives the bilingual explanation."""

    EMPTY_ROW = "empty_row"
    MISSING_VALUE = "missing_value"
    MISSING_COORDINATE = "missing_coordinate"
    NON_NUMERIC_COORDINATE = "non_numeric_coordinate"
    SWAPPED_LON_LAT = "swapped_lon_lat"
    OUTSIDE_CHINA = "outside_china"
    OUTSIDE_BOUNDARIES = "outside_boundaries"
    DUPLICATE_ID = "duplicate_id"
    UNKNOWN_SERVICE_VALUE = "unknown_service_value"
    INVALID_VALUE = "invalid_value"
    EMPTY_GEOMETRY = "empty_geometry"
    INVALID_GEOMETRY = "invalid_geometry"
    WRONG_GEOMETRY_TYPE = "wrong_geometry_type"
    UNKNOWN_KIND = "unknown_kind"
    NO_COUNTY = "no_county"
    NO_POPULATION = "no_population"
    INVALID_POPULATION = "invalid_population"
    UNMATCHED = "unmatched"

    def text(self, **detail: Any) -> str:
        """The reason as "中文 / English", with ``detail`` (column, value, rows, ...) filled in."""
        zh, en = _REASON_TEXT[self]
        return f"{zh.format(**detail)} / {en.format(**detail)}"


_REASON_TEXT: dict[Reason, tuple[str, str]] = {
    Reason.EMPTY_ROW: ("空行", "empty row"),
    Reason.MISSING_VALUE: ("“{column}”为空", "'{column}' is empty"),
    Reason.MISSING_COORDINATE: ("坐标缺失（{column}）", "missing coordinate ({column})"),
    Reason.NON_NUMERIC_COORDINATE: ("坐标“{column}”不是数字：{value}", "coordinate '{column}' is not a number: {value}"),
    Reason.SWAPPED_LON_LAT: ("经纬度可能颠倒（经度 {lon}，纬度 {lat}）",
                             "longitude and latitude look swapped (lon {lon}, lat {lat})"),
    Reason.OUTSIDE_CHINA: ("坐标不在中国范围内（经度 {lon}，纬度 {lat}）；是否为投影坐标（米）？",
                           "coordinate outside China (lon {lon}, lat {lat}); projected metres?"),
    Reason.OUTSIDE_BOUNDARIES: ("位置不在任何县（市、区）或街道/乡镇边界内",
                                "location is outside every county and sub-district boundary"),
    Reason.DUPLICATE_ID: ("编号“{value}”重复（第 {rows} 行）", "duplicate id '{value}' (rows {rows})"),
    Reason.UNKNOWN_SERVICE_VALUE: ("业务列“{column}”的值无法识别：{value}", "unknown service value in '{column}': {value}"),
    Reason.INVALID_VALUE: ("“{column}”的值无法识别：{value}", "unrecognised value in '{column}': {value}"),
    Reason.EMPTY_GEOMETRY: ("几何为空或无法读取", "geometry is missing, empty or unreadable"),
    Reason.INVALID_GEOMETRY: ("几何无效且无法修复：{value}", "invalid geometry that cannot be repaired: {value}"),
    Reason.WRONG_GEOMETRY_TYPE: ("几何类型应为 {expected}，实际为 {value}", "geometry should be {expected}, found {value}"),
    Reason.UNKNOWN_KIND: ("无法从名称“{value}”判断街道或乡镇；请加“类型”列（街道/镇）",
                          "cannot tell street or town from the name '{value}'; add a 'kind' column (street/town)"),
    Reason.NO_COUNTY: ("无法确定所属县（市、区）：{value}", "cannot assign a county: {value}"),
    Reason.NO_POPULATION: ("街道/乡镇缺少人口数据", "sub-district has no population"),
    Reason.INVALID_POPULATION: ("人口值无效：{value}", "invalid population value: {value}"),
    Reason.UNMATCHED: ("“{value}”与任何{target}都不匹配", "'{value}' matches no {target_en}"),
}


class Note(str, enum.Enum):
    """Something done to a row that was kept (a repair, a default), or to the whole file (row 0)."""

    GEOMETRY_REPAIRED = "geometry_repaired"
    DEFAULT_USED = "default_used"
    COLUMN_IGNORED = "column_ignored"
    COLUMN_DROPPED = "column_dropped"
    CRS_ASSUMED = "crs_assumed"
    LAYER_CHOSEN = "layer_chosen"

    def text(self, **detail: Any) -> str:
        zh, en = _NOTE_TEXT[self]
        return f"{zh.format(**detail)} / {en.format(**detail)}"


_NOTE_TEXT: dict[Note, tuple[str, str]] = {
    Note.GEOMETRY_REPAIRED: ("几何无效（{value}），已用 make_valid 修复", "invalid geometry ({value}) repaired with make_valid"),
    Note.DEFAULT_USED: ("没有“{column}”列，全部取默认值 {value}", "no '{column}' column: every row set to {value}"),
    Note.COLUMN_IGNORED: ("列“{column}”未使用（{value}）", "column '{column}' not used ({value})"),
    Note.COLUMN_DROPPED: ("“{column}”在第 {rows} 行为空，该列整体不导入（模型不允许空值）",
                          "'{column}' is blank in rows {rows}: the column is left out (the model allows no blanks)"),
    Note.CRS_ASSUMED: ("文件没有坐标系，按经纬度（{value}）读取", "the file has no CRS; read as longitude/latitude ({value})"),
    Note.LAYER_CHOSEN: ("文件有多个图层 {value}，读取了第一个", "the file has several layers {value}; the first was read"),
}


# ======================================================================================= column names
#: Every field each layer understands and the header names accepted for it (matched after
#: normalisation: NFKC, lower case, text in brackets, spaces, '_', '-', '*', quotes and colons removed).
FIELD_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "pharmacies": {
        "pharmacy_id": ("pharmacy_id", "统一社会信用代码", "社会信用代码", "信用代码", "定点机构编码", "医保机构编码",
                        "机构编码", "药店编码", "医保编码", "编号", "编码", "id", "uscc", "code"),
        "name": ("name", "名称", "药店名称", "机构名称", "定点机构名称", "单位名称", "企业名称", "pharmacy_name"),
        "address": ("address", "地址", "详细地址", "经营地址", "注册地址", "药店地址", "addr"),
        "lon": ("lon", "经度", "lng", "longitude", "long", "x"),
        "lat": ("lat", "纬度", "latitude", "y"),
        "lonlat": ("lonlat", "经纬度", "坐标", "lnglat", "location"),
        "services": ("services", "业务类别", "开通业务", "医保业务", "服务项目", "服务类型", "业务范围", "开通服务"),
        "personal_account": ("personal_account", "个人账户", "个账"),
        "outpatient_pooling": ("outpatient_pooling", "门诊统筹", "职工门诊统筹", "普通门诊统筹"),
        "chronic_disease": ("chronic_disease", "门诊慢特病", "慢特病", "门特", "慢病", "chronic"),
        "dual_channel": ("dual_channel", "双通道", "双通道药店"),
        "chain": ("chain", "连锁", "是否连锁", "连锁/单体", "连锁或单体", "经营方式", "经营类型"),
        "info_system_ready": ("info_system_ready", "信息系统改造", "信息系统改造完成", "系统改造", "信息系统",
                              "信息化改造"),
        "cross_region_settlement": ("cross_region_settlement", "异地结算", "异地直接结算", "跨区域结算",
                                    "同城异地结算"),
        "annual_volume_yuan": ("annual_volume_yuan", "年业务量", "业务量", "年结算金额", "医保结算金额", "结算金额",
                               "volume"),
        "suspensions": ("suspensions", "暂停次数", "中止次数", "暂停结算次数"),
        "credit_score": ("credit_score", "信用评分", "信用分", "信用积分", "信用得分"),
        "months_operating": ("months_operating", "经营月数", "营业月数", "经营时长"),
        "risk_flag": ("risk_flag", "风险标记", "风险提示", "风险药店", "风险"),
    },
    "subdistricts": {
        "code": ("code", "代码", "编码", "区划代码", "行政区划代码", "行政区代码", "统计用区划代码", "街道代码",
                 "乡镇代码", "街乡代码", "xzqdm", "adcode", "id"),
        "name": ("name", "名称", "行政区名称", "区划名称", "街道名称", "乡镇名称", "街乡名称", "街道", "乡镇",
                 "街道乡镇", "xzqmc"),
        "kind": ("kind", "类型", "街乡类型", "类别", "街道或乡镇", "type"),
        "county_code": ("county_code", "县代码", "区县代码", "所属区县代码", "县级代码", "county"),
        "population": ("population", "常住参保人口", "参保人口", "常住人口", "人口", "pop"),
    },
    "counties": {
        "code": ("code", "代码", "编码", "区划代码", "行政区划代码", "行政区代码", "县代码", "区县代码", "xzqdm",
                 "adcode", "id"),
        "name": ("name", "名称", "行政区名称", "区划名称", "县名称", "区县名称", "区县", "县", "xzqmc"),
        "fund_deficit_last_year": ("fund_deficit_last_year", "上年亏损", "上年度亏损", "上年基金亏损",
                                   "职工医保基金当期亏损", "当期亏损", "基金亏损"),
        "fund_deficit_forecast": ("fund_deficit_forecast", "预计亏损", "本年预计亏损", "当年预计亏损", "预测亏损"),
        "fund_warning_letter": ("fund_warning_letter", "预警函", "基金预警函", "基金预警", "预警"),
    },
    "population": {
        "code": ("code", "代码", "编码", "区划代码", "行政区划代码", "统计用区划代码", "街道代码", "乡镇代码",
                 "xzqdm", "id"),
        "name": ("name", "名称", "街道名称", "乡镇名称", "街乡名称", "街道", "乡镇", "街道乡镇", "xzqmc"),
        "population": ("population", "常住参保人口", "参保人口", "常住人口", "人口", "人口数", "pop"),
    },
    "population_points": {
        "lon": ("lon", "经度", "lng", "longitude", "x"),
        "lat": ("lat", "纬度", "latitude", "y"),
        "persons": ("persons", "人口", "人数", "人口数", "population", "pop", "value"),
    },
    "buildings": {
        "persons": ("persons", "人口", "人数", "居住人口", "population", "pop"),
        "floors": ("floors", "层数", "楼层", "楼层数", "levels", "building:levels"),
    },
}
FIELD_ALIASES = {**{k: v for k, v in FIELD_ALIASES.items() if k in ("pharmacies", "subdistricts", "counties")},
                 "fund_status": dict(FIELD_ALIASES["counties"]),
                 **{k: v for k, v in FIELD_ALIASES.items() if k not in ("pharmacies", "subdistricts", "counties")}}

#: Accepted values in yes/no columns (after NFKC, trimming and lower case). A blank cell is "no".
TRUE_VALUES = frozenset({"是", "有", "已开通", "开通", "已", "y", "yes", "true", "t", "1", "✓", "✔", "√", "☑", "对",
                         "已完成", "完成", "已改造", "支持", "连锁", "连锁店", "连锁药店"})
FALSE_VALUES = frozenset({"", "否", "无", "没有", "未开通", "未", "不", "n", "no", "false", "f", "0", "×", "✗", "✘",
                          "☐", "未完成", "未改造", "不支持", "-", "—", "－", "/", "单体", "单体店", "单体药店", "独立"})
#: Words for each service in a service-list column such as "门诊统筹、慢特病".
SERVICE_WORDS: dict[str, tuple[str, ...]] = {
    Service.PERSONAL_ACCOUNT.value: ("个人账户", "个人帐户", "个账", "personal account", "personal_account"),
    Service.OUTPATIENT_POOLING.value: ("门诊统筹", "职工门诊统筹", "普通门诊统筹", "统筹", "outpatient pooling",
                                       "outpatient_pooling"),
    Service.CHRONIC_DISEASE.value: ("门诊慢特病", "慢特病", "门诊慢性病", "慢性病", "门特", "慢病", "特病",
                                    "chronic disease", "chronic_disease", "chronic"),
    Service.DUAL_CHANNEL.value: ("双通道", "双通道药店", "dual channel", "dual_channel", "dual-channel"),
}
_NO_SERVICE_WORDS = frozenset({"", "无", "none", "-", "—"})
_SERVICE_SPLIT = re.compile(r"[、,;；/|+\n\t]+|和|及")
#: Values of the sub-district ``kind`` column.
KIND_VALUES: dict[str, tuple[str, ...]] = {
    SubdistrictKind.STREET.value: ("street", "街道", "街", "街道办事处", "城区", "urban"),
    SubdistrictKind.TOWN.value: ("town", "镇", "乡", "乡镇", "township", "rural", "农村"),
}

_REQUIRED = {
    "pharmacies": ("pharmacy_id", "name", "address"),
    "subdistricts": ("code", "name"),
    "counties": ("code", "name"),
    "population": ("population",),
    "fund_status": (),
    "population_points": ("persons",),
    "buildings": (),
}


def _text(value: Any) -> str:
    """A cell as trimmed text ("" for blank); whole floats lose their ".0" (codes typed as numbers)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    return str(value).strip()


def _norm_header(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】", "", text)
    return re.sub(r"[\s_\-*\"'“”‘’:.。]", "", text)


def _norm_token(value: Any) -> str:
    return re.sub(r"^[\"'“”‘’\s]+|[\"'“”‘’\s]+$", "", unicodedata.normalize("NFKC", _text(value))).lower()


_NORMAL_ALIASES = {layer: {f: {_norm_header(a) for a in aliases} for f, aliases in fields.items()}
                   for layer, fields in FIELD_ALIASES.items()}
_TRUE = {_norm_token(v) for v in TRUE_VALUES}
_FALSE = {_norm_token(v) for v in FALSE_VALUES}
_SERVICE_OF_WORD = {_norm_token(w): s for s, words in SERVICE_WORDS.items() for w in words}
_KIND_OF_WORD = {_norm_token(w): k for k, words in KIND_VALUES.items() for w in words}


#: Fields required in combination (shown in the docs table).
_REQUIRED_WHEN = {
    ("pharmacies", "lon"): "lon + lat, or lonlat, or point geometry",
    ("pharmacies", "lat"): "lon + lat, or lonlat, or point geometry",
    ("pharmacies", "lonlat"): "lon + lat, or lonlat, or point geometry",
    **{("pharmacies", f): "services, or at least one service column"
       for f in ("services", *SERVICE_COLUMNS)},
    ("population", "code"): "code or name", ("population", "name"): "code or name",
    ("fund_status", "code"): "code or name", ("fund_status", "name"): "code or name",
    **{("fund_status", f): "at least one of the three" for f in
       ("fund_deficit_last_year", "fund_deficit_forecast", "fund_warning_letter")},
    ("population_points", "lon"): "lon + lat, or point geometry",
    ("population_points", "lat"): "lon + lat, or point geometry",
}


def columns_markdown() -> str:
    """The accepted header names per layer and field as a Markdown table (for the README)."""
    lines = ["| layer | field | required | accepted headers |", "|---|---|---|---|"]
    for layer, fields in FIELD_ALIASES.items():
        for name, aliases in fields.items():
            required = "yes" if name in _REQUIRED[layer] else _REQUIRED_WHEN.get((layer, name), "")
            lines.append(f"| {layer} | `{name}` | {required} | {', '.join(aliases)} |")
    return "\n".join(lines)


# ======================================================================================= value parsers
def parse_flag(value: Any) -> bool | None:
    """A yes/no cell as bool: 是/否, Y/N, 1/0, ✓/×, true/false, 已开通/未开通, 连锁/单体 ... (blank is False).

    Returns None for a value that is not recognised.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return False if math.isnan(value) else {1.0: True, 0.0: False}.get(float(value))  # NaN: a blank cell
    token = _norm_token(value)
    if token in _TRUE:
        return True
    if token in _FALSE:
        return False
    return None


def parse_services(value: Any) -> tuple[set[str], list[str]]:
    """A service-list cell such as "门诊统筹、慢特病" as (set of :class:`~planning.model.Service` values, unknown words)."""
    found: set[str] = set()
    unknown: list[str] = []
    for word in _SERVICE_SPLIT.split(_text(value)):
        token = _norm_token(word)
        if token in _NO_SERVICE_WORDS:
            continue
        if token in _SERVICE_OF_WORD:
            found.add(_SERVICE_OF_WORD[token])
        else:
            unknown.append(word.strip())
    return found, unknown


class _Invalid:
    """Marker for an unparseable number."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID = _Invalid()
_NUMBER = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)(万元|万人|万|元|人|次|分|个月|月|%)?$")
_DMS = re.compile(r"^(\d+(?:\.\d+)?)°(?:(\d+(?:\.\d+)?)['′])?(?:(\d+(?:\.\d+)?)(?:\"|″|′′|''))?$")


def parse_number(value: Any) -> float | None | _Invalid:
    """A numeric cell as float: "1,234.5", "12.3万" (x 10,000), "300元"; None when blank, :data:`INVALID` otherwise."""
    if isinstance(value, (bool, np.bool_)):
        return INVALID
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = float(value)
        return None if math.isnan(value) else (value if math.isfinite(value) else INVALID)
    text = unicodedata.normalize("NFKC", _text(value)).lower().replace(",", "").replace(" ", "")
    if text == "":
        return None
    match = _NUMBER.match(text)
    if not match:
        return INVALID
    number = float(match.group(1)) * (10_000 if (match.group(2) or "").startswith("万") else 1)
    return number if math.isfinite(number) else INVALID


def parse_coordinate(value: Any) -> float | None | _Invalid:
    """A longitude or latitude cell in decimal degrees, or degrees-minutes-seconds such as 112°56′30″."""
    number = parse_number(value)
    if number is not INVALID or isinstance(value, (bool, np.bool_)):
        return number
    text = unicodedata.normalize("NFKC", _text(value)).replace(" ", "")
    match = _DMS.match(text)
    if not match:
        return INVALID
    d, m, s = (float(g) if g else 0.0 for g in match.groups())
    return d + m / 60 + s / 3600 if m < 60 and s < 60 else INVALID


def _code(value: Any) -> str:
    """An administrative code as text (numbers typed into Excel lose their ".0")."""
    return _text(value).replace(" ", "")


def _code_key(code: str, digits: int) -> str:
    """``code`` cut to ``digits`` when it is a longer code padded with zeros (430102001000 -> 430102001)."""
    if code.isdigit() and len(code) > digits and set(code[digits:]) == {"0"}:
        return code[:digits]
    return code


def _name_key(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).replace(" ", "")
    return re.sub(r"(街道)?办事处$", "街道", text)


def infer_kind(name: str) -> str | None:
    """"street" for 街道/办事处 names, "town" for 镇/乡/苏木 names, None otherwise."""
    text = _name_key(name)
    if text.endswith(("街道", "街道办")):
        return SubdistrictKind.STREET.value
    if text.endswith(("镇", "乡", "苏木")):
        return SubdistrictKind.TOWN.value
    return None


# ======================================================================================= result
@dataclass(frozen=True)
class IngestResult:
    """What a reader made of one file.

    Attributes
    ----------
    layer : str
        "pharmacies", "subdistricts", "counties", "population", "fund_status", "population_points"
        or "buildings".
    source : str
        The file name shown in reports.
    clean : DataFrame or GeoDataFrame
        Accepted rows, indexed by their input row number (see the module docstring), in EPSG:4326.
    rejected : DataFrame
        One row per rejected input row: ``source``, ``row``, ``reason_code`` (a :class:`Reason` value,
        the first problem found), ``reason`` (every problem, "中文 / English"), then the raw cells.
    notes : DataFrame
        Repairs and defaults applied to kept rows, and file-level remarks (``row`` 0): ``source``,
        ``row``, ``note_code``, ``note``.
    n_in : int
        Input rows read: always ``len(clean) + len(rejected)``.
    datum : coords.Datum
        The declared coordinate system the coordinates were converted from.
    mapping : dict
        Field -> header of the file it was read from.
    """

    layer: str
    source: str
    clean: pd.DataFrame
    rejected: pd.DataFrame
    notes: pd.DataFrame
    n_in: int
    datum: coords.Datum = coords.Datum.WGS84
    mapping: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n_in != len(self.clean) + len(self.rejected):
            raise AssertionError(f"{self.layer}: {self.n_in} rows in, {len(self.clean)} clean + "
                                 f"{len(self.rejected)} rejected")

    @property
    def n_clean(self) -> int:
        return len(self.clean)

    @property
    def n_rejected(self) -> int:
        return len(self.rejected)

    def summary(self, lang: str = "zh") -> str:
        """One line: rows read, kept and rejected."""
        if lang == "zh":
            return f"{self.source}：读入 {self.n_in} 行，导入 {self.n_clean} 行，拒绝 {self.n_rejected} 行"
        return f"{self.source}: {self.n_in} rows read, {self.n_clean} kept, {self.n_rejected} rejected"


class _Problems:
    """Problems found per input row; a row with any problem is rejected."""

    def __init__(self, rows: pd.Index):
        self.rows = rows
        self._found: dict[int, list[tuple[Reason, str]]] = {}

    def add(self, row: int, reason: Reason, **detail: Any) -> None:
        found = self._found.setdefault(int(row), [])
        if not (found and found[0][0] is Reason.EMPTY_ROW):  # an empty row needs no further explanation
            found.append((reason, reason.text(**detail)))

    def add_all(self, where: Iterable[int], reason: Reason, **detail: Any) -> None:
        for row in where:
            self.add(row, reason, **detail)

    def has(self, row: int) -> bool:
        return int(row) in self._found

    @property
    def bad(self) -> np.ndarray:
        return np.fromiter((int(r) in self._found for r in self.rows), dtype=bool, count=len(self.rows))

    def frame(self, raw: pd.DataFrame, source: str) -> pd.DataFrame:
        """The rejected table: source, row, reason_code, reason, raw cells as text."""
        rows = [r for r in raw.index if int(r) in self._found]
        head = pd.DataFrame({
            "source": source,
            "row": np.asarray(rows, dtype=np.int64),
            "reason_code": [self._found[int(r)][0][0].value for r in rows],
            "reason": [_join_texts([t for _, t in self._found[int(r)]]) for r in rows],
        })
        cells = raw.loc[rows].map(_text) if len(raw.columns) else pd.DataFrame(index=rows)
        cells.columns = [c if c not in head.columns else f"{c} (raw)" for c in cells.columns]
        return pd.concat([head, cells.reset_index(drop=True)], axis=1)


def _join_texts(texts: list[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    zh, en = zip(*(t.split(" / ", 1) for t in texts))
    return f"{'；'.join(zh)} / {'; '.join(en)}"


class _Notes:
    def __init__(self, source: str):
        self.source = source
        self.items: list[dict[str, Any]] = []

    def add(self, row: int, note: Note, **detail: Any) -> None:
        self.items.append({"source": self.source, "row": int(row), "note_code": note.value,
                           "note": note.text(**detail)})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.items, columns=["source", "row", "note_code", "note"])


# ======================================================================================= sources
@dataclass(frozen=True)
class _Source:
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


def _load(source: Source, source_name: str | None, max_bytes: int, accepted: tuple[str, ...]) -> _Source:
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
    return _Source(name=name, kind=kind, data=data, path=path)


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
        return "xlsx" if "[Content_Types].xml" in names else "zip"
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
class _Table:
    """Raw input rows (index = row number, object cells), optional geometry, and notes so far."""

    raw: pd.DataFrame
    geometry: gpd.GeoSeries | None
    notes: _Notes


def _read_table(src: _Source, layer: str, columns: Mapping[str, str] | None, *, sheet: str | int | None,
                encoding: str | None, max_bytes: int, gdal_layer: str | None = None) -> _Table:
    notes = _Notes(src.name)
    if src.kind == "csv":
        rows = _csv_rows(src, encoding)
        raw = _rows_to_frame(rows, layer, columns, src.name)
    elif src.kind == "xlsx":
        rows = _xlsx_rows(src, layer, columns, sheet, max_bytes)
        raw = _rows_to_frame(rows, layer, columns, src.name)
    else:
        return _read_geo(src, notes, gdal_layer=gdal_layer, max_bytes=max_bytes)
    return _Table(raw=raw, geometry=None, notes=notes)


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


def _csv_rows(src: _Source, encoding: str | None) -> list[list[Any]]:
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
    known = max((sum(1 for cell in row if _norm_header(cell) in _ALL_ALIASES) for row in rows[:HEADER_SCAN_ROWS]),
                default=0)
    first = next((row for row in rows if any(cell.strip() for cell in row)), [])
    return known, sum(1 for cell in first if cell.strip())


_ALL_ALIASES = set().union(*(s for fields in _NORMAL_ALIASES.values() for s in fields.values()))


def _xlsx_rows(src: _Source, layer: str, columns: Mapping[str, str] | None, sheet: str | int | None,
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
    known = set().union(*_NORMAL_ALIASES[layer].values()) | {_norm_header(c) for c in (columns or {})}
    best, best_score = None, 0
    for i, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        score = sum(1 for cell in row if _norm_header(_text(cell)) in known)
        if score > best_score:
            best, best_score = i, score
    if best is None:  # nothing recognised: the first non-blank row is the header
        best = next((i for i, row in enumerate(rows) if any(_text(c) for c in row)), 0)
    return best, best_score


def _rows_to_frame(rows: list[list[Any]], layer: str, columns: Mapping[str, str] | None, name: str) -> pd.DataFrame:
    """Rows below the header as an object DataFrame indexed by the spreadsheet row number (1-based)."""
    while rows and not any(_text(c) for c in rows[-1]):
        rows = rows[:-1]  # trailing blank lines are not rows
    if not rows:
        raise EmptyFileError(f"文件 {name} 没有内容", f"file {name} has no content")
    header_at, _ = _header_score(rows, layer, columns)
    header = [_text(c) for c in rows[header_at]]
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


def _read_geo(src: _Source, notes: _Notes, *, gdal_layer: str | None, max_bytes: int) -> _Table:
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
        geometry = _to_lonlat(geometry, src.name, notes)
    attributes = pd.DataFrame(frame.drop(columns=[frame.geometry.name]) if geometry is not None else frame)
    raw = attributes.astype(object)
    raw.columns = _unique_labels([str(c) for c in raw.columns])
    raw.index = pd.Index(np.arange(1, len(raw) + 1), name="row")
    if geometry is not None:
        geometry = geometry.set_axis(raw.index)
    return _Table(raw=raw, geometry=geometry, notes=notes)


def _gdal_read(path: Path, src: _Source, notes: _Notes, gdal_layer: str | None) -> pd.DataFrame:
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


def _extract_shapefile(src: _Source, folder: Path, gdal_layer: str | None, max_bytes: int) -> Path:
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


def _to_lonlat(geometry: gpd.GeoSeries, name: str, notes: _Notes) -> gpd.GeoSeries:
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


# ======================================================================================= column mapping
def _map_columns(raw: pd.DataFrame, layer: str, columns: Mapping[str, str] | None, name: str,
                 notes: _Notes) -> dict[str, str]:
    """Field -> header of ``raw``: explicit ``columns`` (header -> field) first, then the alias table."""
    fields = FIELD_ALIASES[layer]
    mapping: dict[str, str] = {}
    for header, target in (columns or {}).items():
        if target not in fields:
            raise ParameterError(f"列映射的目标“{target}”未知，可用：{list(fields)}",
                                 f"column mapping target {target!r} is unknown; fields: {list(fields)}")
        if header not in raw.columns:
            raise MissingColumnError(f"{name} 中没有列映射指定的列“{header}”（有：{list(raw.columns)}）",
                                     f"{name} has no column {header!r} named in the column mapping "
                                     f"(columns: {list(raw.columns)})")
        mapping[target] = header
    explicit = set(mapping)
    taken = set(mapping.values())
    candidates: dict[str, list[tuple[int, int, str]]] = {}  # field -> (alias rank, column position, header)
    for position, header in enumerate(raw.columns):
        if header in taken:
            continue
        key = _norm_header(header)
        for target, aliases in FIELD_ALIASES[layer].items():
            ranks = [i for i, alias in enumerate(aliases) if _norm_header(alias) == key]
            if ranks:
                candidates.setdefault(target, []).append((ranks[0], position, header))
                break
    for target, found in candidates.items():
        found.sort()
        if target not in explicit:
            mapping[target] = found[0][2]
        for _rank, _position, header in found[target not in explicit:]:
            notes.add(0, Note.COLUMN_IGNORED, column=header, value=f"“{mapping[target]}” used for {target}")
    for target in _REQUIRED[layer]:
        if target not in mapping:
            raise _missing(target, layer, name)
    return mapping


def _missing(target: str, layer: str, name: str, extra: str = "") -> MissingColumnError:
    aliases = FIELD_ALIASES[layer].get(target, ())
    return MissingColumnError(f"{name} 缺少必需列“{target}”{extra}（可用列名：{'、'.join(aliases)}）",
                              f"{name} lacks the required column '{target}'{extra} "
                              f"(accepted headers: {', '.join(aliases)})")


# ======================================================================================= shared row checks
def _blank_rows(table: _Table, problems: _Problems) -> None:
    blank = table.raw.map(lambda v: _text(v) == "").all(axis=1) if len(table.raw.columns) else \
        pd.Series(True, index=table.raw.index)
    if table.geometry is not None:
        blank &= table.geometry.isna() | table.geometry.is_empty
    problems.add_all(table.raw.index[blank.to_numpy()], Reason.EMPTY_ROW)


def _required_text(table: _Table, mapping: dict[str, str], target: str, problems: _Problems) -> pd.Series:
    values = table.raw[mapping[target]].map(_text)
    for row in values.index[(values == "").to_numpy()]:
        if not problems.has(row):
            problems.add(row, Reason.MISSING_VALUE, column=mapping[target])
    return values


def _duplicates(ids: pd.Series, problems: _Problems) -> None:
    """Every row sharing a non-empty id with another is rejected, naming all of them."""
    present = ids[ids != ""]
    for value, group in present.groupby(present, sort=False):
        if len(group) > 1:
            rows = ", ".join(str(r) for r in group.index)
            problems.add_all(group.index, Reason.DUPLICATE_ID, value=value, rows=rows)


def _flags(table: _Table, header: str, problems: _Problems, reason: Reason = Reason.INVALID_VALUE) -> pd.Series:
    """A yes/no column as bool (blank = False); unknown values reject the row."""
    parsed = table.raw[header].map(parse_flag)
    for row in parsed.index[parsed.isna().to_numpy()]:
        problems.add(row, reason, column=header, value=_text(table.raw.at[row, header]))
    return parsed.fillna(False).astype(bool)


def _numbers(table: _Table, header: str, problems: _Problems, reason: Reason = Reason.INVALID_VALUE) -> pd.Series:
    """A numeric column as float (blank = NaN); junk rejects the row."""
    parsed = table.raw[header].map(parse_number)
    bad = parsed.map(lambda v: v is INVALID)
    for row in parsed.index[bad.to_numpy()]:
        problems.add(row, reason, column=header, value=_text(table.raw.at[row, header]))
    return parsed.map(lambda v: np.nan if v is None or v is INVALID else v).astype(float)


def _lonlat_checks(lon: np.ndarray, lat: np.ndarray, rows: pd.Index, problems: _Problems) -> None:
    finite = np.isfinite(lon) & np.isfinite(lat)
    inside = coords.in_china(lon, lat)
    swapped = coords.in_china(lat, lon)
    for k in np.flatnonzero(finite & ~inside):
        reason = Reason.SWAPPED_LON_LAT if swapped[k] else Reason.OUTSIDE_CHINA
        problems.add(rows[k], reason, lon=f"{lon[k]:g}", lat=f"{lat[k]:g}")


def _point_lonlat(table: _Table, mapping: dict[str, str], layer: str, name: str, problems: _Problems
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Raw longitude/latitude per row (NaN where missing), from point geometry or lon/lat columns."""
    rows = table.raw.index
    lon = np.full(len(rows), np.nan)
    lat = np.full(len(rows), np.nan)
    todo = np.ones(len(rows), dtype=bool)
    if table.geometry is not None:
        geoms = table.geometry.to_numpy()
        present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        types = shapely.get_type_id(geoms)
        points = present & (types == 0)
        lon[points], lat[points] = shapely.get_x(geoms[points]), shapely.get_y(geoms[points])
        for k in np.flatnonzero(present & ~points):
            problems.add(rows[k], Reason.WRONG_GEOMETRY_TYPE, expected="Point", value=geoms[k].geom_type)
        todo = ~present
    has_columns = ("lon" in mapping and "lat" in mapping) or "lonlat" in mapping
    if not has_columns:
        if table.geometry is None:
            raise _missing("lon", layer, name, "/lat")
        for k in np.flatnonzero(todo):
            if not problems.has(rows[k]):
                problems.add(rows[k], Reason.MISSING_COORDINATE, column="geometry")
    else:
        for k in np.flatnonzero(todo):
            row = rows[k]
            values = _coordinate_cells(table.raw.loc[row], mapping)
            for column, cell in values:
                parsed = parse_coordinate(cell)
                if parsed is None:
                    problems.add(row, Reason.MISSING_COORDINATE, column=column)
                elif parsed is INVALID:
                    problems.add(row, Reason.NON_NUMERIC_COORDINATE, column=column, value=_text(cell))
            if len(values) == 2 and all(isinstance(parse_coordinate(c), float) for _, c in values):
                lon[k], lat[k] = (parse_coordinate(c) for _, c in values)
            elif len(values) == 1 and isinstance(parse_coordinate(values[0][1]), float):  # one number, not "lng,lat"
                problems.add(row, Reason.NON_NUMERIC_COORDINATE, column=values[0][0], value=_text(values[0][1]))
    for k in np.flatnonzero(~(np.isfinite(lon) & np.isfinite(lat))):  # safety net: no row kept without a point
        if not problems.has(rows[k]):
            problems.add(rows[k], Reason.MISSING_COORDINATE, column="lon/lat")
    _lonlat_checks(lon, lat, rows, problems)
    return lon, lat


def _coordinate_cells(record: pd.Series, mapping: dict[str, str]) -> list[tuple[str, Any]]:
    """[(column, lon cell), (column, lat cell)], splitting a combined "lon,lat" cell when that is all there is."""
    if "lon" in mapping and "lat" in mapping:
        return [(mapping["lon"], record[mapping["lon"]]), (mapping["lat"], record[mapping["lat"]])]
    header = mapping["lonlat"]
    text = unicodedata.normalize("NFKC", _text(record[header]))
    parts = [p for p in re.split(r"[,;\s]+", text) if p]
    if not parts:
        return [(header, None)]
    if len(parts) != 2:
        return [(header, text)]
    return [(header, parts[0]), (header, parts[1])]


def _to_wgs84_checked(lon: np.ndarray, lat: np.ndarray, datum: coords.Datum, ok: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    out_lon, out_lat = lon.copy(), lat.copy()
    if ok.any():
        out_lon[ok], out_lat[ok] = coords.to_wgs84(lon[ok], lat[ok], datum)
    return out_lon, out_lat


def _finish(layer: str, src_name: str, table: _Table, problems: _Problems, clean: pd.DataFrame,
            datum: coords.Datum, mapping: dict[str, str]) -> IngestResult:
    return IngestResult(layer=layer, source=src_name, clean=clean, rejected=problems.frame(table.raw, src_name),
                        notes=table.notes.frame(), n_in=len(table.raw), datum=datum, mapping=mapping)


# ======================================================================================= pharmacies
_TABLE_KINDS = ("csv", "xlsx")
_VECTOR_KINDS = ("geojson", "gpkg", "zip", "shp")


def read_pharmacies(
    source: Source,
    *,
    crs: str | coords.Datum = "wgs84",
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    layer: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> IngestResult:
    """Read designated pharmacies from CSV, XLSX, GeoJSON, GPKG or a zipped shapefile.

    Parameters
    ----------
    source : path, bytes or binary file-like
        The file; an upload's type is judged from ``source_name`` (or its ``.name``), else its content.
    crs : {"wgs84", "gcj02", "bd09"} or Datum
        The datum the longitude/latitude are written in (CGCS2000 = WGS84; Amap = GCJ-02; Baidu = BD-09).
        For GeoJSON/GPKG/shapefile points, the geometry is first reprojected to lon/lat from the file's CRS.
    columns : dict, optional
        Explicit header -> field mapping (fields as in :data:`FIELD_ALIASES` ["pharmacies"]) for headers
        the alias table does not know.
    source_name : str, optional
        The name shown in reports (defaults to the file name).
    sheet : str or int, optional
        XLSX sheet; by default the first sheet with a recognisable header.
    encoding : str, optional
        CSV text encoding; by default UTF-8 (with or without BOM), then GBK/GB18030; UTF-16 with a BOM.
    layer : str, optional
        GPKG layer or shapefile name inside a zip.
    max_bytes : int
        Size limit of the file, bytes.

    Returns
    -------
    IngestResult
        ``clean`` follows :data:`planning.model.PHARMACY_SCHEMA`: Point geometry in EPSG:4326 (WGS84
        degrees), index = input row number.

    Raises
    ------
    FileTypeError, MissingColumnError, EmptyFileError, EncodingError, UnreadableFileError,
    FileTooLargeError, ArchiveError, UnsafeArchiveError, CoordinateSystemError, ParameterError
        All subclasses of :class:`planning.errors.PlanningError` with a bilingual message.
    """
    datum = coords.parse_datum(crs)
    src = _load(source, source_name, max_bytes, _TABLE_KINDS + _VECTOR_KINDS)
    table = _read_table(src, "pharmacies", columns, sheet=sheet, encoding=encoding, max_bytes=max_bytes,
                        gdal_layer=layer)
    mapping = _map_columns(table.raw, "pharmacies", columns, src.name, table.notes)
    service_fields = [s for s in SERVICE_COLUMNS if s in mapping]
    if not service_fields and "services" not in mapping:
        aliases = FIELD_ALIASES["pharmacies"]["services"] + tuple(
            a for s in SERVICE_COLUMNS for a in FIELD_ALIASES["pharmacies"][s][:3])
        raise MissingColumnError(f"{src.name} 没有业务列（每项业务一列，或一列列出业务）：可用列名 {'、'.join(aliases)}",
                                 f"{src.name} has no service columns (one per service, or one listing them); "
                                 f"accepted headers: {', '.join(aliases)}")
    problems = _Problems(table.raw.index)
    _blank_rows(table, problems)
    texts = {f: _required_text(table, mapping, f, problems) for f in ("pharmacy_id", "name", "address")}
    _duplicates(texts["pharmacy_id"], problems)
    if ("lon" in mapping) != ("lat" in mapping) and "lonlat" not in mapping and table.geometry is None:
        raise _missing("lat" if "lon" in mapping else "lon", "pharmacies", src.name)
    lon, lat = _point_lonlat(table, mapping, "pharmacies", src.name, problems)
    services = _pharmacy_services(table, mapping, service_fields, problems)
    attributes = _pharmacy_attributes(table, mapping, problems)
    keep = ~problems.bad
    ok = keep & np.isfinite(lon) & np.isfinite(lat)
    lon, lat = _to_wgs84_checked(lon, lat, datum, ok)
    data = {f: texts[f][keep] for f in ("pharmacy_id", "name", "address")}
    data.update({s: services[s][keep] for s in SERVICE_COLUMNS})
    data.update({f: values[keep] for f, values in attributes.items()})
    clean = gpd.GeoDataFrame(data, geometry=gpd.points_from_xy(lon[keep], lat[keep]), crs=WGS84,
                             index=table.raw.index[keep])
    clean = _drop_blank_numbers(clean, table.notes)
    return _finish("pharmacies", src.name, table, problems, clean, datum, mapping)


def _pharmacy_services(table: _Table, mapping: dict[str, str], fields: list[str], problems: _Problems
                       ) -> dict[str, pd.Series]:
    held = {s: pd.Series(False, index=table.raw.index) for s in SERVICE_COLUMNS}
    for service in fields:
        held[service] |= _flags(table, mapping[service], problems, Reason.UNKNOWN_SERVICE_VALUE)
    if "services" in mapping:
        header = mapping["services"]
        for row, cell in table.raw[header].items():
            found, unknown = parse_services(cell)
            for word in unknown:
                problems.add(row, Reason.UNKNOWN_SERVICE_VALUE, column=header, value=word)
            for service in found:
                held[service].at[row] = True
    return held


#: Defaults when a pharmacy column is absent (a note says so). Blank cells in yes/no columns are "no";
#: a blank ``suspensions`` cell is 0; other blank numbers leave their column out (the model allows no blanks).
PHARMACY_DEFAULTS: dict[str, Any] = {"chain": False, "info_system_ready": True}
#: Pharmacy count fields: whole numbers (a fraction rejects the row), stored as int64.
INTEGER_FIELDS = frozenset({"suspensions", "months_operating"})


def _pharmacy_attributes(table: _Table, mapping: dict[str, str], problems: _Problems) -> dict[str, pd.Series]:
    out: dict[str, pd.Series] = {}
    for target, (check, _required) in PHARMACY_SCHEMA.items():
        if target in ("pharmacy_id", "name", "address") or target in SERVICE_COLUMNS:
            continue
        if target not in mapping:
            if target in PHARMACY_DEFAULTS:
                table.notes.add(0, Note.DEFAULT_USED, column=target, value=PHARMACY_DEFAULTS[target])
                out[target] = pd.Series(PHARMACY_DEFAULTS[target], index=table.raw.index, dtype=bool)
            continue
        if check == "bool":
            out[target] = _flags(table, mapping[target], problems)
        else:
            values = _numbers(table, mapping[target], problems)
            if target in INTEGER_FIELDS:
                fractional = values.notna() & (values != values.round())
                for row in values.index[fractional.to_numpy()]:
                    problems.add(row, Reason.INVALID_VALUE, column=mapping[target], value=_text(values[row]))
            out[target] = values.fillna(0.0) if target == "suspensions" else values
    return out


def _drop_blank_numbers(clean: gpd.GeoDataFrame, notes: _Notes) -> gpd.GeoDataFrame:
    for target, (check, _required) in PHARMACY_SCHEMA.items():
        if check == "number" and target in clean.columns and clean[target].isna().any():
            rows = ", ".join(str(r) for r in clean.index[clean[target].isna().to_numpy()][:20])
            notes.add(0, Note.COLUMN_DROPPED, column=target, rows=rows)
            clean = clean.drop(columns=[target])
        elif target in INTEGER_FIELDS and target in clean.columns:
            clean[target] = clean[target].astype(np.int64)
    return clean


# ======================================================================================= boundaries
def read_boundaries(
    source: Source,
    *,
    level: Literal["county", "subdistrict"],
    crs: str | coords.Datum = "wgs84",
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    layer: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> IngestResult:
    """Read county or sub-district polygons from GeoJSON, GPKG or a zipped shapefile.

    The file's CRS (.prj, GeoJSON CRS84, GPKG srs) is honoured and the result reprojected to EPSG:4326;
    ``crs`` declares an extra GCJ-02/BD-09 offset for boundaries digitised on Chinese web maps. A
    shapefile's .cpg gives its text encoding; without one the .dbf is read as UTF-8, else GBK/GB18030.
    Invalid polygons are repaired with ``shapely.make_valid`` (a note says so) or rejected.

    Sub-districts get ``kind`` from a kind column (街道/镇/street/town) or, where it is blank, from the
    name (街道/办事处 -> street, 镇/乡/苏木 -> town). ``county_code`` and ``population`` are kept when
    the file has them; :func:`build_region` assigns missing county codes by code prefix or geometry
    and attaches a population table.

    Returns
    -------
    IngestResult
        ``clean`` has code, name and geometry (Polygon/MultiPolygon, EPSG:4326) plus, for sub-districts,
        kind, county_code ("" when not given) and population (float, NaN when not given); for
        counties, any fund-status columns present.
    """
    if level not in ("county", "subdistrict"):
        raise ParameterError(f"level 应为 county 或 subdistrict，而不是 {level!r}",
                             f"level must be 'county' or 'subdistrict', not {level!r}")
    datum = coords.parse_datum(crs)
    target_layer = "counties" if level == "county" else "subdistricts"
    src = _load(source, source_name, max_bytes, _VECTOR_KINDS)
    table = _read_table(src, target_layer, columns, sheet=None, encoding=None, max_bytes=max_bytes, gdal_layer=layer)
    mapping = _map_columns(table.raw, target_layer, columns, src.name, table.notes)
    problems = _Problems(table.raw.index)
    _blank_rows(table, problems)
    codes = _required_text(table, mapping, "code", problems).map(_code)
    names = _required_text(table, mapping, "name", problems)
    _duplicates(codes, problems)
    geometry = _polygons(table, datum, problems)
    data: dict[str, pd.Series] = {"code": codes, "name": names}
    if level == "subdistrict":
        data["kind"] = _kinds(table, mapping, names, problems)
        data["county_code"] = table.raw[mapping["county_code"]].map(_code) if "county_code" in mapping else \
            pd.Series("", index=table.raw.index)
        data["population"] = _population_values(table, mapping, problems) if "population" in mapping else \
            pd.Series(np.nan, index=table.raw.index)
    else:
        for target in ("fund_deficit_last_year", "fund_deficit_forecast", "fund_warning_letter"):
            if target in mapping:
                data[target] = _flags(table, mapping[target], problems)
    keep = ~problems.bad
    clean = gpd.GeoDataFrame({k: v[keep] for k, v in data.items()}, geometry=geometry[keep], crs=WGS84,
                             index=table.raw.index[keep])
    return _finish(target_layer, src.name, table, problems, clean, datum, mapping)


def _polygons(table: _Table, datum: coords.Datum, problems: _Problems) -> gpd.GeoSeries:
    """Polygon geometry per row in WGS84, converted from ``datum`` and repaired where invalid."""
    if table.geometry is None:
        raise UnreadableFileError("文件没有几何", "the file has no geometry")
    rows = table.raw.index
    geoms = table.geometry.to_numpy().copy()
    if datum is not coords.Datum.WGS84:
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(coords.to_wgs84(xy[:, 0], xy[:, 1], datum)))
    for k, geom in enumerate(geoms):
        row = rows[k]
        if geom is None or geom.is_empty:
            if not problems.has(row):
                problems.add(row, Reason.EMPTY_GEOMETRY)
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.add(row, Reason.WRONG_GEOMETRY_TYPE, expected="Polygon/MultiPolygon", value=geom.geom_type)
            continue
        if not geom.is_valid:
            why = shapely.is_valid_reason(geom)
            repaired = _polygonal(shapely.make_valid(geom))
            if repaired is None:
                problems.add(row, Reason.INVALID_GEOMETRY, value=why)
                continue
            table.notes.add(row, Note.GEOMETRY_REPAIRED, value=why)
            geoms[k] = geom = repaired
        point = geom.representative_point()
        if not coords.in_china(point.x, point.y):
            problems.add(row, Reason.OUTSIDE_CHINA, lon=f"{point.x:g}", lat=f"{point.y:g}")
    return gpd.GeoSeries(geoms, index=rows, crs=WGS84)


def _polygonal(geom) -> shapely.Geometry | None:
    """The polygonal part of a repaired geometry (Polygon or MultiPolygon), None if there is none."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return None if geom.is_empty else geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not parts:
        return None
    merged = shapely.union_all(parts)
    return merged if merged.geom_type in ("Polygon", "MultiPolygon") else None


def _kinds(table: _Table, mapping: dict[str, str], names: pd.Series, problems: _Problems) -> pd.Series:
    out = pd.Series("", index=table.raw.index, dtype=object)
    for row in table.raw.index:
        given = _norm_token(table.raw.at[row, mapping["kind"]]) if "kind" in mapping else ""
        if given:
            kind = _KIND_OF_WORD.get(given)
            if kind is None:
                problems.add(row, Reason.INVALID_VALUE, column=mapping["kind"],
                             value=_text(table.raw.at[row, mapping["kind"]]))
                continue
        else:
            kind = infer_kind(names[row])
            if kind is None and names[row]:
                problems.add(row, Reason.UNKNOWN_KIND, value=names[row])
                continue
        out[row] = kind or ""
    return out


def _population_values(table: _Table, mapping: dict[str, str], problems: _Problems, *,
                       required: bool = False) -> pd.Series:
    """Population as float (NaN when blank, unless ``required``); negative or non-numeric rejects the row."""
    header = mapping["population"]
    out = pd.Series(np.nan, index=table.raw.index)
    for row, cell in table.raw[header].items():
        value = parse_number(cell)
        if value is None:
            if required and not problems.has(row):
                problems.add(row, Reason.INVALID_POPULATION, value="（空 / blank）")
            continue
        if value is INVALID or value < 0:
            problems.add(row, Reason.INVALID_POPULATION, value=_text(cell))
            continue
        out[row] = round(value)
    return out


# ======================================================================================= population, fund status
def read_population(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> IngestResult:
    """Read resident insured population (常住参保人口, persons) per sub-district from CSV or XLSX.

    Needs a population column and a code or a name column. Populations such as "4.68万" or "46,800"
    are understood; blank, negative or non-numeric values reject the row. :func:`build_region` matches
    rows to sub-districts by code (9 digits; a 12-digit statistics code ending in 000 matches too),
    else by name, and rejects the rows that match nothing.

    Returns
    -------
    IngestResult
        ``clean`` is a DataFrame with ``code`` ("" when absent), ``name`` ("" when absent) and
        ``population`` (int, persons).
    """
    src = _load(source, source_name, max_bytes, _TABLE_KINDS)
    table = _read_table(src, "population", columns, sheet=sheet, encoding=encoding, max_bytes=max_bytes)
    mapping = _map_columns(table.raw, "population", columns, src.name, table.notes)
    if "code" not in mapping and "name" not in mapping:
        raise _missing("code", "population", src.name, "或“name”/ or 'name'")
    problems = _Problems(table.raw.index)
    _blank_rows(table, problems)
    codes = table.raw[mapping["code"]].map(_code) if "code" in mapping else pd.Series("", index=table.raw.index)
    names = table.raw[mapping["name"]].map(_text) if "name" in mapping else pd.Series("", index=table.raw.index)
    for row in table.raw.index[((codes == "") & (names == "")).to_numpy()]:
        if not problems.has(row):
            problems.add(row, Reason.MISSING_VALUE, column=mapping.get("code", mapping.get("name")))
    _duplicates(codes, problems)
    population = _population_values(table, mapping, problems, required=True)
    keep = ~problems.bad
    clean = pd.DataFrame({"code": codes[keep], "name": names[keep],
                          "population": population[keep].astype(np.int64)}, index=table.raw.index[keep])
    return _finish("population", src.name, table, problems, clean, coords.Datum.WGS84, mapping)


FUND_COLUMNS = ("fund_deficit_last_year", "fund_deficit_forecast", "fund_warning_letter")


def read_fund_status(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> IngestResult:
    """Read each county's employee-fund status (rules B3, B4) from CSV or XLSX.

    Columns: a county code or name, and at least one of last year's deficit (上年亏损), the forecast
    deficit (预计亏损) and a warning letter (预警函), as yes/no values. An absent status column is "no"
    for every county (a note says so); blank cells are "no".

    Returns
    -------
    IngestResult
        ``clean`` is a DataFrame with ``code``, ``name`` and the three bool columns.
    """
    src = _load(source, source_name, max_bytes, _TABLE_KINDS)
    table = _read_table(src, "fund_status", columns, sheet=sheet, encoding=encoding, max_bytes=max_bytes)
    mapping = _map_columns(table.raw, "fund_status", columns, src.name, table.notes)
    if "code" not in mapping and "name" not in mapping:
        raise _missing("code", "fund_status", src.name, "或“name”/ or 'name'")
    if not any(f in mapping for f in FUND_COLUMNS):
        raise _missing("fund_deficit_last_year", "fund_status", src.name,
                       "（或 fund_deficit_forecast / fund_warning_letter）")
    problems = _Problems(table.raw.index)
    _blank_rows(table, problems)
    codes = table.raw[mapping["code"]].map(_code) if "code" in mapping else pd.Series("", index=table.raw.index)
    names = table.raw[mapping["name"]].map(_text) if "name" in mapping else pd.Series("", index=table.raw.index)
    for row in table.raw.index[((codes == "") & (names == "")).to_numpy()]:
        if not problems.has(row):
            problems.add(row, Reason.MISSING_VALUE, column=mapping.get("code", mapping.get("name")))
    _duplicates(codes, problems)
    data = {"code": codes, "name": names}
    for target in FUND_COLUMNS:
        if target in mapping:
            data[target] = _flags(table, mapping[target], problems)
        else:
            table.notes.add(0, Note.DEFAULT_USED, column=target, value=False)
            data[target] = pd.Series(False, index=table.raw.index)
    keep = ~problems.bad
    clean = pd.DataFrame({k: v[keep] for k, v in data.items()}, index=table.raw.index[keep])
    return _finish("fund_status", src.name, table, problems, clean, coords.Datum.WGS84, mapping)


# ======================================================================================= population surfaces
def read_population_grid(
    source: Source,
    *,
    crs: str | coords.Datum = "wgs84",
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    band: int = 1,
    max_cells: int = DEFAULT_MAX_CELLS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> IngestResult:
    """Read a population grid as weighted points: a GeoTIFF (persons per cell) or a table/GeoJSON of points.

    For a raster, every cell holding a positive finite value (not nodata) becomes a point at the cell
    centre; a negative value rejects the cell (``row`` = 1-based cell number in row-major order). For
    points, the columns are lon/lat (or point geometry) and persons; rows are checked like pharmacy
    coordinates. ``crs`` declares a GCJ-02/BD-09 offset of lon/lat inputs.

    Returns
    -------
    IngestResult
        ``clean`` is a GeoDataFrame of points (EPSG:4326) with ``persons`` (float), ready for
        :func:`planning.coverage.residents_from_points`.
    """
    datum = coords.parse_datum(crs)
    src = _load(source, source_name, max_bytes, ("tif",) + _TABLE_KINDS + ("geojson", "gpkg", "zip"))
    if src.kind == "tif":
        return _read_raster(src, datum, band, max_cells)
    table = _read_table(src, "population_points", columns, sheet=None, encoding=None, max_bytes=max_bytes)
    mapping = _map_columns(table.raw, "population_points", columns, src.name, table.notes)
    problems = _Problems(table.raw.index)
    _blank_rows(table, problems)
    lon, lat = _point_lonlat(table, mapping, "population_points", src.name, problems)
    persons = _population_values(table, mapping | {"population": mapping["persons"]}, problems, required=True)
    keep = ~problems.bad
    lon, lat = _to_wgs84_checked(lon, lat, datum, keep)
    clean = gpd.GeoDataFrame({"persons": persons[keep].astype(float)},
                             geometry=gpd.points_from_xy(lon[keep], lat[keep]), crs=WGS84, index=table.raw.index[keep])
    return _finish("population_points", src.name, table, problems, clean, datum, mapping)


def _read_raster(src: _Source, datum: coords.Datum, band: int, max_cells: int) -> IngestResult:
    import rasterio
    from rasterio.io import MemoryFile

    notes = _Notes(src.name)
    try:
        with MemoryFile(src.bytes()) as memory, memory.open(driver="GTiff") as dataset:
            if dataset.width * dataset.height > max_cells:
                raise FileTooLargeError(f"{src.name} 的栅格超过 {max_cells:,} 个像元", f"{src.name} has more than "
                                        f"{max_cells:,} cells")
            if not 1 <= band <= dataset.count:
                raise ParameterError(f"波段 {band} 不存在（共 {dataset.count} 个）", f"no band {band} ({dataset.count} bands)")
            values = dataset.read(band, masked=True).astype(float).filled(np.nan)
            transform, raster_crs = dataset.transform, dataset.crs
    except (FileTooLargeError, ParameterError):
        raise
    except rasterio.errors.RasterioError as exc:
        raise UnreadableFileError(f"无法读取栅格 {src.name}：{exc}", f"cannot read raster {src.name}: {exc}") from exc
    flat = values.ravel()
    cells = np.flatnonzero(np.isfinite(flat) & (flat != 0))
    r, c = np.divmod(cells, values.shape[1])
    x, y = rasterio.transform.xy(transform, r, c, offset="center")
    points = gpd.GeoSeries(gpd.points_from_xy(np.asarray(x, float), np.asarray(y, float)),
                           crs=raster_crs.to_wkt() if raster_crs else None, index=cells + 1)
    points = _to_lonlat(points, src.name, notes)
    negative = flat[cells] < 0
    raw = pd.DataFrame({"value": flat[cells]}, index=pd.Index(cells + 1, name="row"), dtype=object)
    table = _Table(raw=raw, geometry=points, notes=notes)
    problems = _Problems(raw.index)
    for row in raw.index[negative]:
        problems.add(row, Reason.INVALID_POPULATION, value=_text(raw.at[row, "value"]))
    keep = ~problems.bad
    geoms = points.to_numpy()[keep]
    lon, lat = coords.to_wgs84(shapely.get_x(geoms), shapely.get_y(geoms), datum)
    clean = gpd.GeoDataFrame({"persons": flat[cells][keep]}, geometry=gpd.points_from_xy(lon, lat), crs=WGS84,
                             index=raw.index[keep])
    return _finish("population_points", src.name, table, problems, clean, datum, {})


def read_buildings(
    source: Source,
    *,
    crs: str | coords.Datum = "wgs84",
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
    layer: str | None = None,
    m2_per_person: float = DEFAULT_M2_PER_PERSON,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> IngestResult:
    """Read residential building footprints with the residents each holds.

    ``persons`` comes from a persons column when there is one, else from the floor area: footprint
    area (m², measured in a local UTM zone) x floors (a floors column, 1 when absent or blank) /
    ``m2_per_person`` (default 38.6 m², the 2020 census urban per-capita housing floor area).

    Returns
    -------
    IngestResult
        ``clean`` is a GeoDataFrame of polygons (EPSG:4326) with ``persons`` (float).
    """
    if not m2_per_person > 0:
        raise ParameterError("人均面积必须为正数", "m2_per_person must be positive (m² per person)")
    datum = coords.parse_datum(crs)
    src = _load(source, source_name, max_bytes, _VECTOR_KINDS)
    table = _read_table(src, "buildings", columns, sheet=None, encoding=None, max_bytes=max_bytes, gdal_layer=layer)
    mapping = _map_columns(table.raw, "buildings", columns, src.name, table.notes)
    problems = _Problems(table.raw.index)
    geometry = _polygons(table, datum, problems)
    if "persons" in mapping:
        persons = _population_values(table, mapping | {"population": mapping["persons"]}, problems, required=True)
    else:
        floors = _numbers(table, mapping["floors"], problems).fillna(1.0) if "floors" in mapping else \
            pd.Series(1.0, index=table.raw.index)
        for row in floors.index[(floors <= 0).to_numpy()]:
            problems.add(row, Reason.INVALID_VALUE, column=mapping.get("floors", "floors"), value=floors[row])
        area = _area_m2(geometry)
        persons = area * floors / m2_per_person
    keep = ~problems.bad
    clean = gpd.GeoDataFrame({"persons": persons[keep].astype(float)}, geometry=geometry[keep], crs=WGS84,
                             index=table.raw.index[keep])
    return _finish("buildings", src.name, table, problems, clean, datum, mapping)


def _area_m2(geometry: gpd.GeoSeries) -> pd.Series:
    valid = geometry[~(geometry.isna() | geometry.is_empty)]
    if valid.empty:
        return pd.Series(0.0, index=geometry.index)
    area = valid.to_crs(valid.estimate_utm_crs()).area
    return area.reindex(geometry.index).fillna(0.0)


# ======================================================================================= region
_Input = Union[IngestResult, Source]


def build_region(
    *,
    pharmacies: _Input,
    subdistricts: _Input,
    counties: _Input | None = None,
    population: _Input | None = None,
    fund_status: _Input | None = None,
    network: str | os.PathLike | None = None,
    crs: str | coords.Datum = "wgs84",
    boundary_crs: str | coords.Datum = "wgs84",
    name: str = "",
    fictional: bool = False,
) -> Region:
    """Assemble a validated :class:`~planning.model.Region` from reader results or files.

    Each input is an :class:`IngestResult` or a file (read with default options; ``crs`` is the
    pharmacies' datum, ``boundary_crs`` that of the boundaries). The steps, each rejecting rows it
    cannot place:

    1. counties: from ``counties``, or (when absent) dissolved from the sub-districts by county code
       (an :class:`IngestWarning` says so); fund status attached by code, else name (counties not
       listed are "no deficit, no letter", with a warning);
    2. sub-districts: county from their ``county_code``, else the code's 6-digit prefix, else the
       county holding them; none -> ``no_county``;
    3. population: a population table matched by code, else name (unmatched rows rejected), else the
       boundary file's population column; a sub-district left without -> ``no_population``;
    4. pharmacies outside every county and sub-district -> ``outside_boundaries``.

    ``Region.rejected`` lists every rejected row of every input: ``layer``, ``source``, ``row``,
    ``reason_code``, ``reason`` and ``values`` (the raw cells as "header=value; ...").
    """
    ph = pharmacies if isinstance(pharmacies, IngestResult) else read_pharmacies(pharmacies, crs=crs)
    sd = subdistricts if isinstance(subdistricts, IngestResult) else \
        read_boundaries(subdistricts, level="subdistrict", crs=boundary_crs)
    ct = None if counties is None else counties if isinstance(counties, IngestResult) else \
        read_boundaries(counties, level="county", crs=boundary_crs)
    pop = None if population is None else population if isinstance(population, IngestResult) else \
        read_population(population)
    fund = None if fund_status is None else fund_status if isinstance(fund_status, IngestResult) else \
        read_fund_status(fund_status)
    extra: list[pd.DataFrame] = []
    county_layer = _county_layer(ct, sd)
    county_layer, fund_rejected = _attach_fund(county_layer, fund)
    extra.append(fund_rejected)
    subs, rejected_subs = _assign_counties(sd, county_layer)
    extra.append(rejected_subs)
    if pop is None and not subs["population"].notna().any() and len(subs):
        raise MissingColumnError("没有人口数据：请提供人口表，或在街道/乡镇边界中加入人口列",
                                 "no population: give a population table or a population column in the sub-districts")
    subs, pop_rejected, no_population = _attach_population(subs, pop, sd)
    extra += [pop_rejected, no_population]
    places, outside = _locate_pharmacies(ph, sd, county_layer)
    extra.append(outside)
    frames = [f for f in [_region_rejected(r) for r in (ph, sd, ct, pop, fund) if r is not None] + extra if len(f)]
    rejected = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    rejected["row"] = rejected["row"].astype(np.int64)
    region = Region(
        name=name or Path(ph.source).stem,
        counties=_schema_frame(county_layer, COUNTY_SCHEMA),
        subdistricts=_schema_frame(subs.assign(population=subs["population"].astype(np.int64)), SUBDISTRICT_SCHEMA),
        pharmacies=_schema_frame(places, PHARMACY_SCHEMA),
        network_path=Path(network) if network is not None else None,
        fictional=fictional,
        rejected=rejected[_REGION_REJECTED_COLUMNS],
    )
    return validate_region(region)


_REGION_REJECTED_COLUMNS = ["layer", "source", "row", "reason_code", "reason", "values"]


def _region_rejected(result: IngestResult) -> pd.DataFrame:
    """A reader's rejected table in the Region form (raw cells folded into one ``values`` column)."""
    if result.rejected.empty:
        return pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    raw = result.rejected.drop(columns=["source", "row", "reason_code", "reason"])
    values = raw.apply(lambda r: "; ".join(f"{k}={v}" for k, v in r.items() if v != ""), axis=1) if len(raw.columns) \
        else pd.Series("", index=raw.index)
    return pd.DataFrame({"layer": result.layer, "source": result.rejected["source"], "row": result.rejected["row"],
                         "reason_code": result.rejected["reason_code"], "reason": result.rejected["reason"],
                         "values": values})


def _rejections(layer: str, source: str, where: Iterable[int], reason: Reason, values: Iterable[str],
                **detail: Any) -> pd.DataFrame:
    where = [int(r) for r in where]
    return pd.DataFrame({"layer": layer, "source": source, "row": pd.Series(where, dtype=np.int64),
                         "reason_code": reason.value, "reason": [reason.text(**detail)] * len(where),
                         "values": list(values)}, columns=_REGION_REJECTED_COLUMNS)


def _schema_frame(gdf: gpd.GeoDataFrame, schema: dict[str, tuple[str, bool]]) -> gpd.GeoDataFrame:
    keep = [c for c in schema if c in gdf.columns]
    out = gpd.GeoDataFrame(gdf[keep].reset_index(drop=True), geometry=gdf.geometry.reset_index(drop=True), crs=WGS84)
    for column in keep:
        if schema[column][0] == "str":
            out[column] = out[column].astype(object)
    return out


def _county_layer(ct: IngestResult | None, sd: IngestResult) -> gpd.GeoDataFrame:
    if ct is not None:
        return ct.clean.copy()
    subs = sd.clean
    county = subs["county_code"].where(subs["county_code"] != "", subs["code"].map(lambda c: c[:6]))
    dissolved = gpd.GeoDataFrame({"code": county}, geometry=subs.geometry, crs=WGS84).dissolve(by="code").reset_index()
    warnings.warn(f"没有县（市、区）边界：由街道/乡镇按县代码合并得到 {len(dissolved)} 个 / no county boundaries: "
                  f"{len(dissolved)} counties dissolved from the sub-districts by county code",
                  IngestWarning, stacklevel=3)
    dissolved["name"] = dissolved["code"]
    return dissolved


def _attach_fund(counties: gpd.GeoDataFrame, fund: IngestResult | None) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    counties = counties.copy()
    given = all(c in counties.columns for c in FUND_COLUMNS)
    for target in FUND_COLUMNS:
        if target not in counties.columns:
            counties[target] = False
    if fund is None:
        if not given:
            warnings.warn("没有基金运行情况表：全部县按“无亏损、无预警函”处理 / no fund-status table: every county "
                          "taken as no deficit, no warning letter", IngestWarning, stacklevel=3)
        return counties, pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    claims, _contested, rejected = _match(fund, counties, digits=6, target=("县（市、区）", "county"))
    for at, row in claims.items():
        for target in FUND_COLUMNS:
            counties.at[at, target] = bool(fund.clean.at[row, target])
    missing = [str(n) for i, n in zip(counties.index, counties["name"]) if i not in claims]
    if missing:
        warnings.warn(f"基金运行情况表中没有这些县，按“无亏损”处理：{missing} / counties absent from the fund-status "
                      f"table, taken as no deficit: {missing}", IngestWarning, stacklevel=3)
    return counties, rejected


def _match(table: IngestResult, targets: pd.DataFrame, *, digits: int, target: tuple[str, str]
           ) -> tuple[dict[Any, int], set[Any], pd.DataFrame]:
    """Match the rows of a code/name table to ``targets`` by code (cut to ``digits``), else unique name.

    Returns {target index: table row} for targets claimed by exactly one row, and the rejections:
    rows matching nothing (``unmatched``) and rows claiming a target another row claims too
    (``duplicate_id``, all of them; those targets are returned as ``contested``).
    """
    by_code = {_code_key(c, digits): i for i, c in zip(targets.index, targets["code"])}
    by_name = _unique_names(targets["name"])
    claims: dict[Any, list[int]] = {}
    unmatched: list[int] = []
    for row, record in table.clean.iterrows():
        at = by_code.get(_code_key(record["code"], digits)) if record["code"] else None
        if at is None and record["name"]:
            at = by_name.get(_name_key(record["name"]))
        if at is None:
            unmatched.append(row)
        else:
            claims.setdefault(at, []).append(row)
    labels = [_label(table.clean.loc[r]) for r in unmatched]
    frames = [_rejections(table.layer, table.source, unmatched, Reason.UNMATCHED, labels,
                          value="、".join(labels), target=target[0], target_en=target[1])]
    for at, rows in claims.items():
        if len(rows) > 1:
            frames.append(_rejections(table.layer, table.source, rows, Reason.DUPLICATE_ID,
                                      [_label(table.clean.loc[r]) for r in rows], value=targets.at[at, "name"],
                                      rows=", ".join(map(str, rows))))
    frames = [f for f in frames if len(f)]
    rejected = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    contested = {at for at, rows in claims.items() if len(rows) > 1}
    return {at: rows[0] for at, rows in claims.items() if len(rows) == 1}, contested, rejected


def _label(record: pd.Series) -> str:
    return "; ".join(f"{k}={record[k]}" for k in ("code", "name") if k in record and record[k] != "")


def _unique_names(names: pd.Series) -> dict[str, Any]:
    keys = names.map(lambda n: _name_key(str(n)))
    counts = keys.value_counts()
    return {k: i for i, k in zip(names.index, keys) if counts[k] == 1}


def _assign_counties(sd: IngestResult, counties: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    subs = sd.clean.copy()
    by_key = {_code_key(c, 6): c for c in counties["code"]}
    by_name = _unique_names(counties["name"])
    tree = shapely.STRtree(counties.geometry.to_numpy())
    assigned: list[str | None] = []
    why: dict[Any, str] = {}
    for row, record in subs.iterrows():
        given = record["county_code"]
        if given:  # a county code, or failing that a county name
            at = by_name.get(_name_key(given))
            assigned.append(by_key.get(_code_key(given, 6)) or (counties.at[at, "code"] if at is not None else None))
            if assigned[-1] is None:
                why[row] = f"county_code {given}"
            continue
        county = by_key.get(record["code"][:6])
        if county is None:
            hits = tree.query(record.geometry.representative_point(), predicate="within")
            county = counties["code"].iloc[int(hits[0])] if len(hits) else None
        assigned.append(county)
        if county is None:
            why[row] = f"code {record['code']}"
    subs["county_code"] = pd.Series(assigned, index=subs.index, dtype=object)
    bad = list(why)
    frames = [_rejections("subdistricts", sd.source, [r], Reason.NO_COUNTY, [_label(subs.loc[r])], value=why[r])
              for r in bad]
    rejected = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    return subs.drop(index=bad), rejected


def _attach_population(subs: gpd.GeoDataFrame, pop: IngestResult | None, sd: IngestResult
                       ) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Population from the table (matched against every sub-district read: rows matching one dropped
    since for another reason are not rejected twice), else the boundary file's column."""
    subs = subs.copy()
    pop_rejected = pd.DataFrame(columns=_REGION_REJECTED_COLUMNS)
    if pop is not None:
        claims, contested, pop_rejected = _match(pop, sd.clean, digits=9, target=("街道/乡镇", "sub-district"))
        for at, row in claims.items():
            if at in subs.index:
                subs.at[at, "population"] = float(pop.clean.at[row, "population"])
        subs.loc[subs.index.isin(contested), "population"] = np.nan  # two rows for one: neither is trusted
    missing = subs.index[subs["population"].isna().to_numpy()]
    no_population = _rejections("subdistricts", sd.source, missing, Reason.NO_POPULATION,
                                [_label(subs.loc[r]) for r in missing])
    return subs.drop(index=missing), pop_rejected, no_population


def _locate_pharmacies(ph: IngestResult, sd: IngestResult, counties: gpd.GeoDataFrame
                       ) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    areas = np.concatenate([counties.geometry.to_numpy(), sd.clean.geometry.to_numpy()])
    points = ph.clean.geometry.to_numpy()
    inside = np.zeros(len(points), dtype=bool)
    if len(areas) and len(points):
        hit, _ = shapely.STRtree(areas).query(points, predicate="intersects")
        inside[np.unique(hit)] = True
    rows = ph.clean.index[~inside]
    values = [f"pharmacy_id={ph.clean.at[r, 'pharmacy_id']}; name={ph.clean.at[r, 'name']}" for r in rows]
    return ph.clean[inside], _rejections("pharmacies", ph.source, rows, Reason.OUTSIDE_BOUNDARIES, values)


def check_pharmacy_datum(result: IngestResult | gpd.GeoDataFrame, network, *,
                         declared: str | coords.Datum | None = None) -> coords.DatumDiagnostic:
    """:func:`planning.coords.check_datum_offset` for pharmacies already read (WGS84 geometry).

    ``declared`` defaults to the datum ``result`` was read with (WGS84 for a bare GeoDataFrame); a
    :class:`~planning.coords.DatumOffsetWarning` is issued when the pharmacies fit the street network
    much better under another datum.
    """
    gdf = result.clean if isinstance(result, IngestResult) else result
    datum = coords.parse_datum(declared if declared is not None else
                               result.datum if isinstance(result, IngestResult) else coords.Datum.WGS84)
    lon, lat = coords.from_wgs84(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy(), datum)
    return coords.check_datum_offset(lon, lat, network, declared=datum)
