"""Tables for people: a library table with its headers and values in Chinese or English.

The library's tables (``Assessment.subdistricts``, ``.counties``, ``Region.rejected``, the scenario
diff tables, ...) keep machine names, which the exports (CSV, XLSX, GeoJSON) keep as a stable schema
for GIS and scripts. :func:`for_people` is what a planner reads on screen, in the app or a notebook:
headers and codes in words, persons as whole numbers, shares as percentages, areas in km² to three
decimals. Numbers stay numbers, so a table shown in the app still sorts by value.
"""

from __future__ import annotations

import pandas as pd

from planning.rules import CLASS_LABELS
from planning.settlement import STATUS_LABELS, status_summary, suspension_notes
from planning.completeness import label as completeness_label
from planning.i18n import t
from planning.model import Service, service_labels
from planning.policy import RULES
from planning.text import Text, join
from planning.workers import worker_status

#: Header of each known column, (Chinese, English). Columns ending in ``_before`` / ``_after`` /
#: ``_delta`` take their stem's header and a suffix; unknown columns keep their name.
COLUMN_LABELS: dict[str, tuple[str, str]] = {
    "code": ("代码", "code"),
    "name": ("名称", "name"),
    "kind": ("类型", "kind"),
    "county_code": ("所属区县代码", "county code"),
    "service": ("业务类别", "service"),
    "services": ("开通业务", "services"),
    "population": ("常住参保人口", "insured residents"),
    "pharmacies": ("定点药店数", "pharmacies"),
    "suspended": ("暂停结算药店数", "suspended pharmacies"),
    "info_system_accepted": ("信息系统验收日期", "information system accepted on"),
    "traceability_accepted": ("追溯码落实日期", "traceability codes since"),
    "agreement_status": ("协议状态", "agreement status"),
    "suspension_start": ("暂停开始日期", "suspension start"),
    "suspension_end": ("暂停结束日期", "suspension end"),
    "earlier_suspensions": ("此前暂停次数", "earlier suspensions"),
    "principal_status": ("主要负责人支付资格", "principal's qualification"),
    "settlement": ("结算状态", "settlement status"),
    "settlement_rules": ("结算状态依据", "settlement status rules"),
    "settlement_until": ("暂停至", "suspended until"),
    "settlement_not_judged": ("结算状态未判定的规则", "settlement rules not judged"),
    "serves": ("计入服务", "counts as serving"),
    "exit_reason": ("退出原因", "exit reason"),
    "persons_losing_circle": ("失去服务圈的人口", "residents losing their circle"),
    "requirements_broken": ("变为不满足的要求", "requirements broken"),
    "safe": ("可安全退出", "safe exit"),
    "per_10k": ("每万参保人药店数", "pharmacies per 10,000 insured"),
    "demand": ("需求人数", "demand (persons)"),
    "demand_basis": ("需求口径", "demand basis"),
    "per_10k_demand": ("每万需求人数药店数", "pharmacies per 10,000 of demand"),
    "e2sfca_per_10k": ("可达供给（E2SFCA，每万需求人数）", "capacity within reach (E2SFCA, per 10,000 of demand)"),
    "residents_per_pharmacy": ("每店服务人口", "residents per pharmacy"),
    "covered": ("时限内人口", "residents within the walk time"),
    "covered_share": ("时限内覆盖率（%）", "share within the walk time (%)"),
    "uncovered": ("时限外人口", "residents beyond the walk time"),
    "placed": ("落到路网的人口", "residents placed on streets"),
    "street_km": ("步行路网（公里）", "walkable streets (km)"),
    "street_covered_km": ("时限内步行路网（公里）", "walkable streets within the walk time (km)"),
    "street_covered_share": ("时限内步行路网占比（%，按长度）", "share of street length within the walk time (%)"),
    "class": ("分类", "class"),
    "class_measure": ("判定指标", "deciding measure"),
    "class_reason": ("判定依据", "reason"),
    "class_rule": ("分类规则", "class rule"),
    "class_changed": ("分类变化", "class changed"),
    "r1_ok": ("R1 满足", "R1 met"),
    "r1_shortfall": ("R1 缺口", "R1 shortfall"),
    "r1_failing": ("R1 未满足的街道数", "street offices failing R1"),
    "r2_ok": ("R2 满足", "R2 met"),
    "r2_shortfall": ("R2 缺口", "R2 shortfall"),
    "r2_failing": ("R2 未满足的区县数", "counties failing R2"),
    "r3_ok": ("R3 满足", "R3 met"),
    "r3_uncovered": ("R3 时限外人口", "R3 residents beyond the walk time"),
    "fund_b3": ("B3 基金当期亏损", "B3 fund deficit"),
    "fund_b4": ("B4 总量平衡", "B4 balance only"),
    "rule_ids": ("规则", "rules"),
    "not_judged": ("未判定的规则", "rules not judged"),
    "rule": ("规则", "rule"),
    "citation": ("依据", "citation"),
    "parameter": ("参数", "parameter"),
    "level": ("层级", "level"),
    "ok": ("满足", "met"),
    "change": ("变化", "change"),
    "requirements": ("要求变化", "requirement changes"),
    "zone": ("分区", "zone"),
    "area_km2": ("面积（平方公里）", "area (km²)"),
    "area_before_km2": ("面积（前，平方公里）", "area before (km²)"),
    "area_after_km2": ("面积（后，平方公里）", "area after (km²)"),
    "added_km2": ("新增面积（平方公里）", "added (km²)"),
    "lifted_km2": ("解除面积（平方公里）", "lifted (km²)"),
    "blocked_added_km2": ("新增禁止区（平方公里）", "blocked area added (km²)"),
    "blocked_lifted_km2": ("解除禁止区（平方公里）", "blocked area lifted (km²)"),
    "pharmacy_id": ("药店编码", "pharmacy id"),
    "edit": ("序号", "no."),
    "description": ("内容", "description"),
    "layer": ("数据", "layer"),
    "source": ("文件", "file"),
    "row": ("行号", "row"),
    "reason_code": ("原因代码", "reason code"),
    "reason": ("原因", "reason"),
    "lon": ("经度", "longitude"),
    "input_layer": ("输入数据", "input"),
    "rows_read": ("读入行数", "rows read"),
    "rows_clean": ("导入", "clean"),
    "rows_rejected": ("拒绝", "rejected"),
    "missing_inputs": ("缺少", "what was missing"),
    "rules_not_judged": ("无法判定的规则", "which rules it disables"),
    "notes": ("说明", "notes"),
    "lat": ("纬度", "latitude"),
    "address": ("地址", "address"),
    "personal_account": ("个人账户", "personal account"),
    "outpatient_pooling": ("门诊统筹", "outpatient pooling"),
    "chronic_disease": ("门诊慢特病", "chronic disease"),
    "dual_channel": ("“双通道”", "dual channel"),
    "chain": ("连锁", "chain store"),
    "info_system_ready": ("信息系统已改造", "information system upgraded"),
    "cross_region_settlement": ("支持异地直接结算", "cross-region direct settlement"),
    "annual_volume_yuan": ("年医保结算额（元）", "annual insurance turnover (yuan)"),
    "suspensions": ("暂停协议次数", "agreement suspensions"),
    "credit_score": ("信用评分", "credit score"),
    "months_operating": ("经营月数", "months operating"),
    "risk_flag": ("风险标记", "risk flag"),
    "subdistrict_code": ("所属街道/乡镇代码", "sub-district code"),
    "snap_m": ("距路网（米）", "distance to the street (m)"),
    "on_network": ("已接入路网", "on the street network"),
    "r4_ok": ("R4 满足", "R4 met"),
    "risk_class": ("风险分级", "risk class"),
    "risk_rule": ("分级依据", "risk class rule"),
    "natural_exit": ("自然退出（年内无结算）", "natural exit (no turnover in the year)"),
    "termination_trigger": ("触发解除协议", "termination trigger"),
    "rereview_due": ("应重新评估", "re-review due"),
    "persons": ("人口", "persons"),
    "minutes": ("步行时间（分钟）", "walk time (minutes)"),
    "r1_failing_names": ("R1 未满足的街道", "street offices failing R1"),
    "subdistricts": ("街道/乡镇数", "sub-districts"),
}
#: What each exported column means, (Chinese, English): the 字段说明 / field guide sheet of tables.xlsx.
COLUMN_MEANINGS: dict[str, tuple[str, str]] = {
    "code": ("行政区划代码（街道/乡镇 9 位，区县 6 位）", "administrative code (9 digits sub-district, 6 digits county)"),
    "name": ("名称", "name"),
    "kind": ("街道（城区）或乡镇", "urban street office or town"),
    "county_code": ("所属区县的代码", "code of the county it lies in"),
    "subdistrict_code": ("药店所在街道/乡镇的代码（空：不在任何街道/乡镇内）",
                         "code of the sub-district holding the pharmacy (blank: outside every sub-district)"),
    "service": ("本行所属的医保业务类别", "the insurance service of this row"),
    "population": ("常住参保人口（人）", "resident insured population (persons)"),
    "pharmacies": ("开通该业务的定点药店数（家）", "designated pharmacies holding the service"),
    "per_10k": ("每万名常住参保人的定点药店数（家，两位小数）", "pharmacies per 10,000 insured residents (two decimals)"),
    "demand": ("该业务的需求人数：常住参保人口、城镇职工参保人数或门诊慢特病人数（见需求口径；MDJ-2025 第十四条）",
               "the service's demand in persons: residents, employee insured or chronic patients (see the demand "
               "basis; MDJ-2025 art. 14)"),
    "demand_basis": ("需求人数取自的列（无该值的街道/乡镇按常住参保人口）",
                     "the column the demand is read from (sub-districts without a value use residents)"),
    "per_10k_demand": ("每万名需求人数的该业务药店数", "pharmacies of the service per 10,000 of its demand"),
    "e2sfca_per_10k": ("增强两步移动搜索法（E2SFCA）：步行时限内可达、按共享人数折算的药店供给，每万名需求人数（衰减权重 1.00/0.68/0.22）",
                       "enhanced two-step floating catchment (E2SFCA): pharmacy capacity within the walk time, shared "
                       "by everyone it serves, per 10,000 of demand (decay weights 1.00/0.68/0.22)"),
    "residents_per_pharmacy": ("每家药店对应的常住参保人口（人）", "insured residents per pharmacy (persons)"),
    "covered": ("步行时限内可达该业务药店的人口（人）", "persons within the walk time of a pharmacy with the service"),
    "covered_share": ("步行时限内人口占常住参保人口的比例（%，一位小数）", "share of residents within the walk time (%, one decimal)"),
    "uncovered": ("步行时限外的人口（人）", "persons beyond the walk time"),
    "placed": ("落到步行路网上的人口（人）；与常住人口之差为无路网可放置的人口",
               "persons placed on walkable streets; the difference to the population had no street to stand on"),
    "street_km": ("区域内可步行道路总长（公里）", "length of walkable streets in the area (km)"),
    "street_covered_km": ("区域内步行时限内可达的道路长度（公里）", "length of the area's walkable streets within the walk time (km)"),
    "street_covered_share": ("步行时限内可达的道路长度占区域道路总长的比例（不需要人口数据）",
                             "share of the area's walkable street length within the walk time (needs no population)"),
    "class": ("饱和度分类：相对饱和、均衡、相对不足、空白（规则 S）", "saturation class: saturated, balanced, underserved, blank (rule S)"),
    "class_measure": ("决定分类的指标", "the measure that decided the class"),
    "class_reason": ("分类的依据（数值与阈值）", "why: the value against its threshold"),
    "class_rule": ("分类所依据的规则编号", "rule id the class rests on"),
    "r1_ok": ("R1：城区街道有门诊统筹和门诊慢特病定点药店（不适用：乡镇或未启用 R1）",
              "R1: the street office has outpatient-pooling and chronic-disease pharmacies (n/a: towns, or R1 not in the policy)"),
    "r1_shortfall": ("R1 缺少的药店数（家）", "pharmacies missing for R1"),
    "r2_ok": ("R2：区县至少有 1 家“双通道”定点药店（仅在“双通道”行判定）",
              "R2: the county has at least one dual-channel pharmacy (judged on the dual-channel row only)"),
    "r2_shortfall": ("R2 缺少的药店数（家）", "pharmacies missing for R2"),
    "r3_ok": ("R3：时限内覆盖率达到要求", "R3: the share within the walk time meets the target"),
    "r3_uncovered": ("R3 时限外人口（人）", "R3 persons beyond the walk time"),
    "fund_b3": ("B3：职工医保基金当期亏损，不得新增", "B3: current-period fund deficit, no new designation"),
    "fund_b4": ("B4：基金赤字或预警，总量平衡", "B4: deficit or warning letter, total kept balanced"),
    "rule_ids": ("本行触发的规则编号", "rule ids this row triggers"),
    "not_judged": ("因缺少数据而无法判定的规则编号（见数据完整性表）", "rule ids the data cannot decide here (see the data-completeness table)"),
    "zone": ("分区：禁止新增、优先配置、需审核", "zone: blocked, priority, review"),
    "area_km2": ("面积（平方公里，三位小数）", "area (km², three decimals)"),
    "pharmacy_id": ("药店编码", "pharmacy id"),
    "address": ("地址", "address"),
    "personal_account": ("开通个人账户", "holds personal account"),
    "outpatient_pooling": ("开通门诊统筹", "holds outpatient pooling"),
    "chronic_disease": ("开通门诊慢特病", "holds chronic disease"),
    "dual_channel": ("“双通道”药店", "dual-channel pharmacy"),
    "chain": ("连锁药店（否：单体药店）", "chain store (no: single store)"),
    "info_system_ready": ("已完成医保信息系统改造（B5）", "information-system upgrade done (B5)"),
    "cross_region_settlement": ("支持同城异地直接结算", "supports cross-region direct settlement"),
    "annual_volume_yuan": ("年医保结算额（元）", "annual insurance turnover (yuan)"),
    "suspensions": ("协议期内暂停次数", "suspensions in the agreement period"),
    "credit_score": ("信用评分", "credit score"),
    "months_operating": ("经营月数", "months operating"),
    "risk_flag": ("输入表中的风险标记", "risk flag from the input table"),
    "snap_m": ("药店到最近步行道路的距离（米）", "distance from the pharmacy to the nearest walkable street (m)"),
    "on_network": ("药店在接入距离内接入路网", "the pharmacy reaches the network within the snap distance"),
    "r4_ok": ("R4：开通业务的药店支持异地直接结算（未判定：输入表没有该列）",
              "R4: a pharmacy with services supports cross-region settlement (not judged: no such column in the input)"),
    "info_system_accepted": ("信息系统改造通过验收的日期（HN-2025 第十条，期限 2025-06-30）",
                             "day the information-system upgrade was accepted (HN-2025 (十), deadline 2025-06-30)"),
    "traceability_accepted": ("落实药品追溯码采集的日期（期限 2025-03-31）", "day drug traceability codes came into use (deadline 2025-03-31)"),
    "agreement_status": ("医保协议状态：正常、暂停、解除", "agreement status: settling, suspended, terminated"),
    "suspension_start": ("最近一次暂停协议的开始日期", "first day of the latest suspension"),
    "suspension_end": ("最近一次暂停协议的结束日期（空：未定）", "last day of the latest suspension (blank: open)"),
    "earlier_suspensions": ("本协议期内此前被暂停的次数（CX-2022 第三十五条）", "earlier suspensions in this agreement period (CX-2022 art. 35)"),
    "principal_status": ("主要负责人的医保支付资格：正常、暂停、终止（WH-2025）", "the principal's payment qualification: qualified, suspended, terminated (WH-2025)"),
    "suspended": ("持有该业务、暂停结算的药店数（无论是否计入）", "holders of the service whose settlement is suspended (counted or not)"),
    "settlement": ("结算状态：正常、暂停、已解除、未判定（planning/settlement.py）",
                   "settlement status: settling, suspended, terminated, not judged (planning/settlement.py)"),
    "settlement_rules": ("决定结算状态的规则（ST-info、ST-trace、ST-suspended、ST-180、ST-twice、ST-terminated、ST-principal）",
                         "rules deciding the status (ST-info, ST-trace, ST-suspended, ST-180, ST-twice, ST-terminated, ST-principal)"),
    "settlement_until": ("暂停结算的截止日期（空：未定，直至整改通过）", "the day the suspension ends (blank: open, until it is cleared)"),
    "settlement_not_judged": ("缺少数据而无法判定的结算规则", "settlement rules the data cannot decide"),
    "serves": ("在本政策下计入覆盖、R1/R2 和 B1", "counts for coverage, R1/R2 and B1 under this policy"),
    "exit_reason": ("年度考核中列为退出的原因", "why the annual review lists it as leaving"),
    "persons_losing_circle": ("以其为最近药店、退出后超出步行时限的人口", "residents it was nearest to who are beyond the walk time afterwards"),
    "requirements_broken": ("退出后其街道/区县变为不满足的要求", "requirements of its sub-district or county that fail afterwards"),
    "safe": ("无人失去服务圈，且无要求变为不满足", "nobody loses the circle and no requirement breaks"),
    "risk_class": ("风险分级 A/B/C（MDJ-2025 第十八条）", "risk class A/B/C (MDJ-2025 art. 18)"),
    "risk_rule": ("风险分级的依据", "rule of the risk class"),
    "natural_exit": ("年内无医保结算，自然退出（MDJ-2025 第十六条）", "no insurance turnover in the year: natural exit (MDJ-2025 art. 16)"),
    "termination_trigger": ("触发解除协议条件（CX-2022 第三十四、三十五条）", "meets a termination condition (CX-2022 art. 34-35)"),
    "rereview_due": ("上次评估超过两年，应重新评估", "last review more than two years ago"),
    "lon": ("经度（WGS84，度）", "longitude (WGS84, degrees)"),
    "lat": ("纬度（WGS84，度）", "latitude (WGS84, degrees)"),
    "layer": ("被拒绝的行来自的数据", "layer of the rejected row"),
    "source": ("文件", "file"),
    "row": ("文件中的行号", "row number in the file"),
    "reason_code": ("拒绝原因代码", "reason code"),
    "reason": ("拒绝原因", "why the row was rejected"),
    "input_layer": ("输入的数据层（药店、边界、人口、基金、路网）", "input layer (pharmacies, boundaries, population, fund, network)"),
    "rows_read": ("读入的行数", "rows read from the file"),
    "rows_clean": ("导入的行数（= 读入 − 拒绝）", "rows kept (= read − rejected)"),
    "rows_rejected": ("拒绝的行数（见“拒绝的行”表）", "rows rejected (see the rejected-rows sheet)"),
    "missing_inputs": ("缺少的数据层或列", "missing layer or columns"),
    "rules_not_judged": ("因缺少这些数据而无法判定的规则编号", "rule ids these missing inputs leave unjudged"),
    "notes": ("读取时的说明（默认值、修复、坐标系判定等）", "notes made while reading (defaults, repairs, the datum decision)"),
    "persons": ("人口（人）", "persons"),
    "minutes": ("步行时间（分钟）", "walk time (minutes)"),
    "r1_failing": ("未满足 R1 的城区街道数", "urban street offices failing R1"),
    "r1_failing_names": ("未满足 R1 的城区街道名称", "names of the street offices failing R1"),
    "subdistricts": ("区县内的街道/乡镇数", "sub-districts in the county"),
}
_SUFFIXES = {"_before": ("（前）", " before"), "_after": ("（后）", " after"), "_delta": ("（变化）", " change"),
             # one column per service, e.g. class_outpatient_pooling = 分类（门诊统筹）
             **{f"_{s.value}": (f"（{s.label('zh')}）", f" ({s.label('en')})") for s in Service}}

