"""The annual review (MDJ-2025 art. 15-17): which exits would open a gap.

MDJ-2025 lets pharmacies leave by natural exit (art. 16: no or very little insurance business in the
year, among others) and puts the bottom-ranked of the annual review at risk of exit (art. 17); CX-2022
art. 34-35 ends agreements after two suspensions in a period or a suspension over 180 days.
:func:`review_scenario` builds the what-if "every pharmacy flagged for natural exit or termination
leaves, and the ``lowest`` lowest-ranked too" as an ordinary :class:`~planning.scenario.Scenario` of
:class:`~planning.scenario.RemoveSite` edits, so it is diffed against today like any scenario
(residents who lose their circle, requirements that would fail, zones), and says per exit whether it is
safe: none of the residents it was the nearest site for loses the walk circle, and no requirement
breaks in its area for a service it held (judged with all the listed exits leaving together).

The flags are :func:`planning.screening.pharmacy_flags` (``natural_exit``, ``termination_trigger``);
the rank is the ``credit_score`` column (lowest first, ties by pharmacy id).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from planning.assess import Assessment
from planning.coverage import resident_minutes
from planning.errors import ParameterError
from planning.memo import Memo
from planning.model import Service
from planning.scenario import RemoveSite, Scenario, ScenarioDiff
from planning.screening import pharmacy_flags

def exit_list(assessment: Assessment, *, lowest: int = 0, flagged: bool = True,
              on: dt.date | None = None) -> pd.DataFrame:
    """The pharmacies the review would see leave: ``pharmacy_id``, ``name``, ``subdistrict_code``,
    ``county_code``, ``exit_reason`` (natural_exit, termination_trigger or lowest_ranked; words in
    :data:`planning.present.EXIT_REASON_LABELS`), ``credit_score`` where known.

    ``flagged``: every pharmacy with a natural-exit or termination flag (on ``on``, default the policy's
    assessment date); ``lowest``: that many more, the lowest ``credit_score`` among the other pharmacies
    that serve today (a :class:`ParameterError` when the sheet has no credit score to rank by)."""
    if not isinstance(lowest, (int, np.integer)) or isinstance(lowest, bool) or lowest < 0:
        raise ParameterError("末位数量必须是非负整数", "the number of lowest-ranked exits must be a whole number >= 0")
    pharmacies = assessment.pharmacies
    flags = pharmacy_flags(pharmacies, on or assessment.policy.on)
    reason = pd.Series(None, index=pharmacies.index, dtype=object)
    if flagged:
        for key in ("termination_trigger", "natural_exit"):  # natural exit named where both hold
            if key in flags.columns:
                reason[flags[key].fillna(False).astype(bool).to_numpy()] = key
    if lowest:
        if "credit_score" not in pharmacies.columns or pharmacies["credit_score"].isna().all():
            raise ParameterError("药店表没有信用评分列，无法按排名选出末位药店",
                                 "the pharmacy sheet has no credit_score column: cannot rank the lowest")
        serving = pharmacies["serves"].astype(bool) if "serves" in pharmacies.columns else True
        candidates = pharmacies[reason.isna() & serving & pharmacies["credit_score"].notna()]
        ranked = candidates.sort_values(["credit_score", "pharmacy_id"], kind="stable").head(int(lowest))
        reason[ranked.index] = "lowest_ranked"
    chosen = pharmacies[reason.notna()]
    columns = ["pharmacy_id", "name", "subdistrict_code", "county_code"]
    table = chosen[columns].assign(exit_reason=reason[chosen.index])
    table["credit_score"] = chosen["credit_score"] if "credit_score" in chosen.columns else np.nan
    return pd.DataFrame(table).reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class ExitReview:
    """The review scenario: the exit list, the scenario removing those pharmacies, and per exit
    whether it is safe (:meth:`exits`)."""

    baseline: Assessment
    exit_table: pd.DataFrame
    scenario: Scenario
    memo: Memo = field(default_factory=Memo, repr=False)

    def diff(self) -> ScenarioDiff:
        """The scenario diffed against today (:meth:`planning.scenario.Scenario.diff`)."""
        return self.memo.get("diff", self.scenario.diff)

    def exits(self) -> pd.DataFrame:
        """The exit list with, per exit, ``persons_losing_circle`` (residents it was the nearest site for,
        for some service it held, who are beyond the walk budget afterwards), ``requirements_broken``
        (R1/R2 of its sub-district or county, for a service it held, that fail afterwards: "R1:chronic_disease")
        and ``safe`` (neither)."""
        return self.memo.get("exits", self._exits)

    def _exits(self) -> pd.DataFrame:
        return exit_safety(self.baseline, self.diff(), self.exit_table)


def exit_safety(baseline: Assessment, change: ScenarioDiff, exit_table: pd.DataFrame) -> pd.DataFrame:
    """``exit_table`` (:func:`exit_list`) with, per exit, what :meth:`ExitReview.exits` describes, from
    ``change``: the diff of ``baseline`` and the scenario where those pharmacies left (any service subset:
    its requirements and assessment cover every service)."""
    before, after = baseline, change.after
    residents = before.residents
    budget = before.policy.walk_minutes
    leaving = set(exit_table["pharmacy_id"])
    lost_by_exit = {pid: np.zeros(len(residents), dtype=bool) for pid in leaving}
    for service in Service:
        minutes_before, nearest = before.access[service].point_minutes(residents.snap)
        minutes_after = resident_minutes(after.access[service], residents)
        lost = (minutes_before <= budget) & ~(minutes_after <= budget)
        site_ids = before.access[service].site_ids
        nearest_id = np.where(nearest >= 0, site_ids[np.maximum(nearest, 0)], None)
        for pid in leaving:
            lost_by_exit[pid] |= lost & (nearest_id == pid)
    broken = change.requirements[change.requirements["change"] == "broken"]
    held = before.pharmacies.set_index("pharmacy_id")
    rows = []
    for exit_row in exit_table.itertuples(index=False):
        services = [s.value for s in Service if bool(held.at[exit_row.pharmacy_id, s.value])]
        mine = broken[broken["service"].isin(services)
                      & (((broken["level"] == "subdistrict") & (broken["code"] == exit_row.subdistrict_code))
                         | ((broken["level"] == "county") & (broken["code"] == exit_row.county_code)))]
        persons = float(residents.persons[lost_by_exit[exit_row.pharmacy_id]].sum())
        failed = ",".join(f"{r.rule}:{r.service}" for r in mine.itertuples(index=False))
        rows.append({"persons_losing_circle": persons, "requirements_broken": failed,
                     "safe": persons == 0 and not failed})
    return pd.concat([exit_table, pd.DataFrame(rows, index=exit_table.index)], axis=1)


def review_scenario(baseline: Assessment, *, lowest: int = 0, flagged: bool = True,
                    on: dt.date | None = None) -> ExitReview:
    """The annual-review what-if on ``baseline``: :func:`exit_list` leaves (see the module docstring)."""
    table = exit_list(baseline, lowest=lowest, flagged=flagged, on=on)
    scenario = Scenario(baseline).with_edits(*(RemoveSite(pid) for pid in table["pharmacy_id"]))
    return ExitReview(baseline=baseline, exit_table=table, scenario=scenario)


def pharmacies_to_watch(assessment: Assessment) -> pd.DataFrame:
    """The pharmacies a planner should see: those not settling (suspended, terminated, status not judged)
    and those flagged for natural exit or termination, with their status, whether they count under the
    policy (``serves``) and the flags; in the pharmacy table's order."""
    pharmacies = assessment.pharmacies
    flags = pharmacy_flags(pharmacies, assessment.policy.on)
    columns = [c for c in ("pharmacy_id", "name", "subdistrict_code", "settlement", "settlement_rules",
                           "settlement_until", "settlement_not_judged", "serves") if c in pharmacies.columns]
    table = pharmacies[columns].copy()
    watch = table["settlement"] != "settling" if "settlement" in table.columns else pd.Series(False, index=table.index)
    for key in ("natural_exit", "termination_trigger"):
        if key in flags.columns:
            table[key] = flags[key].to_numpy()
            watch |= flags[key].fillna(False).astype(bool)
    return pd.DataFrame(table[watch.to_numpy()]).reset_index(drop=True)
