"""The runner against the sandbox: exactly once under faults, resume, duplicates across batches."""

from __future__ import annotations

import dataclasses
from collections import Counter
from decimal import Decimal

import pytest

from builders import make_sheet, person
from flexybulk.client import FlexyboxClient
from flexybulk.errors import AuthError
from flexybulk.issue import BatchRunner
from flexybulk.planning import plan_batch
from flexybulk.journal import Journal, Step
from flexybulk.model import RowStatus
from flexybulk.sandbox import Faults
from flexybulk.settings import Secret
from flexybulk.validate import validate


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "ledger.sqlite3") as j:
        yield j


def run(settings, journal, sheet, *, workers=4, allow_reissue=False, batch_id=None, target="sandbox-test",
        sandbox=None, faults=None):
    """Validate, plan and run like the CLI does; ``faults`` start after the catalogue is fetched."""
    with FlexyboxClient(settings) as client:
        validation = validate(sheet, client.get_catalogue())
        if faults is not None:
            sandbox.faults = faults
        plan = plan_batch(journal, validation, input_path=str(sheet.path), target=target, options={},
                          batch_id=batch_id, allow_reissue=allow_reissue)
        for r in plan.rows:
            if r.action == "skip":
                journal.finish_row(plan.batch.id, r.row_number, RowStatus.SKIPPED, error=r.message)
        report = BatchRunner(client, journal, workers=workers).run(plan)
    return plan, report


def expected_certificates(rows) -> int:
    return sum(r["quantity"] for r in rows)


def assert_exactly_once(sandbox, journal, batch_id):
    """Every committed order holds exactly its quantity of certificates, and the ledger agrees."""
    orders = sandbox.state.orders
    per_order = Counter(c["SalesOrderId"] for c in sandbox.state.certificates)
    for rec in journal.rows(batch_id):
        if rec.status == RowStatus.ISSUED:
            key = rec.sales_order_id.lower()
            assert orders[key]["Status"] == "Committed"
            assert per_order[key] == rec.content["quantity"]
            assert sorted(rec.certificate_numbers) == sorted(c["Number"] for c in sandbox.state.certificates if c["SalesOrderId"] == key)


def test_issues_every_row_once_and_records_ids(settings, sandbox, journal):
    rows = [person(i) for i in range(20)]
    plan, report = run(settings, journal, make_sheet(rows))
    assert report.outcomes == {n: RowStatus.ISSUED for n in range(2, 22)}
    assert sandbox.state.counts() == {"customers": 20, "orders": 20, "committed_orders": 20,
                                      "certificates": expected_certificates(rows)}
    assert_exactly_once(sandbox, journal, plan.batch.id)
    recs = journal.rows(plan.batch.id)
    assert all(r.step == Step.COMMITTED and r.issued_at for r in recs)
    assert sum(Decimal(c["Amount"]) for c in sandbox.state.certificates) == sum(Decimal(r["amount"]) * r["quantity"] for r in rows)


def test_one_customer_per_distinct_email_in_a_batch(settings, sandbox, journal):
    rows = [person(0), person(1, email="PERSON.0@example.com"), person(2)]
    plan, _ = run(settings, journal, make_sheet(rows))
    recs = journal.rows(plan.batch.id)
    assert recs[0].customer_id == recs[1].customer_id != recs[2].customer_id
    assert sandbox.state.counts()["customers"] == 2


def test_200_rows_with_faults_end_with_exactly_the_expected_certificates(settings, sandbox, journal):
    rows = [person(i) for i in range(200)]
    sheet = make_sheet(rows)
    faults = Faults(error_rate=0.10, rate_limit_rate=0.05, drop_rate=0.05, retry_after=0, seed=42)
    fast = dataclasses.replace(settings, max_attempts=6)
    plan, report = run(fast, journal, sheet, workers=8, sandbox=sandbox, faults=faults)
    statuses = Counter(report.outcomes.values())
    # Rerun until every row is settled: each rerun reuses the recorded ids.
    for _ in range(5):
        if statuses.get(RowStatus.ISSUED, 0) == 200:
            break
        _, report = run(fast, journal, sheet, workers=8, sandbox=sandbox, faults=faults)
        statuses = Counter(r.status for r in journal.rows(plan.batch.id))
    assert statuses[RowStatus.ISSUED] == 200
    sandbox.faults = Faults()
    assert sandbox.state.counts()["committed_orders"] == 200
    assert sandbox.state.counts()["certificates"] == expected_certificates(rows)
    assert_exactly_once(sandbox, journal, plan.batch.id)
    dropped = sum(1 for _, _, status in sandbox.state.requests if status is None)
    assert dropped > 0  # the dangerous case really happened


