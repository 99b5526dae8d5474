"""Issuing: plan a batch against the ledger, then run each row through the vendor's flow.

The flow per row (vendor help article, ``shared/flexybox-api.md`` part A):
PUT the customer -> PUT the sales order -> POST the commit with one external
payment. Every id is chosen and recorded in the ledger before the first call
that uses it (``journal.Journal.create_batch``), and each step is recorded
(``Journal.set_step``): the commit step, with the payment amount and the
content committed, is on disk before the commit is sent; the customer and
sales order steps, whose PUTs are idempotent by those ids, are not waited for.

Exactly once, by construction:

- A row already ISSUED (in this batch or, by fingerprint, in an earlier one)
  is never sent again, unless the user asks to reissue and confirms.
- An unfinished row is resumed with its recorded ids: the two PUTs are
  idempotent by id, and the commit is re-posted with the *same* external
  payment id, which the vendor ignores if it already has it.
- An unfinished row of an earlier batch whose commit may have happened is
  settled with that row's ids, never new ones.

The runner never prints: it reports through a progress callback, and the
CLI draws the bar.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from .client import FlexyboxClient, certificate_numbers
from .errors import ApiError, AuthError, ConflictError, FlexybulkError, JournalError
from .journal import BatchRecord, Journal, NewRow, RowRecord, Step, new_id
from .model import Order, RowProblem, RowStatus
from .validate import RowCheck, Totals, Validation, fingerprint


def order_content(order: Order) -> dict:
    """The JSON-able content of an order as the ledger records it (money as text)."""
    return {
        "name": order.name,
        "email": order.email,
        "type_id": order.type.id,
        "type_name": order.type.name,
        "department_id": order.department.id,
        "department_name": order.department.name,
        "price": str(order.price),
        "quantity": order.quantity,
        "currency": order.currency,
        "country": order.country,
        "phone": order.phone,
        "address": order.address,
        "postal_code": order.postal_code,
        "city": order.city,
    }


def content_total(content: dict) -> Decimal:
    """Quantity x price of a recorded order content, as ``Decimal``."""
    return Decimal(content["price"]) * int(content["quantity"])


def issued_totals(records: Any) -> Totals:
    """Rows, certificates and money (per currency, ``Decimal``) of the ISSUED ledger rows among ``records``."""
    totals = Totals()
    for r in records:
        if r.status == RowStatus.ISSUED and r.content:
            totals.add_line(r.content["currency"], Decimal(r.content["price"]), int(r.content["quantity"]))
    return totals


def content_fingerprint(content: dict) -> str:
    """:func:`~flexybulk.validate.fingerprint` of a recorded order content."""
    return fingerprint(content["email"], content["type_id"], content["department_id"], Decimal(content["price"]),
                       int(content["quantity"]), content["currency"])


def describe_content(content: dict) -> str:
    """``"Anna Hansen, anna@example.com, 2 × 250.00 DKK Gavekort, Webshop"``: what an order issues, in one line."""
    price = Decimal(content["price"]).quantize(Decimal("0.01"))
    return (f"{content['name']}, {content['email']}, {content['quantity']} × {price} {content['currency']} "
            f"{content['type_name']}, {content['department_name']}")


def row_state_text(rec: RowRecord) -> str:
    """What an unfinished row's ledger record means, in plain words (its error, else its step)."""
    if rec.error:
        return rec.error
    return {
        Step.PLANNED: "not sent yet.",
        Step.CUSTOMER: "interrupted while saving the customer; no gift certificate can have been issued. A rerun finishes it with the same ids.",
        Step.ORDER: "interrupted while saving the sales order; no gift certificate can have been issued. A rerun finishes it with the same ids.",
        Step.COMMIT: "interrupted while committing: the gift certificates may or may not exist. A rerun settles it with the same payment id, so it cannot issue twice.",
    }.get(rec.step, "not finished.")


