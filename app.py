"""Streamlit front end: a thin shell over ``planning``; start it with ``streamlit run app.py``.

Everything shown here comes from ``planning`` calls a notebook can make; this file only lays out
widgets, caches results and turns errors into messages (never tracebacks).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import threading
from pathlib import Path

import folium
import streamlit as st
from streamlit_folium import st_folium

from planning import report, workspace
from planning.accounts import (NOT_IDENTIFIED, accounts_path, gate, load_accounts, load_proxy, local_planner,
                               sign_in)
from planning.assess import assess
from planning.demo import load_demo_region
from planning.errors import PlanningError
from planning.i18n import t
from planning.memory import keep_freed_memory
from planning.ingest.datum import DatumMismatchError
from planning.maps import (ASSESSMENT_LAYERS, BASEMAPS, CLASS_VIEW_LAYERS, DEFAULT_LAYERS, add_basemap, assessment_layers, base_map,
                           checked_point_group, escape_user_text, overview_map, serve_scripts_from,
                           site_changes_group, use_local_leaflet, with_worker_layer)
from planning.memo import Deferred
from planning.model import Service
from planning.network import load_network, load_network_bytes
from planning.policy import load_policy
from planning.present import for_people, summary_text
from planning.register import Stage, from_check, recheck
from planning.register_xlsx import YES, register_table, styled_register, write_register_xlsx
from planning.review import exit_safety, pharmacies_to_watch, review_scenario
from planning.scenario import AddSite, RemoveSite, Scenario, nearest_site
from planning.screening import Applicant, check_location
from planning.text import Text
from planning.tiled_result import describe_saved, list_tiled_results, open_tiled, results_folder

keep_freed_memory()  # large arrays reuse freed pages (planning.memory)

st.set_page_config(page_title="医保定点药店规划 / Pharmacy planning", layout="wide")
lang = "en" if st.sidebar.radio("语言 / Language", ["中文", "English"], horizontal=True) == "English" else "zh"
SERVICES = list(Service)
MIN_MINUTES, MAX_MINUTES = 5, 30  # walk-time slider, minutes
MIN_SPEED, MAX_SPEED = 30.0, 120.0  # walking speed, metres per minute
#: Streamlit serves static/ at /app/static/; generated/ holds the street scripts (serve_scripts_from).
GENERATED_SCRIPTS, GENERATED_URL = Path(__file__).resolve().parent / "static" / "generated", "/app/static/generated"


# ----------------------------------------------------------------------------- cached library calls
@st.cache_resource(show_spinner=False)
def demo_inputs():
    region = load_demo_region()
    return region, load_network(region.network_path)


@st.cache_resource(show_spinner=False, max_entries=4)
def uploaded_inputs(key: str, _files: dict, crs: str, trust_crs: bool):
    from planning.ingest import build_region

    network_file = _files["network"]
    network = load_network_bytes(network_file.getvalue(), network_file.name)
    region = build_region(pharmacies=_files["pharmacies"], subdistricts=_files.get("subdistricts"),
                          counties=_files.get("counties"), population=_files.get("population"),
                          fund_status=_files.get("fund"), network=network, crs=crs, trust_crs=trust_crs)
    return region, network


@st.cache_resource(show_spinner=False, max_entries=2)
def opened_tiled(folder: str, stamp: int):
    """A saved tiled result (``stamp``: its manifest's modification time, so a result saved again is read
    again), shared by every session."""
    return open_tiled(folder)


@st.cache_resource(show_spinner=False, max_entries=4)
def tiled_detail(folder: str, stamp: int, county_code: str, _tiled):
    """One county of a tiled result assessed again as an ordinary assessment (its rows the merged ones)."""
    return _tiled.detail(county_code)


@st.cache_resource(show_spinner=False, max_entries=4)
def widest_assessment(region_key: str, cell_m: float, access_width_m: float, max_snap_m: float, _region, _network
                      ) -> Deferred:
    """The assessment at the sliders' farthest reach, built in the background after the first page is
    drawn (``start_widest``): once it is there, every other setting cuts its walk searches back instead of
    searching again (``assess(..., reuse=...)``, exact: equal to a fresh assessment), so moving a slider
    only re-thresholds. Until then a setting is assessed directly (the first page does not wait for it)."""
    policy = load_policy().with_changes(walk_minutes=MAX_MINUTES, speed_m_per_min=MAX_SPEED, cell_m=cell_m,
                                        access_width_m=access_width_m, max_snap_m=max_snap_m)
    return Deferred(lambda: assess(_region, _network, policy), name="widest-assessment")


@st.cache_resource(show_spinner=False, max_entries=16)
def cached_assessment(region_key: str, policy_name: str, minutes: float, speed: float, workers_weight: float,
                      _region, _network):
    policy = load_policy(policy_name).with_changes(walk_minutes=minutes, speed_m_per_min=speed)
    if workers_weight > 0:  # the slider's weight for every service; 0 keeps the policy's own
        policy = policy.with_changes(workers_weight={s: workers_weight for s in Service})
    widest = widest_assessment(region_key, policy.cell_m, policy.access_width_m, policy.max_snap_m, _region, _network)
    return assess(_region, _network, policy, reuse=widest.ready())


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_scenario(baseline_key: tuple, edits_key: str, service_value: str, _baseline, _edits: tuple):
    """The what-if of ``_edits`` on the baseline, and its diff for the shown service (zones are compared
    for that service only; coverage, classes and requirements for all)."""
    scenario = Scenario(_baseline).with_edits(*_edits)
    return scenario, scenario.diff(services=[service_value])


@st.cache_resource(show_spinner=False, max_entries=8)
def prepared_download(key: tuple, _assessment) -> bytes:
    """One download file of an assessment, built once for every session: ``key`` is (kind, region key,
    policy, minutes, speed, language, service) with kind geojson, xlsx, docx or html."""
    kind, lang_, service_ = key[0], key[-2], key[-1]
    if kind == "geojson":
        return report.gap_report_bytes(_assessment)
    if kind == "xlsx":
        return report.tables_xlsx_bytes(_assessment, lang=lang_)
    if kind == "docx":
        return report.docx_bytes(_assessment, lang=lang_)
    return report.html_map_string(_assessment, service=service_, lang=lang_).encode("utf-8")


def show_error(exc: Exception) -> None:
    if isinstance(exc, PlanningError):
        st.error(exc.message(lang))
    else:
        st.error(f"{t('error_internal', lang)} {type(exc).__name__}: {exc}")


# ----------------------------------------------------------------------------- who may use the app
try:
    accounts_file = accounts_path()
    accounts, proxy = load_accounts(accounts_file), load_proxy(accounts_file)
except PlanningError as exc:
    show_error(exc)
    st.stop()
serving = gate(st.get_option("server.address"), accounts, accounts_file, proxy)
if serving.refused:  # beyond loopback without accounts: nothing but how to set them up
    st.error(serving.reason.get(lang))
    st.stop()
# Streamlit reports a loopback peer (a proxy on this machine) as None.
proxied = proxy.user(st.context.ip_address or "127.0.0.1", st.context.headers.get_all(proxy.header)) if proxy else None
user = proxied or st.session_state.get("user", local_planner() if not serving.sign_in else None)
if user is None and not accounts:  # the proxy named no one and there is no account to sign in with
    st.error(NOT_IDENTIFIED.format(header=proxy.header).get(lang))
    st.stop()
if user is None:
    with st.form("sign_in"):
        st.subheader(t("sign_in", lang))
        name = st.text_input(t("user_name", lang))
        password = st.text_input(t("password", lang), type="password")
        if st.form_submit_button(t("sign_in", lang)):
            user = sign_in(accounts, name.strip(), password)
            if user is None:
                st.error(t("sign_in_wrong", lang))
            else:
                st.session_state["user"] = user
    if user is None:
        st.stop()
if serving.sign_in:
    st.sidebar.caption(t("signed_in_as", lang, name=user.name, role=t(f"role_{user.role}", lang)))
    if proxied is None:  # the proxy's users sign out at the proxy
        st.sidebar.button(t("sign_out", lang), on_click=lambda: st.session_state.pop("user", None))
can_write = user.can_write

# ----------------------------------------------------------------------------- sidebar controls
source = st.sidebar.radio(t("source", lang), ["demo", "upload", "tiled"], format_func=lambda s: t(f"source_{s}", lang))
tiled = saved = None
if source == "tiled":  # a province or city assessed tile by tile (pharmacy-plan assess --workers N --out ...)
    root = results_folder()
    found, unreadable = [], []
    for folder in list_tiled_results(root):
        try:
            found.append(describe_saved(folder))
        except PlanningError as exc:  # listed, never skipped in silence
            unreadable.append((folder, exc))
    for folder, exc in unreadable:
        st.sidebar.warning(f"{folder.name}: {exc.message(lang)}")
    if not found:
        st.info(t("tiled_none", lang, folder=root))
        st.stop()
    saved = st.sidebar.selectbox(t("tiled_result", lang), found, format_func=lambda r: r.label())
    try:
        with st.spinner(t("computing", lang)):
            tiled = opened_tiled(str(saved.folder), saved.stamp)
    except PlanningError as exc:
        show_error(exc)
        st.stop()
fixed = tiled is not None  # a tiled result keeps the policy it was run with
presets = ["default", "hunan-2025", "mudanjiang-2025"]
policy_name = st.sidebar.selectbox(t("policy", lang), presets, disabled=fixed)
minutes = st.sidebar.slider(t("minutes", lang), MIN_MINUTES, MAX_MINUTES, 15, step=1, disabled=fixed)
speed = st.sidebar.number_input(t("speed", lang), min_value=MIN_SPEED, max_value=MAX_SPEED, value=75.0, step=5.0,
                                disabled=fixed)
workers_weight = st.sidebar.slider(t("workers_weight", lang), 0.0, 1.0, 0.0, step=0.1, help=t("workers_weight_help", lang),
                                   disabled=fixed)
if fixed:
    policy_name, minutes, speed, workers_weight = (tiled.policy.policy_id, tiled.policy.walk_minutes,
                                                   tiled.policy.speed_m_per_min, 0.0)
    st.sidebar.caption(t("tiled_policy_note", lang, policy=Text(tiled.policy.title_zh, tiled.policy.title_en).get(lang),
                         minutes=minutes, speed=speed))
service = st.sidebar.selectbox(t("service", lang), SERVICES, index=1, format_func=lambda s: s.label(lang))
basemap = st.sidebar.selectbox(t("basemap", lang), BASEMAPS, format_func=lambda b: t(f"basemap_{b}", lang))
tianditu_key = st.sidebar.text_input(t("tianditu_key", lang), type="password") if basemap == "tianditu" else ""
VIEWS = {"view_decision": DEFAULT_LAYERS, "view_classes": CLASS_VIEW_LAYERS, "view_custom": None}
view = st.sidebar.radio(t("map_view", lang), list(VIEWS), format_func=lambda key: t(key, lang), horizontal=True)
shown_layers = VIEWS[view] or tuple(st.sidebar.multiselect(t("layers", lang), ASSESSMENT_LAYERS, default=DEFAULT_LAYERS,
                                                           format_func=lambda key: t(key, lang)))

# ----------------------------------------------------------------------------- the project (autosaved work)
try:
    # the project's name travels in the address (?project=...), so a reload or a shared link opens it again
    st.session_state.setdefault("project_name", st.query_params.get("project", "default"))
    project_name = st.sidebar.text_input(t("project", lang), key="project_name")
    st.query_params["project"] = project_name
    project = workspace.open(workspace.project_path(project_name), who=user.name, read_only=not can_write)
except PlanningError as exc:
    show_error(exc)
    st.stop()
st.sidebar.caption(t("project_file", lang, path=project.path))
with st.sidebar.expander(t("project_files", lang)):
    st.caption(t("projects_known", lang, names="、".join(p.stem for p in workspace.list_projects())))
    st.download_button(t("project_export", lang), project.export_bytes, file_name=project.path.name,
                       mime="application/vnd.sqlite3")
    new_name = st.text_input(t("project_new_name", lang), disabled=not can_write)

    def rename_project() -> None:
        """Button callback: runs before the rerun, so the project field can take the new name."""
        try:
            st.session_state["project_name"] = workspace.rename_project(project.path, new_name.strip()).path.stem
        except PlanningError as exc:
            st.session_state["rename_error"] = exc

    st.button(t("project_rename", lang), on_click=rename_project, disabled=not can_write or not new_name.strip())
    if "rename_error" in st.session_state:
        show_error(st.session_state.pop("rename_error"))
    imported = st.file_uploader(t("project_import", lang), type=["sqlite"], key="project_import", disabled=not can_write)
    if imported is not None and st.session_state.get("imported_project") != imported.file_id:
        st.session_state["imported_project"] = imported.file_id  # import an upload once, not on every rerun
        try:
            target = workspace.import_project(imported.getvalue(), workspace.project_path(Path(imported.name).stem))
            st.success(t("project_imported", lang, name=target.path.stem))
        except PlanningError as exc:
            show_error(exc)
if can_write and project.policy() != (policy_name, {"walk_minutes": minutes, "speed_m_per_min": speed}):
    project.set_policy(policy_name, {"walk_minutes": minutes, "speed_m_per_min": speed})

# ----------------------------------------------------------------------------- inputs
try:
    if source == "demo":
        region, network = demo_inputs()
        region_key = "demo"
    elif source == "tiled":
        names = dict(zip(tiled.region.counties["code"], tiled.region.counties["name"]))
        county_code = st.sidebar.selectbox(t("tiled_county", lang), list(names), format_func=lambda c: f"{names[c]} ({c})")
    else:
        files = {
            "pharmacies": st.sidebar.file_uploader(t("upload_pharmacies", lang), type=["csv", "xlsx", "geojson", "json", "gpkg"]),
            "subdistricts": st.sidebar.file_uploader(t("upload_subdistricts", lang), type=["geojson", "json", "gpkg", "zip"]),
            "counties": st.sidebar.file_uploader(t("upload_counties", lang), type=["geojson", "json", "gpkg", "zip"]),
            "population": st.sidebar.file_uploader(t("upload_population", lang), type=["csv", "xlsx"]),
            "fund": st.sidebar.file_uploader(t("upload_fund", lang), type=["csv", "xlsx"]),
            "network": st.sidebar.file_uploader(t("upload_network", lang), type=["osm", "gz", "bz2", "pbf"]),
        }
        crs = st.sidebar.selectbox(t("coord_system", lang), ["auto", "wgs84", "gcj02", "bd09"])
        files = {k: v for k, v in files.items() if v is not None}
        if not {"pharmacies", "network"} <= set(files):
            st.info(t("upload_needed", lang))
            st.stop()
        digest = hashlib.sha256(b"".join(f.getvalue() for f in files.values()) + crs.encode()).hexdigest()
        if can_write:
            project.keep_inputs({role: (f.name, f.getvalue()) for role, f in files.items()})
        choice = st.session_state.get(f"datum_choice_{digest}")
        try:
            region, network = uploaded_inputs(digest, files, choice or crs, choice == crs)
        except DatumMismatchError as mismatch:  # a visible choice with the figures, not a log line
            decision = mismatch.decision
            st.warning(mismatch.message(lang))
            options = [decision.found.value, decision.declared.value]
            labels = {decision.found.value: t("datum_use_found", lang).format(datum=decision.found.label(lang)),
                      decision.declared.value: t("datum_keep_declared", lang).format(
                          datum=decision.declared.label(lang))}
            picked = st.radio(t("datum_choice", lang), options, format_func=labels.get, key=f"datum_radio_{digest}",
                              index=None)
            if picked is None:
                st.stop()
            st.session_state[f"datum_choice_{digest}"] = picked
            region, network = uploaded_inputs(digest, files, picked, picked == crs)
        region_key = f"{digest}-{choice or crs}"
        if region.completeness is not None:
            with st.expander(t("completeness", lang), expanded=bool(region.completeness.missing
                                                                    or region.completeness.warnings)):
                st.dataframe(region.completeness.table(lang), hide_index=True)
                if region.completeness.datum is not None:
                    st.caption(region.completeness.datum.message(lang))
                for warning in region.completeness.warnings:
                    st.warning(Text.parse(warning).get(lang))
    with st.spinner(t("computing", lang)):
        if tiled is not None:  # the county's tile assessed again; every view below reads this assessment
            assessment = tiled_detail(str(saved.folder), saved.stamp, county_code, tiled)
            region, network = assessment.region, assessment.network
            region_key = f"tiled-{saved.folder.name}-{saved.stamp}-{county_code}"
        else:
            assessment = cached_assessment(region_key, policy_name, float(minutes), float(speed),
                                           float(workers_weight), region, network)
except Exception as exc:  # noqa: BLE001 - a planner's upload must never end in a traceback (st.stop is not an Exception)
    show_error(exc)
    st.stop()

# ----------------------------------------------------------------------------- what-if edits (per region, in the project)
what_if = f"what-if {region_key}"
edits = project.edits(what_if)
scenario = change = None
if edits:
    try:
        with st.spinner(t("computing", lang)):
            scenario, change = cached_scenario((region_key, policy_name, minutes, speed, workers_weight), repr(edits), service.value,
                                               assessment, edits)
    except PlanningError as exc:  # an edit no longer fits (e.g. its pharmacy is gone): drop it and say why
        show_error(exc)
        if can_write:
            project.undo_edit(what_if)
        edits = ()
use_scenario = scenario is not None and st.sidebar.toggle(t("scenario_show", lang), value=True)
shown = scenario.assess() if use_scenario else assessment
if scenario is not None:
    st.sidebar.caption(t("scenario_caption", lang, n=len(edits)))


def add_edit(edit) -> None:
    """Button callback: runs before the rerun the click starts, so that rerun already shows the edit."""
    project.append_edit(what_if, edit)


def undo_edit() -> None:
    project.undo_edit(what_if)  # nothing to undo: nothing happens


def new_site_id(current_edits) -> str:
    """A site id free in the baseline and in the edits saved so far (by this or another session)."""
    taken = set(assessment.region.pharmacies["pharmacy_id"]) | {getattr(e, "pharmacy_id", "") for e in current_edits}
    return next(f"NEW-{n}" for n in range(1, len(taken) + 2) if f"NEW-{n}" not in taken)


def what_if_buttons(lon: float, lat: float) -> None:
    """Under a map click: add a pharmacy at the point, or withdraw the pharmacy next to it (what-if)."""
    with st.container(border=True):
        chosen = st.multiselect(t("scenario_add_services", lang), SERVICES, default=[service],
                                format_func=lambda s: s.label(lang), key="what_if_services")
        left, right = st.columns(2)
        left.button(t("scenario_add", lang), disabled=not chosen or not can_write, on_click=add_edit,
                    args=(lambda current: AddSite(new_site_id(current), lon, lat, tuple(s.value for s in chosen)),))
        near = nearest_site(shown, lon, lat)
        if near is not None:
            right.button(t("scenario_withdraw", lang, name=near["name"], distance=near["distance_m"]),
                         on_click=add_edit, args=(RemoveSite(near["pharmacy_id"]),), disabled=not can_write)


st.title(t("app_title", lang))
whole_region = tiled.region if tiled is not None else region
st.caption(whole_region.name + (f" — {t('fictional_note', lang)}" if whole_region.fictional else ""))
if tiled is not None:  # the figures below are the detail's: its county and the areas around it
    st.info(t("tiled_detail_caption", lang, county=f"{names[county_code]} ({county_code})",
              tile=tiled.tile_of(county_code).tile_id))
columns = st.columns(4)
columns[0].metric(t("counties", lang), len(region.counties))
columns[1].metric(t("subdistricts", lang), len(region.subdistricts))
added = len(shown.region.pharmacies) - len(region.pharmacies)  # a what-if shown on the map changes the count
columns[2].metric(t("pharmacies", lang), len(shown.region.pharmacies), delta=added or None)
columns[3].metric(t("population", lang), f"{int(shown.region.subdistricts['population'].sum()):,}"
                  if shown.region.population_known else t("population_unknown", lang))
st.sidebar.caption(t("network_summary", lang, nodes=network.n_nodes, edges=network.n_edges,
                     km=network.edge_length.sum() / 1000, pieces=network.n_components))


def show_check(lon: float, lat: float, services, applicant: Applicant | None = None, *, save: bool = True) -> None:
    """The verdict of a point, saved in the project's check history when ``save``."""
    result = check_location(shown, lon, lat, services, applicant=applicant)
    if save and can_write:
        project.record_check(result, applicant)
    where = result.subdistrict_name or "—"
    st.markdown(f"**{t('check_point', lang)}**: {lon:.6f}, {lat:.6f} (WGS84) · {where}")
    for verdict in result.verdicts.values():
        label = t(f"verdict_{verdict.verdict}", lang)
        rules = ", ".join(verdict.rule_ids) or "—"
        st.markdown(Text(f"### {verdict.service.label_zh}：{label}（{rules}）",
                         f"### {verdict.service.label_en}: {label} ({rules})").get(lang))
        st.markdown("\n".join(f"- **{f.rule_id}** · {f.citation or '—'} · {f.message(lang)}" for f in verdict.findings)
                    or "-")
    if result.applicant_eligible is not None:
        (st.success if result.applicant_eligible else st.error)(
            t("eligible_yes" if result.applicant_eligible else "eligible_no", lang))
        st.markdown("\n".join(f"- {f.outcome} · **{f.rule_id}** · {f.citation} · {f.message(lang)}"
                               for f in result.applicant_findings))


