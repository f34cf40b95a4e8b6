"""Records the whole tool shares: services, pharmacies, sub-districts, counties, and a Region holding them.

Every layer is a GeoDataFrame in EPSG:4326 (WGS84 longitude/latitude). The demo region generator and
the data-ingest readers both produce exactly these schemas; :func:`validate_region` checks them once,
where data enters, so the rest of the code can rely on them.

Schemas (column: dtype, meaning)
--------------------------------
pharmacies (Point geometry)
    pharmacy_id: str, unique (统一社会信用代码 or the bureau's own id)
    name: str; address: str
    personal_account, outpatient_pooling, chronic_disease, dual_channel: bool — services held
    (one column per :class:`Service` value)
    chain: bool — part of a chain (连锁) rather than a single store (单体)
    optional: info_system_ready (bool, information-system upgrade done, HN-2025 (十); absent: unknown),
    cross_region_settlement (bool, R4), annual_volume_yuan (float), suspensions (int),
    credit_score (float), months_operating (int), risk_flag (bool, CD-2025); an optional number may be
    NaN (a blank cell: unknown), so a count column with a blank is float64 rather than int64;
    settlement status inputs (:mod:`planning.settlement`): info_system_accepted, traceability_accepted,
    suspension_start, suspension_end (dates: ISO text "2025-06-30" or datetime, blank None/NaT),
    earlier_suspensions (number), agreement_status and principal_status (canonical words, blank None)
subdistricts (Polygon / MultiPolygon geometry)
    code: str, unique (街道/乡镇 code, 9 digits); name: str
    kind: "street" (街道, urban) or "town" (镇/乡, rural)
    county_code: str — the county it belongs to
    population: int ≥ 0 — resident insured population (常住参保人口), persons
    optional employees (城镇职工参保人数) and chronic_patients (门诊慢特病人数): float persons, NaN unknown;
    the demand of the services (planning.demand)
counties (Polygon / MultiPolygon geometry)
    code: str, unique (6 digits); name: str
    fund_deficit_last_year, fund_deficit_forecast, fund_warning_letter: bool (rules B3, B4)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd

from planning.errors import SchemaError
from planning.text import Text, join

if TYPE_CHECKING:  # planning.completeness imports this module for Service
    from planning.completeness import DataCompleteness
    from planning.workers import WorkerLayer

WGS84 = "EPSG:4326"


class Service(str, enum.Enum):
    """A designated-pharmacy service (业务类别). The value is the column name in the pharmacy table."""

    PERSONAL_ACCOUNT = "personal_account"
    OUTPATIENT_POOLING = "outpatient_pooling"
    CHRONIC_DISEASE = "chronic_disease"
    DUAL_CHANNEL = "dual_channel"

    @property
    def text(self) -> Text:
        """The service's name in both languages."""
        return _SERVICE_LABELS[self]

    @property
    def label_zh(self) -> str:
        return self.text.zh

    @property
    def label_en(self) -> str:
        return self.text.en

    def label(self, lang: str = "zh") -> str:
        return self.text.get(lang)


def service_labels(services, lang: str = "zh") -> str:
    """Several services (members or values) in words, as a list is written in ``lang``: 门诊统筹、门诊慢特病."""
    return join((Service(s).text for s in services), lang)


_SERVICE_LABELS = {
    Service.PERSONAL_ACCOUNT: Text("个人账户", "personal account"),
    Service.OUTPATIENT_POOLING: Text("门诊统筹", "outpatient pooling"),
    Service.CHRONIC_DISEASE: Text("门诊慢特病", "chronic disease"),
    Service.DUAL_CHANNEL: Text("“双通道”", "dual channel"),
}

SERVICE_COLUMNS: tuple[str, ...] = tuple(s.value for s in Service)


class SubdistrictKind(str, enum.Enum):
    """街道 (urban street office) or 镇/乡 (rural town or township)."""

    STREET = "street"
    TOWN = "town"


