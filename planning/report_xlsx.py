"""``tables.xlsx`` for people, and the CSV rule against formula injection.

The workbook holds the report tables as a planner reads them (:func:`planning.present.for_people`):
headers and coded values in Chinese or English, persons as whole numbers, shares in percent, rule
outcomes as 是/否/不适用/未判定 (yes/no/n/a/not judged), classes in words beside the measure that decided
them. Sheets: 概要 (findings per county), one per report table, and 字段说明 (each header, its machine
name as in the CSVs and GeoJSON, and its meaning). Header rows are frozen, columns sized, class cells
filled in the map's class colours and rule outcomes green/red/grey.

User strings are never formulas: every text cell is written with the string type, so a pharmacy named
``=HYPERLINK(...)`` shows as that text. The CSVs keep the machine names (for GIS joins) and apply
OWASP's rule: a text cell starting with ``= + - @``, a tab or a carriage return gets a leading ``'``.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from planning.rules import CLASS_LABELS, CLASSIFIED_SERVICES
from planning.model import Service
from planning.text import Text, check_lang
from planning.present import column_meaning, for_people

#: Sheet name of each report table, (Chinese, English); the CSV files keep the machine name.
SHEET_LABELS: dict[str, tuple[str, str]] = {
    "summary": ("概要", "Summary"),
    "subdistricts": ("街道乡镇", "Sub-districts"),
    "counties": ("区县", "Counties"),
    "coverage": ("覆盖", "Coverage"),
    "pharmacies": ("药店", "Pharmacies"),
    "zones": ("分区", "Zones"),
    "rejected": ("拒绝的行", "Rejected rows"),
    "fields": ("字段说明", "Field guide"),
}
#: Leading characters a spreadsheet would read as the start of a formula (OWASP, CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Outcome columns filled by pass/fail (green yes, red no, grey blank).
_OUTCOMES = {"r1_ok", "r2_ok", "r3_ok", "r4_ok"}
_FILL_YES, _FILL_NO, _FILL_BLANK = "d9f0d3", "f4cccc", "e7e7e7"
_FILL_HEADER = "dde4ee"
#: Columns holding a saturation class (filled in the map's class colour).
_CLASS_COLUMNS = {"class", *(f"class_{s.value}" for s in Service)}


def sheet_label(name: str, lang: str = "zh") -> str:
    return Text(*SHEET_LABELS[name]).get(lang) if name in SHEET_LABELS else name


def county_summary(assessment) -> pd.DataFrame:
    """One row per county (machine column names): population, pharmacies, classes per classified
    service, walk-time coverage and persons beyond it per classified service, R1 failures by name, R2,
    the fund rules B3/B4 and every rule id triggered in the county or its sub-districts."""
    counties = pd.DataFrame(assessment.counties.drop(columns="geometry"))
    subdistricts = pd.DataFrame(assessment.subdistricts.drop(columns="geometry"))
    pharmacies = assessment.pharmacies
    rows = []
    for code, rows_of_county in counties.groupby("code", sort=False):
        by_service = rows_of_county.set_index("service")
        first = rows_of_county.iloc[0]
        in_county = subdistricts[subdistricts["county_code"] == code]
        r1_failing = in_county.loc[in_county["r1_ok"] == False, "name"].unique()  # noqa: E712 (None: n/a)
        row = {"code": code, "name": first["name"], "subdistricts": in_county["code"].nunique(),
               "population": int(first["population"]),
               "pharmacies": int((pharmacies["county_code"] == code).sum())}
        for service in CLASSIFIED_SERVICES:
            row[f"class_{service.value}"] = by_service.loc[service.value, "class"]
        for service in CLASSIFIED_SERVICES:
            row[f"covered_share_{service.value}"] = float(by_service.loc[service.value, "covered_share"])
            row[f"uncovered_{service.value}"] = float(
                in_county.loc[in_county["service"] == service.value, "uncovered"].sum())
        row["r1_failing"] = len(r1_failing)
        row["r1_failing_names"] = "、".join(r1_failing)
        row[f"pharmacies_{Service.DUAL_CHANNEL.value}"] = int(by_service.loc[Service.DUAL_CHANNEL.value, "pharmacies"])
        row["r2_ok"] = by_service.loc[Service.DUAL_CHANNEL.value, "r2_ok"]
        row["fund_b3"], row["fund_b4"] = bool(first["fund_b3"]), bool(first["fund_b4"])
        ids = {r for text in pd.concat([rows_of_county["rule_ids"], in_county["rule_ids"]]) for r in str(text).split(",")
               if r}
        row["rule_ids"] = ",".join(sorted(ids))
        rows.append(row)
    return pd.DataFrame(rows)


def write_people_xlsx(all_tables: dict[str, pd.DataFrame], summary: pd.DataFrame, target, *, lang: str = "zh",
                      title: str = "") -> None:
    """Write the workbook (see the module docstring) to ``target`` (a path or a binary file object).
    ``all_tables``: the report tables by machine name; ``summary``: :func:`county_summary`."""
    check_lang(lang)
    book = Workbook()
    book.remove(book.active)
    guide: list[tuple[str, str, str, str]] = []
    for name, table in {"summary": summary, **all_tables}.items():
        sheet = book.create_sheet(_sheet_title(sheet_label(name, lang)))
        first_row = 1
        if name == "summary" and title:
            _text_cell(sheet.cell(row=1, column=1), title).font = Font(bold=True, size=13)
            first_row = 3
        machine = [c for c in table.columns if c not in ("geometry", "class_reason_zh")]
        shown = for_people(table, lang)
        _write_table(sheet, machine, shown, first_row)
        guide += [(sheet.title, header, column, column_meaning(column, lang)) for column, header in
                  zip(machine, shown.columns)]
    sheet = book.create_sheet(_sheet_title(sheet_label("fields", lang)))
    headers = [Text(*pair).get(lang) for pair in (("表", "sheet"), ("表头", "header"),
                                                  ("字段名（CSV、GeoJSON）", "machine name (CSV, GeoJSON)"),
                                                  ("含义", "meaning"))]
    _write_table(sheet, ["sheet", "header", "column", "meaning"], pd.DataFrame(guide, columns=headers), 1)
    book.save(target)


def write_safe_csv(table: pd.DataFrame, path: Path) -> None:
    """``table`` as UTF-8 CSV with a BOM (Excel then reads the Chinese names), machine column names, and
    text cells that would start a formula prefixed with ``'`` (:func:`neutralise_formula`)."""
    safe = table.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise_formula)
    safe.columns = [neutralise_formula(str(c)) for c in safe.columns]
    safe.to_csv(path, index=False, encoding="utf-8-sig")


