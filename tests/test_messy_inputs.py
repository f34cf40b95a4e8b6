"""Hostile and messy input, part two (issue 14, items 4, 5, 7, 8, 9): an emptied layer is a planner's error
before any output is written, a failed run leaves no half-written folder, third-party reader failures are input
errors, units and percent signs are refused in numeric cells, notes (layer chosen, geometry repaired, overlaps)
reach the summary, reading limits hold while streaming, and the listed messages say what really happened.

Every case is a row of a table, run through the surface a planner uses (the CLI, a reader, the app) and checked
against the expectation written in its row. Files are small and built here.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from cli_text import run_cli, write_csv

from planning import ingest
from planning.demo import DEMO_DIR

NETWORK = DEMO_DIR / "network.osm.gz"
SUBDISTRICTS = DEMO_DIR / "subdistricts.geojson"
#: Five demo pharmacies as a bureau's sheet: (name, address, lon, lat) and a service column.
DEMO_PHARMACIES = gpd.read_file(DEMO_DIR / "pharmacies.geojson").head(5)
HEADER = ["名称", "地址", "经度", "纬度", "门诊统筹"]


def _rows(lon=None, lat=None) -> list[list[str]]:
    return [[p.name, p.address, repr(p.geometry.x if lon is None else lon), repr(p.geometry.y if lat is None else lat),
             "是"] for p in DEMO_PHARMACIES.itertuples()]


def _assert_input_error(run, *needles: str) -> None:
    """Exit 2, a bilingual message holding every needle, no traceback, nothing on stdout."""
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr[-2000:]
    for needle in needles:
        assert needle in run.stderr, (needle, run.stderr[-2000:])


# ----------------------------------------------------------------------------- 4. an emptied layer
def _duplicate_headers(folder: Path) -> Path:
    """经度/纬度 twice, the first pair blank (the reader takes the first pair; every row lacks a point)."""
    rows = [[n, a, "", "", x, y, s] for n, a, x, y, s in _rows()]
    return write_csv(folder / "dup.csv", ["名称", "地址", "经度", "纬度", "经度", "纬度", "门诊统筹"], rows)


def _merged_header(folder: Path) -> Path:
    """A two-row header: 坐标 spans two columns, 经度/纬度 below it (the first row is the header)."""
    rows = [["", "", "经度", "纬度", ""]] + _rows()
    return write_csv(folder / "merged.csv", ["名称", "地址", "坐标", "", "门诊统筹"], rows)


def _outside_china(folder: Path) -> Path:
    return write_csv(folder / "paris.csv", HEADER, _rows(lon=2.3522, lat=48.8566))


def _points_as_boundaries(folder: Path) -> Path:
    subs = gpd.read_file(SUBDISTRICTS)
    subs["geometry"] = subs.geometry.representative_point()
    path = folder / "points.geojson"
    subs.to_file(path, driver="GeoJSON")
    return path


def _crs_3857_over_degrees(folder: Path) -> Path:
    document = json.loads(SUBDISTRICTS.read_text(encoding="utf-8"))
    document["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    path = folder / "crs3857.geojson"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def _codes_as_floats(folder: Path) -> Path:
    """Codes as Excel shows a 9-digit number in a narrow column, and no population column: none matches."""
    document = json.loads(SUBDISTRICTS.read_text(encoding="utf-8"))
    for feature in document["features"]:
        feature["properties"]["code"] = f"{int(feature['properties']['code']):.5E}".replace("E+0", "E+")
    path = folder / "codes.geojson"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


EMPTIED = [
    ("pharmacies", _duplicate_headers, "missing_coordinate"),
    ("pharmacies", _merged_header, "non_numeric_coordinate"),
    ("pharmacies", _outside_china, "outside_china"),
    ("subdistricts", _points_as_boundaries, "wrong_geometry_type"),
    ("subdistricts", _crs_3857_over_degrees, "outside_china"),
    ("subdistricts", _codes_as_floats, "code_as_number"),
]


@pytest.mark.parametrize("layer, make, reason", EMPTIED, ids=[m.__name__.strip("_") for _, m, _ in EMPTIED])
def test_an_emptied_layer_exits_2_naming_it_before_any_output(tmp_path, layer, make, reason):
    made = make(tmp_path)
    pharmacies = made if layer == "pharmacies" else write_csv(tmp_path / "ok.csv", HEADER, _rows())
    subdistricts = made if layer == "subdistricts" else SUBDISTRICTS
    out = tmp_path / "out"
    run = run_cli("assess", "--quiet", "--pharmacies", str(pharmacies), "--subdistricts", str(subdistricts),
                  "--network", str(NETWORK), "--out", str(out))
    label = {"pharmacies": "定点药店", "subdistricts": "街道/乡镇边界"}[layer]
    _assert_input_error(run, label, made.name, reason, "all rejected")
    if make is _duplicate_headers:  # the reader's note says which pair was used
        assert "column '经度.1' not used" in run.stderr, run.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_an_emptied_layer_is_an_empty_layer_error_from_build_region(tmp_path):
    from planning.errors import EmptyLayerError

    with pytest.raises(EmptyLayerError, match="outside_china"):
        ingest.build_region(pharmacies=_outside_china(tmp_path), subdistricts=SUBDISTRICTS, network=NETWORK)


def test_out_naming_an_existing_file_exits_2_before_any_work(tmp_path):
    taken = tmp_path / "report.txt"
    taken.write_text("mine", encoding="utf-8")
    run = run_cli("assess", "--demo", "--quiet", "--out", str(taken))
    _assert_input_error(run, "--out", "existing file", "已有的文件")
    assert taken.read_text(encoding="utf-8") == "mine"


def test_a_run_failing_while_writing_leaves_no_folder(tmp_path, monkeypatch, demo):
    from planning import cli, report

    def half_written(assessment, path, **kwargs):
        Path(path).write_text('{"type": "Feature', encoding="utf-8")
        raise OSError("disk full")

    monkeypatch.setattr(cli, "_load", lambda args, progress: demo)
    monkeypatch.setattr(report, "write_gap_report", half_written)
    out = tmp_path / "nested" / "out"
    assert cli.main(["assess", "--demo", "--quiet", "--out", str(out)]) == cli.EXIT_INTERNAL
    assert list(tmp_path.iterdir()) == []  # neither the folder, its parent, nor a staging folder


def test_outputs_replace_their_own_files_and_keep_the_others(tmp_path):
    from planning.outputs import staged_folder

    out = tmp_path / "out"
    (out / "walk_time").mkdir(parents=True)
    (out / "walk_time" / "old.tif").write_bytes(b"old")
    (out / "notes.txt").write_text("keep", encoding="utf-8")
    (out / "map.html").write_text("old", encoding="utf-8")
    with staged_folder(out) as stage:
        (stage / "map.html").write_text("new", encoding="utf-8")
        (stage / "walk_time").mkdir()
        (stage / "walk_time" / "new.tif").write_bytes(b"new")
        assert not (out / "walk_time" / "new.tif").exists()  # nothing moves before the end
    assert (out / "map.html").read_text(encoding="utf-8") == "new"
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep"
    assert sorted(p.name for p in (out / "walk_time").iterdir()) == ["new.tif"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ----------------------------------------------------------------------------- 7. bad input is not an internal error
def _osm_impossible_latitude(folder: Path) -> list[str]:
    path = folder / "bad.osm"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n'
                    ' <node id="1" lat="9999" lon="112.0"/>\n <node id="2" lat="28.0" lon="112.001"/>\n'
                    ' <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>\n</osm>\n',
                    encoding="utf-8")
    return ["assess", "--pharmacies", str(write_csv(folder / "ok.csv", HEADER, _rows())),
            "--subdistricts", str(SUBDISTRICTS), "--network", str(path), "--out", str(folder / "out")]


def _applicant(value) -> callable:
    def make(folder: Path) -> list[str]:
        path = folder / "applicant.json"
        path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        return ["check", "--demo", "--lon", "111.6", "--lat", "27.3", "--applicant", str(path)]
    return make


NOT_INTERNAL = [
    ("osm_lat_9999", _osm_impossible_latitude, ["bad.osm", "9999", "cannot parse OSM file"]),
    ("applicant_text_number", _applicant({"months_operating": "十二"}), ["months_operating", "whole number", "十二"]),
    ("applicant_flag_text", _applicant({"on_dishonest_list": "no"}), ["on_dishonest_list", "true or false"]),
    ("applicant_list", _applicant([1, 2]), ["one JSON object"]),
]


@pytest.mark.parametrize("make, needles", [c[1:] for c in NOT_INTERNAL], ids=[c[0] for c in NOT_INTERNAL])
def test_bad_input_from_a_third_party_reader_exits_2(tmp_path, make, needles):
    run = run_cli(*make(tmp_path), "--quiet")
    _assert_input_error(run, *needles)
    assert not (tmp_path / "out").exists()


def test_an_uploaded_network_error_names_the_upload(tmp_path):
    from planning.errors import NetworkInputError
    from planning.network import load_network_bytes

    _osm_impossible_latitude(tmp_path)
    with pytest.raises(NetworkInputError) as caught:
        load_network_bytes((tmp_path / "bad.osm").read_bytes(), "城区路网.osm", cache_dir=tmp_path / "cache")
    assert "城区路网.osm" in str(caught.value) and "bad" not in str(caught.value)
    assert not any(len(part) >= 32 and all(c in "0123456789abcdef" for c in part)
                   for part in str(caught.value).replace(".", " ").split())  # no cache hash


# ----------------------------------------------------------------------------- 8, 9. the readers, case by case
def _csv_bytes(header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    import csv

    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def _xlsx_bytes(header: list[str], rows: list[list]) -> bytes:
    """A workbook written by openpyxl: formulas are stored without a computed value, as a script leaves them."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