#: Words for coded values, by value, (Chinese, English).
VALUE_LABELS: dict[str, tuple[str, str]] = {
    "street": (t("kind_street", "zh"), t("kind_street", "en")),
    "town": (t("kind_town", "zh"), t("kind_town", "en")),
    "subdistrict": ("街道/乡镇", "sub-district"),
    "county": ("县（市、区）", "county"),
    "blocked": (t("zone_blocked", "zh"), t("zone_blocked", "en")),
    "priority": (t("zone_priority", "zh"), t("zone_priority", "en")),
    "review": (t("zone_review", "zh"), t("zone_review", "en")),
    "per_10k": (t("per_10k", "zh"), t("per_10k", "en")),
    "per_10k_demand": ("每万需求人数药店数", "pharmacies per 10,000 of demand"),
    "e2sfca_per_10k": ("可达供给（E2SFCA）", "capacity within reach (E2SFCA)"),
    "population": ("常住参保人口", "resident insured"),
    "employees": ("城镇职工参保人数", "employee insured"),
    "chronic_patients": ("门诊慢特病人数", "chronic patients"),
    "covered_share": (t("covered_share", "zh"), t("covered_share", "en")),
    "met": ("变为满足", "now met"),
    "broken": ("变为不满足", "now broken"),
    "applies": ("开始适用", "now applies"),
    "no longer applies": ("不再适用", "no longer applies"),
    "added": ("新增", "added"),
    "lifted": ("解除", "lifted"),
    "site_added": ("新增", "added"),
    "site_removed": ("撤销", "withdrawn"),
    "site_changed": ("业务变更", "services changed"),
    "AddSite": ("新增药店", "add a pharmacy"),
    "RemoveSite": ("撤销药店", "withdraw a pharmacy"),
    "ChangeServices": ("变更业务", "change services"),
    "ScalePopulation": ("人口按比例变化", "scale population"),
    "SetPopulation": ("设定人口", "set population"),
    "ScaleDemand": ("业务需求按比例变化", "scale a service's demand"),
    "ChangePolicy": ("调整政策参数", "change policy"),
}