def test_lost_commit_answers_are_settled_by_a_rerun_without_a_second_issue(settings, sandbox, journal):
    rows = [person(i) for i in range(6)]
    sheet = make_sheet(rows)
    # Every commit is done, every commit answer lost.
    plan, report = run(dataclasses.replace(settings, max_attempts=2), journal, sheet, sandbox=sandbox,
                       faults=Faults(drop_rate=1.0, only=r"^POST .*/commit$"))
    assert set(report.outcomes.values()) == {RowStatus.UNKNOWN}
    recs = journal.rows(plan.batch.id)
    assert {r.step for r in recs} == {Step.COMMIT}  # the commits were sent...
    assert sandbox.state.counts()["certificates"] == expected_certificates(rows)  # ...and really issued
    assert "cannot issue twice" in recs[0].error
    sandbox.faults = Faults()
    plan2, report2 = run(settings, journal, sheet)
    assert plan2.batch.id == plan.batch.id and plan2.resumed
    assert set(report2.outcomes.values()) == {RowStatus.ISSUED}
    assert sandbox.state.counts()["certificates"] == expected_certificates(rows)  # nothing twice
    assert_exactly_once(sandbox, journal, plan.batch.id)


def test_same_rows_in_a_new_file_are_skipped_and_a_corrected_row_is_issued(settings, sandbox, journal):
    rows = [person(i) for i in range(5)]
    plan1, _ = run(settings, journal, make_sheet(rows, name="a.xlsx"))
    before = sandbox.state.counts()["certificates"]
    copy = [dict(r) for r in rows]
    copy[2]["amount"] = "300"  # one corrected row
    plan2, report2 = run(settings, journal, make_sheet(copy, name="a-rettet.xlsx"))
    assert plan2.batch.id != plan1.batch.id
    # Issue #11: the corrected row is a near-duplicate (same email and type, another amount): sent once confirmed.
    assert [r.action for r in plan2.rows] == ["skip", "skip", "near", "skip", "skip"]
    assert "Already issued on" in plan2.rows[0].message and plan1.batch.id in plan2.rows[0].message
    assert plan2.rows[2].earlier.batch_id == plan1.batch.id and "(row 4: 3 × 250.00 DKK Gavekort, Webshop); this row is 3 × 300.00 DKK Gavekort, Webshop" in plan2.rows[2].message
    assert report2.outcomes == {4: RowStatus.ISSUED}
    assert sandbox.state.counts()["certificates"] == before + copy[2]["quantity"]
    statuses = [r.status for r in journal.rows(plan2.batch.id)]
    assert statuses == [RowStatus.SKIPPED, RowStatus.SKIPPED, RowStatus.ISSUED, RowStatus.SKIPPED, RowStatus.SKIPPED]


def test_two_identical_rows_match_earlier_issues_one_for_one(settings, sandbox, journal):
    run(settings, journal, make_sheet([person(0)], name="one.xlsx"))
    plan, report = run(settings, journal, make_sheet([person(0), person(0)], name="two.xlsx"))
    assert [r.action for r in plan.rows] == ["skip", "send"]
    assert sandbox.state.counts()["committed_orders"] == 2


def test_allow_reissue_issues_again_with_new_ids(settings, sandbox, journal):
    rows = [person(0), person(1)]
    plan1, _ = run(settings, journal, make_sheet(rows, name="a.xlsx"))
    plan2, report = run(settings, journal, make_sheet(rows, name="a.xlsx"), allow_reissue=True)  # the same file again
    assert [r.action for r in plan2.rows] == ["reissue", "reissue"]
    assert set(report.outcomes.values()) == {RowStatus.ISSUED}
    assert sandbox.state.counts()["committed_orders"] == 4
    first = {r.sales_order_id for r in journal.rows(plan1.batch.id)}
    assert first.isdisjoint(r.sales_order_id for r in journal.rows(plan2.batch.id))


