"""The assessment report (评估报告) as a Word document, in the style of an official report.

:func:`write_docx` lays out, in Chinese or English:

1. title, date, region, policy preset and the documents its rules cite;
2. a one-page summary table of findings, one row per rule of :data:`planning.policy.RULES` (its
   citation and text come from there), with what the assessment found or why it did not judge;
3. per service: a map of the saturation classes and one of the blocked / priority / review zones
   (drawn offline with matplotlib in the app's palette, with a scale bar), the county table and the
   sub-district table (values as :func:`planning.present.for_people` shows them);
4. the walking model and the data (datum, network, residents, the worker layer and its weight per
   service, data completeness);
5. what was not judged, and why.

Maps are drawn in the network's metric CRS (so the scale bar is true metres). Chinese labels need a CJK
font that matplotlib can find (:data:`CJK_FONT_FAMILIES`; Debian: fonts-wqy-microhei or fonts-noto-cjk,
which ``scripts/app.sh`` and ``scripts/test.sh`` install where they may); without one a
:class:`MissingCJKFontWarning` is issued once and the labels show as boxes.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from planning.completeness import label as completeness_label
from planning.rules import CLASS_LABELS, CLASSIFIED_SERVICES, R1_SERVICES, R2_SERVICE
from planning.i18n import t
from planning.model import Service
from planning.text import Text, check_lang
from planning.policy import DOCUMENTS, RULES, cited_documents
from planning.present import column_label, for_people
from planning.settlement import NOT_JUDGED, SUSPENDED, TERMINATED, status_summary, status_text, suspension_notes
from planning.workers import worker_summary

#: Font families tried, in order, for Chinese text in the maps (the first one matplotlib knows is used).
CJK_FONT_FAMILIES = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC",
                     "Source Han Sans SC", "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC")
#: Word fonts: body and headings for Chinese (宋体 / 黑体, as official documents use), Latin text.
DOCX_FONTS = {"body_east_asia": "SimSun", "heading_east_asia": "SimHei", "latin": "Times New Roman"}
#: Columns of the report's tables (machine names; headers come from planning.present).
SUBDISTRICT_COLUMNS = ["name", "kind", "population", "pharmacies", "per_10k", "covered_share", "uncovered", "class",
                       "class_measure", "r1_ok", "r3_ok", "rule_ids"]
COUNTY_COLUMNS = ["name", "population", "pharmacies", "per_10k", "covered_share", "class", "class_measure", "r2_ok",
                  "fund_b3", "fund_b4", "rule_ids"]
#: Width of the maps in the document, centimetres.
MAP_WIDTH_CM = 16.0


class MissingCJKFontWarning(UserWarning):
    """No CJK font for the report's maps: Chinese labels will show as boxes."""


def write_docx(assessment, path: str | Path, *, lang: str = "zh", date: dt.date | None = None) -> Path:
    """Write the assessment report (see the module docstring) to ``path`` (.docx); ``date`` defaults to today."""
    return save_document(docx_bytes(assessment, lang=lang, date=date), path)


def save_document(data: bytes, path: str | Path) -> Path:
    """Write a finished document's ``data`` to ``path``, creating its folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def load_libraries() -> None:
    """Import what a report draws and writes with (matplotlib on its Agg backend, geopandas' plotting,
    python-docx): 1.2 s of the first report in a process on the demo machine. A server calls it in the
    background once its first page is drawn, so that the first report download does not wait for them."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import docx  # noqa: F401
    import geopandas.plotting  # noqa: F401
    import matplotlib.figure  # noqa: F401


def docx_bytes(assessment, *, lang: str = "zh", date: dt.date | None = None) -> bytes:
    """The assessment report as .docx bytes (for a download button)."""

    report = _Report(assessment, lang, date or dt.date.today())
    report.build()
    return report.to_bytes()


# ----------------------------------------------------------------------------- findings (no layout)
#: Separator of names in a sentence.
_SEP = Text("、", ", ")
#: End of a sentence.
_STOP = Text("。", ".")


def rule_findings(assessment, lang: str = "zh") -> pd.DataFrame:
    """One row per rule of :data:`RULES`: ``rule_id``, ``citation``, ``text`` (from RULES), ``applies``
    (in this policy) and ``finding`` (what the assessment found, or why it was not judged)."""
    check_lang(lang)
    policy = assessment.policy
    sd, counties = assessment.subdistricts, assessment.counties
    rows = []
    for rule_id, rule in RULES.items():
        applies = policy.applies(rule_id)
        if not applies:
            finding = Text("本策略预设不适用此规则，未判定。", "Not in this policy preset: not judged.").get(lang)
        else:
            finding = _finding(rule_id, assessment, sd, counties, lang)
        rows.append({"rule_id": rule_id, "citation": rule.citation, "text": rule.text(lang), "applies": applies,
                     "finding": finding})
    return pd.DataFrame(rows)


#: The services a rule is judged for (the others leave it silent), for the not-judged wording.
_RULE_SERVICES: dict[str, tuple[Service, ...]] = {
    "R1": R1_SERVICES, "R2": (R2_SERVICE,), "R3": CLASSIFIED_SERVICES, "S": CLASSIFIED_SERVICES,
    "B2": CLASSIFIED_SERVICES, "R4": tuple(Service), "B1": tuple(Service), "B3": tuple(Service),
    "B4": tuple(Service), "B5": tuple(Service)}


def unjudged_for(assessment, rule_id: str) -> dict[Service, tuple[str, ...]]:
    """The services of ``rule_id`` that missing inputs leave it unjudged for, with the missing inputs."""
    found = {s: assessment.unjudged(s).get(rule_id) for s in _RULE_SERVICES.get(rule_id, tuple(Service))}
    return {s: inputs for s, inputs in found.items() if inputs}


