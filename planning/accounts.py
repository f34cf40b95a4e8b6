"""Who may use the app: accounts with bcrypt-hashed passwords, roles viewer and planner.

The accounts file is TOML (default ``accounts.toml`` in the workspace folder, or ``$PHARMACY_PLANNER_ACCOUNTS``)::

    [users.zhang]
    role = "planner"            # planner: edits, checks, register; viewer: reads only
    password_hash = "$2b$12$..."  # written by: pharmacy-plan add-user zhang --role planner

No password is ever stored in clear. :func:`gate` decides how the app serves: on a loopback address
(127.0.0.1, ::1, localhost) without accounts it serves one local planner; beyond loopback it refuses
unless accounts or a reverse proxy's identity are configured, and with accounts it asks everyone to sign in.

Behind a bureau's reverse proxy that signs users in itself (its intranet single sign-on), the same file may
let the proxy's identity header name the user (:class:`ProxyIdentity`); it is honoured only when switched
on and only on connections from the listed proxy addresses, everyone else signs in with the accounts::

    [proxy]
    enabled = true                       # off unless set to true
    header = "X-Remote-User"             # the header the proxy sets (it must replace any the browser sent)
    trusted = ["10.20.0.5", "127.0.0.1"] # addresses or networks (CIDR) of the proxy
    default_role = "viewer"              # role of a proxy user not listed below (default viewer)

    [proxy.roles]
    zhang = "planner"
"""

from __future__ import annotations

import functools
import getpass
import ipaddress
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from planning.errors import PlanningError
from planning.text import Text

ACCOUNTS_ENV = "PHARMACY_PLANNER_ACCOUNTS"
ROLES = ("viewer", "planner")


@functools.cache
def _dummy_hash() -> bytes:
    """A hash to check against when the user is unknown, so a wrong name costs the same time as a wrong
    password (made on the first sign-in, not at import: it takes a quarter of a second)."""
    return bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=12))


SETUP_HELP = Text(
    "本应用监听的地址 {address} 不是本机回环地址，但尚未配置账户，因此拒绝服务。请先创建账户："
    "pharmacy-plan add-user 用户名 --role planner（或 viewer），账户保存在 {path}（密码以 bcrypt 散列保存）；"
    "或在该文件的 [proxy] 节中启用反向代理的身份请求头（见 README）；"
    "或改为仅在本机使用：streamlit run app.py --server.address 127.0.0.1。",
    "The app listens on {address}, which is not a loopback address, and no accounts are configured: it refuses "
    "to serve. Create accounts first: pharmacy-plan add-user NAME --role planner (or viewer); they are kept in "
    "{path} (passwords as bcrypt hashes). Or switch on the reverse proxy's identity header in that file's [proxy] "
    "table (see the README). Or serve this machine only: streamlit run app.py --server.address 127.0.0.1.")
#: Shown to a connection the proxy did not identify when there are no accounts to sign in with.
NOT_IDENTIFIED = Text(
    "未能识别用户：请通过本单位的反向代理访问本应用（直接访问或代理未提供身份请求头 {header}），本应用没有可登录的账户。",
    "You were not identified: open the app through the bureau's reverse proxy (this connection came directly, or "
    "the proxy sent no {header} header); the app has no accounts to sign in with.")
#: Longest user name taken from a proxy header (characters); a longer value identifies no one.
MAX_PROXY_NAME = 128


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
    """``$PHARMACY_PLANNER_ACCOUNTS`` or ``accounts.toml`` in the workspace folder (for a PostgreSQL
    workspace, in ``~/.pharmacy-planner``: :func:`planning.workspace.settings_folder`)."""
    from planning.workspace import settings_folder

    return Path(os.environ.get(ACCOUNTS_ENV) or settings_folder() / "accounts.toml")


def read_access_file(path: Path) -> dict:
    """The parsed accounts file (empty when it does not exist); bad TOML is a :class:`PlanningError`."""
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PlanningError(f"账户文件 {path} 不是有效的 TOML：{exc}", f"accounts file {path} is not valid TOML: {exc}") from exc


def load_accounts(path: Path) -> dict[str, Account]:
    """The accounts of ``path`` by name (empty when the file does not exist); a bad file is a
    :class:`PlanningError` naming what is wrong."""
    data = read_access_file(path)
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
    lines += other_tables(path.read_text(encoding="utf-8") if path.is_file() else "")
    for account in accounts.values():
        lines += ["", f'[users."{account.name}"]', f'role = "{account.role}"', f'password_hash = "{account.password_hash}"']
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return accounts[name]