#: Why the annual review lists a pharmacy as leaving (planning.review.exit_list).
EXIT_REASON_LABELS: dict[str, Text] = {
    "natural_exit": Text("自然退出（MDJ-2025 第十六条）", "natural exit (MDJ-2025 art. 16)"),
    "termination_trigger": Text("触发解除协议（CX-2022 第三十四、三十五条）", "termination (CX-2022 art. 34-35)"),
    "lowest_ranked": Text("年度考核排名末位（MDJ-2025 第十七条）", "lowest-ranked in the annual review (MDJ-2025 art. 17)"),
}
_SERVICE_VALUES = {s.value for s in Service}
_PERSONS = {"persons", "population", "covered", "uncovered", "placed", "r3_uncovered", "residents_per_pharmacy",
            "demand", "employees", "chronic_patients"}
_COUNTS = {"subdistricts", "pharmacies", "suspended", "earlier_suspensions", "r1_shortfall", "r2_shortfall", "r1_failing",
           "r2_failing", "row", "edit"}
_SHARES = {"covered_share", "street_covered_share"}
_YES_NO = {"r1_ok", "r2_ok", "r3_ok", "r4_ok", "ok", "fund_b3", "fund_b4", "class_changed", "chain",
           "info_system_ready", "cross_region_settlement", "risk_flag", "on_network", "natural_exit",
           "termination_trigger", "rereview_due", "serves", "safe", *_SERVICE_VALUES}
