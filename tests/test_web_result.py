"""The result page's one action per state, the near-duplicates' tick, and a retry's confirmation stating what will
really be sent (in-process, against the sandbox; issue #14's fresh tester's findings 2, 12 and 13)."""

from __future__ import annotations

import html
import re
import time
from decimal import Decimal

from flexybulk.sandbox import Faults
from builders import refuse_customer
from webtools import write_sheet
from webviews import _checked_with_invalid_rows, _copy, _digest, _issue, _state, _stopped_early, _upload, local  # noqa: F401


def _actions(page: str) -> tuple[bool, bool, str]:
    help_text = re.search(r'data-testid="action-help">(.*?)</span>', page, re.S)
    return ('data-testid="resume-button"' in page, 'data-testid="retry-button"' in page,
            html.unescape(help_text.group(1)).strip() if help_text else "")


def test_a_stopped_batch_offers_resume_alone_until_a_cell_is_fixed_then_retry_alone(local, sandbox, tmp_path):
    uid = _stopped_early(local, sandbox, tmp_path / "stop.xlsx", 20)
    waiting = 20 - sandbox.state.counts()["committed_orders"]
    page = local.get(f"/u/{uid}/progress").text
    assert _actions(page) == (True, False, f"Resume sends the {waiting} waiting rows with their recorded ids; nothing already "
                              "issued is sent again. To change a cell first, fix it below: the button then becomes Retry.")
    assert "<h1 id=\"progress-title\" >Result: stop.xlsx</h1>" in page
    last = max(int(n) for n in re.findall(r'<tr id="row-(\d+)"', page))
    local.post(f"/u/{uid}/fix", data={"row": str(last), "column": "Beløb", "text": "150", "retry": "1"})
    resume, retry, words = _actions(local.get(f"/u/{uid}/progress").text)
    assert (resume, retry) == (False, True)
    assert words == (f"Retry sends these {waiting} rows again once you confirm the figures, each with its own recorded ids, "
                     "so nothing is issued twice. 1 cell fixed for the retry.")
    # The retry runs: the fix is in the new result sheet, so the page no longer counts it or shows it as a fix.
    local.post(f"/u/{uid}/retry")
    local.post(f"/u/{uid}/confirm", data={"digest": _digest(local, uid)})
    _state(local, uid)
    assert sandbox.state.counts()["committed_orders"] == 20
    assert [c["Amount"] for c in sandbox.state.certificates].count(Decimal("150")) == 1
    page = local.get(f"/u/{uid}/progress").text
    assert "cell fixed for the retry" not in page and "cells fixed for the retry" not in page
    assert not (local.config.data_dir / "uploads" / uid / "retry-fixes.json").exists()  # a later retry: the new sheet alone
    assert 'data-testid="retry-button"' not in page and 'data-testid="finished"' in page


def test_a_failed_row_offers_retry_alone(local, sandbox, tmp_path, monkeypatch):
    refuse_customer(monkeypatch, sandbox.state, "soeren@example.org", "EmailAddress: this address is blocked (sandbox test)")
    uid = _upload(local, _copy("kampagne.xlsx", tmp_path))
    _issue(local, uid)
    assert _actions(local.get(f"/u/{uid}/progress").text)[:2] == (False, True)


def test_an_unknown_row_edited_before_retry_is_confirmed_and_settled_as_first_sent(local, sandbox, tmp_path):
    # Every commit's answer is lost and its repeat refused: the row is UNKNOWN (its certificates exist).
    sandbox.faults = Faults(drop_rate=1.0, only=r"^POST .*/commit$", commit_409_on_repeat=True)
    uid = _upload(local, write_sheet(tmp_path / "tvivl.xlsx", [["Ida", "ida@example.com", "Gavekort", 100, 2, "Webshop"],
                                                              ["Jon", "jon@example.com", "Julegavekort", 50, 1, "Aarhus"]]))
    _issue(local, uid)
    sandbox.faults = Faults()
    page = local.get(f"/u/{uid}/progress").text
    assert 'data-testid="status-count-UNKNOWN">2<' in page and _actions(page)[:2] == (False, True)
    # The person edits the amount and the quantity of row 2, then retries: the row is settled as first sent.
    local.post(f"/u/{uid}/fix", data={"row": "2", "column": "Beløb", "text": "300", "retry": "1"})
    local.post(f"/u/{uid}/fix", data={"row": "2", "column": "Antal", "text": "5", "retry": "1"})
    local.post(f"/u/{uid}/retry")
    _digest(local, uid)
    confirm = local.get(f"/u/{uid}/confirm").text
    assert 'data-testid="confirm-money">250.00 DKK<' in confirm and 'data-testid="confirm-certificates">3<' in confirm
    assert ('data-testid="confirm-in-doubt">Of these, 2 rows (rows 2-3) had a commit sent before that nothing settled: '
            "their gift certificates may exist already.") in html.unescape(confirm)
    per_type = dict(re.findall(r'<tr><th scope="row">([^<]+)</th><td class="num">\d+</td><td class="num">\d+</td>'
                               r'<td class="num money">([^<]+)</td></tr>', confirm))
    assert per_type == {"Gavekort": "200.00 DKK", "Julegavekort": "50.00 DKK", "Webshop": "200.00 DKK", "Aarhus": "50.00 DKK"}
    assert "Issue 3 gift certificates for 250.00 DKK" in confirm
    local.post(f"/u/{uid}/confirm", data={"digest": _digest(local, uid)})
    _state(local, uid)
    assert 'data-testid="status-count-ISSUED">2<' in local.get(f"/u/{uid}/progress").text
    assert sorted(c["Amount"] for c in sandbox.state.certificates) == [Decimal("50"), Decimal("100"), Decimal("100")]


