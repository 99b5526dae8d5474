"""Planning a batch against the ledger: its ids, and a decision for every row, recorded before any call.

Exactly once, by construction (issue #3, issue #11):

- A new batch's customer, sales order and external payment ids are derived
  from the target, the input file's SHA-256 and the row (:func:`derived_id`),
  so the same file issued from two ledgers sends the same ids and Flexybox
  ignores the repeat; a resumed batch keeps every id it recorded.
- A row already ISSUED (in this batch or, by fingerprint, in an earlier one)
  is never sent again, unless the user asks to reissue and confirms.
- An unfinished row of an earlier batch whose commit may have happened is
  settled with that row's ids, never new ones.
- Every id is in the ledger when :func:`plan_batch` returns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from .errors import JournalError
from .journal import BatchRecord, Journal, NewRow, RowRecord, near_key, new_id
from .model import RowStatus
from .records import describe_content, describe_line, edited_since, excluded_text, order_content, problems_text
from .validate import RowCheck, Validation


ID_NAMESPACE = uuid.UUID("1b0c7d8e-5a43-5f0e-9a7e-3d2f6c4b8a10")
"""The namespace of every id flexybulk derives (a fixed constant: changing it would change every derived id)."""


def derived_id(kind: str, target: str, sha256: str, key: str, salt: str | None = None, sheet: str | None = None) -> str:
    """An id the vendor can deduplicate: the same on every machine for the same file, target and row (issue #11).

    RFC 9562 version 5 (SHA-1 name-based) UUID, in :data:`ID_NAMESPACE`, of
    ``"flexybulk-id/1"``, ``kind`` (``"customer"``, ``"sales-order"``,
    ``"external-payment"``), the canonical ``target``, the input file's
    ``sha256``, the worksheet's name (``sheet``; ``""`` for CSV: two sheets of
    one workbook are two batches), the ``salt`` (``""`` unless a deliberate
    reissue chose a random one) and ``key`` (the row number; for a customer,
    the case-folded email), joined by U+001F. So two colleagues who issue the same file to the
    same Flexybox from two ledgers send the same sales order and external
    payment ids, and the vendor's documented rule ("duplicate posts with the
    same [payment] Id will be ignored") stops the second issue even though
    neither ledger knows the other.
    """
    name = "\x1f".join(("flexybulk-id/1", kind, target, sha256, sheet or "", salt or "", key))
    return str(uuid.uuid5(ID_NAMESPACE, name))


@dataclass(frozen=True)
class DerivedIds:
    """A batch's :func:`derived_id` source: its target, its input file's SHA-256 and its salt."""

    target: str
    sha256: str
    salt: str | None
    sheet: str | None = None

    def customer(self, email: str) -> str:
        return derived_id("customer", self.target, self.sha256, email.casefold(), self.salt, self.sheet)

    def row(self, row_number: int) -> tuple[str, str]:
        """(sales order id, external payment id) of one input row."""
        key = str(row_number)
        return (derived_id("sales-order", self.target, self.sha256, key, self.salt, self.sheet),
                derived_id("external-payment", self.target, self.sha256, key, self.salt, self.sheet))


_SENT = ("send", "reissue", "near")  # the actions whose rows a run sends


_ALREADY_ISSUED = "Already issued in this batch."
"""A ``"done"`` row's message when its line still says what was issued."""


def edited_issued_text(content: dict) -> str:
    """A ``"done"`` row's message when its line was edited after the issue: what was really issued (never sent again)."""
    return (f"Already issued in this batch as: {describe_content(content)}. The values on its line differ and are "
            "not applied: an issued row is never sent again.")


def edited_skipped_text(content: dict) -> str:
    """A ``"skip"`` row's message when the line of a row an earlier batch issued was edited since (not sent)."""
    return (f"Issued by an earlier batch as: {describe_content(content)}, so this line was skipped. Its values "
            "differ now and are not applied: a skipped row is not issued from this line. To give this person "
            "another gift certificate, put it on a new sheet (or use --allow-reissue).")


