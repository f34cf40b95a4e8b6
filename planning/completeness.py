"""What the input data could and could not tell: the datum decision and the data-completeness table.

:class:`DatumDecision` records which coordinate system the pharmacy coordinates were read in and why
(the fit to the street network and the address check under each candidate datum, see
:mod:`planning.ingest.datum`). :class:`DataCompleteness` lists, per input layer, the rows read, kept and
rejected, what was missing, and which rules each missing input leaves unjudged; ``.table(lang)`` gives
it as a table for people (Chinese or English). :func:`planning.ingest.build_region` fills both and hangs
them on :attr:`planning.model.Region.completeness` (None for the demo and hand-built regions: nothing
known to be missing).

Which rules a missing input disables is rule metadata, kept in one mapping, :data:`RULES_DISABLED_BY`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from planning.coords import Datum
from planning.model import Service
from planning.text import Text, check_lang, join

#: Missing input -> the rules (ids of :data:`planning.policy.RULES`; "R3-priorities" and "R3-shares" are
#: the parts of R3 that need sub-districts and population) that cannot be judged without it.
#:
#: - ``fund_status``: the county fund-status table (B3 deficit block, B4 deficit/warning-letter caution);
#: - ``subdistricts``: sub-district boundaries (R1 per street office, R2 per county, S classes, B2
#:   saturation, R3 priority areas);
#: - ``population``: resident insured population (S per-10,000 classes, R3 shares of residents);
#: - ``service:<value>``: a pharmacy sheet without that service's column (the service's own R1/R2,
#:   S, B1, B2 and R3 findings);
#: - ``column:info_system_ready`` (B5; the settlement rule ST-info when there is no acceptance-date column
#:   either), ``column:cross_region_settlement`` (R4): optional pharmacy columns;
#: - ``column:traceability_accepted``, ``column:agreement_status``, ``column:principal_status``: the
#:   settlement-status inputs (:data:`planning.settlement.STATUS_INPUTS`); without them the status of
#:   every pharmacy is "not judged" (they still count as serving: the data cannot remove them).
#:
#: A layer can also be missing without disabling a rule: ``workers``, the worker layer a policy with
#: ``workers_weight`` > 0 asks for (:mod:`planning.workers`); without it the demand is the residents
#: alone, which its note says.
RULES_DISABLED_BY: dict[str, tuple[str, ...]] = {
    "fund_status": ("B3", "B4"),
    "subdistricts": ("R1", "R2", "S", "B2", "R3-priorities"),
    "population": ("S", "R3-shares"),
    f"service:{Service.PERSONAL_ACCOUNT.value}": ("S", "B1", "B2", "R3"),
    f"service:{Service.OUTPATIENT_POOLING.value}": ("R1", "S", "B1", "B2", "R3"),
    f"service:{Service.CHRONIC_DISEASE.value}": ("R1", "S", "B1", "B2", "R3"),
    f"service:{Service.DUAL_CHANNEL.value}": ("R2", "S", "B1", "B2", "R3"),
    "column:info_system_ready": ("B5", "ST-info"),
    "column:cross_region_settlement": ("R4",),
    "column:traceability_accepted": ("ST-trace",),
    "column:agreement_status": ("ST-suspended", "ST-terminated", "ST-180", "ST-twice"),
    "column:principal_status": ("ST-principal",),
}

#: Display names of the layers and missing inputs, (Chinese, English).
_LABELS: dict[str, tuple[str, str]] = {
    "pharmacies": ("定点药店", "pharmacies"),
    "subdistricts": ("街道/乡镇边界", "sub-district boundaries"),
    "counties": ("县（市、区）边界", "county boundaries"),
    "population": ("人口", "population"),
    "fund_status": ("基金运行情况表", "fund-status table"),
    "network": ("路网", "street network"),
    "population_points": ("人口格网", "population grid"),
    "buildings": ("居住建筑", "residential buildings"),
    "workers": ("就业人员（工作地）", "workers (where people work)"),
    "column:info_system_ready": ("“信息系统改造”或“信息系统验收日期”列", "'info_system_ready' or 'info_system_accepted' column"),
    "column:cross_region_settlement": ("“异地结算”列", "'cross_region_settlement' column"),
    "column:traceability_accepted": ("“追溯码落实日期”列", "'traceability_accepted' column"),
    "column:agreement_status": ("“协议状态”或“暂停开始日期”列", "'agreement_status' or 'suspension_start' column"),
    "column:principal_status": ("“主要负责人医保支付资格”列", "'principal_status' column"),
    **{f"service:{s.value}": (f"“{s.label_zh.strip('“”')}”业务列", f"'{s.label_en.strip(chr(34))}' service column")
       for s in Service},
}


def label(key: str, lang: str = "zh") -> str:
    """The display name of a layer or missing input (a key of :data:`RULES_DISABLED_BY` or a layer name)."""
    return Text(*_LABELS.get(key, (key, key))).get(lang)


def rules_disabled(missing: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The rule ids disabled by these missing inputs, each once, in the order of :data:`RULES_DISABLED_BY`."""
    out: list[str] = []
    for key in missing:
        for rule in RULES_DISABLED_BY.get(key, ()):
            if rule not in out:
                out.append(rule)
    return tuple(out)


