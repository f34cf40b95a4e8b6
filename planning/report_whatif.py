"""The what-if report (情景模拟报告): a short Word document of one :class:`~planning.scenario.ScenarioDiff`.

:func:`write_scenario_docx` lays out, in Chinese or English, in the house style of the assessment report
(:class:`planning.report_docx.ReportDocument`):

1. title, date, region, policy preset and the documents its rules cite;
2. the edits, read from the two assessments themselves: pharmacies added, withdrawn or with changed
   services (id, name, services, WGS84 position), sub-districts whose population changed, policy
   parameters changed;
3. the change summary per service (pharmacies, residents within the walk time, R1/R2 failures,
   blocked area added and lifted), and which services changed at all;
4. per changed service (:func:`changed_services`): a before/after map (classes, zones, pharmacies; added
   and withdrawn sites marked, sub-districts whose class changed outlined; matplotlib, offline, the app's
   palette, a scale bar), then its class changes, requirement changes (R1-R3, with each rule's citation)
   and zone changes (km², with the citations of the zone's rules).

Every table is the diff's own table (:func:`planning.present.for_people` for the words); nothing is
recomputed here except the figures the maps draw from the two assessments.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import fields
from pathlib import Path

import pandas as pd

from planning.model import Service
from planning.present import column_label, for_people
from planning.policy import DOCUMENTS, RULES, Policy, cited_documents
from planning.report_docx import (ReportDocument, cell_text, class_handles, context_handles, has_classes, map_rc,
                                  map_figure, plot_classes, plot_context, plot_zones, png_bytes, save_document,
                                  scale_bar, zone_handles)
from planning.text import Text

#: Columns of the report's tables (machine names; headers come from planning.present).
SITE_COLUMNS = ["change", "pharmacy_id", "name", "services_before", "services_after", "lon", "lat"]
SUMMARY_COLUMNS = ["service", "pharmacies_before", "pharmacies_after", "covered_before", "covered_after",
                   "covered_delta", "covered_share_before", "covered_share_after", "r1_failing_before",
                   "r1_failing_after", "r2_failing_before", "r2_failing_after", "blocked_added_km2",
                   "blocked_lifted_km2"]
CLASS_COLUMNS = ["name", "kind", "class_before", "class_after", "covered_share_before", "covered_share_after",
                 "covered_delta"]
REQUIREMENT_COLUMNS = ["rule", "citation", "level", "name", "ok_before", "ok_after", "change"]
ZONE_COLUMNS = ["zone", "rule_ids", "citation", "area_before_km2", "area_after_km2", "added_km2", "lifted_km2"]
#: Marker colours of the what-if map: sites added, sites withdrawn, outline of a changed class.
ADDED_COLOUR, WITHDRAWN_COLOUR, CHANGED_OUTLINE = "#00a651", "#000000", "#000000"


def write_scenario_docx(diff, path: str | Path, *, lang: str = "zh", date: dt.date | None = None) -> Path:
    """Write the what-if report of ``diff`` (see the module docstring) to ``path`` (.docx); ``date``
    defaults to today."""
    return save_document(scenario_docx_bytes(diff, lang=lang, date=date), path)


def scenario_docx_bytes(diff, *, lang: str = "zh", date: dt.date | None = None) -> bytes:
    """The what-if report as .docx bytes (for a download button)."""
    report = _WhatIfReport(diff, lang, date or dt.date.today())
    report.build()
    return report.to_bytes()


# ----------------------------------------------------------------------------- what changed (no layout)
def site_services(services: str) -> set[str]:
    """The service values of a ``services_before``/``services_after`` cell (comma-separated)."""
    return {s for s in str(services or "").split(",") if s}


def changed_services(diff) -> list[Service]:
    """The services the scenario changed, in :class:`Service` order: a site gained or lost the service, or
    residents within the walk time, a class, a requirement verdict or a compared zone's area changed."""
    changed = []
    for service in Service:
        value = service.value
        sites = any(value in site_services(r.services_before) ^ site_services(r.services_after)
                    for r in diff.sites.itertuples())
        summary = diff.summary[diff.summary["service"] == value]
        covered = bool((summary["covered_delta"].abs() > 1e-9).any())
        classes = bool((diff.class_changes["service"] == value).any())
        requirements = bool((diff.requirements["service"] == value).any())
        zones = diff.zones[diff.zones["service"] == value]
        zone_change = bool(((zones["added_km2"] > 0) | (zones["lifted_km2"] > 0)).any())
        if sites or covered or classes or requirements or zone_change:
            changed.append(service)
    return changed


