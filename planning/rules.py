"""The rules, written once: saturation classes, requirements R1-R3, block and gap flags, and the verdict.

Every place that applies a rule calls this module: the assessment tables (classes, R1-R3 per area),
the zone map (one verdict per raster cell), the designation check (one clicked point) and site
suggestion (many candidate points). A policy chooses which rules apply (``Policy.applies``); nothing here
or elsewhere branches on a preset's name.

Areas and places
    An *area* is a sub-district or a county; :class:`AreaFacts` holds, for one service, what the
    assessment tables decided for each area (class, R1/R2 shortfalls, fund status). A *place* is what a
    verdict is asked for: a grid cell, a point. :class:`PlaceFacts` says in which areas each place lies and
    what holds at the place itself (inside a same-service circle, in uncovered residential area).
    :func:`rule_flags` is the one definition of each block and gap rule over those arrays:

    - B1: inside the walk budget of a same-service site (MDJ-2025 art. 10, 14);
    - B2: the sub-district is saturated for the service, or for all designated pharmacies;
    - B3: the county's employee fund ran a current-period deficit; B4: it keeps its total balanced
      (reported where B3 does not already block);
    - B5: the applicant has not finished the information-system upgrade (the applicant's, not the place's);
    - R1 / R2: the street office / county lacks the service (HN-2025 (二));
    - R3: uncovered residential area of a blank or underserved sub-district, outside every same-service
      circle (MDJ-2025 art. 5, 10, 14).

    :func:`verdicts` is the one precedence: ``blocked`` by a hard block (B3, B5) whatever gap exists, or
    by a soft block (B1, B2, B4) with no gap; ``review`` where a soft block meets a gap (the bureau
    decides, POLICY.md); ``priority`` where a gap meets no block; ``allowed`` otherwise.

Outcomes of requirements are tri-state: met (True), failed (False) or not applicable (``pd.NA``) — the
tables store them as pandas' nullable ``boolean`` dtype, and :func:`failed` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from planning.completeness import RULES_DISABLED_BY
from planning.model import Service
from planning.policy import HARD_BLOCKS, Policy, SaturationThresholds
from planning.text import Text

# ---------------------------------------------------------------------- vocabulary of outcomes
#: Saturation classes, from most to least served (rule S).
CLASSES = ("saturated", "balanced", "underserved", "blank")
CLASS_LABELS: dict[str, Text] = {
    "saturated": Text("相对饱和", "saturated"),
    "balanced": Text("均衡", "balanced"),
    "underserved": Text("相对不足", "underserved"),
    "blank": Text("空白", "blank"),
}
#: Classes where R3 gives priority.
WEAK_CLASSES = ("blank", "underserved")
#: Services that get saturation classes (dual channel is planned per county, rule R2).
CLASSIFIED_SERVICES = (Service.PERSONAL_ACCOUNT, Service.OUTPATIENT_POOLING, Service.CHRONIC_DISEASE)
#: The service pair R1 asks of every urban street office (one pharmacy holding both counts for both).
R1_SERVICES = (Service.OUTPATIENT_POOLING, Service.CHRONIC_DISEASE)
#: The service R2 asks of every county.
R2_SERVICE = Service.DUAL_CHANNEL
#: Block rules of a place (B5 is the applicant's) and gap rules, in the order verdicts list them.
BLOCK_RULES = ("B1", "B2", "B3", "B4", "B5")
GAP_RULES = ("R1", "R2", "R3")
SOFT_BLOCKS = tuple(r for r in BLOCK_RULES if r not in HARD_BLOCKS)
#: Rules decided for a whole area (their zone is a union of boundaries), with the level of the area.
AREA_RULES = {"B2": "subdistrict", "R1": "subdistrict", "B3": "county", "B4": "county", "R2": "county"}
#: Verdicts of a place, from the strongest; ``not_judged`` where the data cannot decide (never "allowed").
VERDICTS = ("blocked", "review", "priority", "allowed", "not_judged")
#: Why a place cannot be judged, by reason key (the first that applies is given).
UNJUDGED_REASONS: dict[str, Text] = {
    "off_network": Text("该点距最近可步行道路超过吸附距离，无法判定（请核对坐标及其坐标系：是否为 GCJ-02/BD-09）",
                        "the point is farther than the snap distance from every walkable street: cannot judge "
                        "(check the coordinates and their datum: GCJ-02/BD-09?)"),
    "outside_region": Text("该点不在任何街道/乡镇范围内，无法判定", "the point lies outside every sub-district: cannot judge"),
    "missing_input": Text("缺少判定所需的数据，部分适用规则无法判定（见数据完整性表）",
                          "data needed by some applicable rules is missing: they cannot be judged (see the "
                          "data-completeness table)"),
    "no_site_on_piece": Text("该点所在道路与该业务定点药店所在路网不连通，步行时间无法判定（请核对路网数据）",
                             "the street at the point is not connected to the network holding this service's "
                             "pharmacies: its walk time cannot be judged (check the network data)"),
}


# ---------------------------------------------------------------------- rule S: saturation classes
class Classification(NamedTuple):
    """The class of one area, the measure that decided it (``per_10k`` or ``covered_share``) and why."""

    name: str
    measure: str
    reason: Text


def classify(per_10k: float, covered_share: float, count: int, thresholds: SaturationThresholds) -> Classification:
    """Class of one area from its pharmacies per 10,000 insured residents, its share of residents within
    the walk budget (0-1) and its count of pharmacies of the service.

    Order: blank (no site and almost nobody covered) -> saturated (dense and nearly all covered) ->
    underserved (sparse or too few covered) -> balanced.
    """
    t = thresholds
    if count == 0 and covered_share < t.blank_max_covered_share:
        return Classification("blank", "covered_share", Text(
            f"无该业务药店，且时限内覆盖率 {covered_share:.0%} < {t.blank_max_covered_share:.0%}",
            f"no pharmacy of this service and {covered_share:.0%} covered < {t.blank_max_covered_share:.0%}"))
    if per_10k >= t.saturated_per_10k and covered_share >= t.saturated_min_covered_share:
        return Classification("saturated", "per_10k", Text(
            f"每万人 {per_10k:.2f} 家 ≥ {t.saturated_per_10k:g}，且时限内覆盖率 {covered_share:.0%}",
            f"{per_10k:.2f} per 10,000 >= {t.saturated_per_10k:g} and {covered_share:.0%} covered"))
    if per_10k < t.underserved_per_10k:
        return Classification("underserved", "per_10k", Text(
            f"每万人 {per_10k:.2f} 家 < {t.underserved_per_10k:g}",
            f"{per_10k:.2f} per 10,000 < {t.underserved_per_10k:g}"))
    if covered_share < t.underserved_min_covered_share:
        return Classification("underserved", "covered_share", Text(
            f"时限内覆盖率 {covered_share:.0%} < {t.underserved_min_covered_share:.0%}",
            f"{covered_share:.0%} covered < {t.underserved_min_covered_share:.0%}"))
    return Classification("balanced", "per_10k", Text(
        f"每万人 {per_10k:.2f} 家，介于 [{t.underserved_per_10k:g}, {t.saturated_per_10k:g})",
        f"{per_10k:.2f} per 10,000 within [{t.underserved_per_10k:g}, {t.saturated_per_10k:g})"))


def unjudged_rules(missing, service: Service, policy: Policy) -> dict[str, tuple[str, ...]]:
    """The rules ``policy`` applies that cannot be judged for ``service`` because inputs are missing:
    ``{rule id: the missing inputs}`` (keys of :data:`planning.completeness.RULES_DISABLED_BY`). A missing
    personal-account column also leaves B2 unjudged for every service (its class is the overall one)."""
    service = Service(service)
    found: dict[str, list[str]] = {}
    for key in missing:
        if key.startswith("service:") and key != f"service:{service.value}":
            if key == f"service:{Service.PERSONAL_ACCOUNT.value}":
                found.setdefault("B2", []).append(key)
            continue
        for rule in RULES_DISABLED_BY.get(key, ()):
            found.setdefault(rule.split("-")[0], []).append(key)  # R3-priorities / R3-shares: parts of R3
    return {rule: tuple(dict.fromkeys(keys)) for rule, keys in found.items() if policy.applies(rule)}


def classifies(service: Service, policy: Policy) -> bool:
    """Whether ``service`` gets saturation classes under ``policy`` (rule S)."""
    return policy.applies("S") and service in CLASSIFIED_SERVICES


# ---------------------------------------------------------------------- requirements R1-R3 of an area
def r1_met(service: Service, *, urban_street: bool, count: int, policy: Policy) -> bool | None:
    """R1 for one sub-district and service: an urban street office holds >= 1 pharmacy of each of
    :data:`R1_SERVICES` (a pharmacy holding both counts for both). None where R1 does not apply."""
    if not (policy.applies("R1") and urban_street and service in R1_SERVICES):
        return None
    return count >= 1


def r2_met(service: Service, *, count: int, policy: Policy) -> bool | None:
    """R2 for one county and service: >= 1 dual-channel pharmacy. None where R2 does not apply."""
    if not (policy.applies("R2") and service is R2_SERVICE):
        return None
    return count >= 1


def r3_met(service: Service, *, covered_share: float, policy: Policy) -> bool | None:
    """R3 for one area and service: the share of residents within the walk budget reaches the service's
    ``underserved_min_covered_share``. None where R3 does not apply."""
    if not (policy.applies("R3") and service in CLASSIFIED_SERVICES):
        return None
    return covered_share >= policy.thresholds[service].underserved_min_covered_share


def failed(outcomes) -> np.ndarray:
    """Boolean array: which tri-state outcomes (True / False / None / NA) are a definite failure."""
    return tri_state(outcomes).eq(False).fillna(False).to_numpy(dtype=bool)


def holds(outcomes) -> np.ndarray:
    """Boolean array: which tri-state values are definitely True (None / NA: not known to hold)."""
    return tri_state(outcomes).eq(True).fillna(False).to_numpy(dtype=bool)


def outcome(value) -> bool | None:
    """One tri-state outcome as a plain ``bool``, or None where the rule does not apply (None / NA)."""
    return None if value is None or pd.isna(value) else bool(value)


def tri_state(values) -> pd.Series:
    """Outcomes (True / False / None) as pandas' nullable ``boolean`` dtype (None becomes ``pd.NA``)."""
    series = pd.Series(values, dtype=object)
    return series.where(series.notna(), None).astype("boolean")


