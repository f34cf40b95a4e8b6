"""Data ingest: every input row ends clean or rejected with a reason; every unreadable file raises a
bilingual PlanningError; real encodings (GBK CSV, GBK shapefile) keep Chinese intact; the demo region
survives a round trip through CSV/XLSX/GeoJSON exports."""

from __future__ import annotations

import csv
import io
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planning import coords, ingest
from planning.errors import (
    ArchiveError, CoordinateSystemError, EmptyFileError, EncodingError, FileTooLargeError, FileTypeError,
    MissingColumnError, ParameterError, PlanningError, UnreadableFileError, UnsafeArchiveError,
)
from planning.ingest import Reason
from planning.ingest.vocabulary import cell_text
from planning.model import PHARMACY_SCHEMA, SERVICE_COLUMNS

# ---------------------------------------------------------------------------------------- helpers
# A small fictional county (code 990102) of two sub-districts side by side near Changsha, WGS84.
WEST = shapely.box(112.90, 28.10, 112.95, 28.15)
EAST = shapely.box(112.95, 28.10, 113.00, 28.15)

HEADER = ["统一社会信用代码", "药店名称", "地址", "经度", "纬度", "门诊统筹", "门诊慢特病", "双通道", "是否连锁", "信息系统改造"]


def good_rows(n: int = 4) -> list[list[str]]:
    return [[f"91430100MA4L{i:06d}", f"康宁大药房（{i}号店）", f"五一大道{i}号", f"{112.91 + 0.02 * i:.5f}", "28.12",
             "是", "否", "否", "连锁", "是"] for i in range(n)]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8",
              title: str | None = None) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    if title:
        writer.writerow([title])
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list], header: list[str] = HEADER, title: str | None = None) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    if title:
        sheet.append([title])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def boundaries(tmp_path: Path, features: list[dict], name: str = "subdistricts.geojson", crs="EPSG:4326") -> Path:
    gdf = gpd.GeoDataFrame([{k: v for k, v in f.items() if k != "geometry"} for f in features],
                           geometry=[f["geometry"] for f in features], crs=crs)
    path = tmp_path / name
    gdf.to_file(path, driver="GeoJSON")
    return path


def standard_subdistricts(tmp_path: Path, **extra) -> Path:
    rows = [{"code": "990102001", "name": "文昌街道", "population": 46800, "geometry": WEST},
            {"code": "990102101", "name": "黄花镇", "population": 21000, "geometry": EAST}]
    for row in rows:
        row.update(extra)
    return boundaries(tmp_path, rows)


def standard_counties(tmp_path: Path) -> Path:
    county = {"code": "990102", "name": "临溪区", "geometry": shapely.box(112.90, 28.10, 113.0, 28.15)}
    return boundaries(tmp_path, [county], name="counties.geojson")


