"""Command line: ``pharmacy-plan assess`` writes the gap report and tables; ``pharmacy-plan check`` checks a location.

Exit codes: 0 done; 2 bad input or usage (a message in Chinese and English, no traceback);
1 an unexpected internal error (a one-line message; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from planning.errors import PlanningError
from planning.i18n import t
from planning.memory import keep_freed_memory
from planning.text import Text

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(_joined_coordinates(sys.argv[1:] if argv is None else list(argv)))
    keep_freed_memory()  # large arrays reuse freed pages (planning.memory)
    progress = _Progress(quiet=args.quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if args.quiet else "default")
            # rasterio's own calculate_default_transform multiplies Affine objects with `*` (affine 3.1):
            # not the planner's business (the same filter as in pyproject's pytest settings).
            warnings.filterwarnings("ignore", message=r"Use `@` matmul instead of `\*` mul operator",
                                    category=PendingDeprecationWarning)
            warnings.showwarning = progress.warning
            return args.run(args, progress)
    except PlanningError as exc:
        print(f"错误 / error: {exc.message_zh}\n               {exc.message_en}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("已中断 / interrupted", file=sys.stderr)
        return EXIT_INPUT
    except Exception as exc:  # noqa: BLE001 - the last line of defence for a planner's terminal
        if args.debug:
            raise
        print(f"内部错误 / internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
              file=sys.stderr)
        return EXIT_INTERNAL


def _joined_coordinates(argv: list[str]) -> list[str]:
    """``--lon -inf`` as ``--lon=-inf``: argparse takes a value starting with '-' that is not a plain
    negative number (``-inf``, ``-1e308``) for an option."""
    joined, i = [], 0
    while i < len(argv):
        if argv[i] in ("--lon", "--lat") and i + 1 < len(argv):
            joined.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            joined.append(argv[i])
            i += 1
    return joined


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pharmacy-plan", description="医保定点零售药店布局规划 / pharmacy planning",
                                     add_help=False)
    _help(parser)
    sub = parser.add_subparsers(required=True, metavar="{assess,check,add-user}")

    def common(p: argparse.ArgumentParser) -> None:
        _help(p)
        source = p.add_argument_group("地区（示例或自己的文件）/ region (the demo or your files)")
        source.add_argument("--demo", action="store_true", help="使用内置虚构示例市 / use the embedded fictional demo region 示例市")
        source.add_argument("--pharmacies", type=Path, help="定点药店表 / pharmacy table (CSV/XLSX/GeoJSON/GPKG)")
        source.add_argument("--subdistricts", type=Path,
                            help="街道/乡镇边界；osm = 取路网文件中闭合的乡镇/街道行政边界（admin_level 8）；不给则 R1、R2、分类、B2 "
                                 "不判定 / sub-district boundaries (GeoJSON/GPKG/zipped shapefile); osm = the network "
                                 "file's closed township relations (admin_level 8); without them R1, R2, the classes "
                                 "and B2 are not judged")
        source.add_argument("--counties", type=Path, help="区县边界 / county boundaries (GeoJSON/GPKG/zipped shapefile)")
        source.add_argument("--population", type=Path, help="各街道/乡镇人口 / population per sub-district (CSV/XLSX)")
        source.add_argument("--fund", type=Path, help="区县基金状况表 / county fund status table (CSV/XLSX)")
        source.add_argument("--network", type=Path, help="步行路网 / street network (.osm, .osm.gz, .osm.pbf, .graphml)")
        for flag, what in (("pharmacies", "药店"), ("subdistricts", "街道/乡镇"), ("counties", "区县")):
            source.add_argument(f"--{flag}-layer", metavar="LAYER",
                                help=f"{what}文件中要读的图层（GPKG 图层或 zip 中的 shapefile 名；默认第一个，并在摘要中说明）/ "
                                     f"layer of the --{flag} file to read (a GPKG layer or a shapefile name in the zip; "
                                     f"default the first, noted in the summary)")
        source.add_argument("--crs", default="auto", choices=["auto", "wgs84", "gcj02", "bd09"],
                            help="药店表坐标系（默认 auto：按与道路的吻合度和地址中的区县街道名判定，无法判定时按 WGS84）/ "
                                 "coordinate system of the pharmacy table (default auto: decided by the fit to the "
                                 "streets and the district names in the addresses; WGS84 when the data cannot tell)")
        source.add_argument("--trust-crs", action="store_true",
                            help="即使数据明显指向另一坐标系也按 --crs 读取 / keep the declared --crs even when the data "
                                 "clearly points to another datum (otherwise that stops with exit 2, naming the better "
                                 "datum and the figures)")
        source.add_argument("--boundary-crs", default="wgs84", choices=["wgs84", "gcj02", "bd09"],
                            help="边界、建筑和人口格网点的坐标系 / datum offset of boundaries, buildings and population-grid points digitised on a "
                                 "Chinese web map (default wgs84; a file's own CRS is always honoured)")
        surface = p.add_argument_group("居民分布（默认：人口沿街道/乡镇内道路分布）/ residents (default: each sub-district's population spread along its streets)")
        surface.add_argument("--population-grid", type=Path, metavar="PATH",
                             help="人口格网 / population grid: GeoTIFF of persons per cell, or points (CSV/XLSX/GeoJSON) with "
                                  "lon/lat and persons")
        surface.add_argument("--buildings", type=Path, metavar="PATH",
                             help="居住建筑 / residential buildings (GeoJSON/GPKG/zipped shapefile), persons from a persons "
                                  "column or floor area")
        surface.add_argument("--workplaces", type=Path, metavar="PATH",
                             help="就业人员（工作地）/ where people work: workplaces (CSV/XLSX with lon/lat, or GeoJSON/GPKG "
                                  "points or areas) or workers per sub-district (code or name + 就业人数), or 'osm' to "
                                  "estimate them from the network file's land use and buildings; counted by the policy's "
                                  "[demand] workers_weight (0 by default)")
        p.add_argument("--policy", default="default", help="策略预设或 TOML 文件 / preset (default, hunan-2025, mudanjiang-2025) or TOML file")
        p.add_argument("--minutes", type=float, help="步行时间（分钟）/ walk budget in minutes (overrides the policy)")
        p.add_argument("--speed", type=float, help="步行速度（米/分钟）/ walking speed in metres per minute (overrides the policy)")
        p.add_argument("--suspended-serve", action="store_true",
                       help="暂停结算的药店仍计入覆盖、R1/R2 与 B1 / suspended pharmacies still count for coverage, R1/R2 and B1 (policy suspended_serve)")
        p.add_argument("--assessment-date", type=_date, metavar="YYYY-MM-DD",
                       help="判定结算状态的日期（默认今天）/ the day the settlement status is judged on (default today)")
        p.add_argument("--quiet", action="store_true", help="不显示进度 / no progress messages")
        p.add_argument("--debug", action="store_true", help="显示内部错误的详细信息 / show tracebacks of internal errors")

    assess_p = sub.add_parser("assess", add_help=False, help="评估地区，写出缺口报告、统计表和地图 / assess a region and write the gap report, tables and map")
    common(assess_p)
    assess_p.add_argument("--out", type=Path, required=True, help="输出文件夹 / output folder")
    assess_p.add_argument("--split", action="store_true", help="每个图层一个 GeoJSON 文件 / one GeoJSON file per report layer")
    assess_p.add_argument("--lang", default="zh", choices=["zh", "en"],
                          help="输出语言（地图、tables.xlsx、报告）/ language of the map, tables.xlsx and report (default zh)")
    assess_p.add_argument("--report", action="store_true",
                          help="另写 Word 评估报告 report.docx / also write the Word assessment report report.docx")
    tiled = assess_p.add_argument_group(
        "分块并行（省级规模，Dask）/ tiled on Dask (province scale; also when --network is a network store folder)")
    tiled.add_argument("--workers", type=_positive_int, metavar="N",
                       help="本机并行进程数（启动本地 Dask 集群）/ worker processes of a local Dask cluster")
    tiled.add_argument("--scheduler", metavar="ADDRESS",
                       help="已有 Dask 集群的调度器地址 / address of a running Dask scheduler, e.g. tcp://host:8786")
    tiled.add_argument("--dashboard", metavar="HOST:PORT",
                       help="在此地址提供 Dask 监控面板（需安装 bokeh）/ serve the local cluster's Dask dashboard here, "
                            "e.g. 127.0.0.1:8787 (needs the bokeh package)")
    tiled.add_argument("--tile-km", type=float, metavar="KM",
                       help="把每个县再按此边长（公里）切块；默认按县分块，特大县按 40 公里 / cut every county into "
                            "squares of this side (km); default one tile per county, 40 km squares for very large ones")
    assess_p.set_defaults(run=_run_assess)

    check_p = sub.add_parser("check", add_help=False, help="核查候选地点能否新增定点 / check a candidate location for new designation")
    common(check_p)
    check_p.add_argument("--lon", type=float, required=True, help="经度（度，--point-crs 坐标系）/ longitude, degrees (in --point-crs)")
    check_p.add_argument("--lat", type=float, required=True, help="纬度（度，--point-crs 坐标系）/ latitude, degrees (in --point-crs)")
    check_p.add_argument("--point-crs", default="wgs84", choices=["wgs84", "gcj02", "bd09"],
                         help="经纬度的坐标系 / coordinate system of --lon/--lat (default wgs84)")
    check_p.add_argument("--services", default="outpatient_pooling",
                         help="申请的业务，逗号分隔 / services, comma-separated: 个人账户,门诊统筹,门诊慢特病,双通道 or "
                              "personal_account, outpatient_pooling, chronic_disease, dual_channel")
    check_p.add_argument("--applicant", type=Path, help="申请药店情况 JSON 文件 / JSON file with the applicant's record (CX-2022 art. 8, 13)")
    check_p.add_argument("--lang", default="zh", choices=["zh", "en"], help="输出语言 / output language (default zh)")
    check_p.add_argument("--json", action="store_true", help="以 JSON 输出 / print the result as JSON")
    check_p.set_defaults(run=_run_check)

    user_p = sub.add_parser("add-user", add_help=False,
                            help="添加或更新应用账户（密码以 bcrypt 散列保存）/ add or update an app account (bcrypt-hashed password)")
    _help(user_p)
    user_p.add_argument("name", help="用户名 / user name")
    user_p.add_argument("--role", default="viewer", choices=["viewer", "planner"],
                        help="viewer 只读；planner 可修改、核查、登记申请 / viewer reads; planner edits, checks, registers")
    user_p.add_argument("--accounts", type=Path,
                        help="账户文件（默认工作区文件夹中的 accounts.toml）/ accounts file (default accounts.toml in the workspace folder)")
    user_p.add_argument("--password-stdin", action="store_true",
                        help="从标准输入读取密码（脚本用）/ read the password from standard input (for scripts)")
    user_p.set_defaults(run=_run_add_user, quiet=False, debug=False)
    return parser


def _run_add_user(args, progress) -> int:
    import getpass

    from planning.accounts import accounts_path, add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("密码 / password: ")
        if getpass.getpass("再次输入 / again: ") != password:
            raise PlanningError("两次输入的密码不一致", "the two passwords differ")
    path = args.accounts or accounts_path()
    account = add_user(path, args.name, args.role, password)
    print(f"{account.name} ({account.role}) → {path}")
    return EXIT_OK


def _help(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-h", "--help", action="help", help="显示帮助并退出 / show this help and exit")


def _date(text: str):
    """A --assessment-date value: an ISO date."""
    import argparse
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期应为 YYYY-MM-DD：{text} / a date must be YYYY-MM-DD: {text}") from None


def _load(args, progress: _Progress):
    from planning.assess import assess
    from planning.network import load_network

    policy = _policy(args)
    if args.population_grid is not None and args.buildings is not None:
        raise PlanningError("--population-grid 与 --buildings 只能选一个（两者都给会重复计算居民）",
                            "give --population-grid or --buildings, not both (residents would be counted twice)")
    with progress.step("读取地区 / reading region"):
        region = _region(args)
    points = None
    if args.population_grid is not None or args.buildings is not None:
        with progress.step("读取居民分布 / reading residents"):
            points = _resident_points(args)
        from planning.ingest import population_from_points

        region = population_from_points(dataclasses.replace(region, rejected=_with_rejected(region.rejected, points)),
                                        points)
    if args.workplaces is not None:
        from planning.workers import load_workers

        with progress.step("读取就业人员 / reading workers"):
            region = load_workers(args.workplaces, region, crs=args.boundary_crs)
    with progress.step(f"加载路网 / loading network {Path(region.network_path).name}"):
        network = load_network(region.network_path)
    residents = None
    if points is not None:
        from planning.coverage import residents_from_points

        with progress.step(f"放置居民 / placing residents ({points.n_clean:,} {points.layer})"):
            residents = residents_from_points(network, region.subdistricts, points.clean, persons_column="persons")
    with progress.step(f"评估 / assessing ({network.n_nodes:,} nodes, {len(region.pharmacies)} pharmacies)"):
        assessment = assess(region, network, policy, residents=residents)
    return assessment


def _policy(args):
    """The policy preset or file with the command line's overrides."""
    from planning.policy import load_policy

    policy = load_policy(args.policy)
    overrides = {k: v for k, v in (("walk_minutes", args.minutes), ("speed_m_per_min", args.speed),
                                   ("assessment_date", args.assessment_date)) if v is not None}
    if args.suspended_serve:
        overrides["suspended_serve"] = True
    return policy.with_changes(**overrides) if overrides else policy