#: Outcomes whose blank means the data could not decide (未判定 / not judged); for the others a blank
#: means the rule does not apply there (不适用 / n/a), e.g. R1 in a town or a rule the policy leaves out.
#: The rule whose outcome each requirement column holds (a row's ``not_judged`` names rules).
_OUTCOME_RULES = {"r1_ok": "R1", "r2_ok": "R2", "r3_ok": "R3", "r4_ok": "R4"}
_BLANK_IS_NOT_JUDGED = {"r4_ok", "cross_region_settlement", "info_system_ready", "natural_exit"}
_DECIMALS = {"per_10k": 2, "per_10k_demand": 2, "e2sfca_per_10k": 2, "street_km": 1, "street_covered_km": 1, "lon": 6, "lat": 6, "snap_m": 1, "credit_score": 1, "minutes": 1}


def for_people(table: pd.DataFrame, lang: str = "zh") -> pd.DataFrame:
    """``table`` (any of the library's tables) ready to read: headers and coded values in ``lang``
    ("zh" or "en"), persons rounded to whole numbers, shares in percent (one decimal), km² to three
    decimals, geometry dropped. The row order and every row are kept; numbers stay numeric."""
    shown = pd.DataFrame(table.drop(columns=["geometry"], errors="ignore")).copy()
    if "class_reason_zh" in shown:  # the classes' reasons come in both languages: keep the reader's
        shown["class_reason"] = shown[Text("class_reason_zh", "class_reason").get(lang)]
        shown = shown.drop(columns="class_reason_zh")
    # a row's own list of the rules its data could not decide: a blank outcome of one of them reads "not
    # judged", never "n/a" (a missing layer is not a rule that does not apply)
    unjudged = (shown["not_judged"].map(lambda v: set(v.split(",")) if isinstance(v, str) and v else set())
                if "not_judged" in shown else pd.Series([set()] * len(shown), index=shown.index))
    for column in shown.columns:
        stem = _stem(column)
        values = shown[column]
        if stem in ("service", "services"):
            shown[column] = values.map(lambda v: _service_words(v, lang))
        elif stem == "class":
            shown[column] = [_word(CLASS_LABELS, v, lang) if not _blank(v) or "S" not in rules
                             else Text("未判定", "not judged").get(lang) for v, rules in zip(values, unjudged)]
        elif stem in _YES_NO:
            rule = _OUTCOME_RULES.get(stem)
            shown[column] = [_yes_no(v, lang, not_judged=stem in _BLANK_IS_NOT_JUDGED or rule in rules)
                             for v, rules in zip(values, unjudged)]
        elif stem == "input_layer":
            shown[column] = values.map(lambda v: completeness_label(v, lang))
        elif stem == "missing_inputs":
            shown[column] = values.map(lambda v: join((Text(completeness_label(k, "zh"), completeness_label(k, "en"))
                                                       for k in str(v).split(",") if k), lang))
        elif stem == "notes":
            shown[column] = values.map(lambda v: Text("；", "; ").get(lang).join(
                Text.parse(note).get(lang) for note in str(v).split(" | ") if note))
        elif stem == "settlement":
            shown[column] = values.map(lambda v: _word(STATUS_LABELS, v, lang))
        elif stem == "exit_reason":
            shown[column] = values.map(lambda v: _word(EXIT_REASON_LABELS, v, lang))
        elif stem in ("kind", "level", "zone", "class_measure", "change", "demand_basis"):
            shown[column] = values.map(lambda v: _word(VALUE_LABELS, v, lang))
        elif not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        elif stem in _PERSONS or stem in _COUNTS or stem == "annual_volume_yuan":
            shown[column] = values.round(0).astype("Int64")
        elif stem in _SHARES:
            shown[column] = (values * 100).round(1)
        elif column.endswith("_km2"):
            shown[column] = values.round(3)
        elif stem in _DECIMALS:
            shown[column] = values.round(_DECIMALS[stem])
    return shown.rename(columns={c: column_label(c, lang) for c in shown.columns})