def _finding(rule_id: str, assessment, sd: pd.DataFrame, counties: pd.DataFrame, lang: str) -> str:
    unjudged = unjudged_for(assessment, rule_id)
    inputs = list(dict.fromkeys(k for keys in unjudged.values() for k in keys))
    missing = _SEP.get(lang).join(completeness_label(k, lang) for k in inputs)
    if unjudged and len(unjudged) == len(_RULE_SERVICES.get(rule_id, tuple(Service))):
        return Text(f"未判定：缺少{missing}。", f"Not judged: missing {missing}.").get(lang)
    found = _judged_finding(rule_id, assessment, sd, counties, lang)
    if unjudged:
        services = _SEP.get(lang).join(s.label(lang) for s in unjudged)
        found += Text(f"（{services}未判定：缺少{missing}）", f" ({services} not judged: missing {missing})").get(lang)
    return found


def _judged_finding(rule_id: str, assessment, sd: pd.DataFrame, counties: pd.DataFrame, lang: str) -> str:
    sep = _SEP.get(lang)
    if rule_id == "R1":
        judged = sd[sd["r1_ok"].map(lambda v: v is not None and v is not pd.NA)]
        failing = judged.loc[judged["r1_ok"] == False, "name"].unique()  # noqa: E712
        streets = judged["code"].nunique()
        if not len(failing):
            return Text(f"{streets} 个城区街道全部满足。", f"All {streets} urban street offices meet it.").get(lang)
        return Text(f"{streets} 个城区街道中 {len(failing)} 个未满足：{sep.join(failing)}。",
                    f"{len(failing)} of {streets} urban street offices fail: {sep.join(failing)}.").get(lang)
    if rule_id == "R2":
        dual = counties[counties["service"] == Service.DUAL_CHANNEL.value]
        failing = dual.loc[dual["r2_ok"] == False, "name"].tolist()  # noqa: E712
        if not failing:
            return Text(f"{len(dual)} 个区县全部满足。", f"All {len(dual)} counties meet it.").get(lang)
        return Text(f"{len(dual)} 个区县中 {len(failing)} 个未满足：{sep.join(failing)}。",
                    f"{len(failing)} of {len(dual)} counties fail: {sep.join(failing)}.").get(lang)
    if rule_id == "R3":
        parts = []
        for service in CLASSIFIED_SERVICES:
            rows = assessment.coverage[assessment.coverage["service"] == service.value]
            population, uncovered = float(rows["population"].sum()), float(rows["uncovered"].sum())
            share = 1 - uncovered / population if population else 0.0
            parts.append(Text(f"{service.label('zh')}覆盖 {share:.1%}，时限外 {uncovered:,.0f} 人",
                              f"{service.label('en')} {share:.1%} covered, {uncovered:,.0f} persons beyond").get(lang))
        minutes = assessment.policy.walk_minutes
        return Text(f"步行 {minutes:g} 分钟：" + "；".join(parts) + "。",
                    f"{minutes:g}-minute walk: " + "; ".join(parts) + ".").get(lang)
    if rule_id == "R4":
        r4 = assessment.pharmacies["r4_ok"]
        if r4.isna().all():
            return Text("未判定：药店表没有“异地直接结算”列。",
                        "Not judged: the pharmacy table has no cross-region settlement column.").get(lang)
        failing, unknown = int((r4 == False).sum()), int(r4.isna().sum())  # noqa: E712
        text = Text(f"{len(r4)} 家药店中 {failing} 家不支持异地直接结算",
                    f"{failing} of {len(r4)} pharmacies do not support cross-region settlement").get(lang)
        if unknown:
            text += Text(f"，{unknown} 家未判定（无数据）", f", {unknown} not judged (no data)").get(lang)
        return text + _STOP.get(lang)
    if rule_id in ("B1", "B2", "B3", "B4"):
        if rule_id in ("B3", "B4"):
            column = "fund_b3" if rule_id == "B3" else "fund_b4"
            names = counties.loc[counties[column].eq(True).fillna(False).to_numpy(dtype=bool), "name"].unique()
            if not len(names):
                return Text("无区县触发。", "No county triggers it.").get(lang)
            text = Text(f"{len(names)} 个区县禁止或限制新增：{sep.join(names)}",
                        f"{len(names)} counties blocked or limited: {sep.join(names)}").get(lang)
        elif rule_id == "B2":
            names = sd.loc[sd["class"] == "saturated", "name"].unique()
            text = Text(f"{len(names)} 个街道/乡镇为相对饱和（至少一项业务）：{sep.join(names)}",
                        f"{len(names)} sub-districts saturated for at least one service: {sep.join(names)}").get(lang)
            if not len(names):
                return Text("无相对饱和区域。", "No saturated area.").get(lang)
        else:
            text = Text("同业务服务圈内禁止新增", "No new designation inside same-service circles").get(lang)
        if rule_id == "B1":  # the circles differ per service; B2-B4 areas are the same whole areas
            areas = [(s, _zone_area_km2(assessment, s, "blocked", rule_id)) for s in Service]
            text += Text("：", ": ").get(lang) + sep.join(f"{s.label(lang)} {a:,.1f} km²" for s, a in areas if a > 0)
        return text + _STOP.get(lang)
    if rule_id == "B5":
        return Text("区域评估不判定：B5 针对单个申请药店，在选址核查（pharmacy-plan check --applicant）中判定。",
                    "Not judged in an area assessment: B5 concerns one applicant and is judged by the designation "
                    "check (pharmacy-plan check --applicant).").get(lang)
    if rule_id == "S":
        parts = []
        for service in CLASSIFIED_SERVICES:
            counts = sd.loc[sd["service"] == service.value, "class"].value_counts()
            words = sep.join(f"{CLASS_LABELS[c].get(lang)} {int(counts[c])}" for c in CLASS_LABELS if c in counts)
            parts.append(Text(f"{service.label('zh')}：{words}", f"{service.label('en')}: {words}").get(lang))
        return Text("街道/乡镇分类 — " + "；".join(parts) + "。",
                    "Sub-district classes — " + "; ".join(parts) + ".").get(lang)
    return ""