# ---------------------------------------------------------------------- places: flags and verdicts
def county_of(subdistrict: np.ndarray, county_hit: np.ndarray, subdistrict_county: np.ndarray) -> np.ndarray:
    """The county of each place: its sub-district's county (``subdistrict_county[subdistrict]``) when it
    lies in a sub-district, else the county polygon it lies in (``county_hit``; -1 for none)."""
    subdistrict = np.asarray(subdistrict)
    if len(subdistrict_county) == 0:
        return np.asarray(county_hit, dtype=np.int64)
    from_sd = np.asarray(subdistrict_county)[np.maximum(subdistrict, 0)]
    return np.where(subdistrict >= 0, from_sd, np.asarray(county_hit)).astype(np.int64)


@dataclass(frozen=True)
class AreaFacts:
    """What the assessment tables decided for each area, for one service. Arrays are in the order of the
    region's sub-districts (``subdistrict_codes``) and counties (``county_codes``)."""

    service: Service
    subdistrict_codes: np.ndarray
    subdistrict_county: np.ndarray  # int: position of each sub-district's county, -1 if unknown
    service_class: np.ndarray  # object: the class for this service (None where not classed)
    overall_class: np.ndarray  # object: the class for all designated pharmacies (personal account)
    r1_shortfall: np.ndarray  # bool
    county_codes: np.ndarray
    fund_b3: np.ndarray  # bool
    fund_b4: np.ndarray  # bool
    r2_shortfall: np.ndarray  # bool
    unjudged: tuple[str, ...] = ()  # rule ids that missing inputs leave unjudged for this service
    fund_unknown: np.ndarray | None = None  # bool per county: B3/B4 apply but its fund row is missing

    @classmethod
    def from_tables(cls, subdistricts: pd.DataFrame, counties: pd.DataFrame, service: Service, *,
                    subdistrict_codes, subdistrict_county, county_codes, unjudged=()) -> AreaFacts:
        """From the assessment's per-(area, service) tables, in the given order of codes;
        ``subdistrict_county``: the position in ``county_codes`` of each sub-district's county (-1 unknown)."""
        service = Service(service)
        sd_codes = np.asarray(subdistrict_codes, dtype=object)
        ct_codes = np.asarray(county_codes, dtype=object)
        mine = subdistricts[subdistricts["service"] == service.value].set_index("code")
        overall = subdistricts[subdistricts["service"] == Service.PERSONAL_ACCOUNT.value].set_index("code")
        county_rows = counties[counties["service"] == service.value].set_index("code")
        return cls(
            service=service,
            subdistrict_codes=sd_codes,
            subdistrict_county=np.asarray(subdistrict_county, dtype=np.int64),
            service_class=mine["class"].reindex(sd_codes).to_numpy(dtype=object),
            overall_class=overall["class"].reindex(sd_codes).to_numpy(dtype=object),
            r1_shortfall=failed(mine["r1_ok"].reindex(sd_codes)),
            county_codes=ct_codes,
            fund_b3=holds(county_rows["fund_b3"].reindex(ct_codes)),
            fund_b4=holds(county_rows["fund_b4"].reindex(ct_codes)),
            r2_shortfall=failed(county_rows["r2_ok"].reindex(ct_codes)),
            unjudged=tuple(unjudged),
            fund_unknown=_fund_unknown(county_rows, ct_codes, unjudged),
        )