def column_meaning(column: str, lang: str = "zh") -> str:
    """What a library column means, in ``lang`` ("" when not documented)."""
    words = COLUMN_MEANINGS.get(_stem(column))
    return Text(*words).get(lang) if words else ""


def column_label(column: str, lang: str = "zh") -> str:
    """The header of a library column in ``lang`` (its own name when unknown)."""
    if column in COLUMN_LABELS:
        return Text(*COLUMN_LABELS[column]).get(lang)
    for suffix, words in _SUFFIXES.items():
        if column.endswith(suffix) and column[: -len(suffix)] in COLUMN_LABELS:
            return Text(*COLUMN_LABELS[column[: -len(suffix)]]).get(lang) + Text(*words).get(lang)
    return column


def _stem(column: str) -> str:
    for suffix in _SUFFIXES:
        if column.endswith(suffix):
            return column[: -len(suffix)]
    return column


def _word(labels: dict, value, lang: str):
    if isinstance(value, str) and value in labels:
        label = labels[value]
        return (label if isinstance(label, Text) else Text(*label)).get(lang)
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def _blank(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value))


def _yes_no(value, lang: str, *, not_judged: bool = False) -> str:
    if _blank(value):
        return (Text("未判定", "not judged") if not_judged else Text("不适用", "n/a")).get(lang)
    return (Text("是", "yes") if value else Text("否", "no")).get(lang)


