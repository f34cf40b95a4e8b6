"""tables.xlsx for people, re-read with openpyxl, and the CSVs: headers in words, a complete field guide,
rounding as specified, a county summary equal to the assessment, and no user string ever a formula."""

from __future__ import annotations

import csv
import dataclasses
import io
import re

import numpy as np
import openpyxl
import pandas as pd
import pytest

from planning import report
from planning.rules import CLASS_LABELS, CLASSIFIED_SERVICES
from planning.report_xlsx import FORMULA_PREFIXES, SHEET_LABELS

HOSTILE = '=HYPERLINK("http://x","y")'
CJK = re.compile(r"[\u4e00-\u9fff]")
OUTCOMES_ZH = {"是", "否", "不适用", "未判定", None}


@pytest.fixture(scope="module")
def workbook_zh(demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    report.write_tables(demo, folder)
    return openpyxl.load_workbook(folder / "tables.xlsx"), folder


def sheet_frame(sheet, header_row: int = 1) -> pd.DataFrame:
    rows = list(sheet.iter_rows(min_row=header_row, values_only=True))
    return pd.DataFrame(rows[1:], columns=rows[0], dtype=object)


def test_sheets_headers_in_chinese_and_field_guide_complete(workbook_zh):
    book, folder = workbook_zh
    # the demo region is built in code: nothing is known to be missing, so no data-completeness sheet
    assert book.sheetnames == [zh for key, (zh, _) in SHEET_LABELS.items() if key != "completeness"]
    guide = sheet_frame(book["字段说明"])
    listed = set(zip(guide["表"], guide["表头"]))
    for sheet in book.worksheets[:-1]:
        header_row = 3 if sheet.title == "概要" else 1
        headers = [c.value for c in sheet[header_row]]
        assert all(CJK.search(h) or h.startswith(("R", "B")) for h in headers), (sheet.title, headers)
        assert {(sheet.title, h) for h in headers} <= listed, sheet.title  # every header explained
        assert sheet.freeze_panes == f"A{header_row + 1}"  # the header row stays in view
        assert all(sheet.column_dimensions[c.column_letter].width >= 8 for c in sheet[header_row])
    assert guide["含义"].map(bool).all(), guide[~guide["含义"].map(bool)]
    # The machine names are the CSVs' columns.
    csv_columns = pd.read_csv(folder / "subdistricts.csv", encoding="utf-8-sig", nrows=0).columns
    machine = set(guide.loc[guide["表"] == "街道乡镇", "字段名（CSV、GeoJSON）"])
    assert machine <= set(csv_columns) and "class_reason_zh" not in machine


def test_values_rounded_and_in_words(demo, workbook_zh):
    book, _ = workbook_zh
    shown = sheet_frame(book["街道乡镇"])
    raw = demo.subdistricts.reset_index(drop=True)
    assert len(shown) == len(raw)
    assert shown["代码"].tolist() == raw["code"].tolist()
    assert all(isinstance(v, int) for v in shown["常住参保人口"])
    assert (shown["时限外人口"].to_numpy(dtype=float) == np.round(raw["uncovered"].to_numpy())).all()
    assert np.allclose(shown["时限内覆盖率（%）"].astype(float), np.round(raw["covered_share"] * 100, 1))
    assert np.allclose(shown["每万参保人药店数"].astype(float), np.round(raw["per_10k"], 2))
    for column in ("R1 满足", "R3 满足"):
        assert set(shown[column]) <= OUTCOMES_ZH
    expected_r1 = raw["r1_ok"].map(lambda v: "不适用" if v is None or v is pd.NA else ("是" if v else "否"))
    assert shown["R1 满足"].tolist() == expected_r1.tolist()
    words = {label.zh for label in CLASS_LABELS.values()}
    assert set(shown["分类"].dropna()) <= words and set(shown["判定指标"].dropna()) <= {"每万参保人药店数", "时限内覆盖率"}
    # Class cells carry their class colour, outcomes a pass/fail fill.
    sheet = book["街道乡镇"]
    class_col = [c.value for c in sheet[1]].index("分类") + 1
    r1_col = [c.value for c in sheet[1]].index("R1 满足") + 1
    fills = {sheet.cell(row=r, column=class_col).value: sheet.cell(row=r, column=class_col).fill.fgColor.rgb
             for r in range(2, sheet.max_row + 1)}
    assert len(set(fills.values())) == len(fills)  # one colour per class
    outcome_fill = {sheet.cell(row=r, column=r1_col).value: sheet.cell(row=r, column=r1_col).fill.fgColor.rgb
                    for r in range(2, sheet.max_row + 1)}
    assert outcome_fill["是"] != outcome_fill["否"]
    # Pharmacies: R4 blank would mean "not judged" (the demo has the settlement column, so yes/no).
    pharmacies = sheet_frame(book["药店"])
    assert set(pharmacies["R4 满足"]) <= OUTCOMES_ZH and set(pharmacies["门诊统筹"]) <= {"是", "否"}


def test_summary_per_county_equals_the_assessment(demo, workbook_zh):
    book, _ = workbook_zh
    summary = sheet_frame(book["概要"], header_row=3)
    assert demo.region.name in book["概要"]["A1"].value
    counties = demo.region.counties
    assert summary["代码"].tolist() == counties["code"].tolist()
    sd = demo.subdistricts
    assert summary["R1 未满足的街道"].notna().any()  # the demo plants an R1 shortfall
    for values in summary.to_dict("records"):
        code = values["代码"]
        in_county = sd[sd["county_code"] == code]
        failing = sorted(in_county.loc[in_county["r1_ok"] == False, "name"].unique())  # noqa: E712
        assert sorted(filter(None, (values["R1 未满足的街道"] or "").split("、"))) == failing
        assert values["常住参保人口"] == int(demo.county_row(code, "personal_account")["population"])
        assert values["定点药店数"] == int((demo.pharmacies["county_code"] == code).sum())
        for service in CLASSIFIED_SERVICES:
            uncovered = in_county.loc[in_county["service"] == service.value, "uncovered"].sum()
            assert values[f"时限外人口（{service.label('zh')}）"] == round(uncovered)
        dual = demo.county_row(code, "dual_channel")
        assert values["R2 满足"] == ("是" if dual["r2_ok"] else "否")


def test_english_workbook(demo):
    book = openpyxl.load_workbook(io.BytesIO(report.tables_xlsx_bytes(demo, lang="en")))
    assert book.sheetnames == [en for key, (_, en) in SHEET_LABELS.items() if key != "completeness"]
    headers = [c.value for c in book["Sub-districts"][1]]
    assert "insured residents" in headers and "R1 met" in headers
    assert set(sheet_frame(book["Sub-districts"])["R1 met"]) <= {"yes", "no", "n/a"}


@pytest.fixture(scope="module")
def hostile(demo):
    """The demo with a pharmacy, a sub-district and a county named like a formula (and an address starting with '+')."""
    from planning.assess import assess

    region = demo.region
    pharmacies = region.pharmacies.copy()
    pharmacies.loc[pharmacies.index[0], "name"] = HOSTILE
    pharmacies.loc[pharmacies.index[1], "address"] = "+1-800 @cmd"
    subdistricts = region.subdistricts.copy()
    subdistricts.loc[subdistricts.index[0], "name"] = HOSTILE
    counties = region.counties.copy()
    counties.loc[counties.index[0], "name"] = HOSTILE
    return assess(dataclasses.replace(region, pharmacies=pharmacies, subdistricts=subdistricts, counties=counties),
                  demo.network, demo.policy)


def test_no_user_string_becomes_a_formula_in_xlsx(hostile, tmp_path):
    for source in (report.write_tables(hostile, tmp_path)[0], io.BytesIO(report.tables_xlsx_bytes(hostile))):
        book = openpyxl.load_workbook(source)
        hits = []
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                    if cell.value == HOSTILE:
                        assert cell.data_type == "s"
                        hits.append(sheet.title)
        assert {"药店", "街道乡镇", "区县", "概要"} <= set(hits)  # the name is kept as written, as text


def test_csv_cells_never_start_a_formula(hostile, tmp_path):
    written = report.write_tables(hostile, tmp_path)
    seen = set()
    for path in written[1:]:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.reader(handle):
                for value in row:
                    assert not value.startswith(FORMULA_PREFIXES), (path.name, value)
                    seen.add(value)
    assert "'" + HOSTILE in seen and "'+1-800 @cmd" in seen
    # Numbers are not touched: negative numbers would stay numbers (none are text).
    assert pd.read_csv(tmp_path / "pharmacies.csv", encoding="utf-8-sig")["lon"].dtype == float