P = ["101", "康宁大药房", "人民路1号"]  # id, name, address of a pharmacy row
PH_HEADER = ["编号", "名称", "地址", "经度", "纬度", "门诊统筹"]


def _pharmacies(*rows: list[str], header=PH_HEADER) -> bytes:
    return _csv_bytes(header, [[f"{i}{r[0]}", *r[1:]] for i, r in enumerate(rows)])


def _population(*values: str) -> bytes:
    return _csv_bytes(["街道代码", "常住参保人口"], [[f"99010200{i + 1}", v] for i, v in enumerate(values)])


#: (case, reader, file name, bytes, clean rows, {reason_code: rows}, text every rejection reason holds)
READER_CASES = [
    ("population_percent_and_units", "population", "人口.csv",
     _population("85%", "12.5%", "88500元", "3个月", "4.68万", "46,800人", "1234"), 3,
     {"unit_in_number": 4}, "常住参保人口"),
    ("pharmacy_percent_credit", "pharmacies", "药店.csv",
     _pharmacies([*P, "111.6", "27.3", "是", "85%"], [*P, "111.6", "27.3", "是", "85分"],
                 header=[*PH_HEADER, "信用评分"]), 1, {"unit_in_number": 1}, "85%"),
    ("service_flags_as_decimals", "pharmacies", "药店.csv",
     _pharmacies([*P, "111.6", "27.3", "1.0"], [*P, "111.6", "27.3", "0.0"], [*P, "111.6", "27.3", "2.0"]), 2,
     {"unknown_service_value": 1}, "2.0"),
    ("dms_with_hemisphere", "pharmacies", "药店.csv",
     _pharmacies([*P, "111°35′49″E", "27°18′36″N", "是"], [*P, "东经111度35分49秒", "北纬27度18分36秒", "是"]), 2,
     {}, ""),
    ("comma_decimal", "pharmacies", "药店.csv",
     _pharmacies([*P, "111,5971264", "27.3", "是"], [*P, "111.5971264", "27.3", "是"]), 1,
     {"comma_decimal": 1}, "111.5971264"),
    ("bom_over_gbk", "pharmacies", "药店.csv",
     b"\xef\xbb\xbf" + _pharmacies([*P, "111.6", "27.3", "是"]).decode("utf-8").encode("gbk"), 1, {}, ""),
    ("uncomputed_formula", "pharmacies", "药店.xlsx",
     _xlsx_bytes(PH_HEADER, [[*P, "=110+1.6", 27.3, "是"], ["102", "另一家", "人民路2号", 111.6, 27.3, "是"]]), 1,
     {"formula_not_computed": 1}, "=110+1.6"),
    ("long_cell", "pharmacies", "药店.csv",
     _pharmacies([P[0], "长" * 210_000, P[2], "111.6", "27.3", "是"], [*P, "111.6", "27.3", "是"]), 1,
     {"cell_too_long": 1}, "210,000"),
]