def _zone_area_km2(assessment, service: Service, zone: str, rule_id: str | None = None) -> float:
    zones = assessment.zones_for(service)
    part = zones[zones["zone"] == zone]
    if rule_id is not None:
        part = part[part["rule_ids"].str.split(",").map(lambda ids: rule_id in ids)]
    if not len(part):
        return 0.0
    return float(part.to_crs(assessment.network.crs).area.sum() / 1e6)


def not_judged(assessment, lang: str = "zh") -> pd.DataFrame:
    """What the assessment did not judge, with why: ``item``, ``count`` and ``reason``."""
    check_lang(lang)
    rows = []

    def add(item: Text, count, reason: Text):
        if count:
            rows.append({"item": item.get(lang), "count": int(count), "reason": reason.get(lang)})

    policy = assessment.policy
    left_out = [r for r in RULES if not policy.applies(r)]
    add(Text("规则：" + "、".join(left_out), "rules: " + ", ".join(left_out)), len(left_out),
        Text(f"策略预设 {policy.policy_id} 不包含这些规则", f"the policy preset {policy.policy_id} leaves them out"))
    sd = assessment.subdistricts
    pooling = sd[sd["service"] == Service.OUTPATIENT_POOLING.value]
    if policy.applies("R1"):
        add(Text("R1（乡镇）", "R1 (towns)"), int(pooling["r1_ok"].isna().sum()),
            Text("R1 只适用于城区街道办事处", "R1 applies to urban street offices only"))
    r4 = assessment.pharmacies["r4_ok"]
    if policy.applies("R4"):
        add(Text("R4（药店）", "R4 (pharmacies)"), int(r4.isna().sum()),
            Text("药店表没有“异地直接结算”数据", "the pharmacy table has no cross-region settlement data"))
    if policy.applies("B5"):
        add(Text("B5", "B5"), 1,
            Text("针对单个申请药店，在选址核查中判定", "concerns one applicant: judged by the designation check"))
    pharmacies = assessment.pharmacies
    unknown = pharmacies[pharmacies["settlement"] == NOT_JUDGED]
    rules_open = sorted({r for ids in unknown["settlement_not_judged"] for r in ids.split(",") if r})
    add(Text("药店结算状态", "pharmacies' settlement status"), len(unknown),
        Text(f"缺少判定所需的数据（{'、'.join(rules_open)}），按计入服务处理，不视为正常结算",
             f"the data its rules need is missing ({', '.join(rules_open)}): counted as serving, never taken as "
             "settling"))
    add(Text("不在任何街道/乡镇内的药店", "pharmacies outside every sub-district"),
        int(pharmacies["subdistrict_code"].isna().sum()),
        Text("不计入任何街道/乡镇的药店数", "counted in no sub-district"))
    add(Text("未接入路网的药店", "pharmacies off the street network"),
        int((~pharmacies["on_network"].astype(bool)).sum()),
        Text(f"距最近步行道路超过 {policy.max_snap_m:g} 米，不作为服务点",
             f"more than {policy.max_snap_m:g} m from a walkable street: not a service site"))
    coverage = assessment.coverage[assessment.coverage["service"] == Service.PERSONAL_ACCOUNT.value]
    unplaced = float((coverage["population"] - coverage["placed"]).clip(lower=0).sum())
    add(Text("无法落到路网的人口", "persons not placed on streets"), round(unplaced),
        Text("所在街道/乡镇内没有可步行道路，按时限外计",
             "no walkable street in their sub-district: counted as beyond the walk time"))
    for rule_id in RULES:
        unjudged = unjudged_for(assessment, rule_id) if policy.applies(rule_id) else {}
        if unjudged:
            inputs = list(dict.fromkeys(k for keys in unjudged.values() for k in keys))
            add(Text(f"{rule_id}（" + "、".join(s.label("zh") for s in unjudged) + "）",
                     f"{rule_id} (" + ", ".join(s.label("en") for s in unjudged) + ")"), len(unjudged),
                Text("缺少" + "、".join(completeness_label(k, "zh") for k in inputs) + "（见数据完整性表）",
                     "missing " + ", ".join(completeness_label(k, "en") for k in inputs)
                     + " (see the data-completeness table)"))
    rejected = assessment.region.rejected
    add(Text("被拒绝的输入行", "rejected input rows"), len(rejected),
        Text("见 rejected.csv 中每行的原因", "each row's reason is in rejected.csv"))
    return pd.DataFrame(rows, columns=["item", "count", "reason"])


def data_completeness(assessment, lang: str = "zh") -> pd.DataFrame:
    """Per input layer: rows used, rows rejected, and which optional columns (rules' data) are present."""
    check_lang(lang)
    region = assessment.region
    rejected = region.rejected["layer"].value_counts() if "layer" in region.rejected.columns else pd.Series(dtype=int)
    optional = {"cross_region_settlement": "R4", "info_system_ready": "B5", "chain": "risk A/B/C",
                "annual_volume_yuan": "MDJ art. 16", "suspensions": "CX art. 35",
                "info_system_accepted": "ST-info", "traceability_accepted": "ST-trace",
                "agreement_status": "ST-suspended/ST-terminated", "suspension_start": "ST-180",
                "earlier_suspensions": "ST-twice", "principal_status": "ST-principal"}
    present = [f"{c} ({r})" for c, r in optional.items() if c in region.pharmacies.columns
               and region.pharmacies[c].notna().any()]
    missing = [f"{c} ({r})" for c, r in optional.items() if f"{c} ({r})" not in present]
    fund = [c for c in ("fund_deficit_last_year", "fund_deficit_forecast", "fund_warning_letter")
            if c in region.counties.columns]
    sep = _SEP.get(lang)
    pharmacy_columns = ((Text("有：", "present: ").get(lang) + sep.join(present)) if present else "") + (
        (Text("；缺：", "; missing: ").get(lang) + sep.join(missing)) if missing else "")
    rows = [
        (Text("药店", "pharmacies").get(lang), len(region.pharmacies), int(rejected.get("pharmacies", 0)),
         pharmacy_columns),
        (Text("街道/乡镇", "sub-districts").get(lang), len(region.subdistricts), int(rejected.get("subdistricts", 0)),
         Text("边界、类型、常住参保人口", "outlines, kind, resident insured population").get(lang)),
        (Text("区县", "counties").get(lang), len(region.counties), int(rejected.get("counties", 0)),
         Text("基金状况：", "fund status: ").get(lang) + (sep.join(fund) or Text("无", "none").get(lang))),
    ]
    for layer in sorted(set(rejected.index) - {"pharmacies", "subdistricts", "counties"}):
        rows.append((layer, None, int(rejected[layer]), ""))
    return pd.DataFrame(rows, columns=["layer", "used", "rejected", "columns"])