def _region(args):
    if args.demo:
        from planning.demo import load_demo_region

        return load_demo_region()
    needed = {"--pharmacies": args.pharmacies, "--network": args.network}
    missing = [flag for flag, value in needed.items() if value is None]
    if missing:  # the other layers are optional: without them their rules are not judged
        raise PlanningError(f"请使用 --demo，或提供 {', '.join(missing)}",
                            f"use --demo or give {', '.join(missing)}")
    from planning.ingest import OSM_BOUNDARIES, build_region, read_boundaries, read_pharmacies

    pharmacies, subdistricts, counties = args.pharmacies, args.subdistricts, args.counties
    if subdistricts is not None and str(subdistricts) == OSM_BOUNDARIES and not subdistricts.exists():
        subdistricts = OSM_BOUNDARIES  # the network file's township relations
    if args.pharmacies_layer is not None and pharmacies is not None:  # read here, with the layer chosen
        pharmacies = read_pharmacies(pharmacies, crs=args.crs, trust_crs=True, layer=args.pharmacies_layer)
    if args.subdistricts_layer is not None and subdistricts is not None:
        subdistricts = read_boundaries(subdistricts, level="subdistrict", crs=args.boundary_crs,
                                       layer=args.subdistricts_layer)
    if args.counties_layer is not None and counties is not None:
        counties = read_boundaries(counties, level="county", crs=args.boundary_crs, layer=args.counties_layer)
    return build_region(pharmacies=pharmacies, subdistricts=subdistricts, counties=counties,
                        population=args.population, fund_status=args.fund, network=args.network, crs=args.crs,
                        trust_crs=args.trust_crs, boundary_crs=args.boundary_crs)