#: A TOML table header line, and the name it opens (``users``, ``users."zhang"``, ``proxy.roles``).
_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]*?)\s*\]\]?\s*(#.*)?$")


def other_tables(text: str) -> list[str]:
    """The lines of accounts-file ``text`` outside its ``users`` tables (the ``[proxy]`` settings and their
    comments), as they are, so :func:`add_user` rewrites the accounts and keeps the rest. The header comment
    :func:`add_user` writes itself is left out."""
    kept, in_users = [], False
    for line in text.splitlines():
        header = _TABLE_HEADER.match(line)
        if header:
            name = header.group(1)
            in_users = name == "users" or name.startswith("users.")
        if not in_users and not line.startswith("# Accounts of the pharmacy planner app"):
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


def sign_in(accounts: dict[str, Account], name: str, password: str) -> Account | None:
    """The account when ``password`` is right for ``name``, else None (unknown names take as long)."""
    account = accounts.get(name)
    hashed = account.password_hash.encode("ascii") if account else _dummy_hash()
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


def gate(address: str | None, accounts: dict[str, Account], path: Path,
         proxy: ProxyIdentity | None = None) -> Gate:
    """How to serve on ``address`` with ``accounts`` and ``proxy`` (both from ``path``, named in the refusal):
    with either, everyone is identified (by the proxy or by signing in)."""
    if accounts or proxy is not None:
        return Gate(refused=False, sign_in=True)
    if is_loopback(address):
        return Gate(refused=False, sign_in=False)
    return Gate(refused=True, sign_in=False, reason=SETUP_HELP.format(address=address or "0.0.0.0", path=path))


# ----------------------------------------------------------------------------- identity from a reverse proxy
#: A header name as HTTP allows it (RFC 9110 token characters).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class ProxyIdentity:
    """The reverse proxy's identity header, switched on in the accounts file's ``[proxy]`` table.

    ``header``: the request header naming the signed-in user; ``trusted``: the networks the proxy
    connects from (a single address is a /32 or /128 network); ``roles``: (name, role) pairs;
    ``default_role``: the role of a name not in ``roles``."""

    header: str
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    roles: tuple[tuple[str, str], ...] = ()
    default_role: str = "viewer"

    def trusts(self, peer: str | None) -> bool:
        """Whether ``peer`` (the address the connection comes from) is one of the proxy's; an unknown or
        unreadable address is not."""
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:10.20.0.5 is 10.20.0.5
        return any(address in network for network in self.trusted)

    def user(self, peer: str | None, header_values: Sequence[str]) -> Account | None:
        """The user the proxy names, when the connection comes from a trusted ``peer`` and carries exactly
        one value of the header (``header_values``: every value the request has); else None. A proxy
        user has no password hash: only the proxy signs them in."""
        if not self.trusts(peer) or len(header_values) != 1:
            return None  # several values: one may be the browser's own, which the proxy failed to replace
        name = header_values[0].strip()
        if not name or len(name) > MAX_PROXY_NAME or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
            return None
        return Account(name, dict(self.roles).get(name, self.default_role), "")


def load_proxy(path: Path) -> ProxyIdentity | None:
    """The ``[proxy]`` table of the accounts file ``path`` when it is switched on (``enabled = true``),
    else None; a bad table is a :class:`PlanningError` naming what is wrong."""
    table = read_access_file(path).get("proxy")
    if table is None:
        return None
    if not isinstance(table, dict) or not isinstance(table.get("enabled", False), bool):
        raise PlanningError(f"账户文件 {path}：[proxy] 的 enabled 应为 true 或 false",
                            f"accounts file {path}: [proxy] enabled must be true or false")
    if not table.get("enabled", False):
        return None
    header = table.get("header")
    if not isinstance(header, str) or not _HEADER_NAME.match(header):
        raise PlanningError(f"账户文件 {path}：[proxy] 需要有效的请求头名称 header，而不是 {header!r}",
                            f"accounts file {path}: [proxy] needs a valid header name, not {header!r}")
    trusted = table.get("trusted")
    if not isinstance(trusted, list) or not trusted:
        raise PlanningError(f"账户文件 {path}：[proxy] 需要代理服务器地址列表 trusted",
                            f"accounts file {path}: [proxy] needs the list of proxy addresses, trusted")
    networks = []
    for entry in trusted:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=True))
        except ValueError as exc:
            raise PlanningError(f"账户文件 {path}：[proxy] trusted 中的 {entry!r} 不是 IP 地址或网段：{exc}",
                                f"accounts file {path}: [proxy] trusted entry {entry!r} is not an IP address or "
                                f"network: {exc}") from exc
    roles = table.get("roles") or {}
    if not isinstance(roles, dict):
        raise PlanningError(f"账户文件 {path}：[proxy.roles] 应为“用户名 = 角色”的表",
                            f"accounts file {path}: [proxy.roles] must be a table of name = role")
    default_role = table.get("default_role", "viewer")
    for name, role in [("default_role", default_role), *roles.items()]:
        if role not in ROLES:
            raise PlanningError(f"账户文件 {path}：[proxy] 中 {name} 的角色应为 viewer 或 planner，而不是 {role!r}",
                                f"accounts file {path}: [proxy] {name}: role must be viewer or planner, not {role!r}")
    return ProxyIdentity(header, tuple(networks), tuple((str(n), r) for n, r in roles.items()), default_role)
