"""The CLI on a planner's own files: the demo region exported as bureau-style files gives the demo's results,
rejected rows land in rejected.csv with their reasons, --buildings replaces the residents, bad files exit 2."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from cli_text import run_cli, summary_blocks, write_csv
import shapely

from planning.demo import DEMO_DIR, load_demo_region

ROOT = Path(__file__).resolve().parents[1]
NETWORK = DEMO_DIR / "network.osm.gz"

YES_NO = {True: "是", False: "否"}
PHARMACY_HEADER = ["统一社会信用代码", "名称", "地址", "经度", "纬度", "个人账户", "门诊统筹", "门诊慢特病", "双通道",
                   "是否连锁", "信息系统改造", "异地结算", "年业务量", "暂停次数", "信用评分", "经营月数", "风险标记",
                   "信息系统验收日期", "追溯码落实日期", "协议状态", "暂停开始日期", "暂停结束日期", "此前暂停次数",
                   "主要负责人医保支付资格"]
#: The settlement-status words a bureau's sheet uses, by the canonical value the demo holds.
AGREEMENT_ZH = {"settling": "正常", "suspended": "暂停", "terminated": "解除"}
PRINCIPAL_ZH = {"qualified": "正常", "suspended": "暂停", "terminated": "终止"}


def _date_zh(value) -> str:
    """A date cell as a bureau types it (2025年6月30日); blank for none."""
    if value is None or pd.isna(value):
        return ""
    day = pd.Timestamp(value)
    return f"{day.year}年{day.month}月{day.day}日"
MISSING_AT = 100  # the row with a missing coordinate goes after this many demo rows
DUPLICATE_ID = "91439900MA4DUP0001"


def _pharmacy_row(p) -> list[str]:
    return [p.pharmacy_id, p.name, p.address, repr(p.geometry.x), repr(p.geometry.y),
            *(YES_NO[bool(getattr(p, s))] for s in ("personal_account", "outpatient_pooling", "chronic_disease",
                                                    "dual_channel")),
            "连锁" if p.chain else "单体", YES_NO[bool(p.info_system_ready)], YES_NO[bool(p.cross_region_settlement)],
            repr(float(p.annual_volume_yuan)), str(int(p.suspensions)), repr(float(p.credit_score)),
            str(int(p.months_operating)), YES_NO[bool(p.risk_flag)],
            _date_zh(p.info_system_accepted), _date_zh(p.traceability_accepted), AGREEMENT_ZH[p.agreement_status],
            _date_zh(p.suspension_start), _date_zh(p.suspension_end), str(int(p.earlier_suspensions)),
            PRINCIPAL_ZH[p.principal_status]]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The demo region as a planner's files, with three bad pharmacy rows; returns paths and the bad rows."""
    folder = tmp_path_factory.mktemp("inputs")
    region = load_demo_region()
    rows = [_pharmacy_row(p) for p in region.pharmacies.itertuples()]
    template = rows[0]
    missing = ["91439900MA4MIS0001", "缺坐标药房", "无名路1号", "", template[4], *template[5:]]
    duplicate = [DUPLICATE_ID, "重复编号药房", "无名路2号", *template[3:]]
    rows.insert(MISSING_AT, missing)
    rows += [duplicate, [*duplicate[:1], "重复编号药房（二）", *duplicate[2:]]]
    excel_row = {"missing": MISSING_AT + 2, "duplicates": [len(rows), len(rows) + 1]}  # header is row 1
    pharmacies = write_csv(folder / "定点药店名单.csv", PHARMACY_HEADER, rows, "gbk")

    kind = {"street": "街道", "town": "镇"}
    subs = region.subdistricts
    gpd.GeoDataFrame({"区划代码": subs["code"], "名称": subs["name"], "类型": subs["kind"].map(kind),
                      "县代码": subs["county_code"]}, geometry=subs.geometry, crs=subs.crs
                     ).to_file(folder / "街道乡镇.geojson", driver="GeoJSON")
    counties = region.counties
    gpd.GeoDataFrame({"区划代码": counties["code"], "名称": counties["name"]}, geometry=counties.geometry,
                     crs=counties.crs).to_file(folder / "区县.geojson", driver="GeoJSON")
    write_csv(folder / "人口.csv", ["街道代码", "街道名称", "常住参保人口", "城镇职工参保人数", "门诊慢特病人数"],
              [[c, n, str(int(p)), str(int(e)), str(int(k))] for c, n, p, e, k in
               zip(subs["code"], subs["name"], subs["population"], subs["employees"], subs["chronic_patients"])],
              "utf-8-sig")
    write_csv(folder / "基金.csv", ["区县代码", "区县", "上年亏损", "预计亏损", "预警函"],
         [[c.code, c.name, YES_NO[bool(c.fund_deficit_last_year)], YES_NO[bool(c.fund_deficit_forecast)],
           YES_NO[bool(c.fund_warning_letter)]] for c in counties.itertuples()], "utf-8-sig")
    return {"folder": folder, "pharmacies": pharmacies, "rows": excel_row, "region": region}


def _user_args(files: dict) -> list[str]:
    folder = files["folder"]
    return ["--pharmacies", str(files["pharmacies"]), "--subdistricts", str(folder / "街道乡镇.geojson"),
            "--counties", str(folder / "区县.geojson"), "--population", str(folder / "人口.csv"),
            "--fund", str(folder / "基金.csv"), "--network", str(NETWORK), "--boundary-crs", "wgs84"]


