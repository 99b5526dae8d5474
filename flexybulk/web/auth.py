"""Who is using the page: users and roles, passwords (argon2), login sessions, or a trusted proxy header.

Two modes (issue #14):

- **local** (the default, on 127.0.0.1): the one person at this computer,
  named by the OS user, with every role. No login.
- **team** (``--users FILE`` and/or ``--proxy-header NAME``; required when
  listening on anything but loopback): every page and action needs a user.
  Users and roles come from a TOML file::

      [users.anna]
      password = "$argon2id$v=19$m=65536,t=3,p=4$..."   # flexybulk web --hash-password
      roles = ["uploader"]

      [users.bo]
      password = "$argon2id$..."
      roles = ["uploader", "approver"]

  Roles: ``uploader`` (upload, check, fix, confirm), ``approver`` (approve
  another person's batch above the approval amount), ``admin`` (all of it).
  With ``--proxy-header``, a reverse proxy that has authenticated the person
  passes the user name in that header; the page trusts it only because it was
  told to, and takes roles from the users file (a name not in it is an
  uploader).

Passwords are checked with argon2-cffi (``PasswordHasher``, its defaults);
sessions are random 256-bit tokens held in memory (a restarted server asks
people to log in again), sent as an HttpOnly, SameSite=Strict cookie.
Guessing is braked (:class:`LoginBrake`): after 5 wrong passwords for a user
name, or 20 from one client, logins for it wait a growing time, answered the
same whether the name exists or not (OWASP's authentication cheat sheet:
"account lockout" by a delay that grows, not a lock an attacker could hold).
"""

from __future__ import annotations

import getpass
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