def test_an_earlier_batch_in_flight_is_settled_with_its_own_ids(settings, sandbox, journal):
    rows = [person(0), person(1)]
    plan1, report1 = run(dataclasses.replace(settings, max_attempts=1), journal, make_sheet(rows, name="a.xlsx"),
                         sandbox=sandbox, faults=Faults(drop_rate=1.0))
    # Issue #13: the customer PUT's answer was lost and no commit was sent: PENDING, never UNKNOWN.
    assert set(report1.outcomes.values()) == {RowStatus.PENDING}
    issued_so_far = sandbox.state.counts()["certificates"]
    assert issued_so_far == 0  # with one attempt the customer PUT's answer was lost; nothing committed yet
    # Let the first batch get as far as a lost commit answer.
    sandbox.faults = Faults()
    for rec in journal.rows(plan1.batch.id):
        journal.set_step(plan1.batch.id, rec.row_number, Step.COMMIT, commit_content=rec.content,
                         payment_amount=str(Decimal(rec.content["price"]) * rec.content["quantity"]))
    with FlexyboxClient(settings) as client:
        for rec in journal.rows(plan1.batch.id):
            c = rec.content
            client.put_customer(rec.customer_id, full_name=c["name"], email=c["email"])
            client.put_sales_order(FlexyboxClient.sales_order_body(rec.sales_order_id, customer_id=rec.customer_id,
                                   department_id=c["department_id"], gift_certificate_type_id=c["type_id"],
                                   quantity=c["quantity"], price=Decimal(c["price"]), currency=c["currency"]))
            client.commit_sales_order(rec.sales_order_id, payment_id=rec.payment_id, amount=Decimal(rec.payment_amount))
    committed = sandbox.state.counts()["certificates"]
    assert committed == expected_certificates(rows)
    # A corrected copy of the file (new bytes, new batch) must finish those rows with batch 1's ids.
    plan2, report2 = run(settings, journal, make_sheet(rows, name="a-kopi.xlsx"))
    assert [r.action for r in plan2.rows] == ["send", "send"]
    assert all(r.earlier.batch_id == plan1.batch.id for r in plan2.rows)
    assert sandbox.state.counts()["certificates"] == committed  # nothing issued twice
    assert sandbox.state.counts()["committed_orders"] == 2
    recs1, recs2 = journal.rows(plan1.batch.id), journal.rows(plan2.batch.id)
    assert [r.sales_order_id for r in recs1] == [r.sales_order_id for r in recs2]
    assert {r.status for r in recs1} == {RowStatus.ISSUED}  # batch 1 is settled too
    assert "Settled by row" in recs1[0].error


def test_corrected_row_after_a_lost_commit_answer_is_not_issued_twice(settings, sandbox, journal):
    rows = [person(0, amount="100", quantity=1)]
    sheet = make_sheet(rows)
    plan, _ = run(dataclasses.replace(settings, max_attempts=1), journal, sheet, sandbox=sandbox, faults=Faults(drop_rate=1.0))
    sandbox.faults = Faults()
    # Drive the row to "commit sent, answer lost" by hand, as a crash right after the commit would leave it.
    rec = journal.rows(plan.batch.id)[0]
    journal.set_step(plan.batch.id, 2, Step.COMMIT, payment_amount="100", commit_content=rec.content)
    journal.finish_row(plan.batch.id, 2, RowStatus.UNKNOWN, error="lost")
    with FlexyboxClient(settings) as client:
        client.put_customer(rec.customer_id, full_name="x", email="person.0@example.com")
        client.put_sales_order(FlexyboxClient.sales_order_body(rec.sales_order_id, customer_id=rec.customer_id,
                               department_id=1, gift_certificate_type_id=rec.content["type_id"], quantity=1,
                               price=Decimal("100"), currency="DKK"))
        client.commit_sales_order(rec.sales_order_id, payment_id=rec.payment_id, amount=Decimal("100"))
    assert sandbox.state.counts()["certificates"] == 1
    corrected = make_sheet([person(0, amount="150", quantity=1)])
    corrected.sha256 = sheet.sha256  # the same batch, with the user's correction
    _, report = run(settings, journal, corrected, batch_id=plan.batch.id)
    assert report.outcomes == {2: RowStatus.ISSUED}
    assert sandbox.state.counts()["certificates"] == 1
    rec = journal.rows(plan.batch.id)[0]
    assert "Settled exactly as first sent (Test Person 0, person.0@example.com, 1 × 100.00 DKK Gavekort, Webshop)" in rec.error
    # The ledger records what was really issued, not the edit.
    assert rec.content["price"] == "100" and Decimal(sandbox.state.certificates[0]["Amount"]) == Decimal("100")