# ----------------------------------------------------------------------------- maps
_FONT_STATE: dict[str, str | None] = {}


def cjk_font_family() -> str | None:
    """The first of :data:`CJK_FONT_FAMILIES` matplotlib can use, or None (warned about once)."""
    if "family" not in _FONT_STATE:
        from matplotlib import font_manager

        known = {f.name for f in font_manager.fontManager.ttflist}
        family = next((f for f in CJK_FONT_FAMILIES if f in known), None)
        if family is None:  # a font installed after matplotlib built its cache
            font_manager.fontManager = font_manager.FontManager()
            known = {f.name for f in font_manager.fontManager.ttflist}
            family = next((f for f in CJK_FONT_FAMILIES if f in known), None)
            if family is not None:  # keep the new list where matplotlib looks (each process rescanned: 0.3 s)
                font_manager.json_dump(font_manager.fontManager, font_cache_path())
        if family is None:
            warnings.warn("no CJK font found for the report's maps (tried: " + ", ".join(CJK_FONT_FAMILIES)
                          + "); Chinese labels will show as boxes. Debian: apt-get install fonts-wqy-microhei",
                          MissingCJKFontWarning, stacklevel=3)
        _FONT_STATE["family"] = family
    return _FONT_STATE["family"]


def font_cache_path() -> Path:
    """The font list matplotlib reads at import (its cache folder, named by its font-manager version)."""
    import matplotlib
    from matplotlib import font_manager

    return Path(matplotlib.get_cachedir()) / f"fontlist-v{font_manager.FontManager.__version__}.json"


#: How strongly each zone kind is filled on the report's maps (alpha), in drawing order.
ZONE_ALPHAS = {"blocked": 0.45, "priority": 0.55, "review": 0.8}


def map_rc() -> dict:
    """matplotlib settings of the report's maps: the CJK font when one is found (:func:`cjk_font_family`)."""
    family = cjk_font_family()
    return {"font.family": "sans-serif", "font.sans-serif": ([family] if family else []) + ["DejaVu Sans"],
            "axes.unicode_minus": False}


def has_classes(assessment, service: Service) -> bool:
    """Whether ``service``'s sub-districts carry saturation classes (dual channel is planned per county)."""
    sd = assessment.subdistricts
    return bool(sd.loc[sd["service"] == service.value, "class"].notna().any())


#: The layers :func:`in_metres` reprojects, by name: the assessment's table (per service where it has one).
_METRIC_LAYERS = {"subdistricts": lambda a, service: a.subdistricts[a.subdistricts["service"] == service.value],
                  "zones": lambda a, service: a.zones_for(service),
                  "counties": lambda a, service: a.region.counties,
                  "pharmacies": lambda a, service: a.pharmacies}


def in_metres(assessment, layer: str, service: Service | None = None):
    """``layer`` of :data:`_METRIC_LAYERS` (``service``'s rows of the sub-districts or zones) in the
    network's metric CRS, reprojected once per assessment and kept in its memo (the maps draw each layer
    up to four times per service)."""
    return assessment.memo.get(("report_docx.in_metres", layer, service), lambda: _METRIC_LAYERS[layer](
        assessment, service).to_crs(assessment.network.crs))


def plot_classes(ax, assessment, service: Service) -> None:
    """Sub-districts filled by ``service``'s class in the app's palette (grey where unclassed), drawn in the
    network's metric CRS."""
    from planning.maps import CLASS_COLOURS

    sd = in_metres(assessment, "subdistricts", service)
    colours = sd["class"].map(lambda c: CLASS_COLOURS.get(c, "#f0f0f0") if isinstance(c, str) else "#f0f0f0")
    sd.plot(ax=ax, color=colours, edgecolor="#666666", linewidth=0.4)


def plot_zones(ax, assessment, service: Service) -> None:
    """``service``'s blocked / priority / review zones (network CRS), filled with :data:`ZONE_ALPHAS`."""
    from planning.maps import ZONE_COLOURS

    zones = in_metres(assessment, "zones", service)
    for zone, alpha in ZONE_ALPHAS.items():
        part = zones[zones["zone"] == zone]
        if len(part) and not part.geometry.is_empty.all():
            part.plot(ax=ax, color=ZONE_COLOURS[zone], alpha=alpha, linewidth=0)


def plot_context(ax, assessment, service: Service) -> None:
    """County boundaries and the pharmacies holding ``service`` (network CRS); axes off, equal aspect.

    The axes' x and y axis objects are hidden as well as switched off: matplotlib otherwise lays out
    their (never drawn) tick labels to place each title (0.2 s of the report's four maps)."""
    from planning.maps import SERVICE_COLOURS

    in_metres(assessment, "counties").boundary.plot(ax=ax, color="#222222", linewidth=1.2)
    pharmacies = in_metres(assessment, "pharmacies")
    holders = pharmacies[pharmacies[service.value].astype(bool)]
    if len(holders):
        ax.scatter(holders.geometry.x, holders.geometry.y, s=5, color=SERVICE_COLOURS[service],
                   edgecolors="#222222", linewidths=0.2, zorder=5)
    ax.set_axis_off()
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)
    ax.set_aspect("equal")


