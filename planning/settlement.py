"""Who actually settles: the settlement status of each designated pharmacy on an assessment date.

A designated pharmacy in the input does not always serve. The seeds say when its insurance settlement
stops (../shared/POLICY.md, ../shared/seeds/):

- ``ST-info`` (HN-2025 (十)): the information-system upgrade not accepted by 2025-06-30 suspends all
  settlement (personal account included) until it is accepted;
- ``ST-trace`` (HN-2025 (十)): drug traceability codes not in use by 2025-03-31, likewise;
- ``ST-suspended`` (CX-2022 art. 34): the agreement is suspended (status, or a suspension period
  holding the assessment date), until the suspension's end when one is given;
- ``ST-180`` (CX-2022 art. 35): a suspension longer than 180 days ends the agreement;
- ``ST-twice`` (CX-2022 art. 35): a second suspension in one agreement period ends the agreement;
- ``ST-terminated`` (CX-2022 art. 35): the agreement is terminated (解除/终止);
- ``ST-principal`` (WH-2025): the principal's (主要负责人) insurance payment qualification is
  suspended or terminated: settlement through that person stops, the pharmacy is suspended.

:func:`settlement_status` gives, per pharmacy, one of :data:`STATUSES`: ``terminated`` when a
termination rule holds, else ``suspended`` when a suspension rule holds, else ``not_judged`` when some
rule lacks its input (a missing column or a blank cell: unknown is never "settling"), else
``settling``. The inputs are optional pharmacy columns (:data:`STATUS_COLUMNS`; the ingest readers
accept Chinese headers for them): dates are ``datetime64`` or ISO text, statuses the canonical words of
:data:`AGREEMENT_STATES` and :data:`PRINCIPAL_STATES`.

Whether a suspended pharmacy still counts is the policy's choice (``Policy.suspended_serve``,
default False); a terminated one never counts and a not-judged one always does (the data cannot
remove it). :func:`serves` is the one test every count and walk search of :mod:`planning.assess` uses,
so coverage, R1/R2, the saturation counts and the B1 circles all follow it: a suspended site blocks B1
exactly when it counts as serving.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from planning.policy import Policy, Rule
from planning.text import Text

SETTLING, SUSPENDED, TERMINATED, NOT_JUDGED = "settling", "suspended", "terminated", "not_judged"
#: Settlement statuses, from the one that serves to the ones that do not, then the unknown one.
STATUSES = (SETTLING, SUSPENDED, TERMINATED, NOT_JUDGED)
STATUS_LABELS: dict[str, Text] = {
    SETTLING: Text("正常结算", "settling"),
    SUSPENDED: Text("暂停结算", "suspended"),
    TERMINATED: Text("已解除协议", "terminated"),
    NOT_JUDGED: Text("结算状态未判定", "status not judged"),
}

#: Deadlines of HN-2025 (十): information system accepted, traceability codes in use (inclusive).
INFO_SYSTEM_DEADLINE = dt.date(2025, 6, 30)
TRACEABILITY_DEADLINE = dt.date(2025, 3, 31)
#: CX-2022 art. 35: a suspension of more than this many days (counting its first day) ends the agreement.
MAX_SUSPENSION_DAYS = 180

SETTLEMENT_RULES: dict[str, Rule] = {r.rule_id: r for r in (
    Rule("ST-info", "HN-2025 (十)", "2025年6月30日前未完成并通过信息系统改造验收的，暂停全部医保结算（含个人账户）直至通过",
         "information-system upgrade not accepted by 2025-06-30: all settlement suspended (personal account included) until accepted"),
    Rule("ST-trace", "HN-2025 (十)", "2025年3月31日前未落实药品追溯码采集的，暂停医保结算直至落实",
         "drug traceability codes not in use by 2025-03-31: settlement suspended until they are"),
    Rule("ST-suspended", "CX-2022 art. 34", "暂停医保协议期间不予结算",
         "no settlement while the agreement is suspended"),
    Rule("ST-180", "CX-2022 art. 35", "暂停协议超过180天的，解除协议",
         "a suspension longer than 180 days terminates the agreement"),
    Rule("ST-twice", "CX-2022 art. 35", "一个协议期内累计2次被暂停协议的，解除协议",
         "a second suspension in one agreement period terminates the agreement"),
    Rule("ST-terminated", "CX-2022 art. 35", "已解除医保协议的药店不再结算",
         "a pharmacy whose agreement is terminated no longer settles"),
    Rule("ST-principal", "WH-2025", "主要负责人医保支付资格被暂停或终止的，暂停其负责药店的医保结算",
         "the principal's payment qualification suspended or terminated: settlement through that person stops"),
)}
TERMINATION_RULES = ("ST-terminated", "ST-180", "ST-twice")

#: The optional pharmacy columns the status reads. Dates: info_system_accepted (信息系统改造验收日期),
#: traceability_accepted (追溯码落实日期), suspension_start / suspension_end (the latest suspension);
#: counts: earlier_suspensions (earlier suspensions in the same agreement period); words:
#: agreement_status (:data:`AGREEMENT_STATES`), principal_status (:data:`PRINCIPAL_STATES`).
#: ``info_system_ready`` (yes/no) stands in for the acceptance date where no date is given.
DATE_COLUMNS = ("info_system_accepted", "traceability_accepted", "suspension_start", "suspension_end")
STATUS_COLUMNS = (*DATE_COLUMNS, "earlier_suspensions", "agreement_status", "principal_status")
AGREEMENT_STATES = (SETTLING, SUSPENDED, TERMINATED)
PRINCIPAL_STATES = ("qualified", "suspended", "terminated")

#: Missing input (key of planning.completeness.RULES_DISABLED_BY) -> the columns any one of which gives it.
STATUS_INPUTS: dict[str, tuple[str, ...]] = {
    "column:info_system_ready": ("info_system_accepted", "info_system_ready"),
    "column:traceability_accepted": ("traceability_accepted",),
    "column:agreement_status": ("agreement_status", "suspension_start"),
    "column:principal_status": ("principal_status",),
}


def missing_status_inputs(columns) -> tuple[str, ...]:
    """The status inputs (keys of :data:`STATUS_INPUTS`) none of whose columns is among ``columns``."""
    present = set(columns)
    return tuple(key for key, options in STATUS_INPUTS.items() if not present & set(options))


def settlement_status(pharmacies: pd.DataFrame, on: dt.date) -> pd.DataFrame:
    """The settlement status of each pharmacy on the date ``on``, aligned with ``pharmacies``' index.

    Columns: ``settlement`` (one of :data:`STATUSES`), ``settlement_rules`` (the deciding rule ids,
    comma-separated; empty for settling / not judged), ``settlement_until`` (ISO date the suspension ends,
    None where open or unknown), ``settlement_not_judged`` (rule ids the data cannot decide for that row).
    """
    day = pd.Timestamp(on)
    n = len(pharmacies)
    index = pharmacies.index
    terminated: dict[str, np.ndarray] = {}
    suspended: dict[str, tuple[np.ndarray, pd.Series]] = {}  # rule -> (mask, until: datetime64, NaT open)
    unknown: dict[str, np.ndarray] = {}
    never = pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")

    def dates(column: str) -> pd.Series | None:
        if column not in pharmacies.columns:
            return None
        return pd.to_datetime(pharmacies[column], errors="coerce").dt.tz_localize(None).astype("datetime64[ns]")

    def words(column: str) -> pd.Series | None:
        if column not in pharmacies.columns:
            return None
        return pharmacies[column].map(lambda v: v.strip().lower() if isinstance(v, str) else None)

    # HN-2025 (十): acceptance by a deadline; until the acceptance date when it is later than the day.
    for rule, column, fallback, deadline in (("ST-info", "info_system_accepted", "info_system_ready",
                                              INFO_SYSTEM_DEADLINE),
                                             ("ST-trace", "traceability_accepted", None, TRACEABILITY_DEADLINE)):
        accepted_on = dates(column)
        known, accepted, until = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), never
        if fallback is not None and fallback in pharmacies.columns:  # yes/no: no date, no "until"
            ready = pd.array(pharmacies[fallback], dtype="boolean")
            known = ~np.asarray(ready.isna(), dtype=bool)
            accepted = ready.fillna(False).to_numpy(dtype=bool)
        if accepted_on is not None:  # a date, where given, says more than yes/no
            dated = accepted_on.notna().to_numpy()
            known = known | dated
            accepted = np.where(dated, (accepted_on <= day).to_numpy(), accepted)
            until = accepted_on.where(accepted_on > day)
        if day.date() <= deadline:
            continue  # before the deadline this rule suspends nobody, whatever the data
        suspended[rule] = (known & ~accepted, until)
        unknown[rule] = ~known

    # CX-2022 art. 34-35: the agreement and its latest suspension.
    state = words("agreement_status")
    start, end = dates("suspension_start"), dates("suspension_end")
    if state is None and start is None:
        for rule in ("ST-suspended", "ST-terminated", "ST-180", "ST-twice"):
            unknown[rule] = np.ones(n, dtype=bool)
    else:
        state_known = state.isin(AGREEMENT_STATES).to_numpy() if state is not None else np.zeros(n, dtype=bool)
        said_terminated = (state == TERMINATED).to_numpy() if state is not None else np.zeros(n, dtype=bool)
        said_suspended = (state == SUSPENDED).to_numpy() if state is not None else np.zeros(n, dtype=bool)
        started = (start <= day).to_numpy() if start is not None else np.zeros(n, dtype=bool)
        end = end if end is not None else never
        running = started & (end.isna() | (end >= day)).to_numpy()
        in_suspension = said_suspended | running
        terminated["ST-terminated"] = said_terminated
        # days suspended by ``day``, its first day counted: day 180 is still a suspension, day 181 is not
        last = end.where(end.notna() & (end < day), day) if start is not None else never
        days = ((last - start).dt.days + 1).to_numpy() if start is not None else np.zeros(n)
        terminated["ST-180"] = started & (np.nan_to_num(days, nan=0) > MAX_SUSPENSION_DAYS)
        if "earlier_suspensions" in pharmacies.columns:
            earlier = pd.to_numeric(pharmacies["earlier_suspensions"], errors="coerce")
            terminated["ST-twice"] = (in_suspension | started) & (earlier.fillna(0) >= 1).to_numpy()
            unknown["ST-twice"] = (in_suspension | started) & earlier.isna().to_numpy()
        else:
            unknown["ST-twice"] = in_suspension | started
        suspended["ST-suspended"] = (in_suspension, end.where(pd.Series(running, index=index)))
        unknown["ST-suspended"] = ~(state_known | (start.notna().to_numpy() if start is not None else False))

    # WH-2025: the principal's payment qualification.
    principal = words("principal_status")
    if principal is None:
        unknown["ST-principal"] = np.ones(n, dtype=bool)
    else:
        suspended["ST-principal"] = (principal.isin(("suspended", "terminated")).to_numpy(), never)
        unknown["ST-principal"] = ~principal.isin(PRINCIPAL_STATES).to_numpy()

    status, rules_hit, until_out, not_judged = [], [], [], []
    for i in range(n):
        ended = [r for r in TERMINATION_RULES if r in terminated and terminated[r][i]]
        holding = [r for r, (mask, _) in suspended.items() if mask[i]]
        open_rules = [r for r, mask in unknown.items() if mask[i] and r not in ended and r not in holding]
        if ended:
            status.append(TERMINATED)
            rules_hit.append(",".join(ended))
            until_out.append(None)
        elif holding:
            ends = [suspended[r][1].iloc[i] for r in holding]
            status.append(SUSPENDED)
            rules_hit.append(",".join(holding))
            until_out.append(None if any(pd.isna(e) for e in ends) else max(ends).date().isoformat())
        else:
            status.append(NOT_JUDGED if open_rules else SETTLING)
            rules_hit.append("")
            until_out.append(None)
        not_judged.append(",".join(open_rules))
    return pd.DataFrame({"settlement": status, "settlement_rules": rules_hit, "settlement_until": until_out,
                         "settlement_not_judged": not_judged}, index=index)


def serves(pharmacies: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Which pharmacies count as serving under ``policy``: not terminated, and not suspended unless
    ``policy.suspended_serve``; settling and not-judged ones serve. Without a ``settlement`` column
    (a table not from :func:`planning.assess.locate_pharmacies`) every pharmacy serves."""
    if "settlement" not in pharmacies.columns:
        return np.ones(len(pharmacies), dtype=bool)
    status = pharmacies["settlement"].to_numpy()
    out = status != TERMINATED
    if not policy.suspended_serve:
        out &= status != SUSPENDED
    return out


