"""What input files may say: rejection reasons, notes, accepted headers and values, and the cell parsers."""

from __future__ import annotations

import datetime as _dt
import enum
import hashlib
import math
import re
import unicodedata
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import pandas as pd

from planning.model import SERVICE_COLUMNS, Service, SubdistrictKind
from planning.text import Text

Layer = Literal["pharmacies", "counties", "subdistricts", "population", "fund_status", "population_points",
                "workers", "buildings"]


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
    DUPLICATE_ROW = "duplicate_row"
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
    CODE_AS_NUMBER = "code_as_number"
    UNIT_IN_NUMBER = "unit_in_number"
    FORMULA_NOT_COMPUTED = "formula_not_computed"
    COMMA_DECIMAL = "comma_decimal"
    CELL_TOO_LONG = "cell_too_long"

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
    Reason.DUPLICATE_ROW: ("与第 {first} 行是同一药店（编号、名称相同，位置相距不超过 {metres} 米，其余各列相同），只保留一次",
                           "the same pharmacy as row {first} (same id and name, within {metres} m, every other "
                           "cell equal): kept once"),
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
    Reason.CODE_AS_NUMBER: ("“{column}”的代码“{value}”是科学计数法（Excel 把代码当作数字，丢失了位数）：请把该列设为文本后重新填写",
                            "code '{value}' in '{column}' is in scientific notation (Excel took the code for a number "
                            "and dropped digits): format the column as text and enter the codes again"),
    Reason.UNIT_IN_NUMBER: ("“{column}”的值“{value}”带有单位或百分号（{unit}），此列应为{expected}",
                            "'{column}' holds '{value}' with a unit or percent sign ({unit}); this column takes "
                            "{expected_en}"),
    Reason.FORMULA_NOT_COMPUTED: ("“{column}”是未计算的公式 {value}（文件没有保存计算结果）：请在 Excel 中打开并保存后再导入",
                                  "'{column}' is a formula not computed {value} (the file holds no computed value): "
                                  "open and save it in Excel, then import it again"),
    Reason.COMMA_DECIMAL: ("坐标“{column}”用逗号作小数点：{value}（应为 {suggested}？）",
                           "coordinate '{column}' uses a comma as decimal separator: {value} (meant {suggested}?)"),
    Reason.CELL_TOO_LONG: ("“{column}”的单元格有 {length:,} 个字符，超过上限 {limit:,}",
                           "a cell of '{column}' holds {length:,} characters, more than the limit of {limit:,}"),
}


class Note(str, enum.Enum):
    """Something done to a row that was kept (a repair, a default), or to the whole file (row 0)."""

    GEOMETRY_REPAIRED = "geometry_repaired"
    DEFAULT_USED = "default_used"
    UNKNOWN_WITHOUT_COLUMN = "unknown_without_column"
    COLUMN_IGNORED = "column_ignored"
    CRS_ASSUMED = "crs_assumed"
    LAYER_CHOSEN = "layer_chosen"
    ID_GENERATED = "id_generated"
    ID_SUFFIXED = "id_suffixed"
    DUPLICATE_KEPT_ONCE = "duplicate_kept_once"
    BOM_OVER_GBK = "bom_over_gbk"
    OVERLAPS = "overlaps"
    BLANK_READ_AS_NO = "blank_read_as_no"

    def text(self, **detail: Any) -> str:
        zh, en = _NOTE_TEXT[self]
        return f"{zh.format(**detail)} / {en.format(**detail)}"


