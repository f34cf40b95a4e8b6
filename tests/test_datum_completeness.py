"""Where data enters: the pharmacy datum is decided by the data (streets and addresses) on every path, ids are
optional, exact duplicates are kept once, and what the files lacked is listed with the rules it disables.

Oracles: the demo region's own pharmacies (WGS84, known) moved into GCJ-02 / BD-09 with planning.coords, whose
converters are checked against eviltransform in test_coords; ids recomputed here with hashlib; hand-built sheets."""

from __future__ import annotations

import datetime as dt

import hashlib
import unicodedata
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from cli_text import run_cli, summary_blocks, write_csv
import shapely

from planning import coords, ingest
from planning.settlement import SETTLEMENT_RULES, settlement_status
from planning.completeness import RULES_DISABLED_BY, DataCompleteness
from planning.demo import DEMO_DIR, load_demo_region
from planning.errors import MissingColumnError
from planning.ingest.datum import DatumMismatchError
from planning.model import Service

ROOT = Path(__file__).resolve().parents[1]
NETWORK = DEMO_DIR / "network.osm.gz"
YES_NO = {True: "是", False: "否"}
FULL_HEADER = ["统一社会信用代码", "名称", "地址", "经度", "纬度", "个人账户", "门诊统筹", "门诊慢特病", "双通道",
               "是否连锁", "信息系统改造", "信息系统验收日期", "追溯码落实日期", "协议状态", "主要负责人医保支付资格"]


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    """The demo's boundaries, population and fund table as files, and its pharmacies with addresses that name
    their county and sub-district (as a bureau's addresses do: "临溪区文昌街道和平六巷14号")."""
    folder = tmp_path_factory.mktemp("demo-files")
    region = load_demo_region()
    subs, counties = region.subdistricts, region.counties
    subs.to_file(folder / "subdistricts.geojson", driver="GeoJSON")
    counties.drop(columns=["fund_deficit_last_year", "fund_deficit_forecast", "fund_warning_letter"]).to_file(
        folder / "counties.geojson", driver="GeoJSON")
    write_csv(folder / "population.csv", ["街道代码", "街道名称", "常住参保人口", "城镇职工参保人数", "门诊慢特病人数"],
              [[c, n, str(int(p)), str(int(e)), str(int(k))] for c, n, p, e, k in
               zip(subs["code"], subs["name"], subs["population"], subs["employees"], subs["chronic_patients"])])
    write_csv(folder / "fund.csv", ["区县代码", "区县", "上年亏损", "预计亏损", "预警函"],
         [[c.code, c.name, YES_NO[bool(c.fund_deficit_last_year)], YES_NO[bool(c.fund_deficit_forecast)],
           YES_NO[bool(c.fund_warning_letter)]] for c in counties.itertuples()])
    joined = gpd.sjoin(region.pharmacies, subs[["name", "county_code", "geometry"]], predicate="within", how="left")
    county_name = dict(zip(counties["code"], counties["name"]))
    addresses = [f"{county_name[c]}{s}{a}" for c, s, a in zip(joined["county_code"], joined["name_right"],
                                                               joined["address"])]
    return {"folder": folder, "region": region, "addresses": addresses}


