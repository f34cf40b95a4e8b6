"""Accounts: bcrypt hashes in the file, sign-in, roles, and the loopback rule of :func:`planning.accounts.gate`."""

from __future__ import annotations

import subprocess
import sys

import bcrypt
import pytest

from planning import workspace
from planning.accounts import add_user, gate, is_loopback, load_accounts, sign_in
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
