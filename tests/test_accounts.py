"""Accounts: bcrypt hashes in the file, sign-in, roles, and the loopback rule of :func:`planning.accounts.gate`."""

from __future__ import annotations

import subprocess
import sys

import bcrypt
import pytest

from planning import workspace
from planning.accounts import add_user, gate, is_loopback, load_accounts, load_proxy, sign_in
from planning.errors import PlanningError
from planning.scenario import RemoveSite


def test_passwords_are_stored_as_bcrypt_hashes_and_checked(tmp_path):
    path = tmp_path / "accounts.toml"
    add_user(path, "zhang", "planner", "正确的密码 1")
    add_user(path, "li", "viewer", "another")
    text = path.read_text(encoding="utf-8")
    assert "正确的密码" not in text and "another" not in text
    accounts = load_accounts(path)
    assert bcrypt.checkpw("正确的密码 1".encode(), accounts["zhang"].password_hash.encode())
    assert sign_in(accounts, "zhang", "正确的密码 1").role == "planner"
    assert sign_in(accounts, "zhang", "wrong") is None and sign_in(accounts, "nobody", "another") is None
    assert sign_in(accounts, "li", "another").can_write is False
    add_user(path, "li", "planner", "changed")  # replacing keeps the others
    assert {a.name: a.role for a in load_accounts(path).values()} == {"zhang": "planner", "li": "planner"}


def test_bad_accounts_files_say_what_is_wrong(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('[users.x]\nrole = "admin"\npassword_hash = "$2b$12$abc"\n', encoding="utf-8")
    with pytest.raises(PlanningError, match="viewer or planner"):
        load_accounts(path)
    path.write_text('[users.x]\nrole = "viewer"\npassword_hash = "plain text"\n', encoding="utf-8")
    with pytest.raises(PlanningError, match="bcrypt"):
        load_accounts(path)
    with pytest.raises(PlanningError):
        add_user(path.with_name("b.toml"), "x", "viewer", "")
    assert load_accounts(tmp_path / "missing.toml") == {}


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("", False), (None, False), ("10.0.0.5", False), ("::", False), ("intranet-host", False),
])
def test_loopback_addresses(address, loopback):
    assert is_loopback(address) is loopback


def test_beyond_loopback_needs_accounts_and_says_how_to_set_them_up(tmp_path):
    path = tmp_path / "accounts.toml"
    refused = gate("0.0.0.0", {}, path)
    assert refused.refused and "pharmacy-plan add-user" in refused.reason.en and str(path) in refused.reason.zh
    assert not gate("127.0.0.1", {}, path).refused and not gate("127.0.0.1", {}, path).sign_in
    add_user(path, "zhang", "planner", "pw")
    assert gate("0.0.0.0", load_accounts(path), path).sign_in and gate("127.0.0.1", load_accounts(path), path).sign_in


def test_a_viewers_project_refuses_every_change(tmp_path):
    path = tmp_path / "p.sqlite"
    workspace.open(path, who="zhang").append_edit("s", RemoveSite("P1"))
    viewer = workspace.open(path, who="li", read_only=True)
    assert viewer.edits("s") == (RemoveSite("P1"),)
    for write in (lambda: viewer.append_edit("s", RemoveSite("P2")), lambda: viewer.undo_edit("s"),
                  lambda: viewer.set_policy("default", {}), lambda: viewer.rename("x")):
        with pytest.raises(workspace.WorkspaceError, match="viewer"):
            write()
    assert viewer.edits("s") == (RemoveSite("P1"),)