def context_handles(service: Service, lang: str) -> list:
    """Legend entries of :func:`plot_context`: counties and the service's pharmacies."""
    from matplotlib.lines import Line2D

    from planning.maps import SERVICE_COLOURS

    label, pharmacies = service.label(lang), t("pharmacies", lang)
    pharmacy_handle = Line2D([], [], marker="o", linestyle="", markersize=4, color=SERVICE_COLOURS[service],
                             markeredgecolor="#222222",
                             label=Text(f"{pharmacies}（{label}）", f"{pharmacies} ({label})").get(lang))
    county_handle = Line2D([], [], color="#222222", linewidth=1.2, label=t("counties", lang))
    return [county_handle, pharmacy_handle]


def class_handles(lang: str) -> list:
    """Legend entries of :func:`plot_classes`."""
    from matplotlib.patches import Patch

    from planning.maps import CLASS_COLOURS

    return [Patch(color=CLASS_COLOURS[c], label=CLASS_LABELS[c].get(lang)) for c in CLASS_COLOURS]


def zone_handles(lang: str) -> list:
    """Legend entries of :func:`plot_zones`."""
    from matplotlib.patches import Patch

    from planning.maps import ZONE_COLOURS

    return [Patch(color=ZONE_COLOURS[z], alpha=a, label=t(f"zone_{z}", lang)) for z, a in ZONE_ALPHAS.items()]


def map_figure(figsize: tuple[float, float], dpi: int):
    """A figure of two side-by-side panels (``figsize`` in inches) and its two axes, made outside pyplot.

    geopandas asks the figure's canvas to redraw after every layer it plots; on a pyplot (Agg) canvas each
    ask renders the whole figure, ticks included (3 of the Word report's 4.7 s on the demo). A figure
    made here has matplotlib's base canvas, for which that ask does nothing: the figure is rendered once,
    by :func:`png_bytes`. Nothing is registered with pyplot, so nothing needs closing."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=dpi)
    return figure, figure.subplots(1, 2)


def png_bytes(figure, dpi: int, *, rect: tuple[float, float, float, float] | None = None) -> bytes:
    """``figure`` (from :func:`map_figure`) laid out tightly (within ``rect``, figure fractions, when
    given) as PNG bytes."""
    figure.tight_layout(rect=rect)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def service_map_png(assessment, service: Service | str, lang: str = "zh", *, dpi: int = 150) -> bytes:
    """Two panels for one service, in the network's metric CRS: sub-districts by class (left) and the
    blocked / priority / review zones (right), with county boundaries, the service's pharmacies, a
    legend and a scale bar. PNG bytes, drawn once per assessment, language and ``dpi`` (dots per inch)
    and kept in the assessment's memo (a second report of the same assessment reuses them)."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # geopandas imports pyplot: never a GUI backend here

    service = Service(service)
    return assessment.memo.get(("report_docx.service_map_png", service, lang, dpi),
                               lambda: _service_map_png(assessment, service, lang, dpi))


def _service_map_png(assessment, service: Service, lang: str, dpi: int) -> bytes:
    import matplotlib

    sd = in_metres(assessment, "subdistricts", service)
    with matplotlib.rc_context(map_rc()):
        figure, (left, right) = map_figure((11, 5.6), dpi)
        classed = has_classes(assessment, service)
        plot_classes(left, assessment, service)
        sd.plot(ax=right, color="#f7f7f7", edgecolor="#999999", linewidth=0.3)
        plot_zones(right, assessment, service)
        for ax in (left, right):
            plot_context(ax, assessment, service)
        label = service.label(lang)
        left_title = (Text(f"{label}：饱和度分类", f"{label}: saturation classes") if classed else
                      Text(f"{label}：按区县规划（R2），无分类", f"{label}: planned per county (R2), no classes"))
        left.set_title(left_title.get(lang), fontsize=11)
        right.set_title(Text(f"{label}：禁止 / 优先 / 审核区", f"{label}: blocked / priority / review zones").get(lang),
                        fontsize=11)
        context = context_handles(service, lang)
        left.legend(handles=(class_handles(lang) if classed else []) + context, loc="lower left", fontsize=7,
                    frameon=True, framealpha=0.9)
        right.legend(handles=zone_handles(lang) + context, loc="lower left", fontsize=7, frameon=True, framealpha=0.9)
        for ax in (left, right):
            scale_bar(ax, lang)
        return png_bytes(figure, dpi)


def scale_bar(ax, lang: str) -> None:
    """A scale bar of a round length (about a fifth of the map's width, metres) in the lower right."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    target = (x1 - x0) / 5
    exponent = 10 ** math.floor(math.log10(target))
    length = max(m * exponent for m in (1, 2, 5) if m * exponent <= target)
    x_end, y = x1 - (x1 - x0) * 0.04, y0 + (y1 - y0) * 0.05
    ax.plot([x_end - length, x_end], [y, y], color="black", linewidth=3, solid_capstyle="butt", zorder=6)
    for x in (x_end - length, x_end):
        ax.plot([x, x], [y - (y1 - y0) * 0.008, y + (y1 - y0) * 0.008], color="black", linewidth=1, zorder=6)
    text = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(x_end - length / 2, y + (y1 - y0) * 0.015, text, ha="center", va="bottom", fontsize=8, zorder=6)
    ax.text(x1 - (x1 - x0) * 0.04, y1 - (y1 - y0) * 0.04, Text("北 ↑", "N ↑").get(lang), ha="right",
            va="top", fontsize=9)


# ----------------------------------------------------------------------------- the document
def cell_text(value) -> str:
    """How a table value is written in the report: blanks empty, whole numbers with thousands separators,
    other numbers as rounded by :func:`for_people`, text as is."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):,.10g}"
    return str(value)


