"""The project store: everything stored reads back equal, versions are checked, concurrent writers lose
nothing; the tests marked with ``location`` run on a project file and on a throwaway PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor

import pytest
from hypothesis import given, settings, strategies as st

from planning import workspace
from planning.demo import PLANTED
from planning.model import Service
from planning.register import Stage, from_check
from planning.scenario import (AddSite, ChangePolicy, ChangeServices, RemoveSite, ScaleDemand, ScalePopulation,
                               SetPopulation)
from planning.screening import Applicant, check_location

EDITS = (
    AddSite("NEW-1", 101.52, 25.03, ("chronic_disease", "outpatient_pooling"), name="=cmd|' /C calc'!A0",
            address="中山路 1 号"),
    RemoveSite("P0001"),
    ChangeServices("P0002", ()),
    ScalePopulation(1.25, ("530101001",)),
    ScalePopulation(0.5),
    SetPopulation("530101002", 12000),
    ScaleDemand("chronic_disease", 1.15, ("530101001",)),
    ChangePolicy(walk_minutes=10, rules=frozenset({"B1", "R3"})),
)


@pytest.fixture(params=["file", "postgresql"])
def location(request, tmp_path):
    """Where a new project of a given name lives: a file in a temporary folder, or (second run) a project
    on the session's throwaway PostgreSQL server (a fresh name per test)."""
    if request.param == "file":
        return lambda name: tmp_path / f"{name}.sqlite"
    url, tag = request.getfixturevalue("postgres_url"), uuid.uuid4().hex[:8]
    return lambda name: f"{url}?project={name}-{tag}"


def test_everything_stored_reads_back_equal_after_reopening(location, demo):
    path = location("示例项目")
    project = workspace.open(path, who="planner-a")
    project.set_policy("default", {"walk_minutes": 15, "speed_m_per_min": 80.0})
    digest = project.add_input("pharmacies", "药店.csv", "pharmacy_id,name\nP1,康宁\n".encode())
    project.add_input("network", "streets.osm.pbf", b"\x00\x01" * 100, keep_copy=False)
    project.set_edits("扩张方案", EDITS[:3])
    for edit in EDITS[3:]:
        project.append_edit("扩张方案", edit)
    project.append_edit("other", RemoveSite("P0003"))
    project.undo_edit("other")
    core = PLANTED["saturated_core_street"]["core_point"]
    applicant = Applicant(months_operating=5, licensed_pharmacists=1, pharmacist_contract_months=12,
                          application_fraud_dates=(dt.date(2024, 5, 10),))
    check = check_location(demo, core[0], core[1], [Service.CHRONIC_DISEASE, Service.DUAL_CHANNEL],
                           applicant=applicant, on=dt.date(2025, 9, 26))
    check_id = project.record_check(check, applicant)
    application = from_check(check, app_id=project.new_application_id(), applicant="康宁", address="中山路",
                             received=dt.date(2025, 9, 26)).advanced(Stage.NOT_ACCEPTED, dt.date(2025, 9, 29),
                                                                      rule_id="CX-13")
    project.save_application(application)
    project.rename("示例市 2025 规划")

    again = workspace.open(path)  # as a notebook or a new app session would
    assert again.name == "示例市 2025 规划"
    assert again.policy() == ("default", {"walk_minutes": 15, "speed_m_per_min": 80.0})
    assert [(i.role, i.name, i.kept) for i in again.inputs()] == [("pharmacies", "药店.csv", True),
                                                                ("network", "streets.osm.pbf", False)]
    assert again.input_content("pharmacies", digest) == "pharmacy_id,name\nP1,康宁\n".encode()
    assert again.scenario_names() == ["扩张方案"] and again.edits("扩张方案") == EDITS and again.edits("other") == ()
    (stored,) = again.checks()
    assert stored.check_id == check_id and stored.who == "planner-a" and stored.applicant == applicant
    assert stored.result.table().equals(check.table()) and stored.result.verdicts.keys() == check.verdicts.keys()
    assert again.applications() == [application] and again.new_application_id() == "SQ-2"


def test_a_newer_file_is_refused_with_a_message(tmp_path):
    path = tmp_path / "p.sqlite"
    workspace.open(path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {workspace.SCHEMA_VERSION + 1}")
    with pytest.raises(workspace.WorkspaceError) as caught:
        workspace.open(path)
    assert "newer version" in caught.value.message("en") and "升级" in caught.value.message("zh")


def test_an_older_file_is_migrated_and_keeps_its_work(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # a version-1 project, as the first release wrote it
        for statement in workspace.MIGRATIONS[0]:
            db.execute(statement)
        db.execute("INSERT INTO scenario_edits (scenario, edit, added_at) VALUES ('a', ?, '2025-01-01')",
                   (workspace.to_json(RemoveSite("P9")),))
        db.execute("PRAGMA user_version = 1")
    project = workspace.open(path, who="b")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == workspace.SCHEMA_VERSION
    assert project.edits("a") == (RemoveSite("P9"),) and project.applications() == []
    project.append_edit("a", RemoveSite("P8"))
    assert project.edits("a") == (RemoveSite("P9"), RemoveSite("P8"))


def test_not_a_project_file_is_a_message_not_a_traceback(tmp_path):
    path = tmp_path / "x.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(workspace.WorkspaceError):
        workspace.open(path)


def test_the_codec_builds_only_allowed_classes():
    with pytest.raises(workspace.WorkspaceError):
        workspace.from_json('{"$class": "Popen", "args": ["rm", "-rf", "/"]}')
    with pytest.raises(workspace.WorkspaceError):
        workspace.to_json(object())
    assert workspace.from_json(workspace.to_json({"x": (1, [2.5, float("inf")])})) == {"x": (1, [2.5, float("inf")])}


def _write_many(path: str, writer: str, count: int) -> None:
    project = workspace.open(path, who=writer)
    for n in range(count):
        project.append_edit("shared", RemoveSite(f"{writer}-{n}"))


def test_two_processes_writing_at_once_lose_nothing(location):
    path = str(location("shared"))
    workspace.open(path)
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_write_many, [path] * 2, ["p1", "p2"], [60, 60]))
    ids = [e.pharmacy_id for e in workspace.open(path).edits("shared")]
    assert sorted(ids) == sorted([f"p1-{n}" for n in range(60)] + [f"p2-{n}" for n in range(60)])
    assert [i for i in ids if i.startswith("p1")] == [f"p1-{n}" for n in range(60)]  # each writer's order kept


