"""Admin relations of an OSM file as boundaries: a complete relation becomes a polygon, an incomplete one is
reported (hand-built OSM XML as the oracle; the real extracts' relations are all cut by the extract)."""

from __future__ import annotations

import pytest
import shapely

from planning.ingest.osm_boundaries import read_osm_boundaries

NODES = {1: (118.70, 32.00), 2: (118.72, 32.00), 3: (118.72, 32.02), 4: (118.70, 32.02)}
XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
{nodes}
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/></way>
  <way id="11"><nd ref="3"/><nd ref="4"/><nd ref="1"/></way>
  <relation id="100"><member type="way" ref="10" role="outer"/><member type="way" ref="11" role="outer"/>
    <tag k="type" v="boundary"/><tag k="boundary" v="administrative"/><tag k="admin_level" v="8"/>
    <tag k="name" v="新街口街道"/></relation>
  <relation id="200"><member type="way" ref="10" role="outer"/><member type="way" ref="99" role="outer"/>
    <tag k="type" v="boundary"/><tag k="boundary" v="administrative"/><tag k="admin_level" v="6"/>
    <tag k="name" v="玄武区"/></relation>
</osm>
"""


def test_complete_relation_is_a_polygon_and_incomplete_one_is_reported(tmp_path):
    nodes = "\n".join(f'  <node id="{i}" lat="{lat}" lon="{lon}" version="1"/>' for i, (lon, lat) in NODES.items())
    path = tmp_path / "admin.osm"
    path.write_text(XML.format(nodes=nodes), encoding="utf-8")
    result = read_osm_boundaries(path)
    assert result.subdistricts["name"].tolist() == ["新街口街道"] and result.subdistricts["complete"].all()
    square = shapely.box(118.70, 32.00, 118.72, 32.02)
    assert result.subdistricts.geometry.iloc[0].symmetric_difference(square).area < 1e-12
    assert result.counties.empty
    assert len(result.notes) == 1 and "玄武区" in result.notes[0] and "1 member ways missing" in result.notes[0]


@pytest.mark.parametrize("extract, names", [("nanjing_xuanwu", {"玄武区", "鼓楼区", "秦淮区"}),
                                            ("shenzhen_longgang", {"龙岗区", "凤岗镇"})])
def test_real_extracts_report_every_cut_relation(osm_path, extract, names):
    result = read_osm_boundaries(osm_path(extract))
    assert {n for n in names if any(n in note for note in result.notes)} == names
