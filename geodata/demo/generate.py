"""Generate the fictional demo region 示例市（虚构）: street network, boundaries, population and pharmacies.

Everything here is invented. The city sits around lon 111.60, lat 27.30 only so that coordinates fall
inside China; its codes use the unused province prefix ``99``. Run::

    python -m geodata.demo.generate

to rewrite the files next to this module (about 6 s). The output is byte-for-byte reproducible: every
random draw comes from ``numpy.random.default_rng`` seeded from :data:`SEED` and a fixed layer name,
loops run over lists in a fixed order, the gzip header carries no time stamp and the GeoJSON rows are
sorted by their code / id.

Geometry is built in a local transverse Mercator CRS centred on the city (:data:`LOCAL_CRS`, metres,
x east, y north) and converted to EPSG:4326 only when written. The steps:

1. :func:`build_layout` — the city outline, the river 澜溪河 and the rail line (metres).
2. :func:`build_boundaries` — four counties tiling the city and 25 sub-districts tiling the counties.
3. :func:`draw_streets` — raw street lines: a bent arterial grid whose superblocks are filled with
   jittered, gappy local lattices (old town alleys, residential compounds, modern blocks, industry,
   parks), towns, villages and the rural roads between them.
4. :func:`cut_barriers` — nothing walkable crosses the river or the rail except the designated
   bridges / crossings; :func:`build_network` nodes all lines (shared node at every crossing) and
   assembles OSM ways; :func:`add_special_ways` adds the expressway, the private bridge, river, rail.
5. :func:`place_sites` and :func:`pharmacy_table` — designated pharmacies on named streets, with
   the planted situations of :data:`PLANTED_SPEC`; :func:`planted_summary` writes where they are to
   planted.json (see README.md beside this file).
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.interpolate import PchipInterpolator
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial import Delaunay
from shapely import LineString, Point, Polygon
from shapely.ops import split

SEED = 20250601
OUT_DIR = Path(__file__).resolve().parent
CITY_NAME = "示例市（虚构）"
CITY_CODE = "9901"
CENTER_LON, CENTER_LAT = 111.60, 27.30
#: Local metric CRS: transverse Mercator centred on the city (metres, x east, y north).
LOCAL_CRS = (
    f"+proj=tmerc +lat_0={CENTER_LAT} +lon_0={CENTER_LON} +k=1 +x_0=0 +y_0=0 "
    "+ellps=WGS84 +units=m +no_defs +type=crs"
)
GRID = 0.5  # m: all street geometry is snapped to this grid so shared nodes have identical coordinates

NETWORK_FILE = "network.osm.gz"
COUNTIES_FILE = "counties.geojson"
SUBDISTRICTS_FILE = "subdistricts.geojson"
PHARMACIES_FILE = "pharmacies.geojson"
WORKERS_FILE = "workers.geojson"


def add_demand(subdistricts: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """The demand columns of MDJ-2025 art. 14 (planning.demand): employee insured (城镇职工参保人数) as
    38-48 % of the resident insured in urban street offices and 12-22 % in towns, chronic and
    special-disease patients (门诊慢特病人数) as 10-13 % in the old city county (the first one) and 6-9 %
    elsewhere, rounded to whole persons. Its own random stream: no other layer changes."""
    street = (subdistricts["kind"] == "street").to_numpy()
    old_city = (subdistricts["county_code"] == COUNTIES[0].code).to_numpy()
    population = subdistricts["population"].to_numpy(dtype=float)
    employee_share = np.where(street, rng.uniform(0.38, 0.48, len(population)), rng.uniform(0.12, 0.22, len(population)))
    chronic_share = np.where(old_city, rng.uniform(0.10, 0.13, len(population)), rng.uniform(0.06, 0.09, len(population)))
    return subdistricts.assign(employees=np.round(population * employee_share).astype(np.int64),
                               chronic_patients=np.round(population * chronic_share).astype(np.int64))


def _rng(layer: str) -> np.random.Generator:
    """An independent random stream per layer, so changing one layer never shifts another."""
    return np.random.default_rng([SEED, zlib.crc32(layer.encode())])


# ====================================================================== layout (metres)
#: River 澜溪河 centreline control points (x, y) in metres; the bump at x = 2600 is the meander lobe
#: (a south-bank peninsula) where the cut-off neighbourhood 澜湾花园小区 lies.
RIVER_CONTROL = [
    (-16500, 900), (-13000, 750), (-11500, 1150), (-9800, 700), (-8200, 250), (-6800, 550),
    (-5200, 650), (-3800, 150), (-2300, 20), (-1200, -150), (0, 250), (900, 120), (1500, 150),
    (2050, 680), (2600, 980), (3150, 680), (3700, 120), (4400, -300), (5500, -400), (6800, -120),
    (8200, -620), (10000, -1050), (11500, -620), (13500, -680), (16500, -900),
]
RIVER_HALF_WIDTH = 75.0  # m, half the water surface
RIVER_CUT = 92.0  # m from the centreline: no walkable way closer, except bridges
RIVERSIDE_OFFSET = 100.0  # m: the riverside roads 滨溪北路 / 滨溪南路
#: Rail line control points (m); it comes from the west and ends at 临溪站 (a terminus).
RAIL_CONTROL = [(-16500, 5700), (-12000, 5000), (-8000, 4300), (-5200, 4450), (-3000, 3800),
                (-1000, 3000), (1000, 2350)]
RAIL_CUT = 14.0  # m from the rail centreline: no walkable way closer, except crossings
#: Walkable crossings of the river: (x of the crossing, bridge name); the first three are urban.
RIVER_BRIDGES = [(-2800, "西门大桥"), (400, "澜溪大桥"), (4800, "东津大桥"),
                 (-9300, "青禾大桥"), (9600, "枫林大桥")]
#: Walkable crossings of the rail: level crossings on an arterial and on a rural road, a footbridge.
RAIL_LEVEL_CROSSINGS = [-2800, -8600]
RAIL_FOOTBRIDGE_X = -200.0
RAIL_NOFOOT_UNDERPASS_X = -1500.0  # the trap: a vehicle underpass tagged foot=no
#: Arterial grid: parameter box (m) before the bend of :func:`_warp`.
GRID_U = (-4700.0, 8300.0)
GRID_V = (-4800.0, 4800.0)
#: Urban footprint: squarish blob centred here (m), semi-axes (m).
URBAN_CENTRE = (1700.0, 0.0)
URBAN_AXES = (6300.0, 4500.0)
#: The old town and its dense commercial core (文昌街道), m.
CORE_CENTRE = (-850.0, 650.0)
CORE_RADIUS = 700.0
OLDTOWN_RADIUS = 2100.0
#: The cut-off neighbourhood 澜湾花园小区 on the meander lobe (representative point, m).
LOBE_X = 2600.0
CUTOFF_POINT = (2600.0, 730.0)
#: Where people work (planning.workers): 临溪物流园, a logistics and light-industry park of 10,000 workers
#: on the streets of 车站街道 beyond 15 minutes of every pharmacy (500 m x 400 m, centre in m), and two
#: workplaces within the circles: offices in the 文昌街道 core and the 南塘街道 hospital. With a policy
#: workers_weight of 0.5 or more the park makes 车站街道 an R3 priority it is not at weight 0.
WORK_AREA = {"name": "临溪物流园", "subdistrict_code": "990102004", "centre": (-3720.0, 5600.0),
             "half_size": (250.0, 200.0), "workers": 10_000}
WORKPLACES = (("文昌街道写字楼群", "office", (-850.0, 650.0), 6_000), ("南塘医院", "hospital", (-80.0, -1490.0), 1_500))
CUTOFF_EXCLUSION = 1500.0  # m: no pharmacy on the south bank this close (straight line)


_RIVER_SPLINE = PchipInterpolator(*np.array(RIVER_CONTROL, dtype=float).T)


def river_y(x: np.ndarray | float) -> np.ndarray:
    """y (m) of the river centreline at x (m): a shape-preserving spline through RIVER_CONTROL."""
    return _RIVER_SPLINE(x)


def _chaikin(points: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Corner-cutting smoothing of an open polyline (end points kept)."""
    pts = np.asarray(points, dtype=float)
    for _ in range(rounds):
        q = 0.75 * pts[:-1] + 0.25 * pts[1:]
        r = 0.25 * pts[:-1] + 0.75 * pts[1:]
        inner = np.empty((2 * len(q), 2))
        inner[0::2], inner[1::2] = q, r
        pts = np.vstack([pts[:1], inner, pts[-1:]])
    return pts


