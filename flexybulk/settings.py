"""Run settings, built once from flags and the environment, then frozen.

Sources, in order of precedence: command-line flags, then environment
variables (``FLEXYBOX_TOKEN``, ``FLEXYBOX_CRM_URL``, ``FLEXYBOX_POS_URL``,
``FLEXYBOX_API_URL``), then the vendor's hosts (the help article in
``shared/seed/000_804ffc5ff5288df9.txt``).
"""

from __future__ import annotations

import ipaddress
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError

DEFAULT_CRM_URL = "https://crm.flexybox.com"
DEFAULT_POS_URL = "https://pos.flexybox.com"
DEFAULT_API_URL = "https://api.flexybox.com"

TOKEN_ENV = "FLEXYBOX_TOKEN"
URL_ENVS = {"crm": "FLEXYBOX_CRM_URL", "pos": "FLEXYBOX_POS_URL", "api": "FLEXYBOX_API_URL"}


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` give ``'***'``.

    Use ``.reveal()`` at the one place the value is needed (the
    Authorization header), so the token cannot leak into logs, messages or
    tracebacks by accident (issue #6).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def canonical_target(url: str) -> str:
    """The one spelling of a Flexybox base URL under which its batches are recorded (issue #11).

    ``HTTP://LOCALHOST:8780/``, ``http://localhost:8780`` and
    ``http://127.0.0.1:8780`` are one Flexybox, and a ledger that compared them
    as text would let each spelling issue the same file again. Rules: scheme
    and host lower-cased, a trailing dot of the host and trailing slashes of
    the path dropped, the scheme's default port dropped (RFC 3986 6.2.3), and
    ``localhost``, ``127.0.0.1`` and ``::1`` all written ``127.0.0.1`` (the
    same machine's loopback; other 127.x addresses stay distinct, as they may
    be other servers). Anything that is not an http(s) URL with a host (such as
    ``"sandbox"``, the in-process sandbox's name) is returned unchanged.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return url
    if host in _LOOPBACK_NAMES:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host += f":{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), "", ""))


def check_base_url(name: str, url: str) -> str:
    """Return ``url`` without a trailing slash, or raise ``ConfigError``.

    Rule (issue #6): ``https://`` is required, except for loopback hosts
    (the sandbox), which may use ``http://``. The URL must have a host and
    no query, fragment or user part (credentials there would be sent in
    place of the bearer token, or logged).
    """
    parts = urlsplit(url.strip())
    what = f"The {name.upper()} base URL '{url}'"
    if parts.username is not None or parts.password is not None:
        # Said without echoing the URL: its user part may hold a password.
        raise ConfigError(f"The {name.upper()} base URL must not contain a user name or password (user@host); "
                          "give https://host only. Flexybox takes the bearer token from FLEXYBOX_TOKEN or --token-file.")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} is not an http(s) URL. Give it as https://host, e.g. {DEFAULT_POS_URL}.")
    if parts.query or parts.fragment:
        raise ConfigError(f"{what} must not have a query or fragment.")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{what} uses plain http. Only https:// is allowed, except for the local sandbox "
            "on 127.0.0.1 or localhost, because the token and customer data would travel unencrypted."
        )
    return url.strip().rstrip("/")


@dataclass(frozen=True)
class Settings:
    """Everything the client needs to reach Flexybox.

    Attributes:
        token: the bearer token (never printed; see :class:`Secret`).
        crm_url, pos_url, api_url: base URLs of the three hosts, no trailing slash.
        connect_timeout, read_timeout: per call, in seconds.
        max_attempts: attempts per call, the first included (retries = attempts - 1).
        backoff: base of the exponential back-off between attempts, in seconds.
        max_backoff: the longest single wait between attempts, in seconds.
        workers: rows issued concurrently.
        rate: the most calls per second across all workers, or ``None`` for no cap.
    """

    token: Secret
    crm_url: str = DEFAULT_CRM_URL
    pos_url: str = DEFAULT_POS_URL
    api_url: str = DEFAULT_API_URL
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    workers: int = 4
    rate: float | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.token:
            raise ConfigError(
                f"No Flexybox token. Set the environment variable {TOKEN_ENV} (or use --token-file), "
                "or try the built-in sandbox with --sandbox."
            )
        for name in ("crm", "pos", "api"):
            object.__setattr__(self, f"{name}_url", check_base_url(name, getattr(self, f"{name}_url")))
        if self.max_attempts < 1:
            raise ConfigError("--max-attempts must be at least 1.")
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1.")
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ConfigError("--rate must be a positive number of calls per second, such as 10.")
        for timeout in (self.connect_timeout, self.read_timeout):
            if not (math.isfinite(timeout) and 0 < timeout <= 3600):
                raise ConfigError("--timeout must be a number of seconds between 0 and 3600, such as 60.")


def find_token(token: str | None, token_file: str | None) -> tuple[str | None, list[str]]:
    """Find the bearer token: ``--token-file``, ``--token``, ``$FLEXYBOX_TOKEN``, then the OS keyring.

    Returns ``(token or None, warnings)``. A token file readable by other
    users, or a token given on the command line (visible in the process list
    to other users), works but warns (issue #6).

    Raises:
        ConfigError: the token file cannot be read or is empty.
    """
    warnings: list[str] = []
    if token_file:
        path = Path(token_file).expanduser()
        try:
            mode = path.stat().st_mode
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"Cannot read the token file {path}: {exc.strerror}.") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(f"the token file {path} can be read by other users. Run: chmod 600 {path}")
        if not value:
            raise ConfigError(f"The token file {path} is empty. Put the Flexybox token in it.")
        return value, warnings
    if token:
        warnings.append(f"a token given with --token is visible to other users of this machine (process list, shell history). Prefer {TOKEN_ENV} or --token-file.")
        return token, warnings
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, warnings
    try:  # optional: the OS keyring, when the keyring package is installed
        import keyring  # type: ignore

        value = keyring.get_password("flexybulk", "token")
        if value:
            return value, warnings
    except Exception:  # no keyring package or no backend: not an error, just no token from there
        pass
    return None, warnings