def test_a_definitely_refused_commit_takes_corrections(settings, sandbox, journal):
    rows = [person(0, amount="100", quantity=1)]
    sheet = make_sheet(rows)
    plan, _ = run(settings, journal, sheet, sandbox=sandbox, faults=Faults(drop_rate=1.0, only="^PUT /api/v2/customers"))
    rec = journal.rows(plan.batch.id)[0]
    # A commit that the server refused outright (say the payment total was wrong) did not happen.
    journal.set_step(plan.batch.id, 2, Step.COMMIT, payment_amount="99", commit_content=rec.content)
    journal.finish_row(plan.batch.id, 2, RowStatus.FAILED, error="400 payment total")
    assert journal.row(plan.batch.id, 2).step == Step.ORDER
    assert not journal.row(plan.batch.id, 2).commit_may_have_happened
    sandbox.faults = Faults()
    corrected = make_sheet([person(0, amount="150", quantity=1)])
    corrected.sha256 = sheet.sha256
    _, report = run(settings, journal, corrected, batch_id=plan.batch.id)
    assert report.outcomes == {2: RowStatus.ISSUED}
    assert [c["Amount"] for c in sandbox.state.certificates] == [Decimal("150")]
    assert journal.row(plan.batch.id, 2).content["price"] == "150"


def test_rejected_token_stops_the_run(settings, sandbox, journal):
    rows = [person(i) for i in range(10)]
    sheet = make_sheet(rows)
    with FlexyboxClient(settings) as client:
        validation = validate(sheet, client.get_catalogue())
    plan = plan_batch(journal, validation, input_path="x", target="t", options={})
    bad = dataclasses.replace(settings, token=Secret("wrong"))
    with FlexyboxClient(bad) as client:
        report = BatchRunner(client, journal, workers=2).run(plan)
    assert isinstance(report.fatal, AuthError)
    assert sandbox.state.counts()["customers"] == 0
    assert len(report.outcomes) <= 2  # at most the rows already in flight
    assert {r.status for r in journal.rows(plan.batch.id)} == {RowStatus.PENDING}


def test_server_refusal_is_failed_and_the_run_goes_on(settings, sandbox, journal):
    rows = [person(0), person(1, email="bad@"), person(2)]
    sheet = make_sheet(rows)
    with FlexyboxClient(settings) as client:
        validation = validate(sheet, client.get_catalogue())
    # Bypass our own email check to see the server's 400 become a FAILED row.
    validation.checks[1].order = dataclasses.replace(validation.checks[0].order, email="bad@", row=3)
    validation.checks[1].problems = []
    validation.checks[1].fingerprint = "x"
    plan = plan_batch(journal, validation, input_path="x", target="t", options={})
    with FlexyboxClient(settings) as client:
        report = BatchRunner(client, journal).run(plan)
    assert report.outcomes == {2: RowStatus.ISSUED, 3: RowStatus.FAILED, 4: RowStatus.ISSUED}
    failed = journal.row(plan.batch.id, 3)
    # Issue #13: the refused field in words; without the sheet's words (no describe_refusal) the value sent is named.
    assert failed.error == ("Flexybox refused the email address bad@: EmailAddress 'bad@' is not a valid email address: "
                            "There must be something after the @-sign. Nothing was issued for this row. Correct the row "
                            "in the result sheet and run flexybulk retry on it.")


def test_flexybox_going_down_stops_the_run_and_leaves_rows_pending(tmp_path, journal):
    from flexybulk.sandbox import Sandbox
    from flexybulk.settings import Settings

    rows = [person(i) for i in range(40)]
    sheet = make_sheet(rows)
    sb = Sandbox(port=0).start()
    settings = Settings(token=Secret(sb.token), crm_url=sb.url, pos_url=sb.url, api_url=sb.url,
                        max_attempts=2, backoff=0.01, max_backoff=0.02, connect_timeout=2)
    with FlexyboxClient(settings) as client:
        validation = validate(sheet, client.get_catalogue())
        plan = plan_batch(journal, validation, input_path="x", target="t", options={})
        done = []

        def progress(status):
            done.append(status)
            if len(done) == 5:
                # Slow first, so the other worker finishes no more than its row in flight while the server stops.
                sb.faults = Faults(latency=0.2)
                sb.stop()  # Flexybox goes down mid-run

        report = BatchRunner(client, journal, workers=2, progress=progress).run(plan)
    assert report.fatal is not None and "could not be reached for" in str(report.fatal)
    statuses = Counter(r.status for r in journal.rows(plan.batch.id))
    assert statuses[RowStatus.FAILED] == 0  # nothing was refused
    assert statuses[RowStatus.PENDING] >= 30, statuses  # it stopped instead of trying every row
    unreachable = [r for r in journal.rows(plan.batch.id) if r.error and r.error.startswith("Not sent:")]
    assert unreachable and "could not connect to 127.0.0.1:" in unreachable[0].error
    assert len(report.outcomes) < 20  # rows after the stop were never taken