def test_two_threads_with_their_own_connections_lose_nothing(location):
    path = location("threads")
    workspace.open(path)
    threads = [threading.Thread(target=_write_many, args=(str(path), f"t{k}", 40)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(workspace.open(path).edits("shared")) == 80


def test_project_paths_live_in_the_configured_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(workspace.WORKSPACE_ENV, str(tmp_path / "ws"))
    path = workspace.project_path("楚雄/2025")
    assert path.parent == tmp_path / "ws" and path.name == "楚雄_2025.sqlite"
    workspace.open(path)
    assert workspace.list_projects() == [path]


def test_a_project_exports_as_one_file_and_imports_elsewhere(tmp_path):
    project = workspace.open(tmp_path / "a" / "规划.sqlite", who="x")
    project.append_edit("s", RemoveSite("P1"))
    content = project.export_bytes()
    assert content.startswith(b"SQLite format 3\x00")
    target = tmp_path / "b" / "规划.sqlite"
    target.parent.mkdir()
    imported = workspace.import_project(content, target)
    assert imported.edits("s") == (RemoveSite("P1"),) and imported.name == "规划"
    with pytest.raises(workspace.WorkspaceError):  # never overwrites a project
        workspace.import_project(content, target)
    with pytest.raises(workspace.WorkspaceError):
        workspace.import_project(b"PK\x03\x04 a zip, not a project", tmp_path / "b" / "zip.sqlite")
    plain = tmp_path / "plain.sqlite"
    with sqlite3.connect(plain) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(workspace.WorkspaceError):
        workspace.import_project(plain.read_bytes(), tmp_path / "b" / "plain.sqlite")
    assert not [p.name for p in (tmp_path / "b").iterdir() if not p.name.startswith("规划.sqlite")]  # nothing left


def test_an_edit_built_from_the_current_edits_sees_the_other_sessions(location):
    path = location("p")
    first, second = workspace.open(path, who="a"), workspace.open(path, who="b")

    def new_site(current):
        taken = {getattr(e, "pharmacy_id", "") for e in current}
        return AddSite(next(f"NEW-{n}" for n in range(1, 99) if f"NEW-{n}" not in taken), 101.5, 25.0, ("dual_channel",))

    first.append_edit("s", new_site)
    second.append_edit("s", new_site)  # its page was drawn before the first edit: the id is chosen at saving
    assert [e.pharmacy_id for e in first.edits("s")] == ["NEW-1", "NEW-2"]


def test_a_project_is_renamed_with_its_work(tmp_path):
    old = workspace.open(tmp_path / "旧名.sqlite")
    old.append_edit("s", RemoveSite("P1"))
    renamed = workspace.rename_project(old.path, "新名")
    assert renamed.path == tmp_path / "新名.sqlite" and renamed.name == "新名"
    assert renamed.edits("s") == (RemoveSite("P1"),)
    assert workspace.list_projects(tmp_path) == [renamed.path]
    workspace.open(tmp_path / "其他.sqlite")
    with pytest.raises(workspace.WorkspaceError):
        workspace.rename_project(renamed.path, "其他")


_ids = st.text(min_size=1, max_size=12)
_services = st.lists(st.sampled_from([s.value for s in Service]), min_size=1, max_size=4, unique=True).map(tuple)
EDIT_STRATEGY = st.one_of(
    st.builds(AddSite, _ids, st.floats(-180, 180), st.floats(-90, 90), _services, name=st.text(max_size=20),
              address=st.text(max_size=20), chain=st.booleans()),
    st.builds(RemoveSite, _ids),
    st.builds(ChangeServices, _ids, st.lists(st.sampled_from([s.value for s in Service]), unique=True).map(tuple)),
    st.builds(ScalePopulation, st.floats(0, 10), st.none() | st.lists(_ids, max_size=3).map(tuple)),
    st.builds(SetPopulation, _ids, st.integers(0, 10**7)),
)


@settings(max_examples=200, deadline=None)
@given(edit=EDIT_STRATEGY)
def test_every_edit_reads_back_equal_through_the_codec(edit):
    assert workspace.from_json(workspace.to_json(edit)) == edit
