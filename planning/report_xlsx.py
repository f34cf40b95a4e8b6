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

import datetime as dt
import math
import re
import unicodedata
from pathlib import Path

import pandas as pd
import xlsxwriter

from planning.rules import CLASS_LABELS, CLASSIFIED_SERVICES, outcome
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
    "completeness": ("数据完整性", "Data completeness"),
    "fields": ("字段说明", "Field guide"),
}
#: Leading characters a spreadsheet would read as the start of a formula (OWASP, CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Characters an XLSX (XML 1.0) cannot hold: C0 controls other than tab, newline and carriage return.
ILLEGAL_CHARACTERS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
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
               "population": float(first["population"]),  # NaN: population unknown
               "pharmacies": int((pharmacies["county_code"] == code).sum())}
        for service in CLASSIFIED_SERVICES:
            row[f"class_{service.value}"] = by_service.loc[service.value, "class"]
        for service in CLASSIFIED_SERVICES:
            row[f"covered_share_{service.value}"] = float(by_service.loc[service.value, "covered_share"])
            row[f"uncovered_{service.value}"] = float(
                in_county.loc[in_county["service"] == service.value, "uncovered"].sum())
        row["r1_failing"] = len(r1_failing)
        row["r1_failing_names"] = "、".join(r1_failing)
        row[f"pharmacies_{Service.DUAL_CHANNEL.value}"] = float(by_service.loc[Service.DUAL_CHANNEL.value, "pharmacies"])
        row["r2_ok"] = by_service.loc[Service.DUAL_CHANNEL.value, "r2_ok"]
        row["fund_b3"], row["fund_b4"] = outcome(first["fund_b3"]), outcome(first["fund_b4"])  # None: not judged
        ids = {r for text in pd.concat([rows_of_county["rule_ids"], in_county["rule_ids"]]) for r in str(text).split(",")
               if r}
        row["rule_ids"] = ",".join(sorted(ids))
        rows.append(row)
    return pd.DataFrame(rows)


def write_people_xlsx(all_tables: dict[str, pd.DataFrame], summary: pd.DataFrame, target, *, lang: str = "zh",
                      title: str = "") -> None:
    """Write the workbook (see the module docstring) to ``target`` (a path or a binary file object).
    ``all_tables``: the report tables by machine name; ``summary``: :func:`county_summary`.

    Written with XlsxWriter, row by row to temporary files (``constant_memory``): a province's 100,000
    pharmacies took 58 s with openpyxl's cell objects and styles, and a few seconds this way."""
    check_lang(lang)
    book = xlsxwriter.Workbook(target, {"constant_memory": True, "nan_inf_to_errors": True,
                                        "strings_to_formulas": False, "strings_to_urls": False})
    formats = _Formats(book)
    guide: list[tuple[str, str, str, str]] = []
    for name, table in {"summary": summary, **all_tables}.items():
        sheet = book.add_worksheet(_sheet_title(sheet_label(name, lang)))
        first_row = 0
        if name == "summary" and title:
            sheet.write_string(0, 0, _clean_text(title), formats.get(bold=True, size=13))
            first_row = 2
        machine = [c for c in table.columns if c not in ("geometry", "class_reason_zh")]
        shown = for_people(table, lang)
        _write_table(sheet, machine, shown, first_row, formats)
        guide += [(sheet.name, header, column, column_meaning(column, lang)) for column, header in
                  zip(machine, shown.columns)]
    sheet = book.add_worksheet(_sheet_title(sheet_label("fields", lang)))
    headers = [Text(*pair).get(lang) for pair in (("表", "sheet"), ("表头", "header"),
                                                  ("字段名（CSV、GeoJSON）", "machine name (CSV, GeoJSON)"),
                                                  ("含义", "meaning"))]
    _write_table(sheet, ["sheet", "header", "column", "meaning"], pd.DataFrame(guide, columns=headers), 0, formats)
    book.close()


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


class _Formats:
    """One XlsxWriter format per distinct look (fill colour, number format, bold...), made once per workbook."""

    def __init__(self, book):
        self.book = book
        self.made: dict[tuple, object] = {}

    def get(self, **properties):
        key = tuple(sorted(properties.items()))
        if key not in self.made:
            self.made[key] = self.book.add_format(_format_properties(properties))
        return self.made[key]


def _format_properties(properties: dict) -> dict:
    out = {k: v for k, v in properties.items() if k != "fill"}
    if properties.get("fill"):
        out.update(bg_color=f"#{properties['fill']}", pattern=1)
    return {k: v for k, v in out.items() if v is not None}