def status_text(status: str, rule_ids: str = "", until: str | None = None) -> Text:
    """One pharmacy's status in words: "暂停结算（ST-info，至 2026-01-31）" / "suspended (ST-info, until ...)"."""
    label = STATUS_LABELS.get(status, Text(str(status), str(status)))
    bits_zh, bits_en = [], []
    if rule_ids:
        bits_zh.append(rule_ids.replace(",", "、"))
        bits_en.append(rule_ids.replace(",", ", "))
    if status == SUSPENDED:
        bits_zh.append(f"至 {until}" if until else "期限未定")
        bits_en.append(f"until {until}" if until else "open-ended")
    if not bits_zh:
        return label
    return Text(f"{label.zh}（{'，'.join(bits_zh)}）", f"{label.en} ({'; '.join(bits_en)})")



#: The requirement columns :func:`suspension_notes` reads: rule id -> (outcome column of the area table,
#: column of the pharmacies table naming the area).
_REQUIREMENT_AREAS = {"R1": ("r1_ok", "subdistrict_code"), "R2": ("r2_ok", "county_code")}


def status_counts(pharmacies: pd.DataFrame) -> dict[str, int]:
    """How many pharmacies have each status (every key of :data:`STATUSES`, zeros included)."""
    found = pharmacies["settlement"].value_counts() if "settlement" in pharmacies.columns else pd.Series(dtype=int)
    return {status: int(found.get(status, 0)) for status in STATUSES}


