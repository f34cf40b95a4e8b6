"""Projects on a PostgreSQL server (planning.workspace_pg) beyond what tests/test_workspace.py runs on both
stores: the workspace URL in the environment, listing, renaming, export to a file and import back,
versions, and messages that never show a password. On a throwaway server (tests/pg_server.py)."""

from __future__ import annotations

import sys
from pathlib import Path
import uuid

import pytest

from planning import workspace, workspace_pg
from planning.scenario import AddSite, RemoveSite


@pytest.fixture
def pg_workspace(postgres_url, monkeypatch):
    """``$PHARMACY_PLANNER_WORKSPACE`` set to a fresh database on the throwaway server."""
    import psycopg

    database = f"ws_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{database}"')
    url = postgres_url.rsplit("/", 1)[0] + f"/{database}"
    monkeypatch.setenv(workspace.WORKSPACE_ENV, url)
    return url


def test_projects_of_a_postgres_workspace_are_listed_renamed_and_keep_their_work(pg_workspace):
    assert workspace.list_projects() == []
    where = workspace.project_path("楚雄州 2025 规划")
    assert isinstance(where, workspace_pg.PostgresProject) and where.stem == "楚雄州 2025 规划"
    project = workspace.open(where, who="张")
    project.append_edit("扩张", AddSite("NEW-1", 101.5, 25.0, ("dual_channel",), name="'); DROP TABLE meta; --"))
    workspace.open(workspace.project_path("其他"))
    assert [p.stem for p in workspace.list_projects()] == ["其他", "楚雄州 2025 规划"]
    with pytest.raises(workspace.WorkspaceError):
        workspace.rename_project(where, "其他")
    renamed = workspace.rename_project(where, "楚雄州 2026")
    assert renamed.name == "楚雄州 2026" and renamed.edits("扩张")[0].name == "'); DROP TABLE meta; --"
    assert [p.stem for p in workspace.list_projects()] == ["其他", "楚雄州 2026"]
    assert workspace.open(workspace.project_path("楚雄州 2026")).edits("扩张") == renamed.edits("扩张")


def test_a_postgres_project_exports_to_a_file_and_a_file_imports_to_postgres(pg_workspace, tmp_path):
    project = workspace.open(workspace.project_path("源"), who="a")
    project.append_edit("s", RemoveSite("P1"))
    project.add_input("pharmacies", "药店.csv", b"pharmacy_id\nP1\n")
    content = project.export_bytes()
    assert content.startswith(b"SQLite format 3\x00")
    as_file = workspace.import_project(content, tmp_path / "源.sqlite")  # the file form reads the same work
    assert as_file.edits("s") == (RemoveSite("P1"),) and as_file.name == "源"
    assert [(i.role, i.name) for i in as_file.inputs()] == [("pharmacies", "药店.csv")]
    as_file.append_edit("s", RemoveSite("P2"))
    back = workspace.import_project(as_file.export_bytes(), workspace.project_path("回来"))
    assert back.edits("s") == (RemoveSite("P1"), RemoveSite("P2"))
    back.append_edit("s", RemoveSite("P3"))  # ids continue after the copied ones
    assert [e.pharmacy_id for e in back.edits("s")] == ["P1", "P2", "P3"]
    with pytest.raises(workspace.WorkspaceError):  # never overwrites a project
        workspace.import_project(content, workspace.project_path("回来"))
    with pytest.raises(workspace.WorkspaceError):
        workspace.import_project(b"PK\x03\x04 a zip", workspace.project_path("zip"))
    assert [p.stem for p in workspace.list_projects()] == ["回来", "源"]


def test_a_project_from_a_newer_version_is_refused(pg_workspace):
    import psycopg

    where = workspace.project_path("新")
    workspace.open(where)
    with psycopg.connect(pg_workspace, autocommit=True) as db:
        db.execute(f'UPDATE "{where.schema}".schema_version SET version = version + 1')
    with pytest.raises(workspace.WorkspaceError) as caught:
        workspace.open(where)
    assert "newer version" in caught.value.message("en")


def test_connection_failures_are_messages_without_the_password(postgres_url):
    port = postgres_url.rsplit(":", 1)[1].split("/")[0]
    unreachable = "postgresql://planner:s3cret-Pa55@127.0.0.1:1/postgres?project=x"
    for url in (unreachable, f"postgresql://planner:s3cret-Pa55@127.0.0.1:{port}/no_such_database?project=x"):
        with pytest.raises(workspace.WorkspaceError) as caught:
            workspace.open(url)
        text = caught.value.message("en") + caught.value.message("zh")
        assert "s3cret-Pa55" not in text and "planner@127.0.0.1" in text
    with pytest.raises(workspace.WorkspaceError):
        workspace.open(postgres_url)  # no project= parameter


def test_without_psycopg_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(workspace.WorkspaceError) as caught:
        workspace.open("postgresql://planner@127.0.0.1:1/postgres?project=x")
    assert "pharmacy-planner[postgres]" in caught.value.message("en")


def test_the_app_keeps_its_work_in_the_postgres_workspace(pg_workspace, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PHARMACY_PLANNER_ACCOUNTS", str(tmp_path / "accounts.toml"))  # none: served on loopback
    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=180)
    app.run()
    assert not app.exception
    assert [p.stem for p in workspace.list_projects()] == ["default"]
    assert workspace.open(workspace.project_path("default")).name == "default"