def test_the_commit_step_is_on_disk_before_each_commit_is_sent(settings, sandbox, journal):
    """Only the commit's record must precede its call on disk (issue #3); the customer and order PUTs are
    idempotent by ids written at planning, so the runner does not wait for their step records (issue #4)."""
    import sqlite3

    rows = [person(i, quantity=1 + i % 3) for i in range(12)]
    seen: dict[str, tuple] = {}

    class Spy(FlexyboxClient):
        def commit_sales_order(self, sales_order_id, **kw):
            db = sqlite3.connect(journal.path)  # what a rerun would read after a crash at this moment
            try:
                seen[sales_order_id] = db.execute(
                    "SELECT step, payment_amount, commit_content, customer_id, payment_id FROM rows WHERE sales_order_id = ?",
                    (sales_order_id,)).fetchone()
            finally:
                db.close()
            assert kw["payment_id"] == seen[sales_order_id][4]
            return super().commit_sales_order(sales_order_id, **kw)

    sheet = make_sheet(rows)
    with Spy(settings) as client:
        validation = validate(sheet, client.get_catalogue())
        plan = plan_batch(journal, validation, input_path=str(sheet.path), target="t", options={})
        BatchRunner(client, journal, workers=4).run(plan)
    recs = journal.rows(plan.batch.id)
    assert len(seen) == 12 == sum(r.status == RowStatus.ISSUED for r in recs)
    for rec in recs:
        step, amount, content, customer_id, payment_id = seen[rec.sales_order_id]
        assert step == Step.COMMIT.value
        assert Decimal(amount) == Decimal(rec.content["price"]) * rec.content["quantity"]
        assert content is not None and customer_id == rec.customer_id
    assert len(sandbox.state.certificates) == sum(r["quantity"] for r in rows)


def test_the_result_sheet_shows_an_in_doubt_row_at_the_amount_it_will_be_settled_with(settings, sandbox, journal,
                                                                                      tmp_path):
    """A row whose commit may have gone through (100 DKK) and whose line now says 150: the sheet shows 100."""
    from flexybulk.results import result_sheet

    sheet = make_sheet([person(0, amount="100", quantity=2)])
    plan, _ = run(dataclasses.replace(settings, max_attempts=1), journal, sheet, sandbox=sandbox, faults=Faults(drop_rate=1.0))
    rec = journal.rows(plan.batch.id)[0]
    journal.set_step(plan.batch.id, 2, Step.COMMIT, payment_amount="200", commit_content=rec.content)
    journal.finish_row(plan.batch.id, 2, RowStatus.UNKNOWN, error="lost")
    corrected = make_sheet([person(0, amount="150", quantity=3)])
    sandbox.faults = Faults()
    with FlexyboxClient(settings) as client:
        validation = validate(corrected, client.get_catalogue())
    out = result_sheet(corrected, validation, plan.batch, {2: journal.row(plan.batch.id, 2)}, tmp_path / "l.sqlite3")
    row = next(iter(out.rows))
    assert row.extra["Status"] == RowStatus.UNKNOWN
    assert (row.extra["AmountRead"].amount, row.extra["LineTotal"].amount) == (Decimal("100"), Decimal("200"))
    # Once the commit is known refused outright, the line's own values count again.
    journal.finish_row(plan.batch.id, 2, RowStatus.FAILED, error="400")
    journal.set_step(plan.batch.id, 2, Step.ORDER)
    out = result_sheet(corrected, validation, plan.batch, {2: journal.row(plan.batch.id, 2)}, tmp_path / "l.sqlite3")
    row = next(iter(out.rows))
    assert (row.extra["AmountRead"].amount, row.extra["LineTotal"].amount) == (Decimal("150"), Decimal("450"))
