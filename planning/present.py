"""Tables for people: a library table with its headers and values in Chinese or English.

The library's tables (``Assessment.subdistricts``, ``.counties``, ``Region.rejected``, the scenario
diff tables, ...) keep machine names, which the exports (CSV, XLSX, GeoJSON) keep as a stable schema
for GIS and scripts. :func:`for_people` is what a planner reads on screen, in the app or a notebook:
headers and codes in words, persons as whole numbers, shares as percentages, areas in km² to three
decimals. Numbers stay numbers, so a table shown in the app still sorts by value.
"""

from __future__ import annotations

import pandas as pd

from planning.rules import CLASS_LABELS
from planning.completeness import label as completeness_label
from planning.i18n import t
from planning.model import Service, service_labels
from planning.text import Text, join

#: Header of each known column, (Chinese, English). Columns ending in ``_before`` / ``_after`` /
#: ``_delta`` take their stem's header and a suffix; unknown columns keep their name.
COLUMN_LABELS: dict[str, tuple[str, str]] = {
    "code": ("代码", "code"),
    "name": ("名称", "name"),
    "kind": ("类型", "kind"),
    "county_code": ("所属区县代码", "county code"),
    "service": ("业务类别", "service"),
    "services": ("开通业务", "services"),
    "population": ("常住参保人口", "insured residents"),
    "pharmacies": ("定点药店数", "pharmacies"),
    "per_10k": ("每万参保人药店数", "pharmacies per 10,000 insured"),
    "residents_per_pharmacy": ("每店服务人口", "residents per pharmacy"),
    "covered": ("时限内人口", "residents within the walk time"),
    "covered_share": ("时限内覆盖率（%）", "share within the walk time (%)"),
    "uncovered": ("时限外人口", "residents beyond the walk time"),
    "placed": ("落到路网的人口", "residents placed on streets"),
    "street_km": ("步行路网（公里）", "walkable streets (km)"),
    "class": ("分类", "class"),
    "class_measure": ("判定指标", "deciding measure"),
    "class_reason": ("判定依据", "reason"),
    "class_rule": ("分类规则", "class rule"),
    "class_changed": ("分类变化", "class changed"),
    "r1_ok": ("R1 满足", "R1 met"),
    "r1_shortfall": ("R1 缺口", "R1 shortfall"),
    "r1_failing": ("R1 未满足的街道数", "street offices failing R1"),
    "r2_ok": ("R2 满足", "R2 met"),
    "r2_shortfall": ("R2 缺口", "R2 shortfall"),
    "r2_failing": ("R2 未满足的区县数", "counties failing R2"),
    "r3_ok": ("R3 满足", "R3 met"),
    "r3_uncovered": ("R3 时限外人口", "R3 residents beyond the walk time"),
    "fund_b3": ("B3 基金当期亏损", "B3 fund deficit"),
    "fund_b4": ("B4 总量平衡", "B4 balance only"),
    "rule_ids": ("规则", "rules"),
    "rule": ("规则", "rule"),
    "level": ("层级", "level"),
    "ok": ("满足", "met"),
    "change": ("变化", "change"),
    "requirements": ("要求变化", "requirement changes"),
    "zone": ("分区", "zone"),
    "area_km2": ("面积（平方公里）", "area (km²)"),
    "area_before_km2": ("面积（前，平方公里）", "area before (km²)"),
    "area_after_km2": ("面积（后，平方公里）", "area after (km²)"),
    "added_km2": ("新增面积（平方公里）", "added (km²)"),
    "lifted_km2": ("解除面积（平方公里）", "lifted (km²)"),
    "blocked_added_km2": ("新增禁止区（平方公里）", "blocked area added (km²)"),
    "blocked_lifted_km2": ("解除禁止区（平方公里）", "blocked area lifted (km²)"),
    "pharmacy_id": ("药店编码", "pharmacy id"),
    "edit": ("序号", "no."),
    "description": ("内容", "description"),
    "layer": ("数据", "layer"),
    "source": ("文件", "file"),
    "row": ("行号", "row"),
    "reason_code": ("原因代码", "reason code"),
    "reason": ("原因", "reason"),
    "lon": ("经度", "longitude"),
    "lat": ("纬度", "latitude"),
}
_SUFFIXES = {"_before": ("（前）", " before"), "_after": ("（后）", " after"), "_delta": ("（变化）", " change")}