@dataclass(frozen=True)
class PlaceFacts:
    """What holds at each of n places (cells or points): their areas and what is true at the place."""

    subdistrict: np.ndarray  # int: position in AreaFacts.subdistrict_codes, -1 outside every sub-district
    county: np.ndarray  # int: position in AreaFacts.county_codes, -1 outside every county
    inside_circle: np.ndarray  # bool: within the walk budget of a site of the service
    uncovered_residential: np.ndarray  # bool: residents beyond the walk budget live there
    applicant_not_ready: bool = False  # B5: the applicant has not finished the information-system upgrade
    unjudged: np.ndarray | None = None  # object: a key of UNJUDGED_REASONS where the place cannot be judged

    def __len__(self) -> int:
        return len(self.subdistrict)


def rule_flags(area: AreaFacts, place: PlaceFacts, policy: Policy) -> dict[str, np.ndarray]:
    """Which block and gap rules hit each place: ``{rule id: bool array}`` for :data:`BLOCK_RULES` and
    :data:`GAP_RULES`, in that order. The one definition of each rule at a place (module docstring)."""
    shape = np.shape(place.subdistrict)
    # positions as the platform's index type once: numpy converts narrower index arrays (the int32 cell
    # rasters) at every gather, a copy of millions of cells for each of the rules below
    in_sd, sd = place.subdistrict >= 0, np.maximum(place.subdistrict, 0).astype(np.intp, copy=False)
    in_ct, ct = place.county >= 0, np.maximum(place.county, 0).astype(np.intp, copy=False)

    def at_subdistrict(per_area: np.ndarray) -> np.ndarray:
        return in_sd & per_area[sd] if len(per_area) else np.zeros(shape, dtype=bool)

    def at_county(per_area: np.ndarray) -> np.ndarray:
        return in_ct & per_area[ct] if len(per_area) else np.zeros(shape, dtype=bool)

    saturated = (area.service_class == "saturated") | (area.overall_class == "saturated")
    weak = np.isin(area.service_class, WEAK_CLASSES)
    inside = np.asarray(place.inside_circle, dtype=bool)
    b3 = policy.applies("B3") & at_county(area.fund_b3)
    flags = {
        "B1": policy.applies("B1") & inside,
        "B2": policy.applies("B2") & at_subdistrict(saturated),
        "B3": b3,
        "B4": policy.applies("B4") & at_county(area.fund_b4) & ~b3,
        "B5": np.full(shape, policy.applies("B5") and bool(place.applicant_not_ready)),
        "R1": policy.applies("R1") & at_subdistrict(area.r1_shortfall),
        "R2": policy.applies("R2") & at_county(area.r2_shortfall),
        "R3": (policy.applies("R3") & at_subdistrict(weak) & ~inside
               & np.asarray(place.uncovered_residential, dtype=bool)),
    }
    for rule in area.unjudged:  # an unjudged rule hits nowhere; the places say "not judged" instead
        flags[rule] = np.zeros(shape, dtype=bool)
    return flags