def zip_files(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def shapefile_zip(tmp_path: Path, gdf: gpd.GeoDataFrame, *, encoding: str = "gbk", cpg: bool = True,
                  prj: bool = True, folder: str = "") -> Path:
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir(exist_ok=True)
    gdf.to_file(shp_dir / "layer.shp", encoding=encoding)
    members = {}
    for part in shp_dir.iterdir():
        if part.suffix == ".cpg" and not cpg or part.suffix == ".prj" and not prj:
            continue
        members[f"{folder}边界{part.suffix}"] = part.read_bytes()
    return zip_files(tmp_path / "boundaries.zip", members)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def assert_counts(result: ingest.IngestResult) -> None:
    assert result.n_in == len(result.clean) + len(result.rejected)
    assert not set(result.clean.index) & set(result.rejected["row"])


# ---------------------------------------------------------------------------------------- good inputs
def test_gbk_csv_with_title_row_reads_chinese_intact(tmp_path):
    path = write_csv(tmp_path / "药店.csv", good_rows(), encoding="gbk", title="长沙市定点零售药店名单（2025年）")
    result = ingest.read_pharmacies(path)
    assert_counts(result)
    assert result.n_in == 4 and result.rejected.empty
    clean = result.clean
    assert list(clean.index) == [3, 4, 5, 6]  # Excel rows: title 1, header 2, data from 3
    assert clean["name"].iloc[0] == "康宁大药房（0号店）" and clean["address"].iloc[1] == "五一大道1号"
    assert clean["outpatient_pooling"].all() and not clean["chronic_disease"].any()
    assert clean["chain"].all() and clean["info_system_ready"].all()
    assert clean.crs == "EPSG:4326" and clean.geometry.x.iloc[0] == pytest.approx(112.91)
    assert result.mapping["lon"] == "经度"


def test_xlsx_with_service_list_column_and_english_headers(tmp_path):
    header = ["id", "name", "address", "lng", "lat", "services", "chain"]
    rows = [["A1", "Store A", "Road 1", 112.93, 28.12, "门诊统筹、慢特病", "Y"],
            ["A2", "Store B", "Road 2", 112.96, 28.12, "个人账户,“双通道”", "N"],
            ["A3", "Store C", "Road 3", 112.97, 28.13, "无", 0]]
    result = ingest.read_pharmacies(write_xlsx(tmp_path / "p.xlsx", rows, header))
    assert_counts(result)
    c = result.clean.set_index("pharmacy_id")
    assert c.loc["A1", "outpatient_pooling"] and c.loc["A1", "chronic_disease"] and not c.loc["A1", "dual_channel"]
    assert c.loc["A2", "personal_account"] and c.loc["A2", "dual_channel"] and not c.loc["A2", "chain"]
    assert not c.loc["A3", list(SERVICE_COLUMNS)].any()
    notes = result.notes
    # info_system_ready absent: no column, no "done" default; a note says it is unknown
    assert (notes["note_code"] == "unknown_without_column").any() and "info_system_ready" not in result.clean


def test_blank_service_cells_are_read_as_no_and_said(tmp_path):
    """A bureau marks only 是: a blank service cell is "no", but the planner is told which rows, per column."""
    header = ["编号", "名称", "地址", "经度", "纬度", "门诊统筹", "门诊慢特病"]
    rows = [["A1", "甲店", "一路1号", 112.93, 28.12, "是", "是"],
            ["A2", "乙店", "一路2号", 112.96, 28.12, "是", None],
            ["A3", "丙店", "一路3号", 112.97, 28.13, "否", "否"]]
    result = ingest.read_pharmacies(write_xlsx(tmp_path / "p.xlsx", rows, header))
    assert not result.clean.set_index("pharmacy_id").loc["A2", "chronic_disease"]
    said = result.notes[result.notes["note_code"] == "blank_read_as_no"]["note"].tolist()
    assert len(said) == 1 and "门诊慢特病" in said[0] and "1 个空白" in said[0] and "1 blank cells" in said[0]


@pytest.mark.parametrize("value, expected", [
    ("是", True), ("否", False), ("Y", True), ("n", False), ("1", True), ("0", False), (1.0, True), (0, False),
    ("✓", True), ("×", False), ("√", True), ("已开通", True), ("未开通", False), ("", False), (None, False),
    (True, True), ("ＹＥＳ", True), (float("nan"), False), ("maybe", None), ("2", None), (2, None),
])
def test_parse_flag(value, expected):
    assert ingest.parse_flag(value) is expected


def test_parse_services_and_numbers():
    assert ingest.parse_services("门诊统筹、慢特病")[0] == {"outpatient_pooling", "chronic_disease"}
    assert ingest.parse_services("个人账户；“双通道”")[0] == {"personal_account", "dual_channel"}
    assert ingest.parse_services("统筹和门特")[0] == {"outpatient_pooling", "chronic_disease"}
    assert ingest.parse_services("门诊统筹、美容") == ({"outpatient_pooling"}, ["美容"])
    assert ingest.parse_number("4.68万") == pytest.approx(46800)
    assert ingest.parse_number("46,800人") == 46800
    assert ingest.parse_number("") is None and ingest.parse_number("abc") is ingest.INVALID
    assert ingest.parse_coordinate("112°56′30″") == pytest.approx(112 + 56 / 60 + 30 / 3600)
    assert ingest.parse_coordinate("１１２．９３") == pytest.approx(112.93)


def test_gcj02_and_bd09_declared_coordinates_are_converted(tmp_path):
    wgs = np.array([112.93, 112.96]), np.array([28.12, 28.13])
    for datum in ("gcj02", "bd09"):
        lon, lat = coords.from_wgs84(*wgs, datum)
        rows = [[f"P{i}", f"药店{i}", f"路{i}", repr(float(lon[i])), repr(float(lat[i])), "是", "是", "否", "单体", "是"]
                for i in range(2)]
        result = ingest.read_pharmacies(write_csv(tmp_path / f"{datum}.csv", rows), crs=datum)
        np.testing.assert_allclose(result.clean.geometry.x, wgs[0], atol=1e-9)
        np.testing.assert_allclose(result.clean.geometry.y, wgs[1], atol=1e-9)
        assert result.datum.value == datum


def test_explicit_column_mapping(tmp_path):
    header = ["店号", "店名", "位置", "X坐标", "Y坐标", "统筹"]
    rows = [["S1", "一号店", "一路", "112.93", "28.12", "是"]]
    path = write_csv(tmp_path / "p.csv", rows, header)
    with pytest.raises(MissingColumnError, match="'name'.*'address'") as err:  # ids are optional: name, address
        ingest.read_pharmacies(path)
    assert "药店名称" in err.value.message_zh and "详细地址" in err.value.message_zh
    assert "accepted headers" in err.value.message_en
    mapping = {"店号": "pharmacy_id", "店名": "name", "位置": "address", "X坐标": "lon", "Y坐标": "lat",
               "统筹": "outpatient_pooling"}
    result = ingest.read_pharmacies(path, columns=mapping)
    assert result.clean["outpatient_pooling"].iloc[0] and result.clean.geometry.x.iloc[0] == pytest.approx(112.93)
    with pytest.raises(ParameterError, match="unknown"):
        ingest.read_pharmacies(path, columns={"店号": "shop_number"})
    with pytest.raises(MissingColumnError, match="店铺"):
        ingest.read_pharmacies(path, columns={"店铺": "name"})


def test_uploaded_bytes_and_file_like_objects(tmp_path):
    data = write_csv(tmp_path / "p.csv", good_rows(2)).read_bytes()
    by_bytes = ingest.read_pharmacies(data, source_name="upload.csv")
    assert by_bytes.source == "upload.csv" and by_bytes.n_clean == 2
    handle = io.BytesIO(write_xlsx(tmp_path / "p.xlsx", good_rows(2)).read_bytes())
    handle.name = "药店.xlsx"  # what Streamlit's UploadedFile carries
    by_handle = ingest.read_pharmacies(handle)
    assert by_handle.source == "药店.xlsx" and by_handle.n_clean == 2
    anonymous = ingest.read_pharmacies(io.BytesIO(handle.getvalue()))  # no name: content decides (xlsx)
    assert anonymous.n_clean == 2


def test_gpkg_layers(tmp_path):
    path = tmp_path / "data.gpkg"
    gpd.GeoDataFrame({"code": ["990102"], "name": ["临溪区"]}, geometry=[WEST.union(EAST)], crs="EPSG:4326") \
        .to_file(path, layer="counties", driver="GPKG")
    gpd.GeoDataFrame({"id": ["P1"], "名称": ["药店"], "地址": ["路"], "业务类别": ["门诊统筹"]},
                     geometry=[shapely.Point(112.93, 28.12)], crs="EPSG:4326") \
        .to_file(path, layer="pharmacies", driver="GPKG")
    counties = ingest.read_boundaries(path, level="county", layer="counties")
    assert counties.clean["name"].tolist() == ["临溪区"] and counties.notes.empty
    pharmacies = ingest.read_pharmacies(path.read_bytes(), source_name="data.gpkg", layer="pharmacies")
    assert pharmacies.clean["outpatient_pooling"].tolist() == [True]
    first = ingest.read_boundaries(path, level="county")  # no layer given: the first, with a note
    assert first.notes["note_code"].tolist() == ["layer_chosen"]


def test_header_aliases_priority_and_combined_lonlat(tmp_path):
    header = ["id", "统一社会信用代码", "名称", "地址", "经纬度", "服务项目"]
    rows = [["7", "91430100MA4L000001", "甲药店", "一路", "112.93,28.12", "门诊统筹"]]
    result = ingest.read_pharmacies(write_csv(tmp_path / "p.csv", rows, header))
    assert result.clean["pharmacy_id"].tolist() == ["91430100MA4L000001"]  # the credit code wins over "id"
    assert result.notes["note_code"].tolist().count("column_ignored") == 1
    assert result.clean.geometry.x.iloc[0] == pytest.approx(112.93)
    rows[0][4] = "112.93"
    bad = ingest.read_pharmacies(write_csv(tmp_path / "p2.csv", rows, header))
    assert bad.rejected["reason_code"].tolist() == ["non_numeric_coordinate"]


def test_blank_optional_number_keeps_column_and_row_as_nan(tmp_path):
    header = HEADER + ["信用评分", "经营月数"]
    rows = [r + [score, months] for r, score, months in zip(good_rows(3), ["95", "", "88.5"], ["12", "", "30"])]
    result = ingest.read_pharmacies(write_csv(tmp_path / "p.csv", rows, header))
    assert_counts(result)
    assert result.n_clean == 3 and result.rejected.empty
    clean = result.clean
    assert np.isnan(clean.at[3, "credit_score"]) and clean.at[2, "credit_score"] == 95.0
    assert np.isnan(clean.at[3, "months_operating"]) and clean["months_operating"].dtype == np.float64
    assert "column_dropped" not in result.notes["note_code"].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ingest.IngestWarning)
        region = ingest.build_region(pharmacies=result, subdistricts=standard_subdistricts(tmp_path),
                                     counties=standard_counties(tmp_path))
    by_id = region.pharmacies.set_index("pharmacy_id")
    assert len(by_id) == 3 and np.isnan(by_id.at["91430100MA4L000001", "credit_score"])  # the model accepts NaN
    complete = ingest.read_pharmacies(write_csv(tmp_path / "q.csv", [rows[0], rows[2]], header))
    assert complete.clean["months_operating"].dtype == np.int64  # counts stay int64 when every cell is given


