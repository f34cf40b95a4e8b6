"""The Streamlit app through streamlit's AppTest (no browser): demo, parameters, check, uploads, language."""

from __future__ import annotations

from pathlib import Path

import pytest

from planning.demo import PLANTED

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace_dir(tmp_path, monkeypatch):
    """A private workspace folder: the app's autosaved projects never touch the home directory."""
    from planning.workspace import WORKSPACE_ENV

    folder = tmp_path / "workspace"
    monkeypatch.setenv(WORKSPACE_ENV, str(folder))
    return folder


def new_session():
    """A fresh app session (as after a refresh, in a second tab or after a server restart)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def app(workspace_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def upload(app, pharmacies_csv: bytes, *, subdistricts: bool = True) -> None:
    """Switch to upload mode and give a pharmacy sheet, the demo's street network and (``subdistricts``)
    the demo's sub-district boundaries."""
    from planning.demo import DEMO_DIR

    app.sidebar.radio[1].set_value("upload").run()
    uploaders = {u.label: u for u in app.sidebar.get("file_uploader")}
    uploaders["定点药店表（CSV/XLSX/GeoJSON）"].set_value(("药店.csv", pharmacies_csv, "text/csv"))
    if subdistricts:
        uploaders["街道/乡镇边界（GeoJSON/GPKG/ZIP 矢量）"].set_value(
            ("subdistricts.geojson", (DEMO_DIR / "subdistricts.geojson").read_bytes(), "application/geo+json"))
    uploaders["路网 OSM 文件（.osm/.osm.gz/.osm.pbf）"].set_value(
        ("network.osm.gz", (DEMO_DIR / "network.osm.gz").read_bytes(), "application/gzip"))


def test_app_shows_the_fictional_demo_region_in_chinese(app):
    assert app.title[0].value == "医保定点零售药店布局规划"
    assert "示例市" in app.caption[0].value and "虚构" in app.caption[0].value
    pharmacies = next(m for m in app.metric if m.label == "定点药店")
    assert int(pharmacies.value) >= 150
    assert [tab.label for tab in app.tabs] == ["地图", "选址核查", "情景模拟", "申请台账", "统计表", "下载"]
    prepare = [b.label for b in app.button if b.label.startswith("生成：")]
    assert prepare == ["生成：下载缺口报告 GeoJSON", "生成：下载统计表 XLSX", "生成：下载评估报告（Word）",
                       "生成：下载离线地图 HTML"]
    assert not app.main.get("download_button")  # nothing is built before it is asked for (the sidebar's
    # project export builds its file only when pressed)


def test_changing_the_minutes_recomputes_the_tables(app):
    before = app.dataframe[0].value
    app.sidebar.slider[0].set_value(8).run()
    assert not app.exception
    after = app.dataframe[0].value
    share = "时限内覆盖率（%）"  # tables are shown for people: Chinese headers, shares in percent
    assert (after[share] <= before[share]).all()
    assert (after[share] < before[share]).any()
    assert before["分类"].isin(["相对饱和", "均衡", "相对不足", "空白"]).all()


def test_designation_check_form_gives_verdict_rules_and_applicant(app):
    core = PLANTED["saturated_core_street"]["core_point"]
    app.number_input[0].set_value(core[0])
    app.number_input[1].set_value(core[1])
    applicant = next(c for c in app.checkbox if c.label == "一并核查申请人条件")
    applicant.check()
    app.number_input[2].set_value(1)  # months operating: below the 3 required by CX-2022 art. 8
    app.button[0].click().run()
    assert not app.exception
    texts = " ".join(m.value for m in app.markdown)
    assert "禁止新增" in texts and "B1" in texts and "B2" in texts
    assert any("不符合受理条件" in e.value for e in app.error)
    assert "MDJ-2025 art. 10, 14" in texts and "HN-2025 (一); MDJ-2025 art. 13" in texts
    assert "CX-2022 art. 8" in texts and "CX-2022 art. 13(二)" in texts


def test_upload_mode_asks_for_files_and_explains_a_bad_one(app):
    app.sidebar.radio[1].set_value("upload").run()
    assert not app.exception
    assert any("请至少上传" in i.value for i in app.info)
    bad_csv = "名称,地址,门诊统筹\n康宁大药房,人民路1号,是\n".encode("utf-8")  # no coordinates, no id
    upload(app, bad_csv)
    app.run()
    assert not app.exception  # no traceback reaches the planner
    messages = " ".join(e.value for e in app.error)
    assert "药店.csv" in messages and "缺少必需列" in messages and "经度" in messages  # file, column, aliases (ids optional)