def _resident_points(args):
    """The --population-grid or --buildings file as weighted points (an IngestResult with ``persons``)."""
    from planning.ingest import read_buildings, read_population_grid

    if args.population_grid is not None:
        points = read_population_grid(args.population_grid, crs=args.boundary_crs)
    else:
        points = read_buildings(args.buildings, crs=args.boundary_crs)
    if points.n_clean == 0:
        raise PlanningError(f"{points.source} 中没有可用的行（{points.n_rejected} 行被拒绝）",
                            f"{points.source} has no usable row ({points.n_rejected} rejected)")
    return points


def _with_rejected(rejected, points):
    """The region's rejected table with the rejected rows of the residents file appended."""
    import pandas as pd

    from planning.ingest import rejected_table

    extra = rejected_table(points)
    if not len(extra):
        return rejected
    return pd.concat([rejected, extra], ignore_index=True) if len(rejected) else extra


def _input_layers(args) -> list[str]:
    """The layers read from the user's files, in the order of the options."""
    given = [("pharmacies", args.pharmacies), ("subdistricts", args.subdistricts), ("counties", args.counties),
             ("population", args.population), ("fund_status", args.fund),
             ("population_points", args.population_grid), ("buildings", args.buildings),
             ("workers", args.workplaces if args.workplaces is not None and str(args.workplaces) != "osm" else None)]
    if args.demo:  # the demo's own layers are not the user's files
        given = given[5:]
    return [layer for layer, value in given if value is not None]