@dataclass
class PlannedRow:
    """What the plan decided for one input row.

    ``action`` is ``"send"``, ``"done"`` (already issued in this batch),
    ``"skip"`` (issued in an earlier batch), ``"reissue"`` (issued earlier,
    will be issued again once confirmed), ``"near"`` (the same email already
    received this gift certificate type for another amount, quantity or department; sent
    once confirmed), ``"held"`` (held back by ``--first``), ``"invalid"`` or
    ``"excluded"`` (hidden or filtered out by the person: never sent, recorded
    EXCLUDED; issue #12). ``earlier`` is the earlier batch's row
    it is compared with; ``adopt`` says the row takes over that row's ids.
    """

    row_number: int
    action: str
    message: str | None = None
    earlier: RowRecord | None = None
    adopt: bool = False
    edited: bool = False  # a "done" or "skip" row whose line was edited since its issue (the edits are never applied)


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
        return [r.row_number for r in self.rows if r.action in _SENT]

    @property
    def duplicates(self) -> list[PlannedRow]:
        """Rows issued in an earlier batch (skipped, or to be reissued)."""
        return [r for r in self.rows if r.action in ("skip", "reissue")]

    def hold_after(self, first: int) -> int:
        """Send only the first ``first`` rows to send (``--first``, a canary); the others become ``"held"``.

        A held row is not sent and stays PENDING in the ledger, with all its
        ids, so a retry of the result sheet sends it. Returns how many were held.
        """
        held = 0
        for r in self.rows:
            if r.action in _SENT:
                if first > 0:
                    first -= 1
                else:
                    r.action, r.message, held = "held", "Held back by --first: not sent yet; a retry sends it.", held + 1
        return held

    @property
    def held(self) -> list[PlannedRow]:
        """Rows held back by :meth:`hold_after`."""
        return [r for r in self.rows if r.action == "held"]

    @property
    def near(self) -> list[PlannedRow]:
        """Rows like gift certificates issued earlier to the same email (same type, other amount): confirmed separately."""
        return [r for r in self.rows if r.action == "near"]

    @property
    def settling(self) -> list[PlannedRow]:
        """Rows that finish an earlier batch's unfinished row with its ids."""
        return [r for r in self.rows if r.action == "send" and r.earlier is not None]


def plan_batch(journal: Journal, validation: Validation, *, input_path: str, target: str, options: dict,
               batch_id: str | None = None, allow_reissue: bool = False, web_user: str | None = None,
               identity: tuple[str, str | None] | None = None) -> Plan:
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
            instead of ``"skip"`` (the caller must confirm before running);
            the new batch's ids are salted with a random salt, so they are new.
        web_user: the web page's user who asked for the batch (recorded).
        identity: ``(SHA-256, sheet name)`` the batch is known by; by default the
            sheet's own. A validation sheet given to ``issue`` stands for the file
            it was made from (issue #11), so it brings that file's identity.

    A new batch's ids come from :func:`derived_id` (the same file and target
    give the same ids on any machine); a resumed batch keeps every id it has.

    Returns:
        The :class:`Plan`. All ids are in the ledger when this returns.

    Raises:
        JournalError: the ledger cannot be written, or ``batch_id`` is unknown.
    """
    sheet = validation.sheet
    sha256, sheet_name = identity or (sheet.sha256, sheet.sheet_name)
    if not sha256:
        # Resume and duplicate protection key on the file's bytes; without them two files would look alike.
        raise JournalError(f"Internal error: no SHA-256 for {sheet.path.name}; nothing was issued.")
    if batch_id:
        batch = journal.get_batch(batch_id)
    elif allow_reissue:
        # Reissuing needs new ids, so a new batch; rows another batch left in flight are still adopted below.
        batch = None
    else:
        batch = journal.find_batch_by_sha256(sha256, target, sheet_name)
    if batch_id and batch is None:
        raise JournalError(
            f"{sheet.path.name} names batch {batch_id}, which is not in the ledger {journal.path}. "
            "Run it with the ledger that issued it (--ledger or FLEXYBULK_LEDGER)."
        )
    resumed = batch is not None
    if batch is None:
        # Ids derived from the file, the same on any machine; a deliberate reissue salts them, so that they are new.
        salt = new_id() if allow_reissue else None
        ids = DerivedIds(target, sha256, salt, sheet_name)
        new_rows = [_new_row(c, ids) for c in validation.checks]
        batch = journal.create_batch(input_path=input_path, input_sha256=sha256, target=target, sheet_name=sheet_name,
                                     options=options, rows=new_rows, id_salt=salt, web_user=web_user)
    else:
        _update_batch(journal, batch, validation)

    records = {r.row_number: r for r in journal.rows(batch.id)}
    decided: dict[int, PlannedRow] = {}
    candidates: list[RowRecord] = []
    for c in validation.checks:
        rec = records[c.row.number]
        if rec.status == RowStatus.ISSUED:
            edited = edited_since(c.order, rec.content)
            decided[rec.row_number] = PlannedRow(rec.row_number, "done", edited_issued_text(rec.content) if edited
                                                 else _ALREADY_ISSUED, edited=edited)
        elif rec.status == RowStatus.SKIPPED and edited_since(c.order, rec.content):
            # Skipped as issued by an earlier batch, then edited: the same person's certificate exists, so the
            # edit is not a new row to issue (a fresh user's find: the near-duplicate question alone stopped it).
            decided[rec.row_number] = PlannedRow(rec.row_number, "skip", edited_skipped_text(rec.content), edited=True)
        elif c.row.excluded is not None and rec.commit_may_have_happened and rec.content:
            candidates.append(rec)  # hidden while its commit was in doubt: settled with its recorded ids, never left open
        elif c.row.excluded is not None:
            decided[rec.row_number] = PlannedRow(rec.row_number, "excluded", excluded_text(c.row.excluded))
        elif c.order is None:
            decided[rec.row_number] = PlannedRow(rec.row_number, "invalid", problems_text(c.problems))
        else:
            candidates.append(rec)

    for n, planned in decide_rows(journal, [Candidate(r.row_number, r.fingerprint, r.content, r.sales_order_id) for r in candidates],
                                  target=batch.target, exclude_batch=batch.id, allow_reissue=allow_reissue).items():
        if planned.adopt:
            # Take over the ids of an earlier batch's row whose commit may have happened (issue #3).
            rec = records[n]
            journal.update_plan(batch.id, n, status=RowStatus.PENDING, fingerprint=rec.fingerprint, content=rec.content,
                                adopt=planned.earlier)
        decided[n] = planned
    rows = [decided[c.row.number] for c in validation.checks]
    return Plan(batch, rows, resumed)


def _new_row(check: RowCheck, ids: DerivedIds, customer_ids: dict[str, str] | None = None) -> NewRow:
    order_id, payment_id = ids.row(check.row.number)
    if check.row.excluded is not None:
        return NewRow(check.row.number, RowStatus.EXCLUDED, None, None, ids.customer(f"row {check.row.number}"),
                      order_id, payment_id, excluded_text(check.row.excluded))
    if check.order is None:
        return NewRow(check.row.number, RowStatus.INVALID, None, None, ids.customer(f"row {check.row.number}"),
                      order_id, payment_id, problems_text(check.problems))
    # One customer id per distinct email in the batch (issue #2); a batch that recorded one keeps it.
    email = check.order.email.casefold()
    cid = (customer_ids or {}).get(email) or ids.customer(email)
    return NewRow(check.row.number, RowStatus.PENDING, check.fingerprint, order_content(check.order), cid, order_id, payment_id)


def _update_batch(journal: Journal, batch: BatchRecord, validation: Validation) -> None:
    """Bring a resumed batch's unissued rows in line with the sheet as it is now."""
    records = {r.row_number: r for r in journal.rows(batch.id)}
    customer_ids = {r.content["email"].casefold(): r.customer_id for r in records.values() if r.content}
    ids = DerivedIds(batch.target, batch.input_sha256, batch.id_salt, batch.sheet_name)
    missing = []
    for c in validation.checks:
        rec = records.get(c.row.number)
        if rec is None:
            missing.append(_new_row(c, ids, customer_ids))
            continue
        if rec.status in (RowStatus.ISSUED, RowStatus.SKIPPED):
            continue  # an issued row is never re-sent, whatever was edited (issue #3); nor one an earlier batch issued
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
            cid = None if same_email else customer_ids.setdefault(email, ids.customer(email))
            journal.update_plan(batch.id, rec.row_number, status=RowStatus.PENDING, fingerprint=c.fingerprint,
                                content=content, customer_id=cid, error=None)
    if missing:
        journal.add_rows(batch.id, missing)


