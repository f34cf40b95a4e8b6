"""The application register as a table and as an XLSX workbook that reads back.

:func:`register_table` is what a planner reads (app tab, workbook's first sheet): one row per
application with its stage, next deadline, overdue flag, the note when a due date counts an unknown
year Monday to Friday, and the ban windows in force. The workbook adds the state itself, one sheet each
(stage history, stored verdicts, art. 13 exclusions), so :func:`read_register_xlsx` rebuilds the very
:class:`planning.register.Application` objects written, in either language's headers.
"""

from __future__ import annotations

import datetime as dt

import openpyxl
import pandas as pd

from planning.i18n import t
from planning.model import Service, service_labels
from planning.register import (STAGE_LABELS, Application, Exclusion, Kind, Stage, StageEvent, StoredVerdict,
                               ban_windows, next_deadline)
from planning.report_xlsx import FILL_CAUTION, FILL_WARNING, write_sheets
from planning.text import Text, check_lang

YES, NO = Text("是", "yes"), Text("否", "no")
LIST_SEPARATOR = Text("；", "; ")
BAN_TEXT = Text("{what} {first}–{last}（{rule}）", "{what} {first} – {last} ({rule})")
UNTIL_RESOLVED = Text("解除为止", "until resolved")
VERDICT_TEXT = Text("{service}：{verdict}（{rules}）", "{service}: {verdict} ({rules})")
VERDICT_TEXT_NO_RULE = Text("{service}：{verdict}", "{service}: {verdict}")
KIND_LABELS = {Kind.DESIGNATION: Text("新增定点", "new designation"),
               Kind.PAYMENT_CATEGORY: Text("增加支付类别", "added payment category")}
#: Header of every column, by machine name.
HEADERS: dict[str, Text] = {
    "app_id": Text("编号", "id"),
    "applicant": Text("申请机构", "applicant"),
    "address": Text("地址", "address"),
    "lon": Text("经度（WGS84）", "longitude (WGS84)"),
    "lat": Text("纬度（WGS84）", "latitude (WGS84)"),
    "services": Text("申请业务", "services applied for"),
    "kind": Text("申请类型", "kind"),
    "received": Text("受理日期", "received"),
    "checked_on": Text("选址核查日期", "location checked on"),
    "stage": Text("当前阶段", "stage"),
    "stage_on": Text("阶段日期", "stage since"),
    "stage_rule": Text("依据", "rule"),
    "next_step": Text("下一时限事项", "next time-limited step"),
    "next_due": Text("截止日期", "due"),
    "next_rule": Text("时限依据", "time limit rule"),
    "overdue": Text("已逾期", "overdue"),
    "due_note": Text("日期说明", "date note"),
    "bans": Text("限制期", "ban windows"),
    "verdicts": Text("选址结论", "location verdicts"),
    "verdict_changed": Text("结论有变化", "verdict changed"),
    "on": Text("日期", "date"),
    "rule_id": Text("规则", "rule"),
    "published_on": Text("公示发布日期", "published on"),
    "note": Text("备注", "note"),
    "service": Text("业务", "service"),
    "verdict": Text("结论", "verdict"),
    "rule_ids": Text("规则编号", "rule ids"),
    "reason_zh": Text("情形（中文）", "reason (Chinese)"),
    "reason_en": Text("情形（英文）", "reason (English)"),
    "since": Text("事件日期", "event date"),
    "years": Text("期限（年）", "window (years)"),
}
SHEETS = {
    "register": (Text("申请台账", "Register"),
                 ["app_id", "applicant", "address", "lon", "lat", "services", "kind", "received", "checked_on",
                  "stage", "stage_on", "stage_rule", "next_step", "next_due", "next_rule", "overdue", "due_note",
                  "bans", "verdicts", "verdict_changed"]),
    "history": (Text("阶段记录", "Stage history"), ["app_id", "stage", "on", "rule_id", "published_on", "note"]),
    "verdicts": (Text("选址结论", "Location verdicts"), ["app_id", "service", "verdict", "rule_ids"]),
    "exclusions": (Text("不予受理情形", "Exclusions"), ["app_id", "reason_zh", "reason_en", "since", "years"]),
}


