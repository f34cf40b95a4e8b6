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

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cli, "_load", lambda args, progress: demo)
    monkeypatch.setattr(report, "write_html_map", broken)
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