@dataclass(frozen=True)
class Candidate:
    """A row about to be sent, as the duplicate decision sees it (from the ledger, or from a dry run's sheet)."""

    row_number: int
    fingerprint: str | None
    content: dict | None
    sales_order_id: str | None = None


def decide_rows(journal: Journal, candidates: list[Candidate], *, target: str, exclude_batch: str | None,
                allow_reissue: bool) -> dict[int, PlannedRow]:
    """Compare rows about to be sent with every earlier batch of ``target``; reads the ledger, writes nothing.

    By fingerprint (issue #3): the k-th row of this batch with a fingerprint
    matches the k-th earlier issued order with it, so a file that rightly
    holds two identical rows issues the second after one earlier issue: those
    are ``"skip"`` (or ``"reissue"``). Next, an earlier row whose commit may
    have happened is taken over (``adopt``: its ids reused, ``"send"``).
    Past those, a row whose email already received a gift certificate of the
    same type in an earlier batch, for another amount, quantity or department, is
    ``"near"`` (issue #11: what a corrected copy of a file looks like; it is
    sent only after its own confirmation). Every other row is ``"send"``.
    """
    earlier = journal.rows_by_fingerprint([r.fingerprint for r in candidates if r.fingerprint], target=target,
                                          exclude_batch=exclude_batch)
    similar = journal.issued_near([near_key(r.content) for r in candidates], target=target, exclude_batch=exclude_batch)
    decided: dict[int, PlannedRow] = {}
    position: dict[str | None, int] = {}
    for rec in candidates:
        fp = rec.fingerprint
        k = position.get(fp, 0)
        position[fp] = k + 1
        group = earlier.get(fp, []) if fp else []
        issued = _unique_orders(r for r in group if r.status == RowStatus.ISSUED)
        if k < len(issued):
            prev = issued[k]
            text = (f"Already issued on {_day(prev)} in batch {prev.batch_id} (row {prev.row_number}, "
                    f"sales order {prev.sales_order_id}).")
            if allow_reissue:
                decided[rec.row_number] = PlannedRow(rec.row_number, "reissue", text + " To be issued again under new ids "
                                                     "(--allow-reissue), if you confirm.", prev)
            else:
                decided[rec.row_number] = PlannedRow(rec.row_number, "skip", text + " Not issued again; use --allow-reissue to issue it anyway.", prev)
            continue
        in_flight = _unique_orders(r for r in group if r.commit_may_have_happened)
        j = k - len(issued)
        if j < len(in_flight):
            prev = in_flight[j]
            decided[rec.row_number] = PlannedRow(
                rec.row_number, "send",
                f"Finishes row {prev.row_number} of batch {prev.batch_id} with its recorded ids (its commit may have happened).",
                prev, adopt=rec.sales_order_id != prev.sales_order_id)
            continue
        near = [r for r in _unique_orders(similar.get(near_key(rec.content) or "", [])) if r.fingerprint != fp]
        if near:
            prev = near[-1]
            text = (f"{rec.content['email']} already received a {prev.content['type_name']} on {_day(prev)} in batch "
                    f"{prev.batch_id} (row {prev.row_number}: {describe_line(prev.content)}); this row is "
                    f"{describe_line(rec.content)}. Issued only if you confirm it: a corrected copy of a file would give the "
                    "person a second gift certificate.")
            decided[rec.row_number] = PlannedRow(rec.row_number, "near", text, prev)
            continue
        decided[rec.row_number] = PlannedRow(rec.row_number, "send")
    return decided


