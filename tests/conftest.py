"""Shared fixtures: an isolated environment, the sandbox on 127.0.0.1, settings for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from flexybulk.sandbox import Faults, Sandbox
from flexybulk.settings import TOKEN_ENV, URL_ENVS, Secret, Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_INPUTS = REPO.parent / "shared" / "inputs"


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No real token or URLs leak in from the developer's shell; every test has its own ledger."""
    for var in (TOKEN_ENV, *URL_ENVS.values()):
        monkeypatch.delenv(var, raising=False)
    ledger = tmp_path_factory.mktemp("ledger") / "ledger.sqlite3"  # beside tmp_path, which tests may expect empty
    monkeypatch.setenv("FLEXYBULK_LEDGER", str(ledger))
    # A named ledger must exist (issue #11: never a silent new ledger), as it would after its first --new-ledger run.
    from flexybulk.journal import Journal

    Journal(ledger).close()
    return ledger


@pytest.fixture(scope="session")
def sandbox_server():
    """One sandbox for the session (started once: fast); see ``sandbox`` for a clean one per test."""
    with Sandbox(port=0) as sb:
        yield sb


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The session's sandbox, emptied and without faults."""
    sandbox_server.state.reset()
    sandbox_server.faults = Faults()
    yield sandbox_server
    sandbox_server.faults = Faults()


@pytest.fixture
def settings(sandbox: Sandbox) -> Settings:
    """Client settings pointing all three hosts at the sandbox, with quick back-off."""
    return Settings(token=Secret(sandbox.token), crm_url=sandbox.url, pos_url=sandbox.url, api_url=sandbox.url,
                    max_attempts=4, backoff=0.01, max_backoff=0.05, read_timeout=10)


@pytest.fixture
def sandbox_env(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> Sandbox:
    """Environment variables pointing the CLI at the sandbox (as a real user would set them)."""
    monkeypatch.setenv(TOKEN_ENV, sandbox.token)
    for var in URL_ENVS.values():
        monkeypatch.setenv(var, sandbox.url)
    return sandbox


def shared_input(name: str) -> Path:
    """A file of ``../shared/inputs``; the test is skipped when the folder is absent."""
    path = SHARED_INPUTS / name
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared inputs live beside the repository)")
    return path
