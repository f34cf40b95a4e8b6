"""Designation check: may a pharmacy at this location be designated for these services, and by which rule?

For each requested service the verdict is one of

- ``blocked``: a block rule applies and no gap rule (R1-R3) pleads for the spot; B3 (fund deficit) and
  B5 (information system) block whatever gap exists;
- ``review``: a soft block (B1, B2, B4) meets a gap rule; the bureau decides (POLICY.md, exceptions);
- ``priority``: a gap rule applies and nothing blocks;
- ``allowed``: neither.

Each :class:`Finding` carries its rule id, citation and the numbers behind it (nearest same-service
pharmacy and its walk time, the area's class and measure, the county's fund status). The applicant's
own record gives the CX-2022 art. 8 (conditions) and art. 13 (exclusions, with their date windows)
findings; existing pharmacies get MDJ-2025 art. 15-18 and CX-2022 art. 34-35 flags.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields, replace

import geopandas as gpd
import numpy as np
import pandas as pd

from planning import rules
from planning.assess import Assessment
from planning.completeness import label as completeness_label
from planning.errors import ParameterError
from planning.model import Service
from planning.network import Snap
from planning.policy import RULES
from planning.text import Text


@dataclass(frozen=True)
class Finding:
    """One rule applied to one case: ``outcome`` is block / priority / fail / pass / info / not_judged."""

    rule_id: str
    citation: str
    outcome: str
    message_zh: str
    message_en: str
    numbers: dict = field(default_factory=dict)

    def message(self, lang: str = "zh") -> str:
        return Text(self.message_zh, self.message_en).get(lang)


@dataclass(frozen=True)
class ServiceVerdict:
    """The verdict for one service at one location, with every finding behind it."""

    service: Service
    verdict: str
    findings: tuple[Finding, ...]

    @property
    def rule_ids(self) -> list[str]:
        return [f.rule_id for f in self.findings if f.outcome in ("block", "priority")]


@dataclass(frozen=True)
class Applicant:
    """What the applicant's file says (CX-2022 art. 8 and 13). ``None`` means not provided.

    Dates are ``datetime.date``; durations are months; counts are persons.
    """

    months_operating: int | None = None
    licensed_pharmacists: int | None = None
    pharmacist_contract_months: int | None = None
    insurance_administrators: int | None = None
    administrator_contract_months: int | None = None
    info_system_ready: bool | None = None
    unpaid_penalties: bool = False
    application_fraud_dates: tuple[dt.date, ...] = ()
    violation_termination_dates: tuple[dt.date, ...] = ()
    breach_termination_dates: tuple[dt.date, ...] = ()
    principal_termination_dates: tuple[dt.date, ...] = ()
    on_dishonest_list: bool = False

    def __post_init__(self) -> None:
        """Each value of the type its field needs: a :class:`ParameterError` naming the field otherwise
        (a JSON file may hold "12" where 12 belongs)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_dates"):
                ok = isinstance(value, tuple) and all(isinstance(d, dt.date) for d in value)
                wanted = ("日期列表（YYYY-MM-DD）", "a list of dates (YYYY-MM-DD)")
            elif f.name in _APPLICANT_FLAGS:
                ok = isinstance(value, bool) or (value is None and f.name == "info_system_ready")
                wanted = ("true 或 false", "true or false")
            else:
                ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
                wanted = ("不小于 0 的整数", "a whole number >= 0")
            if not ok:
                raise ParameterError(f"申请人信息“{f.name}”应为{wanted[0]}，而不是 {value!r}",
                                     f"applicant field '{f.name}' must be {wanted[1]}, not {value!r}")


#: Applicant fields that are yes/no.
_APPLICANT_FLAGS = frozenset({"info_system_ready", "unpaid_penalties", "on_dishonest_list"})