def test_the_near_duplicates_tick_says_it_is_required_and_the_button_says_they_are_included(local, sandbox, tmp_path):
    first = _upload(local, write_sheet(tmp_path / "a.xlsx", [["Bo", "bo@example.com", "Gavekort", 300, 1, "Webshop"]]))
    _issue(local, first)
    second = _upload(local, write_sheet(tmp_path / "b.xlsx", [["Bo", "bo@example.com", "Gavekort", 350, 1, "Webshop"],
                                                             ["Carl", "carl@example.com", "Gavekort", 100, 1, "Webshop"]]))
    _digest(local, second)
    page = html.unescape(local.get(f"/u/{second}/confirm").text)
    assert "I have looked at the row above and mean to issue it with the rest (required to issue)" in page
    assert "The figures and the button below include these rows." in page
    assert re.search(r"Issue 2 gift certificates for 450\.00 DKK \(including 1 near-duplicate row\)\s*</button>", page)


def test_the_servers_last_line_when_no_batch_was_running(tmp_path, settings):
    from starlette.testclient import TestClient

    from flexybulk.web.app import shutdown_summary
    from webviews import _app

    app, _ = _app(tmp_path, settings)
    with TestClient(app, base_url="http://127.0.0.1:8770") as client:
        assert client.get("/").status_code == 200
    assert shutdown_summary(app) == "Stopped: no batch was running; nothing was left unfinished."


def test_retry_help_counts_only_the_rows_it_can_send(local, sandbox, tmp_path):
    """A fresh user's find: after issuing only the valid rows, the page said "Retry sends these 10 rows again" though
    every one was INVALID and nothing fixed. Fixing one row's cell makes that row sendable."""
    uid = _upload(local, _copy("fejl.xlsx", tmp_path))
    _checked_with_invalid_rows(local, uid)
    local.post(f"/u/{uid}/options", data={"skip_invalid": "1"})
    assert _issue(local, uid)["state"] == "done"
    page = local.get(f"/u/{uid}/progress").text
    assert 'data-testid="status-count-INVALID">10<' in page
    assert _actions(page) == (False, True, "Fix the cells of the invalid rows below (click a cell), then press Retry: "
                                           "rows that are still invalid are not sent.")
    local.post(f"/u/{uid}/fix", data={"row": "7", "column": "Beløb", "text": "100", "retry": "1"})  # was -100
    assert _actions(local.get(f"/u/{uid}/progress").text)[2] == (
        "Retry sends this row again once you confirm the figures, with its own recorded ids, so nothing is issued "
        "twice. 9 invalid rows are not sent until you fix them. 1 cell fixed for the retry.")


def test_a_stopped_batch_lists_its_first_waiting_rows_and_the_rest_in_one_line(local, sandbox, tmp_path):
    """A fresh user's find: 255 rows each saying "not sent yet." made the result page 16,000 px tall on a phone."""
    uid = _stopped_early(local, sandbox, tmp_path / "mange.xlsx", 60)
    page = local.get(f"/u/{uid}/progress").text
    waiting = int(re.search(r'data-testid="status-count-PENDING">(\d+)<', page).group(1))
    assert waiting == 60 - sandbox.state.counts()["committed_orders"] and waiting > 20
    listed = [int(n) for n in re.findall(r'<tr id="row-(\d+)"', page)]
    assert len(listed) == 20 and listed == sorted(listed)
    last = 61  # sheet rows 2-61
    more = html.unescape(re.search(r'data-testid="more-waiting">(.*?)</p>', page).group(1))
    assert more == f"… and {waiting - 20} more rows not sent yet (rows {listed[-1] + 1}-{last}): they are sent as they are."
    assert f"Resume sends the {waiting} waiting rows" in html.unescape(page)