#: Words for coded values, by value, (Chinese, English).
VALUE_LABELS: dict[str, tuple[str, str]] = {
    "street": (t("kind_street", "zh"), t("kind_street", "en")),
    "town": (t("kind_town", "zh"), t("kind_town", "en")),
    "subdistrict": ("街道/乡镇", "sub-district"),
    "county": ("县（市、区）", "county"),
    "blocked": (t("zone_blocked", "zh"), t("zone_blocked", "en")),
    "priority": (t("zone_priority", "zh"), t("zone_priority", "en")),
    "review": (t("zone_review", "zh"), t("zone_review", "en")),
    "per_10k": (t("per_10k", "zh"), t("per_10k", "en")),
    "covered_share": (t("covered_share", "zh"), t("covered_share", "en")),
    "met": ("变为满足", "now met"),
    "broken": ("变为不满足", "now broken"),
    "applies": ("开始适用", "now applies"),
    "no longer applies": ("不再适用", "no longer applies"),
    "added": ("新增", "added"),
    "lifted": ("解除", "lifted"),
    "site_added": ("新增", "added"),
    "site_removed": ("撤销", "withdrawn"),
    "site_changed": ("业务变更", "services changed"),
    "AddSite": ("新增药店", "add a pharmacy"),
    "RemoveSite": ("撤销药店", "withdraw a pharmacy"),
    "ChangeServices": ("变更业务", "change services"),
    "ScalePopulation": ("人口按比例变化", "scale population"),
    "SetPopulation": ("设定人口", "set population"),
    "ChangePolicy": ("调整政策参数", "change policy"),
}

_SERVICE_VALUES = {s.value for s in Service}
_PERSONS = {"population", "covered", "uncovered", "placed", "r3_uncovered", "residents_per_pharmacy"}
_COUNTS = {"pharmacies", "r1_shortfall", "r2_shortfall", "r1_failing", "r2_failing", "row", "edit"}
_SHARES = {"covered_share"}
_YES_NO = {"r1_ok", "r2_ok", "r3_ok", "ok", "fund_b3", "fund_b4", "class_changed"}
_DECIMALS = {"per_10k": 2, "street_km": 1, "lon": 6, "lat": 6}


def for_people(table: pd.DataFrame, lang: str = "zh") -> pd.DataFrame:
    """``table`` (any of the library's tables) ready to read: headers and coded values in ``lang``
    ("zh" or "en"), persons rounded to whole numbers, shares in percent (one decimal), km² to three
    decimals, geometry dropped. The row order and every row are kept; numbers stay numeric."""
    shown = pd.DataFrame(table.drop(columns=["geometry"], errors="ignore")).copy()
    if "class_reason_zh" in shown:  # the classes' reasons come in both languages: keep the reader's
        if lang == "zh":
            shown["class_reason"] = shown["class_reason_zh"]
        shown = shown.drop(columns="class_reason_zh")
    for column in shown.columns:
        stem = _stem(column)
        values = shown[column]
        if stem in ("service", "services"):
            shown[column] = values.map(lambda v: _service_words(v, lang))
        elif stem == "class":
            shown[column] = values.map(lambda v: _word(CLASS_LABELS, v, lang))
        elif stem in _YES_NO:
            shown[column] = values.map(lambda v: _yes_no(v, lang))
        elif stem in ("kind", "level", "zone", "class_measure", "change"):
            shown[column] = values.map(lambda v: _word(VALUE_LABELS, v, lang))
        elif not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        elif stem in _PERSONS or stem in _COUNTS:
            shown[column] = values.round(0).astype("Int64")
        elif stem in _SHARES:
            shown[column] = (values * 100).round(1)
        elif column.endswith("_km2"):
            shown[column] = values.round(3)
        elif stem in _DECIMALS:
            shown[column] = values.round(_DECIMALS[stem])
    return shown.rename(columns={c: column_label(c, lang) for c in shown.columns})


def column_label(column: str, lang: str = "zh") -> str:
    """The header of a library column in ``lang`` (its own name when unknown)."""
    index = 0 if lang == "zh" else 1
    if column in COLUMN_LABELS:
        return COLUMN_LABELS[column][index]
    for suffix, words in _SUFFIXES.items():
        if column.endswith(suffix) and column[: -len(suffix)] in COLUMN_LABELS:
            return COLUMN_LABELS[column[: -len(suffix)]][index] + words[index]
    return column


def _stem(column: str) -> str:
    for suffix in _SUFFIXES:
        if column.endswith(suffix):
            return column[: -len(suffix)]
    return column


def _word(labels: dict, value, lang: str):
    if isinstance(value, str) and value in labels:
        label = labels[value]
        return label.get(lang) if isinstance(label, Text) else label[0 if lang == "zh" else 1]
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def _yes_no(value, lang: str) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "不适用" if lang == "zh" else "n/a"
    return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")


