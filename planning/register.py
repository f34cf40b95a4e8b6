"""Application register (申请台账): designation applications, their stages and CX-2022 deadlines.

Each :class:`Application` is frozen state: who applied, where (WGS84 lon/lat, degrees), for which
services, the date received, the stage history (:class:`StageEvent`, one per stage entered, with its
date) and the spatial verdict of the designation check it came from. Everything else is computed by
pure functions of that state and a ``today``:

- :func:`deadlines`: each step's due date in Chinese working days (:mod:`planning.workdays`), the rule
  it rests on (CX-2022 art. 9, 12, 15, 19, 20, 23) and whether the next stage met it;
- :func:`next_deadline` and :func:`is_overdue`;
- :func:`ban_windows`: art. 18 (three months of rectification before a re-evaluation; no new
  application for one year after a second failure) and art. 13's exclusion windows;
- :func:`recheck`: the stored verdict against a given assessment, with the services whose verdict changed.

Stages: 受理 (received), 材料补正 (supplement requested), 评估 (evaluation), 公示 (publication; entered
the day the evaluation passed, its ``published_on`` the day the list went out), 协商 (negotiation),
签约 (signed), 备案 (filed); ends without designation: 不予受理 (not accepted, with the art. 13 rule) and
不合格 (failed evaluation, art. 18). Periods count from the day after the act (民法典 art. 201); month and
year periods end on the corresponding day (art. 202).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace

from planning.errors import ParameterError
from planning.text import Text
from planning.workdays import WorkdayDate, add_workdays, workdays_between

#: Citation of each register rule id (same style as planning.screening's CX-8 / CX-13 findings).
CITATIONS: dict[str, str] = {
    "CX-9": "CX-2022 art. 9",
    "CX-12": "CX-2022 art. 12",
    "CX-13": "CX-2022 art. 13(二)",
    "CX-15": "CX-2022 art. 15",
    "CX-18": "CX-2022 art. 18",
    "CX-19": "CX-2022 art. 19",
    "CX-20": "CX-2022 art. 20",
    "CX-22": "CX-2022 art. 22",
    "CX-23": "CX-2022 art. 23",
}
#: Working days of each time limit, by rule id (CX-2022; /work/shared/seeds, 楚医保〔2022〕10号).
MATERIALS_WORKDAYS = 5        # art. 12: sign off complete materials or one notice to supplement
SUPPLEMENT_WORKDAYS = 5       # art. 12: the applicant hands in what is missing, else the application lapses
EVALUATION_WORKDAYS = 15      # art. 15: from receipt, supplement time not counted
PUBLICATION_WORKDAYS = 3      # art. 19: the list of passed applicants published
NOTICE_WORKDAYS = 7           # art. 19: notice period, the publication day the first when a working day
NEGOTIATION_WORKDAYS = 10     # art. 20: negotiation offered after the notice period
FILING_WORKDAYS = 5           # art. 23: signing filed with the administrative department
PAYMENT_CATEGORY_WORKDAYS = 10  # art. 9: an added payment category opened
REEVALUATION_MONTHS = 3       # art. 18: rectification before a re-evaluation
SECOND_FAILURE_BAN_YEARS = 1  # art. 18: no new application after failing again


class Stage(enum.Enum):
    RECEIVED = "受理"
    SUPPLEMENT = "材料补正"
    EVALUATION = "评估"
    PUBLICATION = "公示"
    NEGOTIATION = "协商"
    SIGNED = "签约"
    FILED = "备案"
    NOT_ACCEPTED = "不予受理"
    FAILED = "不合格"

    def label(self, lang: str = "zh") -> str:
        return STAGE_LABELS[self].get(lang)


STAGE_LABELS: dict[Stage, Text] = {
    Stage.RECEIVED: Text("受理", "received"),
    Stage.SUPPLEMENT: Text("材料补正", "materials to supplement"),
    Stage.EVALUATION: Text("评估", "evaluation"),
    Stage.PUBLICATION: Text("公示", "publication"),
    Stage.NEGOTIATION: Text("协商", "negotiation"),
    Stage.SIGNED: Text("签约", "agreement signed"),
    Stage.FILED: Text("备案", "filed"),
    Stage.NOT_ACCEPTED: Text("不予受理", "not accepted"),
    Stage.FAILED: Text("不合格", "failed evaluation"),
}


class Kind(enum.Enum):
    """What is applied for: a new designation (art. 11-23) or a payment category added to one (art. 9)."""

    DESIGNATION = "designation"
    PAYMENT_CATEGORY = "payment_category"


@dataclass(frozen=True)
class StageEvent:
    """A stage entered on day ``on``; ``rule_id`` for 不予受理 / 不合格 (e.g. ``CX-13``); ``published_on``
    only for 公示 (the day the list went out, None until then)."""

    stage: Stage
    on: dt.date
    rule_id: str = ""
    note: str = ""
    published_on: dt.date | None = None


@dataclass(frozen=True)
class StoredVerdict:
    """The designation check's verdict for one service when the application was saved."""

    service: str
    verdict: str
    rule_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Exclusion:
    """An art. 13 exclusion found in the applicant's record: ``since`` the event's date and ``years`` the
    window (fraud, terminations); both None for those lasting until resolved (unpaid penalties, the
    dishonest-persons list)."""

    reason_zh: str
    reason_en: str
    since: dt.date | None = None
    years: int | None = None