@dataclass(frozen=True)
class Layout:
    """The fixed geography (all metres in :data:`LOCAL_CRS`)."""

    outline: Polygon
    river: LineString
    river_cut: Polygon
    rail: LineString
    rail_cut: Polygon
    west_divider: LineString
    east_divider: LineString

    def north_of_river(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(y) > river_y(np.asarray(x))

    def rail_point(self, x: float) -> Point:
        """Where the rail crosses the meridian line at x (m)."""
        return shapely.intersection(self.rail, LineString([(x, -9e4), (x, 9e4)])).centroid


def build_layout() -> Layout:
    """City outline (about 350 km²), river, rail and the two county dividers; no randomness."""
    theta = np.linspace(0, 2 * np.pi, 721)[:-1]
    a, b = 13500.0, 9500.0
    r = 1 / (np.abs(np.cos(theta) / a) ** 3 + np.abs(np.sin(theta) / b) ** 3) ** (1 / 3)
    r *= 1 + 0.05 * np.sin(3 * theta + 0.3) + 0.035 * np.sin(5 * theta + 1.1) + 0.02 * np.sin(9 * theta + 2)
    x, y = r * np.cos(theta), r * np.sin(theta)
    y *= np.minimum(1.0, 0.6 + 0.6 * (x / a) ** 2)  # a waist: the urban districts are narrower north-south
    outline = shapely.set_precision(Polygon(np.c_[x, y]), GRID)

    xs = np.arange(-16500, 16501, 25.0)
    river = LineString(np.c_[xs, river_y(xs)])
    rail = LineString(_chaikin(np.array(RAIL_CONTROL, dtype=float)))
    ys = np.arange(-20000, 20001, 50.0)
    wave = np.sin(2 * np.pi * ys / 4100 + 0.5), np.sin(2 * np.pi * ys / 1500)
    west = LineString(np.c_[-5000 + 300 * wave[0] + 60 * wave[1], ys])
    wave = np.sin(2 * np.pi * ys / 3900 + 2), np.sin(2 * np.pi * ys / 1700 + 1)
    east = LineString(np.c_[5700 + 250 * wave[0] + 60 * wave[1], ys])
    return Layout(
        outline=outline,
        river=river,
        river_cut=river.buffer(RIVER_CUT, quad_segs=4),
        rail=rail,
        rail_cut=rail.buffer(RAIL_CUT, cap_style="flat", quad_segs=4),
        west_divider=west,
        east_divider=east,
    )


# ====================================================================== counties, sub-districts
@dataclass(frozen=True)
class County:
    code: str
    name: str
    fund_deficit_last_year: bool
    fund_deficit_forecast: bool
    fund_warning_letter: bool


COUNTIES = [
    County("990102", "临溪区", False, False, False),  # north bank, urban, old town
    County("990103", "望川区", False, False, False),  # south bank, urban
    County("990111", "枫林区", False, True, False),  # east, suburban: forecast deficit only (B4)
    County("990121", "青禾县", True, False, True),  # west, rural: deficit last year (B3, B4)
]


@dataclass(frozen=True)
class SubdistrictSpec:
    """A sub-district: its Voronoi seed (m), resident insured population and pharmacy count target."""

    code: str
    name: str
    kind: str  # "street" or "town"
    seed: tuple[float, float]
    population: int
    pharmacies: int


# fmt: off
SUBDISTRICTS = [
    # 临溪区 (north bank): 文昌街道 is the small, dense, saturated old-town core
    SubdistrictSpec("990102001", "文昌街道", "street", (-850, 620), 46800, 40),
    SubdistrictSpec("990102002", "西园街道", "street", (-2500, 900), 71200, 21),
    SubdistrictSpec("990102003", "北门街道", "street", (-900, 2150), 88500, 26),
    SubdistrictSpec("990102004", "车站街道", "street", (-1500, 4300), 52300, 15),
    SubdistrictSpec("990102005", "书院街道", "street", (-4100, 2400), 39600, 11),
    SubdistrictSpec("990102006", "溪岸街道", "street", (1300, 1600), 76400, 22),
    SubdistrictSpec("990102007", "金桂街道", "street", (3900, 2300), 64800, 19),
    # 望川区 (south bank): 柳湾街道 has no chronic-disease pharmacy (R1); 澜湾街道 holds the lobe
    SubdistrictSpec("990103001", "柳湾街道", "street", (-2600, -1400), 58700, 14),
    SubdistrictSpec("990103002", "澜湾街道", "street", (2500, -700), 61500, 17),
    SubdistrictSpec("990103003", "南塘街道", "street", (-300, -1700), 93200, 27),
    SubdistrictSpec("990103004", "望月街道", "street", (-400, -4400), 47300, 13),
    SubdistrictSpec("990103005", "新桥街道", "street", (4300, -2400), 66900, 19),
    SubdistrictSpec("990103006", "松坡街道", "street", (-3800, -3600), 34100, 9),
    # 枫林区 (east, suburban): three street offices by the river, three towns
    SubdistrictSpec("990111001", "枫林街道", "street", (7000, 800), 44600, 11),
    SubdistrictSpec("990111002", "东岭街道", "street", (7200, -2600), 38200, 9),
    SubdistrictSpec("990111003", "红枫街道", "street", (7300, 3600), 31500, 8),
    SubdistrictSpec("990111101", "丹岭镇", "town", (10300, 4600), 21400, 5),
    SubdistrictSpec("990111102", "梨园镇", "town", (11300, -2600), 26800, 6),
    SubdistrictSpec("990111103", "桃溪镇", "town", (9100, -5500), 17900, 4),
    # 青禾县 (west, rural): 白岩乡 is the blank town with residents and no pharmacy at all
    SubdistrictSpec("990121101", "禾城镇", "town", (-7600, 1900), 38700, 9),
    SubdistrictSpec("990121102", "石桥镇", "town", (-9200, 5800), 22300, 5),
    SubdistrictSpec("990121103", "谷丰镇", "town", (-11600, 2400), 19600, 4),
    SubdistrictSpec("990121104", "竹山镇", "town", (-7000, -3200), 24100, 5),
    SubdistrictSpec("990121201", "白岩乡", "town", (-11300, -3500), 9300, 0),
    SubdistrictSpec("990121202", "云雾乡", "town", (-8300, -5700), 11800, 3),
]
# fmt: on

#: The planted situations (codes, ids and points are filled in by :func:`generate`; see README.md).
PLANTED_SPEC = {
    "r1_no_chronic_street": "990103001",  # 柳湾街道
    "r2_no_dual_channel_county": "990121",  # 青禾县
    "saturated_core_street": "990102001",  # 文昌街道
    "blank_town": "990121201",  # 白岩乡
    "fund_deficit_county": "990121",  # 青禾县: fund_deficit_last_year
    "fund_forecast_county": "990111",  # 枫林区: forecast deficit only
    "r1_only_suspended_street": "990103004",  # 望月街道: its chronic-disease pharmacies are all suspended
}


def _county_pieces(layout: Layout) -> dict[str, Polygon]:
    """Split the outline by the dividers and (in the middle) by the river: one polygon per county."""
    parts = list(split(layout.outline, layout.west_divider).geoms)
    west = max((p for p in parts if p.centroid.x < -5000), key=lambda p: p.area)
    rest = max((p for p in parts if p.centroid.x >= -5000), key=lambda p: p.area)
    parts = list(split(rest, layout.east_divider).geoms)
    east = max((p for p in parts if p.centroid.x > 5700), key=lambda p: p.area)
    middle = max((p for p in parts if p.centroid.x <= 5700), key=lambda p: p.area)
    halves = list(split(middle, layout.river).geoms)
    north = max((p for p in halves if p.representative_point().y > river_y(p.representative_point().x)),
                key=lambda p: p.area)
    south = max((p for p in halves if p.representative_point().y < river_y(p.representative_point().x)),
                key=lambda p: p.area)
    return {"990102": north, "990103": south, "990111": east, "990121": west}


def _displace(coords: np.ndarray) -> np.ndarray:
    """A smooth, fold-free displacement (m) that makes straight Voronoi edges look like real borders."""
    x, y = coords[:, 0], coords[:, 1]
    dx = 80 * np.sin(2 * np.pi * y / 2200 + 0.3) + 30 * np.sin(2 * np.pi * (x + y) / 1000 + 1.0)
    dy = 80 * np.sin(2 * np.pi * x / 2300 + 1.2) + 30 * np.sin(2 * np.pi * (x - y) / 1100 + 2.0)
    return np.c_[x + dx, y + dy]


def build_boundaries(layout: Layout) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Counties (the outline split by dividers and river) and sub-districts (bent Voronoi cells of the
    seeds in :data:`SUBDISTRICTS`, clipped to their county), in :data:`LOCAL_CRS` (m)."""
    pieces = _county_pieces(layout)
    sub_rows = []
    for county in COUNTIES:
        piece = pieces[county.code]
        specs = [s for s in SUBDISTRICTS if s.code.startswith(county.code)]
        seeds = shapely.points([s.seed for s in specs])
        box = shapely.box(*piece.buffer(3000).bounds)
        cells = list(shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box)))
        for spec, seed in zip(specs, seeds):
            cell = next(c for c in cells if c.contains(seed))
            cell = shapely.segmentize(cell, 100.0)
            cell = shapely.transform(cell, _displace)
            geom = shapely.set_precision(cell.intersection(piece), 0.01)
            sub_rows.append({"code": spec.code, "name": spec.name, "kind": spec.kind,
                             "county_code": county.code, "population": spec.population, "geometry": geom})
    subdistricts = gpd.GeoDataFrame(sub_rows, geometry="geometry", crs=LOCAL_CRS)
    subdistricts = add_demand(subdistricts, _rng("demand"))
    counties = gpd.GeoDataFrame(
        [{"code": c.code, "name": c.name, "fund_deficit_last_year": c.fund_deficit_last_year,
          "fund_deficit_forecast": c.fund_deficit_forecast, "fund_warning_letter": c.fund_warning_letter,
          "geometry": shapely.set_precision(pieces[c.code], 0.01)} for c in COUNTIES],
        geometry="geometry", crs=LOCAL_CRS,
    )
    return counties, subdistricts


# ====================================================================== street lines
@dataclass
class Line:
    """A street line before noding: geometry (m), OSM tags, and designated barrier crossings.

    ``crossings`` maps a barrier ("river" / "rail") to the tags the part inside that barrier's cut
    zone gets (a bridge, a level crossing, a tunnel); lines without an entry are cut at the barrier.
    """

    geom: LineString
    tags: dict[str, str]
    crossings: dict[str, dict[str, str]] = field(default_factory=dict)
    level_crossing: bool = False  # the inside part carries a node shared with the rail


@dataclass(frozen=True)
class Fabric:
    """How a superblock is filled: lattice spacing (m), angle sd (deg), node jitter sd (m), share of
    lattice edges dropped, cul-de-sac and cross-block path rates, share of named lines, highway mix."""

    spacing: tuple[float, float]
    angle_sd: float
    jitter: float
    drop: float
    stub: float
    diag: float
    named: float
    mix: tuple[tuple[str, float], ...]
    stub_highway: str
    suffixes: tuple[str, ...] = ("路", "街")


FABRICS = {
    "core": Fabric((36, 52), 6, 4, 0.10, 0.16, 0.04, 0.9,
                   (("residential", .45), ("living_street", .2), ("pedestrian", .2), ("footway", .1),
                    ("service", .05)), "footway", ("街", "巷")),
    "oldtown": Fabric((45, 66), 10, 5, 0.16, 0.24, 0.05, 0.55,
                      (("residential", .5), ("living_street", .22), ("footway", .18), ("service", .1)),
                      "footway", ("街", "巷")),
    "compound": Fabric((68, 105), 14, 6, 0.20, 0.34, 0.10, 0.3,
                       (("residential", .35), ("service", .45), ("footway", .2)), "service"),
    "modern": Fabric((130, 190), 5, 3, 0.07, 0.22, 0.06, 0.7,
                     (("tertiary", .25), ("residential", .6), ("unclassified", .15)), "service"),
    "campus": Fabric((85, 125), 8, 4, 0.22, 0.25, 0.25, 0.0,
                     (("footway", .5), ("service", .5)), "footway"),
    "industrial": Fabric((170, 260), 4, 3, 0.28, 0.35, 0.0, 0.35,
                         (("service", .65), ("unclassified", .35)), "service"),
    "suburban": Fabric((95, 165), 18, 10, 0.30, 0.22, 0.04, 0.2,
                       (("residential", .4), ("unclassified", .3), ("track", .2), ("path", .1)), "track"),
    "town": Fabric((60, 95), 16, 7, 0.18, 0.26, 0.06, 0.0,
                   (("residential", .55), ("service", .2), ("footway", .15), ("track", .1)), "service"),
}

ROAD_ROOTS = (
    "建设 中山 文化 新华 和平 五一 朝阳 东风 胜利 青年 工农 兴业 民主 书院 花园 荷花 桂花 芙蓉 梅溪 "
    "桃源 长青 振兴 富民 迎宾 学院 玉泉 紫荆 金桥 银杏 翠竹 松林 柏园 枫叶 丹桂 望月 观澜 凤凰 卧龙 "
    "白鹭 春华 秋实 育才 光明 红旗 太平 永安 复兴 龙湾 石榴 杏林 锦绣 清风 明月 樟树 柳岸 云台 鹤鸣 "
    "双井 青石 双桥 牌坊 仓前 盐井 米市 鱼塘 书香 文峰 状元 府前 县前 城隍 小河 井边 油榨 豆腐 "
    "竹园 梨树 桑园 茶亭 瓦屋 新村 合兴 同心 惠民 安居 乐业 康宁 和睦 吉祥"
).split()
ARTERIAL_NAMES = (
    "人民路 解放大道 建国路 中山大道 五一路 新华大道 和平路 东风路 胜利路 文化路 青年大道 迎宾大道 "
    "长青路 芙蓉大道 桂花路 朝阳路 工业大道 学院路 车站路 书院路 沿溪大道 光明路 复兴大道 振兴路 "
    "锦绣大道 紫荆路 凤凰路 金桥大道 银杏路 望月大道 观澜路 松林路 枫林大道 丹霞路 白鹭路 春华大道 "
    "秋实路 龙湾大道 玉泉路 翠竹路"
).split()
DIRECTIONS = ("", "东", "西", "南", "北")


class NameBook:
    """Hands out unique fictional Chinese street names in a reproducible order."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.used: set[str] = set(ARTERIAL_NAMES) | {"滨溪北路", "滨溪南路"}
        self._queues: dict[tuple[str, ...], list[str]] = {}

    def street(self, suffixes: tuple[str, ...]) -> str:
        """A new name ending in one of ``suffixes`` (root + direction + suffix, or numbered lanes 一巷…)."""
        if suffixes not in self._queues:
            directions = ("",) if suffixes == ("公路",) else DIRECTIONS
            cands = [r + d + s for r in ROAD_ROOTS for d in directions for s in suffixes]
            if "巷" in suffixes:
                cands += [r + o + "巷" for r in ROAD_ROOTS for o in "一二三四五六七八九"]
            self._queues[suffixes] = [cands[k] for k in self.rng.permutation(len(cands))]
        queue = self._queues[suffixes]
        while queue:
            name = queue.pop()
            if name not in self.used:
                self.used.add(name)
                return name
        raise RuntimeError(f"street names ending in {suffixes} exhausted")

    def take(self, name: str) -> str:
        self.used.add(name)
        return name


def _warp(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bend grid parameter coordinates (m) into local coordinates (m); smooth and fold-free
    (|Jacobian - I| < 0.4), so straight grid lines become gently curving streets."""
    x = u + 150 * np.sin(2 * np.pi * v / 4300 + 0.6) + 70 * np.sin(2 * np.pi * (u + v) / 3100 + 1.9)
    y = v + 140 * np.sin(2 * np.pi * u / 5100 + 2.4) + 60 * np.sin(2 * np.pi * (u - v) / 3500 + 0.3)
    return x, y


def _warp_coords(coords: np.ndarray) -> np.ndarray:
    """:func:`_warp` for an (n, 2) coordinate array (m)."""
    x, y = _warp(coords[:, 0], coords[:, 1])
    return np.c_[x, y]


def _urban_norm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """< 1 inside the urban footprint (a squarish, wobbly blob), growing outwards."""
    dx, dy = np.asarray(x) - URBAN_CENTRE[0], np.asarray(y) - URBAN_CENTRE[1]
    phi = np.arctan2(dy, dx)
    r = (np.abs(dx / URBAN_AXES[0]) ** 2.5 + np.abs(dy / URBAN_AXES[1]) ** 2.5) ** (1 / 2.5)
    return r / (1 + 0.1 * np.sin(3 * phi + 1.0) + 0.06 * np.sin(5 * phi + 2.0) + 0.04 * np.sin(7 * phi))


@dataclass
class ArterialGrid:
    """The bent arterial grid: parameter positions of N-S (u) and E-W (v) arterials (m) and the
    fabric filling each superblock ("" = farmland, no local streets)."""

    u: np.ndarray
    v: np.ndarray
    fabric: list[list[str]]


def _choose_fabric(x: float, y: float, rng: np.random.Generator) -> str:
    """Fabric of the superblock centred at (x, y) m."""
    norm = float(_urban_norm(x, y))
    if norm > 1.05 or (norm > 0.9 and rng.random() < 0.4):
        return ""  # farmland: the built-up edge is ragged
    if math.dist((x, y), CORE_CENTRE) < CORE_RADIUS + 250 and y > float(river_y(x)):
        return "core"
    if abs(x - LOBE_X) < 900 and 0 < float(river_y(x)) - y < 1200:
        return "compound"  # the meander lobe: residential compounds
    if norm > 0.86:
        return "suburban"
    if math.dist((x, y), CORE_CENTRE) < OLDTOWN_RADIUS and rng.random() < 0.65:
        return "oldtown"
    if x > 5700:
        return str(rng.choice(["suburban", "industrial", "compound", "modern"], p=[0.35, 0.25, 0.25, 0.15]))
    return str(rng.choice(["compound", "modern", "industrial", "campus", "park"],
                          p=[0.52, 0.27, 0.08, 0.07, 0.06]))


def build_arterial_grid(rng: np.random.Generator) -> ArterialGrid:
    """Arterial positions 560-860 m apart and a fabric per superblock."""
    def positions(lo: float, hi: float) -> np.ndarray:
        out = [lo]
        while out[-1] < hi - 400:
            out.append(out[-1] + rng.uniform(560, 860))
        out[-1] = hi
        return np.array(out)

    u, v = positions(*GRID_U), positions(*GRID_V)
    fabric = []
    for i in range(len(u) - 1):
        column = []
        for j in range(len(v) - 1):
            x, y = _warp(np.array([(u[i] + u[i + 1]) / 2]), np.array([(v[j] + v[j + 1]) / 2]))
            column.append(_choose_fabric(float(x[0]), float(y[0]), rng))
        fabric.append(column)
    return ArterialGrid(u, v, fabric)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the runs of True in a 1-D mask."""
    runs, start = [], None
    for k, m in enumerate(list(mask) + [False]):
        if m and start is None:
            start = k
        elif not m and start is not None:
            runs.append((start, k))
            start = None
    return runs


def draw_arterials(grid: ArterialGrid, names: NameBook) -> list[Line]:
    """Arterials along grid lines, kept where at least one neighbouring superblock is built up; every
    third one primary, the outermost tertiary. Names go to primary roads first (人民路, 解放大道, …)."""
    nu, nv = len(grid.u), len(grid.v)
    filled = np.array([[bool(f) for f in col] for col in grid.fabric])  # (nu-1, nv-1)
    roads = []  # (class rank, axis, index, highway, runs of kept grid segments)
    for axis, count in (("u", nu), ("v", nv)):
        for i in range(count):
            if axis == "u":
                left = filled[i - 1, :] if i > 0 else np.zeros(nv - 1, bool)
                right = filled[i, :] if i < nu - 1 else np.zeros(nv - 1, bool)
            else:
                left = filled[:, i - 1] if i > 0 else np.zeros(nu - 1, bool)
                right = filled[:, i] if i < nv - 1 else np.zeros(nu - 1, bool)
            keep = left | right
            if keep.any():
                highway = "tertiary" if i in (0, count - 1) else ("primary" if i % 3 == 1 else "secondary")
                rank = ("primary", "secondary", "tertiary").index(highway)
                roads.append((rank, axis, i, highway, _runs(keep)))
    lines = []
    for (_, axis, i, highway, runs), name in zip(sorted(roads, key=lambda r: r[0]), ARTERIAL_NAMES):
        names.take(name)
        stops = grid.v if axis == "u" else grid.u
        for a, b in runs:
            pts = []
            for k in range(a, b):  # about every 80 m, grid junctions included exactly
                n = max(2, int(math.ceil((stops[k + 1] - stops[k]) / 80)))
                t = np.linspace(stops[k], stops[k + 1], n + 1)[: None if k == b - 1 else -1]
                across = np.full_like(t, grid.u[i] if axis == "u" else grid.v[i])
                pts.append(np.c_[across, t] if axis == "u" else np.c_[t, across])
            lines.append(Line(LineString(_warp_coords(np.vstack(pts))), {"highway": highway, "name": name}))
    return lines


def _pick(mix: tuple[tuple[str, float], ...], rng: np.random.Generator) -> str:
    """One value from (value, weight) pairs."""
    values = [m[0] for m in mix]
    p = np.array([m[1] for m in mix])
    return values[int(rng.choice(len(values), p=p / p.sum()))]


def _lattice(
    clip: Polygon, origin: tuple[float, float], fabric: Fabric, rng: np.random.Generator,
    names: NameBook | None,
) -> list[tuple[np.ndarray, dict[str, str]]]:
    """A jittered, gappy street lattice clipped to ``clip`` (all in one planar frame, m).

    Returns (coordinates, tags) per line: lattice streets (runs between dropped edges), cul-de-sacs
    (stubs from an edge into the block; they start 1 m behind the street so that noding always
    finds the junction) and cross-block footpaths.
    """
    sa, sb = rng.uniform(*fabric.spacing), rng.uniform(*fabric.spacing)
    th = math.radians(rng.normal(0, fabric.angle_sd))
    e1, e2 = np.array([math.cos(th), math.sin(th)]), np.array([-math.sin(th), math.cos(th)])
    minx, miny, maxx, maxy = clip.bounds
    reach = math.hypot(maxx - minx, maxy - miny) / 2 + max(sa, sb)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    # lattice index range covering the clip box
    o = np.array(origin, dtype=float)
    kc = int(round(np.dot(np.array([cx, cy]) - o, e1) / sa))
    lc = int(round(np.dot(np.array([cx, cy]) - o, e2) / sb))
    nk, nl = int(reach / sa) + 1, int(reach / sb) + 1
    ks, ls = np.arange(kc - nk, kc + nk + 1), np.arange(lc - nl, lc + nl + 1)
    K, L = np.meshgrid(ks, ls, indexing="ij")
    P = o + K[..., None] * sa * e1 + L[..., None] * sb * e2
    P = P + np.clip(rng.normal(0, fabric.jitter, P.shape), -2.5 * fabric.jitter, 2.5 * fabric.jitter)
    at_origin = (K == 0) & (L == 0)
    P[at_origin] = o  # the lattice passes exactly through its origin (a town centre)
    inside = shapely.contains_xy(clip.buffer(max(sa, sb)), P[..., 0], P[..., 1])

    out: list[tuple[np.ndarray, dict[str, str]]] = []
    keep_a = rng.random((len(ks) - 1, len(ls))) > fabric.drop  # edges along k (family A lines, fixed l)
    keep_b = rng.random((len(ks), len(ls) - 1)) > fabric.drop  # edges along l (family B lines, fixed k)
    keep_a[(K[:-1] == 0) & (L[:-1] == 0) | (K[1:] == 0) & (L[1:] == 0)] = True
    keep_b[(K[:, :-1] == 0) & (L[:, :-1] == 0) | (K[:, 1:] == 0) & (L[:, 1:] == 0)] = True

    def emit_runs(points: np.ndarray, keep: np.ndarray, inside_pts: np.ndarray):
        mask = keep & inside_pts[:-1] & inside_pts[1:]
        for a, b in _runs(mask):
            coords = points[a:b + 1]
            highway = _pick(fabric.mix, rng)
            tags = {"highway": highway}
            length = float(np.sum(np.hypot(*np.diff(coords, axis=0).T)))
            if (names is not None and highway in NAMEABLE and length > 150 and rng.random() < fabric.named):
                tags["name"] = names.street(fabric.suffixes)
            elif highway == "service" and rng.random() < 0.3:
                tags["service"] = "alley"
            out.append((coords, tags))

    for j in range(len(ls)):
        emit_runs(P[:, j], keep_a[:, j], inside[:, j])
    for i in range(len(ks)):
        emit_runs(P[i, :], keep_b[i, :], inside[i, :])

    # cul-de-sacs into the blocks
    for along, keep, spacing_perp, normal in ((0, keep_a, sb, e2), (1, keep_b, sa, e1)):
        idx = np.argwhere(keep)
        draws = rng.random(len(idx))
        for (i, j), d in zip(idx, draws):
            if d >= fabric.stub:
                continue
            p0 = P[i, j]
            p1 = P[i + 1, j] if along == 0 else P[i, j + 1]
            if not (inside[i, j] and (inside[i + 1, j] if along == 0 else inside[i, j + 1])):
                continue
            t = rng.uniform(0.3, 0.7)
            m = p0 + t * (p1 - p0)
            side = 1 if rng.random() < 0.5 else -1
            n = side * normal
            length = rng.uniform(0.25, 0.42) * spacing_perp
            tangent = (p1 - p0) / (np.linalg.norm(p1 - p0) + 1e-9)
            bend = rng.normal(0, 0.15) * length
            coords = np.array([m - 1.0 * n, m + 0.55 * length * n, m + length * n + bend * tangent])
            out.append((coords, {"highway": fabric.stub_highway}))

    # cross-block footpaths (and a few steps) between opposite block corners
    if fabric.diag > 0:
        for i in range(len(ks) - 1):
            for j in range(len(ls) - 1):
                if rng.random() >= fabric.diag or not (inside[i, j] and inside[i + 1, j + 1]):
                    continue
                a, b = P[i, j], P[i + 1, j + 1]
                if rng.random() < 0.5:
                    a, b = P[i + 1, j], P[i, j + 1]
                mid = (a + b) / 2 + rng.normal(0, 0.12 * min(sa, sb), 2)
                highway = "steps" if rng.random() < 0.08 else ("path" if rng.random() < 0.2 else "footway")
                out.append((np.array([a, mid, b]), {"highway": highway}))
    return out


NAMEABLE = {"primary", "secondary", "tertiary", "unclassified", "residential", "living_street", "pedestrian"}


def _park(clip: Polygon, rng: np.random.Generator) -> list[tuple[np.ndarray, dict[str, str]]]:
    """A park: one or two looping paths and radial footways (some of them steps) to the edge."""
    out = []
    c = np.array(clip.centroid.coords[0])
    minx, miny, maxx, maxy = clip.bounds
    rx, ry = (maxx - minx) / 2, (maxy - miny) / 2
    for scale in (0.55, 0.3)[: 1 + int(rng.random() < 0.6)]:
        t = np.linspace(0, 2 * np.pi, 19)
        r = scale * (1 + 0.12 * np.sin(3 * t + rng.uniform(0, 6)))
        ring = np.c_[c[0] + rx * r * np.cos(t), c[1] + ry * r * np.sin(t)]
        ring[-1] = ring[0]
        out.append((ring, {"highway": "footway"}))
    for k in range(int(rng.integers(3, 6))):
        ang = rng.uniform(0, 2 * np.pi)
        d = np.array([math.cos(ang), math.sin(ang)])
        radii = np.array([rx, ry])
        coords = np.array([c + 0.25 * min(rx, ry) * d, c + 0.8 * radii * d, c + 1.6 * radii * d])
        out.append((coords, {"highway": "steps" if k == 0 else ("path" if rng.random() < 0.4 else "footway")}))
    return out


def draw_urban_fabric(grid: ArterialGrid, names: NameBook, rng: np.random.Generator) -> list[Line]:
    """Local streets of every built-up superblock, drawn in grid parameter space and bent with
    :func:`_warp`; lines overshoot the bounding arterials by 6 m so noding finds every T-junction."""
    lines = []
    for i in range(len(grid.u) - 1):
        for j in range(len(grid.v) - 1):
            kind = grid.fabric[i][j]
            if not kind:
                continue
            rect = shapely.box(grid.u[i], grid.v[j], grid.u[i + 1], grid.v[j + 1])
            clip = rect.buffer(6.0, join_style="mitre")
            origin = (rng.uniform(grid.u[i], grid.u[i + 1]), rng.uniform(grid.v[j], grid.v[j + 1]))
            if kind == "park":
                raw = _park(rect, rng)
            else:
                raw = _lattice(rect.buffer(-1.0), origin, FABRICS[kind], rng, names)
            geoms = shapely.intersection(np.array([LineString(c) for c, _ in raw], dtype=object), clip)
            for geom, (_, tags) in zip(geoms, raw):
                for part in shapely.get_parts(geom):
                    if part.geom_type != "LineString" or part.length < 3:
                        continue
                    coords = _warp_coords(np.asarray(part.coords))
                    lines.append(Line(LineString(coords), dict(tags)))
    return lines


def draw_riverside_roads(layout: Layout, footprint: Polygon) -> list[Line]:
    """滨溪北路 and 滨溪南路: riverside roads 100 m from the centreline inside the urban footprint."""
    lines = []
    for offset, name in ((RIVERSIDE_OFFSET, "滨溪北路"), (-RIVERSIDE_OFFSET, "滨溪南路")):
        curve = layout.river.offset_curve(offset, quad_segs=4, join_style="round")
        curve = shapely.simplify(curve, 2.0)
        for part in shapely.get_parts(curve.intersection(footprint)):
            if part.geom_type == "LineString" and part.length > 200:
                lines.append(Line(shapely.segmentize(part, 60.0), {"highway": "secondary", "name": name}))
    return lines


# ---------------------------------------------------------------------- towns and villages
@dataclass(frozen=True)
class Place:
    """A town centre or village (m)."""

    xy: tuple[float, float]
    kind: str  # "town", "seat", "village", "gate"
    name: str = ""


def draw_town(centre: tuple[float, float], name: str, radius: float, names: NameBook,
              rng: np.random.Generator) -> list[Line]:
    """A town: a jittered lattice in a lumpy disk of about ``radius`` m, with a named main street
    (…正街) and cross street (…新街) through the centre."""
    phi = np.linspace(0, 2 * np.pi, 73)[:-1]
    a, b, c = rng.uniform(0, 2 * np.pi, 3)
    r = radius * (1 + 0.2 * np.sin(2 * phi + a) + 0.12 * np.sin(3 * phi + b) + 0.07 * np.sin(5 * phi + c))
    clip = Polygon(np.c_[centre[0] + r * np.cos(phi), centre[1] + r * np.sin(phi)])
    fabric = FABRICS["town"]
    raw = _lattice(clip, centre, fabric, rng, None)
    stem = name[:-1]
    lines = []
    main_done = cross_done = False
    geoms = shapely.intersection(np.array([LineString(c) for c, _ in raw], dtype=object), clip)
    for geom, (_, tags) in zip(geoms, raw):
        for part in shapely.get_parts(geom):
            if part.geom_type != "LineString" or part.length < 3:
                continue
            t = dict(tags)
            through_centre = part.distance(Point(centre)) < 0.01 and part.length > radius
            if through_centre and not main_done and t["highway"] not in ("footway", "steps", "path"):
                t = {"highway": "tertiary", "name": names.take(f"{stem}正街")}
                main_done = True
            elif through_centre and not cross_done and t["highway"] not in ("footway", "steps", "path"):
                t = {"highway": "residential", "name": names.take(f"{stem}新街")}
                cross_done = True
            elif t["highway"] == "residential" and part.length > 200 and rng.random() < 0.5:
                t["name"] = names.street(("巷", "街"))
            lines.append(Line(part, t))
    return lines


def draw_village(centre: np.ndarray, rng: np.random.Generator) -> list[Line]:
    """A village: 2-5 winding lanes from the centre with a few side lanes (m)."""
    lines = []
    n_arms = int(rng.integers(2, 6))
    base = rng.uniform(0, 2 * np.pi)
    for k in range(n_arms):
        ang = base + 2 * np.pi * k / n_arms + rng.normal(0, 0.25)
        pts = [centre.copy()]
        for _ in range(int(rng.integers(2, 5))):
            ang += rng.normal(0, 0.35)
            pts.append(pts[-1] + rng.uniform(40, 95) * np.array([math.cos(ang), math.sin(ang)]))
        highway = _pick((("residential", .35), ("track", .3), ("path", .2), ("footway", .15)), rng)
        lines.append(Line(LineString(np.array(pts)), {"highway": highway}))
        for p in pts[1:-1]:
            if rng.random() < 0.45:
                side = ang + (np.pi / 2 if rng.random() < 0.5 else -np.pi / 2) + rng.normal(0, 0.3)
                q = p + rng.uniform(35, 80) * np.array([math.cos(side), math.sin(side)])
                lines.append(Line(LineString(np.array([p, q])),
                                  {"highway": _pick((("track", .4), ("path", .35), ("footway", .25)), rng)}))
    return lines


def _curve(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, depth: int = 3, rough: float = 0.06) -> np.ndarray:
    """A gently winding road from a to b by midpoint displacement (end points exact)."""
    pts = np.array([a, b], dtype=float)
    for level in range(depth):
        mids = (pts[:-1] + pts[1:]) / 2
        seg = pts[1:] - pts[:-1]
        normal = np.c_[-seg[:, 1], seg[:, 0]]
        mids = mids + normal * rng.normal(0, rough / (1.6 ** level), (len(mids), 1))
        out = np.empty((len(pts) + len(mids), 2))
        out[0::2], out[1::2] = pts, mids
        pts = out
    return pts


def place_villages(layout: Layout, footprint: Polygon, towns: list[Place], rng: np.random.Generator) -> list[Place]:
    """Villages by dart throwing: 650 m apart, away from the city, the towns, the river and the rail."""
    inner = layout.outline.buffer(-150)
    away = shapely.union_all([footprint.buffer(350), layout.river.buffer(RIVER_CUT + 120),
                              layout.rail.buffer(90)] + [Point(t.xy).buffer(1000 if t.kind == "seat" else 800)
                                                          for t in towns])
    minx, miny, maxx, maxy = inner.bounds
    cand = np.c_[rng.uniform(minx, maxx, 9000), rng.uniform(miny, maxy, 9000)]
    ok = shapely.contains_xy(inner, cand[:, 0], cand[:, 1]) & ~shapely.contains_xy(away, cand[:, 0], cand[:, 1])
    chosen: list[np.ndarray] = []
    for p in cand[ok]:
        if all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 > 650.0 ** 2 for q in chosen[-400:]):
            chosen.append(p)
    return [Place((float(p[0]), float(p[1])), "village") for p in chosen]


def draw_rural_roads(layout: Layout, footprint: Polygon, places: list[Place], rng: np.random.Generator,
                     names: NameBook) -> list[Line]:
    """Roads between towns, villages and the city gates: a minimum spanning tree of a Delaunay
    triangulation plus some loops. Edges crossing the river or rail are left out except the
    designated rural bridge and level crossing."""
    xy = np.array([p.xy for p in places])
    tri = Delaunay(xy)
    edges = set()
    for s in tri.simplices:
        for a, b in ((s[0], s[1]), (s[1], s[2]), (s[0], s[2])):
            edges.add((min(a, b), max(a, b)))
    edges = sorted(edges)
    ea, eb = np.array([e[0] for e in edges]), np.array([e[1] for e in edges])
    segs = shapely.linestrings(np.stack([xy[ea], xy[eb]], axis=1))
    length = shapely.length(segs)
    mid = (xy[ea] + xy[eb]) / 2
    kinds = np.array([p.kind for p in places])
    ok = (length < 3200) & ~((kinds[ea] == "gate") & (kinds[eb] == "gate"))
    ok &= ~shapely.contains_xy(footprint.buffer(-50), mid[:, 0], mid[:, 1])
    ok &= shapely.within(segs, layout.outline.buffer(300))
    crosses_river = shapely.intersects(segs, layout.river)
    crosses_rail = shapely.intersects(segs, layout.rail)
    crossing: dict[int, dict[str, dict[str, str]]] = {}
    for x, bridge in RIVER_BRIDGES[3:]:
        target = Point(x, float(river_y(x)))
        cand = np.flatnonzero(ok & crosses_river & ~crosses_rail & (length < 2200))
        best = int(cand[np.argmin(shapely.distance(segs[cand], target))])
        crossing[best] = {"river": {"bridge": "yes", "layer": "1", "bridge:name": bridge}}
    for x in RAIL_LEVEL_CROSSINGS[1:]:
        target = layout.rail_point(x)
        cand = np.flatnonzero(ok & crosses_rail & ~crosses_river & (length < 2200))
        best = int(cand[np.argmin(shapely.distance(segs[cand], target))])
        crossing[best] = {"rail": {}}  # at grade: a node shared with the rail
    ok &= ~(crosses_river | crosses_rail) | np.isin(np.arange(len(edges)), list(crossing))

    # spanning tree (gates are pre-joined: the city connects them) plus loops
    n = len(places)
    gates = np.flatnonzero(kinds == "gate")
    idx = np.flatnonzero(ok)
    w = length[idx].copy()
    w[np.isin(idx, list(crossing))] = 1e-3  # designated crossings always in the tree
    rows, cols = list(ea[idx]), list(eb[idx])
    weights = list(w)
    for g in gates[1:]:
        rows.append(gates[0]); cols.append(g); weights.append(1e-6)
    mst = minimum_spanning_tree(coo_matrix((weights, (rows, cols)), shape=(n, n))).tocoo()
    in_tree = {(min(a, b), max(a, b)) for a, b in zip(mst.row, mst.col)}
    lines = []
    for k in idx:
        a, b = int(ea[k]), int(eb[k])
        tree = (a, b) in in_tree
        if not tree and not (rng.random() < 0.22 and length[k] < 2000):
            continue
        ka, kb = kinds[a], kinds[b]
        if "village" not in (ka, kb):
            tags = {"highway": "secondary" if "seat" in (ka, kb) or "gate" in (ka, kb) else "tertiary"}
            tags["name"] = names.street(("公路",))
        elif ka == "village" and kb == "village":
            tags = {"highway": "track" if rng.random() < 0.35 else "unclassified"}
        else:
            tags = {"highway": "unclassified"}
        if k in crossing and tags["highway"] in ("track", "unclassified"):  # bridges carry a real road
            tags = {"highway": "tertiary", "name": names.street(("公路",))}
        coords = _curve(xy[a], xy[b], rng)
        lines.append(Line(LineString(coords), tags, crossings=crossing.get(k, {}).copy(),
                          level_crossing="rail" in crossing.get(k, {})))
    return lines


# ====================================================================== all street lines
def urban_footprint(grid: ArterialGrid) -> Polygon:
    """The built-up area (m): union of the bent superblocks that have a fabric."""
    cells = []
    for i in range(len(grid.u) - 1):
        for j in range(len(grid.v) - 1):
            if grid.fabric[i][j]:
                rect = shapely.segmentize(shapely.box(grid.u[i], grid.v[j], grid.u[i + 1], grid.v[j + 1]), 50.0)
                cells.append(shapely.transform(rect, _warp_coords))
    return shapely.union_all(cells).buffer(1.0).buffer(-1.0)


def city_gates(grid: ArterialGrid, layout: Layout) -> list[Place]:
    """Arterial junctions on the edge of the built-up area, where rural roads start."""
    nu, nv = len(grid.u), len(grid.v)
    gates = []
    for i in range(nu):
        for j in range(nv):
            around = [grid.fabric[a][b] for a in (i - 1, i) for b in (j - 1, j) if 0 <= a < nu - 1 and 0 <= b < nv - 1]
            built = sum(bool(f) for f in around)
            if built == 0 or built == 4:
                continue
            x, y = _warp(np.array([grid.u[i]]), np.array([grid.v[j]]))
            p = Point(float(x[0]), float(y[0]))
            if p.distance(layout.river) < RIVER_CUT + 30 or p.distance(layout.rail) < RAIL_CUT + 30:
                continue
            if layout.outline.contains(p):
                gates.append(Place((p.x, p.y), "gate"))
    return gates


def town_places() -> list[Place]:
    """Town centres: the seeds of the town sub-districts; 禾城镇 is the county seat."""
    return [Place(s.seed, "seat" if s.name == "禾城镇" else "town", s.name)
            for s in SUBDISTRICTS if s.kind == "town"]


def town_radius(place: Place) -> float:
    """Radius (m) of a town's built-up disk."""
    if place.kind == "seat":
        return 1000.0
    return 380.0 if place.name.endswith("乡") else 560.0


def draw_streets(layout: Layout, grid: ArterialGrid, names: NameBook) -> tuple[list[Line], Polygon, list[Place]]:
    """Every street line of the region before barriers are cut (m); also the footprint and towns."""
    footprint = urban_footprint(grid)
    lines = draw_arterials(grid, names)
    lines += draw_riverside_roads(layout, footprint)
    lines += draw_urban_fabric(grid, names, _rng("urban-fabric"))
    towns = town_places()
    rng = _rng("towns")
    for town in towns:
        lines += draw_town(town.xy, town.name, town_radius(town), names, rng)
    villages = place_villages(layout, footprint, towns, _rng("villages"))
    rng = _rng("village-lanes")
    for village in villages:
        lines += draw_village(np.array(village.xy), rng)
    gates = city_gates(grid, layout)
    lines += draw_rural_roads(layout, footprint, towns + villages + gates, _rng("rural-roads"), names)
    lines += draw_county_roads(layout, towns, gates, _rng("county-roads"), names)
    designate_crossings(lines, layout)
    return lines, footprint, towns


def draw_county_roads(layout: Layout, towns: list[Place], gates: list[Place], rng: np.random.Generator,
                      names: NameBook) -> list[Line]:
    """Named county roads (…公路) linking every town towards the city: each town joins the nearest
    already-linked town or city gate that it can reach without crossing the river or the rail."""
    barrier = layout.river.buffer(RIVER_CUT + 20).union(layout.rail.buffer(RAIL_CUT + 20))
    linked = [np.array(g.xy) for g in gates]
    todo = list(towns)
    lines = []
    while todo:
        best = None
        for town in todo:
            for target in linked:
                d = float(np.hypot(*(np.array(town.xy) - target)))
                if (best is None or d < best[0]) and not LineString([town.xy, target]).intersects(barrier):
                    best = (d, town, target)
        if best is None:
            break  # the rest are linked through village roads only
        _, town, target = best
        highway = "secondary" if town.kind == "seat" else "tertiary"
        coords = _curve(np.array(town.xy), target, rng, rough=0.04)
        lines.append(Line(LineString(coords), {"highway": highway, "name": names.street(("公路",))}))
        linked.append(np.array(town.xy))
        todo.remove(town)
    return lines


# ---------------------------------------------------------------------- designated crossings
def designate_crossings(lines: list[Line], layout: Layout) -> None:
    """Mark the arterials that cross the river on the urban bridges, cross the rail at grade, or
    pass under it (the foot=no trap); add the rail footbridge."""
    def nearest_arterial(target: Point, barrier: LineString) -> Line:
        """The named arterial whose crossing of ``barrier`` is nearest to ``target``."""
        def score(line: Line) -> float:
            return float(shapely.distance(shapely.intersection(line.geom, barrier), target))
        return min((l for l in lines if l.tags.get("highway") in ("primary", "secondary", "tertiary")
                    and l.tags.get("name", "滨溪北路") not in ("滨溪北路", "滨溪南路")
                    and l.geom.intersects(barrier)), key=score)

    for x, bridge in RIVER_BRIDGES[:3]:
        line = nearest_arterial(Point(x, float(river_y(x))), layout.river)
        line.crossings["river"] = {"bridge": "yes", "layer": "1", "bridge:name": bridge}
    line = nearest_arterial(layout.rail_point(RAIL_LEVEL_CROSSINGS[0]), layout.rail)
    line.crossings["rail"] = {}
    line.level_crossing = True
    line = nearest_arterial(layout.rail_point(RAIL_NOFOOT_UNDERPASS_X), layout.rail)
    line.crossings["rail"] = {"tunnel": "yes", "layer": "-1", "foot": "no"}
    x, y = RAIL_FOOTBRIDGE_X, layout.rail_point(RAIL_FOOTBRIDGE_X).y
    lines.append(Line(LineString([(x - 20, y - 170), (x, y), (x + 15, y + 170)]), {"highway": "footway"},
                      crossings={"rail": {"bridge": "yes", "layer": "1"}}))


def cut_barriers(lines: list[Line], layout: Layout) -> list[Line]:
    """Cut every line at the river and rail zones; a designated crossing keeps its inside part as a
    separate line carrying the crossing tags (bridge, tunnel) or a level-crossing vertex."""
    out: list[Line] = []
    for line in lines:
        todo = [(shapely.set_precision(line.geom, GRID), dict(line.tags), False)]
        barriers = (("river", layout.river_cut, layout.river), ("rail", layout.rail_cut, layout.rail))
        for barrier, zone, centre in barriers:
            nxt = []
            for geom, tags, inner in todo:
                if inner or not geom.intersects(zone):
                    nxt.append((geom, tags, inner))
                    continue
                outside = shapely.difference(geom, zone, grid_size=GRID)
                nxt += [(p, tags, False) for p in shapely.get_parts(outside) if p.geom_type == "LineString"]
                if barrier in line.crossings:
                    inside = shapely.intersection(geom, zone, grid_size=GRID)
                    for p in shapely.get_parts(inside):
                        if p.geom_type != "LineString":
                            continue
                        t = {**tags, **line.crossings[barrier]}
                        if barrier == "rail" and line.level_crossing:
                            x = p.intersection(centre)
                            if x.geom_type == "Point":
                                d = p.project(x)
                                coords = np.asarray(p.coords)
                                cum = np.r_[0, np.cumsum(np.hypot(*np.diff(coords, axis=0).T))]
                                k = int(np.searchsorted(cum, d))
                                at = np.round(np.array(x.coords[0]) / GRID) * GRID
                                p = LineString(np.vstack([coords[:k], [at], coords[k:]]))
                                t["_level_crossing"] = f"{at[0]},{at[1]}"
                        nxt.append((p, t, True))
            todo = nxt
        out += [Line(g, t) for g, t, _ in todo if g.length > 0]
    return out


# ====================================================================== noding into OSM ways
@dataclass
class Network:
    """Nodes (local metres) and OSM ways (node index lists + tags); special node tags by index."""

    xy: np.ndarray
    ways: list[tuple[list[int], dict[str, str]]]
    node_tags: dict[int, dict[str, str]] = field(default_factory=dict)

    def add_node(self, x: float, y: float) -> int:
        self.xy = np.vstack([self.xy, [x, y]])
        return len(self.xy) - 1


WALKABLE = {"primary", "secondary", "tertiary", "residential", "living_street", "service", "footway",
            "pedestrian", "steps", "path", "track", "unclassified"}


def is_walkable(tags: dict[str, str]) -> bool:
    """The walking filter the demo is built for (the traps are a motorway, access=private, foot=no)."""
    return (tags.get("highway") in WALKABLE and tags.get("access") not in ("private", "no")
            and tags.get("foot") != "no")


def build_network(lines: list[Line]) -> Network:
    """Node all lines (snap-rounding on a 0.5 m grid: a node at every crossing, shared by the lines),
    chain each line's pieces into one OSM way, prune overshoot stubs (< 10 m dangling ends) and keep
    the largest walkable connected piece."""
    geoms = np.array([l.geom for l in lines], dtype=object)
    pieces = shapely.get_parts(shapely.union_all(geoms, grid_size=GRID))
    tree = shapely.STRtree(geoms)
    mids = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
    pidx, lidx = tree.query_nearest(mids, max_distance=1.0, all_matches=False)
    owner = np.full(len(pieces), -1)
    owner[pidx] = lidx

    # nodes: every vertex, identified by its grid cell
    coords_list = [np.asarray(p.coords) for p in pieces]
    allc = np.vstack(coords_list)
    keys = np.round(allc / GRID).astype(np.int64)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    starts = np.r_[0, np.cumsum([len(c) for c in coords_list])]
    piece_nodes = [inverse[starts[k]:starts[k + 1]] for k in range(len(pieces))]

    by_line: dict[int, list[int]] = {}
    for k in np.argsort(owner, kind="stable"):
        if owner[k] >= 0:
            by_line.setdefault(int(owner[k]), []).append(int(k))
    # position of each piece's ends along its line (m), to chain the pieces in order
    owned = geoms[np.maximum(owner, 0)]
    pos_first = shapely.line_locate_point(owned, shapely.points([c[0] for c in coords_list]))
    pos_last = shapely.line_locate_point(owned, shapely.points([c[-1] for c in coords_list]))
    ways: list[tuple[list[int], dict[str, str]]] = []
    for li in sorted(by_line):
        line = lines[li]
        ks = by_line[li]
        chain: list[int] = []
        for k in [ks[i] for i in np.argsort(pos_first[ks] + pos_last[ks], kind="stable")]:
            nodes = list(piece_nodes[k])
            if pos_first[k] > pos_last[k]:
                nodes = nodes[::-1]
            if chain and chain[-1] == nodes[0]:
                chain += nodes[1:]
            else:
                if len(chain) >= 2:
                    ways.append((chain, dict(line.tags)))
                chain = nodes
        if len(chain) >= 2:
            ways.append((chain, dict(line.tags)))
    xy = uniq.astype(float) * GRID
    ways = _prune_stubs(xy, ways)
    ways = _largest_walkable_component(len(xy), ways)
    # renumber the used nodes in order of first use
    order: dict[int, int] = {}
    for nodes, _ in ways:
        for n in nodes:
            if n not in order:
                order[n] = len(order)
    new_xy = np.empty((len(order), 2))
    for old, new in order.items():
        new_xy[new] = xy[old]
    ways = [([order[n] for n in nodes], tags) for nodes, tags in ways]
    net = Network(new_xy, ways)
    for nodes, tags in net.ways:
        at = tags.pop("_level_crossing", None)
        if at:
            xy_at = np.array([float(v) for v in at.split(",")])
            node = min(nodes, key=lambda n: float(np.hypot(*(net.xy[n] - xy_at))))
            net.node_tags[node] = {"railway": "level_crossing"}
    return net


def _degrees(n: int, ways: list[tuple[list[int], dict[str, str]]], only_walkable: bool) -> np.ndarray:
    """Number of distinct neighbours of each of the n nodes over the (walkable) ways."""
    pairs = set()
    for nodes, tags in ways:
        if only_walkable and not is_walkable(tags):
            continue
        for a, b in zip(nodes[:-1], nodes[1:]):
            if a != b:
                pairs.add((min(a, b), max(a, b)))
    deg = np.zeros(n, dtype=np.int64)
    if pairs:
        arr = np.array(sorted(pairs))
        np.add.at(deg, arr[:, 0], 1)
        np.add.at(deg, arr[:, 1], 1)
    return deg


def _prune_stubs(xy: np.ndarray, ways: list[tuple[list[int], dict[str, str]]], limit: float = 10.0):
    """Drop dangling end segments shorter than ``limit`` m (the deliberate overshoots)."""
    deg = _degrees(len(xy), ways, only_walkable=False)
    out = []
    for nodes, tags in ways:
        nodes = list(nodes)
        for _ in range(2):
            if len(nodes) >= 2 and deg[nodes[0]] == 1 and np.hypot(*(xy[nodes[0]] - xy[nodes[1]])) < limit:
                nodes = nodes[1:]
            if len(nodes) >= 2 and deg[nodes[-1]] == 1 and np.hypot(*(xy[nodes[-1]] - xy[nodes[-2]])) < limit:
                nodes = nodes[:-1]
        if len(nodes) >= 2:
            out.append((nodes, tags))
    return out


def _largest_walkable_component(n: int, ways):
    """Keep the walkable ways of the largest connected walkable piece (and non-walkable ways touching it)."""
    rows, cols = [], []
    for nodes, tags in ways:
        if is_walkable(tags):
            rows += nodes[:-1]
            cols += nodes[1:]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    used = np.zeros(n, bool)
    used[rows] = True
    used[cols] = True
    main = np.bincount(label[used]).argmax()
    return [(nodes, tags) for nodes, tags in ways if label[nodes[0]] == main]


# ---------------------------------------------------------------------- non-walkable special ways
def add_special_ways(net: Network, layout: Layout) -> dict[str, object]:
    """The river, the rail (sharing its level-crossing nodes), the elevated expressway with ramps to
    both banks of the lobe, and the private water-works bridge; returns their ids for the README."""
    walk_nodes = np.array(sorted({n for nodes, tags in net.ways if is_walkable(tags) for n in nodes}))
    tree = shapely.STRtree(shapely.points(net.xy[walk_nodes]))

    def nearest_node(x: float, y: float, where=None) -> int:
        cand = tree.query(Point(x, y).buffer(400))
        cand = [int(walk_nodes[c]) for c in sorted(cand)]
        if where is not None:
            cand = [c for c in cand if where(net.xy[c])]
        return min(cand, key=lambda c: (net.xy[c][0] - x) ** 2 + (net.xy[c][1] - y) ** 2)

    def polyline(coords: np.ndarray, first: int | None = None, last: int | None = None) -> list[int]:
        ids = [net.add_node(*c) for c in coords[(first is not None):len(coords) - (last is not None)]]
        return ([first] if first is not None else []) + ids + ([last] if last is not None else [])

    # river
    river = layout.river.intersection(layout.outline.buffer(500))
    river_coords = np.round(np.asarray(shapely.segmentize(shapely.simplify(river, 3.0), 60.0).coords) / GRID) * GRID
    net.ways.append((polyline(river_coords), {"waterway": "river", "name": "澜溪河"}))

    # rail, through its level-crossing nodes
    rail_coords = np.round(np.asarray(shapely.segmentize(shapely.simplify(layout.rail.intersection(
        layout.outline.buffer(500)), 2.0), 70.0).coords) / GRID) * GRID
    rail_line = LineString(rail_coords)
    crossing_nodes = sorted(net.node_tags, key=lambda n: rail_line.project(Point(net.xy[n])))
    seq: list[tuple[float, int | None, np.ndarray]] = [(rail_line.project(Point(c)), None, c) for c in rail_coords]
    seq += [(rail_line.project(Point(net.xy[n])), n, net.xy[n]) for n in crossing_nodes]
    seq = [s for s in sorted(seq, key=lambda s: (s[0], s[1] is None))]
    rail_ids: list[int] = []
    for pos, n, c in seq:
        if n is None and any(abs(pos - rail_line.project(Point(net.xy[m]))) < 8 for m in crossing_nodes):
            continue
        rail_ids.append(n if n is not None else net.add_node(*c))
    station = rail_ids[-3]
    net.node_tags[station] = {"railway": "station", "name": "临溪站"}
    net.node_tags[rail_ids[-1]] = {"railway": "buffer_stop"}
    net.ways.append((rail_ids, {"railway": "rail", "name": "示例铁路支线", "usage": "branch"}))

    # elevated expressway over the lobe; ramps land on both banks close to the cut-off neighbourhood
    ctrl = np.array([(3300, 9800), (3150, 4200), (2950, 1700), (2800, 700), (2850, -1200), (3050, -4500),
                     (3300, -9800)], dtype=float)
    mw = LineString(_chaikin(ctrl, 3)).intersection(layout.outline)
    mw_coords = np.round(np.asarray(shapely.segmentize(mw, 120.0).coords) / GRID) * GRID
    mw_ids = polyline(mw_coords)
    net.ways.append((mw_ids, {"highway": "motorway", "name": "沿溪高速", "ref": "S99", "bridge": "yes",
                              "layer": "1", "oneway": "no", "maxspeed": "80"}))
    mw_line = LineString(net.xy[mw_ids])
    ramps = {}
    for side, offset in (("south", -230.0), ("north", 230.0)):
        cross = mw_line.intersection(layout.river)
        cross = cross.geoms[0] if hasattr(cross, "geoms") else cross
        at = mw_line.project(cross) + (offset if mw_coords[0][1] < mw_coords[-1][1] else -offset)
        p = mw_line.interpolate(at)
        k = int(np.argmin(np.hypot(*(net.xy[mw_ids] - np.array(p.coords[0])).T)))
        north = side == "north"
        land = nearest_node(net.xy[mw_ids[k]][0] - 120, net.xy[mw_ids[k]][1],  # ramps land west of it
                            where=lambda c, north=north: layout.north_of_river(c[0], c[1]) == north)
        mid = (net.xy[mw_ids[k]] + net.xy[land]) / 2 + np.array([0, 15.0])
        ids = polyline(np.array([net.xy[mw_ids[k]], np.round(mid / GRID) * GRID, net.xy[land]]), mw_ids[k], land)
        net.ways.append((ids, {"highway": "motorway_link", "oneway": "no"}))
        ramps[side] = land

    # private bridge of the water works across the lobe tip
    tip_y = float(river_y(LOBE_X))
    south = nearest_node(LOBE_X, tip_y - RIVERSIDE_OFFSET, where=lambda c: not layout.north_of_river(c[0], c[1]))
    north = nearest_node(LOBE_X, tip_y + RIVERSIDE_OFFSET, where=lambda c: layout.north_of_river(c[0], c[1]))
    net.ways.append(([south, north], {"highway": "service", "access": "private", "bridge": "yes",
                                      "layer": "1", "name": "水厂专用桥", "operator": "示例市自来水公司（虚构）"}))
    return {"motorway_ramps": ramps, "private_bridge": (south, north)}


# ====================================================================== OSM XML output
def write_osm(net: Network, path: Path, to_lonlat: Transformer) -> None:
    """Plain OSM XML 0.6 (7-decimal coordinates), gzip-compressed with a zero time stamp."""
    lon, lat = to_lonlat.transform(net.xy[:, 0], net.xy[:, 1])
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<osm version="0.6" generator="geodata.demo.generate ({CITY_NAME})">',
           f'  <bounds minlat="{lat.min():.7f}" minlon="{lon.min():.7f}" '
           f'maxlat="{lat.max():.7f}" maxlon="{lon.max():.7f}"/>']
    for i in range(len(net.xy)):
        head = f'  <node id="{i + 1}" version="1" lat="{lat[i]:.7f}" lon="{lon[i]:.7f}"'
        tags = net.node_tags.get(i)
        if tags:
            out.append(head + ">")
            out += [f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in sorted(tags.items())]
            out.append("  </node>")
        else:
            out.append(head + "/>")
    for w, (nodes, tags) in enumerate(net.ways):
        out.append(f'  <way id="{w + 1}" version="1">')
        out += [f'    <nd ref="{n + 1}"/>' for n in nodes]
        out += [f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in sorted(tags.items())]
        out.append("  </way>")
    out.append("</osm>\n")
    data = "\n".join(out).encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(data)