def problems_text(problems: list[RowProblem]) -> str:
    """All of a row's problems in one cell: ``"E-mail (B): ...; Beløb (F): ..."``."""
    parts = []
    for p in problems:
        where = p.column or "row"
        if p.column_letter:
            where += f" ({p.column_letter})"
        parts.append(f"{where}: {p.message}")
    return "; ".join(parts)


def excluded_text(reason: str) -> str:
    """What the ledger and the result sheet say of a row the person left out (``InputRow.excluded``)."""
    return f"Not issued: the row is {reason} in the sheet. Unhide it and run again, or use --include-hidden, to issue it."


@dataclass
class PlannedRow:
    """What the plan decided for one input row.

    ``action`` is ``"send"``, ``"done"`` (already issued in this batch),
    ``"skip"`` (issued in an earlier batch), ``"reissue"`` (issued earlier,
    will be issued again once confirmed), ``"invalid"`` or ``"excluded"``
    (hidden or filtered out by the person: never sent, recorded EXCLUDED).
    """

    row_number: int
    action: str
    message: str | None = None
    earlier: RowRecord | None = None


@dataclass
class Plan:
    """A batch ready to run: the ledger batch and a decision per row, in input order."""

    batch: BatchRecord
    rows: list[PlannedRow]
    resumed: bool

    def count(self, action: str) -> int:
        """How many rows have this action."""
        return sum(1 for r in self.rows if r.action == action)

    @property
    def to_send(self) -> list[int]:
        """Row numbers to send, in input order."""
        return [r.row_number for r in self.rows if r.action in ("send", "reissue")]

    @property
    def duplicates(self) -> list[PlannedRow]:
        """Rows issued in an earlier batch (skipped, or to be reissued)."""
        return [r for r in self.rows if r.action in ("skip", "reissue")]

    @property
    def settling(self) -> list[PlannedRow]:
        """Rows that finish an earlier batch's unfinished row with its ids."""
        return [r for r in self.rows if r.action == "send" and r.earlier is not None]


def plan_batch(journal: Journal, validation: Validation, *, input_path: str, target: str, options: dict,
               batch_id: str | None = None, allow_reissue: bool = False) -> Plan:
    """Record (or find) the batch for ``validation``'s sheet and decide every row.

    Args:
        journal: the ledger.
        validation: the validated input sheet.
        input_path: the input file as the user named it (recorded).
        target: which Flexybox (the POS base URL, or ``"sandbox"``); only
            batches of the same target are resumed or compared.
        options: the run's options (recorded, JSON-able).
        batch_id: continue this batch (a result sheet names it); otherwise
            the most recent batch made from a file with the same SHA-256 is
            resumed, or a new batch is created (always, with ``allow_reissue``).
        allow_reissue: rows issued in an earlier batch become ``"reissue"``
            instead of ``"skip"`` (the caller must confirm before running).

    Returns:
        The :class:`Plan`. All ids are in the ledger when this returns.

    Raises:
        JournalError: the ledger cannot be written, or ``batch_id`` is unknown.
    """
    sheet = validation.sheet
    if not sheet.sha256:
        # Resume and duplicate protection key on the file's bytes; without them two files would look alike.
        raise JournalError(f"Internal error: no SHA-256 for {sheet.path.name}; nothing was issued.")
    if batch_id:
        batch = journal.get_batch(batch_id)
    elif allow_reissue:
        # Reissuing needs new ids, so a new batch; rows another batch left in flight are still adopted below.
        batch = None
    else:
        batch = journal.find_batch_by_sha256(sheet.sha256, target)
    if batch_id and batch is None:
        raise JournalError(
            f"{sheet.path.name} names batch {batch_id}, which is not in the ledger {journal.path}. "
            "Run it with the ledger that issued it (--ledger or FLEXYBULK_LEDGER)."
        )
    resumed = batch is not None
    if batch is None:
        customer_ids: dict[str, str] = {}
        new_rows = [_new_row(c, customer_ids) for c in validation.checks]
        batch = journal.create_batch(input_path=input_path, input_sha256=sheet.sha256, target=target, sheet_name=sheet.sheet_name,
                                     options=options, rows=new_rows)
    else:
        _update_batch(journal, batch, validation)

    records = {r.row_number: r for r in journal.rows(batch.id)}
    decided: dict[int, PlannedRow] = {}
    candidates: list[RowRecord] = []
    for c in validation.checks:
        rec = records[c.row.number]
        if rec.status == RowStatus.ISSUED:
            decided[rec.row_number] = PlannedRow(rec.row_number, "done", "Already issued in this batch.")
        elif c.row.excluded is not None and rec.commit_may_have_happened and rec.content:
            candidates.append(rec)  # hidden while its commit was in doubt: settled with its recorded ids, never left open
        elif c.row.excluded is not None:
            decided[rec.row_number] = PlannedRow(rec.row_number, "excluded", excluded_text(c.row.excluded))
        elif c.order is None:
            decided[rec.row_number] = PlannedRow(rec.row_number, "invalid", problems_text(c.problems))
        else:
            candidates.append(rec)

    _decide_duplicates(journal, batch, candidates, decided, allow_reissue)
    rows = [decided[c.row.number] for c in validation.checks]
    return Plan(batch, rows, resumed)