_NOTE_TEXT: dict[Note, tuple[str, str]] = {
    Note.GEOMETRY_REPAIRED: ("几何无效（{value}），已用 make_valid 修复", "invalid geometry ({value}) repaired with make_valid"),
    Note.DEFAULT_USED: ("没有“{column}”列，全部取默认值 {value}", "no '{column}' column: every row set to {value}"),
    Note.UNKNOWN_WITHOUT_COLUMN: ("没有“{column}”列：各药店的该项未知（结算状态不判定，不按“已完成”读入）",
                                  "no '{column}' column: unknown for every pharmacy (settlement status not judged, "
                                  "not read as done)"),
    Note.BLANK_READ_AS_NO: ("“{column}”列有 {count} 个空白单元格（第 {rows} 行），按“否”读入：这些药店若开通了该业务，"
                             "请补全后重新评估",
                             "'{column}': {count} blank cells (rows {rows}) read as 'no': if these pharmacies do offer "
                             "the service, fill the cells in and assess again"),
    Note.COLUMN_IGNORED: ("列“{column}”未使用（{value}）", "column '{column}' not used ({value})"),
    Note.CRS_ASSUMED: ("文件没有坐标系，按经纬度（{value}）读取", "the file has no CRS; read as longitude/latitude ({value})"),
    Note.LAYER_CHOSEN: ("文件有多个图层（{layers}），读取了第一个“{value}”；要读其他图层，请指定图层（命令行 --pharmacies-layer "
                        "/ --subdistricts-layer / --counties-layer，函数 layer=）",
                        "the file has several layers ({layers_en}); the first, '{value}', was read; to read another, "
                        "name it (CLI --pharmacies-layer / --subdistricts-layer / --counties-layer, readers' layer=)"),
    Note.ID_GENERATED: ("没有编号列：编号由名称和地址生成（“H”+ SHA-1 前 12 位）",
                        "no id column: ids made from name and address ('H' + the first 12 hex digits of SHA-1)"),
    Note.ID_SUFFIXED: ("生成的编号与第 {rows} 行相同（名称或地址不同），加后缀为 {value}",
                       "generated id collides with row {rows} (another name or address): suffixed to {value}"),
    Note.DUPLICATE_KEPT_ONCE: ("第 {rows} 行与本行是同一药店，只保留本行", "rows {rows} repeat this pharmacy: kept once"),
    Note.BOM_OVER_GBK: ("文件以 UTF-8 BOM 开头，但正文是 GBK/GB18030 编码：已按 GBK 读取，请核对名称",
                        "the file starts with a UTF-8 byte-order mark but its text is GBK/GB18030: read as GBK "
                        "(check the names)"),
    Note.OVERLAPS: ("与第 {rows} 行（{value}）重叠，重叠部分占较小者面积的 {share}：请核对是否重复",
                    "overlaps row {rows} ({value}) over {share} of the smaller one's area: check for a duplicate"),
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
        # settlement status (planning.settlement): dates, counts and state words
        "info_system_accepted": ("info_system_accepted", "信息系统验收日期", "信息系统改造验收日期", "系统改造验收日期",
                                 "信息系统通过验收日期", "改造验收日期"),
        "traceability_accepted": ("traceability_accepted", "追溯码落实日期", "追溯码接入日期", "追溯码采集日期",
                                  "药品追溯码落实日期", "追溯码日期"),
        "agreement_status": ("agreement_status", "协议状态", "医保协议状态", "服务协议状态", "定点协议状态"),
        "suspension_start": ("suspension_start", "暂停开始日期", "暂停起始日期", "暂停协议开始日期", "暂停日期"),
        "suspension_end": ("suspension_end", "暂停结束日期", "暂停截止日期", "暂停协议结束日期", "恢复结算日期"),
        "earlier_suspensions": ("earlier_suspensions", "此前暂停次数", "本协议期内此前暂停次数", "协议期内此前暂停次数"),
        "principal_status": ("principal_status", "主要负责人医保支付资格", "主要负责人支付资格", "负责人医保支付资格",
                             "主要负责人状态", "负责人支付资格"),
    },
    "subdistricts": {
        "code": ("code", "代码", "编码", "区划代码", "行政区划代码", "行政区代码", "统计用区划代码", "街道代码",
                 "乡镇代码", "街乡代码", "xzqdm", "adcode", "id"),
        "name": ("name", "名称", "行政区名称", "区划名称", "街道名称", "乡镇名称", "街乡名称", "街道", "乡镇",
                 "街道乡镇", "xzqmc"),
        "kind": ("kind", "类型", "街乡类型", "类别", "街道或乡镇", "type"),
        "county_code": ("county_code", "县代码", "区县代码", "所属区县代码", "县级代码", "county"),
        "population": ("population", "常住参保人口", "参保人口", "常住人口", "人口", "pop"),
        "employees": ("employees", "城镇职工参保人数", "职工参保人数", "职工参保人口", "城镇职工参保人口", "职工医保参保人数",
                      "在职职工参保人数"),
        "chronic_patients": ("chronic_patients", "门诊慢特病人数", "慢特病人数", "门诊特殊慢性病人数", "门诊慢特病患者人数",
                             "慢特病患者人数", "门特人数", "慢病人数"),
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
        "employees": ("employees", "城镇职工参保人数", "职工参保人数", "职工参保人口", "城镇职工参保人口", "职工医保参保人数",
                      "在职职工参保人数"),
        "chronic_patients": ("chronic_patients", "门诊慢特病人数", "慢特病人数", "门诊特殊慢性病人数", "门诊慢特病患者人数",
                             "慢特病患者人数", "门特人数", "慢病人数"),
    },
    "population_points": {
        "lon": ("lon", "经度", "lng", "longitude", "x"),
        "lat": ("lat", "纬度", "latitude", "y"),
        "persons": ("persons", "人口", "人数", "人口数", "population", "pop", "value"),
    },
    "workers": {
        "lon": ("lon", "经度", "lng", "longitude", "x"),
        "lat": ("lat", "纬度", "latitude", "y"),
        "code": ("code", "代码", "编码", "区划代码", "行政区划代码", "统计用区划代码", "街道代码", "乡镇代码",
                 "xzqdm", "id"),
        "name": ("name", "名称", "街道名称", "乡镇名称", "街乡名称", "街道", "乡镇", "街道乡镇", "xzqmc"),
        "workers": ("workers", "就业人数", "就业人员", "就业人口", "从业人员", "从业人员数", "从业人数", "从业人口",
                    "职工人数", "员工人数", "工作人口", "employment", "jobs"),
        "kind": ("kind", "类型", "类别", "单位类型"),
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

REQUIRED_COLUMNS = {
    "pharmacies": ("name", "address"),
    "subdistricts": ("code", "name"),
    "counties": ("code", "name"),
    "population": ("population",),
    "fund_status": (),
    "population_points": ("persons",),
    "workers": ("workers",),
    "buildings": (),
}


class UncomputedFormula(str):
    """An XLSX cell holding a formula but no computed value (the file was never recalculated and saved in
    Excel: generated by a script, say); the text is the formula. Readers reject its row, saying so."""


def cell_text(value: Any) -> str:
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


def norm_header(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】", "", text)
    return re.sub(r"[\s_\-*\"'“”‘’:.。]", "", text)


def norm_token(value: Any) -> str:
    return re.sub(r"^[\"'“”‘’\s]+|[\"'“”‘’\s]+$", "", unicodedata.normalize("NFKC", cell_text(value))).lower()


NORMAL_ALIASES = {layer: {f: {norm_header(a) for a in aliases} for f, aliases in fields.items()}
                   for layer, fields in FIELD_ALIASES.items()}
_TRUE = {norm_token(v) for v in TRUE_VALUES}
_FALSE = {norm_token(v) for v in FALSE_VALUES}
_SERVICE_OF_WORD = {norm_token(w): s for s, words in SERVICE_WORDS.items() for w in words}
KIND_OF_WORD = {norm_token(w): k for k, words in KIND_VALUES.items() for w in words}


#: Fields required in combination (shown in the docs table).
_REQUIRED_WHEN = {
    ("pharmacies", "pharmacy_id"): "no: without it, ids are made from name + address (stable_pharmacy_id)",
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
    **{("workers", f): "points: lon + lat, or point/polygon geometry; a table per sub-district: code or name"
       for f in ("lon", "lat", "code", "name")},
}


def columns_markdown() -> str:
    """The accepted header names per layer and field as a Markdown table (for the README)."""
    lines = ["| layer | field | required | accepted headers |", "|---|---|---|---|"]
    for layer, fields in FIELD_ALIASES.items():
        for name, aliases in fields.items():
            required = "yes" if name in REQUIRED_COLUMNS[layer] else _REQUIRED_WHEN.get((layer, name), "")
            lines.append(f"| {layer} | `{name}` | {required} | {', '.join(aliases)} |")
    return "\n".join(lines)


#: Words of an agreement status cell (planning.settlement.AGREEMENT_STATES), and of the principal's
#: payment qualification (planning.settlement.PRINCIPAL_STATES).
AGREEMENT_WORDS: dict[str, tuple[str, ...]] = {
    "settling": ("settling", "正常", "有效", "履约中", "正常结算", "在协议期", "active", "normal"),
    "suspended": ("suspended", "暂停", "暂停协议", "暂停结算", "中止", "中止协议", "暂停中"),
    "terminated": ("terminated", "解除", "解除协议", "终止", "终止协议", "已解除", "已终止", "退出"),
}
PRINCIPAL_WORDS: dict[str, tuple[str, ...]] = {
    "qualified": ("qualified", "正常", "有效", "具备", "normal"),
    "suspended": ("suspended", "暂停", "暂停支付资格", "暂停资格"),
    "terminated": ("terminated", "终止", "终止支付资格", "终止资格", "取消"),
}
#: Which state-word table each word field reads.
STATE_WORDS = {"agreement_status": AGREEMENT_WORDS, "principal_status": PRINCIPAL_WORDS}
_STATE_OF_WORD = {field: {norm_token(w): state for state, words in table.items() for w in words}
                  for field, table in STATE_WORDS.items()}


def parse_state(value: Any, field: str) -> str | None | _Invalid:
    """A state-word cell of ``field`` (agreement_status, principal_status) as its canonical word; None
    when blank, :data:`INVALID` for a word not in :data:`STATE_WORDS`."""
    token = norm_token(value)
    if token == "":
        return None
    return _STATE_OF_WORD[field].get(token, INVALID)


_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$|^(\d{4})(\d{2})(\d{2})$")


def parse_date(value: Any) -> str | None | _Invalid:
    """A date cell as ISO text "2025-06-30": a date or datetime (Excel), "2025-06-30", "2025/6/30",
    "2025.6.30", "2025年6月30日", "20250630" (a time part is dropped); None when blank, :data:`INVALID`
    otherwise (an Excel serial number too: format the column as dates)."""
    if isinstance(value, (pd.Timestamp, _dt.datetime)):
        return None if pd.isna(value) else value.date().isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    text = unicodedata.normalize("NFKC", cell_text(value)).split(" ")[0].split("T")[0]
    if text == "":
        return None
    match = _DATE.match(text)
    if not match:
        return INVALID
    year, month, day = (int(g) for g in (match.groups()[:3] if match.group(1) else match.groups()[3:]))
    try:
        return _dt.date(year, month, day).isoformat()
    except ValueError:
        return INVALID


# ======================================================================================= value parsers
def parse_flag(value: Any) -> bool | None:
    """A yes/no cell as bool: 是/否, Y/N, 1/0, ✓/×, true/false, 已开通/未开通, 连锁/单体 ... (blank is False).

    Returns None for a value that is not recognised.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return False if math.isnan(value) else {1.0: True, 0.0: False}.get(float(value))  # NaN: a blank cell
    token = norm_token(value)
    if token in _TRUE:
        return True
    if token in _FALSE:
        return False
    whole = re.fullmatch(r"([01])\.0*", token)  # "1.0" / "0.0": a 1/0 column saved as decimals
    return None if whole is None else whole.group(1) == "1"


def parse_services(value: Any) -> tuple[set[str], list[str]]:
    """A service-list cell such as "门诊统筹、慢特病" as (set of :class:`~planning.model.Service` values, unknown words)."""
    found: set[str] = set()
    unknown: list[str] = []
    for word in _SERVICE_SPLIT.split(cell_text(value)):
        token = norm_token(word)
        if token in _NO_SERVICE_WORDS:
            continue
        if token in _SERVICE_OF_WORD:
            found.add(_SERVICE_OF_WORD[token])
        else:
            unknown.append(word.strip())
    return found, unknown


class _Invalid:
    """Marker for an unparseable value (``INVALID``) or a coordinate with a decimal comma (``COMMA_DECIMAL``)."""

    def __init__(self, name: str = "INVALID"):
        self.name = name

    def __repr__(self) -> str:
        return self.name


INVALID = _Invalid()
#: :func:`parse_coordinate`'s answer for "111,5971264": a comma where the decimal point belongs.
COMMA_DECIMAL = _Invalid("COMMA_DECIMAL")

#: Every unit a number cell may carry; "万..." multiplies by 10,000.
UNITS = ("万元", "万人", "万", "元", "人", "次", "分", "个月", "月", "层", "%")
#: The units each numeric field accepts (a unit not listed, a percent sign above all, rejects the cell:
#: "85%" or "3个月" is no head count). Fields not listed take plain numbers only.
FIELD_UNITS: dict[str, tuple[str, ...]] = {
    "population": ("万人", "万", "人"),
    "employees": ("万人", "万", "人"),
    "chronic_patients": ("万人", "万", "人"),
    "persons": ("万人", "万", "人"),
    "workers": ("万人", "万", "人"),
    "annual_volume_yuan": ("万元", "万", "元"),
    "suspensions": ("次",),
    "credit_score": ("分",),
    "months_operating": ("个月", "月"),
    "floors": ("层",),
}
_NUMBER = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)(" + "|".join(UNITS) + r")?$")


def _number_text(value: Any) -> str:
    return unicodedata.normalize("NFKC", cell_text(value)).lower().replace(",", "").replace(" ", "")


def parse_number(value: Any, units: tuple[str, ...] = UNITS) -> float | None | _Invalid:
    """A numeric cell as float: "1,234.5", "12.3万" (x 10,000), "300元"; None when blank, :data:`INVALID`
    otherwise, and for a unit not among ``units`` (all of :data:`UNITS` by default)."""
    if isinstance(value, (bool, np.bool_)):
        return INVALID
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = float(value)
        return None if math.isnan(value) else (value if math.isfinite(value) else INVALID)
    text = _number_text(value)
    if text == "":
        return None
    match = _NUMBER.match(text)
    if not match or (match.group(2) and match.group(2) not in units):
        return INVALID
    number = float(match.group(1)) * (10_000 if (match.group(2) or "").startswith("万") else 1)
    return number if math.isfinite(number) else INVALID


def number_unit(value: Any) -> str:
    """The unit (or percent sign) written after the number in a cell ("" when none): "85%" -> "%"."""
    match = _NUMBER.match(_number_text(value)) if isinstance(value, str) else None
    return (match.group(2) or "") if match else ""


def units_text(units: tuple[str, ...]) -> Text:
    """What a numeric column accepts, for a rejection reason: "数字（可带：万、人）" / "a number (万, 人 allowed)"."""
    if not units:
        return Text("不带单位的数字", "a plain number (no unit)")
    return Text(f"数字（可带：{'、'.join(units)}）", f"a number ({', '.join(units)} allowed)")


_HEMISPHERE = {"e": 1, "n": 1, "w": -1, "s": -1, "东经": 1, "北纬": 1, "西经": -1, "南纬": -1}
_DMS = re.compile(r"^(东经|西经|北纬|南纬|[nsew])?(\d+(?:\.\d+)?)(?:°|度)(?:(\d+(?:\.\d+)?)(?:'|′|分))?"
                  r"(?:(\d+(?:\.\d+)?)(?:\"|″|′′|''|秒))?(东经|西经|北纬|南纬|[nsew])?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d{1,3},\d+$")


def parse_coordinate(value: Any) -> float | None | _Invalid:
    """A longitude or latitude cell in decimal degrees, or degrees-minutes-seconds such as 112°56′30″,
    111°35′49″E, 东经111度35分49秒 (S and W negative; converted exactly, then rounded once to a float).

    Returns None when blank, :data:`COMMA_DECIMAL` for "111,5971264" (a comma where the decimal point
    belongs), :data:`INVALID` for anything else that is not a coordinate (units are never accepted).
    """
    if isinstance(value, (bool, np.bool_)):
        return INVALID
    text = unicodedata.normalize("NFKC", cell_text(value)).replace(" ", "")
    if isinstance(value, str) and _DECIMAL_COMMA.match(text):
        return COMMA_DECIMAL
    number = parse_number(value, units=())
    if number is not INVALID:
        return number
    match = _DMS.match(text.lower())
    if not match or (match.group(1) and match.group(5)):
        return INVALID
    d, m, s = (Fraction(g) if g else Fraction(0) for g in match.groups()[1:4])
    if m >= 60 or s >= 60:
        return INVALID
    sign = _HEMISPHERE.get(match.group(1) or match.group(5) or "e", 1)
    return float(sign * (d + m / 60 + s / 3600))


def comma_decimal_value(value: Any) -> str:
    """"111,5971264" written with a decimal point, for the rejection reason."""
    return cell_text(value).replace(",", ".")


#: First letter of the ids made from name and address.
GENERATED_ID_PREFIX = "H"


def stable_pharmacy_id(name: str, address: str) -> str:
    """A stable id for a pharmacy sheet without an id column: "H" + the first 12 hex digits (upper case)
    of SHA-1 over the UTF-8 bytes of ``normalised name + "|" + normalised address``.

    Normalised = NFKC, every whitespace removed, lower case; so the same file (or the same sheet
    re-typed with other spacing or full-width characters) always gives the same ids.
    """
    key = f"{_id_text(name)}|{_id_text(address)}"
    return GENERATED_ID_PREFIX + hashlib.sha1(key.encode("utf-8")).hexdigest()[:12].upper()


def _id_text(value: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value))).lower()


_SCIENTIFIC = re.compile(r"^[+-]?\d(?:\.\d+)?e[+-]?\d+$", re.IGNORECASE)


def is_scientific_code(code: str) -> bool:
    """True for a code Excel turned into a number and shows in scientific notation ("9.90102E+8")."""
    return bool(_SCIENTIFIC.match(code))


def parse_code(value: Any) -> str:
    """An administrative code as text (numbers typed into Excel lose their ".0")."""
    return cell_text(value).replace(" ", "")


def code_key(code: str, digits: int) -> str:
    """``code`` cut to ``digits`` when it is a longer code padded with zeros (430102001000 -> 430102001)."""
    if code.isdigit() and len(code) > digits and set(code[digits:]) == {"0"}:
        return code[:digits]
    return code


def name_key(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).replace(" ", "")
    return re.sub(r"(街道)?办事处$", "街道", text)


def infer_kind(name: str) -> str | None:
    """"street" for 街道/办事处 names, "town" for 镇/乡/苏木 names, None otherwise."""
    text = name_key(name)
    if text.endswith(("街道", "街道办")):
        return SubdistrictKind.STREET.value
    if text.endswith(("镇", "乡", "苏木")):
        return SubdistrictKind.TOWN.value
    return None