# ======================================================================================= datum
@dataclass(frozen=True)
class AddressMismatch:
    """A pharmacy whose address names another area than the polygon its point falls in (under the datum used)."""

    row: int
    pharmacy_id: str
    name: str
    address: str
    named: str
    located: str


@dataclass(frozen=True)
class DatumDecision:
    """The coordinate system the pharmacy coordinates were read in, and the evidence.

    Attributes
    ----------
    declared : Datum or None
        What the user declared; None for ``crs="auto"``.
    used : Datum
        The datum the coordinates were converted from (to WGS84).
    found : Datum or None
        The datum the data points to (None: the evidence did not decide).
    median_snap_m : dict
        Datum -> median straight distance (metres) from the points to the nearest walkable street when
        read in that datum; empty without a street network.
    address_match_share : dict
        Datum -> share (0-1) of the pharmacies whose address names a county or sub-district that
        contain the point read in that datum; empty when no address names an area.
    n_points : int
        Points with usable coordinates the street fit used.
    n_named : int
        Pharmacies whose address names at least one known county or sub-district.
    decided_by : str
        "streets", "addresses", "streets+addresses" (the data decided), "declared" (the data did not
        contradict the declared datum), "confirmed" (the user kept a declared datum the data
        contradicts), "undecided" (auto, but the evidence was too thin or ambiguous: WGS84 used).
    message_zh, message_en : str
        The decision in one or two sentences, with the figures.
    mismatches : tuple of AddressMismatch
        Every pharmacy whose address names another area than its point under ``used``.
    """

    declared: Datum | None
    used: Datum
    found: Datum | None
    median_snap_m: dict[Datum, float] = field(default_factory=dict)
    address_match_share: dict[Datum, float] = field(default_factory=dict)
    n_points: int = 0
    n_named: int = 0
    decided_by: str = "undecided"
    message_zh: str = ""
    message_en: str = ""
    mismatches: tuple[AddressMismatch, ...] = ()

    @property
    def contradicted(self) -> bool:
        """The user declared a datum and the data points clearly to another one."""
        return self.declared is not None and self.found is not None and self.found is not self.declared

    def message(self, lang: str = "zh") -> str:
        return Text(self.message_zh, self.message_en).get(lang)

    def figures(self, lang: str = "zh") -> str:
        """The street fit and address shares per datum, e.g. "WGS84 15 米 · 72 %; GCJ-02 11 米 · 100 %" (no " / ": the
        figures go inside "中文 / English" notes)."""
        parts = []
        for datum in Datum:
            bits = []
            if datum in self.median_snap_m:
                bits.append(f"{self.median_snap_m[datum]:.1f} {Text('米', 'm').get(lang)}")
            if datum in self.address_match_share:
                bits.append(f"{100 * self.address_match_share[datum]:.0f} %")
            if bits:
                parts.append(f"{datum.label(lang)} {' · '.join(bits)}")
        return Text("；", "; ").get(lang).join(parts)


# ======================================================================================= completeness
@dataclass(frozen=True)
class LayerStatus:
    """One input layer: where it came from, rows read / kept / rejected, what it lacked.

    ``source`` is the file name ("" when the layer was not given or was derived); ``missing`` holds
    keys of :data:`RULES_DISABLED_BY` (the layer itself, or columns of it); ``notes`` are bilingual
    remarks ("中文 / English"). Counts are None for a layer that was not given.
    """

    layer: str
    source: str = ""
    rows_read: int | None = None
    clean: int | None = None
    rejected: int | None = None
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def disables(self) -> tuple[str, ...]:
        return rules_disabled(self.missing)


_COLUMNS = {"zh": ("图层", "来源", "读入行数", "导入", "拒绝", "缺少", "无法判定的规则", "说明"),
            "en": ("layer", "source", "rows read", "clean", "rejected", "what was missing",
                   "which rules it disables", "notes")}


