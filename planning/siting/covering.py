"""The covering problem of one service: which uncovered residents each candidate would bring within the
walk budget, solved as maximal covering (k sites) or set covering (the fewest sites meeting R1 and a
covered share), greedily or exactly with spopt and PuLP's CBC.

Units: metres and persons; site tables are GeoDataFrames in EPSG:4326 (WGS84).
"""

from __future__ import annotations

import contextlib
import heapq
import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from planning import rules
from planning.access import pairs_within
from planning.assess import Assessment
from planning.errors import ParameterError
from planning.memo import Memo
from planning.model import WGS84, Service
from planning.network import Snap, WalkNetwork
from planning.siting.candidates import DEFAULT_CLUSTERS, DEFAULT_SPACING_M, Candidates, candidate_sites, uncovered_demand

#: The exact solvers refuse problems whose cost matrix (demand groups x candidates) exceeds this many cells.
MAX_EXACT_CELLS = 4_000_000
_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class CoverageProblem:
    """Which uncovered residents each candidate would bring within the walk budget of one service.

    Build it with :meth:`from_assessment`; solve it with :meth:`suggest` (maximal covering) or
    :meth:`fewest` (set covering). Attributes: ``candidates`` (:class:`Candidates`), ``demand`` (the
    uncovered resident points, a :class:`Snap`), ``persons`` (their weights), ``resident_rows`` (their rows
    in ``assessment.residents``), ``matrix`` (candidates x demand CSR, data = walk distance in metres,
    float32, explicit zeros kept: a stored entry means "within the budget"), ``budget_m`` (metres).
    """

    assessment: Assessment
    service: Service
    candidates: Candidates
    demand: Snap
    persons: np.ndarray
    resident_rows: np.ndarray
    matrix: sp.csr_matrix
    budget_m: float
    memo: Memo = field(default_factory=Memo, repr=False)

    @classmethod
    def from_assessment(
        cls,
        assessment: Assessment,
        service: Service | str,
        *,
        candidates: Candidates | None = None,
        source: str = "network",
        spacing_m: float = DEFAULT_SPACING_M,
        n_clusters: int = DEFAULT_CLUSTERS,
        allow_review: bool = False,
        seed: int = 0,
    ) -> CoverageProblem:
        """The covering problem of ``service`` on ``assessment`` (candidate options: :func:`candidate_sites`)."""
        service = Service(service)
        if candidates is None:
            candidates = candidate_sites(assessment, service, source=source, spacing_m=spacing_m,
                                         n_clusters=n_clusters, allow_review=allow_review, seed=seed)
        elif candidates.service is not service:
            raise ParameterError("候选点的业务类别与所选业务不一致",
                                 "the candidates were made for another service")
        demand, persons, rows = uncovered_demand(assessment, service)
        budget = assessment.policy.budget_m
        parts = [(s.astype(np.int32), t.astype(np.int32), d.astype(np.float32))  # compact: tens of millions
                 for s, t, d in pairs_within(assessment.network, candidates.snap, demand, budget)]
        s = np.concatenate([p[0] for p in parts] or [np.zeros(0, np.int32)])
        t = np.concatenate([p[1] for p in parts] or [np.zeros(0, np.int32)])
        d = np.concatenate([p[2] for p in parts] or [np.zeros(0, np.float32)])
        matrix = sp.coo_matrix((d, (s, t)), shape=(len(candidates), len(persons))).tocsr()
        return cls(assessment=assessment, service=service, candidates=candidates, demand=demand, persons=persons,
                   resident_rows=rows, matrix=matrix, budget_m=budget)

    @property
    def gains(self) -> np.ndarray:
        """Persons each candidate alone would newly cover (float array, one per candidate)."""
        return self._ones() @ self.persons

    @property
    def population(self) -> float:
        """The service's demand in the region (persons; its residents unless the policy names another
        demand column, :mod:`planning.demand`)."""
        cov = self.assessment.coverage
        return float(cov.loc[cov["service"] == self.service.value, "population"].sum())

    @property
    def covered_before(self) -> float:
        """Persons already within the budget of an existing site of the service."""
        cov = self.assessment.coverage
        return float(cov.loc[cov["service"] == self.service.value, "covered"].sum())

    def covers(self, candidate: int) -> np.ndarray:
        """Demand indices within the budget of one candidate."""
        m = self.matrix
        return m.indices[m.indptr[candidate]:m.indptr[candidate + 1]]

    def conflicts(self, candidate: int) -> np.ndarray:
        """Candidates within the walk budget of ``candidate`` (itself included): B1 among new sites."""
        snap = self.candidates.snap
        found = [t for _, t, _ in pairs_within(self.assessment.network, snap.subset(np.array([candidate])), snap,
                                               self.budget_m)]
        return np.unique(np.concatenate(found)) if found else np.array([candidate])

    def conflict_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """All candidate pairs (i < j) within the walk budget of each other."""
        snap = self.candidates.snap
        blocks = [(s, t) for s, t, _ in pairs_within(self.assessment.network, snap, snap, self.budget_m)]
        if not blocks:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        i = np.concatenate([b[0] for b in blocks])
        j = np.concatenate([b[1] for b in blocks])
        keep = i < j
        return i[keep], j[keep]

    def _ones(self) -> sp.csr_matrix:
        m = self.matrix
        return self.memo.get("ones", lambda: sp.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape))

    # ------------------------------------------------------------------ solvers
    def suggest(self, k: int, *, method: str = "greedy", respect_new_circles: bool | None = None,
                improve: bool = True, time_limit_s: float = 120.0) -> SitePlan:
        """Choose ``k`` new sites maximising the residents newly covered (maximal covering, MCLP).

        Parameters
        ----------
        k : int
            Number of new sites (fewer are returned when no further candidate adds anyone).
        method : {"greedy", "exact"}
            Lazy greedy, or the integer programme through spopt ``MCLP`` and CBC (small cases only:
            at most :data:`MAX_EXACT_CELLS` demand groups x candidates).
        respect_new_circles : bool, optional
            Never choose two new sites within each other's walk budget (B1 among the new sites);
            default: when the policy applies B1.
        improve : bool
            After the greedy, swap single sites for better ones while that covers more (a 1-interchange
            local search, Teitz & Bart 1968); never worse than the plain greedy (greedy only).
        time_limit_s : float
            CBC time limit, seconds (exact only).
        """
        k = _check_k(k)
        respect = self.assessment.policy.applies("B1") if respect_new_circles is None else bool(respect_new_circles)
        if method == "greedy":
            state = _Greedy(self, respect)
            picks = state.run(k)
            if improve and len(picks) > 0:
                chosen = self._interchange([c for c, _ in picks], respect)
                if chosen != [c for c, _ in picks]:
                    picks = self._in_marginal_order(chosen)
            return self._plan(picks, "greedy", respect, notes=state.notes)
        if method == "exact":
            chosen, notes = self._exact_mclp(k, respect, time_limit_s)
            return self._plan(self._in_marginal_order(chosen), "exact", respect, notes=notes)
        raise ParameterError(f"未知的求解方法：{method}", f"unknown method '{method}' (greedy or exact)")

    def fewest(self, target_share: float | None = 0.8, *, require_r1: bool = True, method: str = "greedy",
               respect_new_circles: bool | None = None, time_limit_s: float = 120.0) -> SitePlan:
        """The fewest new sites so that every urban street office failing R1 for this service gets one and the
        service's covered share of the region's population reaches ``target_share`` (set covering).

        ``target_share=None`` asks for every uncovered resident that some candidate can reach (with
        ``method="exact"``: spopt's ``LSCP``). R1 applies to outpatient pooling and chronic disease; a failing
        street office with no admissible candidate is reported in ``notes`` (try ``allow_review=True``).
        """
        respect = self.assessment.policy.applies("B1") if respect_new_circles is None else bool(respect_new_circles)
        if target_share is not None and not 0 <= target_share <= 1:
            raise ParameterError("目标覆盖率应在 0 到 1 之间", "target_share must lie in [0, 1]")
        streets, notes = self._r1_groups() if require_r1 else ([], [])
        reachable = self.persons[np.unique(self.matrix.indices)].sum()
        if target_share is None:
            need = float(reachable)
        else:
            need = target_share * self.population - self.covered_before
            if need > reachable + _TOL:
                notes.append(f"target {target_share:.0%} is out of reach: the candidates can add at most "
                             f"{reachable:,.0f} persons ({(self.covered_before + reachable) / self.population:.1%})")
        state = _Greedy(self, respect)
        picks = state.fewest(streets, need)
        notes += state.notes
        if method == "greedy":
            return self._plan(picks, "greedy", respect, notes=notes)
        if method == "exact":
            chosen, exact_notes = self._exact_fewest(streets, need, target_share is None, respect,
                                                     [c for c, _ in picks], state.met, time_limit_s)
            if chosen is None:  # infeasible or not reached: the greedy plan stands, with the reason
                return self._plan(picks, "greedy", respect, notes=notes + exact_notes)
            return self._plan(self._in_marginal_order(chosen), "exact", respect, notes=notes + exact_notes)
        raise ParameterError(f"未知的求解方法：{method}", f"unknown method '{method}' (greedy or exact)")

    # ------------------------------------------------------------------ helpers
    def _r1_groups(self) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
        """Failing R1 street offices of this service and their admissible candidates."""
        if self.service not in rules.R1_SERVICES:
            return [], []
        rows = self.assessment.subdistricts
        failing = rows[(rows["service"] == self.service.value).to_numpy() & rules.failed(rows["r1_ok"])]
        codes = self.candidates.table["subdistrict_code"].to_numpy()
        groups, notes = [], []
        for code, name in zip(failing["code"], failing["name"]):
            members = np.flatnonzero(codes == code)
            if len(members):
                groups.append((code, members))
            else:
                notes.append(f"R1: {name} ({code}) has no admissible candidate"
                             + ("" if self.candidates.allow_review else " (try allow_review=True)"))
        return groups, notes

    def _in_marginal_order(self, chosen) -> list[tuple[int, float]]:
        """The chosen candidates ordered greedily by marginal gain, with each one's gain."""
        covered = np.zeros(len(self.persons), dtype=bool)
        left, out = list(chosen), []
        while left:
            gains = [self.persons[idx][~covered[idx]].sum() for idx in map(self.covers, left)]
            best = int(np.argmax(gains))
            c = left.pop(best)
            covered[self.covers(c)] = True
            out.append((c, float(gains[best])))
        return out

    def _interchange(self, chosen: list[int], respect: bool, max_rounds: int = 10) -> list[int]:
        """1-interchange: replace a chosen site by the candidate adding the most once it is gone, while that
        strictly increases coverage (each swap is one sparse product over all candidates)."""
        chosen = list(chosen)
        ones = self._ones()
        count = np.zeros(len(self.persons), dtype=np.int64)
        for c in chosen:
            count[self.covers(c)] += 1
        zone = {c: self.conflicts(c) for c in chosen} if respect else {}
        for _ in range(max_rounds):
            improved = False
            for position in range(len(chosen)):
                out = chosen[position]
                cover = self.covers(out)
                count[cover] -= 1
                open_weight = self.persons * (count == 0)
                loss = float(open_weight[cover].sum())
                gains = ones @ open_weight
                gains[chosen] = -np.inf
                for other in chosen:
                    if other != out and respect:
                        gains[zone[other]] = -np.inf
                best = int(np.argmax(gains))
                if gains[best] > loss + 1e-9 * max(loss, 1.0):
                    chosen[position] = best
                    count[self.covers(best)] += 1
                    if respect:
                        zone.pop(out)
                        zone[best] = self.conflicts(best)
                    improved = True
                else:
                    count[cover] += 1
            if not improved:
                break
        return chosen

    def _plan(self, picks: list[tuple[int, float]], method: str, respect: bool, *, notes) -> SitePlan:
        table = self.candidates.table
        idx = np.array([c for c, _ in picks], dtype=np.int64)
        gain = np.array([g for _, g in picks], dtype=float)
        sites = table.iloc[idx].copy().reset_index(drop=True)
        sites.insert(0, "rank", np.arange(1, len(idx) + 1))
        sites["gain_persons"] = gain
        sites["cumulative_persons"] = np.cumsum(gain)
        sites["covered_share"] = (self.covered_before + sites["cumulative_persons"]) / self.population
        sites = gpd.GeoDataFrame(sites, geometry="geometry", crs=WGS84)
        return SitePlan(problem=self, method=method, respect_new_circles=respect, sites=sites,
                        notes=tuple(notes))

    def _groups(self):
        """Demand points grouped by the set of candidates covering them (an exact reduction for the solvers):
        (cost matrix groups x candidates in metres, inf beyond reach; persons per group)."""
        by_demand = self.matrix.T.tocsr()
        by_demand.sort_indices()
        reached = np.flatnonzero(np.diff(by_demand.indptr) > 0)
        keys: dict[bytes, int] = {}
        group = np.empty(len(reached), dtype=np.int64)
        for n, d in enumerate(reached):
            row = by_demand.indices[by_demand.indptr[d]:by_demand.indptr[d + 1]]
            group[n] = keys.setdefault(row.tobytes(), len(keys))
        n_groups, n_cand = len(keys), self.matrix.shape[0]
        if n_groups * max(n_cand, 1) > MAX_EXACT_CELLS:
            raise ParameterError(
                f"精确求解规模过大（{n_groups} 组需求 × {n_cand} 个候选点），"
                f"请改用贪心算法或减少候选点",
                f"too large for the exact solver ({n_groups} demand groups x {n_cand} candidates > "
                f"{MAX_EXACT_CELLS:,} cells); use method='greedy' or fewer candidates (larger spacing_m)")
        cost = np.full((n_groups, n_cand), np.inf)
        first = np.unique(group, return_index=True)[1]
        for g, n in enumerate(first):
            d = reached[n]
            lo, hi = by_demand.indptr[d], by_demand.indptr[d + 1]
            cost[g, by_demand.indices[lo:hi]] = by_demand.data[lo:hi]
        weights = np.bincount(group, weights=self.persons[reached], minlength=n_groups)
        return cost, weights

    def _exact_mclp(self, k: int, respect: bool, time_limit_s: float, *, streets=(), at_most: bool = False
                    ) -> tuple[list[int], list[str]]:
        from spopt.locate import MCLP

        cost, weights = self._groups()
        n_cand = cost.shape[1]
        p = min(k, n_cand)
        if p == 0 or cost.shape[0] == 0:  # no candidate, or nobody any candidate reaches
            return [], []
        if respect or at_most:  # dummies covering no one make spopt's "exactly p" mean "at most p real sites"
            cost = np.hstack([cost, np.full((cost.shape[0], p), np.inf)])
        with _quiet_pulp():
            model = MCLP.from_cost_matrix(cost, weights, service_radius=self.budget_m, p_facilities=p,
                                          name="pharmacy_mclp")
            self._add_side_constraints(model, respect, streets)
        notes = _solve(model, time_limit_s)
        chosen = [i for i, v in enumerate(model.fac_vars[:n_cand]) if v.value() is not None and v.value() > 0.5]
        return chosen, notes

    def _exact_fewest(self, streets, need: float, cover_all: bool, respect: bool, greedy: list[int], met: bool,
                      time_limit_s: float) -> tuple[list[int] | None, list[str]]:
        from spopt.locate import LSCP

        if cover_all:
            cost, _ = self._groups()
            if cost.shape[0] == 0 and not streets:
                return [], []
            rows = [cost]
            for _, members in streets:  # one row per failing street office: covered by a candidate inside it
                row = np.full((1, cost.shape[1]), np.inf)
                row[0, members] = 0.0
                rows.append(row)
            with _quiet_pulp():
                model = LSCP.from_cost_matrix(np.vstack(rows), service_radius=self.budget_m, name="pharmacy_lscp")
                self._add_side_constraints(model, respect, ())
            try:
                notes = _solve(model, time_limit_s)
            except RuntimeError:
                return None, [("exact: no plan covers every reachable resident while keeping new sites out of "
                               "each other's circles (B1); the greedy plan is reported")]
            return [i for i, v in enumerate(model.fac_vars) if v.value() is not None and v.value() > 0.5], notes
        # "Coverage reaches X %" is partial covering: the smallest p whose best plan of at most p sites
        # (spopt MCLP, the R1 rows as side constraints) covers enough. The greedy plan is feasible with
        # ``len(greedy)`` sites, so p walks down from there until the target is missed.
        lower = max(len(streets), 1 if need > _TOL else 0)
        best = list(greedy)
        if not met:
            return None, ["exact: the greedy plan misses the target; no exact search was made"]
        p = len(best) - 1
        while p >= lower:
            try:
                chosen, notes = self._exact_mclp(p, respect, time_limit_s, streets=streets, at_most=True)
            except RuntimeError:  # infeasible with p sites (R1 rows and B1 conflicts)
                break
            gain = self.persons[np.unique(np.concatenate([self.covers(c) for c in chosen]))].sum() if chosen else 0.0
            if gain < need - 1e-6 * max(need, 1.0):
                break
            best = chosen
            p = len(chosen) - 1
        return best, []

    def _add_side_constraints(self, model, respect: bool, streets) -> None:
        """B1 among new sites (x_i + x_j <= 1 for candidates within the budget of each other) and R1 rows."""
        import pulp

        x = model.fac_vars
        if respect:
            for i, j in zip(*self.conflict_pairs()):
                model.problem += x[i] + x[j] <= 1
        for _, members in streets:
            model.problem += pulp.lpSum(x[m] for m in members) >= 1


