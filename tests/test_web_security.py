"""The web page's guard in-process: DNS rebinding, streamed bodies over the limit, the brake on wrong passwords."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from flexybulk.cli.web import _allowed_hosts
from flexybulk.errors import ConfigError
from flexybulk.web.security import LOOPBACK_HOSTS, host_name
from webtools import write_sheet
from webviews import PASSWORDS, _app, _copy, _digest, _upload, local, users_file  # noqa: F401

REBIND = {"Host": "rebind.evil.example:8770", "Origin": "http://rebind.evil.example:8770"}


def _uploads(client: TestClient) -> list[Path]:
    return list((Path(client.config.data_dir) / "uploads").iterdir())


# -- DNS rebinding: only the page's own host names are answered -------------------------------------------


def test_a_rebound_host_name_can_neither_read_nor_upload_nor_confirm_in_local_mode(local, sandbox, tmp_path):
    sheet = write_sheet(tmp_path / "rebind.xlsx", [["Eva", "eva@example.com", "Gavekort", 100, 2, "Webshop"]])
    uid = _upload(local, sheet)
    digest = _digest(local, uid)
    # What a page at http://rebind.evil.example:8770/ sends once its name points at 127.0.0.1.
    page = local.get("/", headers=REBIND)
    assert page.status_code == 400 and "does not answer to the host name 'rebind.evil.example:8770'" in page.text
    assert "Upload" not in page.text and local.get(f"/u/{uid}", headers=REBIND).status_code == 400
    with open(sheet, "rb") as fh:
        answer = local.post("/upload", files={"file": (sheet.name, fh)}, headers=REBIND, follow_redirects=False)
    assert answer.status_code == 400 and len(_uploads(local)) == 1
    assert local.post(f"/u/{uid}/confirm", data={"digest": digest}, headers=REBIND).status_code == 400
    # A forwarded-host header naming 127.0.0.1 does not make the rebound name ours, nor the other way round.
    assert local.get("/", headers={**REBIND, "X-Forwarded-Host": "127.0.0.1:8770"}).status_code == 400
    assert local.get("/", headers={"X-Forwarded-Host": "rebind.evil.example"}).status_code == 400
    time.sleep(0.3)
    assert sandbox.state.counts()["customers"] == 0 and sandbox.state.counts()["certificates"] == 0
    assert local.get(f"/u/{uid}/progress").text.count('data-testid="status-count-ISSUED">0<') == 1
    # The loopback names are the page's own.
    for host in ("127.0.0.1:8770", "localhost:8770", "[::1]:8770", "LOCALHOST"):
        assert local.get("/", headers={"Host": host}).status_code == 200, host
    assert local.get("/healthz", headers={"Host": "evil.example"}).status_code == 400


def test_team_mode_answers_only_to_its_configured_host_names(tmp_path, settings, users_file, sandbox):
    app, config = _app(tmp_path, settings, team_users=users_file, allowed_hosts=("gavekort.firma.dk",))
    with TestClient(app, base_url="http://gavekort.firma.dk") as team:
        team.config = config
        answer = team.post("/login", data={"user": "carl", "password": PASSWORDS["carl"], "next": "/"}, follow_redirects=False)
        assert answer.status_code == 303
        uid = _upload(team, write_sheet(tmp_path / "team.xlsx", [["Dan", "dan@example.com", "Gavekort", 250, 1, "Webshop"]]))
        digest = _digest(team, uid)
        assert team.get("/", headers={"Host": "127.0.0.1:8770"}).status_code == 400  # not a name this server was given
        rebound = {"Host": "rebind.evil.example", "Origin": "http://rebind.evil.example"}
        assert team.post(f"/u/{uid}/confirm", data={"digest": digest}, headers=rebound).status_code == 400
        assert team.get(f"/u/{uid}", headers=rebound).status_code == 400
        time.sleep(0.3)
        assert sandbox.state.counts()["certificates"] == 0
        assert team.get(f"/u/{uid}").status_code == 200


def test_the_allowed_host_names_of_each_mode(users_file, capsys):
    from flexybulk.cli import main

    assert main(["web", "--host", "0.0.0.0", "--users", str(users_file), "--sandbox", "--no-browser", "--port", "0"]) == 2
    assert "listens on every address" in capsys.readouterr().err
    assert _allowed_hosts("127.0.0.1", (), team=False) == LOOPBACK_HOSTS
    with pytest.raises(ConfigError, match="--allowed-host is for team mode"):
        _allowed_hosts("127.0.0.1", ("gavekort.firma.dk",), team=False)
    with pytest.raises(ConfigError, match="give --allowed-host NAME"):
        _allowed_hosts("0.0.0.0", (), team=True)
    assert _allowed_hosts("0.0.0.0", ("Gavekort.Firma.dk", "10.0.0.5"), team=True) == ("gavekort.firma.dk", "10.0.0.5")
    assert _allowed_hosts("gavekort.firma.dk", (), team=True) == ("gavekort.firma.dk",)
    # Behind a reverse proxy on the same machine: the proxy's public name, and the loopback names it may pass on.
    assert _allowed_hosts("127.0.0.1", ("gavekort.firma.dk",), team=True) == ("gavekort.firma.dk", *LOOPBACK_HOSTS)
    with pytest.raises(ConfigError, match="no http://"):
        _allowed_hosts("0.0.0.0", ("https://gavekort.firma.dk/",), team=True)
    assert [host_name(v) for v in ("Example.COM:8770", "[::1]:80", "a b", "x/y", "h:99999", "")] == \
        ["example.com", "::1", None, None, None, None]


# -- a streamed (chunked) body over the limit -----------------------------------------------------------------


def test_a_chunked_upload_over_the_limit_is_answered_413_and_nothing_kept(tmp_path, settings):
    app, config = _app(tmp_path, settings, max_mb=1)
    def body():  # no Content-Length: sent chunked, counted by the guard as it arrives
        yield b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n"
        for _ in range(40):
            yield b"Navn;E-mail\n" * 4096
        yield b"\r\n--x--\r\n"

    with TestClient(app, base_url="http://127.0.0.1:8770") as client:
        client.config = config
        answer = client.post("/upload", content=body(), headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert answer.status_code == 413, answer.text
        assert answer.text == "Refused: the file is larger than the limit of 1.0 MB. Split it into smaller files."
        assert "text/plain" in answer.headers["content-type"]
        assert _uploads(client) == []
        assert client.get("/").status_code == 200  # the server lives on
    assert list((tmp_path / "data" / "tmp").iterdir()) == []  # no spooled part of it left behind


# -- the brake on wrong passwords -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def team(tmp_path, settings, users_file):
    app, config = _app(tmp_path, settings, team_users=users_file)
    with TestClient(app, base_url="http://127.0.0.1:8770") as client:
        client.config = config
        yield client


def _try(client: TestClient, name: str, password: str):
    client.cookies.clear()
    return client.post("/login", data={"user": name, "password": password, "next": "/"}, follow_redirects=False)


def test_after_five_wrong_passwords_a_name_waits_and_unknown_names_are_answered_the_same(team):
    brake = team.app.app.state.web.auth.brake
    clock = brake.clock = Clock()
    for name in ("anna", "nobody"):
        for _ in range(5):
            assert _try(team, name, "wrong").status_code == 401
    locked = {name: _try(team, name, PASSWORDS.get(name, "x")) for name in ("anna", "nobody")}
    for answer in locked.values():
        assert answer.status_code == 429 and answer.headers["retry-after"] == "15" and "set-cookie" not in answer.headers
        assert "Too many wrong attempts. Wait 15 seconds, then try again." in answer.text
    assert locked["anna"].text == locked["nobody"].text  # nothing tells which names exist
    assert _try(team, "carl", PASSWORDS["carl"]).status_code == 303  # another name is not braked
    clock.now += 10
    assert _try(team, "anna", PASSWORDS["anna"]).status_code == 429  # the right password waits too
    clock.now += 6
    assert _try(team, "anna", "wrong again").status_code == 401
    assert _try(team, "anna", PASSWORDS["anna"]).headers["retry-after"] == "30"  # the wait grows
    clock.now += 31
    assert _try(team, "anna", PASSWORDS["anna"]).status_code == 303
    assert _try(team, "anna", "wrong").status_code == 401  # a success cleared the count


def test_one_client_trying_many_names_is_braked_too(team):
    brake = team.app.app.state.web.auth.brake
    brake.clock, brake.client_free = Clock(), 4
    for n in range(4):
        assert _try(team, f"guess{n}", "x").status_code == 401
    answer = _try(team, "bo", PASSWORDS["bo"])
    assert answer.status_code == 429 and "Wait 15 seconds" in answer.text