@dataclass(frozen=True)
class Application:
    """One application in the register (see the module docstring); lon/lat WGS84 degrees."""

    app_id: str
    applicant: str
    address: str
    lon: float
    lat: float
    services: tuple[str, ...]
    received: dt.date
    history: tuple[StageEvent, ...] = ()
    verdicts: tuple[StoredVerdict, ...] = ()
    checked_on: dt.date | None = None
    exclusions: tuple[Exclusion, ...] = ()
    kind: Kind = Kind.DESIGNATION

    def __post_init__(self) -> None:
        if not self.history:
            object.__setattr__(self, "history", (StageEvent(Stage.RECEIVED, self.received),))
        days = [e.on for e in self.history]
        if days != sorted(days):
            shown = "、".join(d.isoformat() for d in days)
            raise ParameterError(f"申请 {self.app_id} 的阶段日期早于上一阶段：{shown}",
                                 f"application {self.app_id}: a stage dated before the previous one: {shown}")

    @property
    def stage(self) -> StageEvent:
        """The current stage (the last entered)."""
        return self.history[-1]

    def advanced(self, stage: Stage, on: dt.date, *, rule_id: str = "", note: str = "",
                 published_on: dt.date | None = None) -> Application:
        """This application with ``stage`` entered on ``on`` (a new object; this one is unchanged)."""
        return replace(self, history=self.history + (StageEvent(stage, on, rule_id, note, published_on),))

    def published(self, on: dt.date) -> Application:
        """This application with the current 公示 stage's list published on ``on``."""
        if self.stage.stage is not Stage.PUBLICATION:
            raise ParameterError(f"申请 {self.app_id} 当前不在公示阶段（而在{self.stage.stage.value}）",
                                 f"application {self.app_id} is not in publication but in {self.stage.stage.label('en')}")
        return replace(self, history=self.history[:-1] + (replace(self.stage, published_on=on),))


@dataclass(frozen=True)
class Deadline:
    """One step's time limit: ``due`` the last day, ``met_on`` the day the step was done (None: open).
    ``party``: who must act (``bureau`` or ``applicant``); ``assumed_years``: years counted Monday to
    Friday because the holiday calendar does not know them yet."""

    step: Text
    rule_id: str
    due: dt.date
    party: str
    met_on: dt.date | None = None
    assumed_years: tuple[int, ...] = ()

    @property
    def citation(self) -> str:
        return CITATIONS[self.rule_id]

    def overdue(self, today: dt.date) -> bool:
        """Open after its last day, or done late."""
        return (self.met_on or today) > self.due

    def note(self) -> Text | None:
        """Why the due date is an estimate, or None."""
        return WorkdayDate(self.due, self.assumed_years).note()


@dataclass(frozen=True)
class BanWindow:
    """A period in which the applicant may not do ``what`` (first and last day inclusive; ``last`` None:
    until the cause is resolved)."""

    rule_id: str
    what: Text
    first: dt.date
    last: dt.date | None

    def covers(self, day: dt.date) -> bool:
        return self.first <= day and (self.last is None or day <= self.last)


@dataclass(frozen=True)
class VerdictChange:
    """One service's stored verdict against today's."""

    service: str
    before: str
    after: str
    rules_before: tuple[str, ...]
    rules_after: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.before != self.after or set(self.rules_before) != set(self.rules_after)