def _new_row(check: RowCheck, customer_ids: dict[str, str]) -> NewRow:
    if check.row.excluded is not None:
        return NewRow(check.row.number, RowStatus.EXCLUDED, None, None, new_id(), new_id(), new_id(), excluded_text(check.row.excluded))
    if check.order is None:
        return NewRow(check.row.number, RowStatus.INVALID, None, None, new_id(), new_id(), new_id(), problems_text(check.problems))
    # One customer id per distinct email in the batch (issue #2).
    cid = customer_ids.setdefault(check.order.email.casefold(), new_id())
    return NewRow(check.row.number, RowStatus.PENDING, check.fingerprint, order_content(check.order), cid, new_id(), new_id())


def _update_batch(journal: Journal, batch: BatchRecord, validation: Validation) -> None:
    """Bring a resumed batch's unissued rows in line with the sheet as it is now."""
    records = {r.row_number: r for r in journal.rows(batch.id)}
    customer_ids = {r.content["email"].casefold(): r.customer_id for r in records.values() if r.content}
    missing = []
    for c in validation.checks:
        rec = records.get(c.row.number)
        if rec is None:
            missing.append(_new_row(c, customer_ids))
            continue
        if rec.status == RowStatus.ISSUED:
            continue  # an issued row is never re-sent, whatever was edited (issue #3)
        if c.row.excluded is not None:
            text = excluded_text(c.row.excluded)
            if rec.commit_may_have_happened:
                continue  # its commit may have happened: plan_batch settles it as recorded
            if rec.status != RowStatus.EXCLUDED or rec.error != text:
                journal.update_plan(batch.id, rec.row_number, status=RowStatus.EXCLUDED, fingerprint=None, content=None,
                                    error=text)
            continue
        if c.order is None:
            if rec.status != RowStatus.INVALID or rec.content is not None:
                journal.update_plan(batch.id, rec.row_number, status=RowStatus.INVALID, fingerprint=None, content=None,
                                    error=problems_text(c.problems))
            continue
        content = order_content(c.order)
        if content != rec.content or rec.status == RowStatus.INVALID:
            email = c.order.email.casefold()
            same_email = rec.content is not None and rec.content["email"].casefold() == email
            cid = None if same_email else customer_ids.setdefault(email, new_id())
            journal.update_plan(batch.id, rec.row_number, status=RowStatus.PENDING, fingerprint=c.fingerprint,
                                content=content, customer_id=cid, error=None)
    if missing:
        journal.add_rows(batch.id, missing)


