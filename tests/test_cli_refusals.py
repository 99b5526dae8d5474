"""FAILED rows end to end (issue #13): the sandbox refuses on purpose, ``flexybulk issue`` and ``retry`` react.

And issue #11: a vendor that loses commit answers and refuses the safe retry
"already committed" must not make committed rows FAILED, nor let a corrected
copy of the file issue them again.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from decimal import Decimal

import pytest

from clirun import flexybulk
from flexybulk.sandbox import Faults, Sandbox, with_rules
from flexybulk.settings import TOKEN_ENV, URL_ENVS
from test_cli_issue import SAMPLES, _edit_result, assert_result_matches_sandbox, result_rows

COMMITS = r"^POST .*/commit$"


@pytest.fixture
def ruled_sandbox(monkeypatch):
    """A sandbox whose catalogue caps Gavekort at 500 DKK, with the CLI's environment pointing at it."""
    with Sandbox(catalogue=with_rules(max_prices={"Gavekort": Decimal("500")})) as sb:
        monkeypatch.setenv(TOKEN_ENV, sb.token)
        for var in URL_ENVS.values():
            monkeypatch.setenv(var, sb.url)
        yield sb


def _csv(path, rows):
    """A semicolon CSV of (name, email, type, amount, quantity) rows, all for the Webshop department."""
    lines = ["Navn;E-mail;Gavekorttype;Beløb;Antal;Afdeling"] + [";".join(map(str, r)) + ";Webshop" for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_price_above_the_sandbox_maximum_fails_with_its_message_and_issues_nothing(tmp_path, ruled_sandbox, isolated_env):
    """Our validation does not know the vendor's maximum price; the sandbox's refusal is the row's FAILED message,
    in the sheet's words (issue #13: the column and its letter), with the raw answer in the audit log."""
    src = _csv(tmp_path / "priser.csv", [
        ("Anna", "anna@example.com", "Gavekort", 250, 2),
        ("Bo", "bo@example.com", "Gavekort", 600, 1),
        ("Cai", "cai@example.com", "Julegavekort", 900, 1),  # the cap is Gavekort's only
        ("Dea", "dea@example.com", "Gavekort", 500, 3),  # at the cap: accepted
    ])
    assert flexybulk("validate", src).code == 0  # our own checks accept every row
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    result = tmp_path / "priser.result.xlsx"
    got = result_rows(result)
    assert [r["Status"] for r in got] == ["ISSUED", "FAILED", "ISSUED", "ISSUED"]
    assert got[1]["Error"] == (
        "Flexybox refused the amount in Beløb (D): Price 600 is above the maximum price 500 of gift certificate "
        "type 'Gavekort'. Nothing was issued for this row. Correct Beløb (D) in the result sheet and run flexybulk "
        "retry on it.")
    assert "  row 3: FAILED: Flexybox refused the amount in Beløb (D): Price 600 is above" in run.stderr
    # The vendor's own answer, as received, is in the audit log (and only the refusal's).
    log = (isolated_env.parent / "audit" / f"{got[1]['BatchId']}.jsonl").read_text(encoding="utf-8")
    calls = [json.loads(line) for line in log.splitlines() if '"event": "call"' in line]
    refused = [c for c in calls if c["status"] == 400]
    assert len(refused) == 1 and refused[0]["path"] == "/api/v1/salesorders"
    assert json.loads(refused[0]["answer"]) == {
        "Message": "Price 600 is above the maximum price 500 of gift certificate type 'Gavekort'.",
        "Field": "GiftCertificates.GiftCertificates[0].Price"}
    assert all("answer" not in c for c in calls if c["status"] != 400)
    assert ruled_sandbox.token not in log
    state = ruled_sandbox.state
    assert got[1]["SalesOrderId"].lower() not in state.orders  # the refused order was never saved
    assert not [c for c in state.certificates if c["CustomerId"] == got[1]["CustomerId"]]
    assert state.counts() == {"customers": 4, "orders": 3, "committed_orders": 3, "certificates": 6}

    # The user lowers the price to the cap and retries the result sheet: only that row is sent, once.
    _edit_result(result, lambda ws, col: ws.__setitem__(f"{col['Beløb']}3", 500))
    run = flexybulk("retry", result, "--yes")
    assert run.code == 0, run.output
    assert "Issued now: 1 row, 1 gift certificate, 500.00 DKK." in run.stdout
    got = result_rows(result)
    assert [r["Status"] for r in got] == ["ISSUED"] * 4
    assert state.orders[got[1]["SalesOrderId"].lower()]["Lines"][0]["Price"] == 500
    assert state.counts()["certificates"] == 7




def test_refused_commits_fail_with_the_servers_message_and_a_retry_issues_them_once(tmp_path, sandbox_env):
    src = shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx")
    sandbox_env.faults = Faults(refuse_rate=1.0, only=COMMITS)
    run = flexybulk("issue", src, "--yes")
    assert run.code == 1
    result = tmp_path / "kampagne.result.xlsx"
    got = result_rows(result)
    assert [r["Status"] for r in got] == ["FAILED"] * 6
    assert got[0]["Error"] == (
        "Flexybox refused the payment type Mastercard of the commit: The external payment type is not accepted for this "
        "sales order; nothing was committed (a refusal injected by the sandbox's refuse_rate). Nothing was issued for "
        "this row. Nothing in the row needs correcting: run flexybulk retry on the result sheet with another payment "
        "type (--payment-type).")
    state = sandbox_env.state
    assert state.counts() == {"customers": 6, "orders": 6, "committed_orders": 0, "certificates": 0}
    status = flexybulk("status", result)
    assert "interrupted while committing" not in status.stdout  # a definite refusal: the rows are back at "order saved"

    sandbox_env.faults = Faults()
    run = flexybulk("retry", result, "--yes")
    assert run.code == 0, run.output
    got = result_rows(result)
    assert [r["Status"] for r in got] == ["ISSUED"] * 6
    assert state.counts() == {"customers": 6, "orders": 6, "committed_orders": 6, "certificates": 18}
    assert_result_matches_sandbox(got, sandbox_env)  # the same ids, payment ids included, as first sent


def test_lost_commit_answers_refused_409_on_retry_never_fail_and_a_corrected_copy_issues_nothing_twice(tmp_path, sandbox_env):
    """Issue #11: 100 rows, ~30 % of commit answers lost, every retry of a done commit answered 409."""
    rows = [(f"Person {i}", f"p{i}@example.com", "Gavekort", 100 + i, 1 + i % 3) for i in range(100)]
    src = _csv(tmp_path / "hundrede.csv", rows)
    quantity = {f"p{i}@example.com": 1 + i % 3 for i in range(100)}
    sandbox_env.faults = Faults(drop_rate=0.3, only=COMMITS, commit_409_on_repeat=True, seed=11)
    run = flexybulk("issue", src, "--yes", "--workers", "8", "--max-attempts", "3")
    got = result_rows(tmp_path / "hundrede.result.xlsx")
    statuses = Counter(r["Status"] for r in got)
    assert set(statuses) <= {"ISSUED", "UNKNOWN"} and statuses["ISSUED"] >= 90, statuses
    assert run.code == (0 if statuses["UNKNOWN"] == 0 else 1)

    state = sandbox_env.state
    commits = [status for method, path, status in state.requests if method == "POST"]
    assert 20 <= commits.count(None) <= 70  # about 30 % of the commit answers were lost...
    assert commits.count(409) >= 10  # ...and the safe retries of those commits were refused
    # Exactly one committed order per row, with that row's number of certificates.
    per_order = Counter(c["SalesOrderId"] for c in state.certificates)
    assert state.counts()["committed_orders"] == 100 == len(per_order)
    for r in got:
        order_id = r["SalesOrderId"].lower()
        assert state.orders[order_id]["Status"] == "Committed"
        assert per_order[order_id] == quantity[r["E-mail"]]
        if r["Status"] == "ISSUED" and not r["GiftCertificateNumbers"]:
            # Settled by the 409: the answer carried no numbers, and the row says where to find them.
            assert f"sales order {r['SalesOrderId']} is already committed (409: Sales order" in r["Error"]
            assert ("look them up in Flexybox" if quantity[r["E-mail"]] > 1 else "look it up in Flexybox") in r["Error"]
        elif r["Status"] == "ISSUED":
            assert sorted(r["GiftCertificateNumbers"].split(", ")) == sorted(
                c["Number"] for c in state.certificates if c["SalesOrderId"] == order_id)
        else:
            assert "cannot issue twice" in r["Error"] and "Nothing was issued" not in r["Error"]
    settled_by_409 = [r for r in got if r["Status"] == "ISSUED" and not r["GiftCertificateNumbers"]]
    assert settled_by_409

    # A corrected copy: one amount changed (a row the 409 settled). Only that row is new.
    changed = settled_by_409[0]
    copy = tmp_path / "hundrede-rettet.csv"
    text = src.read_text(encoding="utf-8")
    old_line = f"{changed['Navn']};{changed['E-mail']};Gavekort;{changed['Beløb']};"
    assert text.count(old_line) == 1
    copy.write_text(text.replace(old_line, f"{changed['Navn']};{changed['E-mail']};Gavekort;999;"), encoding="utf-8")
    # The changed row is a near-duplicate of the one issued (issue #11): it is confirmed at its own question.
    run = flexybulk("issue", copy, "--yes", "--workers", "8", "--max-attempts", "3", input="y\n")
    assert f"Issued by an earlier batch: {statuses['ISSUED'] - 1} rows (skipped)." in run.stdout
    after = Counter(c["SalesOrderId"] for c in state.certificates)
    assert {k: after[k] for k in per_order} == per_order  # nothing new for any row already committed
    new_orders = set(after) - set(per_order)
    assert len(new_orders) == 1 and after[new_orders.pop()] == quantity[changed["E-mail"]]
    assert state.counts()["committed_orders"] == 101
    second = result_rows(tmp_path / "hundrede-rettet.result.xlsx")
    assert "FAILED" not in {r["Status"] for r in second}


def test_a_retry_that_finds_its_earlier_commits_went_through_says_it_issued_nothing_now(tmp_path, sandbox_env):
    """A fresh user's find: every commit answer lost, so all rows UNKNOWN; the retry's commits were answered
    "already committed" (409), and it said "Issued now: 6 rows" though the earlier run had issued them."""
    src = shutil.copy(SAMPLES / "kampagne.xlsx", tmp_path / "kampagne.xlsx")
    sandbox_env.faults = Faults(drop_rate=1.0, only=COMMITS, commit_409_on_repeat=True)
    run = flexybulk("issue", src, "--yes", "--max-attempts", "1")
    assert run.code == 1
    assert [r["Status"] for r in result_rows(tmp_path / "kampagne.result.xlsx")] == ["UNKNOWN"] * 6
    state = sandbox_env.state
    assert state.counts() == {"customers": 6, "orders": 6, "committed_orders": 6, "certificates": 18}
    sandbox_env.faults = Faults(commit_409_on_repeat=True)
    run = flexybulk("retry", tmp_path / "kampagne.result.xlsx", "--yes")
    assert run.code == 0, run.output
    assert "Issued now: nothing." in run.output
    assert ("  Of these, 6 rows (rows 2-7) had a commit sent before that nothing settled (an answer lost, a run "
            "killed): their gift certificates may exist already.") in run.output
    assert ("Settled: 6 rows, 18 gift certificates, 10,399.85 DKK, issued by an earlier run whose commit had gone "
            "through (Flexybox said so); nothing new was issued for them.") in run.output
    assert "Issued in this batch in all: 6 rows, 18 gift certificates, 10,399.85 DKK." in run.output
    assert state.counts() == {"customers": 6, "orders": 6, "committed_orders": 6, "certificates": 18}
    assert [r["Status"] for r in result_rows(tmp_path / "kampagne.result.xlsx")] == ["ISSUED"] * 6