# ====================================================================== pharmacies
CHAIN_BRANDS = ("康宁大药房", "溪川医药", "惠众大药房", "同泽堂药房", "安和大药房", "百福康药房")
CHAIN_WEIGHTS = (0.26, 0.2, 0.18, 0.14, 0.12, 0.10)
SINGLE_WORDS = (
    "杏林 济生 安泰 永春 德仁 康乐 惠民 福寿 同心 瑞丰 长寿 益康 平安 春晖 仁心 寿康 回春 广济 "
    "百草 天和 泰和 保元 养和 怡康 正心 万康 至善 厚德 博爱 松鹤 常青 和顺 顺康 润生"
).split()
SINGLE_SUFFIXES = ("药店", "大药房", "药房", "药号")
ORDINALS = "二三四五六七八九"


@dataclass
class Site:
    """A pharmacy site before its attributes: position (m), street, house number."""

    xy: np.ndarray
    subdistrict: str
    road: str
    number: int
    planted: str = ""


class StreetIndex:
    """Named walkable street segments (m) for placing pharmacies and numbering houses."""

    def __init__(self, net: Network):
        a, b, way, start, names = [], [], [], [], []
        for w, (nodes, tags) in enumerate(net.ways):
            if not is_walkable(tags) or "name" not in tags or tags.get("highway") not in NAMEABLE:
                continue
            if "bridge" in tags or "tunnel" in tags:
                continue
            pts = net.xy[nodes]
            seg = np.hypot(*np.diff(pts, axis=0).T)
            cum = np.r_[0, np.cumsum(seg)]
            for k in range(len(nodes) - 1):
                if seg[k] > 1.0:
                    a.append(pts[k])
                    b.append(pts[k + 1])
                    way.append(w)
                    start.append(cum[k])
                    names.append(tags["name"])
        self.a, self.b = np.array(a), np.array(b)
        self.way, self.start, self.names = np.array(way), np.array(start), names
        self.length = np.hypot(*(self.b - self.a).T)
        self.tree = shapely.STRtree(shapely.linestrings(np.stack([self.a, self.b], axis=1)))

    def in_area(self, area) -> np.ndarray:
        return np.array(sorted(self.tree.query(area, predicate="intersects")), dtype=np.int64)