def population_changes(diff) -> pd.DataFrame:
    """Sub-districts whose population differs: ``code``, ``name``, ``population_before``, ``population_after``."""
    table = diff.coverage.drop_duplicates("code")
    table = table[table["population_before"] != table["population_after"]]
    return table[["code", "name", "population_before", "population_after"]].reset_index(drop=True)


def policy_changes(diff) -> pd.DataFrame:
    """Policy parameters that differ between the two assessments: ``parameter``, ``before``, ``after``."""
    def shown(value) -> str:
        return ", ".join(sorted(value)) if isinstance(value, frozenset) else str(value)

    rows = []
    for field in fields(Policy):
        before, after = getattr(diff.before.policy, field.name), getattr(diff.after.policy, field.name)
        if before != after:
            rows.append({"parameter": field.name, "before": shown(before), "after": shown(after)})
    return pd.DataFrame(rows, columns=["parameter", "before", "after"])


def citations(rule_ids: str, lang: str = "zh") -> str:
    """The citations of comma-separated ``rule_ids`` (from :data:`RULES`), joined."""
    cited = [RULES[r].citation for r in str(rule_ids).split(",") if r in RULES]
    return Text("；", "; ").get(lang).join(dict.fromkeys(cited))


# ----------------------------------------------------------------------------- the map
def scenario_map_png(diff, service: Service | str, lang: str = "zh", *, dpi: int = 150) -> bytes:
    """Before (left) and after (right) for one service, in the network's metric CRS: sub-districts by class,
    the blocked / priority / review zones, county boundaries and the service's pharmacies; sites withdrawn
    (×, on both panels) and added (★, after) for this service, sub-districts whose class changed outlined
    (after). A scale bar on each panel, one legend under both. PNG bytes."""
    import geopandas as gpd
    import matplotlib
    from matplotlib.lines import Line2D

    matplotlib.use("Agg", force=False)  # geopandas imports pyplot: never a GUI backend here

    service = Service(service)
    crs = diff.before.network.crs
    sites = diff.sites
    gained = sites[[service.value in site_services(r.services_after) - site_services(r.services_before)
                    for r in sites.itertuples()]]
    lost = sites[[service.value in site_services(r.services_before) - site_services(r.services_after)
                  for r in sites.itertuples()]]

    def points(table: pd.DataFrame):
        return gpd.GeoSeries(gpd.points_from_xy(table["lon"], table["lat"]), crs="EPSG:4326").to_crs(crs)

    changed_codes = set(diff.class_changes.loc[diff.class_changes["service"] == service.value, "code"])
    sd_after = diff.after.subdistricts
    outlined = sd_after[(sd_after["service"] == service.value) & sd_after["code"].isin(changed_codes)].to_crs(crs)
    label = service.label(lang)
    with matplotlib.rc_context(map_rc()):
        figure, panels = map_figure((11, 4.3), dpi)
        for ax, assessment, title in ((panels[0], diff.before, Text(f"{label}：情景前", f"{label}: before")),
                                      (panels[1], diff.after, Text(f"{label}：情景后", f"{label}: after"))):
            plot_classes(ax, assessment, service)
            plot_zones(ax, assessment, service)
            plot_context(ax, assessment, service)
            ax.set_title(title.get(lang), fontsize=11)
        after = panels[1]
        if len(outlined):
            outlined.boundary.plot(ax=after, color=CHANGED_OUTLINE, linewidth=2.0, zorder=4)
        for ax in panels:
            if len(lost):
                xy = points(lost)
                ax.scatter(xy.x, xy.y, marker="x", s=60, color=WITHDRAWN_COLOUR, linewidths=2, zorder=7)
        if len(gained):
            xy = points(gained)
            after.scatter(xy.x, xy.y, marker="*", s=160, color=ADDED_COLOUR, edgecolors="#222222", linewidths=0.6,
                          zorder=7)
        marks = [Line2D([], [], marker="*", linestyle="", markersize=10, color=ADDED_COLOUR, markeredgecolor="#222222",
                        label=Text("新增药店", "pharmacy added").get(lang)),
                 Line2D([], [], marker="x", linestyle="", markersize=7, color=WITHDRAWN_COLOUR, markeredgewidth=2,
                        label=Text("撤销药店", "pharmacy withdrawn").get(lang)),
                 Line2D([], [], color=CHANGED_OUTLINE, linewidth=2.0, label=Text("分类变化", "class changed").get(lang))]
        classes = class_handles(lang) if has_classes(diff.after, service) else []
        # One legend under both panels: neither map has a corner hidden that the other shows.
        figure.legend(handles=classes + zone_handles(lang) + context_handles(service, lang) + marks,
                      loc="lower center", ncol=6, fontsize=7, frameon=False)
        for ax in panels:
            scale_bar(ax, lang)
        return png_bytes(figure, dpi, rect=(0, 0.08, 1, 1))