def _decide_duplicates(journal: Journal, batch: BatchRecord, candidates: list[RowRecord],
                       decided: dict[int, PlannedRow], allow_reissue: bool) -> None:
    """Compare rows about to be sent with every earlier batch, by fingerprint (issue #3).

    The k-th row of this batch with a fingerprint matches the k-th earlier
    issued order with it, so a file that rightly holds two identical rows
    issues the second after one earlier issue. Next, an earlier row whose
    commit may have happened is adopted (its ids reused); only past those
    does a row get sent with its own ids.
    """
    earlier = journal.rows_by_fingerprint([r.fingerprint for r in candidates if r.fingerprint], target=batch.target,
                                          exclude_batch=batch.id)
    position: dict[str, int] = {}
    for rec in candidates:
        fp = rec.fingerprint
        k = position.get(fp, 0)
        position[fp] = k + 1
        group = earlier.get(fp, [])
        issued = _unique_orders(r for r in group if r.status == RowStatus.ISSUED)
        if k < len(issued):
            prev = issued[k]
            when = (prev.issued_at or prev.updated_at)[:10]
            text = (f"Already issued on {when} in batch {prev.batch_id} (row {prev.row_number}, "
                    f"sales order {prev.sales_order_id}).")
            if allow_reissue:
                decided[rec.row_number] = PlannedRow(rec.row_number, "reissue", text + " To be issued again (--allow-reissue), if you confirm.", prev)
            else:
                decided[rec.row_number] = PlannedRow(rec.row_number, "skip", text + " Not issued again; use --allow-reissue to issue it anyway.", prev)
            continue
        in_flight = _unique_orders(r for r in group if r.commit_may_have_happened)
        j = k - len(issued)
        if j < len(in_flight):
            prev = in_flight[j]
            if rec.sales_order_id != prev.sales_order_id:
                journal.update_plan(batch.id, rec.row_number, status=RowStatus.PENDING, fingerprint=rec.fingerprint,
                                    content=rec.content, adopt=prev)
            decided[rec.row_number] = PlannedRow(
                rec.row_number, "send",
                f"Finishes row {prev.row_number} of batch {prev.batch_id} with its recorded ids (its commit may have happened).",
                prev)
            continue
        decided[rec.row_number] = PlannedRow(rec.row_number, "send")


def _unique_orders(records: Any) -> list[RowRecord]:
    seen: set[str] = set()
    out = []
    for r in records:
        if r.sales_order_id not in seen:
            seen.add(r.sales_order_id)
            out.append(r)
    return out


@dataclass
class RunReport:
    """What a run did.

    Attributes:
        outcomes: row number -> status after the run, for the rows the run sent.
        interrupted: Ctrl-C stopped the run before every row was sent.
        fatal: the error that stopped the run at once (a rejected token), if any.
    """

    outcomes: dict[int, RowStatus] = field(default_factory=dict)
    interrupted: bool = False
    fatal: FlexybulkError | None = None