def pharmacy_sheet(demo_files, path: Path, datum: str, *, header=FULL_HEADER, named_addresses: bool = True,
                   n: int | None = None) -> Path:
    """The demo pharmacies as a sheet with coordinates written in ``datum`` (only the columns in ``header``)."""
    ph = demo_files["region"].pharmacies
    lon, lat = coords.from_wgs84(ph.geometry.x.to_numpy(), ph.geometry.y.to_numpy(), datum)
    addresses = demo_files["addresses"] if named_addresses else ph["address"].tolist()
    cells = {"统一社会信用代码": ph["pharmacy_id"].tolist(), "名称": ph["name"].tolist(), "地址": addresses,
             "经度": [repr(float(x)) for x in lon], "纬度": [repr(float(y)) for y in lat],
             **{h: [YES_NO[bool(v)] for v in ph[c]] for h, c in (("个人账户", "personal_account"),
                                                                 ("门诊统筹", "outpatient_pooling"),
                                                                 ("门诊慢特病", "chronic_disease"),
                                                                 ("双通道", "dual_channel"),
                                                                 ("信息系统改造", "info_system_ready"))},
             "是否连锁": ["连锁" if v else "单体" for v in ph["chain"]],
             # the settlement status, so the sheet's pharmacies serve as the demo's do
             "信息系统验收日期": ["" if pd.isna(v) else v for v in ph["info_system_accepted"]],
             "追溯码落实日期": ["" if pd.isna(v) else v for v in ph["traceability_accepted"]],
             "协议状态": ph["agreement_status"].map({"settling": "正常", "suspended": "暂停", "terminated": "解除"}).tolist(),
             "主要负责人医保支付资格": ph["principal_status"].map({"qualified": "正常", "suspended": "暂停"}).tolist()}
    rows = [[cells[h][k] for h in header] for k in range(len(ph) if n is None else n)]
    return write_csv(path, header, rows)


def build(demo_files, pharmacies, **kwargs):
    folder = demo_files["folder"]
    options = dict(subdistricts=folder / "subdistricts.geojson", counties=folder / "counties.geojson",
                   population=folder / "population.csv", fund_status=folder / "fund.csv", network=NETWORK)
    options.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ingest.build_region(pharmacies=pharmacies, **options)


def _metres(a: gpd.GeoSeries, b: gpd.GeoSeries) -> np.ndarray:
    crs = a.estimate_utm_crs()
    return a.to_crs(crs).distance(b.to_crs(crs), align=False).to_numpy()


# ---------------------------------------------------------------------------------------- datum
@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_auto_finds_the_datum_and_restores_the_demo_positions(demo_files, tmp_path, datum):
    region = build(demo_files, pharmacy_sheet(demo_files, tmp_path / "p.csv", datum))
    decision = region.completeness.datum
    assert decision.declared is None and decision.used is coords.Datum(datum)
    assert decision.decided_by == "streets+addresses"
    medians, shares = decision.median_snap_m, decision.address_match_share
    assert min(medians, key=medians.get) is coords.Datum(datum)
    assert shares[coords.Datum(datum)] == 1.0 and max(s for d, s in shares.items() if d.value != datum) < 0.8
    assert decision.mismatches == ()
    want = demo_files["region"].pharmacies.set_index("pharmacy_id").loc[region.pharmacies["pharmacy_id"]]
    assert _metres(region.pharmacies.geometry, want.geometry).max() < 0.01
    assert len(region.pharmacies) == len(demo_files["region"].pharmacies) and region.rejected.empty