def register_table(applications, today: dt.date, lang: str = "zh", changed: dict[str, bool] | None = None
                   ) -> pd.DataFrame:
    """One row per application (machine column names, values in ``lang``): stage, next deadline with its
    rule, overdue on ``today``, the Monday-to-Friday note, ban windows covering ``today`` or later, and the
    stored verdicts; ``changed`` (app id -> bool, from :func:`planning.register.recheck`) fills
    ``verdict_changed`` (blank when not re-checked)."""
    check_lang(lang)
    rows = []
    for a in applications:
        pending = next_deadline(a)
        note = pending.note() if pending else None
        bans = [w for w in ban_windows(a) if w.last is None or w.last >= today]
        rows.append({
            "app_id": a.app_id, "applicant": a.applicant, "address": a.address, "lon": a.lon, "lat": a.lat,
            "services": service_labels(a.services, lang), "kind": KIND_LABELS[a.kind].get(lang),
            "received": a.received, "checked_on": a.checked_on,
            "stage": a.stage.stage.label(lang), "stage_on": a.stage.on, "stage_rule": a.stage.rule_id,
            "next_step": pending.step.get(lang) if pending else "", "next_due": pending.due if pending else None,
            "next_rule": pending.citation if pending else "",
            "overdue": (YES if pending and pending.overdue(today) else NO).get(lang),
            "due_note": note.get(lang) if note else "",
            "bans": LIST_SEPARATOR.get(lang).join(
                BAN_TEXT.format(what=w.what.get(lang), first=w.first.isoformat(), rule=w.rule_id,
                                last=w.last.isoformat() if w.last else UNTIL_RESOLVED.get(lang)).get(lang) for w in bans),
            "verdicts": verdicts_text(((v.service, v.verdict, v.rule_ids) for v in a.verdicts), lang),
            "verdict_changed": "" if changed is None or a.app_id not in changed else
            (YES if changed[a.app_id] else NO).get(lang),
        })
    return pd.DataFrame(rows, columns=SHEETS["register"][1])


def verdicts_text(verdicts, lang: str = "zh") -> str:
    """(service value, verdict, rule ids) triples in words: ``门诊慢特病：禁止新增（B1,B2）``."""
    return LIST_SEPARATOR.get(lang).join(
        (VERDICT_TEXT if rule_ids else VERDICT_TEXT_NO_RULE).format(
            service=Service(service).label(lang), verdict=t("verdict_" + verdict, lang),
            rules=",".join(rule_ids)).get(lang) for service, verdict, rule_ids in verdicts)


def people_headers(table: pd.DataFrame, lang: str = "zh") -> pd.DataFrame:
    """``table`` (machine column names of this module) with its headers in words."""
    return table.set_axis([HEADERS[c].get(lang) for c in table.columns], axis=1)


def styled_register(table: pd.DataFrame, lang: str = "zh"):
    """:func:`register_table` with headers in words, overdue rows and changed verdicts filled red and
    Monday-to-Friday dates yellow (a pandas Styler, as the app shows it)."""
    yes = YES.get(lang)
    overdue = (table["overdue"] == yes).to_numpy()
    changed = (table["verdict_changed"] == yes).to_numpy()
    noted = (table["due_note"] != "").to_numpy()
    columns = list(table.columns)

    def fill(row_number: int) -> list[str]:
        out = [f"background-color: #{FILL_WARNING}" if overdue[row_number] else ""] * len(columns)
        if noted[row_number]:
            out[columns.index("due_note")] = f"background-color: #{FILL_CAUTION}"
        if changed[row_number]:
            out[columns.index("verdict_changed")] = f"background-color: #{FILL_WARNING}"
        return out

    shown = people_headers(table, lang).reset_index(drop=True)
    return shown.style.apply(lambda row: fill(row.name), axis=1)