def write_sheets(sheets, target) -> None:
    """A workbook of plain tables at ``target`` (a path or a binary file object), written like the report's
    (text never a formula, header frozen, columns sized, dates as dates). ``sheets``: (title, machine column
    names, table with the headers in words, fills) per sheet; ``fills`` maps a machine column to a function
    giving a cell's fill colour (rrggbb) or None from its shown value."""
    book = xlsxwriter.Workbook(target, {"nan_inf_to_errors": True, "strings_to_formulas": False,
                                        "strings_to_urls": False})
    formats = _Formats(book)
    for title, machine, shown, fills in sheets:
        _write_table(book.add_worksheet(_sheet_title(title)), machine, shown, 0, formats, fills)
    book.close()


#: Fill colours of plain tables (:func:`write_sheets`): a warning (red) and a caution (yellow).
FILL_WARNING, FILL_CAUTION = _FILL_NO, "fff2cc"


def _write_table(sheet, machine: list[str], shown: pd.DataFrame, first_row: int, formats: _Formats,
                 fills: dict | None = None) -> None:
    """``shown`` (headers in words) from ``first_row`` (0-based) down, row by row: text always as strings,
    whole numbers of 1,000 or more with a thousands separator, class and outcome cells filled (or those of
    ``fills``: machine column -> function of the shown value giving a fill or None)."""
    header = formats.get(bold=True, fill=_FILL_HEADER, text_wrap=True, valign="top")
    for index, text in enumerate(shown.columns):
        sheet.write_string(first_row, index, _clean_text(str(text)), header)
    class_fills = _class_fills()
    thousands, dates = formats.get(num_format="#,##0"), formats.get(num_format="yyyy-mm-dd")
    columns, widths = [], []  # per column: (write method, value, format) of each cell, prepared column-wise
    for column, (header_text, values) in zip(machine, shown.items()):
        values = [None if _blank(v) else (v.item() if hasattr(v, "item") and not isinstance(v, str) else v)
                  for v in values.astype(object).tolist()]
        if ILLEGAL_CHARACTERS_RE.search("".join(v for v in values if isinstance(v, str))):  # rare: clean cell by cell
            values = [_clean_text(v) if isinstance(v, str) else v for v in values]
        if fills and column in fills:
            styles = [formats.get(fill=f) if (f := fills[column](v)) else None for v in values]
        elif column in _CLASS_COLUMNS:
            styles = [formats.get(fill=class_fills[c]) if (c := _class_of(v)) in class_fills else None for v in values]
        elif column in _OUTCOMES:
            styles = [formats.get(fill=_outcome_fill(v)) for v in values]
        else:
            styles = [None] * len(values)
        separators = column not in ("row", "code")
        columns.append([_cell(sheet, v, style, thousands if separators else None, dates)
                        for v, style in zip(values, styles)])
        shown_texts = {"" if v is None else str(v) for v in values}
        widths.append(max([_display_width(str(header_text))] + [_display_width(v) for v in shown_texts]))
    for r, row in enumerate(zip(*columns), start=first_row + 1):
        for index, (write, value, style) in enumerate(row):
            if write is not None:
                write(r, index, value, style)
    for index, width in enumerate(widths):
        sheet.set_column(index, index, min(max(width + 2, 8), 50))
    sheet.freeze_panes(first_row + 1, 0)
    if len(shown):
        sheet.autofilter(first_row, 0, first_row + len(shown), len(shown.columns) - 1)


def _blank(value) -> bool:
    return (value is None or value is pd.NA or value is pd.NaT or value == ""
            or (isinstance(value, float) and math.isnan(value)))


def _cell(sheet, value, style, thousands, dates) -> tuple:
    """How one cell is written, as (``sheet`` method or None, value, format): text as a string (never a
    formula), numbers as numbers (whole numbers of 1,000 or more with ``thousands``), dates as dates,
    blanks blank (unless filled)."""
    if value is None:
        return (sheet.write_blank if style is not None else None), None, style
    if isinstance(value, str):  # made XML-safe by the caller (_clean_text)
        return sheet.write_string, value, style
    if isinstance(value, bool):
        return sheet.write_boolean, value, style
    if isinstance(value, (int, float)):
        if style is None and thousands is not None and isinstance(value, int) and abs(value) >= 1000:
            style = thousands
        return sheet.write_number, value, style
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return sheet.write_datetime, pd.Timestamp(value).to_pydatetime(), style or dates
    return sheet.write_string, _clean_text(str(value)), style


def _clean_text(text: str) -> str:
    """``text`` with the characters XML cannot hold as U+FFFD (Excel would refuse the file)."""
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", text) if ILLEGAL_CHARACTERS_RE.search(text) else text


def _class_fills() -> dict[str, str]:
    from planning.maps import CLASS_COLOURS

    return {name: _tint(colour, 0.55) for name, colour in CLASS_COLOURS.items()}


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
