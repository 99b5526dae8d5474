"""A web server killed in the middle of a batch, started again, Resume: every gift certificate exists once (issue #14).

Here the Flexybox is a sandbox of the test process on 127.0.0.1 (it outlives
the web server, as the real Flexybox would), reached with a secret token
from the environment as a real set-up reaches the vendor: the page must
never show that token, set it in a cookie or log it.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from decimal import Decimal

import pytest

from flexybulk.journal import Journal
from flexybulk.sandbox import Faults, Sandbox
from webtools import SHOTS, import_playwright, launch_chromium, result_rows, server_env, WebServer, write_sheet

playwright_api = import_playwright()
expect = playwright_api.expect

ROWS = 60


@pytest.fixture(scope="module")
def flexybox():
    token = "tok-" + secrets.token_urlsafe(24)
    with Sandbox(token=token, port=0) as sb:
        yield sb


def test_killed_mid_run_then_resume_issues_every_certificate_once(flexybox, tmp_path):
    flexybox.state.reset()
    # Slow calls, so that the kill lands in the middle of the batch with rows in flight.
    flexybox.faults = Faults(latency=0.05)
    rows = [[f"Person {i}", f"p{i}@example.com", "Gavekort" if i % 2 else "Julegavekort", f"{100 + i},50", 1 + i % 3, "Webshop"]
            for i in range(ROWS)]
    expected_certificates = sum(1 + i % 3 for i in range(ROWS))
    expected_money = sum((Decimal(f"{100 + i}.50") * (1 + i % 3) for i in range(ROWS)), Decimal(0))
    sheet = write_sheet(tmp_path / "stor-kampagne.xlsx", rows)
    env = server_env(tmp_path, FLEXYBOX_TOKEN=flexybox.token, FLEXYBOX_CRM_URL=flexybox.url,
                     FLEXYBOX_POS_URL=flexybox.url, FLEXYBOX_API_URL=flexybox.url)
    server = WebServer(["--new-ledger", "--data-dir", str(tmp_path / "data")], env, tmp_path).start()
    seen: list[str] = []
    try:
        with playwright_api.sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(30_000)
            page.on("response", lambda r: seen.append(r.text()) if "text" in (r.headers.get("content-type") or "") else None)
            page.goto(server.url)
            assert "127.0.0.1" in page.get_by_test_id("target").inner_text()  # the real-Flexybox banner names the host
            page.get_by_test_id("upload-input").set_input_files(str(sheet))
            page.get_by_test_id("upload-button").click()
            expect(page.get_by_test_id("rows-invalid")).to_have_text("0")
            page.get_by_test_id("issue-button").click()
            page.get_by_test_id("confirm-button").click()
            page.get_by_test_id("stop-button").wait_for()
            expect(page.get_by_test_id("status-count-ISSUED")).not_to_have_text("0")  # the page follows the ledger
            deadline = time.monotonic() + 30
            while flexybox.state.counts()["committed_orders"] < 10 and time.monotonic() < deadline:
                time.sleep(0.02)
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "1280-4-progress.png"))
            server.kill()  # kill -9 in the middle of the batch
            in_flight_then = flexybox.state.counts()["committed_orders"]
            assert 10 <= in_flight_then < ROWS
            # The open page says at once that it lost the server, instead of showing old figures as live.
            expect(page.get_by_test_id("lost-contact")).to_be_visible(timeout=5_000)
            expect(page.get_by_test_id("lost-contact")).to_contain_text("lost contact with the server")
            expect(page.get_by_test_id("stop-button")).to_be_disabled()
            page.screenshot(path=str(SHOTS / "1280-4a-lost-contact.png"))

            server.start()  # the same data folder and ledger
            # The same page, left open, carries on by itself: the batch shows as interrupted, the banner goes.
            expect(page.get_by_test_id("interrupted")).to_be_visible(timeout=10_000)
            expect(page.get_by_test_id("lost-contact")).to_be_hidden()
            page.goto(server.url + "history")
            page.get_by_test_id("history-row").first.wait_for()
            assert page.get_by_test_id("history-row").count() == 1
            page.locator("[data-testid=history-row] a").first.click()  # "Open"
            expect(page.get_by_test_id("interrupted")).to_be_visible()
            page.screenshot(path=str(SHOTS / "1280-4b-interrupted.png"))
            issued_before = int(page.get_by_test_id("status-count-ISSUED").inner_text())
            assert issued_before <= in_flight_then
            page.get_by_test_id("resume-button").click()
            page.get_by_test_id("finished").wait_for(timeout=60_000)
            assert page.get_by_test_id("status-count-ISSUED").inner_text() == str(ROWS)
            with page.expect_download() as info:
                page.get_by_test_id("download-result").click()
            info.value.save_as(tmp_path / "downloaded.xlsx")
            cookies = page.context.cookies()
            browser.close()
    finally:
        server.stop()
        flexybox.faults = Faults()

    counts = flexybox.state.counts()
    assert counts["committed_orders"] == ROWS
    assert counts["certificates"] == expected_certificates
    certificates = flexybox.state.certificates
    assert sum((c["Amount"] for c in certificates), Decimal(0)) == expected_money
    per_order = Counter(c["SalesOrderId"] for c in certificates)
    assert len(per_order) == ROWS  # one sales order per row, none twice
    result = result_rows(tmp_path / "downloaded.xlsx")
    assert [r["Status"] for r in result] == ["ISSUED"] * ROWS
    assert {r["SalesOrderId"].lower() for r in result} == set(per_order)
    with Journal(tmp_path / "ledger" / "ledger.sqlite3") as journal:
        (batch,) = journal.batches()
        assert Counter(r.status.value for r in journal.rows(batch.id)) == {"ISSUED": ROWS}

    # The token went to Flexybox on every call, and nowhere else: not a page, not a cookie, not a log line.
    assert len(seen) > 10 and all(flexybox.token not in text for text in seen)
    assert all(flexybox.token not in f"{c['name']}={c['value']}" for c in cookies)
    assert flexybox.token not in server.output()
    assert all(flexybox.token not in p.read_text(encoding="utf-8") for p in (tmp_path / "ledger").glob("audit/*.jsonl"))
    assert all(flexybox.token not in p.read_text(encoding="utf-8", errors="replace")
               for p in (tmp_path / "data").rglob("*.json"))


def test_sigterm_stops_a_running_batch_cleanly_and_resume_finishes_it(flexybox, tmp_path):
    """SIGTERM (systemd, a CI cancel): rows in flight finish, the rest stay PENDING, the result sheet is written."""
    import re

    import requests

    flexybox.state.reset()
    flexybox.faults = Faults(latency=0.05)
    rows = [[f"Q {i}", f"q{i}@example.com", "Gavekort", 100, 1, "Webshop"] for i in range(40)]
    sheet = write_sheet(tmp_path / "term.xlsx", rows)
    env = server_env(tmp_path, FLEXYBOX_TOKEN=flexybox.token, FLEXYBOX_CRM_URL=flexybox.url,
                     FLEXYBOX_POS_URL=flexybox.url, FLEXYBOX_API_URL=flexybox.url)
    server = WebServer(["--new-ledger", "--data-dir", str(tmp_path / "data")], env, tmp_path).start()
    try:
        web = requests.Session()
        web.headers["Origin"] = server.url.rstrip("/")
        with open(sheet, "rb") as fh:
            uid = web.post(server.url + "upload", files={"file": (sheet.name, fh)}, allow_redirects=False).headers["location"].rsplit("/", 1)[1]
        digest = re.search(r'name="digest" value="([0-9a-f]{64})"', web.get(f"{server.url}u/{uid}/confirm").text).group(1)
        web.post(f"{server.url}u/{uid}/confirm", data={"digest": digest})
        deadline = time.monotonic() + 30
        while flexybox.state.counts()["committed_orders"] < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.proc.terminate()  # SIGTERM
        assert server.proc.wait(30) == 143  # as every flexybulk command stopped by SIGTERM (issue #11)
        committed = flexybox.state.counts()["committed_orders"]
        assert 5 <= committed < 40
        statuses = Counter(r["Status"] for r in result_rows(tmp_path / "data" / "uploads" / uid / "term.result.xlsx"))
        assert statuses == {"ISSUED": committed, "PENDING": 40 - committed}  # nothing left in doubt
        last = server.err.read_text(encoding="utf-8").strip().splitlines()[-1]
        assert "nothing was issued now" not in last  # the page's own last line, not the command line's
        assert re.fullmatch(rf"Stopped: batch [0-9a-f-]{{36}} \(term.xlsx\) was stopped cleanly: {committed} rows issued, "
                            rf"{40 - committed} waiting \(PENDING\)\. Its result sheet is written; start the page again "
                            "and press Resume to finish it with the same ids.", last), last

        server.start()
        page = web.get(f"{server.url}u/{uid}/progress").text
        assert 'data-testid="resume-button"' in page and f'data-testid="status-count-PENDING">{40 - committed}<' in page
        web.headers["Origin"] = server.url.rstrip("/")
        web.post(f"{server.url}u/{uid}/resume")
        deadline = time.monotonic() + 30
        while 'data-testid="finished"' not in (page := web.get(f"{server.url}u/{uid}/progress").text):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert 'data-testid="status-count-ISSUED">40<' in page
    finally:
        server.stop()
        flexybox.faults = Faults()
    assert flexybox.state.counts() == {**flexybox.state.counts(), "committed_orders": 40, "certificates": 40}