class BatchRunner:
    """Runs a plan's rows through the vendor's flow, ``workers`` rows at a time.

    Each row's three calls run in order on one worker thread; rows run
    concurrently. The ledger records each step; the commit's record is on disk
    before the commit is sent (see the module docstring). A failure in
    one row is recorded and the run goes on; a rejected token
    (:class:`~flexybulk.errors.AuthError`) stops taking new rows at once.

    Args:
        client: the Flexybox client (thread-safe).
        journal: the ledger (thread-safe).
        payment_type: the external payment's ``Type`` (``"Mastercard"`` in the vendor's example).
        workers: rows in flight at once.
        progress: called from worker threads with each finished row's status.
    """

    def __init__(self, client: FlexyboxClient, journal: Journal, *, payment_type: str = "Mastercard",
                 workers: int = 4, progress: Callable[[RowStatus], None] | None = None) -> None:
        self.client = client
        self.journal = journal
        self.payment_type = payment_type
        self.workers = workers
        self.progress = progress or (lambda status: None)
        self._stop = threading.Event()
        self._fatal: FlexybulkError | None = None
        # Rows in a row whose calls could not even reach Flexybox: past a few, it is down, and
        # grinding through every remaining row's back-off would only waste the user's time.
        self._unreachable = 0
        self._unreachable_lock = threading.Lock()

    def stop(self) -> None:
        """Stop taking new rows; rows in flight finish."""
        self._stop.set()

    def run(self, plan: Plan) -> RunReport:
        """Send every row the plan says to send; return what happened.

        ``workers`` threads each take the next unsent row, in input order,
        until none is left: rows in flight = workers, with no hand-off
        through the calling thread between rows (issue #4).

        Ctrl-C (``KeyboardInterrupt`` in the calling thread) stops taking new
        rows, lets the calls in flight finish, and returns with
        ``interrupted=True``; unsent rows stay PENDING in the ledger. Every
        outcome is on disk when this returns (``Journal.flush``).
        """
        report = RunReport()
        records = {r.row_number: r for r in self.journal.rows(plan.batch.id)}
        queue = iter([records[n] for n in plan.to_send])
        take = threading.Lock()

        def next_row() -> RowRecord | None:
            with take:
                return None if self._stop.is_set() else next(queue, None)

        finished = threading.Event()  # wakes the calling thread after each row, so Ctrl-C is seen at once

        def work() -> None:
            try:
                while (rec := next_row()) is not None:
                    report.outcomes[rec.row_number] = self._issue_row(rec)
                    finished.set()
            except BaseException:
                self._stop.set()  # a surprise in the runner itself: take no more rows; run() re-raises it
                raise

        def wait_a_little(pending: set) -> set:
            finished.wait(0.5)
            finished.clear()
            return {f for f in pending if not f.done()}

        threads = max(1, min(self.workers, len(plan.to_send)))
        futures: list = []
        try:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="flexybulk-row") as pool:
                futures = [pool.submit(work) for _ in range(threads)]
                for fut in futures:
                    fut.add_done_callback(lambda _: finished.set())
                pending = set(futures)
                try:
                    while pending:
                        pending = wait_a_little(pending)
                except KeyboardInterrupt:
                    report.interrupted = True
                    self._stop.set()
                    while pending:
                        try:
                            pending = wait_a_little(pending)
                        except KeyboardInterrupt:
                            continue  # a second Ctrl-C: the calls in flight still finish, so nothing is lost
        finally:
            self.journal.flush()
        for fut in futures:
            fut.result()  # re-raises a worker's surprise, after the rows in flight finished
        report.fatal = self._fatal
        if self._stop.is_set() and self._fatal is None:
            report.interrupted = True
        return report

    def _issue_row(self, rec: RowRecord) -> RowStatus:
        if self._stop.is_set():
            return RowStatus.PENDING
        try:
            outcome = self._flow(rec)
        except AuthError as exc:
            self._fatal = exc
            self._stop.set()
            self.journal.finish_row(rec.batch_id, rec.row_number, RowStatus.PENDING, wait=False,
                                    error="Not finished: Flexybox refused the token. Fix the token and rerun.")
            self.progress(RowStatus.PENDING)
            return RowStatus.PENDING
        except Exception as exc:  # one row's surprise must not stop the batch or lose its record
            outcome = _Outcome(RowStatus.UNKNOWN, f"Unexpected error ({type(exc).__name__}: {exc}). A rerun settles this row safely with the same ids.")
        status = outcome.status
        with self._unreachable_lock:
            self._unreachable = self._unreachable + 1 if outcome.unreachable else 0
            if self._unreachable >= max(3, self.workers) and self._fatal is None:
                self._fatal = ApiError(
                    f"Stopped: Flexybox could not be reached for {self._unreachable} rows in a row. Check the network and "
                    "the base URLs. The rows not sent are PENDING in the result sheet; run flexybulk retry on it when "
                    "Flexybox can be reached again.")
                self._stop.set()
        # The outcome precedes no call, so the worker goes on at once; the record reaches the disk with this
        # worker's next step record (same transaction) or at the end of run() (Journal.flush).
        self.journal.finish_row(rec.batch_id, rec.row_number, status, error=outcome.error,
                                certificate_numbers=outcome.numbers, settles=rec.settles, wait=False,
                                content=outcome.content,
                                fingerprint=content_fingerprint(outcome.content) if outcome.content else None)
        self.progress(status)
        return status

    def _flow(self, rec: RowRecord) -> "_Outcome":
        c = rec.content
        note = None
        if rec.commit_may_have_happened and rec.commit_content is not None:
            # The commit may already have gone through with the content it was sent for. Settle exactly
            # that (same order body, same payment id and amount): sending edited values under these ids
            # could leave the ledger saying something other than what was issued.
            if rec.commit_content != rec.content:
                note = (f"Settled exactly as first sent ({describe_content(rec.commit_content)}), because its commit may "
                        "already have gone through when the row was changed; the changes were not applied. "
                        "If the changed version should be issued too, add it as a new row.")
            c = rec.commit_content
        total = content_total(c)
        step = "customer"
        try:
            # The customer and sales order PUTs are idempotent by ids that are on disk since planning, so
            # their step records need not be on disk before the call (one sync less per row each, issue #4):
            # lost in a crash, a rerun repeats the PUTs with the same ids. The commit's record must be.
            self.journal.set_step(rec.batch_id, rec.row_number, Step.CUSTOMER, wait=False)
            self.client.put_customer(
                rec.customer_id, full_name=c["name"], email=c["email"], phone=c.get("phone"),
                street_address=c.get("address"), postal_code=c.get("postal_code"),
                postal_district=c.get("city"), country_code=c.get("country"),
            )
            step = "sales order"
            self.journal.set_step(rec.batch_id, rec.row_number, Step.ORDER, wait=False)
            body = FlexyboxClient.sales_order_body(
                rec.sales_order_id, customer_id=rec.customer_id, department_id=c["department_id"],
                gift_certificate_type_id=c["type_id"], quantity=int(c["quantity"]), price=Decimal(c["price"]),
                currency=c["currency"],
            )
            try:
                self.client.put_sales_order(body)
            except ConflictError:
                if rec.payment_amount is None or rec.commit_content is None:
                    raise
                # The order was committed by an earlier attempt of ours, with the content recorded then.
                # Re-post that commit (same payment id, same amount): the vendor ignores the repeat and
                # answers the committed order. Nothing new is issued.
                c, total = rec.commit_content, Decimal(rec.payment_amount)
                note = (f"This order had already been committed by an earlier run ({describe_content(c)}); "
                        "later changes to the row were not applied.")
            step = "commit"
            self.journal.set_step(rec.batch_id, rec.row_number, Step.COMMIT, payment_amount=str(total), commit_content=c)
            # Safe to retry, and to repeat on a rerun, only because payment_id was fixed and recorded
            # before the first attempt: the vendor ignores a second post with the same payment id.
            answer = self.client.commit_sales_order(rec.sales_order_id, payment_id=rec.payment_id, amount=total,
                                                    payment_type=self.payment_type)
            return _Outcome(RowStatus.ISSUED, note, certificate_numbers(answer), None if c == rec.content else c)
        except AuthError:
            raise
        except ApiError as exc:
            if exc.not_sent:
                # Never reached Flexybox: not a refusal, nothing to correct. The row simply is not finished.
                return _Outcome(RowStatus.PENDING, f"Not sent: {exc} Nothing was issued for this row; "
                                "rerun (flexybulk retry on the result sheet) when Flexybox can be reached.", unreachable=True)
            if exc.outcome_unknown:
                if step == "commit":
                    text = (f"The commit's outcome is unknown: {exc}. The gift certificates may or may not exist. "
                            "Rerun (flexybulk retry on the result sheet): the same payment id is re-posted, so it cannot issue twice.")
                else:
                    text = (f"The {step} call's outcome is unknown: {exc}. No gift certificate can have been issued yet; "
                            "rerun (flexybulk retry on the result sheet) to finish it with the same ids.")
                return _Outcome(RowStatus.UNKNOWN, text)
            text = f"Flexybox refused the {step}: {exc}. Nothing was issued for this row. Correct the row in the result sheet and run flexybulk retry on it."
            return _Outcome(RowStatus.FAILED, text)


@dataclass
class _Outcome:
    """What one row's flow ended with; ``content`` is set when what was committed differs from the ledger's content."""

    status: RowStatus
    error: str | None = None
    numbers: list[str] = field(default_factory=list)
    content: dict | None = None
    unreachable: bool = False