tab_keys = ["tab_overview"] * (tiled is not None) + ["tab_map", "tab_check", "tab_scenario", "tab_register", "tab_tables",
                                                     "tab_downloads"]
tabs = dict(zip(tab_keys, st.tabs([t(key, lang) for key in tab_keys])))
tab_map, tab_check, tab_scenario, tab_register, tab_tables, tab_downloads = (tabs[k] for k in tab_keys[-6:])

if tiled is not None:
    with tabs["tab_overview"]:
        columns = st.columns(4)
        columns[0].metric(t("tiled_tiles", lang), len(tiled.tiles))
        columns[1].metric(t("counties", lang), len(tiled.region.counties))
        columns[2].metric(t("subdistricts", lang), len(tiled.region.subdistricts))
        columns[3].metric(t("pharmacies", lang), len(tiled.region.pharmacies))
        st.caption(t("tiled_run", lang, saved=saved.saved.replace("T", " "), tiles=len(tiled.tiles), seconds=tiled.seconds,
                     peak=max(r.peak_mb for r in tiled.results.values()), folder=saved.folder))
        overview = overview_map(tiled, service=service, lang=lang)
        escape_user_text(overview)
        st_folium(serve_scripts_from(use_local_leaflet(overview), GENERATED_SCRIPTS, GENERATED_URL), height=520,
                  use_container_width=True, returned_objects=[], key=f"overview-{service.value}-{lang}")
        st.subheader(t("tiled_counties_table", lang))
        st.dataframe(for_people(tiled.counties[tiled.counties["service"] == service.value], lang), hide_index=True,
                     width="stretch")
        with st.expander(t("tiled_summary", lang)):
            st.text(summary_text(tiled, lang))