class ReportDocument:
    """A Word document in the report's house style (A4, 宋体/黑体 and Times New Roman, page numbers in the
    footer) and its building blocks, in one language; the assessment and what-if reports build on it."""

    def __init__(self, lang: str):
        from docx import Document
        from docx.shared import Cm

        self.lang = check_lang(lang)
        document = Document()
        section = document.sections[0]
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
        section.left_margin = section.right_margin = Cm(2.5)
        section.top_margin, section.bottom_margin = Cm(2.5), Cm(2.2)
        self.doc = document
        self._styles()
        self._footer_page_numbers()

    def w(self, zh: str, en: str) -> str:
        """``Text(zh, en)`` in the report's language."""
        return Text(zh, en).get(self.lang)

    def to_bytes(self) -> bytes:
        """The document as .docx bytes."""
        buffer = io.BytesIO()
        self.doc.save(buffer)
        return buffer.getvalue()

    # -- styles
    def _styles(self) -> None:
        from docx.oxml.ns import qn
        from docx.shared import Pt, RGBColor

        for name, size, east_asia, bold in (("Normal", 10.5, DOCX_FONTS["body_east_asia"], False),
                                             ("Title", 20, DOCX_FONTS["heading_east_asia"], True),
                                             ("Heading 1", 15, DOCX_FONTS["heading_east_asia"], True),
                                             ("Heading 2", 13, DOCX_FONTS["heading_east_asia"], True),
                                             ("Caption", 9, DOCX_FONTS["body_east_asia"], False)):
            style = self.doc.styles[name]
            style.font.name = DOCX_FONTS["latin"]
            style.font.size = Pt(size)
            style.font.bold = bold
            if name != "Normal":
                style.font.color.rgb = RGBColor(0, 0, 0)
            fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
            fonts.set(qn("w:eastAsia"), east_asia)
            fonts.set(qn("w:ascii"), DOCX_FONTS["latin"])
            fonts.set(qn("w:hAnsi"), DOCX_FONTS["latin"])

    def _footer_page_numbers(self) -> None:
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.oxml import OxmlElement
        from docx.oxml.ns import qn

        paragraph = self.doc.sections[0].footer.paragraphs[0]
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        run = paragraph.add_run("— ")
        field = OxmlElement("w:fldSimple")
        field.set(qn("w:instr"), "PAGE")
        inner = OxmlElement("w:r")
        text = OxmlElement("w:t")
        text.text = "1"
        inner.append(text)
        field.append(inner)
        run._r.addnext(field)
        paragraph.add_run(" —")

    # -- blocks
    def title(self, text: str) -> None:
        """The centred title paragraph."""
        from docx.enum.text import WD_ALIGN_PARAGRAPH

        title = self.doc.add_paragraph(style="Title")
        title.alignment = WD_ALIGN_PARAGRAPH.CENTER
        title.add_run(text)

    def fields(self, lines: list[tuple[str, str]]) -> None:
        """``label: value`` lines with the label in bold (the title block)."""
        for label, value in lines:
            paragraph = self.doc.add_paragraph()
            paragraph.paragraph_format.space_after = 0
            paragraph.add_run(self.w(f"{label}：", f"{label}: ")).bold = True
            paragraph.add_run(value)

    def caption(self, text: str) -> None:
        self.doc.add_paragraph(text, style="Caption")

    def picture(self, png: bytes) -> None:
        """A map, :data:`MAP_WIDTH_CM` wide."""
        from docx.shared import Cm

        self.doc.add_picture(io.BytesIO(png), width=Cm(MAP_WIDTH_CM))

    # -- tables (the methods below are shared by both reports)
    def frame_table(self, table: pd.DataFrame, columns: list[str]) -> None:
        """The ``columns`` of ``table`` that hold any value, as :func:`for_people` shows them."""
        columns = [c for c in columns if c in table.columns and table[c].notna().any()]
        shown = for_people(table[columns], self.lang)
        self.table([column_label(c, self.lang) for c in columns],
                   [[cell_text(v) for v in row] for row in shown.itertuples(index=False, name=None)], font_pt=8)

    def table(self, headers: list[str], rows: list[list[str]], *, widths_cm: list[float] | None = None,
              font_pt: float = 9) -> None:
        """A grid table with a shaded header row that repeats on every page; ``widths_cm`` fixes the
        column widths (centimetres), otherwise Word's default equal columns are kept.

        The rows are written as WordprocessingML (:func:`table_rows_xml`) and parsed once per table:
        python-docx rebuilds the table's cell grid on every ``row.cells``, which took 0.45 s of the
        demo report's tables."""
        from docx.oxml import parse_xml
        from docx.shared import Cm

        table = self.doc.add_table(rows=0, cols=len(headers))
        table.style = "Table Grid"
        if widths_cm:
            table.autofit = False
            for column, width in zip(table.columns, widths_cm):
                column.width = Cm(width)
        widths_twips = [column.w.twips for column in table._tbl.tblGrid.gridCol_lst]
        fragment = parse_xml(table_rows_xml(headers, rows, widths_twips, int(font_pt * 2)))
        table._tbl.extend(list(fragment))


def _run_xml(text: str, properties: str) -> str:
    """One ``w:r`` holding ``text`` as python-docx writes it: tabs as ``w:tab``, line breaks as ``w:br``,
    ``xml:space="preserve"`` on a piece with leading or trailing spaces."""
    from xml.sax.saxutils import escape

    parts = []
    for piece in re.split(r"(\t|\r|\n)", text):
        if piece == "\t":
            parts.append("<w:tab/>")
        elif piece in ("\r", "\n"):
            parts.append("<w:br/>")
        elif piece:
            space = ' xml:space="preserve"' if len(piece.strip()) < len(piece) else ""
            parts.append(f"<w:t{space}>{escape(piece)}</w:t>")
    return f"<w:r><w:rPr>{properties}</w:rPr>{''.join(parts)}</w:r>"


