"""Which datum the pharmacy coordinates are written in, decided by the data (WGS84, GCJ-02 or BD-09).

Two signals, each computed under every candidate datum (the raw coordinates converted to WGS84 as if
written in it):

Street fit
    The straight distance from each pharmacy to the nearest walkable street
    (:meth:`planning.network.WalkNetwork.snap_lonlat`); its median is reported per datum. On a dense
    street grid the medians lie close together (the demo shifted by the GCJ-02 offset: 15.4 m read as
    WGS84 against 10.9 m read as GCJ-02), so the datum with the smallest median counts as clearly best
    only when (a) at least :data:`MIN_POINTS` points are usable, (b) its median is at most
    :data:`MAX_MEDIAN_RATIO` times the runner-up's, and (c) a one-sided sign test over the points
    (is each point nearer a street under the best datum than under the runner-up? ties left out) gives
    p < :data:`MAX_P_VALUE`. A true storefront sits a few metres off its street under the right datum
    and anywhere in the block under a wrong one, so the sign test has power where medians do not.

Address check
    Chinese addresses often name their 区/县 and 街道/镇 ("玄武区新街口街道…"). An address *names* a
    county or sub-district when the area's name (街道办事处 folded to 街道, at least 2 characters)
    occurs in it. Under each datum a named row *matches* when every area it names contains the point.
    The share of matches is reported per datum; the best datum is clearly best on the same kind of
    sign test over the rows that match under one datum and not the other (at least
    :data:`MIN_POINTS` named rows), with p < :data:`MAX_P_VALUE`.

Decision
    Both signals decided and agree, or one decided and the other undecided -> that datum ("streets",
    "addresses" or "streets+addresses"). They disagree, or neither decided -> undecided: the declared
    datum (WGS84 under ``"auto"``) with a message saying so. A declared datum the data contradicts
    raises :class:`DatumMismatchError` unless ``trust_crs`` (then "confirmed": the declared datum is used).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from planning import coords
from planning.completeness import AddressMismatch, DatumDecision
from planning.errors import CoordinateSystemError
from planning.ingest.vocabulary import name_key

if TYPE_CHECKING:
    from planning.network import WalkNetwork

#: Fewest usable points (street fit) or address-named rows (address check) for a signal to decide.
MIN_POINTS = 10
#: The best datum's median snap distance must be at most this share of the runner-up's.
MAX_MEDIAN_RATIO = 0.85
#: Largest one-sided sign-test p-value at which a signal decides.
MAX_P_VALUE = 1e-3
#: Shortest area name searched for in addresses, characters.
MIN_NAME_CHARS = 2


class DatumMismatchError(CoordinateSystemError):
    """The declared datum is contradicted by the data; ``decision`` holds the figures."""

    def __init__(self, decision: DatumDecision, message_zh: str, message_en: str):
        super().__init__(message_zh, message_en)
        self.decision = decision


def decide_datum(
    raw_lon: np.ndarray,
    raw_lat: np.ndarray,
    *,
    declared: str | coords.Datum | None = None,
    network: WalkNetwork | None = None,
    addresses: Sequence[str] | None = None,
    areas: Sequence[tuple[str, pd.DataFrame]] = (),
    rows: Sequence[int] | None = None,
    ids: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    trust_crs: bool = False,
    fit_points: np.ndarray | None = None,
) -> DatumDecision:
    """Decide the datum of pharmacy coordinates (see the module docstring).

    Parameters
    ----------
    raw_lon, raw_lat : arrays
        The coordinates as written in the file, degrees (rows without a usable point left out).
    declared : "auto", None, str or Datum
        The user's datum; None or "auto" lets the data decide (WGS84 when it cannot).
    network : WalkNetwork, optional
        The walking network for the street fit.
    addresses : sequence of str, optional
        One address per point, for the address check.
    areas : sequence of (level, GeoDataFrame)
        Named polygons in WGS84 (columns ``name`` and geometry): e.g. ("county", counties),
        ("subdistrict", sub-districts).
    rows, ids, names : sequences, optional
        Input row number, pharmacy id and name per point (to list the address mismatches).
    trust_crs : bool
        Keep a declared datum even when the data contradicts it.
    fit_points : int array, optional
        The points whose streets ``network`` holds (positions; a sample read from a network store around
        them): only they enter the street fit. None: every point.

    Raises
    ------
    DatumMismatchError
        ``declared`` is a datum, the data clearly points to another, and ``trust_crs`` is False.
    """
    declared_datum = None if declared is None or str(declared).lower() == "auto" else coords.parse_datum(declared)
    raw_lon, raw_lat = np.asarray(raw_lon, dtype=float), np.asarray(raw_lat, dtype=float)
    n = len(raw_lon)
    converted = {d: coords.to_wgs84(raw_lon, raw_lat, d) for d in coords.Datum}
    fitted = converted if fit_points is None else {d: (lon[fit_points], lat[fit_points])
                                                   for d, (lon, lat) in converted.items()}
    street_best, medians = _street_fit(fitted, network) if network is not None and n else (None, {})
    address_best, shares, located, named, levels = _address_fit(converted, addresses, areas) \
        if addresses is not None and len(areas) and n else (None, {}, {}, [], [])
    n_named = sum(1 for names_of_row in named if names_of_row)
    found, decided_by = _combine(street_best, address_best)
    base = coords.Datum.WGS84 if declared_datum is None else declared_datum
    if found is None:
        used = base
        decided_by = "undecided" if declared_datum is None else "declared"
    elif declared_datum is not None and found is not declared_datum:
        used = declared_datum
        decided_by = "confirmed"
    else:
        used = found
    mismatches = _mismatches(located.get(used), levels, named, addresses, rows, ids, names) if n_named else ()
    zh, en = _messages(declared_datum, used, found, decided_by, medians, shares, n, n_named, len(mismatches),
                       conflict=street_best is not None and address_best is not None and street_best is not address_best)
    decision = DatumDecision(declared=declared_datum, used=used, found=found, median_snap_m=medians,
                             address_match_share=shares, n_points=int(n), n_named=int(n_named),
                             decided_by=decided_by, message_zh=zh, message_en=en, mismatches=mismatches)
    if decision.contradicted and not trust_crs:
        figures_zh, figures_en = decision.figures("zh"), decision.figures("en")
        raise DatumMismatchError(
            decision,
            f"药店坐标声明为 {declared_datum.label('zh')}，但数据表明是 {found.label('zh')}（{figures_zh}；"
            f"依据：{_BY_ZH[decision_basis(street_best, address_best)]}）。请改用 {found.label('zh')}"
            f"（命令行 --crs {found.value} 或 --crs auto），或确认原设置（--trust-crs）。",
            f"the pharmacy coordinates are declared {declared_datum.label('en')} but the data points to "
            f"{found.label('en')} ({figures_en}; by {decision_basis(street_best, address_best)}). Use "
            f"{found.label('en')} (CLI --crs {found.value} or --crs auto), or confirm the declared datum "
            f"(--trust-crs).")
    return decision


def decision_basis(street_best, address_best) -> str:
    return {(True, True): "streets+addresses", (True, False): "streets", (False, True): "addresses"}.get(
        (street_best is not None, address_best is not None), "undecided")


_BY_ZH = {"streets": "与道路的贴合度", "addresses": "地址中的区县/街道名称", "streets+addresses": "道路贴合度和地址名称",
          "undecided": "无"}


def _street_fit(converted, network) -> tuple[coords.Datum | None, dict[coords.Datum, float]]:
    distances = {d: network.snap_lonlat(*converted[d]).access_m for d in coords.Datum}
    medians = {d: float(np.median(v)) for d, v in distances.items()}
    order = sorted(medians, key=lambda d: medians[d])
    best, second = order[0], order[1]
    n = len(distances[best])
    if n < MIN_POINTS or not medians[best] <= MAX_MEDIAN_RATIO * medians[second]:
        return None, medians
    nearer = int(np.sum(distances[best] < distances[second]))
    farther = int(np.sum(distances[best] > distances[second]))
    if nearer + farther == 0 or _binomtest(nearer, nearer + farther, 0.5, alternative="greater").pvalue >= MAX_P_VALUE:
        return None, medians
    return best, medians


def _area_keys(areas: Sequence[tuple[str, pd.DataFrame]]) -> list[tuple]:
    """Per level: (level, name keys, STRtree of the polygons, polygons, display names)."""
    out = []
    for level, frame in areas:
        keys = [_norm(name_key(str(n))) for n in frame["name"]]
        geoms = list(frame.geometry.to_numpy())
        out.append((level, keys, shapely.STRtree(geoms), geoms, [str(n) for n in frame["name"]]))
    return out


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text)).replace(" ", "").replace("\u3000", "")


def _address_fit(converted, addresses, areas):
    """Per datum: the share of named rows whose named areas all contain the point; the best datum if clear."""
    levels = _area_keys(areas)
    texts = [_norm(a) for a in addresses]
    named: list[list[tuple[int, int]]] = []  # per row: (level index, area index) named in its address
    for text in texts:
        hits = []
        for li, (_level, keys, *_rest) in enumerate(levels):
            found = [ai for ai, key in enumerate(keys) if len(key) >= MIN_NAME_CHARS and key in text]
            # a longer name containing a shorter one (新街口街道 vs 街口街道): keep the longest
            found = [ai for ai in found if not any(keys[ai] != keys[o] and keys[ai] in keys[o] for o in found)]
            hits += [(li, ai) for ai in found]
        named.append(hits)
    located: dict[coords.Datum, list[dict[int, int | None]]] = {}
    matches: dict[coords.Datum, np.ndarray] = {}
    rows_named = np.array([bool(h) for h in named])
    for datum, (lon, lat) in converted.items():
        points = shapely.points(lon, lat)
        per_level = []
        for _level, _keys, tree, *_rest in levels:
            point_idx, area_idx = tree.query(points, predicate="intersects")
            where: dict[int, int] = {}
            for p, a in zip(point_idx, area_idx):
                where.setdefault(int(p), int(a))
            per_level.append(where)
        located[datum] = per_level
        matches[datum] = np.array([bool(h) and all(per_level[li].get(k) == ai for li, ai in h)
                                   for k, h in enumerate(named)])
    n_named = int(rows_named.sum())
    if n_named == 0:
        return None, {}, located, named, levels
    shares = {d: float(m[rows_named].mean()) for d, m in matches.items()}
    order = sorted(shares, key=lambda d: -shares[d])
    best, second = order[0], order[1]
    if n_named < MIN_POINTS:
        return None, shares, located, named, levels
    wins = int(np.sum(matches[best] & ~matches[second]))
    losses = int(np.sum(~matches[best] & matches[second] & rows_named))
    if wins + losses == 0 or _binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue >= MAX_P_VALUE:
        return None, shares, located, named, levels
    return best, shares, located, named, levels


def _combine(street, address) -> tuple[coords.Datum | None, str]:
    if street is not None and address is not None:
        return (street, "streets+addresses") if street is address else (None, "conflict")
    if street is not None:
        return street, "streets"
    if address is not None:
        return address, "addresses"
    return None, "undecided"


def _mismatches(per_level, levels, named, addresses, rows, ids, names) -> tuple[AddressMismatch, ...]:
    """Every row whose address names an area that does not contain its point (``per_level``: the areas
    each point falls in under the datum used)."""
    out = []
    for k, hits in enumerate(named):
        wrong = [(li, ai) for li, ai in hits if per_level[li].get(k) != ai]
        if not wrong:
            continue
        named_txt, where_txt = [], []
        for li, ai in wrong:
            display = levels[li][4]
            named_txt.append(display[ai])
            at = per_level[li].get(k)
            where_txt.append(display[at] if at is not None else "—")
        out.append(AddressMismatch(row=int(rows[k]) if rows is not None else k,
                                   pharmacy_id=str(ids[k]) if ids is not None else "",
                                   name=str(names[k]) if names is not None else "",
                                   address=str(addresses[k]), named="、".join(named_txt),
                                   located="、".join(where_txt)))
    return tuple(out)


def _messages(declared, used, found, decided_by, medians, shares, n, n_named, n_mismatch, *, conflict: bool
              ) -> tuple[str, str]:
    def fig(lang):
        return DatumDecision(declared=declared, used=used, found=found, median_snap_m=medians,
                             address_match_share=shares).figures(lang)

    zh_fig, en_fig = fig("zh") or "无", fig("en") or "none"
    zh_fig = f"到道路中位距离/地址区划相符比例：{zh_fig}" if fig("zh") else "无可用证据（未给路网，地址中也没有区县/街道名称）"
    en_fig = f"median distance to a street · address match share: {en_fig}" if fig("en") else \
        "no evidence (no street network, and no address names a county or sub-district)"
    tail_zh = f"；{n_mismatch} 家药店地址中的区划与坐标位置不符" if n_mismatch else ""
    tail_en = f"; {n_mismatch} pharmacies' addresses name another area than their point" if n_mismatch else ""
    if decided_by in ("streets", "addresses", "streets+addresses"):
        zh = f"坐标系由数据判定为 {used.label('zh')}（{_BY_ZH[decided_by]}；{zh_fig}）{tail_zh}。"
        en = f"datum found from the data: {used.label('en')} (by {decided_by}; {en_fig}){tail_en}."
    elif decided_by == "confirmed":
        zh = (f"按用户确认的 {used.label('zh')} 读取，尽管数据表明是 {found.label('zh')}（{zh_fig}）{tail_zh}。")
        en = (f"read as {used.label('en')}, confirmed by the user although the data points to {found.label('en')} "
              f"({en_fig}){tail_en}.")
    else:
        why_zh = "道路贴合度与地址名称指向不同坐标系" if conflict else f"证据不足（{n} 个点，{n_named} 个地址含区划名称）或区分不明显"
        why_en = "the street fit and the address names point to different datums" if conflict else \
            f"too little or ambiguous evidence ({n} points, {n_named} addresses naming an area)"
        if decided_by == "declared":
            zh = f"按声明的 {used.label('zh')} 读取；数据无法判定坐标系：{why_zh}（{zh_fig}）{tail_zh}。"
            en = f"read as declared, {used.label('en')}; the data cannot decide the datum: {why_en} ({en_fig}){tail_en}."
        else:
            zh = f"无法由数据判定坐标系，按 {used.label('zh')} 读取：{why_zh}（{zh_fig}）{tail_zh}。请核对坐标来源。"
            en = (f"the data cannot decide the datum, read as {used.label('en')}: {why_en} ({en_fig}){tail_en}. "
                  f"Check where the coordinates come from.")
    return zh, en


def _binomtest(k: int, n: int, p: float, alternative: str):
    """scipy's binomial test, imported when a datum is first checked (scipy.stats costs 0.5 s to import,
    which every start of the app paid before any file was read)."""
    from scipy.stats import binomtest

    return binomtest(k, n, p, alternative=alternative)
