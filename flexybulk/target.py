"""Where a batch goes: the Flexybox a run talks to (or the built-in sandbox) and the name its batches carry.

A :class:`Target` bundles what both faces (the command line and the web
page) need before any call: the client :class:`~flexybulk.settings.Settings`,
the name under which batches are recorded in the ledger (resume and
duplicate protection only ever compare batches of the same target), the
default ledger for it, and the in-process sandbox when one was started.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from .settings import DEFAULT_API_URL, DEFAULT_CRM_URL, DEFAULT_POS_URL, Secret, Settings, canonical_target, find_token

SANDBOX = "sandbox"
"""The target name of every run against the built-in in-process sandbox."""


@dataclass
class Target:
    """One Flexybox (or the sandbox) as a run sees it.

    Attributes:
        settings: URLs, token, timeouts and pacing for the client.
        name: the ledger's name for it: ``"sandbox"`` or the POS base URL in its canonical
            spelling (:func:`~flexybulk.settings.canonical_target`).
        ledger_default: the ledger used when none is given (``$FLEXYBULK_LEDGER``, else the user's data folder).
        sandbox: the running in-process :class:`~flexybulk.sandbox.Sandbox`, or ``None``.
        ledger_named: ``ledger_default`` was named by the person (``$FLEXYBULK_LEDGER``): it is
            never created without being asked for (``--new-ledger``).
        warnings: things the user should hear about the configuration (a token
            file others can read), in plain words.
    """

    settings: Settings
    name: str
    ledger_default: Path
    sandbox: Any = None
    warnings: list[str] = field(default_factory=list)
    ledger_named: bool = False

    @property
    def is_sandbox(self) -> bool:
        """True for the built-in sandbox."""
        return self.name == SANDBOX

    @property
    def label(self) -> str:
        """The target in words, for a confirmation: ``"the SANDBOX"`` or ``"Flexybox at pos.flexybox.com"``."""
        if self.is_sandbox:
            return "the SANDBOX"
        return f"Flexybox at {urlsplit(self.settings.pos_url).netloc or self.settings.pos_url}"


def default_ledger(sandbox: bool = False) -> Path:
    """The ledger used when none is given (``$FLEXYBULK_LEDGER``, else the user's data folder)."""
    from .journal import default_ledger_path

    return default_ledger_path(sandbox=sandbox)


def _ledger(sandbox: bool) -> dict:
    from .journal import ledger_choice

    path, named = ledger_choice(None, sandbox=sandbox)
    return {"ledger_default": path, "ledger_named": named}


@contextlib.contextmanager
def connect(*, sandbox: bool = False, token: str | None = None, token_file: str | None = None,
            crm_url: str | None = None, pos_url: str | None = None, api_url: str | None = None,
            timeout: float = 60.0, max_attempts: int = 5, workers: int = 4, rate: float | None = None) -> Iterator[Target]:
    """The target of one command (or one web server), for as long as the ``with`` block runs.

    With ``sandbox``, starts the built-in sandbox on 127.0.0.1 (a free port)
    and stops it at the end; its runs keep their own ledger
    (``sandbox-ledger.sqlite3``), apart from the record of real money.
    Otherwise the token comes from :func:`~flexybulk.settings.find_token`
    (``token_file``, ``token``, ``$FLEXYBOX_TOKEN``, the OS keyring) and the
    URLs default to the vendor's hosts. ``timeout`` is seconds per answer.

    Raises:
        ConfigError: no token, an unreadable token file, a bad URL or option.
    """
    if sandbox:
        from .sandbox import Sandbox

        with Sandbox(port=0) as sb:
            settings = Settings(token=Secret(sb.token), crm_url=sb.url, pos_url=sb.url, api_url=sb.url,
                                read_timeout=timeout, max_attempts=max_attempts, workers=workers, rate=rate)
            yield Target(settings, SANDBOX, sandbox=sb, **_ledger(True))
        return
    value, warnings = find_token(token, token_file)
    settings = Settings(
        token=Secret(value or ""),
        crm_url=crm_url or DEFAULT_CRM_URL,
        pos_url=pos_url or DEFAULT_POS_URL,
        api_url=api_url or DEFAULT_API_URL,
        read_timeout=timeout, max_attempts=max_attempts, workers=workers, rate=rate,
    )
    yield Target(settings, canonical_target(settings.pos_url), warnings=warnings, **_ledger(False))
