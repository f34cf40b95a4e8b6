"""Redundancy of the existing sites of one service: the residents only each site covers, ranked (an input
to the MDJ-2025 art. 16-17 reviews).

Units: persons and shares of the region's population.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from planning.access import pairs_within
from planning.assess import Assessment
from planning.model import Service


def redundancy(assessment: Assessment, service: Service | str) -> pd.DataFrame:
    """Existing sites of ``service`` ranked by the residents who would lose walking access if each one left.

    A resident is lost with a site when that site is the only one within the walk budget (exact pairs, see
    :func:`pairs_within`). Columns: ``rank``, ``pharmacy_id``, ``name``, ``subdistrict_code``,
    ``catchment_persons`` (residents for whom it is the nearest site within the budget), ``persons_lost``,
    ``share_lost`` (of the service's demand in the region, residents by default: the drop of the
    covered share), ``share_of_catchment``
    (lost / catchment; 0 means fully redundant) and ``on_network``. An input to the MDJ-2025 art. 16-17
    reviews, not a verdict: sites off the network cover no one here and rank last.
    """
    service = Service(service)
    access = assessment.access[service]
    residents = assessment.residents
    policy = assessment.policy
    weights = assessment.weights_for(service)
    minutes, nearest = access.point_minutes(residents.snap)
    covered = np.flatnonzero((minutes <= policy.walk_minutes) & (weights > 0) & (residents.subdistrict >= 0))
    n_sites = len(access.site_ids)
    count = np.zeros(len(covered), dtype=np.int64)
    only = np.full(len(covered), -1, dtype=np.int64)
    for s, t, _ in pairs_within(assessment.network, access.sites, residents.snap.subset(covered), policy.budget_m):
        count += np.bincount(t, minlength=len(covered))
        only[t] = s
    persons = weights[covered]
    alone = count == 1
    lost = np.bincount(only[alone], weights=persons[alone], minlength=n_sites)
    catchment = np.bincount(nearest[covered], weights=persons, minlength=n_sites)
    holders = assessment.pharmacies.set_index("pharmacy_id")
    ids = access.site_ids
    cov = assessment.coverage
    population = float(cov.loc[cov["service"] == service.value, "population"].sum())  # the service's demand
    table = pd.DataFrame({
        "pharmacy_id": ids,
        "name": holders["name"].reindex(ids).to_numpy(),
        "subdistrict_code": holders["subdistrict_code"].reindex(ids).to_numpy(),
        "catchment_persons": catchment, "persons_lost": lost,
        "share_lost": lost / population if population else 0.0,
        "share_of_catchment": np.divide(lost, catchment, out=np.zeros(n_sites), where=catchment > 0),
        "on_network": access.sites.on_network,
    })
    table = table.sort_values(["persons_lost", "catchment_persons", "pharmacy_id"], ascending=[False, False, True],
                              kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table