def test_add_user_on_the_command_line(tmp_path):
    path = tmp_path / "accounts.toml"
    done = subprocess.run([sys.executable, "-m", "planning", "add-user", "wang", "--role", "planner", "--accounts",
                           str(path), "--password-stdin"], input="s3cret\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sign_in(load_accounts(path), "wang", "s3cret").role == "planner"


# ----------------------------------------------------------------------------- identity from a reverse proxy
PROXY_TABLE = """
[proxy]
enabled = true
header = "X-Remote-User"
trusted = ["10.20.0.5", "192.168.7.0/24", "::1"]

[proxy.roles]
zhang = "planner"
"""


def test_the_proxy_header_names_the_user_only_from_a_trusted_proxy(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text(PROXY_TABLE, encoding="utf-8")
    proxy = load_proxy(path)
    assert proxy.header == "X-Remote-User" and proxy.default_role == "viewer"
    planner = proxy.user("10.20.0.5", ["zhang"])
    assert (planner.name, planner.role, planner.password_hash) == ("zhang", "planner", "")
    assert proxy.user("192.168.7.200", [" li "]).name == "li"  # in the trusted network; spaces trimmed
    assert proxy.user("192.168.7.200", ["li"]).role == "viewer" and not proxy.user("::1", ["li"]).can_write
    assert proxy.user("::ffff:10.20.0.5", ["zhang"]).name == "zhang"  # IPv4-mapped form of a trusted address
    # Not from the proxy: the header is anyone's to forge, so it names no one.
    for peer in ("10.20.0.6", "192.168.8.1", "127.0.0.1", None, "", "not-an-address"):
        assert proxy.user(peer, ["zhang"]) is None, peer
    # No value, an empty one, or two (the browser's own beside the proxy's): no one.
    for values in ([], [""], ["  "], ["li", "zhang"], ["a\nb"], ["x" * 129]):
        assert proxy.user("10.20.0.5", values) is None, values


def test_the_proxy_is_off_unless_switched_on(tmp_path):
    path = tmp_path / "accounts.toml"
    assert load_proxy(path) is None  # no file
    path.write_text(PROXY_TABLE.replace("enabled = true", "enabled = false"), encoding="utf-8")
    assert load_proxy(path) is None
    path.write_text(PROXY_TABLE.replace("enabled = true\n", ""), encoding="utf-8")
    assert load_proxy(path) is None  # enabled missing: off
    add_user(path, "wang", "viewer", "pw")  # accounts and the proxy table live side by side
    assert load_proxy(path) is None and set(load_accounts(path)) == {"wang"}


@pytest.mark.parametrize("change, message", [
    (("enabled = true", 'enabled = "yes"'), "true or false"),
    (('header = "X-Remote-User"', 'header = "X Remote User"'), "header name"),
    (('header = "X-Remote-User"\n', ""), "header name"),
    (('trusted = ["10.20.0.5", "192.168.7.0/24", "::1"]', "trusted = []"), "proxy addresses"),
    (('"192.168.7.0/24"', '"192.168.7.1/24"'), "not an IP address or network"),
    (('"10.20.0.5"', '"proxy.example"'), "not an IP address or network"),
    (('zhang = "planner"', 'zhang = "admin"'), "viewer or planner"),
    (("[proxy.roles]", 'default_role = "root"\n[proxy.roles]'), "viewer or planner"),
])
def test_a_bad_proxy_table_says_what_is_wrong(tmp_path, change, message):
    path = tmp_path / "accounts.toml"
    path.write_text(PROXY_TABLE.replace(*change), encoding="utf-8")
    with pytest.raises(PlanningError, match=message):
        load_proxy(path)


def test_beyond_loopback_the_proxy_alone_lets_the_app_serve(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text(PROXY_TABLE, encoding="utf-8")
    served = gate("0.0.0.0", load_accounts(path), path, load_proxy(path))
    assert not served.refused and served.sign_in
    assert "[proxy]" in gate("0.0.0.0", {}, path).reason.en  # the refusal names the option


def test_adding_a_user_keeps_the_proxy_table(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text("# set by the bureau's IT\n" + PROXY_TABLE, encoding="utf-8")
    add_user(path, "wang", "viewer", "pw")
    add_user(path, "zhao", "planner", "pw2")
    add_user(path, "wang", "planner", "pw3")  # replacing an account twice leaves one copy of everything
    text = path.read_text(encoding="utf-8")
    assert text.count("[proxy]") == 1 and text.count("# set by the bureau's IT") == 1
    assert text.count("# Accounts of the pharmacy planner app") == 1
    assert load_proxy(path).user("10.20.0.5", ["zhang"]).role == "planner"
    assert {a.name: a.role for a in load_accounts(path).values()} == {"wang": "planner", "zhao": "planner"}
    assert sign_in(load_accounts(path), "wang", "pw3") is not None
