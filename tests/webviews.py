"""In-process helpers for the web page's view tests: an app on the test sandbox, upload, confirm, wait. Not a test module."""

from __future__ import annotations

import json
import re
import shutil
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import REPO
from webtools import write_sheet
from flexybulk.target import Target
from flexybulk.web import WebConfig, create_app
from flexybulk.web.auth import Auth, hash_password, load_users

SAMPLES = REPO / "samples"
KAMPAGNE_CERTIFICATES, KAMPAGNE_TOTAL = 18, Decimal("10399.85")
PASSWORDS = {"anna": "anna-kodeord-1", "bo": "bo-kodeord-2", "carl": "carl-kodeord-3"}


@pytest.fixture(scope="module")
def users_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("users") / "users.toml"
    roles = {"anna": ["uploader", "approver"], "bo": ["approver"], "carl": ["uploader"]}
    path.write_text("".join(f'[users.{n}]\npassword = "{hash_password(PASSWORDS[n])}"\nroles = {json.dumps(roles[n])}\n\n'
                            for n in PASSWORDS), encoding="utf-8")
    return path


def _app(tmp_path: Path, settings, *, team_users: Path | None = None, approval_above: str | None = None,
         max_mb: int = 50, allowed_hosts: tuple[str, ...] | None = None) -> tuple:
    target = Target(settings, "sandbox", tmp_path / "ledger.sqlite3")
    config = WebConfig(data_dir=tmp_path / "data", ledger=tmp_path / "ledger.sqlite3", max_file_size=max_mb * 1024 * 1024,
                       team=team_users is not None, approval_above=Decimal(approval_above) if approval_above else None,
                       new_ledger=True, **({"allowed_hosts": allowed_hosts} if allowed_hosts else {}))
    auth = Auth(load_users(team_users) if team_users else None, team=team_users is not None)
    app = create_app(config, target, auth)
    return app, config


@pytest.fixture
def local(tmp_path, settings):
    app, config = _app(tmp_path, settings)
    with TestClient(app, base_url="http://127.0.0.1:8770") as client:
        client.config = config
        yield client


def _upload(client: TestClient, path: Path) -> str:
    with open(path, "rb") as fh:
        answer = client.post("/upload", files={"file": (path.name, fh)}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].rsplit("/", 1)[1]


def _digest(client: TestClient, uid: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = client.get(f"/u/{uid}/confirm").text
        found = re.search(r'name="digest" value="([0-9a-f]{64})"', page)
        if found:
            return found.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no confirmation for {uid}:\n{page}")


def _state(client: TestClient, uid: str, wanted: tuple = ("done", "error", "needs_confirmation"), timeout: float = 30) -> dict:
    path = Path(client.config.data_dir) / "uploads" / uid / "upload.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["state"] in wanted:
            return data
        time.sleep(0.05)
    raise AssertionError(f"upload {uid} is {data['state']}, not {wanted}")


def _issue(client: TestClient, uid: str) -> dict:
    answer = client.post(f"/u/{uid}/confirm", data={"digest": _digest(client, uid)}, follow_redirects=False)
    assert answer.status_code == 303
    return _state(client, uid)


def _stopped_early(client: TestClient, sandbox: Any, path: Path, rows: int) -> str:
    """Upload ``rows`` recipients written to ``path``, confirm, stop the run once two are committed (the sandbox
    slowed so that it is still running), and wait for it to stop; returns the upload id (the sandbox fast again)."""
    from flexybulk.sandbox import Faults

    sandbox.faults = Faults(latency=0.05)
    uid = _upload(client, write_sheet(path, [[f"P {i}", f"p{i}@example.com", "Gavekort", 100, 1, "Webshop"]
                                             for i in range(rows)]))
    client.post(f"/u/{uid}/confirm", data={"digest": _digest(client, uid)})
    _state(client, uid, ("running",))
    while sandbox.state.counts()["committed_orders"] < 2:
        time.sleep(0.01)
    assert client.post(f"/u/{uid}/stop", follow_redirects=False).status_code == 303
    _state(client, uid)
    sandbox.faults = Faults()
    return uid


def _checked_with_invalid_rows(client: TestClient, uid: str) -> None:
    """Wait until the upload's check is done and says its invalid rows block the batch (the confirm page)."""
    deadline = time.monotonic() + 20
    while "nothing can be issued yet" not in client.get(f"/u/{uid}/confirm").text:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copy(SAMPLES / name, tmp_path / name))


@pytest.fixture
def team(tmp_path, settings, users_file):
    app, config = _app(tmp_path, settings, team_users=users_file, approval_above="1000")
    with TestClient(app, base_url="http://127.0.0.1:8770") as client:
        client.config = config
        yield client


def _login(client: TestClient, name: str) -> None:
    """Log ``name`` in on a team-mode client (PASSWORDS); the session cookie is HttpOnly and SameSite=strict."""
    client.cookies.clear()
    answer = client.post("/login", data={"user": name, "password": PASSWORDS[name], "next": "/"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
