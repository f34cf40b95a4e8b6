"""Projects on a shared PostgreSQL server: the bureau-server option of :mod:`planning.workspace`.

A workspace URL ``postgresql://user[:password]@host[:port]/database`` (any libpq URL) holds many projects
in one database: each project is a schema of its own (``pp_`` + 16 hex digits of the name's SHA-256),
listed with its shown name in ``public.planner_projects``; inside it, the same tables as a project file,
made by the same migrations (:data:`planning.workspace_schema.MIGRATIONS`, with SQLite's column types spelled
as PostgreSQL's), and a one-row ``schema_version`` table in place of SQLite's ``user_version``. Plain
PostgreSQL 12 or newer is enough (PostGIS is not used: points are stored as longitude/latitude columns,
as in the file). The role needs ``CREATE`` on the database.

Each read or write is one transaction on a connection of its own; writes to one project are serialised
by a transaction-scoped advisory lock on its schema name (what ``BEGIN IMMEDIATE`` is for a file), so
two sessions saving at once both land and a change built from the current edits sees every earlier one.
Statements are always parameterised; schema names are quoted identifiers made from a hash, never from
user text. Passwords are never shown: every message names the server as ``user@host:port/database``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from planning.workspace_schema import MIGRATIONS, SCHEMA_VERSION, SUFFIX, WorkspaceError

#: URL schemes taken as a PostgreSQL workspace.
SCHEMES = ("postgresql", "postgres")
REGISTRY = "planner_projects"
CONNECT_TIMEOUT_S = 10
#: Every project schema's name: this prefix and 16 hex digits.
SCHEMA_PREFIX = "pp_"
#: Advisory lock ``(REGISTRY_LOCK, 0)`` held while a project is created, migrated or renamed.
REGISTRY_LOCK = 2026_1204


def is_postgres_url(location) -> bool:
    """Whether ``location`` (a string or path) names a PostgreSQL workspace or project."""
    return isinstance(location, str) and location.split("://", 1)[0].lower() in SCHEMES


@dataclass(frozen=True)
class PostgresProject:
    """One project on a PostgreSQL workspace. ``stem`` (the project's name) and ``name`` (the file name
    its export takes) read as a project file's :class:`~pathlib.Path` does, so the app lists both alike."""

    url: str  # the workspace URL without ``project=`` (may carry a password: never shown)
    stem: str

    @property
    def name(self) -> str:
        return f"{self.stem}{SUFFIX}"

    @property
    def schema(self) -> str:
        return SCHEMA_PREFIX + hashlib.sha256(self.stem.encode("utf-8")).hexdigest()[:16]

    def __str__(self) -> str:
        return f"{shown_server(self.url)} · {self.stem}"


def project_from_url(url: str) -> PostgresProject:
    """``postgresql://.../database?project=NAME`` as a :class:`PostgresProject` (refused without a name)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [v for k, v in query if k == "project"]
    if len(names) != 1 or not names[0].strip():
        raise WorkspaceError("PostgreSQL 项目地址需要一个 project=项目名 参数",
                             "a PostgreSQL project address needs one project=NAME parameter")
    rest = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "project"])))
    return PostgresProject(rest, names[0].strip())


def shown_server(url: str) -> str:
    """``user@host:port/database`` of a libpq URL: what messages show (never the password)."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{user}{parts.hostname or 'localhost'}{port}{parts.path or ''}"


def _psycopg():
    try:
        import psycopg
    except ImportError as exc:
        raise WorkspaceError("使用 PostgreSQL 工作区需要安装 psycopg：pip install 'pharmacy-planner[postgres]'",
                             "a PostgreSQL workspace needs psycopg: pip install 'pharmacy-planner[postgres]'") from exc
    return psycopg


class _Session:
    """A psycopg connection inside one transaction, answering as a ``sqlite3`` connection does for the
    statements of :class:`planning.workspace.Workspace` (``?`` placeholders)."""

    def __init__(self, connection) -> None:
        self._connection = connection

    def execute(self, statement: str, parameters=()):
        return self._connection.execute(statement.replace("?", "%s"), tuple(parameters))

    def executemany(self, statement: str, rows) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(statement.replace("?", "%s"), [tuple(r) for r in rows])


@contextlib.contextmanager
def connection(url: str):
    """A psycopg connection to the workspace at ``url`` (closed after); failures as :class:`WorkspaceError`
    naming the server without its password."""
    psycopg = _psycopg()
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as db:
            yield db
    except psycopg.OperationalError as exc:
        reason = _without_password(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, url)
        raise WorkspaceError(f"无法连接 PostgreSQL 工作区 {shown_server(url)}：{reason}",
                             f"cannot connect to the PostgreSQL workspace {shown_server(url)}: {reason}") from None
    except psycopg.Error as exc:
        reason = _without_password(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, url)
        raise WorkspaceError(f"PostgreSQL 工作区 {shown_server(url)} 出错：{reason}",
                             f"the PostgreSQL workspace {shown_server(url)} failed: {reason}") from None