@dataclass(frozen=True)
class DataCompleteness:
    """What the inputs of a region held and lacked (see the module docstring).

    ``layers`` lists every input layer, given or not; ``missing_services`` the services without a
    column in the pharmacy sheet (their pharmacies were read as not holding them: those values are
    unknown, not "no"); ``has_boundaries`` / ``has_population`` / ``has_fund_status`` whether those
    inputs were given; ``datum`` the pharmacy datum decision; ``warnings`` every ingest and network
    warning raised while the region was built ("中文 / English" text).
    """

    layers: tuple[LayerStatus, ...]
    missing_services: frozenset[Service] = frozenset()
    has_boundaries: bool = True
    has_population: bool = True
    has_fund_status: bool = True
    datum: DatumDecision | None = None
    warnings: tuple[str, ...] = ()

    @property
    def missing(self) -> tuple[str, ...]:
        """Every missing input, as keys of :data:`RULES_DISABLED_BY`."""
        return tuple(key for layer in self.layers for key in layer.missing)

    @property
    def disabled_rules(self) -> tuple[str, ...]:
        """Every rule id some missing input leaves unjudged."""
        return rules_disabled(self.missing)

    def layer(self, name: str) -> LayerStatus | None:
        return next((s for s in self.layers if s.layer == name), None)

    def table(self, lang: str = "zh") -> pd.DataFrame:
        """One row per layer: layer, source, rows read, clean, rejected, what was missing, which rules it
        disables, notes; headers and words in ``lang`` ("zh" or "en")."""
        rows = []
        for status in self.layers:
            half = [Text.parse(note).get(lang) for note in status.notes]
            rows.append((label(status.layer, lang), status.source,
                         *("" if n is None else int(n) for n in (status.rows_read, status.clean, status.rejected)),
                         join((Text(label(k, "zh"), label(k, "en")) for k in status.missing), lang),
                         join((Text(r, r) for r in status.disables), lang), Text("；", "; ").get(lang).join(half)))
        return pd.DataFrame(rows, columns=list(_COLUMNS[check_lang(lang)]))

    def frame(self) -> pd.DataFrame:
        """The table with machine names (CSV, the XLSX through :func:`planning.present.for_people`):
        input_layer, source, rows_read, rows_clean, rows_rejected, missing_inputs (keys of
        :data:`RULES_DISABLED_BY`, comma-separated), rules_not_judged (rule ids), notes ("中文 / English",
        separated by " | ")."""
        return pd.DataFrame([{"input_layer": s.layer, "source": s.source, "rows_read": s.rows_read,
                              "rows_clean": s.clean, "rows_rejected": s.rejected,
                              "missing_inputs": ",".join(s.missing), "rules_not_judged": ",".join(s.disables),
                              "notes": " | ".join(s.notes)} for s in self.layers]).astype(
            {"rows_read": "Int64", "rows_clean": "Int64", "rows_rejected": "Int64"})

    def records(self) -> dict:
        """Plain JSON-ready records for machine outputs (the gap report's metadata): ``data_completeness``,
        one dict per layer (layer, source, rows_read, clean, rejected, missing, disables, notes), and
        ``datum`` (declared, used, found, decided_by, median_snap_m and address_match_share per datum;
        None when no datum was decided)."""
        layers = [{"layer": s.layer, "source": s.source, "rows_read": s.rows_read, "clean": s.clean,
                   "rejected": s.rejected, "missing": list(s.missing), "disables": list(s.disables),
                   "notes": list(s.notes)} for s in self.layers]
        datum = None
        if self.datum is not None:
            d = self.datum
            datum = {"declared": d.declared.value if d.declared else None, "used": d.used.value,
                     "found": d.found.value if d.found else None, "decided_by": d.decided_by,
                     "median_snap_m": {k.value: round(float(v), 2) for k, v in d.median_snap_m.items()},
                     "address_match_share": {k.value: round(float(v), 4) for k, v in d.address_match_share.items()},
                     "address_mismatches": len(d.mismatches)}
        return {"data_completeness": layers, "datum": datum}

    def text(self, lang: str = "zh") -> str:
        """The table as plain text lines (for the terminal), each layer's notes (layer chosen, geometry
        repaired, overlaps, defaults...) below it, then the datum decision and the warnings."""
        table = self.table(lang)
        lines = [" | ".join(table.columns[:-1])]
        lines += [" | ".join(str(v) for v in row[:-1]) for row in table.itertuples(index=False)]
        for status in self.layers:
            lines += [f"  - {label(status.layer, lang)}: {Text.parse(note).get(lang)}" for note in status.notes]
        if self.datum is not None:
            lines.append(Text("坐标系：", "datum: ").get(lang) + self.datum.message(lang))
        for warning in self.warnings:
            lines.append("! " + Text.parse(warning).get(lang))
        return "\n".join(lines)