def table_rows_xml(headers: list[str], rows: list[list[str]], widths_twips: list[int], half_points: int) -> str:
    """The rows of a report table as one ``w:tbl`` fragment (to parse and move into the document's table):
    the header row bold on a shaded fill, marked to repeat on every page, then one row per ``rows`` entry;
    cells ``widths_twips`` wide (twips: twentieths of a point), text ``half_points`` high (half points)."""
    from docx.oxml.ns import nsdecls

    size = f'<w:sz w:val="{half_points}"/>'

    def row(values, *, header: bool) -> str:
        cells = []
        shading = '<w:shd w:val="clear" w:fill="DDE4EE"/>' if header else ""
        for column, width in enumerate(widths_twips):  # a short row leaves its last cells empty
            run = _run_xml(str(values[column]), ("<w:b/>" if header else "") + size) if column < len(values) else ""
            cells.append(f'<w:tc><w:tcPr><w:tcW w:type="dxa" w:w="{width}"/>{shading}</w:tcPr><w:p>{run}</w:p></w:tc>')
        repeat = '<w:trPr><w:tblHeader w:val="true"/></w:trPr>' if header else ""
        return f"<w:tr>{repeat}{''.join(cells)}</w:tr>"

    body = row(headers, header=True) + "".join(row(values, header=False) for values in rows)
    return f"<w:tbl {nsdecls('w')}>{body}</w:tbl>"


