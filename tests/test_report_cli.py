"""Outputs (GeoJSON gap report, tables, grids, HTML map) and the CLI end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import jsonschema
import pandas as pd
import pytest
import rasterio

from planning import report
from planning.demo import PLANTED

ROOT = Path(__file__).resolve().parents[1]


def test_gap_report_validates_and_round_trips(demo, tmp_path):
    schema = json.loads(report.SCHEMA_PATH.read_text(encoding="utf-8"))
    document = report.gap_report(demo)
    jsonschema.validate(document, schema)
    path = report.write_gap_report(demo, tmp_path / "gap.geojson")[0]
    layers = gpd.read_file(path)
    assert layers.crs.to_epsg() == 4326
    counts = layers["layer"].value_counts().to_dict()
    assert counts["subdistrict"] == len(demo.region.subdistricts)
    assert counts["county"] == len(demo.region.counties)
    assert counts["pharmacy"] == len(demo.region.pharmacies)
    assert counts["zone"] == len(demo.zones) and counts["uncovered"] == 4
    sd = layers[layers["layer"] == "subdistrict"].set_index("code")
    r1 = PLANTED["r1_no_chronic_street"]["code"]
    assert sd.loc[r1, "r1_missing"] == "chronic_disease" and "R1" in sd.loc[r1, "rule_ids"]
    assert sd.loc[PLANTED["saturated_core_street"]["code"], "class_personal_account"] == "saturated"
    assert sd.loc[PLANTED["blank_town"]["code"], "class_personal_account"] == "blank"


def test_gap_report_carries_the_worker_layer(demo):
    """The demo's worker layer (geodata/demo/workers.geojson) is the gap report's workplace layer, one
    feature per place with its workers; the schema rejects a workplace without its workers."""
    schema = json.loads(report.SCHEMA_PATH.read_text(encoding="utf-8"))
    document = report.gap_report(demo)
    places = [f for f in document["features"] if f["properties"]["layer"] == "workplace"]
    assert len(places) == len(demo.region.workers.places) == 3
    by_name = {f["properties"]["name"]: f for f in places}
    work_area = by_name[PLANTED["work_area"]["name"]]
    assert work_area["properties"]["workers"] == PLANTED["work_area"]["workers"]
    assert work_area["geometry"]["type"] == "Polygon"
    assert {f["properties"]["basis"] for f in places} == {"points"}
    assert not any(f["properties"]["estimate"] for f in places)
    assert {f["properties"]["source"] for f in places} == {"workers.geojson"}
    del work_area["properties"]["workers"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_gap_report_without_a_worker_layer_has_no_workplace(demo):
    from dataclasses import replace

    from planning.memo import Memo

    document = report.gap_report(replace(demo, region=replace(demo.region, workers=None), memo=Memo()))
    assert not [f for f in document["features"] if f["properties"]["layer"] == "workplace"]


def test_schema_rejects_a_broken_report(demo):
    schema = json.loads(report.SCHEMA_PATH.read_text(encoding="utf-8"))
    document = report.gap_report(demo)
    zone = next(f for f in document["features"] if f["properties"]["layer"] == "zone")
    zone["properties"]["rule_ids"] = "X9"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_split_report_tables_grids_and_offline_map(demo, tmp_path):
    files = report.write_gap_report(demo, tmp_path / "gap.geojson", split=True)
    assert sorted(p.name for p in files) == sorted(f"gap_{layer}.geojson" for layer in report.LAYERS)
    assert len(gpd.read_file(tmp_path / "gap_workplace.geojson")) == len(demo.region.workers.places)
    written = report.write_tables(demo, tmp_path)
    sheets = pd.read_excel(written[0], sheet_name=None)  # for people: Chinese sheets (tests/test_tables_xlsx.py)
    assert set(sheets) == {"概要", "街道乡镇", "区县", "覆盖", "药店", "分区", "拒绝的行", "字段说明"}
    assert "文昌街道" in sheets["街道乡镇"]["名称"].tolist()
    csv = pd.read_csv(tmp_path / "subdistricts.csv", encoding="utf-8-sig")
    assert len(csv) == len(demo.subdistricts)
    grids = report.write_walk_time_grids(demo, tmp_path / "grids")
    with rasterio.open(grids[0]) as grid:
        minutes = grid.read(1)
        assert grid.crs.to_string() == demo.network.crs
        assert 0 <= minutes[minutes < 1e9].min() and minutes[minutes < 1e9].max() <= 30 + 1e-3
    html = report.write_html_map(demo, tmp_path / "map.html").read_text(encoding="utf-8")
    assert "L.map(" in html and "leaflet" in html.lower()
    links = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
    assert links == []  # nothing fetched from a CDN: opens offline
    assert "plannerStreets" in html and "data:text/javascript;base64," in html  # the street layer, inline


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "planning", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_cli_assess_demo_writes_everything(tmp_path):
    result = run_cli("assess", "--demo", "--out", str(tmp_path / "out"), "--report", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "评估" in result.stderr and "✓" in result.stderr  # progress on long steps
    assert "Warning" not in result.stderr  # no third-party deprecation noise for the planner
    for name in ("gap_report.geojson", "tables.xlsx", "subdistricts.csv", "map.html", "report.docx"):
        assert (tmp_path / "out" / name).is_file()
    assert "柳湾街道" in result.stdout  # the R1 shortfall is named in the summary


def test_cli_check_json_and_applicant(tmp_path):
    core = PLANTED["saturated_core_street"]["core_point"]
    applicant = tmp_path / "applicant.json"
    applicant.write_text(json.dumps({"months_operating": 2, "info_system_ready": True,
                                     "violation_termination_dates": ["2025-01-01"]}), encoding="utf-8")
    result = run_cli("check", "--demo", "--quiet", "--lon", str(core[0]), "--lat", str(core[1]),
                     "--services", "chronic_disease", "--applicant", str(applicant), "--json", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["verdicts"]["chronic_disease"]["verdict"] == "blocked"
    assert {"B1", "B2"} <= set(answer["verdicts"]["chronic_disease"]["rule_ids"])
    assert answer["applicant_eligible"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--demo", "--lon", "111.6", "--lat", "27.3", "--services", "massage"], "unknown services"),
        (["assess", "--out", "OUT"], "use --demo or give"),
        (["assess", "--demo", "--policy", "shanghai", "--out", "OUT"], "unknown policy preset"),
        (["assess", "--demo", "--minutes", "-5", "--out", "OUT"], "walk_minutes"),
    ],
)
def test_cli_bad_input_is_readable_and_exits_2(tmp_path, args, message):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = run_cli(*args, cwd=ROOT)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "错误" in result.stderr  # the Chinese half of the message


@pytest.mark.parametrize("command", [[], ["assess"], ["check"]])
def test_help_is_in_chinese_and_english(command):
    result = run_cli(*command, "--help", cwd=ROOT)
    assert result.returncode == 0
    options = [line for line in result.stdout.splitlines() if line.strip().startswith("-")]
    assert options and all(re.search(r"[\u4e00-\u9fff]", line) for line in options
                           if "  " in line.strip()), result.stdout  # every option that has help has Chinese
    assert "help" in result.stdout and "帮助" in result.stdout