def _read(reader: str, name: str, data: bytes, **kwargs):
    if reader == "population":
        return ingest.read_population(data, source_name=name, **kwargs)
    return ingest.read_pharmacies(data, source_name=name, crs="wgs84", **kwargs)


@pytest.mark.parametrize("reader, name, data, clean, reasons, needle", [c[1:] for c in READER_CASES],
                         ids=[c[0] for c in READER_CASES])
def test_messy_cells_are_read_or_rejected_with_their_reason(reader, name, data, clean, reasons, needle):
    result = _read(reader, name, data)
    assert result.n_in == result.n_clean + result.n_rejected
    assert result.n_clean == clean, result.rejected[["row", "reason"]].to_string()
    assert result.rejected["reason_code"].value_counts().to_dict() == reasons
    for reason in result.rejected["reason"]:
        assert needle in reason


def test_the_population_reason_names_the_cell_and_the_unit():
    result = ingest.read_population(_population("85%", "3个月"), source_name="人口.csv")
    reasons = dict(zip(result.rejected["row"], result.rejected["reason"]))
    assert "'常住参保人口' holds '85%' with a unit or percent sign (%)" in reasons[2]
    assert "“常住参保人口”的值“3个月”带有单位或百分号（个月）" in reasons[3]


def test_dms_is_converted_exactly():
    from fractions import Fraction

    result = _read("pharmacies", "药店.csv", READER_CASES[3][3])
    expected = (float(Fraction(111) + Fraction(35, 60) + Fraction(49, 3600)),
                float(Fraction(27) + Fraction(18, 60) + Fraction(36, 3600)))
    for point in result.clean.geometry:
        assert (point.x, point.y) == expected
    assert ingest.parse_coordinate("111°35′49″W") == -expected[0]