@pytest.mark.parametrize("datum, label", [("gcj02", "GCJ-02"), ("bd09", "BD-09")])
def test_a_shifted_sheet_declared_wgs84_stops_the_cli_with_exit_2(demo_files, tmp_path, datum, label):
    sheet = pharmacy_sheet(demo_files, tmp_path / "p.csv", datum)
    folder = demo_files["folder"]
    result = run_cli("assess", "--pharmacies", str(sheet), "--subdistricts", str(folder / "subdistricts.geojson"),
                     "--population", str(folder / "population.csv"), "--network", str(NETWORK), "--crs", "wgs84",
                     "--quiet", "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert f"数据表明是 {label}" in result.stderr and f"the data points to {label}" in result.stderr
    assert "--trust-crs" in result.stderr and f"--crs {datum}" in result.stderr
    assert " m · " in result.stderr and "Traceback" not in result.stderr  # the figures: metres / match share
    assert not (tmp_path / "out" / "gap_report.geojson").exists()


def test_a_wgs84_sheet_declared_gcj02_is_refused_unless_confirmed(demo_files, tmp_path):
    sheet = pharmacy_sheet(demo_files, tmp_path / "p.csv", "wgs84")
    with pytest.raises(DatumMismatchError, match="WGS84") as caught:
        build(demo_files, sheet, crs="gcj02")
    assert caught.value.decision.found is coords.Datum.WGS84 and caught.value.decision.declared is coords.Datum.GCJ02
    region = build(demo_files, sheet, crs="gcj02", trust_crs=True)
    decision = region.completeness.datum
    assert decision.used is coords.Datum.GCJ02 and decision.decided_by == "confirmed"
    assert "确认" in decision.message("zh") and "confirmed by the user" in decision.message("en")
    assert len(decision.mismatches) > 0  # read in the wrong datum, addresses now disagree with their points


def test_each_signal_decides_alone(demo_files, tmp_path):
    streets_only = build(demo_files, pharmacy_sheet(demo_files, tmp_path / "a.csv", "gcj02", named_addresses=False))
    assert streets_only.completeness.datum.used is coords.Datum.GCJ02
    assert streets_only.completeness.datum.decided_by == "streets"
    assert streets_only.completeness.datum.address_match_share == {}
    addresses_only = build(demo_files, pharmacy_sheet(demo_files, tmp_path / "b.csv", "bd09"), network=None)
    assert addresses_only.completeness.datum.used is coords.Datum.BD09
    assert addresses_only.completeness.datum.decided_by == "addresses"
    assert addresses_only.completeness.datum.median_snap_m == {}


def test_a_sheet_too_small_to_decide_uses_the_declared_datum_and_says_so(demo_files, tmp_path):
    sheet = pharmacy_sheet(demo_files, tmp_path / "p.csv", "gcj02", n=5)
    region = build(demo_files, sheet)
    decision = region.completeness.datum
    assert decision.used is coords.Datum.WGS84 and decision.decided_by == "undecided" and decision.found is None
    assert decision.n_points == 5 and "证据不足" in decision.message("zh") and "too little" in decision.message("en")
    assert any("cannot decide" in w for w in region.completeness.warnings)
    declared = build(demo_files, sheet, crs="gcj02").completeness.datum
    assert declared.used is coords.Datum.GCJ02 and declared.decided_by == "declared"


def test_addresses_naming_another_area_are_listed(demo_files, tmp_path):
    sheet = pharmacy_sheet(demo_files, tmp_path / "p.csv", "wgs84")
    table = pd.read_csv(sheet, encoding="utf-8-sig", dtype=str)
    ph = demo_files["region"].pharmacies
    first, second = table.at[0, "地址"], table.at[1, "地址"]
    here = next(n for n in demo_files["region"].subdistricts["name"] if n in first)
    elsewhere = next(n for n in demo_files["region"].subdistricts["name"] if n not in first and n not in second)
    table.loc[[0, 1], "地址"] = [first.replace(here, elsewhere), second.replace(
        next(n for n in demo_files["region"].subdistricts["name"] if n in second), elsewhere)]
    table.to_csv(sheet, index=False, encoding="utf-8-sig")
    decision = build(demo_files, sheet).completeness.datum
    assert decision.used is coords.Datum.WGS84
    assert [(m.row, m.named) for m in decision.mismatches] == [(2, elsewhere), (3, elsewhere)]
    assert decision.mismatches[0].located == here and decision.mismatches[0].pharmacy_id == ph["pharmacy_id"][0]
    assert decision.address_match_share[coords.Datum.WGS84] == pytest.approx(1 - 2 / len(ph))


def test_read_pharmacies_checks_the_datum_when_given_a_network(demo_files, tmp_path):
    from planning.network import load_network

    network = load_network(NETWORK)
    sheet = pharmacy_sheet(demo_files, tmp_path / "p.csv", "gcj02", named_addresses=False)
    assert ingest.read_pharmacies(sheet, network=network).datum is coords.Datum.GCJ02
    with pytest.raises(DatumMismatchError, match="GCJ-02"):
        ingest.read_pharmacies(sheet, crs="wgs84", network=network)
    without = ingest.read_pharmacies(sheet)  # no network, no boundaries: nothing to decide with
    assert without.datum is coords.Datum.WGS84 and without.datum_decision.decided_by == "undecided"


def test_nanjing_extract_with_a_gcj02_sheet(osm_path, tmp_path):
    """Pharmacies 8 m off real Nanjing streets, written in GCJ-02 as an Amap export would be."""
    from planning.network import load_network

    network = load_network(osm_path("nanjing_xuanwu"))
    rng = np.random.default_rng(12)
    edges = rng.choice(network.n_edges, 120, replace=False)
    lines = network.edge_lines[edges]
    mid = shapely.line_interpolate_point(lines, 0.5, normalized=True)
    ahead = shapely.line_interpolate_point(lines, np.minimum(0.5 * network.edge_length[edges] + 1.0,
                                                             network.edge_length[edges]))
    dx, dy = (shapely.get_x(ahead) - shapely.get_x(mid)), (shapely.get_y(ahead) - shapely.get_y(mid))
    norm = np.hypot(dx, dy)
    norm[norm == 0] = 1.0
    x, y = shapely.get_x(mid) - 8.0 * dy / norm, shapely.get_y(mid) + 8.0 * dx / norm
    lon, lat = network.to_lonlat.transform(x, y)
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    rows = [[f"南京药房{i}号店", f"中山路{i}号", repr(float(a)), repr(float(b)), "是", YES_NO[bool(i % 2)]]
            for i, (a, b) in enumerate(zip(glon, glat))]
    sheet = write_csv(tmp_path / "南京药店.csv", ["名称", "地址", "经度", "纬度", "门诊统筹", "门诊慢特病"], rows)
    box = shapely.box(min(lon) - 0.01, min(lat) - 0.01, max(lon) + 0.01, max(lat) + 0.01)
    gpd.GeoDataFrame({"code": ["320102001"], "name": ["新街口街道"], "population": [50000]}, geometry=[box],
                     crs="EPSG:4326").to_file(tmp_path / "sd.geojson", driver="GeoJSON")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        region = ingest.build_region(pharmacies=sheet, subdistricts=tmp_path / "sd.geojson",
                                     network=osm_path("nanjing_xuanwu"))
        with pytest.raises(DatumMismatchError, match="GCJ-02"):
            ingest.build_region(pharmacies=sheet, subdistricts=tmp_path / "sd.geojson", crs="wgs84",
                                network=osm_path("nanjing_xuanwu"))
    decision = region.completeness.datum
    assert decision.used is coords.Datum.GCJ02 and decision.decided_by == "streets"
    assert decision.median_snap_m[coords.Datum.GCJ02] == pytest.approx(8.0, abs=0.5)
    assert len(region.pharmacies) == 120
    assert region.completeness.missing_services == {Service.PERSONAL_ACCOUNT, Service.DUAL_CHANNEL}
    assert region.pharmacies["pharmacy_id"].str.match(r"^H[0-9A-F]{12}$").all()


# ---------------------------------------------------------------------------------------- ids and duplicates
def _expected_id(name: str, address: str) -> str:
    def norm(text):
        return "".join(unicodedata.normalize("NFKC", text).split()).lower()
    return "H" + hashlib.sha1(f"{norm(name)}|{norm(address)}".encode()).hexdigest()[:12].upper()


def test_sheets_without_ids_get_the_same_ids_every_time(demo_files, tmp_path):
    header = [h for h in FULL_HEADER if h != "统一社会信用代码"]
    sheet = pharmacy_sheet(demo_files, tmp_path / "p.csv", "wgs84", header=header)
    first = ingest.read_pharmacies(sheet)
    again = ingest.read_pharmacies(sheet)
    assert first.clean["pharmacy_id"].tolist() == again.clean["pharmacy_id"].tolist()
    want = [_expected_id(n, a) for n, a in zip(first.clean["name"], first.clean["address"])]
    assert first.clean["pharmacy_id"].tolist() == want and len(set(want)) == len(want)
    assert "id_generated" in set(first.notes["note_code"])
    table = pd.read_csv(sheet, encoding="utf-8-sig", dtype=str)
    shuffled = table.sample(frac=1.0, random_state=3)
    shuffled["名称"] = shuffled["名称"].str.replace("（", " （", regex=False)  # spacing does not change an id
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False, encoding="utf-8-sig")
    moved = ingest.read_pharmacies(tmp_path / "shuffled.csv")
    assert dict(zip(moved.clean["address"], moved.clean["pharmacy_id"])) == \
        dict(zip(first.clean["address"], first.clean["pharmacy_id"]))
    region = build(demo_files, sheet)
    assert len(region.pharmacies) == len(demo_files["region"].pharmacies) and region.rejected.empty