def _print_rejected(args, region, path: Path | None = None) -> None:
    """One line on stderr: rejected input rows per layer read from the user's files."""
    layers = _input_layers(args)
    if not layers:
        return
    counts = region.rejected["layer"].value_counts() if "layer" in region.rejected.columns else {}
    parts = ", ".join(f"{layer} {int(counts.get(layer, 0))}" for layer in layers)
    where = f" → {path}" if path is not None else ""
    print(f"拒绝的输入行 / rejected input rows: {parts}{where}", file=sys.stderr)


def _run_assess(args, progress: _Progress) -> int:
    from planning import report
    from planning.outputs import check_output_folder, final_path, staged_folder

    out = check_output_folder(args.out)  # before any work
    if _tiled(args):
        return _run_assess_tiled(args, progress, out)
    assessment = _load(args, progress)
    with progress.step(f"写出报告 / writing outputs to {out}"), staged_folder(out) as stage:
        geojson = report.write_gap_report(assessment, stage / "gap_report.geojson", split=args.split)
        tables = report.write_tables(assessment, stage, lang=args.lang)
        grids = report.write_walk_time_grids(assessment, stage / "walk_time")
        html = report.write_html_map(assessment, stage / "map.html", lang=args.lang)
        written = [*geojson, tables[0], html]
        if args.report:
            with progress.step(f"写出评估报告 / writing the assessment report {out / 'report.docx'}"):
                written.append(report.write_docx(assessment, stage / "report.docx", lang=args.lang))
        written = [final_path(p, stage, out) for p in [*written, *grids]]
    _print_rejected(args, assessment.region, out / "rejected.csv")
    from planning.present import summary_text

    print(summary_text(assessment, args.lang))
    for path in written:
        print(f"  {path}")
    return EXIT_OK