# ----------------------------------------------------------------------------- the document
class _WhatIfReport(ReportDocument):
    def __init__(self, diff, lang: str, date: dt.date):
        super().__init__(lang)
        self.diff, self.date = diff, date

    def build(self) -> None:
        diff = self.diff
        self._title_block()
        self.doc.add_heading(self.w("一、情景修改", "1. The edits"), level=1)
        self._edits()
        self.doc.add_heading(self.w("二、变化摘要", "2. Summary of changes"), level=1)
        changed = changed_services(diff)
        self.caption(self.w("表 1　各业务变化（前：基线评估；后：情景评估）",
                            "Table 1. Changes per service (before: the baseline; after: the what-if)"))
        self._summary_table()
        unchanged = [s for s in Service if s not in changed]
        self.doc.add_paragraph(
            self.w("有变化的业务：", "Services changed: ") + (self._services(changed) or self.w("无", "none"))
            + self.w("；无变化：", "; unchanged: ") + (self._services(unchanged) or self.w("无", "none"))
            + self.w("。", "."))
        not_compared = [s for s in Service if s not in diff.services]
        if not_compared:
            self.doc.add_paragraph(self.w(
                f"本次未比较以下业务的禁止/优先/审核区：{self._services(not_compared)}。",
                f"Blocked / priority / review zones were not compared for: {self._services(not_compared)}."))
        if changed:
            self.doc.add_heading(self.w("三、分业务变化", "3. Changes by service"), level=1)
        for number, service in enumerate(changed, start=1):
            self._service_section(number, service)
        self.doc.add_paragraph(self.w(
            "说明：情景模拟不改变基线数据。“不再适用”表示该要求在情景后不适用或无法判定，不等于“不满足”；"
            "面积小于一个栅格单元的分区变化视为边缘误差，不计入。",
            "Note: a what-if never changes the baseline data. \"No longer applies\" means the requirement does not "
            "apply or cannot be judged after the edits; it never means \"fails\". Zone changes smaller than one "
            "raster cell are edge noise and left out."), style="Caption")

    def _summary_table(self) -> None:
        """The diff's summary turned on its side: one row per measure, one column per service."""
        summary = self.diff.summary
        columns = [c for c in SUMMARY_COLUMNS if c in summary.columns and summary[c].notna().any()]
        shown = for_people(summary[columns], self.lang)
        services = list(shown.pop(column_label("service", self.lang)))
        self.table([self.w("指标", "measure")] + services,
                   [[header] + [cell_text(v) for v in shown[header]] for header in shown.columns],
                   widths_cm=[5.2] + [10.8 / len(services)] * len(services), font_pt=8.5)

    def _services(self, services) -> str:
        return self.w("、", ", ").join(s.label(self.lang) for s in services)

    def _title_block(self) -> None:
        before, after = self.diff.before, self.diff.after
        policy = after.policy
        self.title(self.w(f"{before.region.name}定点零售药店情景模拟报告",
                          f"{before.region.name}: what-if report on designated retail pharmacies"))
        documents = cited_documents(sorted(policy.rules))
        self.fields([
            (self.w("报告日期", "Date"), self.date.isoformat()),
            (self.w("评估区域", "Region"), before.region.name + (
                self.w("（虚构示例，数据仅供演示）", " (fictional demo data)") if before.region.fictional else "")),
            (self.w("政策预设", "Policy preset"), f"{policy.policy_id} — " + self.w(policy.title_zh, policy.title_en)),
            (self.w("适用规则", "Rules applied"), ", ".join(r for r in RULES if policy.applies(r))),
            (self.w("依据文件", "Documents cited"), self.w("；".join(f"{d}：{DOCUMENTS[d][0]}" for d in documents),
                                                        "; ".join(f"{d}: {DOCUMENTS[d][1]}" for d in documents))),
            (self.w("比较", "Compared"), self.w(
                f"基线评估（前）与情景评估（后），步行 {policy.walk_minutes:g} 分钟",
                f"the baseline (before) and the what-if (after), {policy.walk_minutes:g}-minute walk")),
        ])

    def _edits(self) -> None:
        diff = self.diff
        population, policy = population_changes(diff), policy_changes(diff)
        if not (len(diff.sites) or len(population) or len(policy)):
            self.doc.add_paragraph(self.w("无修改：情景与基线相同。", "No edit: the what-if equals the baseline."))
            return
        if len(diff.sites):
            self.caption(self.w("表 A　新增、撤销或变更业务的药店（坐标 WGS84）",
                                "Table A. Pharmacies added, withdrawn or with changed services (WGS84)"))
            self.frame_table(diff.sites, SITE_COLUMNS)
        if len(population):
            self.caption(self.w("表 B　常住参保人口变化", "Table B. Population changes"))
            self.frame_table(population, list(population.columns))
        if len(policy):
            self.caption(self.w("表 C　政策参数变化", "Table C. Policy parameter changes"))
            self.table([self.w("参数", "parameter"), self.w("前", "before"), self.w("后", "after")],
                       [list(r) for r in policy.itertuples(index=False, name=None)])

    def _service_section(self, number: int, service: Service) -> None:
        diff, value = self.diff, service.value
        ordinal = "一二三四五六七八九十"[number - 1]
        self.doc.add_heading(self.w(f"（{ordinal}）{service.label('zh')}", f"3.{number} {service.label('en')}"),
                             level=2)
        self.picture(scenario_map_png(diff, service, self.lang))
        row = diff.summary[diff.summary["service"] == value].iloc[0]
        self.caption(self.w(
            f"图 {number}　{service.label('zh')}：左为情景前，右为情景后（★ 新增，× 撤销，粗线为分类变化的街道/乡镇）；"
            f"步行 {diff.after.policy.walk_minutes:g} 分钟内人口变化 {row['covered_delta']:+,.0f} 人。",
            f"Figure {number}. {service.label('en')}: before (left), after (right; ★ added, × withdrawn, thick "
            f"outline: class changed); residents within the {diff.after.policy.walk_minutes:g}-minute walk "
            f"{row['covered_delta']:+,.0f}."))
        classes = diff.class_changes[diff.class_changes["service"] == value]
        self._part(f"{number}-1", Text("分类变化", "Class changes"), classes, CLASS_COLUMNS)
        requirements = diff.requirements[diff.requirements["service"] == value].copy()
        requirements.insert(1, "citation", requirements["rule"].map(lambda r: citations(r, self.lang)))
        self._part(f"{number}-2", Text("配置要求变化", "Requirement changes"), requirements, REQUIREMENT_COLUMNS)
        if service not in diff.services:
            self.doc.add_paragraph(self.w("本次未比较该业务的禁止/优先/审核区。",
                                          "Zones were not compared for this service."))
            return
        zones = diff.zones[(diff.zones["service"] == value)
                           & ((diff.zones["added_km2"] > 0) | (diff.zones["lifted_km2"] > 0))].copy()
        zones.insert(2, "citation", zones["rule_ids"].map(lambda r: citations(r, self.lang)))
        self._part(f"{number}-3", Text("禁止/优先/审核区面积变化（平方公里）", "Zone area changes (km²)"), zones,
                   ZONE_COLUMNS)

    def _part(self, number: str, title: Text, table: pd.DataFrame, columns: list[str]) -> None:
        self.caption(self.w(f"表 {number}　", f"Table {number}. ") + title.get(self.lang))
        if len(table):
            self.frame_table(table, columns)
        else:
            self.doc.add_paragraph(self.w("无变化。", "No change."))