def _service_words(value, lang: str):
    """One service value, or several separated by commas, in words (anything else unchanged)."""
    if not isinstance(value, str) or not value or not set(value.split(",")) <= _SERVICE_VALUES:
        return value
    return service_labels(value.split(","), lang)


def summary_text(assessment, lang: str = "zh") -> str:
    """A planner's summary of one assessment (or a merged :class:`planning.tiles.TiledAssessment`) as
    plain text: the region and policy, then one block per service (covered share, classes, R1/R2
    shortfalls by name, zone areas), in ``lang``. Names, not codes;
    what a rule could not judge is said, never shown as passed. The CLI prints it; notebooks may too."""
    policy = assessment.policy
    region = assessment.region
    lines = [Text(f"{region.name} · 政策：{policy.title_zh} · 步行 {policy.walk_minutes:g} 分钟 · "
                  f"{policy.speed_m_per_min:g} 米/分钟",
                  f"{region.name} · policy: {policy.title_en} · {policy.walk_minutes:g} min walk · "
                  f"{policy.speed_m_per_min:g} m/min").get(lang),
             Text(f"{len(region.subdistricts)} 个街道/乡镇，{len(region.counties)} 个县（市、区），"
                  f"{len(region.pharmacies)} 家定点药店，拒收输入行 {len(region.rejected)} 行",
                  f"{len(region.subdistricts)} sub-districts, {len(region.counties)} counties, "
                  f"{len(region.pharmacies)} designated pharmacies, {len(region.rejected)} input rows rejected").get(lang)]
    lines.append(status_summary(assessment.pharmacies, policy).get(lang))
    lines += [Text.parse(note).get(lang) for note in worker_status(region, policy)[1]]  # counted, weighed 0 or missing
    sd, counties = assessment.subdistricts, assessment.counties
    for service in Service:
        mine = sd[sd["service"] == service.value]
        lines += ["", f"【{service.label(lang)}】"]
        if f"service:{service.value}" in (region.completeness.missing if region.completeness else ()):
            lines.append(Text(f"  步行 {policy.walk_minutes:g} 分钟内：未判定（药店表没有该业务列）",
                              f"  within {policy.walk_minutes:g} min: not judged (the pharmacy sheet has no "
                              f"column for this service)").get(lang))
        elif region.population_known:
            demand = float(mine["demand"].sum()) if "demand" in mine else float(mine["population"].sum())
            covered = demand - float(mine["uncovered"].sum())
            share = covered / demand if demand else 0.0
            whom = assessment.demand[service].describe(lang) if service in assessment.demand \
                else Text("常住参保人口", "insured residents").get(lang)
            lines.append(Text(f"  步行 {policy.walk_minutes:g} 分钟内：{share:.1%} 的{whom}（时限外 {demand - covered:,.0f} 人）",
                              f"  within {policy.walk_minutes:g} min: {share:.1%} of {whom} "
                              f"({demand - covered:,.0f} beyond)").get(lang))
        else:  # no population: the share of the walkable streets, said as such
            km = float(mine["street_km"].sum())
            share = float((mine["street_covered_share"].fillna(0) * mine["street_km"]).sum()) / km if km else 0.0
            lines.append(Text(f"  步行 {policy.walk_minutes:g} 分钟内：{share:.1%} 的步行路网长度（按街道长度计，缺少人口数据；共 {km:,.1f} 公里）",
                              f"  within {policy.walk_minutes:g} min: {share:.1%} of the walkable street length (by "
                              f"street length: no population data; {km:,.1f} km in all)").get(lang))
        if mine["class"].notna().any():
            counts = mine["class"].value_counts()
            parts = [f"{CLASS_LABELS[c].get(lang)} {int(counts.get(c, 0))}" for c in CLASS_LABELS]
            lines.append(Text("  分类：", "  classes: ").get(lang) + " · ".join(parts))
        if mine["r1_ok"].notna().any():
            failing = mine.loc[mine["r1_ok"].eq(False).fillna(False).to_numpy(dtype=bool), "name"].tolist()
            lines.append(Text("  R1 缺口（街道无该业务药店）：", "  R1 shortfalls (street offices without it): ").get(lang)
                         + (service_list(failing, lang) or Text("无", "none").get(lang)))
        county_rows = counties[counties["service"] == service.value]
        if county_rows["r2_ok"].notna().any():
            failing = county_rows.loc[county_rows["r2_ok"].eq(False).fillna(False).to_numpy(dtype=bool), "name"].tolist()
            lines.append(Text("  R2 缺口（县无“双通道”药店）：", "  R2 shortfalls (counties without one): ").get(lang)
                         + (service_list(failing, lang) or Text("无", "none").get(lang)))
        for rule, areas in (("R1", mine), ("R2", county_rows)):
            lines += ["  " + note.get(lang) for note in suspension_notes(areas, assessment.pharmacies, service.value,
                                                                          rule, policy)]
        unjudged = assessment.unjudged(service)
        if unjudged:
            inputs = list(dict.fromkeys(k for keys in unjudged.values() for k in keys))
            ordered = [r for r in RULES if r in unjudged]
            lines.append(Text("  未判定（缺少数据）：", "  not judged (data missing): ").get(lang) + service_list(ordered, lang)
                         + Text("（缺少", " (missing ").get(lang) + service_list([completeness_label(k, lang) for k in inputs], lang)
                         + Text("）", ")").get(lang))
        areas = assessment.zone_areas_km2(service)
        if areas:
            lines.append("  " + " · ".join(f"{t('zone_' + zone, lang)} {areas[zone]:,.1f} km²"
                                           for zone in ("blocked", "priority", "review") if zone in areas))
    if region.completeness is not None:
        lines += ["", Text("数据完整性：", "data completeness:").get(lang), region.completeness.text(lang)]
    return "\n".join(lines)


def service_list(names, lang: str = "zh") -> str:
    """Names as a list written in ``lang`` (``甲、乙`` / ``a, b``)."""
    return join((Text(str(n), str(n)) for n in names), lang)
