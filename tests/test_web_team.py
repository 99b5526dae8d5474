"""The web page in team mode, in-process: who may do what, and the face holding no money rule (issue #14)."""

from __future__ import annotations

import ast
import json
import time
from decimal import Decimal

import pytest
from starlette.testclient import TestClient

from conftest import REPO
from flexybulk.cli import main
from flexybulk.target import Target
from flexybulk.web import WebConfig, create_app
from flexybulk.web.auth import Auth, load_users
from webtools import write_sheet
from webviews import KAMPAGNE_CERTIFICATES, PASSWORDS, _app, _copy, _digest, _issue, _login, _state, _upload, team, users_file  # noqa: F401

# -- team mode ---------------------------------------------------------------------------------------


def test_team_mode_refuses_to_start_without_a_users_file(capsys):
    assert main(["web", "--host", "0.0.0.0", "--sandbox", "--no-browser", "--port", "0"]) == 2
    assert "refuses to listen on 0.0.0.0 without authentication" in capsys.readouterr().err
    assert main(["web", "--approval-above", "100", "--sandbox", "--no-browser", "--port", "0"]) == 2


def test_a_users_file_with_a_plain_password_is_refused(tmp_path):
    path = tmp_path / "users.toml"
    path.write_text('[users.anna]\npassword = "hemmelig"\nroles = ["uploader"]\n', encoding="utf-8")
    from flexybulk.errors import ConfigError

    with pytest.raises(ConfigError, match="argon2 password hash"):
        load_users(path)


def test_without_a_login_every_page_redirects_and_every_action_answers_401(team):
    app = team.app.app
    checked = 0
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith(("/login", "/static", "/lang", "/healthz")):
            continue
        url = path.replace("{uid}", "0123456789abcdef0123")
        for method in sorted(route.methods or []):
            if method == "HEAD":
                continue
            answer = team.request(method, url, follow_redirects=False)
            if method == "GET":
                assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next="), url
            else:
                assert answer.status_code == 401, (method, url)
            checked += 1
    assert checked >= 18
    assert team.get("/u/x/progress?fragment=1", headers={"HX-Request": "true"}).status_code == 401


def test_a_trusted_proxy_header_names_the_user_and_roles_come_from_the_users_file(tmp_path, settings, users_file, sandbox):
    target = Target(settings, "sandbox", tmp_path / "ledger.sqlite3")
    config = WebConfig(data_dir=tmp_path / "data", ledger=tmp_path / "ledger.sqlite3", team=True, new_ledger=True,
                       approval_above=Decimal("1000"))
    app = create_app(config, target, Auth(load_users(users_file), "X-Remote-User", team=True))
    with TestClient(app, base_url="http://127.0.0.1:8770") as client:
        assert client.get("/", follow_redirects=False).status_code == 303  # no header: the login
        carl = {"X-Remote-User": "carl"}
        with open(_copy("kampagne.xlsx", tmp_path), "rb") as fh:
            uid = client.post("/upload", files={"file": ("kampagne.xlsx", fh)}, headers=carl, follow_redirects=False) \
                .headers["location"].rsplit("/", 1)[1]
        page = client.get(f"/u/{uid}", headers=carl)
        assert page.status_code == 200 and "carl" in page.text
        assert client.get(f"/u/{uid}", headers={"X-Remote-User": "dora"}).status_code == 404  # a stranger: an uploader
        assert client.get(f"/u/{uid}", headers={"X-Remote-User": "bo"}).status_code == 200  # an approver


def test_a_wrong_password_is_refused(team):
    answer = team.post("/login", data={"user": "anna", "password": "wrong"}, follow_redirects=False)
    assert answer.status_code == 401 and "set-cookie" not in answer.headers
    assert team.post("/login", data={"user": "nobody", "password": "x"}).status_code == 401


def test_an_uploader_cannot_approve_their_own_batch_and_an_approver_can(team, sandbox, tmp_path):
    _login(team, "anna")
    uid = _upload(team, _copy("kampagne.xlsx", tmp_path))
    digest = _digest(team, uid)
    assert "another person with the approver role must approve" in team.get(f"/u/{uid}/confirm").text
    team.post(f"/u/{uid}/confirm", data={"digest": digest})
    assert _state(team, uid, ("awaiting_approval",))["confirmed"]["user"] == "anna"
    page = team.get(f"/u/{uid}/confirm").text
    assert 'data-testid="awaiting-approval"' in page and 'data-testid="approve-button"' not in page
    # anna has the approver role, but it is her own batch.
    refused = team.post(f"/u/{uid}/approve", data={"digest": digest})
    assert refused.status_code == 403 and "cannot approve your own batch" in refused.text
    _login(team, "carl")  # an uploader without the approver role does not even see anna's batch
    assert team.post(f"/u/{uid}/approve", data={"digest": digest}).status_code == 404
    time.sleep(0.3)
    assert sandbox.state.counts()["customers"] == 0
    _login(team, "bo")
    assert 'data-testid="approve-button"' in team.get(f"/u/{uid}/confirm").text
    assert "kampagne.xlsx" in team.get("/history").text  # listed as awaiting approval
    team.post(f"/u/{uid}/approve", data={"digest": digest})
    state = _state(team, uid)
    assert state["state"] == "done" and state["approved_by"] == "bo"
    assert sandbox.state.counts()["certificates"] == KAMPAGNE_CERTIFICATES
    audit = [json.loads(line) for line in (tmp_path / "audit" / f"{state['batch_id']}.jsonl").read_text().splitlines()]
    web_event = next(e for e in audit if e["event"] == "web")
    assert (web_event["web_user"], web_event["approved_by"]) == ("anna", "bo")
    assert next(e for e in audit if e["event"] == "run")["options"]["web_user"] == "anna"


def test_below_the_approval_amount_no_approval_is_needed_and_others_uploads_are_private(team, sandbox, tmp_path):
    _login(team, "carl")
    uid = _upload(team, write_sheet(tmp_path / "lille.xlsx", [["Dan", "dan@example.com", "Gavekort", 250, 2, "Webshop"]]))
    assert _issue(team, uid)["state"] == "done"
    assert sandbox.state.counts()["certificates"] == 2
    _login(team, "anna")  # another uploader, not an approver? anna is an approver: she may look
    assert team.get(f"/u/{uid}").status_code == 200
    team.cookies.clear()
    assert team.get(f"/u/{uid}", follow_redirects=False).status_code == 303


# -- the face holds no money rule ----------------------------------------------------------------------

FORBIDDEN_IN_FACES = {"journal", "client", "issue", "results", "sheet", "reading", "audit", "result_input"}


@pytest.mark.parametrize("module", sorted((REPO / "flexybulk" / "web").glob("*.py")), ids=lambda p: p.name)
def test_the_web_reaches_ledger_client_and_runner_only_through_the_library(module):
    imported = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module:
            imported.add(node.module.split(".")[0])
        if isinstance(node, ast.ImportFrom) and node.level == 2 and not node.module:
            imported.update(a.name for a in node.names)
    assert imported & FORBIDDEN_IN_FACES == set()


@pytest.mark.parametrize("module", sorted((REPO / "flexybulk" / "web").glob("*.py")) + [REPO / "flexybulk" / "fixes.py",
                         REPO / "flexybulk" / "confirmations.py", REPO / "flexybulk" / "cli" / "web.py"], ids=lambda p: p.name)
def test_web_modules_are_short_and_say_what_they_own(module):
    text = module.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 500
    assert ast.get_docstring(ast.parse(text))