def test_app_switches_to_english(app):
    app.sidebar.radio[0].set_value("English").run()
    assert not app.exception
    assert app.title[0].value == "Designated pharmacy planning"
    assert "fictional" in app.caption[0].value
    assert [tab.label for tab in app.tabs] == ["Map", "Designation check", "What-if", "Register", "Tables",
                                                "Downloads"]


def test_what_if_withdrawing_a_countys_only_dual_channel_pharmacy_breaks_r2_and_undo_restores(app):
    import geopandas as gpd

    from planning.demo import load_demo_region

    region = load_demo_region()
    located = gpd.sjoin(region.pharmacies, region.subdistricts[["county_code", "geometry"]], predicate="within")
    county = "990103"  # 望川区: one dual-channel pharmacy in the demo
    dual = located[located["dual_channel"] & (located["county_code"] == county)]
    assert len(dual) == 1, "the demo changed: pick another county with one dual-channel pharmacy"
    assert any("尚无情景修改" in i.value for i in app.info)
    withdraw = next(m for m in app.multiselect if m.label == "按名称撤销定点药店")
    withdraw.set_value([dual["pharmacy_id"].iloc[0]])
    next(b for b in app.button if b.label == "按名称撤销定点药店").click().run()
    assert not app.exception, app.exception
    assert any(c.value == "情景：1 项修改" for c in app.sidebar.caption)
    assert app.sidebar.toggle[0].value  # the map and the checks follow the what-if
    requirements = next(t for t in app.dataframe if "层级" in t.value.columns).value
    broken = requirements[(requirements["规则"] == "R2") & (requirements["代码"] == county)]
    assert broken["变化"].tolist() == ["变为不满足"], requirements
    assert "下载情景模拟报告（Word）" in [b.label for b in app.get("download_button")]
    edits = next(t for t in app.dataframe if "内容" in t.value.columns).value
    assert edits["内容"].tolist() == [f"撤销 {dual['pharmacy_id'].iloc[0]}"]
    next(b for b in app.button if b.label == "撤销上一步").click().run()
    assert not app.exception
    assert any("尚无情景修改" in i.value for i in app.info)


def test_upload_with_a_contradicted_datum_offers_a_visible_choice(app):
    """The demo's pharmacies written in GCJ-02 but declared WGS84: a choice with the figures, not a log line."""
    import io

    from planning import coords
    from planning.demo import load_demo_region

    ph = load_demo_region().pharmacies
    lon, lat = coords.wgs84_to_gcj02(ph.geometry.x.to_numpy(), ph.geometry.y.to_numpy())
    table = ph.drop(columns="geometry").assign(经度=lon, 纬度=lat)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    upload(app, buffer.getvalue().encode("utf-8"))
    app.sidebar.selectbox[-1].set_value("wgs84").run()
    assert not app.exception
    assert any("GCJ-02" in w.value and "米" in w.value for w in app.warning)
    choice = [r for r in app.radio if "坐标系与数据不符" in r.label]
    assert choice and choice[0].options[0].startswith("按数据判定的 GCJ-02")


def test_downloads_are_built_when_asked_and_then_download(app):
    """Pressing a download's prepare button builds the file under a status box (once for every session,
    prepared_download) and puts its download button in place; the others stay unbuilt."""
    app.button(key="prepare_geojson").click().run()
    assert not app.exception
    assert [b.label for b in app.main.get("download_button")] == ["下载缺口报告 GeoJSON"]
    assert [(s.label.split(" (")[0], s.state) for s in app.status] == [("已生成：下载缺口报告 GeoJSON", "complete")]
    for kind in ("xlsx", "docx", "html"):
        app.button(key=f"prepare_{kind}").click().run()
        assert not app.exception
    assert [b.label for b in app.main.get("download_button")] == [
        "下载缺口报告 GeoJSON", "下载统计表 XLSX", "下载评估报告（Word）", "下载离线地图 HTML"]
    assert all(b.proto.url for b in app.main.get("download_button"))
    app.sidebar.slider[0].set_value(10).run()  # a new assessment: its files are not built yet
    assert not app.exception and not app.main.get("download_button")