def test_required_number_still_refuses_nan():
    from planning.errors import SchemaError
    from planning.model import SUBDISTRICT_SCHEMA, validate_layer

    subs = gpd.GeoDataFrame({"code": ["1"], "name": ["文昌街道"], "kind": ["street"], "county_code": ["990102"],
                             "population": [np.nan]}, geometry=[WEST], crs="EPSG:4326")
    with pytest.raises(SchemaError, match="population"):
        validate_layer(subs, SUBDISTRICT_SCHEMA, "subdistricts", ("Polygon", "MultiPolygon"))


# ---------------------------------------------------------------------------------------- rejection matrix
def _edit(row: int, column: str, value):
    def apply(rows):
        rows[row][HEADER.index(column)] = value
    return apply


PHARMACY_CASES = [
    # (case id, edit of good_rows(4), reason code, rejected Excel rows, text in the reason)
    ("missing_coordinate", _edit(1, "经度", ""), Reason.MISSING_COORDINATE, [3], "missing coordinate (经度)"),
    ("non_numeric_coordinate", _edit(1, "纬度", "二十八"), Reason.NON_NUMERIC_COORDINATE, [3], "not a number: 二十八"),
    ("outside_china", _edit(0, "经度", "2.35"), Reason.OUTSIDE_CHINA, [2], "outside China"),
    ("projected_metres", _edit(0, "经度", "645000"), Reason.OUTSIDE_CHINA, [2], "projected metres"),
    ("swapped", lambda rows: rows[2].__setitem__(slice(3, 5), ["28.12", "112.95"]), Reason.SWAPPED_LON_LAT, [4],
     "swapped"),
    ("duplicate_id", _edit(3, "统一社会信用代码", "91430100MA4L000001"), Reason.DUPLICATE_ID, [3, 5],
     "rows 3, 5"),
    ("unknown_service_value", _edit(2, "门诊慢特病", "待定"), Reason.UNKNOWN_SERVICE_VALUE, [4], "待定"),
    ("invalid_value", _edit(0, "是否连锁", "加盟"), Reason.INVALID_VALUE, [2], "'是否连锁'"),
    ("missing_value", _edit(0, "药店名称", " "), Reason.MISSING_VALUE, [2], "'药店名称' is empty"),
    ("empty_row", lambda rows: rows.__setitem__(1, [""] * len(HEADER)), Reason.EMPTY_ROW, [3], "empty row"),
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("case, edit, reason, rows, text", PHARMACY_CASES, ids=[c[0] for c in PHARMACY_CASES])
def test_pharmacy_rejection_matrix(tmp_path, fmt, case, edit, reason, rows, text):
    data = good_rows(4)
    edit(data)
    path = write_csv(tmp_path / "p.csv", data) if fmt == "csv" else write_xlsx(tmp_path / "p.xlsx", data)
    result = ingest.read_pharmacies(path)
    assert_counts(result)
    assert result.n_in == 4
    rejected = result.rejected
    assert sorted(rejected["row"]) == rows, rejected
    assert set(rejected["reason_code"]) == {reason.value}
    assert all(text in r for r in rejected["reason"]), rejected["reason"].tolist()
    assert all(" / " in r for r in rejected["reason"])  # Chinese / English
    assert {"source", "row", "reason_code", "reason", *HEADER} <= set(rejected.columns)  # raw values kept
    assert (rejected["source"] == path.name).all()


def test_geojson_pharmacies_bad_geometries(tmp_path):
    features = [{"pharmacy_id": "A", "name": "甲", "address": "一路", "门诊统筹": "是",
                 "geometry": shapely.Point(112.93, 28.12)},
                {"pharmacy_id": "B", "name": "乙", "address": "二路", "门诊统筹": "是", "geometry": None},
                {"pharmacy_id": "C", "name": "丙", "address": "三路", "门诊统筹": "是", "geometry": WEST}]
    result = ingest.read_pharmacies(boundaries(tmp_path, features, "p.geojson"))
    assert_counts(result)
    reasons = dict(zip(result.rejected["row"], result.rejected["reason_code"]))
    assert reasons == {2: "missing_coordinate", 3: "wrong_geometry_type"}  # feature numbers


def _bowtie():
    return shapely.Polygon([(112.90, 28.10), (112.95, 28.15), (112.95, 28.10), (112.90, 28.15)])


BOUNDARY_CASES = [
    ("empty_geometry", {"geometry": None}, Reason.EMPTY_GEOMETRY, "geometry is missing"),
    ("invalid_geometry", {"geometry": shapely.Polygon([(112.9, 28.1), (112.95, 28.1), (113.0, 28.1), (112.9, 28.1)])},
     Reason.INVALID_GEOMETRY, "cannot be repaired"),
    ("wrong_geometry_type", {"geometry": shapely.LineString([(112.9, 28.1), (113.0, 28.2)])},
     Reason.WRONG_GEOMETRY_TYPE, "found LineString"),
    ("unknown_kind", {"name": "高新技术开发区"}, Reason.UNKNOWN_KIND, "高新技术开发区"),
    ("duplicate_id", {"code": "990102001"}, Reason.DUPLICATE_ID, "duplicate id '990102001'"),
    ("missing_value", {"code": None}, Reason.MISSING_VALUE, "'code' is empty"),
    ("invalid_population", {"population": "很多"}, Reason.INVALID_POPULATION, "很多"),
    ("outside_china", {"geometry": shapely.box(2.3, 48.8, 2.4, 48.9)}, Reason.OUTSIDE_CHINA, "outside China"),
]


@pytest.mark.parametrize("case, change, reason, text", BOUNDARY_CASES, ids=[c[0] for c in BOUNDARY_CASES])
def test_boundary_rejection_matrix(tmp_path, case, change, reason, text):
    rows = [{"code": "990102001", "name": "文昌街道", "population": 46800, "geometry": WEST},
            {"code": "990102101", "name": "黄花镇", "population": 21000, "geometry": EAST}]
    rows[1].update(change)
    result = ingest.read_boundaries(boundaries(tmp_path, rows), level="subdistrict")
    assert_counts(result)
    rejected = result.rejected
    expected_rows = [1, 2] if reason is Reason.DUPLICATE_ID else [2]
    assert sorted(rejected["row"]) == expected_rows
    assert set(rejected["reason_code"]) == {reason.value}
    assert all(text in r for r in rejected["reason"]), rejected["reason"].tolist()


def test_invalid_polygon_is_repaired_and_reported(tmp_path):
    rows = [{"code": "990102001", "name": "文昌街道", "geometry": _bowtie()}]
    result = ingest.read_boundaries(boundaries(tmp_path, rows), level="subdistrict")
    assert_counts(result)
    assert result.n_clean == 1 and result.clean.geometry.iloc[0].is_valid
    assert result.notes["note_code"].tolist() == ["geometry_repaired"]
    assert "Self-intersection" in result.notes["note"].iloc[0]


def test_kind_inferred_from_name_with_override(tmp_path):
    rows = [{"code": "1", "name": "文昌街道办事处", "geometry": WEST}, {"code": "2", "name": "黄花镇", "geometry": EAST},
            {"code": "3", "name": "白沙乡", "geometry": WEST}, {"code": "4", "name": "黄花镇", "类型": "街道", "geometry": EAST},
            {"code": "5", "name": "开发区", "类型": "town", "geometry": EAST}]
    result = ingest.read_boundaries(boundaries(tmp_path, rows), level="subdistrict")
    assert result.clean["kind"].tolist() == ["street", "town", "town", "street", "town"]


# ---------------------------------------------------------------------------------------- region assembly
def test_build_region_rejections_and_counts(tmp_path):
    rows = good_rows(4)
    rows[3][3:5] = ["113.20", "28.30"]  # in China, outside every boundary
    pharmacies = ingest.read_pharmacies(write_csv(tmp_path / "p.csv", rows))
    subs = boundaries(tmp_path, [
        {"code": "990102001", "name": "文昌街道", "geometry": WEST},
        {"code": "990102101", "name": "黄花镇", "geometry": EAST},
        {"code": "990102102", "name": "白沙乡", "geometry": shapely.box(112.9, 28.15, 113.0, 28.2)},
        {"code": "880101001", "name": "远方街道", "geometry": shapely.box(114.0, 28.0, 114.1, 28.1)},
    ])
    population = write_csv(tmp_path / "pop.csv", [["990102001000", "文昌街道", "4.68万"],
                                                  ["", "黄花镇", "21,000"], ["", "不存在镇", "100"]],
                           header=["统计用区划代码", "街道乡镇", "常住参保人口"])
    fund = write_xlsx(tmp_path / "fund.xlsx", [["990102", "临溪区", "是", "否", "否"], ["990199", "外县", "否", "否", "是"]],
                      header=["区县代码", "区县", "上年亏损", "预计亏损", "预警函"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ingest.IngestWarning)
        region = ingest.build_region(pharmacies=pharmacies, subdistricts=subs, counties=standard_counties(tmp_path),
                                     population=population, fund_status=fund, name="测试区")
    assert len(region.pharmacies) == 3
    assert region.subdistricts.set_index("code")["population"].to_dict() == {"990102001": 46800, "990102101": 21000}
    assert region.subdistricts["county_code"].tolist() == ["990102", "990102"]
    assert region.subdistricts.set_index("code")["kind"].to_dict() == {"990102001": "street", "990102101": "town"}
    assert bool(region.counties["fund_deficit_last_year"].iloc[0])
    got = set(zip(region.rejected["layer"], region.rejected["row"], region.rejected["reason_code"]))
    assert got == {
        ("pharmacies", 5, "outside_boundaries"),
        ("subdistricts", 3, "no_population"),   # 白沙乡: no population row
        ("subdistricts", 4, "no_county"),       # 远方街道: code 880101 and outside the county
        ("population", 4, "unmatched"),         # 不存在镇
        ("fund_status", 3, "unmatched"),        # 外县
    }
    unmatched = region.rejected[region.rejected["reason_code"] == "unmatched"]
    assert unmatched["reason"].str.contains("不存在镇").any()
    assert len(region.pharmacies) + (region.rejected["layer"] == "pharmacies").sum() == pharmacies.n_in


@pytest.mark.filterwarnings("ignore:没有基金运行情况表:planning.ingest.IngestWarning")
def test_build_region_from_files_without_counties(tmp_path):
    path = write_csv(tmp_path / "p.csv", good_rows(3))
    with pytest.warns(ingest.IngestWarning, match="dissolved"):
        region = ingest.build_region(pharmacies=path, subdistricts=standard_subdistricts(tmp_path))
    assert region.counties["code"].tolist() == ["990102"]
    assert len(region.pharmacies) == 3 and region.rejected.empty


@pytest.mark.filterwarnings("ignore::planning.ingest.IngestWarning")
def test_build_region_without_any_population_marks_it_unknown_not_zero(tmp_path):
    subs = boundaries(tmp_path, [{"code": "990102001", "name": "文昌街道", "geometry": WEST}])
    with pytest.warns(ingest.IngestWarning):
        region = ingest.build_region(pharmacies=write_csv(tmp_path / "p.csv", good_rows(1)), subdistricts=subs,
                                     counties=standard_counties(tmp_path))
    assert not region.population_known and region.rejected.empty  # no sub-district rejected for it
    status = region.completeness.layer("population")
    assert status.missing == ("population",) and set(status.disables) == {"S", "R3-shares"}


def test_county_assignment_by_geometry_and_by_name(tmp_path):
    subs = boundaries(tmp_path, [
        {"code": "A1", "name": "文昌街道", "population": 10, "geometry": WEST},              # by geometry
        {"code": "B2", "name": "黄花镇", "county_code": "临溪区", "population": 20, "geometry": EAST},  # by name
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ingest.IngestWarning)
        region = ingest.build_region(pharmacies=write_csv(tmp_path / "p.csv", good_rows(2)), subdistricts=subs,
                                     counties=standard_counties(tmp_path))
    assert region.subdistricts["county_code"].tolist() == ["990102", "990102"]


def test_two_population_rows_for_one_subdistrict(tmp_path):
    population = write_csv(tmp_path / "pop.csv", [["990102001", "文昌街道", "100"], ["", "文昌街道办事处", "200"],
                                                  ["990102101", "黄花镇", "300"]], header=["代码", "名称", "人口"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ingest.IngestWarning)
        region = ingest.build_region(pharmacies=write_csv(tmp_path / "p.csv", good_rows(2)),
                                     subdistricts=standard_subdistricts(tmp_path, population=None),
                                     counties=standard_counties(tmp_path), population=population)
    got = set(zip(region.rejected["layer"], region.rejected["row"], region.rejected["reason_code"]))
    assert got == {("population", 2, "duplicate_id"), ("population", 3, "duplicate_id"),
                   ("subdistricts", 1, "no_population")}
    assert region.subdistricts["population"].tolist() == [300]


def test_population_table_rejections(tmp_path):
    path = write_csv(tmp_path / "pop.csv", [["990102001", "文昌街道", "-5"], ["990102101", "黄花镇", ""],
                                            ["990102101", "黄花镇", "100"], ["", "", "7"]],
                     header=["代码", "名称", "人口"])
    result = ingest.read_population(path)
    assert_counts(result)
    got = dict(zip(result.rejected["row"], result.rejected["reason_code"]))
    assert got == {2: "invalid_population", 3: "duplicate_id", 4: "duplicate_id", 5: "missing_value"}


# ---------------------------------------------------------------------------------------- file errors
def _bomb(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.shp", b"\0" * (5 * 2**20))  # 5 MiB of zeros compresses to a few KiB
        archive.writestr("a.shx", b"\0")
        archive.writestr("a.dbf", b"\0")
    return path


ERROR_CASES = [
    # (case id, make the file, reader, kwargs, exception, text in the English message)
    ("wrong_file_type", lambda p: _write(p / "p.docx", b"hello"),
     ingest.read_pharmacies, {}, FileTypeError, "unrecognised file type"),
    ("old_xls", lambda p: _write(p / "p.xls", b"\xd0\xcf\x11\xe0junk"),
     ingest.read_pharmacies, {}, FileTypeError, ".xls"),
    ("boundaries_as_csv", lambda p: write_csv(p / "b.csv", good_rows(1)),
     lambda path: ingest.read_boundaries(path, level="county"), {}, FileTypeError, "accepted here"),
    ("missing_required_column", lambda p: write_csv(p / "p.csv", [r[:2] + r[3:] for r in good_rows(2)],
                                                    HEADER[:2] + HEADER[3:]),
     ingest.read_pharmacies, {}, MissingColumnError, "'address' (accepted headers: address, 地址"),
    ("missing_service_columns", lambda p: write_csv(p / "p.csv", [r[:5] for r in good_rows(2)], HEADER[:5]),
     ingest.read_pharmacies, {}, MissingColumnError, "no service columns"),
    ("missing_population_column", lambda p: write_csv(p / "pop.csv", [["1", "x"]], ["代码", "名称"]),
     ingest.read_population, {}, MissingColumnError, "'population'"),
    ("empty_file", lambda p: _write(p / "p.csv", b""),
     ingest.read_pharmacies, {}, EmptyFileError, "empty"),
    ("header_only", lambda p: write_csv(p / "p.csv", []), ingest.read_pharmacies, {}, EmptyFileError, "no data row"),
    ("blank_lines_only", lambda p: _write(p / "p.csv", b"\r\n\r\n"),
     ingest.read_pharmacies, {}, EmptyFileError, "no content"),
    ("unreadable_encoding", lambda p: _write(p / "p.csv", b"\x81\x30\xff\xfe\x80" * 20),
     ingest.read_pharmacies, {}, EncodingError, "neither UTF-8 nor GBK"),
    ("zip_without_shp", lambda p: zip_files(p / "b.zip", {"readme.txt": b"hello", "a.dbf": b"x"}),
     lambda path: ingest.read_boundaries(path, level="county"), {}, ArchiveError, "holds no .shp"),
    ("zip_path_traversal", lambda p: zip_files(p / "b.zip", {"../../evil.shp": b"x", "a.shx": b"x"}),
     lambda path: ingest.read_boundaries(path, level="county"), {}, UnsafeArchiveError, "unsafe member path"),
    ("zip_absolute_path", lambda p: zip_files(p / "b.zip", {"/tmp/evil.shp": b"x"}),
     lambda path: ingest.read_boundaries(path, level="county"), {}, UnsafeArchiveError, "unsafe member path"),
    ("zip_bomb", _bomb, lambda path: ingest.read_boundaries(path, level="county", max_bytes=2**20), {},
     FileTooLargeError, "uncompresses to"),
    ("file_over_limit", lambda p: write_csv(p / "p.csv", good_rows(50)),
     lambda path: ingest.read_pharmacies(path, max_bytes=1000), {}, FileTooLargeError, "exceeds the size limit"),
    ("corrupt_xlsx", lambda p: zip_files(p / "p.xlsx", {"[Content_Types].xml": b"<junk"}),
     ingest.read_pharmacies, {}, UnreadableFileError, "cannot read workbook"),
    ("content_not_suffix", lambda p: _write(p / "b.gpkg", b"not a geopackage"),
     lambda path: ingest.read_boundaries(path, level="county"), {}, UnreadableFileError, "does not match"),
    ("broken_geojson", lambda p: _write(p / "b.geojson", b'{"type": "FeatureCollection", "feat'),
     lambda path: ingest.read_boundaries(path, level="county"), {}, UnreadableFileError, "cannot read"),
    ("unknown_crs_name", lambda p: write_csv(p / "p.csv", good_rows(1)),
     lambda path: ingest.read_pharmacies(path, crs="utm"), {}, ParameterError, "unknown coordinate system"),
]


@pytest.mark.parametrize("case, make, reader, kwargs, error, text", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_file_error_matrix(tmp_path, case, make, reader, kwargs, error, text):
    path = make(tmp_path)
    with pytest.raises(error) as caught:
        reader(path, **kwargs)
    err = caught.value
    assert isinstance(err, PlanningError)
    assert text in err.message_en, err.message_en
    assert err.message_zh and any("\u4e00" <= ch <= "\u9fff" for ch in err.message_zh)  # a Chinese message


def test_projected_shapefile_without_prj_is_a_crs_error(tmp_path):
    gdf = gpd.GeoDataFrame({"XZQDM": ["990102"], "XZQMC": ["临溪区"]},
                           geometry=[shapely.box(645_000, 3_110_000, 650_000, 3_115_000)], crs="EPSG:32649")
    with pytest.raises(CoordinateSystemError, match="add the .prj"):
        ingest.read_boundaries(shapefile_zip(tmp_path, gdf, prj=False), level="county")


def test_zip_member_larger_than_declared_is_refused(tmp_path):
    path = zip_files(tmp_path / "b.zip", {"a.shp": b"x" * 1000, "a.shx": b"x", "a.dbf": b"x"})
    data = bytearray(path.read_bytes())
    # shrink the declared size of a.shp in its central-directory entry (uncompressed size at offset 24)
    central = data.rfind(b"PK\x01\x02", 0, data.find(b"PK\x05\x06"))
    first = data.find(b"PK\x01\x02")
    assert first <= central
    data[first + 24:first + 28] = (10).to_bytes(4, "little")
    with pytest.raises((UnsafeArchiveError, UnreadableFileError)):
        ingest.read_boundaries(bytes(data), level="county", source_name="b.zip")


# ---------------------------------------------------------------------------------------- real encodings
def _gbk_boundaries() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"XZQDM": ["990102001", "990102101"], "XZQMC": ["文昌街道", "黄花镇"], "RK": [46800, 21000]},
                            geometry=[WEST, EAST], crs="EPSG:4326")


@pytest.mark.parametrize("cpg", [True, False], ids=["with_cpg", "without_cpg"])
def test_gbk_shapefile_round_trip(tmp_path, cpg):
    path = shapefile_zip(tmp_path, _gbk_boundaries(), encoding="gbk", cpg=cpg, folder="县界/")
    raw_dbf = zipfile.ZipFile(path).read("县界/边界.dbf")
    assert "文昌街道".encode("gbk") in raw_dbf  # the file really is GBK
    result = ingest.read_boundaries(path, level="subdistrict", columns={"RK": "population"})
    assert_counts(result)
    assert result.clean["name"].tolist() == ["文昌街道", "黄花镇"]
    assert result.clean["kind"].tolist() == ["street", "town"]
    assert result.clean["population"].tolist() == [46800, 21000]


def test_projected_cgcs2000_shapefile_is_reprojected(tmp_path):
    gdf = _gbk_boundaries().to_crs("EPSG:4547")  # CGCS2000 / 3-degree Gauss-Kruger CM 114E
    result = ingest.read_boundaries(shapefile_zip(tmp_path, gdf, encoding="utf-8"), level="subdistrict")
    assert result.clean.crs == "EPSG:4326"
    assert shapely.normalize(result.clean.geometry.iloc[0]).equals_exact(shapely.normalize(WEST), tolerance=1e-6)


def test_gbk_csv_round_trip(tmp_path):
    frame = pd.DataFrame({"统一社会信用代码": ["P1", "P2"], "名称": ["同泽堂药房（盐井北街店）", "百福康药房"],
                          "地址": ["盐井北街29号", "和平六巷14号"], "经度": [112.93, 112.96], "纬度": [28.12, 28.13],
                          "业务类别": ["门诊统筹、门诊慢特病", "个人账户"]})
    path = tmp_path / "gbk.csv"
    frame.to_csv(path, index=False, encoding="gbk")
    result = ingest.read_pharmacies(path)
    assert result.clean["name"].tolist() == frame["名称"].tolist()
    assert result.clean["address"].tolist() == frame["地址"].tolist()
    gb18030 = tmp_path / "gb18030.csv"
    frame.assign(名称=["𠮷祥药房", "百福康药房"]).to_csv(gb18030, index=False, encoding="gb18030")  # beyond GBK
    assert ingest.read_pharmacies(gb18030).clean["name"].iloc[0] == "𠮷祥药房"
    tsv = tmp_path / "utf16.txt"  # Excel's "Unicode text": UTF-16 with BOM, tab-separated
    frame.to_csv(tsv, index=False, sep="\t", encoding="utf-16")
    assert ingest.read_pharmacies(tsv).clean["name"].tolist() == frame["名称"].tolist()


# ---------------------------------------------------------------------------------------- population surfaces, fund
def test_population_grid_from_geotiff(tmp_path):
    rasterio = pytest.importorskip("rasterio")

    values = np.array([[10.0, 0.0, -1.0], [5.0, -9999.0, 2.5]], dtype="float32")
    path = tmp_path / "pop.tif"
    with rasterio.open(path, "w", driver="GTiff", width=3, height=2, count=1, dtype="float32", crs="EPSG:4326",
                       transform=rasterio.Affine(0.01, 0.0, 112.90, 0.0, -0.01, 28.15), nodata=-9999.0) as dst:
        dst.write(values, 1)
    result = ingest.read_population_grid(path)
    assert_counts(result)
    assert result.clean["persons"].tolist() == [10.0, 5.0, 2.5]
    assert result.rejected["reason_code"].tolist() == ["invalid_population"]
    assert result.clean.geometry.iloc[0].x == pytest.approx(112.905)


def test_population_points_and_buildings(tmp_path):
    points = write_csv(tmp_path / "pts.csv", [["112.93", "28.12", "120"], ["112.96", "", "50"]], ["经度", "纬度", "人口"])
    result = ingest.read_population_grid(points)
    assert_counts(result)
    assert result.clean["persons"].tolist() == [120.0]
    assert result.rejected["reason_code"].tolist() == ["missing_coordinate"]
    # a 20 m x 20 m footprint with 6 floors: 2,400 m² / 38.6 m² per person
    square = shapely.box(645_000, 3_110_000, 645_020, 3_110_020)
    gdf = gpd.GeoDataFrame({"层数": [6, None]}, geometry=[square, None], crs="EPSG:32649").to_crs("EPSG:4326")
    buildings = ingest.read_buildings(boundaries(tmp_path, [{"层数": 6, "geometry": gdf.geometry.iloc[0]},
                                                            {"层数": 2, "geometry": None}], "b.geojson"))
    assert_counts(buildings)
    assert buildings.clean["persons"].iloc[0] == pytest.approx(2400 / 38.6, rel=1e-3)
    assert buildings.rejected["reason_code"].tolist() == ["empty_geometry"]


def test_fund_status_table(tmp_path):
    path = write_csv(tmp_path / "fund.csv", [["990102", "临溪区", "√", "×"], ["990103", "河东区", "否", "可能"]],
                     header=["县代码", "县名称", "上年亏损", "本年预计亏损"])
    result = ingest.read_fund_status(path)
    assert_counts(result)
    assert result.clean["fund_deficit_last_year"].tolist() == [True]
    assert not result.clean["fund_warning_letter"].any()
    assert result.rejected["reason_code"].tolist() == ["invalid_value"]
    assert "fund_warning_letter" in " ".join(result.notes["note"])


# ---------------------------------------------------------------------------------------- property tests
JUNK = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "是", "否", "N/A", "#N/A", "—", "112.9", "28.1", "1e400", "nan", "-0", "1,2",
                     "门诊统筹、慢特病", "✓", "×", "112°56′", "\u3000", "=1+1", "\"", "'", ",", "\n"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**20, 10**20).map(str),
)


def _csv_safe(text: str) -> str:
    return text.replace("\x00", "").replace("\r", "")


@st.composite
def junk_tables(draw):
    """Good pharmacy rows with random cells replaced by junk, some rows all junk, some rows ragged."""
    rows = good_rows(draw(st.integers(1, 10)))
    for _ in range(draw(st.integers(0, 15))):
        i, j = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(HEADER) - 1))
        rows[i][j] = draw(JUNK)
    if draw(st.booleans()):
        rows.append(draw(st.lists(JUNK, min_size=len(HEADER), max_size=len(HEADER) + 2)))
    if draw(st.booleans()):
        rows[0] = rows[0] + draw(st.lists(JUNK, max_size=2))  # a ragged row with extra cells
    return [[_csv_safe(c) for c in row] for row in rows]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=junk_tables(), encoding=st.sampled_from(["utf-8", "gb18030"]))