def test_exact_duplicates_are_kept_once_and_conflicting_ones_rejected(tmp_path):
    header = ["统一社会信用代码", "名称", "地址", "经度", "纬度", "门诊统筹"]
    base = ["P1", "康宁大药房", "五一大道1号", "112.93000", "28.12000", "是"]
    near = ["P1", "康宁大药房", "五一大道1号", "112.93002", "28.12001", "是"]      # about 2 m away
    far = ["P2", "仁和药房", "五一大道2号", "112.93100", "28.12000", "是"]
    far_again = ["P2", "仁和药房", "五一大道2号", "112.93200", "28.12000", "是"]   # about 98 m away
    renamed = ["P3", "百福药房", "五一大道3号", "112.93300", "28.12000", "是"]
    renamed_again = ["P3", "百福药房（二店）", "五一大道3号", "112.93300", "28.12000", "是"]
    result = ingest.read_pharmacies(write_csv(tmp_path / "p.csv", header,
                                         [base, near, far, far_again, renamed, renamed_again]))
    assert result.n_in == result.n_clean + result.n_rejected == 6
    assert result.clean["pharmacy_id"].tolist() == ["P1"] and list(result.clean.index) == [2]
    got = sorted(zip(result.rejected["row"], result.rejected["reason_code"]))
    assert got == [(3, "duplicate_row"), (4, "duplicate_id"), (5, "duplicate_id"), (6, "duplicate_id"),
                   (7, "duplicate_id")]
    assert "row 2" in result.rejected.set_index("row").at[3, "reason"]
    assert "rows 6, 7" in result.rejected.set_index("row").at[7, "reason"]
    kept = result.notes[result.notes["note_code"] == "duplicate_kept_once"]
    assert kept["row"].tolist() == [2] and "3" in kept["note"].iloc[0]


