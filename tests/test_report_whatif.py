"""The what-if Word report, re-read with python-docx: headings, every edit and every change of the diff
present (requirements and zones with their rules' citations), one before/after map per changed service
(changed services worked out here from the diff's own tables), tables equal to the diff's; rendered to
PDF by LibreOffice and its first page to PNG (test-artifacts/) when those tools are installed."""

from __future__ import annotations

import datetime as dt

import docx
import pytest
from docx.table import Table
from docx.text.paragraph import Paragraph
from office import docx_to_pdf, first_page_png

from planning import report
from planning.model import Service
from planning.policy import RULES
from planning.scenario import Scenario

ORDINALS = "一二三四五六七八九十"


@pytest.fixture(scope="module")
def change(demo):
    region = demo.region
    withdrawn = region.pharmacies[region.pharmacies["personal_account"]].iloc[0]
    code = region.subdistricts["code"].iloc[0]
    rules = frozenset(demo.policy.rules - {"B4"})
    scenario = (Scenario(demo)
                .add_site("NEW-1", 111.59, 27.30, ["outpatient_pooling", "chronic_disease"], name="新开药房（试点）")
                .remove_site(withdrawn["pharmacy_id"])
                .set_population(code, int(region.subdistricts["population"].iloc[0]) + 5000)
                .change_policy(rules=rules))
    return scenario.diff()


@pytest.fixture(scope="module")
def report_zh(change, tmp_path_factory):
    return report.write_scenario_docx(change, tmp_path_factory.mktemp("whatif") / "what_if.docx",
                                      date=dt.date(2026, 3, 1))


def captioned_tables(document) -> dict[str, Table]:
    """Each table by the text of the caption paragraph just before it."""
    found, caption = {}, ""
    for block in document.element.body.iterchildren():
        if block.tag.endswith("}p"):
            caption = Paragraph(block, document).text or caption
        elif block.tag.endswith("}tbl"):
            found[caption] = Table(block, document)
    return found


def rows_of(table: Table) -> list[dict[str, str]]:
    header = [c.text for c in table.rows[0].cells]
    return [dict(zip(header, (c.text for c in row.cells))) for row in table.rows[1:]]


def number(text: str) -> float:
    return float(text.replace(",", ""))


def services_changed(diff) -> list[Service]:
    """The oracle: a service changed when a site gained or lost it, or a table of the diff has a row of it."""
    out = []
    for service in Service:
        v = service.value
        sites = any((v in str(r.services_before).split(",")) != (v in str(r.services_after).split(","))
                    for r in diff.sites.itertuples())
        zones = diff.zones[diff.zones["service"] == v]
        covered = diff.summary.set_index("service").loc[v, "covered_delta"]
        if (sites or covered != 0 or v in set(diff.class_changes["service"]) or v in set(diff.requirements["service"])
                or ((zones["added_km2"] > 0) | (zones["lifted_km2"] > 0)).any()):
            out.append(service)
    return out


def test_headings_edits_and_one_map_per_changed_service(change, report_zh):
    document = docx.Document(report_zh)
    title = document.paragraphs[0]
    assert title.style.name == "Title" and change.before.region.name in title.text and "情景模拟" in title.text
    body = "\n".join(p.text for p in document.paragraphs)
    assert "2026-03-01" in body and change.after.policy.policy_id in body and "HN-2025" in body
    changed = services_changed(change)
    assert changed, "the scenario should change something"
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert headings[:3] == ["一、情景修改", "二、变化摘要", "三、分业务变化"]
    assert headings[3:] == [f"（{ORDINALS[i]}）{s.label('zh')}" for i, s in enumerate(changed)]
    assert len(document.inline_shapes) == len(changed)  # one before/after map per changed service
    tables = captioned_tables(document)
    sites = rows_of(next(t for c, t in tables.items() if c.startswith("表 A")))
    assert [(r["药店编码"], r["名称"], r["变化"]) for r in sites] == [
        (r.pharmacy_id, r.name, {"site_added": "新增", "site_removed": "撤销"}[r.change]) for r in change.sites.itertuples()]
    assert "新开药房（试点）" in {r["名称"] for r in sites}
    for row, want in zip(sites, change.sites.itertuples()):
        assert abs(number(row["经度"]) - want.lon) < 1e-6 and abs(number(row["纬度"]) - want.lat) < 1e-6
    population = rows_of(next(t for c, t in tables.items() if c.startswith("表 B")))
    moved = change.coverage.drop_duplicates("code")
    moved = moved[moved["population_before"] != moved["population_after"]]
    assert [(r["代码"], number(r["常住参保人口（前）"]), number(r["常住参保人口（后）"])) for r in population] == [
        (r.code, r.population_before, r.population_after) for r in moved.itertuples()]
    policy = rows_of(next(t for c, t in tables.items() if c.startswith("表 C")))
    assert [r["参数"] for r in policy] == ["rules"] and "B4" in policy[0]["前"] and "B4" not in policy[0]["后"]


