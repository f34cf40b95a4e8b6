"""What a project holds, in both stores (a SQLite file, :mod:`planning.workspace`; a PostgreSQL schema,
:mod:`planning.workspace_pg`): the schema migrations, their version and the error a project raises."""

from __future__ import annotations

from planning.errors import PlanningError

SUFFIX = ".sqlite"
#: Schema migrations: version N is reached by running MIGRATIONS[N - 1] on a version N - 1 file.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # version 1: project meta, inputs, scenarios, checks
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE inputs (role TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,"
        " content BLOB, added_at TEXT NOT NULL, PRIMARY KEY (role, sha256))",
        "CREATE TABLE scenario_edits (id INTEGER PRIMARY KEY AUTOINCREMENT, scenario TEXT NOT NULL,"
        " edit TEXT NOT NULL, added_at TEXT NOT NULL)",
        "CREATE TABLE checks (id INTEGER PRIMARY KEY AUTOINCREMENT, lon REAL NOT NULL, lat REAL NOT NULL,"
        " services TEXT NOT NULL, applicant TEXT, result TEXT NOT NULL, checked_at TEXT NOT NULL)",
    ),
    (  # version 2: who made each write; the application register
        "ALTER TABLE scenario_edits ADD COLUMN who TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE checks ADD COLUMN who TEXT NOT NULL DEFAULT ''",
        "CREATE TABLE applications (app_id TEXT PRIMARY KEY, record TEXT NOT NULL, updated_at TEXT NOT NULL,"
        " who TEXT NOT NULL)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class WorkspaceError(PlanningError):
    """A project that cannot be used (newer schema, not a project, bad content, an unreachable server)."""