def _site_on(streets: StreetIndex, s: int, t: float, side: int, offset: float) -> tuple[np.ndarray, int]:
    """Point ``offset`` m beside segment s at fraction t, and its house number (odd left, even right)."""
    a, b = streets.a[s], streets.b[s]
    d = (b - a) / streets.length[s]
    p = a + t * (b - a) + side * offset * np.array([-d[1], d[0]])
    along = streets.start[s] + t * streets.length[s]
    number = 2 * int(along // 14) + (1 if side > 0 else 2)
    return p, number


def _sample_sites(
    streets: StreetIndex, area, n: int, spacing: float, placed: list[np.ndarray], rng: np.random.Generator,
    ok=lambda p: True, subdistrict: str = "", planted: str = "",
) -> list[Site]:
    """Up to n sites on named streets inside ``area`` (shapely polygon), ``spacing`` m from each other
    and from ``placed``; the spacing relaxes if the area is too small."""
    segs = streets.in_area(area)
    if n == 0 or len(segs) == 0:
        return []
    w = streets.length[segs] / streets.length[segs].sum()
    out: list[Site] = []
    while spacing > 5 and len(out) < n:
        for _ in range(60 * n):
            if len(out) >= n:
                break
            s = int(segs[rng.choice(len(segs), p=w)])
            p, number = _site_on(streets, s, rng.uniform(0.1, 0.9), 1 if rng.random() < 0.5 else -1, rng.uniform(8, 18))
            if not area.contains(Point(p)) or not ok(p):
                continue
            if placed and np.min(np.hypot(*(np.array(placed) - p).T)) < spacing:
                continue
            placed.append(p)
            out.append(Site(p, subdistrict, streets.names[s], number, planted))
        spacing *= 0.75
    return out


def place_sites(net: Network, layout: Layout, subdistricts: gpd.GeoDataFrame, footprint: Polygon,
                towns: list[Place], rng: np.random.Generator) -> list[Site]:
    """Pharmacy sites per sub-district (counts from :data:`SUBDISTRICTS`), with the planted situations:
    the dense core, the blank town kept clear, and the lobe cut off from its own bank."""
    streets = StreetIndex(net)
    poly = dict(zip(subdistricts["code"], subdistricts.geometry))
    cutoff = Point(CUTOFF_POINT)
    blank_zone = poly[PLANTED_SPEC["blank_town"]].buffer(1300)
    water = layout.river.buffer(RIVER_HALF_WIDTH + 12)
    rail = layout.rail.buffer(10)

    def ok_default(p: np.ndarray) -> bool:
        q = Point(p)
        return not (water.intersects(q) or rail.intersects(q) or blank_zone.intersects(q))

    def ok_south(p: np.ndarray) -> bool:  # no own-bank pharmacy near the cut-off neighbourhood
        return ok_default(p) and cutoff.distance(Point(p)) > CUTOFF_EXCLUSION

    placed: list[np.ndarray] = []
    sites: list[Site] = []
    # (f) across the river from the lobe: three pharmacies 300-500 m from 澜湾花园小区
    north_ring = cutoff.buffer(480).difference(cutoff.buffer(320))
    north_ring = north_ring.intersection(poly["990102006"].union(poly["990102007"]))  # north bank opposite
    sites += _sample_sites(streets, north_ring, 3, 90, placed, rng, ok_default, planted="across_river")
    for site in sites:
        site.subdistrict = next(c for c, g in poly.items() if g.contains(Point(site.xy)))
    # (c) the saturated core
    core_area = Point(CORE_CENTRE).buffer(CORE_RADIUS).intersection(poly[PLANTED_SPEC["saturated_core_street"]])
    for spec in SUBDISTRICTS:
        n = spec.pharmacies - sum(s.subdistrict == spec.code for s in sites)
        if spec.code == PLANTED_SPEC["saturated_core_street"]:
            area, spacing = core_area, 30.0
        elif spec.kind == "street":  # the built-up part of the street office
            area, spacing = poly[spec.code].intersection(footprint.buffer(-30)), 160.0
        else:
            town = next(t for t in towns if t.name == spec.name)
            area, spacing = Point(town.xy).buffer(0.8 * town_radius(town)).intersection(poly[spec.code]), 70.0
        south = not layout.north_of_river(*poly[spec.code].representative_point().coords[0])
        ok = ok_south if south else ok_default
        sites += _sample_sites(streets, area, n, spacing, placed, rng, ok, subdistrict=spec.code)
    return sites


def pharmacy_table(sites: list[Site], rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Names, addresses, services and management attributes for every site (local CRS, m).

    Services: personal account for nearly all; outpatient pooling about half; chronic disease mostly
    among those; dual channel only in four big chain stores (none in 青禾县, rule R2). Every street
    office gets a pharmacy with both outpatient pooling and chronic disease, except 柳湾街道 which has
    none with chronic disease (rule R1)."""
    kind = {s.code: s.kind for s in SUBDISTRICTS}
    rows = []
    used_names: set[str] = set()
    used_addr: set[str] = set()
    for site in sites:
        town = kind[site.subdistrict] == "town"
        chain = bool(rng.random() < (0.35 if town else 0.68))
        if chain:
            brand = CHAIN_BRANDS[int(rng.choice(len(CHAIN_BRANDS), p=CHAIN_WEIGHTS))]
            name = f"{brand}（{site.road}店）"
            k = 0
            while name in used_names:
                name = f"{brand}（{site.road}{ORDINALS[k]}店）"
                k += 1
        else:
            stem = next(s.name[:-1] for s in SUBDISTRICTS if s.code == site.subdistrict) if town else ""
            while True:
                name = stem + SINGLE_WORDS[int(rng.integers(len(SINGLE_WORDS)))] + \
                    SINGLE_SUFFIXES[int(rng.integers(len(SINGLE_SUFFIXES)))]
                if name not in used_names:
                    break
                stem = stem or ["老", "新", "大", "中"][int(rng.integers(4))]
        used_names.add(name)
        number = site.number
        while f"{site.road}{number}号" in used_addr:
            number += 2
        address = f"{site.road}{number}号"
        used_addr.add(address)
        pooling = bool(rng.random() < (0.45 if town else 0.56))
        chronic = bool((pooling and rng.random() < 0.55) or (not pooling and rng.random() < 0.04))
        volume = float(np.round(np.exp(rng.normal(math.log(650_000 if chain else 380_000), 0.55)), -2))
        rows.append({
            "subdistrict": site.subdistrict, "name": name, "address": address,
            "personal_account": bool(rng.random() > 0.012), "outpatient_pooling": pooling,
            "chronic_disease": chronic, "dual_channel": False, "chain": chain,
            "info_system_ready": bool(rng.random() > 0.05),
            "cross_region_settlement": bool(rng.random() > 0.06),
            "annual_volume_yuan": volume,
            "suspensions": int(rng.choice(3, p=[0.93, 0.055, 0.015])),
            "credit_score": float(np.round(np.clip(rng.normal(86, 6), 55, 100), 1)),
            "months_operating": int(rng.integers(4, 241)),
            "risk_flag": bool(rng.random() < 0.03),
            "planted": site.planted,
            "geometry": Point(site.xy),
        })
    df = gpd.GeoDataFrame(rows, geometry="geometry", crs=LOCAL_CRS)
    _plant_services(df)
    _plant_settlement(df, _rng("pharmacy-settlement"))
    return df


DUAL_CHANNEL_STREETS = ("990102003", "990102006", "990103003", "990111001")


def _plant_services(df: gpd.GeoDataFrame) -> None:
    """R1 / R2 by construction: fix services per street office and place the dual-channel stores."""
    kind = {s.code: s.kind for s in SUBDISTRICTS}
    r1 = PLANTED_SPEC["r1_no_chronic_street"]
    for code in sorted(df["subdistrict"].unique()):
        rows = df.index[df["subdistrict"] == code]
        if code == r1:
            df.loc[rows, "chronic_disease"] = False
            df.loc[rows[:3], "outpatient_pooling"] = True
        elif kind[code] == "street" and not (df.loc[rows, "outpatient_pooling"]
                                             & df.loc[rows, "chronic_disease"]).any():
            first = rows[df.loc[rows, "chain"].to_numpy().argmax()]
            df.loc[first, ["outpatient_pooling", "chronic_disease"]] = True
    for code in DUAL_CHANNEL_STREETS:
        rows = df.index[(df["subdistrict"] == code) & df["chain"]]
        best = df.loc[rows, "annual_volume_yuan"].idxmax()
        df.loc[best, ["dual_channel", "outpatient_pooling", "chronic_disease", "personal_account",
                      "info_system_ready", "cross_region_settlement"]] = True
        df.loc[best, "annual_volume_yuan"] = float(np.round(df.loc[best, "annual_volume_yuan"] * 3.5, -2))
    across = df.index[df["planted"] == "across_river"]
    df.loc[across, ["personal_account", "outpatient_pooling", "chronic_disease", "info_system_ready"]] = True


#: Settlement-status columns of the pharmacy table (planning.settlement.STATUS_COLUMNS).
SETTLEMENT_COLUMNS = ["info_system_accepted", "traceability_accepted", "agreement_status", "suspension_start",
                      "suspension_end", "earlier_suspensions", "principal_status"]


def _plant_settlement(df: gpd.GeoDataFrame, rng: np.random.Generator) -> None:
    """Settlement status by construction (planning.settlement), stable whatever the assessment date after
    2025-06-30: every pharmacy accepted its information system and traceability codes before the deadlines
    and settles, except

    - 望月街道: both chronic-disease pharmacies are suspended, one without the information-system
      upgrade (ST-info), one through its principal (ST-principal): R1 holds there only through them;
    - 文昌街道 (the saturated core): two terminated agreements (ST-terminated), one open-ended suspended
      agreement (ST-suspended), and two pharmacies without insurance turnover in the year (natural exit,
      MDJ-2025 art. 16), none of them with chronic disease."""
    n = len(df)
    df["info_system_ready"] = True
    info = pd.Timestamp("2024-09-01") + pd.to_timedelta(rng.integers(0, 290, n), unit="D")  # to 2025-06-17
    trace = pd.Timestamp("2024-10-01") + pd.to_timedelta(rng.integers(0, 170, n), unit="D")  # to 2025-03-19
    df["info_system_accepted"] = [d.date().isoformat() for d in info]
    df["traceability_accepted"] = [d.date().isoformat() for d in trace]
    df["agreement_status"] = "settling"
    df["suspension_start"] = None
    df["suspension_end"] = None
    df["earlier_suspensions"] = df["suspensions"]
    df["principal_status"] = "qualified"
    street = PLANTED_SPEC["r1_only_suspended_street"]
    chronic = df.index[(df["subdistrict"] == street) & df["chronic_disease"]]
    if len(chronic) != 2:
        raise RuntimeError(f"望月街道 should hold 2 chronic-disease pharmacies, not {len(chronic)}")
    df.loc[chronic[0], ["info_system_ready", "info_system_accepted"]] = [False, None]
    df.loc[chronic[1], "principal_status"] = "suspended"
    core = df.index[(df["subdistrict"] == PLANTED_SPEC["saturated_core_street"]) & ~df["chronic_disease"]
                    & ~df["dual_channel"]]
    df.loc[core[:2], "agreement_status"] = "terminated"
    df.loc[core[2], "agreement_status"] = "suspended"
    df.loc[core[3:5], "annual_volume_yuan"] = 0.0


# ====================================================================== writing
def _round_geometry(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """EPSG:4326 with coordinates rounded to 7 decimals (about 1 cm)."""
    out = gdf.to_crs("EPSG:4326")
    out["geometry"] = shapely.transform(out.geometry.values, lambda c: np.round(c, 7))
    return out


def _write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """GeoJSON through pyogrio with 7-decimal coordinates (the driver cannot overwrite in place)."""
    if path.exists():
        path.unlink()
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio", layer_options={"COORDINATE_PRECISION": "7"})


def cutoff_neighbourhood(layout: Layout) -> Polygon:
    """澜湾花园小区: about 220 m x 170 m of compounds on the lobe tip, on land (m)."""
    x, y = CUTOFF_POINT
    box = Polygon([(x - 115, y - 95), (x + 105, y - 85), (x + 110, y + 80), (x - 105, y + 90)])
    return box.difference(layout.river.buffer(RIVER_CUT + 15))


def worker_places() -> gpd.GeoDataFrame:
    """The demo's worker layer (local metres): the park of :data:`WORK_AREA` as a polygon, then the
    :data:`WORKPLACES` points; ``name``, ``kind`` and ``workers`` (persons)."""
    (x, y), (dx, dy) = WORK_AREA["centre"], WORK_AREA["half_size"]
    park = Polygon([(x - dx, y - dy), (x + dx, y - dy), (x + dx, y + dy), (x - dx, y + dy)])
    return gpd.GeoDataFrame(
        {"name": [WORK_AREA["name"], *(w[0] for w in WORKPLACES)],
         "kind": ["industrial", *(w[1] for w in WORKPLACES)],
         "workers": [float(WORK_AREA["workers"]), *(float(w[3]) for w in WORKPLACES)]},
        geometry=[park, *(Point(w[2]) for w in WORKPLACES)], crs=LOCAL_CRS)


def planted_summary(layout: Layout, counties, subdistricts, pharmacies, net: Network, special,
                    to_lonlat: Transformer) -> dict:
    """Where the planted situations are, with codes, ids and EPSG:4326 coordinates (for planted.json)."""
    def lonlat(x: float, y: float) -> list[float]:
        lon, lat = to_lonlat.transform(x, y)
        return [round(float(lon), 7), round(float(lat), 7)]

    sub = subdistricts.set_index("code")
    cty = counties.set_index("code")
    ph_sub = pharmacies["subdistrict"]
    core = PLANTED_SPEC["saturated_core_street"]
    blank = PLANTED_SPEC["blank_town"]
    cut_poly = cutoff_neighbourhood(layout)
    cut_pt = Point(CUTOFF_POINT)
    dist = pharmacies.distance(cut_pt)
    north = layout.north_of_river(pharmacies.geometry.x.to_numpy(), pharmacies.geometry.y.to_numpy())
    across = pharmacies[north & (dist < 500)].assign(distance_m=dist).sort_values("distance_m")
    own = pharmacies[~north].assign(distance_m=dist).sort_values("distance_m")
    def way_id(test) -> int:
        return next(i + 1 for i, (_, tags) in enumerate(net.ways) if test(tags))

    bridges = []
    for i, (nodes, tags) in enumerate(net.ways):
        if is_walkable(tags) and tags.get("bridge") == "yes" and LineString(net.xy[nodes]).intersects(layout.river):
            mid = LineString(net.xy[nodes]).interpolate(0.5, normalized=True)
            bridges.append({"way_id": i + 1, "name": tags.get("bridge:name", ""), "road": tags.get("name", ""),
                            "point": lonlat(mid.x, mid.y),
                            "distance_to_cutoff_m": round(float(mid.distance(cut_pt)))})
    bridges.sort(key=lambda b: b["distance_to_cutoff_m"])
    ring = np.asarray(cut_poly.exterior.coords)
    return {
        "city": {"name": CITY_NAME, "code": CITY_CODE, "fictional": True},
        "r1_no_chronic_street": {"code": PLANTED_SPEC["r1_no_chronic_street"],
                                 "name": sub.loc[PLANTED_SPEC["r1_no_chronic_street"], "name"], "rules": ["R1"],
                                 "pharmacies": int((ph_sub == PLANTED_SPEC["r1_no_chronic_street"]).sum())},
        "r2_no_dual_channel_county": {"code": PLANTED_SPEC["r2_no_dual_channel_county"],
                                      "name": cty.loc[PLANTED_SPEC["r2_no_dual_channel_county"], "name"],
                                      "rules": ["R2"]},
        "saturated_core_street": {"code": core, "name": sub.loc[core, "name"], "rules": ["B2"],
                                  "pharmacies": int((ph_sub == core).sum()),
                                  "population": int(sub.loc[core, "population"]),
                                  "area_km2": round(float(sub.loc[core, "geometry"].area) / 1e6, 2),
                                  "core_point": lonlat(*CORE_CENTRE), "core_radius_m": CORE_RADIUS},
        "blank_town": {"code": blank, "name": sub.loc[blank, "name"], "rules": ["R3"],
                       "population": int(sub.loc[blank, "population"]),
                       "nearest_pharmacy_m": round(float(pharmacies.distance(sub.loc[blank, "geometry"]).min()))},
        "fund_deficit_county": {"code": PLANTED_SPEC["fund_deficit_county"],
                                "name": cty.loc[PLANTED_SPEC["fund_deficit_county"], "name"], "rules": ["B3", "B4"]},
        "fund_forecast_county": {"code": PLANTED_SPEC["fund_forecast_county"],
                                 "name": cty.loc[PLANTED_SPEC["fund_forecast_county"], "name"], "rules": ["B4"]},
        "r1_only_suspended_street": {
            "code": PLANTED_SPEC["r1_only_suspended_street"],
            "name": sub.loc[PLANTED_SPEC["r1_only_suspended_street"], "name"], "rules": ["R1", "ST-info", "ST-principal"],
            "suspended_chronic_pharmacies": pharmacies.loc[
                (ph_sub == PLANTED_SPEC["r1_only_suspended_street"]) & pharmacies["chronic_disease"],
                "pharmacy_id"].tolist()},
        "settlement": {
            "suspended": pharmacies.loc[~pharmacies["info_system_ready"] | (pharmacies["principal_status"] != "qualified")
                                        | (pharmacies["agreement_status"] == "suspended"), "pharmacy_id"].tolist(),
            "terminated": pharmacies.loc[pharmacies["agreement_status"] == "terminated", "pharmacy_id"].tolist(),
            "natural_exit": pharmacies.loc[pharmacies["annual_volume_yuan"] <= 0, "pharmacy_id"].tolist()},
        "cutoff_neighbourhood": {
            "name": "澜湾花园小区", "rules": ["R3"],
            "subdistrict_code": str(subdistricts.loc[subdistricts.contains(cut_pt), "code"].iloc[0]),
            "point": lonlat(*CUTOFF_POINT),
            "polygon": [lonlat(x, y) for x, y in ring],
            "across_river_pharmacies": [{"pharmacy_id": r.pharmacy_id, "name": r.name,
                                         "distance_m": round(float(r.distance_m))} for r in across.itertuples()],
            "nearest_own_bank_pharmacy": {"pharmacy_id": own.iloc[0]["pharmacy_id"],
                                          "distance_m": round(float(own.iloc[0]["distance_m"]))},
            "walkable_river_bridges": bridges,
        },
        "work_area": {
            "name": WORK_AREA["name"], "subdistrict_code": WORK_AREA["subdistrict_code"],
            "rules": ["R3"], "workers": WORK_AREA["workers"],
            "point": lonlat(*WORK_AREA["centre"]),
            "polygon": [lonlat(*xy) for xy in worker_places().geometry.iloc[0].exterior.coords],
        },
        "traps": {
            "motorway_way_id": way_id(lambda t: t.get("highway") == "motorway"),
            "private_service_bridge_way_id": way_id(lambda t: t.get("access") == "private"),
            "foot_no_way_id": way_id(lambda t: t.get("foot") == "no"),
            "motorway_ramp_nodes": {k: int(v) + 1 for k, v in special["motorway_ramps"].items()},
        },
    }


def network_counts(net: Network) -> dict[str, int]:
    """Counts for the README: OSM nodes and ways, and walkable nodes of degree != 2."""
    deg = _degrees(len(net.xy), net.ways, only_walkable=True)
    return {"osm_nodes": len(net.xy), "osm_ways": len(net.ways),
            "walkable_ways": sum(is_walkable(t) for _, t in net.ways),
            "walkable_nodes_degree_not_2": int(((deg > 0) & (deg != 2)).sum()),
            "dead_ends": int((deg == 1).sum())}


def generate(out_dir: Path = OUT_DIR) -> dict:
    """Write network.osm.gz, counties/subdistricts/pharmacies/workers.geojson and planted.json into
    ``out_dir``; return the planted summary with network counts."""
    import json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    to_lonlat = Transformer.from_crs(LOCAL_CRS, "EPSG:4326", always_xy=True)
    layout = build_layout()
    counties, subdistricts = build_boundaries(layout)
    grid = build_arterial_grid(_rng("arterial-grid"))
    names = NameBook(_rng("street-names"))
    lines, footprint, towns = draw_streets(layout, grid, names)
    net = build_network(cut_barriers(lines, layout))
    special = add_special_ways(net, layout)
    sites = place_sites(net, layout, subdistricts, footprint, towns, _rng("pharmacy-sites"))
    pharmacies = pharmacy_table(sites, _rng("pharmacy-attributes"))
    counts = pharmacies["subdistrict"].value_counts()
    short = [s.name for s in SUBDISTRICTS if counts.get(s.code, 0) != s.pharmacies]
    if short or (pharmacies["planted"] == "across_river").sum() != 3:
        raise RuntimeError(f"could not place every pharmacy (sub-districts {short}); revise the layout")

    # ids: P + county code + serial, in sub-district order then placement order
    pharmacies["county"] = pharmacies["subdistrict"].str[:6]
    pharmacies = pharmacies.sort_values(["subdistrict"], kind="stable").reset_index(drop=True)
    serial = pharmacies.groupby("county").cumcount() + 1
    pharmacies.insert(0, "pharmacy_id", [f"P{c}{n:05d}" for c, n in zip(pharmacies["county"], serial)])
    summary = planted_summary(layout, counties, subdistricts, pharmacies, net, special, to_lonlat)
    summary["network"] = network_counts(net)

    write_osm(net, out_dir / NETWORK_FILE, to_lonlat)
    columns = ["pharmacy_id", "name", "address", "personal_account", "outpatient_pooling", "chronic_disease",
               "dual_channel", "chain", "info_system_ready", "cross_region_settlement", "annual_volume_yuan",
               "suspensions", "credit_score", "months_operating", "risk_flag", *SETTLEMENT_COLUMNS, "geometry"]
    _write_geojson(_round_geometry(pharmacies[columns].sort_values("pharmacy_id")), out_dir / PHARMACIES_FILE)
    _write_geojson(_round_geometry(subdistricts.sort_values("code")), out_dir / SUBDISTRICTS_FILE)
    _write_geojson(_round_geometry(counties.sort_values("code")), out_dir / COUNTIES_FILE)
    _write_geojson(_round_geometry(worker_places()), out_dir / WORKERS_FILE)
    (out_dir / "planted.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return summary


if __name__ == "__main__":
    import time

    t0 = time.perf_counter()
    result = generate()
    print(f"generated {OUT_DIR} in {time.perf_counter() - t0:.1f} s: {result['network']}")
