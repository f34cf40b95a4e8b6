"""Policy: rule ids with their citations, and the parameters of an assessment, loaded from TOML.

Rules are data. :data:`RULES` lists every rule id of ``../shared/POLICY.md`` with the document and
article it rests on; a :class:`Policy` says which of them apply and with which numbers (walk minutes,
speed, saturation thresholds). Presets live in ``geodata/policies/*.toml``:

- ``hunan-2025`` (HN-2025, 湘医保发〔2025〕8号): R1, R2, R4, B2, B3, B5;
- ``mudanjiang-2025`` (MDJ-2025): R2, R3, B1, B2, B4;
- ``default``: both together.

Neither text gives saturation numbers; the defaults here are documented with their sources and meant
to be set by each bureau in its own policy file.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from planning.access import DEFAULT_BUDGET_MIN, DEFAULT_SPEED_M_PER_MIN
from planning.demand import DEFAULT_DEMAND, DEMAND_COLUMNS
from planning.errors import ParameterError
from planning.isochrones import DEFAULT_ACCESS_WIDTH_M, DEFAULT_CELL_M
from planning.model import Service
from planning.network import DEFAULT_MAX_SNAP_M
from planning.text import Text

POLICY_DIR = Path(__file__).resolve().parents[1] / "geodata" / "policies"


@dataclass(frozen=True)
class Rule:
    """One rule: its id, the article it comes from, and a one-line statement in both languages."""

    rule_id: str
    citation: str
    text_zh: str
    text_en: str

    def text(self, lang: str = "zh") -> str:
        return Text(self.text_zh, self.text_en).get(lang)


RULES: dict[str, Rule] = {r.rule_id: r for r in (
    Rule("R1", "HN-2025 (二)", "城区每个街道办事处至少有1家门诊统筹和1家门诊慢特病定点药店（同一药店兼有可同时计入）",
         "every urban street office has >= 1 outpatient-pooling and >= 1 chronic-disease pharmacy (one with both counts for both)"),
    Rule("R2", "HN-2025 (二); MDJ-2025 art. 14", "每个县（市、区）至少有1家“双通道”定点药店",
         "every county has >= 1 dual-channel pharmacy"),
    Rule("R3", "MDJ-2025 art. 5, 10, 14", "参保人步行15分钟可达医保定点服务；优先在空白或相对不足的居住区和工作区配置",
         "residents reach a designated service within a 15-minute walk; blank or underserved areas come first"),
    Rule("R4", "HN-2025 (二)", "开通相关业务的定点药店应支持同城同业务范围异地直接结算",
         "pharmacies with insurance services support same-city cross-region direct settlement"),
    Rule("B1", "MDJ-2025 art. 10, 14", "同类型定点药店15分钟步行服务圈内原则上不再新增定点",
         "no new designation of a type inside the 15-minute walking circle of an existing site of that type"),
    Rule("B2", "HN-2025 (一); MDJ-2025 art. 13", "资源相对过剩（饱和）地区不再新增定点药店",
         "relatively surplus (saturated) areas add no designated pharmacy"),
    Rule("B3", "HN-2025 (一)", "职工医保基金当期亏损的统筹地区不得新增定点药店",
         "counties whose employee fund ran a current-period deficit add no designated pharmacy"),
    Rule("B4", "MDJ-2025 art. 4", "上年赤字、预计本年赤字或收到基金预警函的地区总量平衡、严格退出、审慎新增",
         "last year's deficit, a forecast deficit or a fund warning letter: total kept balanced, additions only against exits"),
    Rule("B5", "HN-2025 (十)", "未完成信息系统改造的药店不得新增定点",
         "a pharmacy without the information-system upgrade cannot be newly designated"),
    Rule("S", "MDJ-2025 art. 13; HN-2025 (一)", "按常住参保人口和基金承受能力控制数量，区分相对饱和、均衡、相对不足、空白区域",
         "quantity follows the resident insured population and fund capacity: saturated, balanced, underserved, blank"),
)}

#: The policy documents the rules' citations name (../shared/POLICY.md), by the id a citation starts with.
DOCUMENTS: dict[str, tuple[str, str]] = {
    "HN-2025": ("湖南省医疗保障局《关于进一步加强基本医疗保险定点零售药店管理的通知》（湘医保发〔2025〕8号）",
                "Hunan Healthcare Security Administration, notice on designated retail pharmacies (Xiang Yibao Fa [2025] No. 8)"),
    "MDJ-2025": ("《牡丹江市医保定点医药机构资源配置实施细则（试行）（征求意见稿）》",
                 "Mudanjiang implementing rules for the allocation of designated medical institutions (draft for comment)"),
    "CX-2022": ("楚雄州《医疗保障定点管理经办规程实施细则（试行）》（楚医保〔2022〕10号）",
                "Chuxiong implementing rules of the designated-management procedures (Chu Yibao [2022] No. 10)"),
}


def cited_documents(rule_ids) -> list[str]:
    """The document ids (keys of :data:`DOCUMENTS`) the citations of ``rule_ids`` name, in first-cited order."""
    found: list[str] = []
    for rule_id in rule_ids:
        for doc in DOCUMENTS:
            if doc in RULES[rule_id].citation and doc not in found:
                found.append(doc)
    return found


#: Blocks that a gap rule cannot soften to "review" (a deficit county, a pharmacy without the
#: information-system upgrade); B1, B2 and B4 exceptions are the bureau's call (POLICY.md).
HARD_BLOCKS = frozenset({"B3", "B5"})


#: What a class threshold's per-10,000 density can count (see :attr:`SaturationThresholds.density`), with
#: the table column holding it.
DENSITY_BASES: dict[str, str] = {"residents": "per_10k", "demand": "per_10k_demand", "e2sfca": "e2sfca_per_10k"}


@dataclass(frozen=True)
class SaturationThresholds:
    """Class thresholds for one service, per sub-district (see :func:`planning.assess` for the order).

    - ``blank``: no pharmacy of the service in the sub-district and covered share < ``blank_max_covered_share``;
    - ``saturated``: pharmacies per 10,000 insured residents >= ``saturated_per_10k`` and covered share
      >= ``saturated_min_covered_share``;
    - ``underserved``: per 10,000 < ``underserved_per_10k`` or covered share < ``underserved_min_covered_share``;
    - ``balanced``: the rest.

    Defaults for all designated pharmacies (personal account): Jin & Huang 2020 (中国药房 31(3)) found
    1,917-4,157 residents per pharmacy across Liaoning districts, i.e. 5.2 to 2.4 per 10,000; the 80 %
    covered-share floor is the national 15-minute target cited by IJGI 2022, 11(8):436.
    """

    saturated_per_10k: float = 5.2
    underserved_per_10k: float = 2.4
    saturated_min_covered_share: float = 0.95
    underserved_min_covered_share: float = 0.80
    blank_max_covered_share: float = 0.20
    #: What the per-10,000 thresholds count (one of :data:`DENSITY_BASES`): pharmacies per 10,000 resident
    #: insured ("residents", MDJ-2025 art. 13, the default), per 10,000 of the service's own demand
    #: ("demand", :mod:`planning.demand`), or capacity-weighted pharmacies within reach per 10,000 of that
    #: demand ("e2sfca", :mod:`planning.capacity`).
    density: str = "residents"

    def __post_init__(self):
        if self.density not in DENSITY_BASES:
            raise ParameterError(f"density 应为 {list(DENSITY_BASES)} 之一，而不是 {self.density!r}",
                                 f"density must be one of {list(DENSITY_BASES)}, not {self.density!r}")
        for f in fields(self):
            if f.name == "density":
                continue
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ParameterError(f"饱和度阈值 {f.name} 必须是非负数", f"saturation threshold {f.name} must be a number >= 0")
            if f.name.endswith("share") and value > 1:
                raise ParameterError(f"{f.name} 是比例，应在 0 到 1 之间", f"{f.name} is a share and must lie in [0, 1]")
        if self.underserved_per_10k > self.saturated_per_10k:
            raise ParameterError("underserved_per_10k 不能大于 saturated_per_10k",
                                 "underserved_per_10k must not exceed saturated_per_10k")


#: Default thresholds per service. Outpatient pooling and chronic disease are held by subsets of the
#: designated pharmacies, so their density bands are lower (about half and a third of all pharmacies).
DEFAULT_THRESHOLDS: dict[Service, SaturationThresholds] = {
    Service.PERSONAL_ACCOUNT: SaturationThresholds(),
    Service.OUTPATIENT_POOLING: SaturationThresholds(saturated_per_10k=2.6, underserved_per_10k=1.0),
    Service.CHRONIC_DISEASE: SaturationThresholds(saturated_per_10k=1.8, underserved_per_10k=0.6),
    Service.DUAL_CHANNEL: SaturationThresholds(saturated_per_10k=0.5, underserved_per_10k=0.02,
                                               underserved_min_covered_share=0.0, blank_max_covered_share=0.0),
}


@dataclass(frozen=True)
class Policy:
    """The parameters and rule set of one assessment. Units: minutes, metres, metres per minute. The
    walking defaults are the engine's own (:mod:`planning.access`, :mod:`planning.isochrones`,
    :mod:`planning.network`), defined there once."""

    policy_id: str = "default"
    title_zh: str = "默认（湖南 2025 + 牡丹江 2025）"
    title_en: str = "default (Hunan 2025 + Mudanjiang 2025)"
    walk_minutes: float = DEFAULT_BUDGET_MIN
    speed_m_per_min: float = DEFAULT_SPEED_M_PER_MIN
    access_width_m: float = DEFAULT_ACCESS_WIDTH_M
    max_snap_m: float = DEFAULT_MAX_SNAP_M
    cell_m: float = DEFAULT_CELL_M
    rules: frozenset[str] = frozenset({"R1", "R2", "R3", "R4", "B1", "B2", "B3", "B4", "B5", "S"})
    thresholds: dict[Service, SaturationThresholds] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    #: Whether a pharmacy whose settlement is suspended (:mod:`planning.settlement`) still counts for
    #: coverage, R1/R2, the saturation counts and the B1 circles. Default False: a suspended pharmacy
    #: settles nothing, so it serves nobody and its circle does not block B1 (a new designation there
    #: may fill the gap it leaves); True counts it as the input does, and the summaries then say which
    #: requirement passes only through suspended pharmacies. Terminated pharmacies never count.
    suspended_serve: bool = False
    #: The day the settlement status is judged on (None: today).
    assessment_date: dt.date | None = None
    #: The sub-district column each service's demand is read from (:data:`planning.demand.DEMAND_COLUMNS`).
    demand: dict[Service, str] = field(default_factory=lambda: dict(DEFAULT_DEMAND))
    #: How much one worker of the region's worker layer counts in each service's demand, against one
    #: resident (0-1; :mod:`planning.workers`). 0 (the default): workplaces weigh nothing.
    workers_weight: dict[Service, float] = field(default_factory=lambda: {s: 0.0 for s in Service})
    #: The pharmacy column giving each pharmacy's capacity in the E2SFCA measure (None: 1 per pharmacy).
    capacity_column: str | None = None

    def __post_init__(self):
        if not isinstance(self.suspended_serve, bool):
            raise ParameterError("suspended_serve 必须是 true 或 false", "policy key 'suspended_serve' must be true or false")
        if self.assessment_date is not None and (not isinstance(self.assessment_date, dt.date)
                                                 or isinstance(self.assessment_date, dt.datetime)):
            raise ParameterError("assessment_date 必须是日期（如 2025-07-01）",
                                 "policy key 'assessment_date' must be a date (e.g. 2025-07-01)")
        checks = {
            "walk_minutes": (1, 120), "speed_m_per_min": (20, 150), "access_width_m": (0, 500),
            "max_snap_m": (1, 5000), "cell_m": (2, 200),
        }
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
                raise ParameterError(f"策略参数 {name} = {value!r} 超出范围 [{lo}, {hi}]",
                                     f"policy key '{name}' = {value!r} is outside [{lo}, {hi}]")
        bad = {s.value: c for s, c in self.demand.items() if c not in DEMAND_COLUMNS}
        if bad:
            raise ParameterError(f"未知的需求列：{bad}（可用：{sorted(DEMAND_COLUMNS)}）",
                                 f"unknown demand column: {bad} (known: {sorted(DEMAND_COLUMNS)})")
        for service, weight in self.workers_weight.items():
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0 <= weight <= 1:
                raise ParameterError(f"workers_weight（{Service(service).value}）= {weight!r} 应在 0 到 1 之间",
                                     f"policy key 'demand.workers_weight' ({Service(service).value}) = {weight!r} "
                                     "must lie in [0, 1]")
        unknown = set(self.rules) - set(RULES)
        if unknown:
            raise ParameterError(f"未知的规则编号：{sorted(unknown)}（可用：{sorted(RULES)}）",
                                 f"unknown rule ids: {sorted(unknown)} (known: {sorted(RULES)})")

    @property
    def budget_m(self) -> float:
        """Walk distance of the time budget, metres."""
        return self.walk_minutes * self.speed_m_per_min

    @property
    def on(self) -> dt.date:
        """The day settlement status is judged on: ``assessment_date``, or today."""
        return self.assessment_date or dt.date.today()

    @property
    def weighs_workers(self) -> bool:
        """Whether any service counts the worker layer (a ``workers_weight`` above 0)."""
        return any(w > 0 for w in self.workers_weight.values())

    def applies(self, rule_id: str) -> bool:
        return rule_id in self.rules

    def with_changes(self, **changes: Any) -> Policy:
        """A copy with some parameters changed (validated again)."""
        return replace(self, **changes)


_TOP_KEYS = {"id", "title_zh", "title_en", "rules", "walk", "saturation", "settlement", "demand", "capacity_column"}
_SETTLEMENT_KEYS = {"suspended_serve": "suspended_serve", "assessment_date": "assessment_date"}
_WALK_KEYS = {"minutes": "walk_minutes", "speed_m_per_min": "speed_m_per_min", "access_width_m": "access_width_m",
              "max_snap_m": "max_snap_m", "cell_m": "cell_m"}


def policy_from_dict(data: dict[str, Any]) -> Policy:
    """Build a :class:`Policy` from the TOML structure; unknown keys or bad values name the key."""
    reject_unknown_keys(data, _TOP_KEYS, "")
    walk = data.get("walk", {})
    reject_unknown_keys(walk, set(_WALK_KEYS), "walk.")
    kwargs: dict[str, Any] = {_WALK_KEYS[k]: v for k, v in walk.items()}
    settlement = data.get("settlement", {})
    reject_unknown_keys(settlement, set(_SETTLEMENT_KEYS), "settlement.")
    kwargs.update({_SETTLEMENT_KEYS[k]: v for k, v in settlement.items()})
    for key, attr in (("id", "policy_id"), ("title_zh", "title_zh"), ("title_en", "title_en")):
        if key in data:
            kwargs[attr] = str(data[key])
    if "rules" in data:
        rules = data["rules"]
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise ParameterError("rules 必须是规则编号列表", "policy key 'rules' must be a list of rule ids")
        kwargs["rules"] = frozenset(rules)
    thresholds = dict(DEFAULT_THRESHOLDS)
    saturation = data.get("saturation", {})
    reject_unknown_keys(saturation, {s.value for s in Service}, "saturation.")
    allowed = {f.name for f in fields(SaturationThresholds)}
    for service_name, values in saturation.items():
        reject_unknown_keys(values, allowed, f"saturation.{service_name}.")
        service = Service(service_name)
        thresholds[service] = replace(thresholds[service], **values)
    kwargs["thresholds"] = thresholds
    demand = dict(data.get("demand", {}))
    reject_unknown_keys(demand, {s.value for s in Service} | {"workers_weight"}, "demand.")
    weight = demand.pop("workers_weight", 0.0)
    if isinstance(weight, dict):  # one weight per service
        reject_unknown_keys(weight, {s.value for s in Service}, "demand.workers_weight.")
        kwargs["workers_weight"] = {**{s: 0.0 for s in Service}, **{Service(k): v for k, v in weight.items()}}
    else:  # one weight for every service
        kwargs["workers_weight"] = {s: weight for s in Service}
    kwargs["demand"] = {**DEFAULT_DEMAND, **{Service(k): str(v) for k, v in demand.items()}}
    if "capacity_column" in data:
        kwargs["capacity_column"] = str(data["capacity_column"]) or None
    return Policy(**kwargs)


def load_policy(name_or_path: str | Path = "default") -> Policy:
    """A preset by name (``default``, ``hunan-2025``, ``mudanjiang-2025``) or a TOML file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = POLICY_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            known = sorted(p.stem for p in POLICY_DIR.glob("*.toml"))
            raise ParameterError(f"未知的策略预设“{name_or_path}”（可用：{known}）",
                                 f"unknown policy preset '{name_or_path}' (known: {known})")
    if not path.is_file():
        raise ParameterError(f"找不到策略文件：{path}", f"policy file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ParameterError(f"策略文件 {path.name} 不是有效的 TOML：{exc}",
                             f"policy file {path.name} is not valid TOML: {exc}") from exc
    return policy_from_dict(data)


def reject_unknown_keys(mapping: Any, allowed: set[str], prefix: str = "") -> None:
    """Refuse a mapping with a key outside ``allowed``, naming the first unknown key (``prefix`` + key)
    and the allowed ones: policy files and policy changes say exactly which key is wrong."""
    if not isinstance(mapping, dict):
        raise ParameterError(f"策略键 {prefix.rstrip('.')} 应为表", f"policy key '{prefix.rstrip('.')}' must be a table")
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ParameterError(f"未知的策略键：{prefix}{unknown[0]}（可用：{sorted(allowed)}）",
                             f"unknown policy key '{prefix}{unknown[0]}' (allowed: {sorted(allowed)})")
