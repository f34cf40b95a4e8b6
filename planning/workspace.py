"""A planner's project on disk: one SQLite file per project in a workspace folder.

``planning.workspace.open(path)`` opens (or creates) a project; the app and a notebook read and write
the same file, so a notebook continues what the app started. A project holds

- the input files used (name, role, SHA-256, size, and a copy of the bytes unless told not to keep one);
- the policy name and its parameters;
- named scenarios: their edit lists (:mod:`planning.scenario` edits), one row per edit;
- every designation check: point (WGS84 degrees), services, applicant record, verdicts, findings, when, who;
- the register's applications (:mod:`planning.register`).

Everything is stored as JSON written by this module's codec, which builds only the allowed classes
(never pickle, never eval). Each write is one transaction (``BEGIN IMMEDIATE``, WAL journal, a busy
timeout), on a connection of its own: two sessions saving at once both land; an edit is appended, not a
list overwritten. The schema version is SQLite's ``user_version``: an older file is migrated step by
step on opening, a newer one refused with a message.

A bureau's shared server: ``$PHARMACY_PLANNER_WORKSPACE`` (or :func:`open`) may be a PostgreSQL URL
instead of a folder; the same projects then live in one database (:mod:`planning.workspace_pg`), with the
same API, and export to and import from the same single-file form.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from planning import register, scenario, screening
from planning.codec import Codec, Custom
from planning.model import Service
from planning.register_xlsx import verdicts_text
from planning.text import Text
from planning.workspace_schema import MIGRATIONS, SCHEMA_VERSION, SUFFIX, WorkspaceError  # noqa: F401 - re-exported

#: Environment variable naming the workspace: a folder (default ``~/.pharmacy-planner``) or a PostgreSQL URL.
WORKSPACE_ENV = "PHARMACY_PLANNER_WORKSPACE"

BUSY_TIMEOUT_S = 30.0


def workspace_folder() -> Path:
    """The workspace folder: ``$PHARMACY_PLANNER_WORKSPACE`` or ``~/.pharmacy-planner`` (created). For a
    PostgreSQL workspace (the variable holds a ``postgresql://`` URL) see :func:`workspace_url`."""
    location = os.environ.get(WORKSPACE_ENV) or str(Path.home() / ".pharmacy-planner")
    if _pg().is_postgres_url(location):
        raise WorkspaceError("工作区是 PostgreSQL 数据库，不是文件夹", "the workspace is a PostgreSQL database, not a folder")
    folder = Path(location)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def settings_folder() -> Path:
    """This server's own folder (the accounts file, :func:`planning.accounts.accounts_path`): the workspace
    folder, or ``~/.pharmacy-planner`` when the workspace is a PostgreSQL database (created)."""
    if workspace_url() is None:
        return workspace_folder()
    folder = Path.home() / ".pharmacy-planner"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def workspace_url() -> str | None:
    """The PostgreSQL workspace URL in ``$PHARMACY_PLANNER_WORKSPACE``, or None when it names a folder."""
    location = os.environ.get(WORKSPACE_ENV, "")
    return location if _pg().is_postgres_url(location) else None


def project_path(name: str, folder: Path | None = None):
    """Where project ``name`` lives: its file in ``folder`` (default :func:`workspace_folder`; the name kept
    readable, only path separators and control characters replaced), or, on a PostgreSQL workspace
    (no ``folder`` given), a :class:`planning.workspace_pg.PostgresProject`."""
    if folder is None and workspace_url():
        return _pg().PostgresProject(workspace_url(), name.strip() or "project")
    safe = re.sub(r"[\x00-\x1f/\\:*?\"<>|]", "_", name.strip()) or "project"
    return (folder or workspace_folder()) / f"{safe}{SUFFIX}"


def list_projects(folder: Path | None = None) -> list:
    """The projects of a workspace folder (their files) or of the PostgreSQL workspace, by name."""
    if folder is None and workspace_url():
        return _pg().list_projects(workspace_url())
    return sorted((folder or workspace_folder()).glob(f"*{SUFFIX}"))


def open(path, *, who: str = "", read_only: bool = False) -> Workspace:  # noqa: A001 - documented entry point
    """The project at ``path`` (created when missing, migrated when older): a project file, a
    ``postgresql://user@host/database?project=NAME`` URL or a :func:`project_path` result. ``who`` is
    recorded with every write; ``read_only`` refuses every change (a viewer). A project written by a
    newer version of the tool is refused (:class:`WorkspaceError`)."""
    if isinstance(path, str) and _pg().is_postgres_url(path):
        path = _pg().project_from_url(path)
    workspace = Workspace(path if _is_postgres(path) else Path(path), who, read_only)
    workspace.migrate()
    return workspace


def import_project(content: bytes, target) -> Workspace:
    """Add an exported project file (:meth:`Workspace.export_bytes`) as ``target`` (a file path or a
    PostgreSQL project) and open it (migrated when older). Refused with a :class:`WorkspaceError`: an
    existing ``target``, a file that is not a project, or one from a newer version (nothing is left
    behind then)."""
    taken = _pg().exists(target) if _is_postgres(target) else target.exists()
    if taken:
        raise WorkspaceError(f"项目 {target.stem} 已存在，请换一个名称", f"project {target.stem} exists: choose another name")
    if not content.startswith(b"SQLite format 3\x00"):
        raise WorkspaceError("这不是项目文件（SQLite）", "this is not a project file (SQLite)")
    if _is_postgres(target):
        with tempfile.TemporaryDirectory() as folder:
            source = import_project(content, Path(folder) / f"import{SUFFIX}")
            imported = open(target)
            copy_project(source, imported)
            return imported
    partial = target.with_name(target.name + ".importing")
    partial.write_bytes(content)
    try:
        with contextlib.closing(sqlite3.connect(partial)) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"meta", "scenario_edits", "checks"} <= tables:
            raise WorkspaceError("这个 SQLite 文件不是本软件的项目", "this SQLite file is not a project of this tool")
        open(partial).migrate()
        partial.rename(target)
    except sqlite3.DatabaseError as exc:
        raise WorkspaceError(f"项目文件无法读取：{exc}", f"the project file cannot be read: {exc}") from exc
    finally:
        for leftover in (partial, *(partial.with_name(partial.name + end) for end in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
    return open(target)


def rename_project(path, name: str) -> Workspace:
    """Move the project at ``path`` to ``name`` (a file: a consistent copy in the same folder, then the old
    file removed; on PostgreSQL: its schema renamed) and set its shown name; refused when a project of
    that name exists. Another session still on the old name finds an empty project there afterwards."""
    if _is_postgres(path):
        source = open(path)
        renamed = open(_pg().rename(path, name), who=source.who)
        renamed.rename(name)
        return renamed
    target = project_path(name, path.parent)
    if target.exists():
        raise WorkspaceError(f"项目 {target.stem} 已存在，请换一个名称", f"project {target.stem} exists: choose another name")
    source = open(path)
    target.write_bytes(source.export_bytes())
    renamed = open(target, who=source.who)
    renamed.rename(name)
    for old in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm"))):
        old.unlink(missing_ok=True)
    return renamed


#: What a project holds, table by table: its columns in order and the order its rows are read in.
PROJECT_TABLES: tuple[tuple[str, str, str], ...] = (
    ("meta", "key, value", "key"),
    ("inputs", "role, name, sha256, size, content, added_at", "added_at, role, sha256"),
    ("scenario_edits", "id, scenario, edit, added_at, who", "id"),
    ("checks", "id, lon, lat, services, applicant, result, checked_at, who", "id"),
    ("applications", "app_id, record, updated_at, who", "rowid"),
)


def copy_project(source: Workspace, target: Workspace) -> None:
    """Every row of ``source`` into the empty project ``target`` (ids kept, one transaction): the export
    of a PostgreSQL project to a file and the import of a file to PostgreSQL."""
    with target.writing() as db:
        for table, columns, order in PROJECT_TABLES:
            rows = source._read(f"SELECT {columns} FROM {table} ORDER BY {order}")
            if table == "meta":
                db.execute("DELETE FROM meta")
            marks = ", ".join("?" * (columns.count(",") + 1))
            db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
    if _is_postgres(target.path):
        _pg().restart_ids(target.path)


def _is_postgres(location) -> bool:
    return type(location).__name__ == "PostgresProject"


def _pg():
    from planning import workspace_pg

    return workspace_pg


@dataclass(frozen=True)
class InputFile:
    role: str
    name: str
    sha256: str
    size: int
    kept: bool
    added_at: str


@dataclass(frozen=True)
class CheckRecord:
    """One stored designation check; ``result`` is the :class:`planning.screening.DesignationCheck`."""

    check_id: int
    result: screening.DesignationCheck
    applicant: screening.Applicant | None
    checked_at: str
    who: str


@dataclass(frozen=True)
class Workspace:
    """A project (a file, or a :class:`planning.workspace_pg.PostgresProject`); every method opens its own
    connection and transaction (thread- and process-safe)."""

    path: Path  # or a PostgresProject, which reads as a Path does (name, stem)
    who: str = ""
    read_only: bool = False

    @contextlib.contextmanager
    def writing(self):
        """:meth:`transaction` for a change: refused on a read-only project (a viewer's)."""
        if self.read_only:
            raise WorkspaceError("只读账户（viewer）不能保存修改", "a read-only account (viewer) cannot save changes")
        with self.transaction() as db:
            yield db

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True):
        """A connection inside one transaction (committed on success, rolled back on error); a write
        transaction excludes every other writer of the project until it ends."""
        if _is_postgres(self.path):
            with _pg().transaction(self.path, write=write) as db:
                yield db
            return
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"无法使用项目文件 {self.path.name}：{exc}",
                                 f"cannot use project file {self.path.name}: {exc}") from exc
        finally:
            connection.close()

    def migrate(self) -> int:
        """Bring the project to :data:`SCHEMA_VERSION` (a new one from zero); returns the version found."""
        if _is_postgres(self.path):
            return _pg().migrate(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as db:
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if found > SCHEMA_VERSION:
                raise WorkspaceError(
                    f"项目文件 {self.path.name} 由更新版本的软件写入（结构版本 {found}，本软件支持到 {SCHEMA_VERSION}），"
                    "请升级软件后再打开", f"project file {self.path.name} was written by a newer version of the tool "
                    f"(schema {found}; this one reads up to {SCHEMA_VERSION}): upgrade the tool to open it")
            for version in range(found, SCHEMA_VERSION):
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if found == 0:
                db.execute("INSERT INTO meta VALUES ('name', ?) ON CONFLICT DO NOTHING", (self.path.stem,))
        return found

    def export_bytes(self) -> bytes:
        """The whole project as one self-contained SQLite file (a consistent copy, taken while others
        may be writing: SQLite's online backup; a PostgreSQL project's rows copied into a new file)."""
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / "export.sqlite"
            if _is_postgres(self.path):
                copy_project(self, open(copy))
                with contextlib.closing(sqlite3.connect(copy)) as target:
                    target.execute("PRAGMA journal_mode=DELETE")
                return copy.read_bytes()
            with contextlib.closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)) as source, \
                    contextlib.closing(sqlite3.connect(copy)) as target:
                source.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
            return copy.read_bytes()

    def _read(self, sql: str, parameters=()) -> list[tuple]:
        with self.transaction(write=False) as db:
            return db.execute(sql, parameters).fetchall()

    # ----------------------------------------------------------------------------- project and policy
    @property
    def name(self) -> str:
        rows = self._read("SELECT value FROM meta WHERE key = 'name'")
        return rows[0][0] if rows else self.path.stem

    def rename(self, name: str) -> None:
        """Set the project's shown name (the file keeps its path)."""
        self._set_meta("name", name)

    def set_policy(self, name: str, parameters: dict) -> None:
        """The policy preset or file name and the parameters changed from it (JSON values)."""
        self._set_meta("policy", to_json({"name": name, "parameters": parameters}))

    def policy(self) -> tuple[str, dict] | None:
        rows = self._read("SELECT value FROM meta WHERE key = 'policy'")
        if not rows:
            return None
        value = from_json(rows[0][0])
        return value["name"], value["parameters"]

    def _set_meta(self, key: str, value: str) -> None:
        with self.writing() as db:
            db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       (key, value))

    # ----------------------------------------------------------------------------- inputs
    def add_input(self, role: str, name: str, content: bytes, *, keep_copy: bool = True) -> str:
        """Record an input file (``role`` e.g. ``pharmacies``, ``network``); returns its SHA-256."""
        digest = hashlib.sha256(content).hexdigest()
        with self.writing() as db:
            db.execute("INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (role, sha256) DO UPDATE SET"
                       " name = excluded.name, size = excluded.size, content = excluded.content,"
                       " added_at = excluded.added_at",
                       (role, name, digest, len(content), content if keep_copy else None, _now()))
        return digest

    def keep_inputs(self, files: dict[str, tuple[str, bytes]]) -> None:
        """Record the input files (role -> (name, content)) not yet in the project, with a copy each."""
        known = {(i.role, i.sha256) for i in self.inputs()}
        for role, (name, content) in files.items():
            if (role, hashlib.sha256(content).hexdigest()) not in known:
                self.add_input(role, name, content)

    def inputs(self) -> list[InputFile]:
        rows = self._read("SELECT role, name, sha256, size, content IS NOT NULL, added_at FROM inputs ORDER BY added_at")
        return [InputFile(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]

    def input_content(self, role: str, sha256: str) -> bytes | None:
        rows = self._read("SELECT content FROM inputs WHERE role = ? AND sha256 = ?", (role, sha256))
        return rows[0][0] if rows else None

    # ----------------------------------------------------------------------------- scenarios
    def scenario_names(self) -> list[str]:
        return [r[0] for r in self._read("SELECT scenario FROM scenario_edits GROUP BY scenario ORDER BY MIN(id)")]

    def edits(self, name: str) -> tuple:
        """The edits of scenario ``name``, in the order made (empty for an unknown scenario)."""
        rows = self._read("SELECT edit FROM scenario_edits WHERE scenario = ? ORDER BY id", (name,))
        return tuple(from_json(r[0]) for r in rows)

    def append_edit(self, name: str, edit) -> None:
        """Append ``edit`` to scenario ``name``; or, when ``edit`` is a function, append ``edit(current
        edits)``, built inside the same transaction from every edit saved until then by any session (a
        new site's id then stays free when two sessions add sites at once)."""
        with self.writing() as db:
            if callable(edit):
                rows = db.execute("SELECT edit FROM scenario_edits WHERE scenario = ? ORDER BY id", (name,)).fetchall()
                edit = edit(tuple(from_json(r[0]) for r in rows))
            db.execute("INSERT INTO scenario_edits (scenario, edit, added_at, who) VALUES (?, ?, ?, ?)",
                       (name, to_json(edit), _now(), self.who))

    def undo_edit(self, name: str) -> None:
        """Drop the scenario's last edit (nothing when it has none)."""
        with self.writing() as db:
            db.execute("DELETE FROM scenario_edits WHERE id = (SELECT MAX(id) FROM scenario_edits WHERE scenario = ?)",
                       (name,))

    def set_edits(self, name: str, edits) -> None:
        """Replace the scenario's edits (one transaction)."""
        with self.writing() as db:
            db.execute("DELETE FROM scenario_edits WHERE scenario = ?", (name,))
            db.executemany("INSERT INTO scenario_edits (scenario, edit, added_at, who) VALUES (?, ?, ?, ?)",
                           [(name, to_json(e), _now(), self.who) for e in edits])

    # ----------------------------------------------------------------------------- checks
    def record_check(self, result: screening.DesignationCheck, applicant: screening.Applicant | None = None) -> int:
        """Store a designation check; returns its id."""
        with self.writing() as db:
            cursor = db.execute(
                "INSERT INTO checks (lon, lat, services, applicant, result, checked_at, who) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " RETURNING id",
                (result.lon, result.lat, to_json([s.value for s in result.verdicts]),
                 to_json(applicant) if applicant is not None else None, to_json(result), _now(), self.who))
            return int(cursor.fetchone()[0])

    def checks(self) -> list[CheckRecord]:
        rows = self._read("SELECT id, applicant, result, checked_at, who FROM checks ORDER BY id")
        return [CheckRecord(r[0], from_json(r[2]), from_json(r[1]) if r[1] else None, r[3], r[4]) for r in rows]

    def checks_table(self, lang: str = "zh") -> pd.DataFrame:
        """The check history for people, newest first: number, time (UTC), who, point (WGS84 degrees),
        sub-district, and each service's verdict with its rule ids."""
        rows = []
        for record in reversed(self.checks()):
            result = record.result
            verdicts = verdicts_text(((v.service.value, v.verdict, v.rule_ids) for v in result.verdicts.values()), lang)
            rows.append((record.check_id, record.checked_at, record.who, round(result.lon, 6), round(result.lat, 6),
                         result.subdistrict_name or "—", verdicts))
        headers = [Text(*pair).get(lang) for pair in (
            ("编号", "no."), ("时间（UTC）", "time (UTC)"), ("操作人", "by"), ("经度", "longitude"),
            ("纬度", "latitude"), ("街道/乡镇", "sub-district"), ("结论", "verdicts"))]
        return pd.DataFrame(rows, columns=headers)

    # ----------------------------------------------------------------------------- register
    def save_application(self, application: register.Application) -> None:
        """Insert an application or update it (by its id; the register keeps its first place)."""
        with self.writing() as db:
            db.execute("INSERT INTO applications (app_id, record, updated_at, who) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT (app_id) DO UPDATE SET record = excluded.record,"
                       " updated_at = excluded.updated_at, who = excluded.who",
                       (application.app_id, to_json(application), _now(), self.who))

    def applications(self) -> list[register.Application]:
        return [from_json(r[0]) for r in self._read("SELECT record FROM applications ORDER BY rowid")]

    def new_application_id(self) -> str:
        """The next free ``SQ-n`` id."""
        taken = {r[0] for r in self._read("SELECT app_id FROM applications")}
        return next(f"SQ-{n}" for n in range(1, len(taken) + 2) if f"SQ-{n}" not in taken)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# ============================================================================= JSON codec (allow-listed classes)
#: The dataclasses and enums the codec may build, by name.
CLASSES = {cls.__name__: cls for cls in (
    scenario.AddSite, scenario.RemoveSite, scenario.ChangeServices, scenario.ScalePopulation,
    scenario.SetPopulation, scenario.ScaleDemand, screening.Applicant, screening.Finding, screening.ServiceVerdict,
    screening.DesignationCheck, register.Application, register.StageEvent, register.StoredVerdict,
    register.Exclusion)}
ENUMS = {cls.__name__: cls for cls in (Service, register.Stage, register.Kind)}
CODEC = Codec(CLASSES.values(), ENUMS.values(),
              [Custom(scenario.ChangePolicy, lambda change: {"changes": change.as_dict()},
                      lambda stored: scenario.ChangePolicy(**stored["changes"]))], error=WorkspaceError)


def to_json(value) -> str:
    """``value`` (edits, checks, applications, plain data) as JSON text."""
    return CODEC.dumps(value)


def from_json(text: str):
    """The value :func:`to_json` wrote; a class outside :data:`CLASSES` is refused."""
    return CODEC.loads(text)