def suspension_notes(areas: pd.DataFrame, pharmacies: pd.DataFrame, service_value: str, rule: str,
                     policy: Policy) -> list[Text]:
    """What suspended pharmacies change for requirement ``rule`` ("R1" per sub-district, "R2" per county) of
    one service: with ``policy.suspended_serve`` the areas where it passes only through suspended
    pharmacies ("R1 passes only through 1 suspended pharmacy: 望月街道 (…)"); without, the failing areas
    whose holders of the service are suspended, named with their rules. ``areas`` is an assessment's
    sub-district or county table (columns ``code``, ``name``, ``service``, ``pharmacies``, ``suspended`` and
    the rule's outcome), ``pharmacies`` its pharmacy table."""
    outcome, area_column = _REQUIREMENT_AREAS[rule]
    rows = areas[(areas["service"] == service_value) & (areas["suspended"] > 0)]
    if policy.suspended_serve:
        rows = rows[rows[outcome].eq(True).fillna(False).to_numpy(dtype=bool)
                    & (rows["pharmacies"] == rows["suspended"]).to_numpy()]
    else:
        rows = rows[rows[outcome].eq(False).fillna(False).to_numpy(dtype=bool)]
    held = pharmacies[(pharmacies.get("settlement") == SUSPENDED) & pharmacies[service_value].astype(bool)]
    notes = []
    for row in rows.itertuples(index=False):
        mine = held[held[area_column] == row.code]
        names_zh = "、".join(f"{p.name}（{p.settlement_rules.replace(',', '、')}）" for p in mine.itertuples())
        names_en = "; ".join(f"{p.name} ({p.settlement_rules.replace(',', ', ')})" for p in mine.itertuples())
        n = len(mine)
        if policy.suspended_serve:
            notes.append(Text(f"{rule} 仅靠 {n} 家暂停结算的药店满足：{row.name}（{names_zh}）",
                              f"{rule} passes only through {n} suspended pharmac{'y' if n == 1 else 'ies'}: "
                              f"{row.name} ({names_en})"))
        else:
            notes.append(Text(f"{rule} 不满足：{row.name} 的该业务药店均暂停结算，不计入（{names_zh}）",
                              f"{rule} fails: {row.name}'s pharmacies of this service are suspended and do not "
                              f"count ({names_en})"))
    return notes


def status_summary(pharmacies: pd.DataFrame, policy: Policy) -> Text:
    """One line: the day, how many pharmacies have each status, and whether suspended ones count."""
    counts = status_counts(pharmacies)
    day = policy.on.isoformat()
    zh = "、".join(f"{STATUS_LABELS[s].zh} {n}" for s, n in counts.items())
    en = " · ".join(f"{STATUS_LABELS[s].en} {n}" for s, n in counts.items())
    if policy.suspended_serve:
        return Text(f"结算状态（{day}）：{zh}；暂停结算的药店计入覆盖与配置要求",
                    f"settlement status on {day}: {en}; suspended pharmacies count for coverage and the requirements")
    return Text(f"结算状态（{day}）：{zh}；暂停结算的药店不计入覆盖与配置要求",
                f"settlement status on {day}: {en}; suspended pharmacies do not count for coverage and the requirements")