def test_upload_of_pharmacies_and_streets_only_runs_and_says_what_is_not_judged(app, workspace_dir):
    """No boundaries, population or fund table: the app assesses, the population metric says "not judged"
    and the completeness panel lists the missing layers with the rules they disable."""
    import io

    from planning.demo import load_demo_region

    ph = load_demo_region().pharmacies
    table = ph.drop(columns=["geometry", "dual_channel"]).assign(经度=ph.geometry.x, 纬度=ph.geometry.y)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    upload(app, buffer.getvalue().encode("utf-8"), subdistricts=False)
    app.run()
    assert not app.exception, app.exception
    population = next(m for m in app.metric if m.label == "常住参保人口")
    assert population.value == "未判定（无人口数据）"
    tables = [df.value for df in app.get("dataframe")]
    completeness = next(t for t in tables if "无法判定的规则" in t.columns)
    by_layer = completeness.set_index("图层")
    assert "R1" in by_layer.at["街道/乡镇边界", "无法判定的规则"] and "S" in by_layer.at["人口", "无法判定的规则"]
    assert "B3" in by_layer.at["基金运行情况表", "无法判定的规则"]
    assert "“双通道”业务列" in by_layer.at["定点药店", "缺少"]
    assert any("B3、B4" in w.value and "无法判定" in w.value for w in app.warning)  # the fund-table warning
    from planning import workspace  # the inputs used are kept in the project, with their hashes

    kept = {(i.role, i.name, i.kept) for i in workspace.open(workspace_dir / "default.sqlite").inputs()}
    assert kept == {("pharmacies", "药店.csv", True), ("network", "network.osm.gz", True)}



def test_review_button_builds_the_exit_scenario_and_shows_each_exit(app, demo):
    """The annual-review button: the what-if becomes "the flagged exits leave" (one withdrawal each) and
    the exit table says per exit whether it is safe."""
    from planning.review import exit_list

    expected = exit_list(demo)["pharmacy_id"].tolist()
    next(b for b in app.button if b.label == "所有自然退出和触发解除协议的药店退出").click().run()
    assert not app.exception, app.exception
    assert any(c.value == f"情景：{len(expected)} 项修改" for c in app.sidebar.caption)
    exits = next(t for t in app.dataframe if "可安全退出" in t.value.columns).value
    assert exits["药店编码"].tolist() == expected
    assert set(exits["退出原因"]) <= {"自然退出（MDJ-2025 第十六条）", "触发解除协议（CX-2022 第三十四、三十五条）"}

def run_check_form(app, lon: float, lat: float) -> None:
    app.number_input[0].set_value(lon)
    app.number_input[1].set_value(lat)
    next(b for b in app.button if b.label == "核查").click().run()
    assert not app.exception, app.exception


def test_edits_and_checks_survive_a_new_session(app, workspace_dir):
    core = PLANTED["saturated_core_street"]["core_point"]
    withdraw = next(m for m in app.multiselect if m.label == "按名称撤销定点药店")
    first = withdraw.options[0]
    withdraw.set_value([first])
    next(b for b in app.button if b.label == "按名称撤销定点药店").click().run()
    run_check_form(app, core[0], core[1])
    again = new_session()  # a refresh, a second tab or a restarted server: same workspace folder
    assert any(c.value == "情景：1 项修改" for c in again.sidebar.caption)
    edits = next(t for t in again.dataframe if "内容" in t.value.columns).value
    assert len(edits) == 1 and "撤销" in edits["内容"].iloc[0]
    history = next(t for t in again.dataframe if "结论" in t.value.columns and "经度" in t.value.columns).value
    assert len(history) == 1 and abs(history["经度"].iloc[0] - core[0]) < 1e-6
    assert "禁止新增" in history["结论"].iloc[0] and "B1" in history["结论"].iloc[0]
    assert (workspace_dir / "default.sqlite").is_file()
    import getpass

    from planning import workspace

    assert [c.who for c in workspace.open(workspace_dir / "default.sqlite").checks()] == [getpass.getuser()]


