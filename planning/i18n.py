"""User-facing text in Chinese (default) and English, looked up by key."""

from __future__ import annotations

LANGUAGES = ("zh", "en")

_TEXT: dict[str, tuple[str, str]] = {
    "app_title": ("医保定点零售药店布局规划", "Designated pharmacy planning"),
    "fictional_note": ("示例市为虚构城市，数据均为演示用途。", "示例市 is a fictional city; all data are for demonstration."),
    "language": ("语言", "Language"),
    "region": ("地区", "Region"),
    "counties": ("县（市、区）", "Counties / districts"),
    "subdistricts": ("街道 / 乡镇", "Sub-districts"),
    "pharmacies": ("定点药店", "Designated pharmacies"),
    "streets": ("步行路网", "Walking network"),
    "population": ("常住参保人口", "Resident insured population"),
    "kind_street": ("街道（城区）", "street office (urban)"),
    "kind_town": ("镇/乡（农村）", "town (rural)"),
    "services": ("开通业务", "Services"),
    "chain": ("连锁", "chain"),
    "single": ("单体", "single store"),
    "network_summary": ("路网：{nodes:,} 个节点，{edges:,} 条边，{km:,.0f} 公里，{pieces} 个连通片",
                        "Network: {nodes:,} nodes, {edges:,} edges, {km:,.0f} km, {pieces} connected piece(s)"),
    "legend": ("图例", "Legend"),
    "fund_deficit": ("职工医保基金当期亏损", "employee fund deficit"),
    "classes": ("饱和度分类", "Saturation classes"),
    "class": ("分类", "class"),
    "measure": ("判定依据", "deciding measure"),
    "per_10k": ("每万参保人药店数", "pharmacies per 10,000 insured"),
    "covered_share": ("15分钟覆盖率", "share within 15 min"),
    "rule_ids": ("规则", "rules"),
    "circles": ("15分钟服务圈", "15-minute service circles"),
    "uncovered": ("未覆盖居住区", "uncovered residential area"),
    "zone_blocked": ("禁止新增区", "blocked zone"),
    "zone_priority": ("优先配置区", "priority zone"),
    "zone_review": ("需审核区", "review zone"),
}


def t(key: str, lang: str = "zh", **values) -> str:
    """The text for ``key`` in ``lang`` ("zh" or "en"), formatted with ``values``."""
    zh, en = _TEXT[key]
    text = zh if lang == "zh" else en
    return text.format(**values) if values else text