def _tiled(args) -> bool:
    """Whether ``assess`` runs tile by tile on Dask: asked for, or the network is a store folder."""
    from planning.netstore import is_store

    return bool(args.workers or args.scheduler or args.tile_km
                or (args.network is not None and is_store(args.network)))


def _run_assess_tiled(args, progress: _Progress, out: Path) -> int:
    from planning.outputs import final_path, staged_folder
    from planning.present import summary_text
    from planning.report_tiled import write_tiled
    from planning.tiles import assess_tiled

    if args.population_grid is not None or args.buildings is not None or args.workplaces is not None:
        raise PlanningError("分块评估暂不支持 --population-grid / --buildings / --workplaces（请用各街道/乡镇人口表）",
                            "a tiled assessment does not take --population-grid / --buildings / --workplaces yet "
                            "(give the population per sub-district)")
    policy = _policy(args)
    with progress.step("读取地区 / reading region"):
        region = _region(args)
    network = args.network if args.network is not None else region.network_path

    def tile_done(stage: str, tile_id: str, done: int, total: int) -> None:
        if not args.quiet:
            label = {"streets": "量路网 / streets measured", "assess": "评估 / assessed", "draw": "出图 / drawn"}[stage]
            print(f"  {label} {tile_id} ({done}/{total})", file=sys.stderr, flush=True)

    with staged_folder(out) as stage:
        with progress.step(f"分块评估 / assessing tile by tile ({len(region.subdistricts)} sub-districts, "
                           f"{len(region.pharmacies):,} pharmacies)"):
            tiled = assess_tiled(region, network, policy, workers=args.workers, scheduler=args.scheduler,
                                 grid_m=args.tile_km * 1000 if args.tile_km else None, work_dir=stage,
                                 progress=tile_done, dashboard=args.dashboard)
        with progress.step(f"写出结果 / writing outputs to {out}"):
            written = [final_path(p, stage, out) for p in write_tiled(tiled, stage, lang=args.lang)]
    _print_rejected(args, region, out / "rejected.csv")
    print(summary_text(tiled, args.lang))
    import resource

    worker_mb = max(r.peak_mb for r in tiled.results.values())
    main_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(Text(f"{len(tiled.tiles)} 个分块，用时 {tiled.seconds:,.0f} 秒；各分块峰值内存最高 {worker_mb:,.0f} MB；"
               f"主进程 {main_mb:,.0f} MB",
               f"{len(tiled.tiles)} tiles in {tiled.seconds:,.0f} s; highest tile peak memory {worker_mb:,.0f} MB; "
               f"main process {main_mb:,.0f} MB").get(args.lang))
    for path in written:
        print(f"  {path}")
    return EXIT_OK


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"应为正整数：{text} / must be a positive whole number: {text}")
    return value