STEPS = {
    "materials": Text("材料签收或一次性告知补正", "materials signed off or one notice to supplement"),
    "supplement": Text("申请人提交补正材料", "applicant hands in the missing materials"),
    "evaluation": Text("完成评估", "evaluation finished"),
    "publication": Text("公示评估合格名单", "list of passed applicants published"),
    "notice_end": Text("公示期满", "notice period ends"),
    "negotiation": Text("组织协商谈判", "negotiation held"),
    "filing": Text("签约情况备案", "signing filed"),
    "payment_category": Text("开通新增医保支付类别", "added payment category opened"),
}
#: Stages that end an application.
FINAL_STAGES = frozenset({Stage.FILED, Stage.NOT_ACCEPTED, Stage.FAILED})


def deadlines(application: Application) -> tuple[Deadline, ...]:
    """Every time limit the application has reached so far, in order, each with the day it was met.

    Designations: art. 12 (5 working days after receipt; after a notice to supplement, 5 for the
    applicant), art. 15 (15 working days after receipt, the supplement time between the notice and the
    return to 评估 not counted), art. 19 (published within 3 working days of passing; the 7-working-day
    notice period), art. 20 (negotiation within 10 working days after the notice period), art. 23 (filed
    within 5 working days of signing). Art. 22 sets no number for the signing itself ("及时"). A
    re-evaluation after a failure (art. 18) has no time limit in the text and gets none here.
    Payment categories: art. 9 (10 working days from receipt to opening)."""
    events = application.history
    received = application.received
    out: list[Deadline] = []

    def limit(step: str, rule_id: str, due: WorkdayDate, party: str, met_on: dt.date | None) -> None:
        out.append(Deadline(STEPS[step], rule_id, due.day, party, met_on, due.assumed_years))

    def after(index: int) -> StageEvent | None:
        return events[index + 1] if index + 1 < len(events) else None

    if application.kind is Kind.PAYMENT_CATEGORY:
        nxt = after(0)
        limit("payment_category", "CX-9", add_workdays(received, PAYMENT_CATEGORY_WORKDAYS), "bureau",
              nxt.on if nxt else None)
        return tuple(out)
    nxt = after(0)
    limit("materials", "CX-12", add_workdays(received, MATERIALS_WORKDAYS), "bureau", nxt.on if nxt else None)
    if nxt is not None and nxt.stage is Stage.NOT_ACCEPTED:
        return tuple(out)
    first_failure = next((i for i, e in enumerate(events) if e.stage is Stage.FAILED), len(events))
    supplement = next((i for i, e in enumerate(events[:first_failure]) if e.stage is Stage.SUPPLEMENT), None)
    evaluation_start = received
    used = 0  # working days of the evaluation period spent before the notice to supplement
    assumed: tuple[int, ...] = ()
    if supplement is not None:
        notice = events[supplement]
        back = after(supplement)
        limit("supplement", "CX-12", add_workdays(notice.on, SUPPLEMENT_WORKDAYS), "applicant",
              back.on if back else None)
        if back is None or back.stage is not Stage.EVALUATION:
            return tuple(out)  # the evaluation clock stands still until the materials are back
        used, assumed = workdays_between(received, notice.on)
        evaluation_start = back.on
    result = next((e for e in events if e.stage in (Stage.PUBLICATION, Stage.FAILED)), None)
    due = add_workdays(evaluation_start, max(EVALUATION_WORKDAYS - used, 0))
    due = WorkdayDate(due.day, tuple(sorted(set(due.assumed_years) | set(assumed))))
    limit("evaluation", "CX-15", due, "bureau", result.on if result else None)
    publication = next((i for i, e in enumerate(events) if e.stage is Stage.PUBLICATION), None)
    if publication is None:
        return tuple(out)
    passed = events[publication]
    limit("publication", "CX-19", add_workdays(passed.on, PUBLICATION_WORKDAYS), "bureau", passed.published_on)
    if passed.published_on is None:
        return tuple(out)
    # the notice period's first working day is the publication day itself when that is a working day
    notice_end = add_workdays(passed.published_on - dt.timedelta(days=1), NOTICE_WORKDAYS)
    limit("notice_end", "CX-19", notice_end, "period", None)
    negotiation = next((e for e in events[publication:] if e.stage is Stage.NEGOTIATION), None)
    limit("negotiation", "CX-20", add_workdays(notice_end.day, NEGOTIATION_WORKDAYS), "bureau",
          negotiation.on if negotiation else None)
    signed = next((i for i, e in enumerate(events) if e.stage is Stage.SIGNED), None)
    if signed is not None:
        filed = next((e for e in events[signed:] if e.stage is Stage.FILED), None)
        limit("filing", "CX-23", add_workdays(events[signed].on, FILING_WORKDAYS), "bureau",
              filed.on if filed else None)
    return tuple(out)


