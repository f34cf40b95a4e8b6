"""Demand per service (MDJ-2025 art. 13-14): whom each service is for, per sub-district, in persons.

Art. 13 controls the number of pharmacies by the resident insured population (常住参保人口), so the
classes' per-10,000 densities stay per resident by default. Art. 14 configures outpatient-pooling
pharmacies (chronic and dual channel included) by the employee insured (城镇职工参保人数), the chronic and
special-disease patients (门诊慢特病人数) and their purchase needs. So each service's coverage, persons
beyond the walk time, R3 priorities, siting gains and capacity-aware access (E2SFCA) weigh the people the
service is for:

====================  =======================================  ==========================
service               default demand column                    without a value
====================  =======================================  ==========================
personal account      ``population`` (resident insured)        —
outpatient pooling    ``employees`` (城镇职工参保人数)            residents, per sub-district
chronic disease       ``chronic_patients`` (门诊慢特病人数)       residents
dual channel          ``chronic_patients``                     residents
====================  =======================================  ==========================

Dual channel follows the chronic patients: the nationally negotiated drugs it supplies go mostly to
patients under chronic and special-disease treatment (a policy's ``[demand]`` table can choose another
column for any service). A sub-district without a value in its service's column falls back to its
residents, and every output says how many did (:meth:`ServiceDemand.describe`).

Within a sub-district the demand is spread like its residents (each resident point's weight scaled by
demand / residents), so a sub-district's covered share is the same whichever column is chosen; what the
column changes is how sub-districts weigh against each other: county roll-ups, persons beyond the walk
time, R3 priorities, siting gains and E2SFCA ratios.

Where people work (art. 14's "工作区域") adds to this: with a policy ``workers_weight`` > 0 the
region's worker layer (:mod:`planning.workers`) appends workplace points, each weighing its workers x
the weight, and a sub-district's demand is its column's persons plus its weighted workers
(:attr:`ServiceDemand.total`). The covered share then changes with where the work areas are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from planning.model import Service
from planning.text import Text

#: Sub-district columns a service's demand can be read from (persons), with their names for people.
DEMAND_COLUMNS: dict[str, Text] = {
    "population": Text("常住参保人口", "resident insured persons"),
    "employees": Text("城镇职工参保人数", "employee insured persons"),
    "chronic_patients": Text("门诊慢特病人数", "chronic and special-disease patients"),
}

#: The demand column of each service when a policy does not say (module docstring).
DEFAULT_DEMAND: dict[Service, str] = {
    Service.PERSONAL_ACCOUNT: "population",
    Service.OUTPATIENT_POOLING: "employees",
    Service.CHRONIC_DISEASE: "chronic_patients",
    Service.DUAL_CHANNEL: "chronic_patients",
}


@dataclass(frozen=True, eq=False)
class ServiceDemand:
    """The demand of one service per sub-district (in the region's order of sub-districts).

    ``column`` is the policy's column for the service; ``persons`` the demand per sub-district (float,
    persons); ``fallback`` marks the sub-districts that had no value in ``column`` and took their
    residents instead (all of them when the region has no such column)."""

    service: Service
    column: str
    persons: np.ndarray
    fallback: np.ndarray
    #: The workers of the worker layer per sub-district (persons) times ``workers_weight``
    #: (:mod:`planning.workers`); None: no worker counted.
    workers: np.ndarray | None = None
    workers_weight: float = 0.0

    def __post_init__(self):
        if self.workers is None:
            object.__setattr__(self, "workers", np.zeros(len(self.persons)))

    @property
    def n_fallback(self) -> int:
        return int(self.fallback.sum())

    @property
    def total(self) -> np.ndarray:
        """The demand per sub-district the coverage and the tables count: ``persons`` + weighted ``workers``."""
        return self.persons + self.workers

    def with_workers(self, workers_per_area: np.ndarray, weight: float) -> ServiceDemand:
        """This demand plus ``weight`` x the workers per sub-district (persons); unchanged at weight 0."""
        if weight <= 0:
            return self
        return replace(self, workers=weight * np.asarray(workers_per_area, dtype=float), workers_weight=float(weight))

    def describe(self, lang: str = "zh") -> str:
        """E.g. "城镇职工参保人数（2 个街道/乡镇无该值，按常住参保人口）" / "employee insured persons (2
        sub-districts without a value: residents)"."""
        return self._residents_words(lang) + self._workers_words(lang)

    def _residents_words(self, lang: str) -> str:
        words = DEMAND_COLUMNS[self.column].get(lang)
        n, total = self.n_fallback, len(self.fallback)
        if self.column == "population" or n == 0:
            return words
        if n == total:
            return Text(f"{words}（无此列，按常住参保人口）", f"{words} (no such column: residents)").get(lang)
        return Text(f"{words}（{n} 个街道/乡镇无该值，按常住参保人口）",
                    f"{words} ({n} sub-districts without a value: residents)").get(lang)

    def _workers_words(self, lang: str) -> str:
        """" + 就业人员 × 0.5（共 4,000 人）" when workers count, else ""."""
        if self.workers_weight <= 0:
            return ""
        return Text(f" + 就业人员 × {self.workers_weight:g}（计 {self.workers.sum():,.0f} 人）",
                    f" + workers × {self.workers_weight:g} ({self.workers.sum():,.0f} persons)").get(lang)


def service_demand(subdistricts: pd.DataFrame, service: Service, column: str) -> ServiceDemand:
    """The demand of ``service`` per sub-district: ``column`` where it holds a finite value >= 0, else the
    sub-district's ``population`` (the fallback is recorded)."""
    residents = subdistricts["population"].to_numpy(dtype=float)
    if column in subdistricts.columns:
        given = pd.to_numeric(subdistricts[column], errors="coerce").to_numpy(dtype=float)
    else:
        given = np.full(len(subdistricts), np.nan)
    fallback = ~(np.isfinite(given) & (given >= 0))
    return ServiceDemand(service=Service(service), column=column, persons=np.where(fallback, residents, given),
                         fallback=fallback)


def point_weights(persons: np.ndarray, subdistrict: np.ndarray, residents: np.ndarray,
                  demand: ServiceDemand) -> np.ndarray:
    """Demand weight of each resident point (persons): its resident weight ``persons`` scaled by its
    sub-district's demand / residents (``subdistrict``: row position, -1 outside every one, weight 0).
    A sub-district with demand but no resident point or residents keeps none placed (as its residents)."""
    ratio = np.divide(demand.persons, residents, out=np.zeros(len(residents)), where=residents > 0)
    inside = subdistrict >= 0
    weights = np.zeros(len(persons))
    weights[inside] = persons[inside] * ratio[subdistrict[inside]]
    return weights