def _table(out: Path, name: str, keys: list[str]) -> pd.DataFrame:
    return pd.read_csv(out / f"{name}.csv", encoding="utf-8-sig", dtype={"code": str, "county_code": str}
                       ).sort_values(keys).reset_index(drop=True)


def test_user_files_give_the_demo_results_and_list_rejected_rows(files, tmp_path):
    demo_out, user_out = tmp_path / "demo", tmp_path / "user"
    demo = run_cli("assess", "--demo", "--quiet", "--out", str(demo_out))
    assert demo.returncode == 0, demo.stderr
    result = run_cli("assess", *_user_args(files), "--out", str(user_out))
    assert result.returncode == 0, result.stderr
    assert (user_out / "gap_report.geojson").is_file() and (user_out / "tables.xlsx").is_file()
    assert "柳湾街道" in result.stdout  # the demo's R1 shortfall, named in the summary
    assert summary_blocks(result.stdout) == summary_blocks(demo.stdout)

    rejected = pd.read_csv(user_out / "rejected.csv", encoding="utf-8-sig", dtype={"row": int})
    rows = files["rows"]
    got = sorted(zip(rejected["layer"], rejected["row"], rejected["reason_code"]))
    assert got == sorted([("pharmacies", rows["missing"], "missing_coordinate"),
                          *(("pharmacies", r, "duplicate_id") for r in rows["duplicates"])])
    by_row = rejected.set_index("row")
    assert "坐标缺失（经度） / missing coordinate (经度)" in by_row.at[rows["missing"], "reason"]
    assert all(DUPLICATE_ID in by_row.at[r, "reason"] for r in rows["duplicates"])
    assert (rejected["source"] == files["pharmacies"].name).all()
    assert "缺坐标药房" in by_row.at[rows["missing"], "values"]  # the planner's own cells, decoded from GBK
    assert "pharmacies 3, subdistricts 0, counties 0, population 0, fund_status 0" in result.stderr
    assert "Traceback" not in result.stderr

    for name, keys in (("subdistricts", ["code", "service"]), ("counties", ["code", "service"]),
                       ("coverage", ["code", "service"]), ("pharmacies", ["pharmacy_id"]), ("zones", None)):
        if keys is None:
            demo_zones, user_zones = (pd.read_csv(o / "zones.csv", encoding="utf-8-sig") for o in (demo_out, user_out))
            assert len(demo_zones) == len(user_zones) and list(demo_zones.columns) == list(user_zones.columns)
            continue
        pd.testing.assert_frame_equal(_table(user_out, name, keys), _table(demo_out, name, keys),
                                      check_dtype=False, rtol=1e-6)


def test_buildings_replace_the_residents(files, tmp_path):
    subs = files["region"].subdistricts
    points = subs.to_crs(subs.estimate_utm_crs()).geometry.representative_point()
    footprints = gpd.GeoSeries([shapely.box(p.x - 10, p.y - 10, p.x + 10, p.y + 10) for p in points],
                               crs=points.crs).to_crs("EPSG:4326")
    persons = [str(100 + i) for i in range(len(footprints))]
    persons[3] = "很多"  # not a number: rejected, listed in rejected.csv
    path = tmp_path / "居住建筑.geojson"
    gpd.GeoDataFrame({"居住人口": persons}, geometry=footprints).to_file(path, driver="GeoJSON")
    out = tmp_path / "out"
    result = run_cli("assess", *_user_args(files), "--buildings", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "buildings 1" in result.stderr and "Traceback" not in result.stderr
    rejected = pd.read_csv(out / "rejected.csv", encoding="utf-8-sig")
    assert rejected[rejected["layer"] == "buildings"][["row", "reason_code"]].values.tolist() == \
        [[4, "invalid_population"]]
    coverage = pd.read_csv(out / "coverage.csv", encoding="utf-8-sig")
    placed = coverage[coverage["service"] == "personal_account"]["placed"].sum()
    assert placed == pytest.approx(sum(float(p) for p in persons if p != "很多"))  # one building per sub-district


def test_a_word_document_as_pharmacies_exits_2_with_a_bilingual_message(files, tmp_path):
    docx = tmp_path / "药店名单.docx"
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                         'package/2006/content-types"/>')
        archive.writestr("word/document.xml", '<?xml version="1.0"?><w:document xmlns:w="http://schemas.'
                         'openxmlformats.org/wordprocessingml/2006/main"><w:body/></w:document>')
    args = _user_args(files)
    args[args.index("--pharmacies") + 1] = str(docx)
    result = run_cli("assess", *args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "药店名单.docx" in line]
    assert lines[0].startswith("错误 / error:") and len(lines) == 2  # the Chinese line, then the English one
    assert "not an Excel workbook" in result.stderr and "不是 Excel 工作簿" in result.stderr
    assert not (tmp_path / "out").exists()


def test_grid_and_buildings_together_exit_2(tmp_path):
    result = run_cli("assess", "--demo", "--population-grid", "grid.tif", "--buildings", "b.geojson",
                     "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "not both" in result.stderr and "只能选一个" in result.stderr