def next_deadline(application: Application) -> Deadline | None:
    """The first open time limit someone must act on (a notice period's end is not an act), or None."""
    if application.stage.stage in FINAL_STAGES:
        return None
    return next((d for d in deadlines(application) if d.met_on is None and d.party != "period"), None)


def is_overdue(application: Application, today: dt.date) -> bool:
    """True when the next time limit has passed on ``today`` without the step being done."""
    pending = next_deadline(application)
    return pending is not None and pending.overdue(today)


def ban_windows(application: Application) -> tuple[BanWindow, ...]:
    """The periods in which the applicant may not apply again or be re-evaluated:

    - art. 18, first failure: re-evaluation only after 3 months of rectification from the day the result
      was delivered (the 不合格 date): banned from that day to the corresponding day 3 months on;
    - art. 18, a second failure: no new application for 1 year from its delivery: banned from that day to
      the corresponding day a year on;
    - art. 13, an application not accepted: each dated exclusion until the corresponding day its window
      (3, 1 or 5 years) after the event; undated ones (unpaid penalties, dishonest list) until resolved."""
    out: list[BanWindow] = []
    failures = [e for e in application.history if e.stage is Stage.FAILED]
    for number, failure in enumerate(failures):
        if number == 0:
            out.append(BanWindow("CX-18", Text("整改期内不得再次评估", "no re-evaluation during rectification"),
                                 failure.on, add_months(failure.on, REEVALUATION_MONTHS)))
        else:
            out.append(BanWindow("CX-18", Text("再次评估不合格，不得再次申请", "failed again: no new application"),
                                 failure.on, add_months(failure.on, 12 * SECOND_FAILURE_BAN_YEARS)))
    if application.stage.stage is Stage.NOT_ACCEPTED:
        for exclusion in application.exclusions:
            what = Text(f"不予受理：{exclusion.reason_zh}", f"not accepted: {exclusion.reason_en}")
            if exclusion.since is None or exclusion.years is None:
                out.append(BanWindow("CX-13", what, application.stage.on, None))
            else:
                out.append(BanWindow("CX-13", what, application.stage.on,
                                     add_months(exclusion.since, 12 * exclusion.years)))
    return tuple(out)


def banned_on(application: Application, day: dt.date) -> tuple[BanWindow, ...]:
    """The ban windows covering ``day``."""
    return tuple(w for w in ban_windows(application) if w.covers(day))


def add_months(day: dt.date, months: int) -> dt.date:
    """The corresponding day ``months`` calendar months after ``day``; the month's last day when it has
    none (31 January + 1 month = 28/29 February; 民法典 art. 202)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- from and against a check
def from_check(check, *, app_id: str, applicant: str, address: str, received: dt.date,
               kind: Kind = Kind.DESIGNATION) -> Application:
    """A new application (stage 受理 on ``received``) from a :class:`planning.screening.DesignationCheck`:
    its point, services, verdicts with their rule ids, and the applicant record's art. 13 exclusions."""
    verdicts = tuple(StoredVerdict(s.value, v.verdict, tuple(v.rule_ids)) for s, v in check.verdicts.items())
    return Application(app_id=app_id, applicant=applicant, address=address, lon=check.lon, lat=check.lat,
                       services=tuple(v.service for v in verdicts), received=received, verdicts=verdicts,
                       checked_on=received, exclusions=exclusions_of(check.applicant_findings), kind=kind)


def exclusions_of(applicant_findings) -> tuple[Exclusion, ...]:
    """The art. 13 exclusions (CX-13 findings that block) of a check, each with its latest dated event."""
    out = []
    for finding in applicant_findings:
        if finding.rule_id != "CX-13" or finding.outcome != "block":
            continue
        dates = finding.numbers.get("dates") or []
        since = max(dt.date.fromisoformat(d) for d in dates) if dates else None
        out.append(Exclusion(finding.message_zh, finding.message_en, since,
                             finding.numbers.get("window_years") if since else None))
    return tuple(out)


def recheck(application: Application, assessment) -> tuple[VerdictChange, ...]:
    """The stored verdict of each service against :func:`planning.screening.check_location` on
    ``assessment`` at the same point (a service with no stored verdict shows ``before`` empty)."""
    from planning.screening import check_location

    now = check_location(assessment, application.lon, application.lat, list(application.services))
    stored = {v.service: v for v in application.verdicts}
    out = []
    for service, verdict in now.verdicts.items():
        before = stored.get(service.value)
        out.append(VerdictChange(service.value, before.verdict if before else "", verdict.verdict,
                                 before.rule_ids if before else (), tuple(verdict.rule_ids)))
    return tuple(out)