def test_random_csv_never_crashes_never_loses_a_row(tmp_path, rows, encoding):
    path = write_csv(tmp_path / "junk.csv", rows, encoding=encoding)
    try:
        result = ingest.read_pharmacies(path)
    except EmptyFileError:
        assert all(not "".join(r).strip() for r in rows)  # only when every row is blank
        return
    assert_counts(result)
    non_trailing = len(rows)
    while non_trailing and not any(c.strip() for c in rows[non_trailing - 1]):
        non_trailing -= 1
    assert result.n_in == non_trailing  # every written data row up to the last non-blank one is counted
    points = result.clean.geometry
    assert coords.in_china(points.x, points.y).all()  # every kept row has a real point in China
    assert set(result.clean.columns) >= {c for c, (_, req) in PHARMACY_SCHEMA.items() if req}


_XLSX_JUNK = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=10),
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**12, 10**12), st.booleans(), st.none(),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.lists(_XLSX_JUNK, min_size=len(HEADER), max_size=len(HEADER)), min_size=1, max_size=8))
def test_random_xlsx_never_crashes_never_loses_a_row(tmp_path, cells):
    cells = [[c if not (isinstance(c, str) and c.startswith("=")) else "x" + c for c in row] for row in cells]
    path = write_xlsx(tmp_path / "junk.xlsx", cells)
    try:
        result = ingest.read_pharmacies(path)
    except EmptyFileError:
        assert all(all(cell_text(c) == "" for c in row) for row in cells)
        return
    assert_counts(result)
    expected = len(cells)
    while expected and all(cell_text(c) == "" for c in cells[expected - 1]):
        expected -= 1
    assert result.n_in == expected


