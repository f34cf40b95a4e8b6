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

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(_joined_coordinates(sys.argv[1:] if argv is None else list(argv)))
    progress = _Progress(quiet=args.quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if args.quiet else "default")
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
    parser = argparse.ArgumentParser(prog="pharmacy-plan", description="医保定点零售药店布局规划 / pharmacy planning")
    sub = parser.add_subparsers(required=True, metavar="{assess,check}")

    def common(p: argparse.ArgumentParser) -> None:
        source = p.add_argument_group("region (the demo or your files)")
        source.add_argument("--demo", action="store_true", help="use the embedded fictional demo region 示例市")
        source.add_argument("--pharmacies", type=Path, help="pharmacy table (CSV/XLSX/GeoJSON/GPKG)")
        source.add_argument("--subdistricts", type=Path, help="sub-district boundaries (GeoJSON/GPKG/zipped shapefile)")
        source.add_argument("--counties", type=Path, help="county boundaries (GeoJSON/GPKG/zipped shapefile)")
        source.add_argument("--population", type=Path, help="population per sub-district (CSV/XLSX)")
        source.add_argument("--fund", type=Path, help="county fund status table (CSV/XLSX)")
        source.add_argument("--network", type=Path, help="street network (.osm, .osm.gz, .osm.pbf, .graphml)")
        source.add_argument("--crs", default="wgs84", choices=["wgs84", "gcj02", "bd09"],
                            help="coordinate system of the pharmacy table (default wgs84)")
        source.add_argument("--boundary-crs", default="wgs84", choices=["wgs84", "gcj02", "bd09"],
                            help="datum offset of boundaries, buildings and population-grid points digitised on a "
                                 "Chinese web map (default wgs84; a file's own CRS is always honoured)")
        surface = p.add_argument_group("residents (default: each sub-district's population spread along its streets)")
        surface.add_argument("--population-grid", type=Path, metavar="PATH",
                             help="population grid: GeoTIFF of persons per cell, or points (CSV/XLSX/GeoJSON) with "
                                  "lon/lat and persons")
        surface.add_argument("--buildings", type=Path, metavar="PATH",
                             help="residential buildings (GeoJSON/GPKG/zipped shapefile), persons from a persons "
                                  "column or floor area")
        p.add_argument("--policy", default="default", help="preset (default, hunan-2025, mudanjiang-2025) or TOML file")
        p.add_argument("--minutes", type=float, help="walk budget in minutes (overrides the policy)")
        p.add_argument("--speed", type=float, help="walking speed in metres per minute (overrides the policy)")
        p.add_argument("--quiet", action="store_true", help="no progress messages")
        p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")

    assess_p = sub.add_parser("assess", help="assess a region and write the gap report, tables and map")
    common(assess_p)
    assess_p.add_argument("--out", type=Path, required=True, help="output folder")
    assess_p.add_argument("--split", action="store_true", help="one GeoJSON file per report layer")
    assess_p.add_argument("--lang", default="zh", choices=["zh", "en"], help="language of the HTML map")
    assess_p.set_defaults(run=_run_assess)

    check_p = sub.add_parser("check", help="check a candidate location for new designation")
    common(check_p)
    check_p.add_argument("--lon", type=float, required=True, help="longitude, degrees (in --point-crs)")
    check_p.add_argument("--lat", type=float, required=True, help="latitude, degrees (in --point-crs)")
    check_p.add_argument("--point-crs", default="wgs84", choices=["wgs84", "gcj02", "bd09"])
    check_p.add_argument("--services", default="outpatient_pooling",
                         help="comma-separated: personal_account, outpatient_pooling, chronic_disease, dual_channel")
    check_p.add_argument("--applicant", type=Path, help="JSON file with the applicant's record (CX-2022 art. 8, 13)")
    check_p.add_argument("--lang", default="zh", choices=["zh", "en"])
    check_p.add_argument("--json", action="store_true", help="print the result as JSON")
    check_p.set_defaults(run=_run_check)
    return parser


def _load(args, progress: _Progress):
    from planning.assess import assess
    from planning.network import load_network
    from planning.policy import load_policy

    policy = load_policy(args.policy)
    overrides = {k: v for k, v in (("walk_minutes", args.minutes), ("speed_m_per_min", args.speed)) if v is not None}
    if overrides:
        policy = policy.with_changes(**overrides)
    if args.population_grid is not None and args.buildings is not None:
        raise PlanningError("--population-grid 与 --buildings 只能选一个（两者都给会重复计算居民）",
                            "give --population-grid or --buildings, not both (residents would be counted twice)")
    with progress.step("读取地区 / reading region"):
        region = _region(args)
    points = None
    if args.population_grid is not None or args.buildings is not None:
        with progress.step("读取居民分布 / reading residents"):
            points = _resident_points(args)
        region = dataclasses.replace(region, rejected=_with_rejected(region.rejected, points))
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