@contextlib.contextmanager
def transaction(project: PostgresProject, *, write: bool):
    """One transaction in ``project``'s schema (committed on success, rolled back on error); a write holds
    the project's advisory lock until it ends."""
    _psycopg()
    from psycopg import sql

    with connection(project.url) as db:
        with db.transaction():
            db.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(project.schema)))
            if write:
                db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (project.schema,))
            yield _Session(db)


def migrate(project: PostgresProject) -> int:
    """Create the project (schema, tables, registry row) or bring it to the current schema version;
    returns the version found. A project from a newer version is refused."""
    _psycopg()
    from psycopg import sql

    with connection(project.url) as db, db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (REGISTRY_LOCK,))  # creation and renames, one at a time
        db.execute(f"CREATE TABLE IF NOT EXISTS public.{REGISTRY} (name TEXT PRIMARY KEY, "
                   "schema_name TEXT UNIQUE NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        schema = sql.Identifier(project.schema)
        db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        db.execute(sql.SQL("SET LOCAL search_path TO {}").format(schema))
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        found = row[0] if row else 0
        if found > SCHEMA_VERSION:
            raise WorkspaceError(
                f"项目 {project.stem} 由更新版本的软件写入（结构版本 {found}，本软件支持到 {SCHEMA_VERSION}），请升级软件后再打开",
                f"project {project.stem} was written by a newer version of the tool (schema {found}; this one "
                f"reads up to {SCHEMA_VERSION}): upgrade the tool to open it")
        for version in range(found, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                db.execute(postgres_statement(statement))
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version VALUES (%s)", (SCHEMA_VERSION,))
        if found == 0:
            db.execute("INSERT INTO meta VALUES ('name', %s) ON CONFLICT DO NOTHING", (project.stem,))
        db.execute(f"INSERT INTO public.{REGISTRY} (name, schema_name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                   (project.stem, project.schema))
    return found


def postgres_statement(statement: str) -> str:
    """A migration written for SQLite in PostgreSQL's words: identity ids, ``BYTEA``, double precision
    (SQLite's ``REAL`` is 8 bytes, PostgreSQL's 4), and the applications table given the ``rowid`` its
    queries order by (SQLite has one on every table)."""
    statement = statement.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    statement = re.sub(r"\bBLOB\b", "BYTEA", statement)
    statement = re.sub(r"\bREAL\b", "DOUBLE PRECISION", statement)
    if statement.startswith("CREATE TABLE applications ("):
        statement = statement[:-1] + ", rowid BIGSERIAL)"
    return statement


def list_projects(url: str) -> list[PostgresProject]:
    """The projects of the workspace at ``url``, by name (none before the first is made)."""
    with connection(url) as db:
        exists = db.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{REGISTRY}",)).fetchone()[0]
        if not exists:
            return []
        rows = db.execute(f"SELECT name FROM public.{REGISTRY} ORDER BY name").fetchall()
    return [PostgresProject(url, r[0]) for r in rows]


def exists(project: PostgresProject) -> bool:
    return any(p.stem == project.stem for p in list_projects(project.url))


def rename(project: PostgresProject, name: str) -> PostgresProject:
    """Move ``project`` to ``name`` (its schema renamed, the registry row and shown name updated, one
    transaction); refused when ``name`` is taken."""
    _psycopg()
    from psycopg import sql

    target = PostgresProject(project.url, name.strip())
    with connection(project.url) as db, db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (REGISTRY_LOCK,))
        taken = db.execute(f"SELECT 1 FROM public.{REGISTRY} WHERE name = %s", (target.stem,)).fetchone()
        if taken:
            raise WorkspaceError(f"项目 {target.stem} 已存在，请换一个名称", f"project {target.stem} exists: choose another name")
        db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (project.schema,))  # no writer inside it
        db.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(project.schema),
                                                                   sql.Identifier(target.schema)))
        db.execute(f"UPDATE public.{REGISTRY} SET name = %s, schema_name = %s WHERE name = %s",
                   (target.stem, target.schema, project.stem))
    return target


def _without_password(text: str, url: str) -> str:
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


def restart_ids(project: PostgresProject, tables: tuple[str, ...] = ("scenario_edits", "checks", "applications")) -> None:
    """After rows were copied in with their ids: each id sequence continues after the largest id."""
    with transaction(project, write=True) as db:
        for table, column in ((t, "rowid" if t == "applications" else "id") for t in tables):
            db.execute(f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX({column}), 0) + 1, false) FROM {table}",
                       (table, column))