@contextlib.contextmanager
def _quiet_pulp():
    """Silence PuLP 3.x's notices about its 4.0 API (one per variable spopt creates)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*PuLP 4\.0", category=DeprecationWarning)
        yield


def _solve(model, time_limit_s: float) -> list[str]:
    """Solve an spopt model with CBC (bundled with PuLP); note when the time limit stopped it."""
    import pulp

    with _quiet_pulp():
        model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s))
    if getattr(model.problem, "sol_status", 1) != pulp.LpSolutionOptimal:
        return [f"exact: CBC stopped at the {time_limit_s:g} s limit; the plan is feasible, not proven optimal"]
    return []


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError("新增站点数 k 必须是正整数", "k must be a positive integer")
    return int(k)


class _Greedy:
    """Lazy greedy state: residents covered so far and candidates still allowed."""

    def __init__(self, problem: CoverageProblem, respect: bool):
        self.problem = problem
        self.respect = respect
        self.covered = np.zeros(len(problem.persons), dtype=bool)
        self.allowed = np.ones(len(problem.candidates), dtype=bool)
        self.picks: list[tuple[int, float]] = []
        self.notes: list[str] = []
        self.met = True  # fewest(): every R1 row and the coverage target were met

    def gain(self, c: int) -> float:
        idx = self.problem.covers(c)
        return float(self.problem.persons[idx][~self.covered[idx]].sum())

    def take(self, c: int, gain: float) -> None:
        self.covered[self.problem.covers(c)] = True
        self.picks.append((c, gain))
        self.allowed[c] = False
        if self.respect:
            self.allowed[self.problem.conflicts(c)] = False

    def run(self, k: int, *, need: float | None = None) -> list[tuple[int, float]]:
        """Add up to ``k`` sites by largest marginal gain (lazy: stale gains are upper bounds), stopping
        early when nothing adds anyone or when ``need`` more persons have been covered."""
        weights = self.problem.persons * ~self.covered
        bounds = self.problem._ones() @ weights
        heap = [(-g, int(c)) for c, g in enumerate(bounds) if g > 0 and self.allowed[c]]
        heapq.heapify(heap)
        added, gained = 0, 0.0
        while heap and added < k and (need is None or gained < need - _TOL):
            _, c = heapq.heappop(heap)
            if not self.allowed[c]:
                continue
            g = self.gain(c)
            if heap and g < -heap[0][0] - _TOL:
                if g > 0:
                    heapq.heappush(heap, (-g, c))
                continue
            if g <= 0:
                break
            self.take(c, g)
            added += 1
            gained += g
        return self.picks

    def fewest(self, streets, need: float) -> list[tuple[int, float]]:
        """R1 first (the best-gain admissible candidate inside each failing street office), then largest gains
        until ``need`` persons are newly covered."""
        for code, members in streets:
            free = members[self.allowed[members]]
            if len(free) == 0:
                self.notes.append(f"R1: every candidate in {code} conflicts with a site already chosen")
                self.met = False
                continue
            gains = np.array([self.gain(c) for c in free])
            best = int(np.argmax(gains))
            self.take(int(free[best]), float(gains[best]))
        gained = sum(g for _, g in self.picks)
        if need - gained > _TOL:
            self.run(len(self.problem.candidates), need=need - gained)
            gained = sum(g for _, g in self.picks)
            if need - gained > max(_TOL, 1e-6 * need):
                self.notes.append(f"the candidates add {gained:,.0f} of the {need:,.0f} persons needed")
                self.met = False
        return self.picks


# ---------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class SitePlan:
    """New sites chosen for one service, in the order they add coverage.

    ``sites`` (GeoDataFrame, EPSG:4326): ``rank``, ``candidate``, ``lon``, ``lat``, ``subdistrict_code``,
    ``county_code``, ``verdict``, ``rule_ids``, ``walk_minutes`` (to the nearest existing site),
    ``gain_persons`` (residents this site newly covers given the ones before it), ``cumulative_persons`` and
    ``covered_share`` (the service's covered share of the region after adding the sites up to this one).
    """

    problem: CoverageProblem
    method: str
    respect_new_circles: bool
    sites: gpd.GeoDataFrame
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def service(self) -> Service:
        return self.problem.service

    @property
    def assessment(self) -> Assessment:
        return self.problem.assessment

    @property
    def covered_persons(self) -> float:
        """Residents newly covered by all the new sites together (persons)."""
        return float(self.sites["gain_persons"].sum())

    @property
    def table(self) -> pd.DataFrame:
        """The sites without geometry, for display."""
        return pd.DataFrame(self.sites.drop(columns="geometry"))

    def scenario(self, *, prefix: str = "NEW-", name: str = ""):
        """A :class:`planning.scenario.Scenario` on the baseline adding these sites (ids ``prefix`` + rank),
        to re-assess them against every rule."""
        from planning.scenario import Scenario

        scenario = Scenario(self.assessment, name=name or f"{len(self.sites)} new {self.service.value} sites")
        for row in self.sites.itertuples():
            scenario = scenario.add_site(f"{prefix}{row.rank:03d}", row.lon, row.lat, (self.service,),
                                         name=f"建议新增 {self.service.label_zh} {row.rank}")
        return scenario

    def map(self, *, lang: str = "zh", network: WalkNetwork | None = None):
        """The assessment map of the service plus the suggested sites (:func:`planning.maps.site_plan_map`)."""
        from planning.maps import site_plan_map

        return site_plan_map(self, lang=lang, network=network)


# ---------------------------------------------------------------------- convenience functions
def suggest_sites(assessment: Assessment, service: Service | str, k: int, *, method: str = "greedy",
                  respect_new_circles: bool | None = None, **candidate_options) -> SitePlan:
    """``k`` new sites of ``service`` covering the most uncovered residents (see :meth:`CoverageProblem.suggest`;
    ``candidate_options`` go to :meth:`CoverageProblem.from_assessment`)."""
    problem = CoverageProblem.from_assessment(assessment, service, **candidate_options)
    return problem.suggest(k, method=method, respect_new_circles=respect_new_circles)


def fewest_sites(assessment: Assessment, service: Service | str, target_share: float | None = 0.8, *,
                 require_r1: bool = True, method: str = "greedy", respect_new_circles: bool | None = None,
                 **candidate_options) -> SitePlan:
    """The fewest new sites meeting R1 and a covered share (see :meth:`CoverageProblem.fewest`)."""
    problem = CoverageProblem.from_assessment(assessment, service, **candidate_options)
    return problem.fewest(target_share, require_r1=require_r1, method=method, respect_new_circles=respect_new_circles)