def state_tables(applications) -> dict[str, pd.DataFrame]:
    """The register's state (history, verdicts, exclusions) as machine tables, one row per item."""
    history = [{"app_id": a.app_id, "stage": e.stage.value, "on": e.on, "rule_id": e.rule_id,
                "published_on": e.published_on, "note": e.note} for a in applications for e in a.history]
    verdicts = [{"app_id": a.app_id, "service": v.service, "verdict": v.verdict, "rule_ids": ",".join(v.rule_ids)}
                for a in applications for v in a.verdicts]
    exclusions = [{"app_id": a.app_id, "reason_zh": x.reason_zh, "reason_en": x.reason_en, "since": x.since,
                   "years": x.years} for a in applications for x in a.exclusions]
    return {name: pd.DataFrame(rows, columns=SHEETS[name][1])
            for name, rows in (("history", history), ("verdicts", verdicts), ("exclusions", exclusions))}


def write_register_xlsx(applications, target, today: dt.date, *, lang: str = "zh",
                        changed: dict[str, bool] | None = None) -> None:
    """The register workbook at ``target`` (path or binary file): the register sheet (overdue cells red,
    due dates counted Monday to Friday yellow, changed verdicts red) and the state sheets."""
    tables = {"register": register_table(applications, today, lang, changed), **state_tables(applications)}
    yes = YES.get(lang)
    tables["history"]["stage"] = tables["history"]["stage"].map(lambda v: Stage(v).label(lang))
    fills = {"register": {"overdue": lambda v: FILL_WARNING if v == yes else None,
                          "due_note": lambda v: FILL_CAUTION if v else None,
                          "verdict_changed": lambda v: FILL_WARNING if v == yes else None}}
    write_sheets([(title.get(lang), columns, people_headers(tables[name], lang), fills.get(name))
                  for name, (title, columns) in SHEETS.items()], target)


def read_register_xlsx(source) -> list[Application]:
    """The applications of a workbook :func:`write_register_xlsx` wrote (either language)."""
    book = openpyxl.load_workbook(source, read_only=True, data_only=True)
    sheets = {}
    for name, (title, columns) in SHEETS.items():
        sheet = next(book[t] for t in (title.zh, title.en) if t in book.sheetnames)
        rows = list(sheet.iter_rows(values_only=True))
        by_header = {h: c for c in columns for h in (HEADERS[c].zh, HEADERS[c].en)}
        machine = [by_header[h] for h in rows[0]]
        sheets[name] = [dict(zip(machine, r)) for r in rows[1:]]
    book.close()
    stage_by_label = {t: s for s, text in STAGE_LABELS.items() for t in (text.zh, text.en)}
    kind_by_label = {t: k for k, text in KIND_LABELS.items() for t in (text.zh, text.en)}
    service_by_label = {t: s.value for s in Service for t in (s.label_zh, s.label_en)}

    def of(name: str, app_id: str) -> list[dict]:
        return [r for r in sheets[name] if r["app_id"] == app_id]

    out = []
    for row in sheets["register"]:
        app_id = row["app_id"]
        history = tuple(StageEvent(stage_by_label[r["stage"]], _day(r["on"]), r["rule_id"] or "", r["note"] or "",
                                   _day(r["published_on"])) for r in of("history", app_id))
        verdicts = tuple(StoredVerdict(r["service"], r["verdict"], tuple(x for x in (r["rule_ids"] or "").split(",")
                                                                         if x)) for r in of("verdicts", app_id))
        exclusions = tuple(Exclusion(r["reason_zh"], r["reason_en"], _day(r["since"]),
                                     None if r["years"] is None else int(r["years"])) for r in of("exclusions", app_id))
        services = tuple(service_by_label[s] for s in _split_list(row["services"]))
        out.append(Application(app_id=str(app_id), applicant=row["applicant"] or "", address=row["address"] or "",
                               lon=float(row["lon"]), lat=float(row["lat"]), services=services,
                               received=_day(row["received"]), history=history, verdicts=verdicts,
                               checked_on=_day(row["checked_on"]), exclusions=exclusions,
                               kind=kind_by_label[row["kind"]]))
    return out


def _day(value) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _split_list(text: str | None) -> list[str]:
    """A list written 甲、乙 or a, b back into its items."""
    if not text:
        return []
    return [part.strip() for part in str(text).replace("、", ",").split(",") if part.strip()]