def test_summary_and_changes_equal_the_diff(change, report_zh):
    document = docx.Document(report_zh)
    tables = captioned_tables(document)
    summary = next(t for c, t in tables.items() if c.startswith("表 1"))
    header = [c.text for c in summary.rows[0].cells]
    assert header[1:] == [s.label("zh") for s in Service]
    measures = {row.cells[0].text: [c.text for c in row.cells[1:]] for row in summary.rows[1:]}
    for column, label in (("pharmacies_before", "定点药店数（前）"), ("pharmacies_after", "定点药店数（后）"),
                          ("covered_delta", "时限内人口（变化）"), ("r1_failing_after", "R1 未满足的街道数（后）"),
                          ("r2_failing_after", "R2 未满足的区县数（后）")):
        assert [number(v) for v in measures[label]] == pytest.approx(list(change.summary[column].round(0)), abs=0.5)
    assert [number(v) for v in measures["时限内覆盖率（%）（后）"]] == pytest.approx(
        list(100 * change.summary["covered_share_after"]), abs=0.05 + 1e-9)
    for number_, service in enumerate(services_changed(change), start=1):
        v = service.value
        classes = change.class_changes[change.class_changes["service"] == v]
        shown = tables.get(f"表 {number_}-1　分类变化")
        if len(classes):
            assert [(r["名称"], r["分类（前）"], r["分类（后）"]) for r in rows_of(shown)] == [
                (r.name, *(CLASS_WORDS.get(c, "") for c in (r.class_before, r.class_after))) for r in classes.itertuples()]
        else:
            assert shown is None
        requirements = change.requirements[change.requirements["service"] == v]
        shown = tables.get(f"表 {number_}-2　配置要求变化")
        if len(requirements):
            assert [(r["规则"], r["依据"], r["名称"]) for r in rows_of(shown)] == [
                (r.rule, RULES[r.rule].citation, r.name) for r in requirements.itertuples()]
        else:
            assert shown is None
        zones = change.zones[(change.zones["service"] == v)
                             & ((change.zones["added_km2"] > 0) | (change.zones["lifted_km2"] > 0))]
        shown = tables.get(f"表 {number_}-3　禁止/优先/审核区面积变化（平方公里）")
        if len(zones):
            rows = rows_of(shown)
            assert [r["规则"] for r in rows] == list(zones["rule_ids"])
            for row, want in zip(rows, zones.itertuples()):
                assert all(RULES[r].citation in row["依据"] for r in want.rule_ids.split(","))
                assert number(row["新增面积（平方公里）"]) == pytest.approx(want.added_km2, abs=5e-4)
                assert number(row["解除面积（平方公里）"]) == pytest.approx(want.lifted_km2, abs=5e-4)
        else:
            assert shown is None
    lifted_b4 = change.zones[change.zones["rule_ids"].str.contains("B4") & (change.zones["lifted_km2"] > 0)]
    assert len(lifted_b4), "dropping B4 from the policy lifts its blocks in the demo's balance-only county"


def test_english_what_if_report(change, tmp_path):
    document = docx.Document(report.write_scenario_docx(change, tmp_path / "en.docx", lang="en"))
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert headings[:3] == ["1. The edits", "2. Summary of changes", "3. Changes by service"]
    assert headings[3:] == [f"3.{i} {s.label('en')}" for i, s in enumerate(services_changed(change), start=1)]


def test_what_if_report_renders_to_pdf_and_png(report_zh, tmp_path):
    first_page_png(docx_to_pdf(report_zh, tmp_path), "what-if-page-1")


CLASS_WORDS = {"saturated": "相对饱和", "balanced": "均衡", "underserved": "相对不足", "blank": "空白"}