# column -> (kind of check, required)
PHARMACY_SCHEMA: dict[str, tuple[str, bool]] = {
    "pharmacy_id": ("str", True),
    "name": ("str", True),
    "address": ("str", True),
    **{c: ("bool", True) for c in SERVICE_COLUMNS},
    "chain": ("bool", True),
    "info_system_ready": ("bool", False),
    "cross_region_settlement": ("bool", False),
    "annual_volume_yuan": ("number", False),
    "suspensions": ("number", False),
    "credit_score": ("number", False),
    "months_operating": ("number", False),
    "risk_flag": ("bool", False),
    "info_system_accepted": ("date", False),
    "traceability_accepted": ("date", False),
    "agreement_status": ("word", False),
    "suspension_start": ("date", False),
    "suspension_end": ("date", False),
    "earlier_suspensions": ("number", False),
    "principal_status": ("word", False),
}

SUBDISTRICT_SCHEMA: dict[str, tuple[str, bool]] = {
    "code": ("str", True),
    "name": ("str", True),
    "kind": ("kind", True),
    "county_code": ("str", True),
    "population": ("number", True),
    "employees": ("number", False),         # 城镇职工参保人数 (persons), demand of outpatient pooling
    "chronic_patients": ("number", False),  # 门诊慢特病人数 (persons), demand of chronic disease and dual channel
}

COUNTY_SCHEMA: dict[str, tuple[str, bool]] = {
    "code": ("str", True),
    "name": ("str", True),
    "fund_deficit_last_year": ("bool", True),
    "fund_deficit_forecast": ("bool", True),
    "fund_warning_letter": ("bool", True),
}

_LAYER_ZH = {"pharmacies": "药店", "subdistricts": "街道/乡镇", "counties": "县（市、区）"}


def validate_layer(
    gdf: gpd.GeoDataFrame,
    schema: dict[str, tuple[str, bool]],
    layer: str,
    geometry_types: tuple[str, ...],
) -> gpd.GeoDataFrame:
    """Check one layer against its schema; return it in EPSG:4326 with an id-based index untouched.

    Raises :class:`SchemaError` naming the first missing column, wrong type, duplicate id or bad CRS.
    """
    zh = _LAYER_ZH.get(layer, layer)
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise SchemaError(f"{zh}图层必须是 GeoDataFrame", f"layer '{layer}' must be a GeoDataFrame")
    if gdf.crs is None:
        raise SchemaError(f"{zh}图层没有坐标系", f"layer '{layer}' has no CRS; expected EPSG:4326")
    for column, (check, required) in schema.items():
        if column not in gdf.columns:
            if required:
                raise SchemaError(
                    f"{zh}图层缺少必需列“{column}”", f"layer '{layer}' lacks required column '{column}'"
                )
            continue
        values = gdf[column]
        bad = _bad_values(values, check, required=required)
        if bad.any():
            row = gdf.index[bad.to_numpy()][0]
            raise SchemaError(
                f"{zh}图层列“{column}”第 {row} 行的值 {values.loc[row]!r} 不符合类型 {check}",
                f"layer '{layer}' column '{column}' row {row}: value {values.loc[row]!r} is not {check}",
            )
    id_column = "pharmacy_id" if "pharmacy_id" in schema else "code"
    duplicated = gdf[id_column].duplicated(keep=False)
    if duplicated.any():
        ids = sorted(gdf.loc[duplicated, id_column].astype(str).unique())[:5]
        raise SchemaError(f"{zh}图层编号重复：{ids}", f"layer '{layer}' has duplicate ids: {ids}")
    geom_types = set(gdf.geom_type.dropna().unique())
    if not geom_types <= set(geometry_types) or gdf.geometry.isna().any() or gdf.geometry.is_empty.any():
        raise SchemaError(
            f"{zh}图层几何类型应为 {geometry_types}，且不能为空",
            f"layer '{layer}' geometries must be non-empty {geometry_types}, found {sorted(geom_types)}",
        )
    return gdf.to_crs(WGS84) if gdf.crs != WGS84 else gdf