def test_flags_as_decimals_read_as_yes_and_no():
    result = _read("pharmacies", "药店.csv", READER_CASES[2][3])
    assert result.clean["outpatient_pooling"].tolist() == [True, False]


def test_a_bom_over_gbk_text_is_read_as_gbk_and_said_so():
    result = _read("pharmacies", "药店.csv", READER_CASES[5][3])
    assert result.clean["name"].tolist() == ["康宁大药房"]
    assert "bom_over_gbk" in set(result.notes["note_code"])
    assert any("byte-order mark" in line and "GBK" in line for line in result.note_lines())


def test_a_long_cell_rejects_its_row_only_and_is_cut_short_in_the_listing():
    result = _read("pharmacies", "药店.csv", READER_CASES[7][3])
    shown = result.rejected["名称"].iloc[0]
    assert len(shown) < 300 and shown.endswith("…")


def test_overlapping_subdistricts_are_noted_with_both_rows(tmp_path):
    document = json.loads(SUBDISTRICTS.read_text(encoding="utf-8"))
    twin = json.loads(json.dumps(document["features"][0]))
    twin["properties"].update(code="990102099", name="文昌街道（备份）")
    document["features"].append(twin)
    path = tmp_path / "twins.geojson"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    result = ingest.read_boundaries(path, level="subdistrict")
    assert result.n_clean == len(document["features"])  # kept, but noted
    overlaps = result.notes[result.notes["note_code"] == "overlaps"]
    assert sorted(overlaps["row"]) == [1, len(document["features"])]
    assert "990102099" in overlaps["note"].iloc[0] and "100%" in overlaps["note"].iloc[0]
    neighbours = ingest.read_boundaries(SUBDISTRICTS, level="subdistrict")  # neighbours share borders only
    assert "overlaps" not in set(neighbours.notes["note_code"])


def _gpkg_with_backup_first(folder: Path) -> Path:
    """A GeoPackage whose first layer is an old backup (three sub-districts) and whose second is current."""
    subs = gpd.read_file(SUBDISTRICTS)
    path = folder / "boundaries.gpkg"
    subs.head(3).to_file(path, layer="backup_2019", driver="GPKG")
    subs.to_file(path, layer="subdistricts", driver="GPKG", mode="a")
    return path


def test_a_gpkg_with_several_layers_says_which_was_read_and_can_be_told(tmp_path):
    from planning.errors import ParameterError

    path = _gpkg_with_backup_first(tmp_path)
    first = ingest.read_boundaries(path, level="subdistrict")
    assert first.n_clean == 3
    note = " ".join(first.note_lines())
    assert "backup_2019" in note and "subdistricts" in note and "--subdistricts-layer" in note
    chosen = ingest.read_boundaries(path, level="subdistrict", layer="subdistricts")
    assert chosen.n_clean == 25 and "layer_chosen" not in set(chosen.notes["note_code"])
    with pytest.raises(ParameterError, match="no layer 'nope'"):
        ingest.read_boundaries(path, level="subdistrict", layer="nope")