def neutralise_formula(value):
    """A text value that a spreadsheet would take for a formula, with a leading ``'``; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _write_table(sheet, machine: list[str], shown: pd.DataFrame, first_row: int) -> None:
    header_fill = PatternFill("solid", fgColor=_FILL_HEADER)
    for index, header in enumerate(shown.columns, start=1):
        cell = _text_cell(sheet.cell(row=first_row, column=index), str(header))
        cell.font, cell.fill = Font(bold=True), header_fill
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    class_fills = _class_fills()
    widths = [_display_width(str(h)) for h in shown.columns]
    for offset, values in enumerate(shown.itertuples(index=False, name=None), start=1):
        for index, (column, value) in enumerate(zip(machine, values), start=1):
            cell = sheet.cell(row=first_row + offset, column=index)
            if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
                value = None
            if isinstance(value, str):
                _text_cell(cell, value)
            else:
                cell.value = value.item() if hasattr(value, "item") else value
                if isinstance(cell.value, int) and not isinstance(cell.value, bool) and abs(cell.value) >= 1000 \
                        and column not in ("row", "code"):
                    cell.number_format = "#,##0"
            if column in _CLASS_COLUMNS:
                machine_class = _class_of(value)
                if machine_class in class_fills:
                    cell.fill = class_fills[machine_class]
            elif column in _OUTCOMES:
                cell.fill = PatternFill("solid", fgColor=_outcome_fill(value))
            widths[index - 1] = max(widths[index - 1], _display_width("" if value is None else str(value)))
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 8), 50)
    sheet.freeze_panes = sheet.cell(row=first_row + 1, column=1)
    if len(shown):
        sheet.auto_filter.ref = f"A{first_row}:{get_column_letter(len(shown.columns))}{first_row + len(shown)}"


def _text_cell(cell, text: str):
    """``text`` in ``cell`` as a string, never a formula; characters XML cannot hold become U+FFFD."""
    cell.value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    cell.data_type = "s"
    return cell


def _class_fills() -> dict[str, PatternFill]:
    from planning.maps import CLASS_COLOURS

    return {name: PatternFill("solid", fgColor=_tint(colour, 0.55)) for name, colour in CLASS_COLOURS.items()}


def _class_of(value) -> str | None:
    """The machine class of a class cell shown in words (either language)."""
    for name, words in CLASS_LABELS.items():
        if value in (words.zh, words.en):
            return name
    return None


def _outcome_fill(value) -> str:
    if value in ("是", "yes"):
        return _FILL_YES
    if value in ("否", "no"):
        return _FILL_NO
    return _FILL_BLANK


def _tint(colour: str, white: float) -> str:
    """``colour`` (#rrggbb) mixed with ``white`` (0-1) parts of white, as rrggbb."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "".join(f"{round(c + (255 - c) * white):02x}" for c in rgb)


def _display_width(text: str) -> int:
    """Width in Latin characters: CJK and other wide characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _sheet_title(text: str) -> str:
    """An Excel sheet title: at most 31 characters, none of []:*?/\\."""
    return "".join("_" if ch in "[]:*?/\\" else ch for ch in text)[:31]