with tab_map:
    try:
        # The base (streets, boundaries, legend) stays the same across reruns, so the browser keeps it;
        # the assessment's layers (classes, circles, zones, pharmacies on top) travel as feature groups.
        if VIEWS[view] is not None:  # the preset views show where people work, when it is known
            shown_layers = with_worker_layer(shown_layers, region)
        fmap = base_map(region, service=service, network=network if basemap == "none" else None, lang=lang,
                        layer_control=False, layers=tuple(shown_layers))
        add_basemap(fmap, basemap, tianditu_key=tianditu_key)
        layers = assessment_layers(shown, service=service, lang=lang, layers=tuple(shown_layers))
        if use_scenario:
            layers.append(site_changes_group(change, lang))
        map_key = f"map-{service.value}-{lang}-{basemap}"
        # The click that started this rerun is already in the component's state: mark it on this map.
        previous_click = (st.session_state.get(map_key) or {}).get("last_clicked")
        if previous_click:
            layers.append(checked_point_group(previous_click["lng"], previous_click["lat"], lang))
    except PlanningError as exc:
        show_error(exc)
        st.stop()
    for element in (fmap, *layers):  # user names in layers made outside planning.maps (site changes)
        escape_user_text(element)
    # the verdict of a click beside the map, in view without scrolling (1400 x 900)
    map_column, verdict_column = st.columns([3, 1])
    with map_column:
        clicked = st_folium(serve_scripts_from(use_local_leaflet(fmap), GENERATED_SCRIPTS, GENERATED_URL),
                            feature_group_to_add=layers,
                            layer_control=folium.LayerControl(collapsed=False), height=600, use_container_width=True,
                            returned_objects=["last_clicked"], key=map_key)
        st.caption(t("map_parameters", lang, policy=policy_name, minutes=minutes, speed=speed))
        point = (clicked or {}).get("last_clicked")
        if point:  # the what-if buttons of the clicked place, under the map (they need its width)
            what_if_buttons(point["lng"], point["lat"])
    with verdict_column, st.container(key="verdict-panel"):
        if point:
            # the component repeats its last click on every rerun: save a click once
            click = (point["lng"], point["lat"], service.value)
            new_click, st.session_state["saved_click"] = st.session_state.get("saved_click") != click, click
            show_check(point["lng"], point["lat"], [service], save=new_click)
        else:
            st.info(t("verdict_panel_hint", lang))

