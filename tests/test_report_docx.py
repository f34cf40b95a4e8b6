"""The Word assessment report, re-read with python-docx: headings, every rule's finding with its citation
(from planning.policy.RULES), one map per service, tables equal to the assessment; rendered to PDF by
LibreOffice and its first page to PNG (test-artifacts/) when those tools are installed."""

from __future__ import annotations

from planning.demo import PLANTED

import docx
import pytest
from office import docx_to_pdf, first_page_png

from planning import report, rules
from planning.model import Service
from planning.policy import RULES


@pytest.fixture(scope="module")
def report_zh(demo, tmp_path_factory):
    return report.write_docx(demo, tmp_path_factory.mktemp("docx") / "report.docx")


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_headings_rules_and_maps(demo, report_zh):
    document = docx.Document(report_zh)
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert headings[0] == "一、评估结论摘要" and "二、分业务评估" in headings
    assert [h for h in headings if h.startswith("（")] == [f"（{n}）{s.label('zh')}" for n, s in zip("一二三四", Service)]
    assert headings[-3:] == ["三、步行模型与数据", "四、未判定事项及原因", "五、药店结算状态"]
    # The settlement section names the planted street office and lists every suspended or terminated pharmacy.
    settlement = document.tables[-1]
    listed = {row.cells[0].text: row.cells[3].text for row in settlement.rows[1:]}
    stopped = demo.pharmacies[demo.pharmacies["settlement"].isin(["suspended", "terminated"])]
    assert set(listed) == set(stopped["pharmacy_id"])
    assert all(listed[p] for p in PLANTED["settlement"]["suspended"])
    assert any("ST-info" in text for text in listed.values())
    paragraphs = [p.text for p in document.paragraphs]
    assert any("R1 不满足" in p and PLANTED["r1_only_suspended_street"]["name"] in p for p in paragraphs)
    title = document.paragraphs[0]
    assert title.style.name == "Title" and demo.region.name in title.text
    body = "\n".join(p.text for p in document.paragraphs)
    assert demo.policy.policy_id in body and "HN-2025" in body and "MDJ-2025" in body
    summary = document.tables[0]
    rows = {row.cells[0].text: [c.text for c in row.cells] for row in summary.rows[1:]}
    assert set(rows) == set(RULES)
    for rule_id, rule in RULES.items():
        assert rows[rule_id][1] == rule.citation and rows[rule_id][2] == rule.text("zh")
        assert rows[rule_id][3]  # a finding, or why it was not judged
    assert "柳湾街道" in rows["R1"][3] and "青禾县" in rows["R2"][3]  # the demo's planted shortfalls
    assert rows["B5"][3].startswith("区域评估不判定")
    assert len(document.inline_shapes) == len(Service)  # one map per service


def test_tables_equal_the_assessment(demo, report_zh):
    document = docx.Document(report_zh)
    for index, service in enumerate(Service):
        counties = document.tables[1 + 2 * index]
        subdistricts = document.tables[2 + 2 * index]
        expected_sd = demo.subdistricts[demo.subdistricts["service"] == service.value]
        header = [c.text for c in subdistricts.rows[0].cells]
        assert header[:4] == ["名称", "类型", "常住参保人口", "定点药店数"]
        assert len(subdistricts.rows) - 1 == len(expected_sd)
        for row, (_, want) in zip(subdistricts.rows[1:], expected_sd.iterrows()):
            cells = dict(zip(header, (c.text for c in row.cells)))
            assert cells["名称"] == want["name"]
            assert number(cells["常住参保人口"]) == want["population"]
            assert number(cells["定点药店数"]) == want["pharmacies"]
            assert abs(number(cells["时限外人口"]) - want["uncovered"]) <= 0.5
            assert abs(number(cells["时限内覆盖率（%）"]) - 100 * want["covered_share"]) <= 0.05 + 1e-9
            if "R1 满足" in cells:
                r1 = rules.outcome(want["r1_ok"])
                assert cells["R1 满足"] == ("不适用" if r1 is None else "是" if r1 else "否")
        expected_counties = demo.counties[demo.counties["service"] == service.value]
        header = [c.text for c in counties.rows[0].cells]
        for row, (_, want) in zip(counties.rows[1:], expected_counties.iterrows()):
            cells = dict(zip(header, (c.text for c in row.cells)))
            assert cells["名称"] == want["name"] and number(cells["常住参保人口"]) == want["population"]
        assert len(counties.rows) - 1 == len(expected_counties)
    not_judged = document.tables[-2]  # the last one lists the suspended and terminated pharmacies
    items = [r.cells[0].text for r in not_judged.rows[1:]]
    assert "R1（乡镇）" in items and "B5" in items