class _Report(ReportDocument):
    def __init__(self, assessment, lang: str, date: dt.date):
        super().__init__(lang)
        self.a, self.date = assessment, date

    def build(self):
        self._title_block()
        self._summary()
        for number, service in enumerate(Service, start=1):
            self._service_section(number, service)
        self._model_and_data()
        self._not_judged()
        self._settlement()
        return self.doc

    def _title_block(self) -> None:
        a, policy = self.a, self.a.policy
        self.title(self.w(f"{a.region.name}医保定点零售药店布局评估报告",
                          f"{a.region.name}: designated retail pharmacy planning assessment"))
        documents = cited_documents(sorted(policy.rules))
        lines = [
            (self.w("报告日期", "Date"), self.date.isoformat()),
            (self.w("评估区域", "Region"), a.region.name + (self.w("（虚构示例，数据仅供演示）", " (fictional demo data)")
                                                         if a.region.fictional else "")),
            (self.w("政策预设", "Policy preset"), f"{policy.policy_id} — " + self.w(policy.title_zh, policy.title_en)),
            (self.w("适用规则", "Rules applied"), ", ".join(r for r in RULES if policy.applies(r))),
            (self.w("依据文件", "Documents cited"), self.w("；".join(f"{d}：{DOCUMENTS[d][0]}" for d in documents),
                                                        "; ".join(f"{d}: {DOCUMENTS[d][1]}" for d in documents))),
            (self.w("步行模型", "Walking model"), self.w(
                f"步行 {policy.walk_minutes:g} 分钟，{policy.speed_m_per_min:g} 米/分钟（{policy.budget_m:,.0f} 米），沿实际步行路网计算",
                f"{policy.walk_minutes:g}-minute walk at {policy.speed_m_per_min:g} m/min ({policy.budget_m:,.0f} m) "
                "along the real walking network")),
        ]
        self.fields(lines)
        for note in a.notes:
            self.doc.add_paragraph(note)

    def _summary(self) -> None:
        from docx.shared import Pt

        self.doc.add_heading(self.w("一、评估结论摘要", "1. Summary of findings"), level=1)
        findings = rule_findings(self.a, self.lang)
        headers = [self.w("规则", "Rule"), self.w("依据", "Citation"), self.w("要求", "Requirement"),
                   self.w("评估结果", "Finding")]
        rows = [[r.rule_id, r.citation, r.text, r.finding] for r in findings.itertuples()]
        self.table(headers, rows, widths_cm=[1.2, 3.0, 5.5, 6.3], font_pt=8.5)
        paragraph = self.doc.add_paragraph(self.w(
            "说明：“未判定”表示数据或规则范围不能作出判断，不等于“不满足”；各项依据原文见所引文件。",
            "Note: \"not judged\" means the data or the rule's scope cannot decide; it never means \"fails\". "
            "The cited documents hold the full texts."), style="Caption")
        paragraph.runs[0].font.size = Pt(8.5)
        self.doc.add_page_break()

    def _settlement(self) -> None:
        """Who settles (planning.settlement): the counts, what suspended pharmacies change for R1/R2, and
        every pharmacy suspended or terminated with its rules."""
        a = self.a
        self.doc.add_heading(self.w("五、药店结算状态", "5. Settlement status of the pharmacies"), level=1)
        self.doc.add_paragraph(status_summary(a.pharmacies, a.policy).get(self.lang))
        for service in Service:
            for rule, areas in (("R1", a.subdistricts), ("R2", a.counties)):
                for note in suspension_notes(areas, a.pharmacies, service.value, rule, a.policy):
                    self.doc.add_paragraph(self.w(f"{service.label('zh')}：{note.zh}", f"{service.label('en')}: {note.en}"),
                                           style="List Bullet")
        stopped = a.pharmacies[a.pharmacies["settlement"].isin([SUSPENDED, TERMINATED])]
        if len(stopped):
            names = a.region.subdistricts.set_index("code")["name"]
            rows = [[p.pharmacy_id, p.name, str(names.get(p.subdistrict_code, "")),
                     status_text(p.settlement, p.settlement_rules, p.settlement_until).get(self.lang),
                     self.w("是", "yes") if p.serves else self.w("否", "no")] for p in stopped.itertuples()]
            self.table([self.w("编码", "id"), self.w("名称", "name"), self.w("街道/乡镇", "sub-district"),
                        self.w("状态及依据", "status and rules"), self.w("计入服务", "counts")], rows,
                       widths_cm=[3.0, 4.2, 2.6, 4.8, 1.4], font_pt=8.5)

    def _service_section(self, number: int, service: Service) -> None:
        ordinal = "一二三四五六七八九十"[number - 1]
        if number == 1:
            self.doc.add_heading(self.w("二、分业务评估", "2. Assessment by service"), level=1)
        self.doc.add_heading(self.w(f"（{ordinal}）{service.label('zh')}", f"2.{number} {service.label('en')}"), level=2)
        self.picture(service_map_png(self.a, service, self.lang))
        persons = self.a.persons_beyond(service)
        self.doc.add_paragraph(self.w(
            f"图 {number}　{service.label('zh')}：左为街道/乡镇饱和度分类，右为禁止新增、优先配置和需审核区；"
            f"步行 {self.a.policy.walk_minutes:g} 分钟以外居住人口 {persons:,.0f} 人。",
            f"Figure {number}. {service.label('en')}: sub-district classes (left); blocked, priority and review zones "
            f"(right); {persons:,.0f} residents live beyond the {self.a.policy.walk_minutes:g}-minute walk."),
            style="Caption")
        counties = self.a.counties[self.a.counties["service"] == service.value]
        self.doc.add_paragraph(self.w(f"表 {number}-1　区县（{service.label('zh')}）",
                                      f"Table {number}-1. Counties ({service.label('en')})"), style="Caption")
        self.frame_table(counties, COUNTY_COLUMNS)
        sd = self.a.subdistricts[self.a.subdistricts["service"] == service.value]
        self.doc.add_paragraph(self.w(f"表 {number}-2　街道/乡镇（{service.label('zh')}）",
                                      f"Table {number}-2. Sub-districts ({service.label('en')})"), style="Caption")
        self.frame_table(sd, SUBDISTRICT_COLUMNS)
        self.doc.add_page_break()

    def _model_and_data(self) -> None:
        a, policy = self.a, self.a.policy
        network = a.network
        self.doc.add_heading(self.w("三、步行模型与数据", "3. Walking model and data"), level=1)
        residents = a.coverage[a.coverage["service"] == Service.PERSONAL_ACCOUNT.value]
        rows = [
            (self.w("步行时间", "walk time"), f"{policy.walk_minutes:g} " + self.w("分钟", "min")),
            (self.w("步行速度", "walking speed"), f"{policy.speed_m_per_min:g} " + self.w("米/分钟", "m/min")),
            (self.w("步行距离（时间×速度）", "walk distance (time × speed)"), f"{policy.budget_m:,.0f} m"),
            (self.w("未覆盖居住区宽度", "uncovered residential area width"), f"{policy.access_width_m:g} m"),
            (self.w("药店接入路网的最大距离", "largest pharmacy-to-street distance"), f"{policy.max_snap_m:g} m"),
            (self.w("栅格单元", "raster cell"), f"{policy.cell_m:g} m"),
            (self.w("路网", "walking network"), self.w(
                f"{network.n_nodes:,} 个节点，{network.n_edges:,} 条边，{network.edge_length.sum() / 1000:,.0f} 公里",
                f"{network.n_nodes:,} nodes, {network.n_edges:,} edges, {network.edge_length.sum() / 1000:,.0f} km")),
            (self.w("坐标系", "coordinate systems"), self.w(
                f"输出 WGS84（EPSG:4326）；距离与面积在 {network.crs} 中计算；GCJ-02/BD-09 输入在读取时转换",
                f"outputs WGS84 (EPSG:4326); distances and areas computed in {network.crs}; GCJ-02/BD-09 inputs "
                "converted when read")),
            (self.w("居民分布", "residents"), self.w(
                f"{len(a.residents):,} 个居民点，合计 {residents['population'].sum():,.0f} 人，落到路网 {residents['placed'].sum():,.0f} 人",
                f"{len(a.residents):,} resident points for {residents['population'].sum():,.0f} persons, "
                f"{residents['placed'].sum():,.0f} placed on streets")),
            (self.w("就业人员（工作区域）", "workers (work areas)"), worker_summary(a.region, policy).get(self.lang)),
        ]
        self.doc.add_paragraph(self.w("表 5　步行模型参数", "Table 5. Walking model"), style="Caption")
        self.table([self.w("参数", "parameter"), self.w("取值", "value")], [list(r) for r in rows], widths_cm=[6, 10])
        self.doc.add_paragraph(self.w("表 6　数据完整性", "Table 6. Data completeness"), style="Caption")
        if a.region.completeness is not None:  # a region from files: the ingest's own table (one truth)
            table = a.region.completeness.table(self.lang).drop(columns=[self.w("来源", "source")])
            self.table(list(table.columns[:-1]), [[cell_text(v) for v in row[:-1]] for row in table.itertuples(index=False)],
                       widths_cm=[2.4, 1.6, 1.4, 1.4, 4.6, 4.6], font_pt=8)
            return
        completeness = data_completeness(a, self.lang)
        self.table([self.w("数据", "layer"), self.w("使用行数", "rows used"), self.w("拒绝行数", "rows rejected"),
                     self.w("字段", "columns")],
                    [[r.layer, cell_text(r.used), cell_text(r.rejected), r.columns] for r in completeness.itertuples()],
                    widths_cm=[2.5, 2.2, 2.2, 9.1], font_pt=9)

    def _not_judged(self) -> None:
        self.doc.add_heading(self.w("四、未判定事项及原因", "4. Not judged, and why"), level=1)
        table = not_judged(self.a, self.lang)
        if not len(table):
            self.doc.add_paragraph(self.w("无。", "Nothing."))
            return
        self.table([self.w("事项", "item"), self.w("数量", "count"), self.w("原因", "reason")],
                    [[r.item, cell_text(r.count), r.reason] for r in table.itertuples()], widths_cm=[5, 2, 9])