def _region(args):
    if args.demo:
        from planning.demo import load_demo_region

        return load_demo_region()
    needed = {"--pharmacies": args.pharmacies, "--subdistricts": args.subdistricts, "--network": args.network}
    missing = [flag for flag, value in needed.items() if value is None]
    if missing:
        raise PlanningError(f"请使用 --demo，或提供 {', '.join(missing)}",
                            f"use --demo or give {', '.join(missing)}")
    from planning.ingest import build_region

    return build_region(pharmacies=args.pharmacies, subdistricts=args.subdistricts, counties=args.counties,
                        population=args.population, fund_status=args.fund, network=args.network, crs=args.crs,
                        boundary_crs=args.boundary_crs)


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
             ("population_points", args.population_grid), ("buildings", args.buildings)]
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

    assessment = _load(args, progress)
    out = args.out
    with progress.step(f"写出报告 / writing outputs to {out}"):
        geojson = report.write_gap_report(assessment, out / "gap_report.geojson", split=args.split)
        tables = report.write_tables(assessment, out)
        grids = report.write_walk_time_grids(assessment, out / "walk_time")
        html = report.write_html_map(assessment, out / "map.html", lang=args.lang)
    _print_rejected(args, assessment.region, out / "rejected.csv")
    summary = _summary(assessment)
    print(summary)
    for path in [*geojson, tables[0], html, *grids]:
        print(f"  {path}")
    return EXIT_OK


def _run_check(args, progress: _Progress) -> int:
    from planning.screening import check_location, validate_point

    validate_point(args.lon, args.lat)  # before any conversion or loading
    lon, lat = _to_wgs84(args.lon, args.lat, args.point_crs)
    validate_point(lon, lat)
    services = [s.strip() for s in args.services.split(",") if s.strip()]
    _check_services(services)
    applicant = _applicant(args.applicant) if args.applicant else None
    assessment = _load(args, progress)
    _print_rejected(args, assessment.region)
    result = check_location(assessment, lon, lat, services, applicant=applicant)
    if args.json:
        print(json.dumps(_strict_json(_check_json(result, args.lang)), ensure_ascii=False, indent=1, allow_nan=False))
        return EXIT_OK
    where = result.subdistrict_name or ("区域外" if args.lang == "zh" else "outside the region")
    print(f"{lon:.6f}, {lat:.6f} (WGS84) — {where}; {result.snap_m:.0f} m to the street")
    for verdict in result.verdicts.values():
        print(f"\n[{verdict.service.label(args.lang)}] {_verdict_label(verdict.verdict, args.lang)}")
        for finding in verdict.findings:
            print(f"  {finding.rule_id:5s} {finding.citation:28s} {finding.message(args.lang)}")
    if result.applicant_findings:
        print("\n" + ("申请人条件 (CX-2022)" if args.lang == "zh" else "Applicant (CX-2022)"))
        for finding in result.applicant_findings:
            print(f"  {finding.outcome:8s} {finding.citation:20s} {finding.message(args.lang)}")
    return EXIT_OK


def _to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    from planning.coords import to_wgs84

    x, y = to_wgs84(lon, lat, crs)
    return float(x), float(y)


def _check_services(services: list[str]) -> None:
    from planning.model import SERVICE_COLUMNS

    unknown = [s for s in services if s not in SERVICE_COLUMNS]
    if unknown or not services:
        raise PlanningError(f"未知业务：{unknown}（可用：{list(SERVICE_COLUMNS)}）",
                            f"unknown services {unknown} (use {list(SERVICE_COLUMNS)})")


def _applicant(path: Path):
    import datetime as dt

    from planning.screening import Applicant

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanningError(f"无法读取申请人文件 {path}：{exc}", f"cannot read applicant file {path}: {exc}") from exc
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


def _verdict_label(verdict: str, lang: str) -> str:
    zh = {"blocked": "禁止新增", "review": "需审核", "priority": "优先配置", "allowed": "允许"}
    return zh[verdict] if lang == "zh" else verdict


def _summary(assessment) -> str:
    sd = assessment.subdistricts
    failing_r1 = sd[sd["r1_ok"] == False]["name"].unique()  # noqa: E712
    counties = assessment.counties
    failing_r2 = counties[counties["r2_ok"] == False]["name"].unique()  # noqa: E712
    classes = sd[sd["service"] == "personal_account"]["class"].value_counts().to_dict()
    return (f"{assessment.region.name}: {len(sd['code'].unique())} sub-districts, {len(assessment.pharmacies)} pharmacies; "
            f"classes {classes}; R1 shortfalls: {list(failing_r1) or 'none'}; R2 shortfalls: {list(failing_r2) or 'none'}")


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