def _bad_values(values: pd.Series, check: str, *, required: bool = True) -> pd.Series:
    """Row mask of values that fail ``check`` ("str", "bool", "number", "date", "word" or "kind").

    A number column must have a numeric dtype; NaN (a blank cell) fails only a ``required`` one.
    """
    if check == "str":
        return ~values.map(lambda v: isinstance(v, str) and v.strip() != "").astype(bool)
    if check == "bool":
        if pd.api.types.is_bool_dtype(values):
            return pd.Series(False, index=values.index)
        return ~values.map(lambda v: isinstance(v, bool)).astype(bool)
    if check == "number":
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            return values.isna() if required else pd.Series(False, index=values.index)
        return pd.Series(True, index=values.index)
    if check == "date":
        if pd.api.types.is_datetime64_any_dtype(values):
            return pd.Series(False, index=values.index)
        parsed = pd.to_datetime(values.where(values.notna(), None), errors="coerce", format="mixed")
        return values.notna() & parsed.isna()
    if check == "word":
        return ~values.map(lambda v: isinstance(v, str) or v is None or (isinstance(v, float) and v != v)).astype(bool)
    if check == "kind":
        return ~values.isin([k.value for k in SubdistrictKind])
    raise AssertionError(f"unknown schema check {check}")


@dataclass(frozen=True)
class Region:
    """A planning region: its counties, sub-districts, designated pharmacies and walking network source.

    All layers are GeoDataFrames in EPSG:4326 following the schemas in this module's docstring.
    ``network_path`` points at the street network file (.osm, .osm.gz, .osm.pbf or .graphml);
    ``rejected`` lists input rows that did not make it into the layers, with a ``reason`` column.
    ``workers`` is the optional worker layer (:mod:`planning.workers`).
    ``completeness`` says what the input files held and lacked (rows per layer, missing layers and
    columns with the rules they leave unjudged, the pharmacy datum decision, ingest warnings); None
    for the demo and hand-built regions: nothing is known to be missing.
    """

    name: str
    counties: gpd.GeoDataFrame
    subdistricts: gpd.GeoDataFrame
    pharmacies: gpd.GeoDataFrame
    network_path: Path | None = None
    fictional: bool = False
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["layer", "row", "reason"]))
    completeness: DataCompleteness | None = None
    #: Where people work (:class:`planning.workers.WorkerLayer`), weighed into the demand by the policy's
    #: ``workers_weight``; None: no worker layer.
    workers: WorkerLayer | None = None

    @property
    def population_known(self) -> bool:
        """Whether the sub-districts' ``population`` is known. False when the files gave none: it is then
        0 everywhere, the persons, shares and per-10,000 measures of an assessment are NaN (not judged)
        and coverage is read by street length."""
        return self.completeness is None or self.completeness.has_population

    def pharmacies_with(self, service: Service | str) -> gpd.GeoDataFrame:
        """The pharmacies holding ``service``."""
        column = Service(service).value
        return self.pharmacies[self.pharmacies[column]]


def validate_region(region: Region) -> Region:
    """Check every layer of ``region`` and the links between them (county codes); return it unchanged."""
    validate_layer(region.pharmacies, PHARMACY_SCHEMA, "pharmacies", ("Point",))
    validate_layer(region.subdistricts, SUBDISTRICT_SCHEMA, "subdistricts", ("Polygon", "MultiPolygon"))
    validate_layer(region.counties, COUNTY_SCHEMA, "counties", ("Polygon", "MultiPolygon"))
    unknown = set(region.subdistricts["county_code"]) - set(region.counties["code"])
    if unknown:
        raise SchemaError(
            f"街道/乡镇引用了不存在的县（市、区）编码：{sorted(unknown)}",
            f"sub-districts reference unknown county codes: {sorted(unknown)}",
        )
    if (region.subdistricts["population"] < 0).any():
        raise SchemaError("人口不能为负数", "population must not be negative")
    return region