def walking_model_rows(document) -> dict[str, str]:
    table = next(t for t in document.tables if t.rows[0].cells[0].text in ("参数", "parameter"))
    return {row.cells[0].text: row.cells[1].text for row in table.rows[1:]}


def test_data_section_says_whether_workers_counted(demo, report_zh, tmp_path):
    """The walking-model table says the demo's worker layer is given but weighed 0 under the default
    policy, and, under a policy weighing workers, the weight per service (the summary text's words)."""
    from dataclasses import replace

    from planning.assess import assess
    from planning.memo import Memo
    from planning.present import summary_text

    row = walking_model_rows(docx.Document(report_zh))["就业人员（工作区域）"]
    assert "workers_weight 为 0" in row and "未计入需求" in row
    assert row in summary_text(demo, "zh")
    weighed = assess(demo.region, demo.network, replace(demo.policy, workers_weight={
        s: (0.5 if s is Service.OUTPATIENT_POOLING else 0.0) for s in Service}))
    en = walking_model_rows(docx.Document(report.write_docx(weighed, tmp_path / "w.docx", lang="en")))
    row = en["workers (work areas)"]
    layer = demo.region.workers
    assert f"{len(layer.places):,} places, {layer.total:,.0f} workers in all" in row
    assert f"{Service.OUTPATIENT_POOLING.label('en')} 0.5" in row and row in summary_text(weighed, "en")
    without = replace(demo.region, workers=None)
    assert walking_model_rows(docx.Document(report.write_docx(replace(demo, region=without, memo=Memo()), tmp_path / "n.docx")))[
        "就业人员（工作区域）"] == "未提供就业人员图层：需求只按居民计算"


def test_english_report(demo, tmp_path):
    document = docx.Document(report.write_docx(demo, tmp_path / "en.docx", lang="en"))
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert headings[0] == "1. Summary of findings"
    rows = {row.cells[0].text: row.cells[2].text for row in document.tables[0].rows[1:]}
    assert rows == {r: rule.text("en") for r, rule in RULES.items()}


def test_report_renders_to_pdf_and_png(report_zh, tmp_path):
    first_page_png(docx_to_pdf(report_zh, tmp_path), "report-page-1")


def test_table_rows_read_back_as_python_docx_writes_them(tmp_path):
    """The rows written as XML (ReportDocument.table) read back, cell by cell, as the same table written
    through python-docx's own cell API: escaping, tabs, line breaks, edge spaces, short rows, widths."""
    from docx.shared import Cm, Pt

    from planning.report_docx import ReportDocument

    headers = ["名称", "a & b", "<c>"]
    rows = [["  空格 ", "x\ty", "line 1\nline 2"], ["A&B <i>", '"q"', "]]>"], ["short"]]
    ours = ReportDocument("zh")
    ours.table(headers, rows, widths_cm=[3.0, 4.5, 8.5], font_pt=8.5)
    theirs = docx.Document()
    table = theirs.add_table(rows=1, cols=3)
    for cell, value in zip(table.rows[0].cells, headers):
        cell.paragraphs[0].add_run(value).bold = True
    for values in rows:
        for cell, value in zip(table.add_row().cells, values):
            cell.paragraphs[0].add_run(value).font.size = Pt(8.5)
    ours_path = tmp_path / "ours.docx"
    ours_path.write_bytes(ours.to_bytes())
    (read,) = docx.Document(str(ours_path)).tables
    assert [[c.text for c in r.cells] for r in read.rows] == [[c.text for c in r.cells] for r in table.rows]
    assert [c.width.twips for c in read.rows[1].cells] == [Cm(w).twips for w in (3.0, 4.5, 8.5)]  # Word keeps twips
    assert all(run.bold for cell in read.rows[0].cells for run in cell.paragraphs[0].runs)
    assert {run.font.size for cell in read.rows[1].cells for run in cell.paragraphs[0].runs} == {Pt(8.5)}
