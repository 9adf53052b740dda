"""Who may use a served UI, and who may change its documents.

On loopback (the default) the UI is one person's tool and needs no login. A server that
other machines can reach (any other host, or a share link) must not let anonymous clients
change the index: ``qa serve`` refuses to start there without users (``ui.users_file`` with
``user:password`` lines, or ``QA_UI__USERS="alice:pw,bob:pw"``), unless ``--no-auth`` is
given, and then the documents are read-only. With users, Gradio's login guards every route,
and each handler that changes state checks the session's user again on the server side,
whichever route called it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from qa.settings import UISettings


class AccessError(ValueError):
    """The server cannot be started this way safely; the message says what to do."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_users(ui: UISettings) -> tuple[tuple[str, str], ...]:
    """(user, password) pairs from ``ui.users_file`` and ``ui.users``; malformed entries are errors."""
    entries: list[tuple[str, str]] = []
    if ui.users_file is not None:
        path = Path(ui.users_file).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise AccessError(f"Cannot read the users file {path}: {exc}") from exc
        entries += [_pair(line, f"{path}, line {n}") for n, line in enumerate(lines, 1) if _is_entry(line)]
    entries += [_pair(item, "ui.users") for item in ui.users.split(",") if item.strip()]
    return tuple(entries)


def _is_entry(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")


def _pair(entry: str, where: str) -> tuple[str, str]:
    user, sep, password = entry.strip().partition(":")
    if not sep or not user.strip() or not password:
        raise AccessError(f"{where}: expected user:password")
    return user.strip(), password


@dataclass(frozen=True)
class AccessPolicy:
    """``users``: who may log in (none: no login); ``exposed``: reachable from other machines."""

    users: tuple[tuple[str, str], ...] = ()
    exposed: bool = False

    @classmethod
    def for_server(cls, ui: UISettings, *, host: str, share: bool, no_auth: bool) -> AccessPolicy:
        """The policy for ``qa serve``; an exposed server without users is refused unless ``no_auth``."""
        users = load_users(ui)
        exposed = share or not is_loopback(host)
        if exposed and not users and not no_auth:
            where = "a public share link" if share else f"{host}, which other machines can reach"
            raise AccessError(
                f"Refusing to serve on {where} without login. Give users with ui.users_file "
                "(QA_UI__USERS_FILE=FILE, one user:password per line) or QA_UI__USERS='alice:pw', or pass "
                "--no-auth to allow anonymous questions (documents are then read-only)."
            )
        return cls(users, exposed)

    @property
    def login(self) -> bool:
        return bool(self.users)

    def refuse_change(self, username: str | None) -> str | None:
        """Why the session of ``username`` may not add or remove documents (None: it may)."""
        if self.login and not username:
            return "Log in to add or remove documents."
        if self.exposed and not self.login:
            return "Documents are read-only on a server without login (started with --no-auth)."
        return None