def test_a_check_saved_as_an_application_shows_its_deadline_and_overdue_in_a_new_session(app):
    import datetime as dt

    core = PLANTED["saturated_core_street"]["core_point"]
    run_check_form(app, core[0], core[1])
    next(i for i in app.text_input if i.label == "申请机构名称").set_value("康宁大药房")
    next(i for i in app.text_input if i.label == "地址").set_value("中山路 1 号")
    next(d for d in app.date_input if d.label == "受理日期").set_value(dt.date(2025, 9, 26))
    next(b for b in app.button if b.label == "将核查记录保存为申请").click().run()
    assert not app.exception, app.exception
    again = new_session()
    register = next(t for t in again.dataframe if "截止日期" in t.value.columns).value
    row = register.iloc[0]
    assert row["申请机构"] == "康宁大药房" and row["当前阶段"] == "受理"
    assert str(row["截止日期"])[:10] == "2025-10-10" and row["已逾期"] == "是"  # 5 working days over National Day
    assert row["时限依据"] == "CX-2022 art. 12" and row["结论有变化"] == "否"
    assert any("1 项申请已逾期" in e.value for e in again.error)
    assert "下载申请台账 XLSX" in [b.label for b in again.get("download_button")]


def test_an_exported_project_imports_and_opens_by_name(app, workspace_dir):
    from planning import workspace
    from planning.scenario import RemoveSite

    source = workspace.open(workspace_dir / "elsewhere" / "楚雄.sqlite")
    source.append_edit("what-if demo", RemoveSite("P99010200001"))
    uploader = next(u for u in app.sidebar.get("file_uploader") if u.label == "导入项目文件")
    uploader.set_value(("楚雄.sqlite", source.export_bytes(), "application/vnd.sqlite3")).run()
    assert not app.exception, app.exception
    assert any("已导入项目 楚雄" in s.value for s in app.sidebar.success)
    next(i for i in app.sidebar.text_input if i.label == "项目（自动保存）").set_value("楚雄").run()
    assert any(c.value == "情景：1 项修改" for c in app.sidebar.caption)


@pytest.fixture
def served_beyond_loopback():
    """The app as served on 0.0.0.0 (every interface), restored afterwards."""
    from streamlit import config

    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    yield
    config.set_option("server.address", before)


def test_beyond_loopback_without_accounts_the_app_refuses_and_says_how(workspace_dir, served_beyond_loopback):
    at = new_session()
    assert not at.title and not at.tabs  # nothing of the region is served
    assert any("pharmacy-plan add-user" in e.value and "accounts.toml" in e.value for e in at.error)


def sign_in_as(at, name: str, password: str):
    next(i for i in at.text_input if i.label == "用户名").set_value(name)
    next(i for i in at.text_input if i.label == "密码").set_value(password)
    next(b for b in at.button if b.label == "登录").click().run()
    assert not at.exception, at.exception
    return at


def test_with_accounts_a_wrong_password_is_refused_and_a_viewer_cannot_save(workspace_dir, served_beyond_loopback):
    from planning import workspace
    from planning.accounts import add_user

    add_user(workspace_dir / "accounts.toml", "li", "viewer", "viewer-pw")
    add_user(workspace_dir / "accounts.toml", "zhang", "planner", "planner-pw")
    at = sign_in_as(new_session(), "li", "wrong")
    assert any("用户名或密码不正确" in e.value for e in at.error) and not at.title
    viewer = sign_in_as(new_session(), "li", "viewer-pw")
    assert viewer.title[0].value == "医保定点零售药店布局规划"
    assert any("已登录：li（只读）" in c.value for c in viewer.sidebar.caption)
    core = PLANTED["saturated_core_street"]["core_point"]
    run_check_form(viewer, core[0], core[1])  # a viewer sees the verdict ...
    assert "禁止新增" in " ".join(m.value for m in viewer.markdown)
    project = workspace.open(workspace_dir / "default.sqlite")
    assert project.checks() == []  # ... but nothing is saved
    assert next(b for b in viewer.button if b.label == "按名称撤销定点药店").disabled
    assert next(b for b in viewer.button if b.label == "将核查记录保存为申请").disabled
    planner = sign_in_as(new_session(), "zhang", "planner-pw")
    run_check_form(planner, core[0], core[1])
    (saved,) = project.checks()
    assert saved.who == "zhang"  # every write records who made it