def _day(rec: RowRecord) -> str:
    return (rec.issued_at or rec.updated_at)[:10]


def preview(journal: Journal, validation: Validation, *, target: str,
            identity: tuple[str, str | None] | None = None, batch_id: str | None = None) -> dict[int, PlannedRow]:
    """What an ``issue`` of ``validation``'s sheet would decide for the rows it would not simply send (the dry run).

    Reads the ledger, writes nothing: rows this file's batch already issued
    (``"done"``), rows an earlier batch issued (``"skip"``), rows that would
    finish an earlier batch's unfinished row (``"send"`` with ``earlier``) and
    near-duplicates that would need a confirmation (``"near"``), and rows of
    this file's batch whose commit may already have gone through, which an
    issue settles exactly as first sent (``"send"`` with ``earlier`` = that
    row). Rows that would just be sent are left out. ``batch_id`` names the
    batch (a result sheet given back); else the file's identity finds it.
    """
    sheet = validation.sheet
    sha256, sheet_name = identity or (sheet.sha256, sheet.sheet_name)
    if batch_id:
        batch = journal.get_batch(batch_id)
    else:
        batch = journal.find_batch_by_sha256(sha256, target, sheet_name) if sha256 else None
    records = {r.row_number: r for r in journal.rows(batch.id)} if batch else {}
    found: dict[int, PlannedRow] = {}
    candidates = []
    for c in validation.checks:
        if c.order is None:
            continue
        rec = records.get(c.row.number)
        if rec is not None and rec.status == RowStatus.ISSUED:
            said = f"Already issued on {_day(rec)} in batch {batch.id} (this file)"
            edited = edited_since(c.order, rec.content)
            if edited:  # the line edited since: say what was issued
                said += (f" as: {describe_content(rec.content)}. The values on its line differ and would not be "
                         "applied: an issue skips it.")
            else:
                said += ": an issue would skip it."
            found[c.row.number] = PlannedRow(c.row.number, "done", said, rec, edited=edited)
            continue
        if rec is not None and rec.commit_may_have_happened and rec.commit_content is not None:
            found[c.row.number] = PlannedRow(c.row.number, "send", "Its commit may already have gone through: an issue "
                                             f"settles it exactly as first sent ({describe_line(rec.commit_content)}).", rec)
            continue
        candidates.append(Candidate(c.row.number, c.fingerprint, order_content(c.order),
                                    rec.sales_order_id if rec is not None else None))
    decided = decide_rows(journal, candidates, target=target, exclude_batch=batch.id if batch else None, allow_reissue=False)
    found.update({n: r for n, r in decided.items() if r.action != "send" or r.earlier is not None})
    return dict(sorted(found.items()))


def _unique_orders(records: Any) -> list[RowRecord]:
    seen: set[str] = set()
    out = []
    for r in records:
        if r.sales_order_id not in seen:
            seen.add(r.sales_order_id)
            out.append(r)
    return out
