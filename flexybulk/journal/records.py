"""The ledger's records: a batch, a row, a step, and the few values derived from them. No I/O."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum

from ..model import RowStatus


class Step(str, Enum):
    """How far a row got. Each is recorded *before* its call is sent.

    ``COMMIT`` recorded but not ``COMMITTED`` means the commit may or may not
    have reached the server: only a re-post with the same payment id may
    settle it.
    """

    PLANNED = "PLANNED"  # ids chosen and recorded; nothing sent
    CUSTOMER = "CUSTOMER"  # customer PUT about to be sent
    ORDER = "ORDER"  # customer saved; sales order PUT about to be sent
    COMMIT = "COMMIT"  # sales order saved; commit about to be sent (payment_amount recorded)
    COMMITTED = "COMMITTED"  # the commit answered: the certificates exist


def utcnow() -> str:
    """Now in UTC, ISO 8601 with seconds and ``Z``-free offset (``2026-11-30T05:07:33+00:00``)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def new_id() -> str:
    """A fresh random GUID (RFC 9562 version 4) as lower-case text."""
    return str(uuid.uuid4())


def near_key(content: dict | None) -> str | None:
    """The key under which two orders count as near-duplicates: the same email (case-folded) and gift certificate type.

    Two rows with this key but other amounts or quantities are what a
    corrected copy of a file looks like (issue #11): the person would get a
    second gift certificate of the same type.
    """
    if not content or not content.get("email"):
        return None
    return f"{str(content['email']).casefold()}\x1f{json.dumps(content.get('type_id'), sort_keys=True)}"


@dataclass
class BatchRecord:
    """A batch as recorded: one input file issued under one batch id.

    ``target`` names the Flexybox the batch was issued against (the POS base
    URL in its canonical spelling, or ``"sandbox"``): resume and duplicate
    protection only ever compare batches of the same target, so sandbox runs
    never hide real issues. ``id_salt`` is ``None`` when the batch's ids are
    derived from the file (the same file issued anywhere sends the same ids),
    else the random salt of a deliberate reissue. ``web_user`` is the web
    page's user who started it, if any.
    """

    id: str
    input_path: str
    input_sha256: str
    target: str
    sheet_name: str | None
    os_user: str | None
    options: dict
    created_at: str
    updated_at: str
    id_salt: str | None = None
    web_user: str | None = None


@dataclass
class RowRecord:
    """One row of one batch as recorded.

    ``content`` is the order as last planned (JSON object: name, email,
    type_id, type_name, department_id, department_name, price (text),
    quantity, currency, country, phone, address, postal_code, city), or
    ``None`` for a row that was never valid. ``payment_amount`` is the
    amount of the commit as sent (text of a Decimal), once a commit was
    attempted, and ``commit_content`` the content it was sent for: when
    that commit may have gone through, the row is only ever settled with
    exactly that content, never with later edits. Once ISSUED, ``content``
    is what was committed.
    """

    batch_id: str
    row_number: int
    status: RowStatus
    step: Step
    fingerprint: str | None
    content: dict | None
    customer_id: str
    sales_order_id: str
    payment_id: str
    payment_amount: str | None
    commit_content: dict | None
    certificate_numbers: list[str]
    error: str | None
    settles: str | None
    created_at: str
    updated_at: str
    issued_at: str | None

    @property
    def commit_may_have_happened(self) -> bool:
        """True when a commit was sent and no answer settled it.

        The step stays COMMIT whatever the row's status becomes later (an
        edit may even make it INVALID), until an answer settles it: ISSUED,
        or a definite refusal of a commit none of whose attempts may have
        reached Flexybox, which steps back to ORDER (:meth:`Journal.finish_row`).
        """
        return self.step == Step.COMMIT and self.status != RowStatus.ISSUED

    @property
    def known_status(self) -> RowStatus:
        """The status to show once no run is working on the row: UNKNOWN for a PENDING row cut off at its commit.

        The commit step is on disk before the commit is sent and the outcome
        after the answer; a run killed in between leaves the row PENDING at
        the commit step, yet its certificates may or may not exist, which the
        README calls UNKNOWN (PENDING: none can exist yet; a fresh user's find).
        """
        if self.status is RowStatus.PENDING and self.step == Step.COMMIT:
            return RowStatus.UNKNOWN
        return self.status


@dataclass
class NewRow:
    """A row to record when a batch is created (ids chosen by the caller)."""

    row_number: int
    status: RowStatus
    fingerprint: str | None
    content: dict | None
    customer_id: str
    sales_order_id: str
    payment_id: str
    error: str | None = None
    # An adopted result sheet's row arrives part-way (issue #11): how far it got, as its sheet says.
    step: Step = Step.PLANNED
    payment_amount: str | None = None
    commit_content: dict | None = None
    certificate_numbers: list[str] | None = None
    issued_at: str | None = None


_ROW_COLUMNS = (
    "batch_id, row_number, status, step, fingerprint, content, customer_id, sales_order_id, payment_id, "
    "payment_amount, commit_content, certificate_numbers, error, settles, created_at, updated_at, issued_at"
)


def _row(rec: tuple) -> RowRecord:
    (batch_id, row_number, status, step, fp, content, cid, soid, pid, amount, committed, numbers, error, settles,
     created, updated, issued) = rec
    return RowRecord(batch_id, row_number, RowStatus(status), Step(step), fp,
                     json.loads(content) if content else None, cid, soid, pid, amount,
                     json.loads(committed) if committed else None,
                     json.loads(numbers) if numbers else [], error, settles, created, updated, issued)