with tab_check:
    with st.form("check"):
        c1, c2, c3 = st.columns(3)
        centre = region.counties.union_all().representative_point()
        lon = c1.number_input(t("lon", lang), value=round(centre.x, 6), format="%.6f")
        lat = c2.number_input(t("lat", lang), value=round(centre.y, 6), format="%.6f")
        crs_point = c3.selectbox(t("coord_system", lang), ["wgs84", "gcj02", "bd09"])
        chosen = st.multiselect(t("check_services", lang), SERVICES, default=[service], format_func=lambda s: s.label(lang))
        with st.expander(t("applicant", lang)):
            use_applicant = st.checkbox(t("include_applicant", lang))
            a1, a2, a3 = st.columns(3)
            months = a1.number_input(t("months_operating", lang), 0, 600, 6)
            pharmacists = a2.number_input(t("pharmacists", lang), 0, 50, 1)
            pharmacist_months = a3.number_input(t("pharmacist_months", lang), 0, 120, 12)
            administrators = a1.number_input(t("administrators", lang), 0, 50, 2)
            administrator_months = a2.number_input(t("administrator_months", lang), 0, 120, 12)
            info_system = a3.checkbox(t("info_system", lang), value=True)
            unpaid = a1.checkbox(t("unpaid_penalties", lang))
            dishonest = a2.checkbox(t("dishonest", lang))
            violation = a3.date_input(t("violation_date", lang), value=None, max_value=dt.date.today())
        submitted = st.form_submit_button(t("run_check", lang))
    if submitted:
        try:
            from planning.coords import to_wgs84

            x, y = to_wgs84(lon, lat, crs_point)
            applicant = Applicant(
                months_operating=int(months), licensed_pharmacists=int(pharmacists),
                pharmacist_contract_months=int(pharmacist_months), insurance_administrators=int(administrators),
                administrator_contract_months=int(administrator_months), info_system_ready=info_system,
                unpaid_penalties=unpaid, on_dishonest_list=dishonest,
                violation_termination_dates=(violation,) if violation else (),
            ) if use_applicant else None
            show_check(float(x), float(y), chosen or [service], applicant)
        except PlanningError as exc:
            show_error(exc)
    st.subheader(t("check_history", lang))
    history = project.checks_table(lang)
    if len(history):
        st.dataframe(history, hide_index=True, width="stretch")
    else:
        st.caption(t("no_checks", lang))