@dataclass(frozen=True)
class DesignationCheck:
    """Result of :func:`check_location`: where the point fell and one verdict per requested service."""

    lon: float
    lat: float
    subdistrict_code: str | None
    subdistrict_name: str | None
    county_code: str | None
    snap_m: float
    on_network: bool
    verdicts: dict[Service, ServiceVerdict]
    applicant_findings: tuple[Finding, ...]

    @property
    def applicant_eligible(self) -> bool | None:
        """False when a CX-2022 condition fails or an exclusion applies; None without an applicant file."""
        if not self.applicant_findings:
            return None
        return not any(f.outcome in ("fail", "block") for f in self.applicant_findings)

    def table(self, lang: str = "zh") -> pd.DataFrame:
        """One row per finding: service, verdict, rule, citation, outcome, message."""
        rows = [
            {"service": v.service.label(lang), "verdict": v.verdict, "rule": f.rule_id, "citation": f.citation,
             "outcome": f.outcome, "message": f.message(lang)}
            for v in self.verdicts.values() for f in v.findings
        ]
        rows += [{"service": "", "verdict": "", "rule": f.rule_id, "citation": f.citation, "outcome": f.outcome,
                  "message": f.message(lang)} for f in self.applicant_findings]
        return pd.DataFrame(rows, columns=["service", "verdict", "rule", "citation", "outcome", "message"])


@dataclass(frozen=True, eq=False)
class PlaceReading:
    """The rules read at n points for one service (:func:`read_places`): their facts, the flags of every
    rule (:func:`planning.rules.rule_flags`), the verdict, and the walk to the nearest same-service site."""

    service: Service
    facts: rules.PlaceFacts
    flags: dict[str, np.ndarray]
    verdict: np.ndarray  # str, one of planning.rules.VERDICTS
    walk_minutes: np.ndarray  # float: to the nearest same-service site, inf where none is reached
    nearest_site: np.ndarray  # int: position in assessment.access[service].site_ids, -1 where none

    def rule_ids(self) -> list[list[str]]:
        """Per point, the block and gap rule ids that hit it."""
        return rules.fired(self.flags)


def read_places(assessment: Assessment, service: Service | str, snap: Snap, lon, lat, *,
                applicant_not_ready: bool = False) -> PlaceReading:
    """Read the rules at points for one service, vectorised: the one path behind :func:`check_location`
    (one clicked point) and site suggestion (many candidates).

    ``snap``: the points snapped to the network (walk times, B1); ``lon``/``lat``: where they stand
    (WGS84 degrees), which decides their sub-district and county and whether they lie in uncovered
    residential area (R3, the cell of the assessment grid holding the point). ``applicant_not_ready``:
    the applicant has not finished the information-system upgrade (B5).
    """
    service = Service(service)
    policy = assessment.policy
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    access = assessment.access[service]
    minutes, site = access.point_minutes(snap)
    inside = np.isfinite(minutes) & (minutes <= policy.walk_minutes)
    subdistrict, county = assessment.areas_at(lon, lat)
    x, y = assessment.network.from_lonlat.transform(lon, lat)
    uncovered = assessment.rasters.at_points(assessment.rasters.uncovered_mask(service), np.column_stack([x, y]))
    facts = rules.PlaceFacts(subdistrict=subdistrict, county=county, inside_circle=inside,
                             uncovered_residential=uncovered, applicant_not_ready=applicant_not_ready,
                             unjudged=_unjudged(assessment, access, snap, subdistrict))
    area = assessment.area_facts(service)
    flags = rules.rule_flags(area, facts, policy)
    missing = rules.missing_input(area, flags, county)  # a rule that could block or plead here is unknown
    if missing.any():
        reason = facts.unjudged.copy()
        reason[np.equal(reason, None) & missing] = "missing_input"
        facts = replace(facts, unjudged=reason)
    return PlaceReading(service=service, facts=facts, flags=flags, verdict=rules.verdicts(flags, facts.unjudged),
                        walk_minutes=minutes, nearest_site=site)


def _unjudged(assessment: Assessment, access, snap: Snap, subdistrict: np.ndarray) -> np.ndarray:
    """Why each point cannot be judged (a key of :data:`planning.rules.UNJUDGED_REASONS`), None where it can:
    off the network, outside every sub-district, or on a network piece holding none of the service's sites
    while other pieces do."""
    network = assessment.network
    reason = np.full(len(snap), None, dtype=object)
    site_pieces = network.components[network.edge_u[access.sites.edge[access.sites.on_network]]]
    if len(site_pieces):
        on = np.flatnonzero(snap.on_network)
        piece = network.components[network.edge_u[snap.edge[on]]]
        reason[on[~np.isin(piece, site_pieces)]] = "no_site_on_piece"
    reason[np.asarray(subdistrict) < 0] = "outside_region"
    reason[~np.asarray(snap.on_network, dtype=bool)] = "off_network"
    return reason


