"""Who may use the app: accounts with bcrypt-hashed passwords, roles viewer and planner.

The accounts file is TOML (default ``accounts.toml`` in the workspace folder, or ``$PHARMACY_PLANNER_ACCOUNTS``)::

    [users.zhang]
    role = "planner"            # planner: edits, checks, register; viewer: reads only
    password_hash = "$2b$12$..."  # written by: pharmacy-plan add-user zhang --role planner

No password is ever stored in clear. :func:`gate` decides how the app serves: on a loopback address
(127.0.0.1, ::1, localhost) without accounts it serves one local planner; beyond loopback it refuses
unless accounts are configured, and with accounts it asks everyone to sign in.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from planning.errors import PlanningError
from planning.text import Text

ACCOUNTS_ENV = "PHARMACY_PLANNER_ACCOUNTS"
ROLES = ("viewer", "planner")
#: A hash to check against when the user is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=12))

SETUP_HELP = Text(
    "本应用监听的地址 {address} 不是本机回环地址，但尚未配置账户，因此拒绝服务。请先创建账户："
    "pharmacy-plan add-user 用户名 --role planner（或 viewer），账户保存在 {path}（密码以 bcrypt 散列保存）；"
    "或改为仅在本机使用：streamlit run app.py --server.address 127.0.0.1。",
    "The app listens on {address}, which is not a loopback address, and no accounts are configured: it refuses "
    "to serve. Create accounts first: pharmacy-plan add-user NAME --role planner (or viewer); they are kept in "
    "{path} (passwords as bcrypt hashes). Or serve this machine only: streamlit run app.py --server.address 127.0.0.1.")


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    password_hash: str

    @property
    def can_write(self) -> bool:
        """Planners edit, check and register; viewers read."""
        return self.role == "planner"


def local_planner() -> Account:
    """The one user of an app served on loopback without accounts: a planner named after the account
    the server runs under (so the project still records who wrote)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        name = ""
    return Account(name, "planner", "")


@dataclass(frozen=True)
class Gate:
    """How the app serves: ``refused`` (with ``reason``), or open, with or without a sign-in."""

    refused: bool
    sign_in: bool
    reason: Text | None = None


def accounts_path() -> Path:
    """``$PHARMACY_PLANNER_ACCOUNTS`` or ``accounts.toml`` in the workspace folder."""
    from planning.workspace import workspace_folder

    return Path(os.environ.get(ACCOUNTS_ENV) or workspace_folder() / "accounts.toml")


def load_accounts(path: Path) -> dict[str, Account]:
    """The accounts of ``path`` by name (empty when the file does not exist); a bad file is a
    :class:`PlanningError` naming what is wrong."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PlanningError(f"账户文件 {path} 不是有效的 TOML：{exc}", f"accounts file {path} is not valid TOML: {exc}") from exc
    out = {}
    for name, entry in (data.get("users") or {}).items():
        role, hashed = entry.get("role"), entry.get("password_hash", "")
        if role not in ROLES:
            raise PlanningError(f"账户 {name} 的角色应为 viewer 或 planner，而不是 {role!r}",
                                f"account {name}: role must be viewer or planner, not {role!r}")
        if not str(hashed).startswith(("$2a$", "$2b$", "$2y$")):
            raise PlanningError(f"账户 {name} 缺少 bcrypt 密码散列（请用 pharmacy-plan add-user 创建）",
                                f"account {name} has no bcrypt password hash (create it with pharmacy-plan add-user)")
        out[name] = Account(name, role, hashed)
    return out


def hash_password(password: str) -> str:
    """A bcrypt hash of ``password`` (cost 12)."""
    if not password:
        raise PlanningError("密码不能为空", "the password must not be empty")
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=12)).decode("ascii")


def add_user(path: Path, name: str, role: str, password: str) -> Account:
    """Add or replace account ``name`` in the accounts file (created when missing)."""
    if role not in ROLES:
        raise PlanningError(f"角色应为 viewer 或 planner，而不是 {role!r}", f"role must be viewer or planner, not {role!r}")
    if not name or any(ch in name for ch in "\"\\\n\r[]."):
        raise PlanningError(f"用户名无效：{name!r}", f"invalid user name: {name!r}")
    accounts = load_accounts(path) | {name: Account(name, role, hash_password(password))}
    lines = ["# Accounts of the pharmacy planner app (pharmacy-plan add-user); passwords are bcrypt hashes."]
    for account in accounts.values():
        lines += ["", f'[users."{account.name}"]', f'role = "{account.role}"', f'password_hash = "{account.password_hash}"']
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return accounts[name]


def sign_in(accounts: dict[str, Account], name: str, password: str) -> Account | None:
    """The account when ``password`` is right for ``name``, else None (unknown names take as long)."""
    account = accounts.get(name)
    hashed = account.password_hash.encode("ascii") if account else _DUMMY_HASH
    ok = bcrypt.checkpw(password.encode("utf-8"), hashed)
    return account if ok and account else None


def is_loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; an empty address (all interfaces) is not loopback."""
    if not address:
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve beyond this machine


def gate(address: str | None, accounts: dict[str, Account], path: Path) -> Gate:
    """How to serve on ``address`` with ``accounts`` (from ``path``, named in the refusal)."""
    if accounts:
        return Gate(refused=False, sign_in=True)
    if is_loopback(address):
        return Gate(refused=False, sign_in=False)
    return Gate(refused=True, sign_in=False, reason=SETUP_HELP.format(address=address or "0.0.0.0", path=path))