def _any(flags: dict[str, np.ndarray], rules) -> np.ndarray:
    first = next(iter(flags.values()))
    out = np.zeros(np.shape(first), dtype=bool)
    for rule in rules:
        out |= flags[rule]
    return out


def hard_blocked(flags: dict[str, np.ndarray]) -> np.ndarray:
    """Where a hard block (B3, B5) hits: no gap can soften it to review."""
    return _any(flags, [r for r in BLOCK_RULES if r in HARD_BLOCKS])


def _fund_unknown(county_rows: pd.DataFrame, county_codes, unjudged) -> np.ndarray:
    """Per county: its fund rules B3/B4 are unknown (NA: a county the fund table did not list; the tables
    give False where the policy leaves the rule out). Where the whole table is missing, ``unjudged``
    already says so for every place."""
    if "B3" in unjudged or "B4" in unjudged:
        return np.zeros(len(county_codes), dtype=bool)
    b3 = tri_state(county_rows["fund_b3"].reindex(county_codes))
    b4 = tri_state(county_rows["fund_b4"].reindex(county_codes))
    return (b3.isna() & b4.isna()).to_numpy(dtype=bool)


def missing_input(area: AreaFacts, flags: dict[str, np.ndarray], county: np.ndarray | None = None) -> np.ndarray:
    """Where missing inputs leave a place unjudged and no judged hard block already stands: a rule that
    could still block or plead there is unknown (``area.unjudged``), or the place lies in a county whose
    fund status is unknown (``area.fund_unknown``; ``county``: each place's county position, -1 none)."""
    hard = hard_blocked(flags)
    unknown = np.full(np.shape(hard), bool(area.unjudged))
    if county is not None and area.fund_unknown is not None and area.fund_unknown.any():
        county = np.asarray(county)
        unknown |= (county >= 0) & area.fund_unknown[np.maximum(county, 0)]
    return unknown & ~hard