def test_a_large_geojson_object_is_not_refused_with_gdal_advice(tmp_path):
    """GDAL refuses a GeoJSON object above OGR_GEOJSON_MAX_OBJ_SIZE; the reader allows what its own size
    limit allows (here GDAL's option is lowered to 1 MB and the one polygon is larger)."""
    import numpy as np
    import pyogrio

    angles = np.linspace(0, 2 * np.pi, 40_000)
    ring = np.column_stack([111.6 + 0.01 * np.cos(angles), 27.3 + 0.01 * np.sin(angles)])
    ring[-1] = ring[0]
    document = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
        "code": "990102001", "name": "文昌街道"}, "geometry": {"type": "Polygon", "coordinates": [ring.tolist()]}}]}
    path = tmp_path / "big.geojson"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert path.stat().st_size > 2**20
    before = pyogrio.get_gdal_config_option("OGR_GEOJSON_MAX_OBJ_SIZE")
    try:
        pyogrio.set_gdal_config_options({"OGR_GEOJSON_MAX_OBJ_SIZE": "1"})
        with pytest.raises(Exception, match="OGR_GEOJSON_MAX_OBJ_SIZE"):  # the oracle: GDAL alone refuses it
            pyogrio.read_dataframe(f"GeoJSON:{path}")
        pyogrio.set_gdal_config_options({"OGR_GEOJSON_MAX_OBJ_SIZE": "1"})
        assert ingest.read_boundaries(path, level="subdistrict").n_clean == 1
    finally:
        pyogrio.set_gdal_config_options({"OGR_GEOJSON_MAX_OBJ_SIZE": before})


# ----------------------------------------------------------------------------- 5. reading limits, while reading
def _xlsx_bomb(declared_mib: int = 4) -> bytes:
    """A real workbook whose sheet is padded with ``declared_mib`` MiB of an XML comment: a few KiB zipped."""
    source = zipfile.ZipFile(io.BytesIO(_xlsx_bytes(PH_HEADER, [[*P, 111.6, 27.3, "是"]])))
    buffer = io.BytesIO()
    with source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                head, found, body = data.partition(b"<sheetData")
                assert found
                data = head + b"<!--" + b" " * (declared_mib * 2**20) + b"-->" + found + body
            bomb.writestr(info.filename, data)
    return buffer.getvalue()


def test_an_xlsx_bomb_is_refused_from_the_zip_directory_before_openpyxl(monkeypatch):
    import openpyxl

    from planning.errors import FileTooLargeError

    bomb = _xlsx_bomb()
    assert len(bomb) < 64 * 2**10
    limits = ingest.ReadingLimits(max_xlsx_uncompressed_bytes=2**20)

    def never(*args, **kwargs):
        raise AssertionError("openpyxl opened the bomb")

    monkeypatch.setattr(openpyxl, "load_workbook", never)
    with pytest.raises(FileTooLargeError, match=r"uncompresses to 4 MB, more than the limit of 1 MB"):
        ingest.read_pharmacies(bomb, source_name="bomb.xlsx", limits=limits)


def test_the_padded_workbook_reads_under_the_default_limits():
    result = ingest.read_pharmacies(_xlsx_bomb(), source_name="bomb.xlsx", crs="wgs84")
    assert result.n_clean == 1  # the oracle that the bomb is a well-formed workbook


def _points_geojson(n: int) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"编号": str(i), "名称": f"药店{i}", "地址": f"路{i}号", "门诊统筹": "是"},
         "geometry": {"type": "Point", "coordinates": [111.6, 27.3 + i * 1e-4]}} for i in range(n)]}).encode("utf-8")


LIMIT_CASES = [
    ("csv_rows", "药店.csv", _pharmacies(*[[*P[1:], "111.6", "27.3", "是"] for _ in range(30)]),
     dict(max_rows=10), "more than 10 rows"),
    ("csv_cells", "药店.csv", _pharmacies(*[[*P[1:], "111.6", "27.3", "是"] for _ in range(30)]),
     dict(max_cells=50), "more than 50 cells"),
    ("xlsx_rows", "药店.xlsx", _xlsx_bytes(PH_HEADER, [[f"{i}", "店", "路", 111.6, 27.3, "是"] for i in range(30)]),
     dict(max_rows=10), "more than 10 rows"),
    ("geojson_features", "药店.geojson", _points_geojson(30), dict(max_rows=10), "more than 10 rows"),
    ("file_size", "药店.csv", _pharmacies(*[[*P[1:], "111.6", "27.3", "是"] for _ in range(30)]),
     dict(max_file_bytes=500), "exceeds the size limit"),
]