@pytest.fixture
def behind_proxy(workspace_dir, served_beyond_loopback, monkeypatch):
    """The app behind a reverse proxy at 10.20.0.5 whose identity header is switched on; returns a function
    setting the connection's peer address and headers (what Streamlit's ``st.context`` reports)."""
    from streamlit.runtime.context import ContextProxy, StreamlitHeaders

    workspace_dir.mkdir(parents=True, exist_ok=True)
    (workspace_dir / "accounts.toml").write_text(
        '[proxy]\nenabled = true\nheader = "X-Remote-User"\ntrusted = ["10.20.0.5"]\n'
        '[proxy.roles]\nzhang = "planner"\n', encoding="utf-8")

    def connect(peer: str | None, headers: list[tuple[str, str]]) -> None:
        monkeypatch.setattr(ContextProxy, "ip_address", property(lambda self: peer))
        monkeypatch.setattr(ContextProxy, "headers", property(lambda self: StreamlitHeaders(headers)))

    return connect


def test_behind_a_trusted_proxy_its_header_names_the_user(workspace_dir, behind_proxy):
    from planning import workspace

    behind_proxy("10.20.0.5", [("x-remote-user", "zhang")])  # header names are case-insensitive
    planner = new_session()
    assert planner.title[0].value == "医保定点零售药店布局规划"
    assert not any(i.label == "密码" for i in planner.text_input)  # no sign-in form
    assert any("已登录：zhang（规划人员）" in c.value for c in planner.sidebar.caption)
    assert not any(b.label == "退出登录" for b in planner.sidebar.button)  # the proxy signs out, not the app
    core = PLANTED["saturated_core_street"]["core_point"]
    run_check_form(planner, core[0], core[1])
    (saved,) = workspace.open(workspace_dir / "default.sqlite").checks()
    assert saved.who == "zhang"  # the write records the proxy's user
    behind_proxy("10.20.0.5", [("X-Remote-User", "li")])  # not in [proxy.roles]: a viewer
    viewer = new_session()
    assert any("已登录：li（只读）" in c.value for c in viewer.sidebar.caption)
    assert next(b for b in viewer.button if b.label == "将核查记录保存为申请").disabled


def test_the_proxy_header_from_elsewhere_names_no_one(workspace_dir, behind_proxy):
    from planning.accounts import add_user

    behind_proxy("10.9.9.9", [("X-Remote-User", "zhang")])  # straight to the app, header forged
    refused = new_session()
    assert not refused.title and any("X-Remote-User" in e.value and "反向代理" in e.value for e in refused.error)
    behind_proxy("10.20.0.5", [("X-Remote-User", "li"), ("X-Remote-User", "zhang")])  # two values: no one
    assert not new_session().title
    add_user(workspace_dir / "accounts.toml", "zhang", "planner", "planner-pw")  # accounts beside the proxy
    assert "[proxy]" in (workspace_dir / "accounts.toml").read_text(encoding="utf-8")
    behind_proxy("10.9.9.9", [("X-Remote-User", "zhang")])
    at = new_session()
    assert not at.title and any(i.label == "用户名" for i in at.text_input)  # the bcrypt sign-in applies
    at = sign_in_as(at, "zhang", "wrong")
    assert not at.title
    assert sign_in_as(new_session(), "zhang", "planner-pw").title[0].value == "医保定点零售药店布局规划"


def test_recording_stages_moves_the_next_deadline(app, workspace_dir):
    import datetime as dt

    from planning import workspace
    from planning.register import Stage

    core = PLANTED["saturated_core_street"]["core_point"]
    run_check_form(app, core[0], core[1])
    next(d for d in app.date_input if d.label == "受理日期").set_value(dt.date(2026, 9, 25))
    next(b for b in app.button if b.label == "将核查记录保存为申请").click().run()
    next(s for s in app.selectbox if s.label == "阶段").set_value(Stage.EVALUATION)
    next(d for d in app.date_input if d.label == "日期").set_value(dt.date(2026, 9, 28))
    next(b for b in app.button if b.label == "登记阶段").click().run()
    assert not app.exception, app.exception
    register = next(t for t in app.dataframe if "截止日期" in t.value.columns).value
    # CX-15: 15 working days from receipt (Fri 25 Sep 2026): 1-7 Oct off, Sat 10 Oct worked
    assert register["当前阶段"].tolist() == ["评估"] and str(register["截止日期"].iloc[0])[:10] == "2026-10-22"
    (saved,) = workspace.open(workspace_dir / "default.sqlite").applications()
    assert [e.stage for e in saved.history] == [Stage.RECEIVED, Stage.EVALUATION]
    next(s for s in app.selectbox if s.label == "阶段").set_value(Stage.SIGNED)
    next(d for d in app.date_input if d.label == "日期").set_value(dt.date(2026, 9, 1))  # before the last stage
    next(b for b in app.button if b.label == "登记阶段").click().run()
    assert any("早于上一阶段" in e.value for e in app.error)