def _service_words(value, lang: str):
    """One service value, or several separated by commas, in words (anything else unchanged)."""
    if not isinstance(value, str) or not value or not set(value.split(",")) <= _SERVICE_VALUES:
        return value
    return service_labels(value.split(","), lang)


def summary_text(assessment, lang: str = "zh") -> str:
    """A planner's summary of one assessment as plain text: the region and policy, then one block per
    service (covered share, classes, R1/R2 shortfalls by name, zone areas), in ``lang``. Names, not codes;
    what a rule could not judge is said, never shown as passed. The CLI prints it; notebooks may too."""
    policy = assessment.policy
    region = assessment.region
    lines = [Text(f"{region.name} · 政策：{policy.title_zh} · 步行 {policy.walk_minutes:g} 分钟 · "
                  f"{policy.speed_m_per_min:g} 米/分钟",
                  f"{region.name} · policy: {policy.title_en} · {policy.walk_minutes:g} min walk · "
                  f"{policy.speed_m_per_min:g} m/min").get(lang),
             Text(f"{len(region.subdistricts)} 个街道/乡镇，{len(region.counties)} 个县（市、区），"
                  f"{len(region.pharmacies)} 家定点药店，拒收输入行 {len(region.rejected)} 行",
                  f"{len(region.subdistricts)} sub-districts, {len(region.counties)} counties, "
                  f"{len(region.pharmacies)} designated pharmacies, {len(region.rejected)} input rows rejected").get(lang)]
    sd, counties = assessment.subdistricts, assessment.counties
    cell_km2 = assessment.rasters.cell_m ** 2 / 1e6
    for service in Service:
        mine = sd[sd["service"] == service.value]
        lines += ["", f"【{service.label(lang)}】"]
        population = float(mine["population"].sum())
        covered = population - float(mine["uncovered"].sum())
        share = covered / population if population else 0.0
        lines.append(Text(f"  步行 {policy.walk_minutes:g} 分钟内：{share:.1%} 的常住参保人口（时限外 {population - covered:,.0f} 人）",
                          f"  within {policy.walk_minutes:g} min: {share:.1%} of insured residents "
                          f"({population - covered:,.0f} beyond)").get(lang))
        if mine["class"].notna().any():
            counts = mine["class"].value_counts()
            parts = [f"{CLASS_LABELS[c].get(lang)} {int(counts.get(c, 0))}" for c in CLASS_LABELS]
            lines.append(Text("  分类：", "  classes: ").get(lang) + " · ".join(parts))
        if mine["r1_ok"].notna().any():
            failing = mine.loc[mine["r1_ok"].eq(False).fillna(False).to_numpy(dtype=bool), "name"].tolist()
            lines.append(Text("  R1 缺口（街道无该业务药店）：", "  R1 shortfalls (street offices without it): ").get(lang)
                         + (service_list(failing, lang) or Text("无", "none").get(lang)))
        county_rows = counties[counties["service"] == service.value]
        if county_rows["r2_ok"].notna().any():
            failing = county_rows.loc[county_rows["r2_ok"].eq(False).fillna(False).to_numpy(dtype=bool), "name"].tolist()
            lines.append(Text("  R2 缺口（县无“双通道”药店）：", "  R2 shortfalls (counties without one): ").get(lang)
                         + (service_list(failing, lang) or Text("无", "none").get(lang)))
        unjudged = assessment.unjudged(service)
        if unjudged:
            inputs = list(dict.fromkeys(k for keys in unjudged.values() for k in keys))
            lines.append(Text("  未判定（缺少数据）：", "  not judged (data missing): ").get(lang) + service_list(unjudged, lang)
                         + Text("（缺少", " (missing ").get(lang) + service_list([completeness_label(k, lang) for k in inputs], lang)
                         + Text("）", ")").get(lang))
        union: dict[str, object] = {}
        for part in assessment.zone_parts(service):
            union[part.zone] = part.mask | union[part.zone] if part.zone in union else part.mask
        areas = {zone: float(mask.sum()) * cell_km2 for zone, mask in union.items()}
        if areas:
            lines.append("  " + " · ".join(f"{t('zone_' + zone, lang)} {areas[zone]:,.1f} km²"
                                           for zone in ("blocked", "priority", "review") if zone in areas))
    if region.completeness is not None:
        lines += ["", Text("数据完整性：", "data completeness:").get(lang), region.completeness.text(lang)]
    return "\n".join(lines)


def service_list(names, lang: str = "zh") -> str:
    """Names as a list written in ``lang`` (``甲、乙`` / ``a, b``)."""
    return join((Text(str(n), str(n)) for n in names), lang)