def _run_check(args, progress: _Progress) -> int:
    from planning.screening import check_location, validate_point

    validate_point(args.lon, args.lat)  # before any conversion or loading
    lon, lat = _to_wgs84(args.lon, args.lat, args.point_crs)
    validate_point(lon, lat)
    services = _check_services(args.services)
    applicant = _applicant(args.applicant) if args.applicant else None
    assessment = _load(args, progress)
    _print_rejected(args, assessment.region)
    result = check_location(assessment, lon, lat, services, applicant=applicant)
    if args.json:
        print(json.dumps(_strict_json(_check_json(result, args.lang)), ensure_ascii=False, indent=1, allow_nan=False))
        return EXIT_OK
    where = result.subdistrict_name or Text("区域外", "outside the region").get(args.lang)
    to_street = Text("距最近可步行道路 {m:,.0f} 米", "{m:,.0f} m to the nearest walkable street").format(
        m=result.snap_m).get(args.lang)
    print(f"{lon:.6f}, {lat:.6f} (WGS84) — {where}; {to_street}")
    for verdict in result.verdicts.values():
        print(f"\n[{verdict.service.label(args.lang)}] {t('verdict_' + verdict.verdict, args.lang)}")
        for finding in verdict.findings:
            print(f"  {finding.rule_id:5s} {finding.citation:28s} {finding.message(args.lang)}")
    if result.applicant_findings:
        print("\n" + Text("申请人条件 (CX-2022)", "Applicant (CX-2022)").get(args.lang))
        for finding in result.applicant_findings:
            print(f"  {finding.outcome:8s} {finding.citation:20s} {finding.message(args.lang)}")
    return EXIT_OK


def _to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    from planning.coords import to_wgs84

    x, y = to_wgs84(lon, lat, crs)
    return float(x), float(y)


def _check_services(text: str) -> list[str]:
    """The services named in ``--services`` (machine names or Chinese / English words: 门诊统筹,慢特病),
    checked before any work; an unknown word stops with exit 2 naming it."""
    from planning.ingest import parse_services
    from planning.model import SERVICE_COLUMNS, service_labels

    found, unknown = parse_services(text)
    if unknown or not found:
        known = service_labels(SERVICE_COLUMNS, "zh")
        raise PlanningError(f"未知业务：{unknown or text}（可用：{known}，或 {', '.join(SERVICE_COLUMNS)}）",
                            f"unknown services {unknown or text} (use {', '.join(SERVICE_COLUMNS)})")
    return [s for s in SERVICE_COLUMNS if s in found]


def _applicant(path: Path):
    import datetime as dt

    from planning.screening import Applicant

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanningError(f"无法读取申请人文件 {path}：{exc}", f"cannot read applicant file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise PlanningError(f"申请人文件 {path} 应为一个 JSON 对象（{{\"键\": 值}}）",
                            f"the applicant file {path} must hold one JSON object ({{\"key\": value}})")
    known = {f.name for f in dataclasses.fields(Applicant)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PlanningError(f"申请人文件中有未知的键：{unknown}", f"unknown keys in the applicant file: {unknown} (known: {sorted(known)})")
    for key in [k for k in data if k.endswith("_dates")]:
        try:
            data[key] = tuple(dt.date.fromisoformat(d) for d in data[key])
        except (TypeError, ValueError) as exc:
            raise PlanningError(f"{key} 应为 YYYY-MM-DD 日期列表", f"{key} must be a list of YYYY-MM-DD dates") from exc
    return Applicant(**data)


def _check_json(result, lang: str) -> dict:
    return {
        "lon": result.lon, "lat": result.lat, "subdistrict": result.subdistrict_code, "county": result.county_code,
        "snap_m": round(result.snap_m, 1), "on_network": result.on_network,
        "verdicts": {s.value: {"verdict": v.verdict, "rule_ids": v.rule_ids,
                               "findings": [{"rule": f.rule_id, "citation": f.citation, "outcome": f.outcome,
                                             "message": f.message(lang), "numbers": f.numbers} for f in v.findings]}
                     for s, v in result.verdicts.items()},
        "applicant_eligible": result.applicant_eligible,
        "applicant_findings": [{"rule": f.rule_id, "citation": f.citation, "outcome": f.outcome,
                                "message": f.message(lang)} for f in result.applicant_findings],
    }


def _strict_json(value):
    """``value`` with every non-finite float (NaN, ±inf) as None, so the output is strict JSON."""
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value


class _Progress:
    """Stage messages with elapsed seconds on stderr (silent with --quiet)."""

    def __init__(self, *, quiet: bool):
        self.quiet = quiet

    @contextlib.contextmanager
    def step(self, label: str):
        start = time.perf_counter()
        if not self.quiet:
            print(f"… {label}", file=sys.stderr, flush=True)
        yield
        if not self.quiet:
            print(f"  ✓ {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)

    def warning(self, message, category, filename, lineno, file=None, line=None):
        if not self.quiet:
            print(f"  ! {category.__name__}: {message}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