@pytest.mark.parametrize("name, data, limits, needle", [c[1:] for c in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES])
def test_reading_limits_refuse_with_a_bilingual_message(name, data, limits, needle):
    from planning.errors import FileTooLargeError

    with pytest.raises(FileTooLargeError) as caught:
        ingest.read_pharmacies(data, source_name=name, crs="wgs84", limits=ingest.ReadingLimits(**limits))
    assert needle in caught.value.message_en and name in caught.value.message_zh
    # the same file is read under the default limits
    result = ingest.read_pharmacies(data, source_name=name, crs="wgs84")
    assert result.n_in == 30


def test_reading_limits_are_positive_integers():
    from planning.errors import ParameterError

    with pytest.raises(ParameterError, match="max_rows"):
        ingest.ReadingLimits(max_rows=0)
    assert "| rows (CSV, XLSX sheet, geo file features) | `max_rows` | 500,000 |" in ingest.limits_markdown()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert ingest.limits_markdown() in readme, "regenerate the README's limits table with ingest.limits_markdown()"


def test_the_cli_summary_shows_the_layer_read_the_repairs_and_the_overlaps(tmp_path):
    """Notes of the readers reach the planner: the GPKG's first layer holds a twin of 文昌街道 under another
    code and a polygon drawn twice over itself (repaired); the summary's completeness part says all three."""
    subs = gpd.read_file(SUBDISTRICTS)
    twin = subs.iloc[[0]].assign(code="990102099", name="文昌街道（备份）")
    subs.loc[1, "geometry"] = shapely.MultiPolygon([subs.geometry[1], subs.geometry[1]])  # invalid, repairable
    path = tmp_path / "boundaries.gpkg"
    gpd.pd.concat([subs, twin], ignore_index=True).to_file(path, layer="subdistricts_2019", driver="GPKG")
    gpd.read_file(SUBDISTRICTS).to_file(path, layer="subdistricts_2024", driver="GPKG", mode="a")
    pharmacies = write_csv(tmp_path / "ok.csv", HEADER, _rows())
    fund = write_csv(tmp_path / "fund.csv", ["区县代码", "上年亏损", "预计亏损", "预警函"],
                     [[code, "否", "否", "否"] for code in sorted(set(subs["county_code"]))])
    args = ["--pharmacies", str(pharmacies), "--subdistricts", str(path), "--fund", str(fund), "--network", str(NETWORK)]
    run = run_cli("assess", "--quiet", "--lang", "en", *args, "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr[-2000:]
    completeness = run.stdout[run.stdout.index("data completeness:"):]
    assert "'subdistricts_2019', was read" in completeness and "--subdistricts-layer" in completeness
    assert "overlaps row 26 (990102099)" in completeness and "overlaps row 1 (990102001)" in completeness
    assert "repaired with make_valid" in completeness
    wrong = run_cli("assess", "--quiet", *args, "--subdistricts-layer", "nope", "--out", str(tmp_path / "out2"))
    _assert_input_error(wrong, "no layer 'nope'", "subdistricts_2019, subdistricts_2024")
    assert not (tmp_path / "out2").exists()


# ----------------------------------------------------------------------------- the app: a message on the page
def _upload(pharmacies: bytes, network: tuple[str, bytes]):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    app.run()
    app.sidebar.radio[1].set_value("upload").run()
    uploaders = {u.label: u for u in app.sidebar.get("file_uploader")}
    uploaders["定点药店表（CSV/XLSX/GeoJSON）"].set_value(("药店.csv", pharmacies, "text/csv"))
    uploaders["街道/乡镇边界（GeoJSON/GPKG/ZIP 矢量）"].set_value(
        ("subdistricts.geojson", SUBDISTRICTS.read_bytes(), "application/geo+json"))
    uploaders["路网 OSM 文件（.osm/.osm.gz/.osm.pbf）"].set_value((network[0], network[1], "application/octet-stream"))
    app.run()
    assert not app.exception, app.exception  # no traceback reaches the planner
    return " ".join(e.value for e in app.error)


def test_the_app_says_which_uploaded_layer_was_emptied(tmp_path):
    messages = _upload(_csv_bytes(HEADER, _rows(lon=2.3522, lat=48.8566)),
                       ("network.osm.gz", NETWORK.read_bytes()))
    assert "定点药店" in messages and "药店.csv" in messages and "outside_china" in messages


def test_the_app_names_the_uploaded_network_file_in_its_error(tmp_path):
    _osm_impossible_latitude(tmp_path)
    messages = _upload(_csv_bytes(HEADER, _rows()), ("城区路网.osm", (tmp_path / "bad.osm").read_bytes()))
    assert "城区路网.osm" in messages and "9999" in messages