def test_renaming_the_project_keeps_its_work_under_the_new_name(app, workspace_dir):
    from planning import workspace
    from planning.scenario import RemoveSite

    workspace.open(workspace_dir / "default.sqlite").append_edit("what-if demo", RemoveSite("P99010200001"))
    app.run()
    next(i for i in app.sidebar.text_input if i.label == "新名称").set_value("楚雄 2026").run()
    next(b for b in app.sidebar.button if b.label == "重命名当前项目").click().run()
    assert not app.exception, app.exception
    assert next(i for i in app.sidebar.text_input if i.label == "项目（自动保存）").value == "楚雄 2026"
    assert any(c.value == "情景：1 项修改" for c in app.sidebar.caption)
    assert [p.name for p in workspace.list_projects(workspace_dir)] == ["楚雄 2026.sqlite"]
    assert not app.warning  # (no widget-state warning either)


@pytest.fixture(scope="module")
def saved_tiled_result(tmp_path_factory):
    """The demo assessed tile by tile (its 4 counties, on an in-process Dask client) and saved as a
    tiled run's output folder under a results root: (root, the tiled assessment)."""
    distributed = pytest.importorskip("dask.distributed")
    from planning.demo import load_demo_region
    from planning.netstore import write_store
    from planning.network import load_network
    from planning.report_tiled import write_tiled
    from planning.tiles import assess_tiled

    root = tmp_path_factory.mktemp("results")
    region = load_demo_region()
    store = write_store(load_network(region.network_path), root.parent / "store", chunk_m=2_000)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        tiled = assess_tiled(region, store, client=client, work_dir=root.parent / "work")
    write_tiled(tiled, root / "demo-tiled")
    return root, tiled


def test_a_tiled_result_opens_as_an_overview_by_county_and_one_countys_detail(workspace_dir, saved_tiled_result,
                                                                              monkeypatch):
    """Source "tiled result": the results folder's runs are offered; the overview tab shows the whole
    region's tiles and county rows; a county's detail fills the map, check and tables tabs with the
    merged rows; the sliders are the run's policy, not the sidebar's. An empty results folder says how
    to make a result."""
    from streamlit.testing.v1 import AppTest

    from planning.i18n import t
    from planning.present import for_people
    from planning.tiled_result import RESULTS_ENV

    root, tiled = saved_tiled_result
    monkeypatch.setenv(RESULTS_ENV, str(root / "nothing-here"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.sidebar.radio[1].set_value("tiled").run()
    assert not at.exception, at.exception
    assert any("pharmacy-plan assess" in i.value and "nothing-here" in i.value for i in at.info)

    monkeypatch.setenv(RESULTS_ENV, str(root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.sidebar.radio[1].set_value("tiled").run()
    assert not at.exception, at.exception
    assert at.tabs[0].label == "全域概览"
    metrics = {m.label: m.value for m in at.tabs[0].metric}
    assert metrics["分块"] == "4" and metrics[t("counties")] == str(len(tiled.region.counties))
    service = next(s for s in at.sidebar.selectbox if s.label == t("service")).value.value  # the sidebar's service
    overview = at.tabs[0].dataframe[0].value
    expected = for_people(tiled.counties[tiled.counties["service"] == service], "zh")
    assert list(overview["名称"]) == list(expected["名称"]) and list(overview["分类"]) == list(expected["分类"])
    assert all(s.disabled for s in at.sidebar.slider)  # the run's own policy applies
    county = next(s for s in at.sidebar.selectbox if s.label == "县区详情")
    code = tiled.region.counties["code"].iloc[1]
    county.select_index(1).run()
    assert not at.exception, at.exception
    assert any(code in i.value for i in at.info)
    tables = next(tab for tab in at.tabs if tab.label == t("tab_tables"))
    shown = tables.dataframe[0].value
    merged = for_people(tiled.subdistricts[(tiled.subdistricts["service"] == service)
                                          & (tiled.subdistricts["county_code"] == code)], "zh")
    mine = shown[shown["代码"].isin(set(merged["代码"]))]
    assert len(mine) == len(merged) > 0
    for column in ("名称", "分类", "R1 满足"):
        assert list(mine[column]) == list(merged[column]), column