@settings(max_examples=80, deadline=None)
@given(data=st.binary(min_size=1, max_size=400), name=st.sampled_from(["x.csv", "x.xlsx", "x.geojson", "x.zip", "x"]))
def test_random_bytes_raise_only_planning_errors(data, name):
    try:
        result = ingest.read_pharmacies(data, source_name=name)
    except PlanningError:
        return
    assert_counts(result)


# ---------------------------------------------------------------------------------------- demo round trip
def _demo():
    try:
        from planning.demo import load_demo_region
    except ImportError:
        pytest.skip("planning.demo is missing: the demo region round trip needs it")
    return load_demo_region()


def _assert_same_layer(got: gpd.GeoDataFrame, want: gpd.GeoDataFrame, tolerance: float = 1e-9) -> None:
    got, want = got.reset_index(drop=True), want.reset_index(drop=True)
    assert list(got.columns.drop("geometry")) == [c for c in want.columns if c != "geometry"] or \
        set(got.columns) == set(want.columns)
    for column in want.columns.drop("geometry"):
        assert got[column].tolist() == want[column].tolist(), column
    assert got.geometry.geom_equals_exact(want.geometry, tolerance=tolerance).all()


def test_demo_region_round_trip_through_csv_xlsx_geojson(tmp_path):
    demo = _demo()
    ph = demo.pharmacies
    table = pd.DataFrame(ph.drop(columns="geometry")).assign(lon=ph.geometry.x, lat=ph.geometry.y)
    table.to_csv(tmp_path / "pharmacies.csv", index=False, encoding="utf-8-sig")
    table.to_excel(tmp_path / "pharmacies.xlsx", index=False)
    ph.to_file(tmp_path / "pharmacies.geojson", driver="GeoJSON")
    demo.subdistricts.to_file(tmp_path / "subdistricts.geojson", driver="GeoJSON")
    demo.counties.to_file(tmp_path / "counties.geojson", driver="GeoJSON")
    sd = pd.DataFrame(demo.subdistricts.drop(columns="geometry"))
    sd[["code", "name", "population"]].to_csv(tmp_path / "population.csv", index=False)
    ct = pd.DataFrame(demo.counties.drop(columns="geometry"))
    ct.to_excel(tmp_path / "fund.xlsx", index=False)
    regions = []
    for source in ("pharmacies.csv", "pharmacies.xlsx", "pharmacies.geojson"):
        region = ingest.build_region(
            pharmacies=tmp_path / source, subdistricts=tmp_path / "subdistricts.geojson",
            counties=tmp_path / "counties.geojson", population=tmp_path / "population.csv",
            fund_status=tmp_path / "fund.xlsx", network=demo.network_path,
        )
        assert region.rejected.empty, region.rejected
        _assert_same_layer(region.pharmacies, demo.pharmacies)
        _assert_same_layer(region.subdistricts, demo.subdistricts)
        _assert_same_layer(region.counties, demo.counties)
        regions.append(region)
    assert all(len(r.pharmacies) == len(demo.pharmacies) for r in regions)


def test_docs_column_table_matches_the_alias_table():
    root = Path(__file__).resolve().parents[1]
    docs = [p for p in (root / "docs" / "INPUT_FORMATS.md", root / "README.md") if p.is_file()]
    if not docs:
        pytest.skip("neither docs/INPUT_FORMATS.md nor README.md is present")
    assert any(ingest.columns_markdown() in p.read_text(encoding="utf-8") for p in docs), \
        "regenerate the column table with planning.ingest.columns_markdown()"