ROLES = ("uploader", "approver", "admin")
SESSION_COOKIE = "flexybulk_session"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class User:
    """A person using the page."""

    name: str
    roles: frozenset[str]
    password_hash: str | None = None

    def can(self, role: str) -> bool:
        """True when the user has ``role`` (an admin has every role)."""
        return role in self.roles or "admin" in self.roles


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` for the users file (argon2-cffi's ``PasswordHasher`` defaults)."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def load_users(path: Path | str) -> dict[str, User]:
    """The users of a TOML users file (see the module docstring).

    Raises:
        ConfigError: the file cannot be read, is not TOML, or a user has an unknown role or a bad hash.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read the users file {path}: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"The users file {path} is not valid TOML: {exc}.") from None
    table = data.get("users")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"The users file {path} has no [users.NAME] entries. Add one per person (see the README's web section).")
    users = {}
    for name, entry in table.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"The users file {path}: [users.{name}] must be a table with password and roles.")
        roles = entry.get("roles", ["uploader"])
        if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
            raise ConfigError(f"The users file {path}: user '{name}' has roles {roles!r}; use some of {', '.join(ROLES)}.")
        password = entry.get("password")
        if password is not None and (not isinstance(password, str) or not password.startswith("$argon2")):
            raise ConfigError(f"The users file {path}: user '{name}' needs an argon2 password hash "
                              "(make one with: flexybulk web --hash-password), never the password itself.")
        users[name] = User(name, frozenset(roles), password)
    return users


def local_user() -> User:
    """The person at this computer (local mode): the OS user, with every role."""
    try:
        name = getpass.getuser()
    except Exception:  # no user name in some containers
        name = "local"
    return User(name, frozenset(ROLES))


class LoginLocked(Exception):
    """Too many wrong passwords for this name or from this client: ``seconds`` to wait before the next try."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class LoginBrake:
    """Wrong-password counts per user name and per client, and the wait they impose (in memory, like the sessions).

    After ``free`` failures of a name (``client_free`` of a client), each
    further try must wait ``first_wait`` seconds, doubled per further failure,
    at most ``max_wait``. A success clears the name's count (not the
    client's: one right password among many guesses proves little). Counts
    are forgotten ``forget_after`` seconds after their last failure.
    """

    def __init__(self, *, free: int = 5, client_free: int = 20, first_wait: float = 15.0, max_wait: float = 900.0,
                 forget_after: float = 3600.0, clock: Any = time.monotonic) -> None:
        self.free, self.client_free, self.first_wait, self.max_wait = free, client_free, first_wait, max_wait
        self.forget_after, self.clock = forget_after, clock
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}  # (kind, key) -> (failures, last failure)
        self._lock = threading.Lock()

    def _keys(self, name: str, client: str) -> list[tuple[tuple[str, str], int]]:
        return [(("name", name.strip().casefold()), self.free), (("client", client or "?"), self.client_free)]

    def wait(self, name: str, client: str) -> float:
        """Seconds before ``name`` may try again from ``client`` (0 when it may try now)."""
        now = self.clock()
        longest = 0.0
        with self._lock:
            for key, free in self._keys(name, client):
                failures, last = self._failures.get(key, (0, now))
                if failures >= free:
                    wait = min(self.first_wait * 2 ** (failures - free), self.max_wait)
                    longest = max(longest, last + wait - now)
        return max(longest, 0.0)

    def failed(self, name: str, client: str) -> None:
        """Count a wrong password (or an unknown name: counted the same)."""
        now = self.clock()
        with self._lock:
            if len(self._failures) > 10_000:  # many made-up names: forget the old ones
                self._failures = {k: v for k, v in self._failures.items() if now - v[1] < self.forget_after}
            for key, _ in self._keys(name, client):
                failures, last = self._failures.get(key, (0, now))
                if now - last > self.forget_after:
                    failures = 0
                self._failures[key] = (failures + 1, now)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(("name", name.strip().casefold()), None)


class Auth:
    """Decides who a request comes from.

    Args:
        users: from :func:`load_users`, or ``None``.
        proxy_header: the trusted reverse proxy's user header, or ``None``.
        team: team mode (a login is needed); local mode otherwise.
    """

    def __init__(self, users: dict[str, User] | None = None, proxy_header: str | None = None, *, team: bool = False) -> None:
        self.users = users or {}
        self.proxy_header = proxy_header.lower() if proxy_header else None
        self.team = team
        self._local = local_user()
        self._sessions: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        # Checking an unknown name costs as much as a known one, so timing tells nobody which names exist.
        self._dummy_hash = hash_password(secrets.token_urlsafe(16)) if team and self.users else None
        self.brake = LoginBrake()

    def user_of(self, headers: dict[str, str], cookies: dict[str, str]) -> User | None:
        """The request's user, or ``None`` when team mode has none (not logged in)."""
        if not self.team:
            return self._local
        if self.proxy_header:
            name = headers.get(self.proxy_header, "").strip()
            if name:
                return self.users.get(name) or User(name, frozenset({"uploader"}))
        token = cookies.get(SESSION_COOKIE)
        if not token:
            return None
        with self._lock:
            found = self._sessions.get(token)
            if found is None or found[1] < time.time():
                self._sessions.pop(token, None)
                return None
        return self.users.get(found[0])

    def login(self, name: str, password: str, client: str = "") -> str | None:
        """A new session token when ``password`` is ``name``'s, else ``None``.

        Raises:
            LoginLocked: too many wrong passwords for ``name`` or from ``client`` (:class:`LoginBrake`); the
                password is not even checked, so a right one waits too.
        """
        wait = self.brake.wait(name, client)
        if wait > 0:
            raise LoginLocked(wait)
        if not self._password_ok(name, password):
            self.brake.failed(name, client)
            return None
        self.brake.succeeded(name)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = (name, time.time() + SESSION_SECONDS)
        return token

    def _password_ok(self, name: str, password: str) -> bool:
        from argon2 import PasswordHasher
        from argon2.exceptions import Argon2Error, InvalidHashError

        user = self.users.get(name)
        hashed = user.password_hash if user and user.password_hash else self._dummy_hash
        if not hashed:
            return False
        try:
            PasswordHasher().verify(hashed, password)
        except (Argon2Error, InvalidHashError):
            return False
        return user is not None and bool(user.password_hash)

    def logout(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)
