"""The web page's views in-process (Starlette's TestClient), against the sandbox on 127.0.0.1 (issue #14)."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import time
from decimal import Decimal
from pathlib import Path

from starlette.testclient import TestClient

from flexybulk.journal import Journal
from flexybulk.sandbox import Faults
from flexybulk.web.auth import Auth
from flexybulk.web.security import Guard
from builders import refuse_customer
from webtools import write_sheet
from webviews import (KAMPAGNE_CERTIFICATES, KAMPAGNE_TOTAL, _app, _checked_with_invalid_rows, _copy, _digest,  # noqa: F401
                      _issue, _state, _stopped_early, _upload, local)

# -- local mode ---------------------------------------------------------------------------------------


def test_upload_check_confirm_issue_and_the_audit_log_names_the_web_user(local, sandbox, tmp_path):
    uid = _upload(local, _copy("kampagne.xlsx", tmp_path))
    page = local.get(f"/u/{uid}").text
    assert 'data-testid="rows-invalid">0<' in page and 'data-testid="money">10,399.85 DKK<' in page
    assert sandbox.state.counts()["customers"] == 0  # the check issues nothing
    confirm = local.get(f"/u/{uid}/confirm").text
    _digest(local, uid)
    confirm = local.get(f"/u/{uid}/confirm").text
    assert 'data-testid="confirm-certificates">18<' in confirm and "10,399.85 DKK" in confirm
    assert sandbox.state.counts()["customers"] == 0  # nor does the confirmation page
    state = _issue(local, uid)
    assert state["state"] == "done" and state["batch_id"]
    assert sandbox.state.counts()["certificates"] == KAMPAGNE_CERTIFICATES
    assert sum((c["Amount"] for c in sandbox.state.certificates), Decimal(0)) == KAMPAGNE_TOTAL
    progress = local.get(f"/u/{uid}/progress").text
    assert 'data-testid="status-count-ISSUED">6<' in progress and 'data-testid="download-result"' in progress
    sheet = local.get(f"/u/{uid}/result.xlsx")
    assert sheet.status_code == 200 and sheet.content[:2] == b"PK"
    audit = [json.loads(line) for line in (tmp_path / "audit" / f"{state['batch_id']}.jsonl").read_text().splitlines()]
    web_event = next(e for e in audit if e["event"] == "web")
    run_event = next(e for e in audit if e["event"] == "run")
    assert web_event["web_user"] == getpass.getuser() and web_event["approved_by"] is None
    assert run_event["options"]["web_user"] == getpass.getuser()
    history = local.get("/history").text
    assert history.count('data-testid="history-row"') == 1 and getpass.getuser() in history
    assert local.get("/history?q=no-such-thing").text.count('data-testid="history-row"') == 0


def test_a_fix_is_checked_again_at_once_and_changes_the_inputs_identity(local, sandbox, tmp_path):
    uid = _upload(local, _copy("fejl.xlsx", tmp_path))
    page = local.get(f"/u/{uid}").text
    assert 'data-testid="rows-invalid">10<' in page
    editor = local.get(f"/u/{uid}/edit", params={"row": "5", "column": "Gavekorttype"}, headers={"HX-Request": "true"}).text
    assert 'data-testid="fix-suggestion"' in editor and "Use &#39;Gavekort&#39;" in editor
    assert "<option value=\"Julegavekort\"" in editor  # the live list of types to pick from
    answer = local.post(f"/u/{uid}/fix", data={"row": "5", "column": "Gavekorttype", "text": "Gavekrot", "suggestion": "Gavekort"},
                        follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].endswith("#row-5")
    page = local.get(f"/u/{uid}").text
    assert 'data-testid="rows-invalid">9<' in page
    # Said once, in the page's words (a fresh user's find: the sheet's English note stood under them too).
    assert "1 cell fixed on this page (the file itself is unchanged)." in page and "fixed on the web page" not in page
    totals = re.search(r"<caption>Per gift certificate type</caption>.*?</table>", page, re.S).group(0)
    assert re.search(r'<th scope="row">Gavekort</th><td class="num">\d+</td>', totals)
    dansk = local.get(f"/u/{uid}", headers={"Accept-Language": "da"}).text
    assert "1 celle rettet her på siden" in dansk and "fixed on the web page" not in dansk
    fixes = json.loads((Path(local.config.data_dir) / "uploads" / uid / "fixes.json").read_text())
    assert fixes["fixes"] == [[5, "Gavekorttype", "Gavekort"]]
    only = local.get(f"/u/{uid}?only=problems").text
    assert only.count('<tr id="row-') == 9
    # The validation sheet has the fix in it.
    sheet = local.get(f"/u/{uid}/validation.xlsx")
    assert sheet.status_code == 200 and sheet.content[:2] == b"PK"


def test_skip_invalid_issues_the_valid_rows_only(local, sandbox, tmp_path):
    uid = _upload(local, _copy("fejl.xlsx", tmp_path))
    _checked_with_invalid_rows(local, uid)
    local.post(f"/u/{uid}/options", data={"skip_invalid": "1"})
    state = _issue(local, uid)
    assert state["state"] == "done"
    assert sandbox.state.counts()["committed_orders"] == 2  # rows 2 and 13 of fejl.xlsx


def test_a_failed_row_fixed_on_the_result_page_and_retried_keeps_its_ids(local, sandbox, tmp_path, monkeypatch):
    refuse_customer(monkeypatch, sandbox.state, "soeren@example.org", "EmailAddress: this address is blocked (sandbox test)")
    uid = _upload(local, _copy("kampagne.xlsx", tmp_path))
    state = _issue(local, uid)
    progress = local.get(f"/u/{uid}/progress").text
    assert 'data-testid="status-count-FAILED">1<' in progress and 'data-testid="retry-button"' in progress
    with Journal(tmp_path / "ledger.sqlite3") as journal:
        failed = journal.row(state["batch_id"], 3)
    assert failed.status.value == "FAILED"
    answer = local.post(f"/u/{uid}/fix", data={"row": "3", "column": "E-mail", "text": "soeren2@example.org", "retry": "1"},
                        follow_redirects=False)
    assert answer.status_code == 303
    assert local.post(f"/u/{uid}/retry", follow_redirects=False).headers["location"] == f"/u/{uid}/confirm"
    confirm_digest = _digest(local, uid)
    assert 'data-testid="confirm-rows">1<' in local.get(f"/u/{uid}/confirm").text
    local.post(f"/u/{uid}/confirm", data={"digest": confirm_digest})
    state = _state(local, uid)
    with Journal(tmp_path / "ledger.sqlite3") as journal:
        rows = {r.row_number: r for r in journal.rows(state["batch_id"])}
    assert {r.status.value for r in rows.values()} == {"ISSUED"}
    assert rows[3].sales_order_id == failed.sales_order_id and rows[3].payment_id == failed.payment_id
    assert rows[3].content["email"] == "soeren2@example.org"
    assert sandbox.state.counts()["certificates"] == KAMPAGNE_CERTIFICATES


def test_stop_leaves_the_rest_pending_and_resume_finishes(local, sandbox, tmp_path):
    uid = _stopped_early(local, sandbox, tmp_path / "lang.xlsx", 30)
    state = _state(local, uid)
    done = sandbox.state.counts()["committed_orders"]
    assert 2 <= done < 30
    page = local.get(f"/u/{uid}/progress").text
    assert f'data-testid="status-count-PENDING">{30 - done}<' in page and 'data-testid="resume-button"' in page
    waiting = 30 - done
    assert (f"Stopped. {waiting} rows are waiting." if waiting > 1 else "Stopped. 1 row is waiting.") in page
    from flexybulk.web import i18n
    assert i18n.translator("en").n("stopped", 2418) == "Stopped. 2,418 rows are waiting."  # as the counts write it
    assert i18n.translator("da").n("stopped", 2418) == "Stoppet. 2.418 rækker venter."
    local.post(f"/u/{uid}/resume")
    _state(local, uid)
    assert sandbox.state.counts()["committed_orders"] == 30 and sandbox.state.counts()["certificates"] == 30
    assert _state(local, uid)["batch_id"] == state["batch_id"]


def test_a_second_batch_waits_in_the_queue_with_its_place(local, sandbox, tmp_path):
    sandbox.faults = Faults(latency=0.03)
    first = _upload(local, write_sheet(tmp_path / "a.xlsx", [[f"A {i}", f"a{i}@example.com", "Gavekort", 100, 1, "Webshop"] for i in range(20)]))
    second = _upload(local, write_sheet(tmp_path / "b.xlsx", [["B", "b@example.com", "Gavekort", 100, 1, "Webshop"]]))
    d1, d2 = _digest(local, first), _digest(local, second)
    local.post(f"/u/{first}/confirm", data={"digest": d1})
    _state(local, first, ("running",))
    local.post(f"/u/{second}/confirm", data={"digest": d2})
    page = local.get(f"/u/{second}/progress").text
    assert "In the queue: 1 batch is ahead of this one." in page  # was "place 2" (finding 18)
    _state(local, second)
    sandbox.faults = Faults()
    assert sandbox.state.counts()["committed_orders"] == 21


def test_hidden_rows_are_excluded_unless_the_person_includes_them(local, sandbox, tmp_path):
    import openpyxl

    path = tmp_path / "filtreret.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Navn", "E-mail", "Gavekorttype", "Beløb", "Antal", "Afdeling"])
    ws.append(["Synlig", "synlig@example.com", "Gavekort", 100, 1, "Webshop"])
    ws.append(["Skjult", "skjult@example.com", "Gavekort", 200, 1, "Webshop"])
    ws.row_dimensions[3].hidden = True
    wb.save(path)
    uid = _upload(local, path)
    page = local.get(f"/u/{uid}").text
    assert 'data-testid="exclusions">row 3 is hidden and will not be issued<' in page
    assert re.search(r'<tr id="row-3"[^>]*>.*?data-testid="row-status">EXCLUDED<', page, re.S)
    assert 'data-testid="money">100.00 DKK<' in page
    local.post(f"/u/{uid}/settings", data={"options": "1", "include_hidden": "1"})
    assert 'data-testid="money">300.00 DKK<' in local.get(f"/u/{uid}").text
    local.post(f"/u/{uid}/settings", data={"options": "1"})  # unticked again
    _digest(local, uid)
    assert "row 3 is hidden and will not be issued" in local.get(f"/u/{uid}/confirm").text
    assert _issue(local, uid)["state"] == "done"
    assert [c["Amount"] for c in sandbox.state.certificates] == [Decimal("100")]


def test_rows_issued_before_and_near_duplicates_are_shown_and_near_ones_need_their_own_tick(local, sandbox, tmp_path):
    first = _upload(local, write_sheet(tmp_path / "forste.xlsx", [["Anna", "anna@example.com", "Gavekort", 250, 1, "Webshop"],
                                                                  ["Bo", "bo@example.com", "Gavekort", 300, 1, "Webshop"]]))
    assert _issue(local, first)["state"] == "done"
    # A corrected copy: Anna's row unchanged, Bo's amount changed (a near-duplicate), and a new row.
    second = _upload(local, write_sheet(tmp_path / "anden.xlsx", [["Anna", "anna@example.com", "Gavekort", 250, 1, "Webshop"],
                                                                  ["Bo", "bo@example.com", "Gavekort", 350, 1, "Webshop"],
                                                                  ["Carl", "carl@example.com", "Gavekort", 100, 1, "Webshop"]]))
    page = local.get(f"/u/{second}").text
    statuses = re.findall(r'<tr id="row-(\d+)".*?data-testid="row-status">([A-Z -]+)<', page, re.S)
    assert statuses == [("2", "ISSUED EARLIER"), ("3", "NEAR-DUPLICATE"), ("4", "VALID")]
    digest = _digest(local, second)
    confirm = local.get(f"/u/{second}/confirm").text
    assert 'data-testid="near-duplicates"' in confirm and 'data-testid="confirm-rows">2<' in confirm
    refused = local.post(f"/u/{second}/confirm", data={"digest": digest}, follow_redirects=False)
    assert refused.headers["location"] == f"/u/{second}/confirm?near=1"
    time.sleep(0.3)
    assert sandbox.state.counts()["certificates"] == 2  # nothing more without the tick
    local.post(f"/u/{second}/confirm", data={"digest": digest, "near_confirmed": "1"})
    assert _state(local, second)["state"] == "done"
    assert sorted(c["Amount"] for c in sandbox.state.certificates) == [Decimal("100"), Decimal("250"), Decimal("300"), Decimal("350")]


def test_a_big_sheet_is_paged(local, sandbox, tmp_path):
    rows = [[f"P {i}", f"p{i}@example.com", "Gavekort", 100, 1, "Webshop"] for i in range(120)]
    uid = _upload(local, write_sheet(tmp_path / "stor.xlsx", rows))
    first = local.get(f"/u/{uid}").text
    assert first.count('<tr id="row-') == 50 and "Page 1 of 3" in first and '<tr id="row-2"' in first
    last = local.get(f"/u/{uid}?page=3").text
    assert last.count('<tr id="row-') == 20 and '<tr id="row-121"' in last


def test_a_batch_waits_while_another_process_issues_with_the_ledger(local, sandbox, tmp_path):
    from flexybulk import batches

    uid = _upload(local, write_sheet(tmp_path / "vent.xlsx", [["Eva", "eva@example.com", "Gavekort", 100, 1, "Webshop"]]))
    digest = _digest(local, uid)
    target = local.app.app.state.web.target
    with batches.issuing(target, tmp_path / "ledger.sqlite3", "issue other.xlsx (the command line)"):
        local.post(f"/u/{uid}/confirm", data={"digest": digest})
        deadline = time.monotonic() + 10
        while "Another flexybulk is issuing" not in (page := local.get(f"/u/{uid}/progress").text):
            assert time.monotonic() < deadline, page
            time.sleep(0.05)
        assert "issue other.xlsx (the command line)" in page and sandbox.state.counts()["customers"] == 0
    assert _state(local, uid)["state"] == "done"
    assert sandbox.state.counts()["certificates"] == 1


def test_cross_site_requests_are_refused(local, sandbox, tmp_path):
    path = _copy("kampagne.xlsx", tmp_path)
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        with open(path, "rb") as fh:
            answer = local.post("/upload", files={"file": (path.name, fh)}, headers=headers, follow_redirects=False)
        assert answer.status_code == 403, headers
    assert not list((Path(local.config.data_dir) / "uploads").iterdir())
    with open(path, "rb") as fh:
        same = local.post("/upload", files={"file": (path.name, fh)}, follow_redirects=False,
                          headers={"Origin": "http://127.0.0.1:8770", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 303


def test_an_oversized_body_is_answered_before_a_byte_of_it_is_read():
    calls = []

    async def app(scope, receive, send):  # would read the body
        calls.append("app")

    async def receive():
        calls.append("receive")
        return {"type": "http.request", "body": b"x" * 10, "more_body": True}

    sent = []

    async def send(message):
        sent.append(message)

    guard = Guard(app, auth=Auth(), max_body=1000)
    scope = {"type": "http", "method": "POST", "path": "/upload", "headers": [(b"content-length", b"5000")]}
    asyncio.run(guard(scope, receive, send))
    assert calls == [] and sent[0]["status"] == 413
    # Without a declared length, the body is cut off at the limit as it arrives.
    calls.clear()
    sent.clear()

    async def reads(scope, receive, send):
        while True:
            await receive()

    guard = Guard(reads, auth=Auth(), max_body=1000)
    asyncio.run(guard({"type": "http", "method": "POST", "path": "/upload", "headers": []}, receive, send))
    assert calls.count("receive") == 101 and sent[0]["status"] == 413


def test_an_upload_over_the_limit_is_refused_and_nothing_kept(tmp_path, settings):
    app, config = _app(tmp_path, settings, max_mb=1)
    big = tmp_path / "big.csv"
    big.write_bytes(b"Navn;E-mail\n" + b"x;y@example.com\n" * 70_000)
    with TestClient(app, base_url="http://127.0.0.1:8770") as client, open(big, "rb") as fh:
        answer = client.post("/upload", files={"file": (big.name, fh)})
    assert answer.status_code == 413 and answer.text == ("Refused: the file is too large: 1.1 MB. The limit is 1.0 MB. "
                                                         "Split it into smaller files.")
    assert not list((tmp_path / "data" / "uploads").iterdir())


def test_uploads_are_owner_only_and_expire(local, sandbox, tmp_path):
    uid = _upload(local, _copy("kampagne.xlsx", tmp_path))
    folder = Path(local.config.data_dir) / "uploads" / uid
    assert folder.stat().st_mode & 0o077 == 0
    assert (folder / "kampagne.xlsx").stat().st_mode & 0o077 == 0
    web = local.app.app.state.web
    assert web.store.expire(3600) == []
    record = json.loads((folder / "upload.json").read_text())
    (folder / "upload.json").write_text(json.dumps({**record, "updated_at": "2000-01-01T00:00:00+00:00"}))
    old = time.time() - 7200
    os.utime(folder, (old, old))
    assert web.store.expire(3600) == [uid] and not folder.exists()


def test_language_from_the_browser_and_switchable(local):
    assert "Upload et regneark" in local.get("/", headers={"Accept-Language": "da-DK,da;q=0.9,en;q=0.8"}).text
    assert "Upload a sheet" in local.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,da;q=0.8"}).text
    answer = local.get("/lang/da?next=/history", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/history"
    assert "HttpOnly" in answer.headers["set-cookie"]
    assert "Historik" in local.get("/history", headers={"Accept-Language": "en"}).text
    assert local.get("/lang/en?next=https://evil.example/", follow_redirects=False).headers["location"] == "/"


def test_the_template_comes_from_the_live_catalogue(local, sandbox):
    answer = local.get("/template.xlsx?lang=en")
    assert answer.status_code == 200 and answer.content[:2] == b"PK"
    assert 'filename="recipients.xlsx"' in answer.headers["content-disposition"]
    assert [m for m, *_ in sandbox.state.requests] == ["GET", "GET"]


def test_a_column_mapped_by_hand_is_remembered_for_the_next_file_with_the_same_headers(local, sandbox, tmp_path):
    def sheet(name):
        path = tmp_path / name
        path.write_text("Navn;E-mail;Gavekorttype;Kroner til hver;Afdeling\nAnna;anna@example.com;Gavekort;250;Webshop\n", encoding="utf-8")
        return path

    uid = _upload(local, sheet("a.csv"))
    assert "no column for the amount" in local.get(f"/u/{uid}").text
    local.post(f"/u/{uid}/settings", data={"map:amount": "Kroner til hver"})
    assert 'data-testid="money">250.00 DKK<' in local.get(f"/u/{uid}").text
    second = _upload(local, sheet("b.csv"))
    assert 'data-testid="money">250.00 DKK<' in local.get(f"/u/{second}").text


def test_a_workbook_with_several_sheets_of_recipients_offers_a_sheet_chooser(local, sandbox, tmp_path):
    import openpyxl

    path = tmp_path / "to-ark.xlsx"
    wb = openpyxl.Workbook()
    for title in ("Januar", "Februar"):
        ws = wb.create_sheet(title)
        ws.append(["Navn", "E-mail", "Gavekorttype", "Beløb", "Afdeling"])
        ws.append([f"{title} Person", f"{title.lower()}@example.com", "Gavekort", 100, "Webshop"])
    del wb["Sheet"]
    wb.save(path)
    uid = _upload(local, path)
    page = local.get(f"/u/{uid}").text
    assert "possible sheets" in page and '<option value="Februar"' in page
    local.post(f"/u/{uid}/settings", data={"sheet": "Februar"})
    page = local.get(f"/u/{uid}").text
    assert "februar@example.com" in page and "januar@example.com" not in page