# ---------------------------------------------------------------------------------------- completeness
def test_missing_columns_and_fund_table_are_listed_with_the_rules_they_disable(demo_files, tmp_path):
    header = ["名称", "地址", "经度", "纬度", "门诊统筹", "门诊慢特病"]  # the bureau sheet
    sheet = pharmacy_sheet(demo_files, tmp_path / "p.csv", "gcj02", header=header)
    folder = demo_files["folder"]
    with pytest.warns(ingest.IngestWarning, match="no fund-status table"):
        region = ingest.build_region(pharmacies=sheet, subdistricts=folder / "subdistricts.geojson",
                                     population=folder / "population.csv", network=NETWORK)
    done = region.completeness
    assert isinstance(done, DataCompleteness) and done.datum.used is coords.Datum.GCJ02
    assert done.missing_services == {Service.PERSONAL_ACCOUNT, Service.DUAL_CHANNEL}
    assert not done.has_fund_status and done.has_boundaries and done.has_population
    assert set(done.layer("pharmacies").missing) == {"service:personal_account", "service:dual_channel",
                                                     "column:info_system_ready", "column:cross_region_settlement",
                                                     "column:traceability_accepted", "column:agreement_status",
                                                     "column:principal_status"}
    # No settlement-status column: every rule of planning.settlement is listed as unjudged, and the
    # pharmacies' status is "not judged" (never "settling"), with no "upgrade done" read into them.
    assert set(SETTLEMENT_RULES) <= set(done.disabled_rules)
    assert "info_system_ready" not in region.pharmacies.columns
    status = settlement_status(region.pharmacies, dt.date(2026, 1, 1))
    assert (status["settlement"] == "not_judged").all()
    assert done.layer("fund_status").missing == ("fund_status",)
    assert {"B3", "B4", "R2", "B5", "R4", "S"} <= set(done.disabled_rules) and "R1" not in done.disabled_rules
    assert any("no fund-status table" in w for w in done.warnings)
    assert any("dissolved" in w for w in done.warnings)
    ph = done.layer("pharmacies")
    assert ph.rows_read == ph.clean + ph.rejected == len(demo_files["region"].pharmacies)
    zh, en = done.table("zh"), done.table("en")
    assert list(en.columns[:7]) == ["layer", "source", "rows read", "clean", "rejected", "what was missing",
                                    "which rules it disables"]
    assert zh.columns[0] == "图层" and "基金运行情况表" in zh["缺少"].tolist()
    assert "B3, B4" in en.set_index("layer").at["fund-status table", "which rules it disables"]
    assert "personal account" in en.set_index("layer").at["pharmacies", "what was missing"]
    # the pharmacy values for the absent services are still False (the lead turns them into "not judged")
    assert not region.pharmacies["personal_account"].any()


