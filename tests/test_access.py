"""Who may use a served UI and change its documents (``qa.access``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.access import AccessError, AccessPolicy, is_loopback, load_users
from qa.settings import UISettings


def test_users_come_from_a_file_and_from_the_setting(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("# team\nalice:pa:ss\n\n  bob:pw  \n", encoding="utf-8")
    ui = UISettings(users_file=users, users="carol:x, dave:y")
    assert load_users(ui) == (("alice", "pa:ss"), ("bob", "pw"), ("carol", "x"), ("dave", "y"))


@pytest.mark.parametrize("entry", ["alice", ":pw", "alice:"])
def test_a_malformed_user_entry_is_an_error_naming_where(entry: str) -> None:
    with pytest.raises(AccessError, match="ui.users: expected user:password"):
        load_users(UISettings(users=entry))


def test_a_missing_users_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AccessError, match="Cannot read the users file"):
        load_users(UISettings(users_file=tmp_path / "none.txt"))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("192.168.1.5", False), ("example.org", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_an_exposed_server_without_users_is_refused_unless_no_auth() -> None:
    with pytest.raises(AccessError, match="0.0.0.0, which other machines can reach.*--no-auth"):
        AccessPolicy.for_server(UISettings(), host="0.0.0.0", share=False, no_auth=False)
    with pytest.raises(AccessError, match="public share link"):
        AccessPolicy.for_server(UISettings(), host="127.0.0.1", share=True, no_auth=False)
    anonymous = AccessPolicy.for_server(UISettings(), host="0.0.0.0", share=False, no_auth=True)
    assert anonymous.exposed and not anonymous.login
    assert anonymous.refuse_change(None) is not None and anonymous.refuse_change("x") is not None  # read-only


def test_who_may_change_documents() -> None:
    local = AccessPolicy.for_server(UISettings(), host="127.0.0.1", share=False, no_auth=False)
    assert local.refuse_change(None) is None  # one person's tool on loopback
    team = AccessPolicy.for_server(UISettings(users="alice:pw"), host="0.0.0.0", share=False, no_auth=False)
    assert team.refuse_change(None) == "Log in to add or remove documents."
    assert team.refuse_change("alice") is None