def verdict_codes(flags: dict[str, np.ndarray], unjudged: np.ndarray | None = None) -> np.ndarray:
    """The verdict of each place as its position in :data:`VERDICTS` (int8), from its :func:`rule_flags`:
    a hard block is "blocked", a soft block meeting a gap "review", a block "blocked", a gap "priority",
    nothing "allowed"; "not_judged" wherever the bool array ``unjudged`` is True. The one precedence of
    the verdicts (cells of the decision map, clicks and candidates)."""
    hard, block, gap = hard_blocked(flags), _any(flags, BLOCK_RULES), _any(flags, GAP_RULES)
    position = {name: i for i, name in enumerate(VERDICTS)}
    code = np.select([hard, block & gap, block, gap],
                     [position["blocked"], position["review"], position["blocked"], position["priority"]],
                     default=position["allowed"]).astype(np.int8)
    if unjudged is not None:
        code[np.asarray(unjudged, dtype=bool)] = position["not_judged"]
    return code


def verdicts(flags: dict[str, np.ndarray], unjudged: np.ndarray | None = None) -> np.ndarray:
    """The verdict of each place (one of :data:`VERDICTS`, :func:`verdict_codes`); ``not_judged`` wherever
    ``unjudged`` (a reason per place, None where judged) names a reason."""
    mask = None if unjudged is None else np.asarray([r is not None for r in np.ravel(unjudged)], dtype=bool)
    return np.asarray(VERDICTS)[verdict_codes(flags, mask)]


def review_pairs(flags: dict[str, np.ndarray]) -> list[tuple[str, str, np.ndarray]]:
    """Where each soft block meets each gap outside every hard block: ``(block, gap, mask)`` — the review
    zones; their union is where :func:`verdicts` says ``review``."""
    hard = hard_blocked(flags)
    return [(block, gap, flags[block] & flags[gap] & ~hard) for block in SOFT_BLOCKS for gap in GAP_RULES]


def fired(flags: dict[str, np.ndarray]) -> list[list[str]]:
    """Per place, the rule ids that hit it (blocks, then gaps)."""
    names = list(flags)
    stacked = np.column_stack([np.asarray(flags[r]).ravel() for r in names])
    return [[names[j] for j in np.flatnonzero(row)] for row in stacked]