def test_every_missing_required_column_is_reported_in_one_error(tmp_path):
    sheet = write_csv(tmp_path / "p.csv", ["名称", "经度", "纬度", "门诊统筹"], [["一号店", "112.93", "28.12", "是"]])
    table = write_csv(tmp_path / "pop.csv", ["街道代码", "街道名称"], [["430102001", "文昌街道"]])
    with pytest.raises(MissingColumnError) as caught:
        ingest.build_region(pharmacies=sheet, population=table)
    message = caught.value.message_en
    assert "'address'" in message and "'population'" in message and "p.csv" in message and "pop.csv" in message
    assert "地址" in caught.value.message_zh


def test_rule_mapping_names_only_known_rules():
    from planning.policy import RULES

    for key, rules in RULES_DISABLED_BY.items():
        assert rules, key
        assert all(r.split("-")[0] in RULES or r in SETTLEMENT_RULES for r in rules), key
    assert {f"service:{s.value}" for s in Service} <= set(RULES_DISABLED_BY)


def test_cli_auto_reads_a_gcj02_sheet_and_prints_the_completeness_table(demo_files, tmp_path):
    folder = demo_files["folder"]
    sheet = pharmacy_sheet(demo_files, tmp_path / "p.csv", "gcj02")
    demo = run_cli("assess", "--demo", "--quiet", "--lang", "en", "--out", str(tmp_path / "demo"))
    result = run_cli("assess", "--pharmacies", str(sheet), "--subdistricts", str(folder / "subdistricts.geojson"),
                     "--counties", str(folder / "counties.geojson"), "--population", str(folder / "population.csv"),
                     "--fund", str(folder / "fund.csv"), "--network", str(NETWORK), "--quiet", "--lang", "en",
                     "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    # the same verdicts as the demo; what the sheet lacks (its R4 column) is said, not read as "no"
    assert summary_blocks(result.stdout, judged_only=True) == summary_blocks(demo.stdout)
    assert "not judged (data missing): R4 (missing 'cross_region_settlement' column)" in result.stdout
    assert "data completeness:" in result.stdout
    assert "layer | source | rows read | clean | rejected" in result.stdout
    assert "datum: datum found from the data: GCJ-02" in result.stdout