with tab_scenario:
    if scenario is None:
        st.info(t("scenario_empty", lang))
    else:
        st.subheader(t("scenario_edits", lang))
        st.dataframe(for_people(scenario.describe(lang), lang), hide_index=True, width="stretch")
        left, right = st.columns(2)
        left.button(t("scenario_undo", lang), on_click=undo_edit, disabled=not can_write)
        right.button(t("scenario_clear", lang), on_click=lambda: project.set_edits(what_if, ()), disabled=not can_write)
        for title, table in (("scenario_summary", change.summary), ("scenario_classes", change.class_changes),
                             ("scenario_requirements", change.requirements), ("scenario_zones", change.zones)):
            st.subheader(t(title, lang))
            if len(table):
                st.dataframe(for_people(table, lang), hide_index=True, width="stretch")
            else:
                st.caption(t("scenario_no_change", lang))
        st.download_button(t("download_diff", lang), lambda: json.dumps(change.to_geojson(), ensure_ascii=False),
                           file_name="what_if_changes.geojson", mime="application/geo+json")
        st.download_button(t("download_whatif_docx", lang), lambda: report.scenario_docx_bytes(change, lang=lang),
                           file_name="what_if_report.docx",
                           mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    with st.form("review"):
        st.subheader(t("review_title", lang))
        lowest = st.number_input(t("review_lowest", lang), min_value=0, max_value=50, value=0, step=1)
        if st.form_submit_button(t("review_button", lang), disabled=not can_write):
            try:
                review = review_scenario(assessment, lowest=int(lowest))
            except PlanningError as exc:
                show_error(exc)
            else:
                project.set_edits(what_if, review.scenario.edits)
                st.session_state[f"review_exits {what_if}"] = (tuple(review.scenario.edits), review.exit_table)
                st.rerun()
    review_edits, exit_table = st.session_state.get(f"review_exits {what_if}", ((), None))
    if exit_table is not None and review_edits == tuple(edits):
        st.subheader(t("review_exits", lang))
        if len(exit_table):
            st.dataframe(for_people(exit_safety(assessment, change, exit_table), lang), hide_index=True,
                         width="stretch")
        else:
            st.caption(t("review_none", lang))
    with st.form("withdraw"):
        # The scenario's pharmacies even when the map shows the baseline: one cannot withdraw a site twice.
        pharmacies = (scenario.assess() if scenario is not None else assessment).region.pharmacies
        names = dict(zip(pharmacies["pharmacy_id"], pharmacies["name"]))
        picked = st.multiselect(t("scenario_withdraw_pick", lang), list(names),
                                format_func=lambda i: f"{names[i]} ({i})")
        if st.form_submit_button(t("scenario_withdraw_pick", lang), disabled=not can_write) and picked:
            for pharmacy_id in picked:
                project.append_edit(what_if, RemoveSite(pharmacy_id))
            st.rerun()  # the form's values are known only now, below the map that should show them

with tab_register:
    today = dt.date.today()
    checks = {c.check_id: c for c in project.checks()}
    with st.expander(t("register_save", lang), expanded=not project.applications()):
        with st.form("register_save"):
            check_id = st.selectbox(t("register_check", lang), sorted(checks, reverse=True),
                                    format_func=lambda i: f"#{i} · {checks[i].checked_at} · "
                                                          f"{checks[i].result.lon:.6f}, {checks[i].result.lat:.6f}")
            applicant_name = st.text_input(t("register_applicant", lang))
            address = st.text_input(t("register_address", lang))
            received = st.date_input(t("register_received", lang), value=today)
            if st.form_submit_button(t("register_save", lang), disabled=not can_write) and check_id is not None:
                application = from_check(checks[check_id].result, app_id=project.new_application_id(),
                                         applicant=applicant_name, address=address, received=received)
                project.save_application(application)
                st.success(t("register_saved", lang, app_id=application.app_id))
    applications = {a.app_id: a for a in project.applications()}
    if applications:
        with st.expander(t("register_advance", lang)):
            with st.form("register_advance"):
                app_id = st.selectbox(t("register_application", lang), list(applications),
                                      format_func=lambda i: f"{i} · {applications[i].applicant}")
                stage = st.selectbox(t("register_stage", lang), list(Stage), format_func=lambda s: s.label(lang))
                on = st.date_input(t("register_stage_date", lang), value=today)
                rule_id = st.text_input(t("register_rule", lang))
                published = st.checkbox(t("register_published", lang))
                if st.form_submit_button(t("register_advance", lang), disabled=not can_write):
                    try:
                        application = applications[app_id]
                        application = (application.published(on) if published else
                                       application.advanced(stage, on, rule_id=rule_id.strip()))
                        project.save_application(application)
                        applications[app_id] = application
                    except PlanningError as exc:  # a date before the last stage's, or not in publication
                        show_error(exc)
        changed = {i: any(c.changed for c in recheck(a, assessment)) for i, a in applications.items()}
        table = register_table(list(applications.values()), today, lang, changed)
        overdue = int((table["overdue"] == YES.get(lang)).sum())
        if overdue:
            st.error(t("register_overdue", lang, n=overdue))
        if any(changed.values()):
            st.warning(t("register_changed", lang, n=sum(changed.values())))
        st.dataframe(styled_register(table, lang), hide_index=True, width="stretch")
        workbook = io.BytesIO()
        write_register_xlsx(list(applications.values()), workbook, today, lang=lang, changed=changed)
        st.download_button(t("download_register", lang), workbook.getvalue(), file_name="register.xlsx",
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    else:
        st.info(t("register_empty", lang))

with tab_tables:
    st.subheader(t("requirements_sd", lang))
    table = assessment.subdistricts[assessment.subdistricts["service"] == service.value]
    st.dataframe(for_people(table, lang), hide_index=True, width="stretch")
    st.subheader(t("requirements_county", lang))
    counties = assessment.counties[assessment.counties["service"] == service.value]
    st.dataframe(for_people(counties, lang), hide_index=True, width="stretch")
    st.subheader(t("pharmacies_to_watch", lang))
    st.dataframe(for_people(pharmacies_to_watch(assessment), lang), hide_index=True, width="stretch")
    st.subheader(t("rejected_rows", lang))
    if len(region.rejected):
        st.dataframe(for_people(region.rejected, lang), hide_index=True, width="stretch")
    else:
        st.caption(t("no_rejected", lang))


@st.cache_resource(show_spinner=False)
def report_libraries_loading() -> threading.Thread:
    """Once per server, after its first page is drawn: the Word report's libraries loaded in a background
    thread (:func:`planning.report.load_libraries`), so that the first report download does not wait 1.2 s
    for them."""
    loading = threading.Thread(target=report.load_libraries, name="load-report-libraries", daemon=True)
    loading.start()
    return loading


@st.fragment
def downloads_tab(assessment, assessment_key: tuple, service: Service) -> None:
    """The downloads of ``assessment`` (``assessment_key``: region key, policy, minutes, speed), as a
    fragment: pressing a prepare button reruns this tab only, not the map and tables above it (a full
    rerun added about 1.5 s to each download on the demo)."""
    stem = "demo" if assessment_key[0] == "demo" else "region"
    # Each file is built when its button is pressed, under a progress indicator, and kept for every
    # session asking for the same assessment (prepared_download); then it downloads at once.
    ready = st.session_state.setdefault("downloads_ready", set())
    for kind, label, file_name, mime in (
            ("geojson", t("download_geojson", lang), f"{stem}_gap_report.geojson", "application/geo+json"),
            ("xlsx", t("download_xlsx", lang), f"{stem}_tables.xlsx",
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            ("docx", t("download_docx", lang), f"{stem}_report.docx",
             "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            ("html", t("download_html", lang), f"{stem}_map.html", "text/html")):
        key = (kind, *assessment_key, lang, service.value)
        if key not in ready and not st.button(Text("生成：", "Prepare: ").get(lang) + label, key=f"prepare_{kind}"):
            continue
        with st.status(Text("正在生成：", "Preparing: ").get(lang) + label, expanded=False) as status:
            data = prepared_download(key, assessment)
            status.update(label=Text("已生成：", "Ready: ").get(lang) + f"{label} ({len(data) / 1e6:.1f} MB)",
                          state="complete")
        ready.add(key)
        st.download_button(label, data, file_name=file_name, mime=mime, key=f"download_{kind}",
                           on_click="ignore")  # saving a file changes nothing on the page


with tab_downloads:
    downloads_tab(assessment, (region_key, policy_name, float(minutes), float(speed), float(workers_weight)), service)
report_libraries_loading()
if tiled is None:  # after the page is drawn: the search every later slider setting re-thresholds (widest_assessment)
    widest_assessment(region_key, assessment.policy.cell_m, assessment.policy.access_width_m,
                      assessment.policy.max_snap_m, region, network).start()