def validate_point(lon: float, lat: float) -> None:
    """Raise ParameterError unless ``lon``/``lat`` are finite WGS84 degrees, lon in [-180, 180], lat in [-90, 90]."""
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"坐标不是数字：{lon!r}, {lat!r}", f"coordinates are not numbers: {lon!r}, {lat!r}") from exc
    if not (np.isfinite(lon) and np.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ParameterError(f"坐标不可能存在：经度 {lon}（应在 -180 至 180）、纬度 {lat}（应在 -90 至 90）",
                             f"impossible point: lon {lon} (must be -180..180), lat {lat} (must be -90..90), finite")


def check_location(
    assessment: Assessment,
    lon: float,
    lat: float,
    services: list[Service | str] | tuple[Service | str, ...],
    *,
    applicant: Applicant | None = None,
    on: dt.date | None = None,
) -> DesignationCheck:
    """Check a candidate location (WGS84 longitude/latitude, degrees) for ``services``.

    Convert GCJ-02 / BD-09 coordinates first (:mod:`planning.coords`). ``on`` is the application
    date for the CX-2022 date windows (default today). The verdicts come from :func:`read_places`, the
    rules of :mod:`planning.rules` that the zone map applies cell by cell.
    """
    validate_point(lon, lat)
    network = assessment.network
    snap = network.snap_lonlat([lon], [lat], max_snap_m=assessment.policy.max_snap_m)
    sd_row, county_row = assessment.locate(lon, lat)
    not_ready = applicant is not None and applicant.info_system_ready is False
    verdicts = {}
    for service in map(Service, services):
        reading = read_places(assessment, service, snap, [lon], [lat], applicant_not_ready=not_ready)
        findings = _location_findings(assessment, reading, snap, sd_row, county_row)
        verdicts[service] = ServiceVerdict(service, str(reading.verdict[0]), tuple(findings))
    applicant_findings = tuple(applicant_checks(applicant, on or dt.date.today())) if applicant else ()
    return DesignationCheck(
        lon=float(lon), lat=float(lat),
        subdistrict_code=sd_row["code"] if sd_row is not None else None,
        subdistrict_name=sd_row["name"] if sd_row is not None else None,
        county_code=county_row["code"] if county_row is not None else None,
        snap_m=float(snap.access_m[0]), on_network=bool(snap.on_network[0]),
        verdicts=verdicts, applicant_findings=applicant_findings,
    )


def _location_findings(assessment: Assessment, reading: PlaceReading, snap: Snap, sd_row: dict | None,
                       county_row: dict | None) -> list[Finding]:
    """The findings of one point: notes on where it stands, then one finding per rule that hit it, with
    the numbers behind it (texts here, rules in :mod:`planning.rules`)."""
    policy = assessment.policy
    service = reading.service
    access = assessment.access[service]
    minutes, site = float(reading.walk_minutes[0]), int(reading.nearest_site[0])
    nearest_id = str(access.site_ids[site]) if site >= 0 else None
    nearest_name = assessment.pharmacy_name(nearest_id) if nearest_id else None
    nearest = {"nearest_pharmacy_id": nearest_id, "nearest_pharmacy_name": nearest_name,
               "walk_minutes": round(minutes, 2) if np.isfinite(minutes) else None,
               "budget_minutes": policy.walk_minutes}
    pharmacy = Text(f"{nearest_name}（{nearest_id}）" if nearest_name else str(nearest_id),
                    f"{nearest_name} ({nearest_id})" if nearest_name else str(nearest_id))
    findings: list[Finding] = []
    reason = reading.facts.unjudged[0] if reading.facts.unjudged is not None else None
    if reason is not None:
        why = rules.UNJUDGED_REASONS[reason]
        findings.append(_finding("—", "not_judged", why.zh, why.en,
                                 {"reason": reason, "snap_m": round(float(snap.access_m[0]), 1)}))
    row = overall = numbers = None
    if sd_row is not None:
        row = assessment.subdistrict_row(sd_row["code"], service)
        overall = assessment.subdistrict_row(sd_row["code"], Service.PERSONAL_ACCOUNT)
        numbers = {"subdistrict": sd_row["code"], "class": row["class"], "class_reason": row["class_reason"],
                   "per_10k": round(float(row["per_10k"]), 3), "covered_share": round(float(row["covered_share"]), 4)}
    county = assessment.county_row(county_row["code"], service) if county_row is not None else None
    for rule, inputs in assessment.unjudged(service).items():
        missing = Text("、".join(completeness_label(k, "zh") for k in inputs),
                       ", ".join(completeness_label(k, "en") for k in inputs))
        findings.append(_finding(rule, "not_judged", f"{rule} 未判定：缺少{missing.zh}",
                                 f"{rule} not judged: missing {missing.en}", {"missing": list(inputs)}))
    for rule in reading.rule_ids()[0]:
        if rule == "B1":
            findings.append(_finding("B1", "block",
                                     f"位于同类型定点药店{pharmacy.zh}的步行 {minutes:.1f} 分钟范围内（≤{policy.walk_minutes:g} 分钟）",
                                     f"{minutes:.1f} min walk from same-service pharmacy {pharmacy.en} "
                                     f"(<= {policy.walk_minutes:g} min circle)", nearest))
        elif rule == "B2":
            which = row if row["class"] == "saturated" else overall
            findings.append(_finding("B2", "block", f"{sd_row['name']}为相对饱和区域（{which['class_reason_zh']}）",
                                     f"{sd_row['name']} is saturated ({which['class_reason']})", numbers))
        elif rule == "B3":
            findings.append(_finding("B3", "block", f"{county['name']}职工医保基金当期亏损，不得新增定点药店",
                                     f"{county['name']}'s employee fund ran a current-period deficit",
                                     {"county": county["code"]}))
        elif rule == "B4":
            findings.append(_finding("B4", "block", f"{county['name']}基金运行承压，总量平衡，仅在有退出时审慎新增",
                                     f"{county['name']} keeps its total balanced (deficit forecast or warning letter)",
                                     {"county": county["code"]}))
        elif rule == "B5":
            findings.append(_finding("B5", "block", "申请药店尚未完成医保信息系统改造，不得新增定点",
                                     "the applicant has not finished the information-system upgrade"))
        elif rule == "R1":
            findings.append(_finding("R1", "priority", f"{sd_row['name']}尚无{service.label_zh}定点药店（R1 缺口）",
                                     f"{sd_row['name']} has no {service.label_en} pharmacy (R1 shortfall)", numbers))
        elif rule == "R2":
            findings.append(_finding("R2", "priority", f"{county['name']}尚无“双通道”定点药店（R2 缺口）",
                                     f"{county['name']} has no dual-channel pharmacy (R2 shortfall)",
                                     {"county": county["code"]}))
        elif rule == "R3":
            label = rules.CLASS_LABELS[row["class"]]
            findings.append(_finding("R3", "priority",
                                     f"{sd_row['name']}该业务为{label.zh}区域，该点位于未覆盖居住区，且不在任何同类型服务圈内",
                                     f"{sd_row['name']} is {label.en} for this service and the point lies in uncovered "
                                     f"residential area outside every same-service circle", {**numbers, **nearest}))
    return findings


def applicant_checks(applicant: Applicant, on: dt.date) -> list[Finding]:
    """CX-2022 art. 8 conditions and art. 13 exclusions for one applicant, as of date ``on``."""
    out: list[Finding] = []

    def condition(ok: bool | None, zh: str, en: str, numbers: dict) -> None:
        if ok is None:
            out.append(Finding("CX-8", "CX-2022 art. 8", "info", f"未提供：{zh}", f"not provided: {en}", numbers))
        else:
            out.append(Finding("CX-8", "CX-2022 art. 8", "pass" if ok else "fail", zh, en, numbers))

    a = applicant
    condition(None if a.months_operating is None else a.months_operating >= 3,
              f"在注册地址正式经营满3个月（实际 {a.months_operating} 个月）",
              f">= 3 months operating at the registered address (has {a.months_operating})",
              {"months_operating": a.months_operating})
    condition(None if a.licensed_pharmacists is None else
              a.licensed_pharmacists >= 1 and (a.pharmacist_contract_months or 0) >= 12,
              f"至少1名执业药师且劳动合同≥1年（{a.licensed_pharmacists} 名，合同 {a.pharmacist_contract_months} 个月）",
              f">= 1 licensed pharmacist with a >= 1-year contract ({a.licensed_pharmacists}, "
              f"{a.pharmacist_contract_months} months)", {"licensed_pharmacists": a.licensed_pharmacists})
    condition(None if a.insurance_administrators is None else
              a.insurance_administrators >= 2 and (a.administrator_contract_months or 0) >= 12,
              f"至少2名医保管理人员且劳动合同≥1年（{a.insurance_administrators} 名）",
              f">= 2 insurance administrators with >= 1-year contracts ({a.insurance_administrators})",
              {"insurance_administrators": a.insurance_administrators})
    condition(a.info_system_ready, "医保信息系统已按要求对接", "information system connected as required", {})

    def within(dates: tuple[dt.date, ...], years: int) -> list[dt.date]:
        start = _years_before(on, years)
        return sorted(d for d in dates if start <= d <= on)

    exclusions = [
        (a.unpaid_penalties, "存在应缴未缴的违约金或罚款", "unpaid penalties outstanding", {}),
        (within(a.application_fraud_dates, 3), "3年内在申请定点中存在弄虚作假", "fraud in an application within 3 years", 3),
        (within(a.violation_termination_dates, 3), "3年内因违法违规被解除医保协议", "terminated for violations within 3 years", 3),
        (within(a.breach_termination_dates, 1), "1年内因严重违反协议被解除协议", "terminated for serious breach within 1 year", 1),
        (within(a.principal_termination_dates, 5), "法定代表人、主要负责人或实际控制人5年内曾造成定点机构被解除协议",
         "the legal representative / principal / controller caused a termination within 5 years", 5),
        (a.on_dishonest_list, "被列入失信人名单", "on the dishonest-persons list", {}),
    ]
    for hit, zh, en, window in exclusions:
        numbers = {"dates": [d.isoformat() for d in hit]} if isinstance(hit, list) else {}
        if isinstance(window, int):
            numbers["window_years"] = window
        out.append(Finding("CX-13", "CX-2022 art. 13(二)", "block" if hit else "pass",
                           ("不予受理：" if hit else "无此情形：") + zh,
                           ("not accepted: " if hit else "none: ") + en, numbers))
    return out


def pharmacy_flags(pharmacies: gpd.GeoDataFrame, on: dt.date | None = None) -> pd.DataFrame:
    """Review flags for existing pharmacies, where the columns exist (missing columns give no flag).

    - ``risk_class`` A/B/C (MDJ-2025 art. 18): A personal-account only; B chain; C single store.
    - ``rereview_due`` (art. 15): ``last_review_date`` older than 2 years.
    - ``natural_exit`` (art. 16): no insurance business in the year (``annual_volume_yuan`` == 0; blank: no flag).
    - ``termination_trigger`` (CX-2022 art. 34-35): ``suspensions`` >= 2 in the agreement period, or a
      suspension longer than 180 days (``longest_suspension_days``).
    """
    on = on or dt.date.today()
    services = [s.value for s in Service if s is not Service.PERSONAL_ACCOUNT]
    account_only = pharmacies[Service.PERSONAL_ACCOUNT.value].astype(bool) & ~pharmacies[services].any(axis=1)
    risk = np.where(account_only, "A", np.where(pharmacies["chain"].astype(bool), "B", "C"))
    flags = pd.DataFrame({"pharmacy_id": pharmacies["pharmacy_id"].to_numpy(), "risk_class": risk,
                          "risk_rule": "MDJ-2025 art. 18"}, index=pharmacies.index)
    if "last_review_date" in pharmacies.columns:
        last = pd.to_datetime(pharmacies["last_review_date"], errors="coerce").dt.date
        flags["rereview_due"] = last.map(lambda d: d is pd.NaT or d is None or d < _years_before(on, 2))
    if "annual_volume_yuan" in pharmacies.columns:
        volume = pharmacies["annual_volume_yuan"]
        flags["natural_exit"] = volume.notna() & (volume <= 0)  # a blank volume is unknown, not zero
    trigger = pd.Series(False, index=pharmacies.index)
    if "suspensions" in pharmacies.columns:
        trigger |= pharmacies["suspensions"].fillna(0) >= 2
    if "longest_suspension_days" in pharmacies.columns:
        trigger |= pharmacies["longest_suspension_days"].fillna(0) > 180
    if {"suspensions", "longest_suspension_days"} & set(pharmacies.columns):
        flags["termination_trigger"] = trigger
    return flags


def _finding(rule_id: str, outcome: str, zh: str, en: str, numbers: dict | None = None) -> Finding:
    citation = RULES[rule_id].citation if rule_id in RULES else ""
    return Finding(rule_id, citation, outcome, zh, en, numbers or {})


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)
