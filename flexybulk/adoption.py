"""Adopting a result sheet: rebuilding in the ledger a batch that only its result sheet still records (issue #11).

A result sheet is a second ledger: every line carries its batch, input row,
ids, status and certificate numbers. When the ledger does not know the
batch (a new laptop, a cleaned profile, a colleague's run), the sheet is
checked line by line and the batch is recorded again under its own id with
exactly those ids, so that the rerun that follows never sends an ISSUED row
and settles every other row with the ids it was sent with. Nothing is
derived anew where the sheet has an id.

How each status is taken back (the sheet cannot say how far a row got):

- ISSUED: committed, with its certificate numbers; never sent again.
- UNKNOWN, PENDING (with ids): the commit may have happened, so the row is
  settled exactly as the line reads now, re-posting the same external payment
  id, which Flexybox ignores if it already has it.
- FAILED: refused before anything was committed; the sales order step.
- INVALID, SKIPPED, EXCLUDED: nothing was sent under them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .errors import InputFileError
from .planning import DerivedIds
from .records import order_content
from .journal import BatchRecord, Journal, NewRow, Step, new_id
from .model import RowStatus
from .result_input import DO_NOT_EDIT, read_summary
from .settings import canonical_target
from .validate import Validation

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ID_COLUMNS = ("CustomerId", "SalesOrderId", "ExternalPaymentId")
_MAY_HAVE_COMMITTED = (RowStatus.UNKNOWN, RowStatus.PENDING)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def adopt_result_sheet(journal: Journal, path: Path, validation: Validation, *, batch_id: str,
                       lines: dict[int, int], target: str) -> BatchRecord:
    """Record the batch ``batch_id`` from its result sheet ``path`` (read as ``validation.sheet``).

    Args:
        journal: the ledger, which does not know ``batch_id``.
        path: the result sheet; its ``Summary`` gives the original input's
            SHA-256, path and target when it has one (XLSX).
        validation: the sheet's rows validated now (their orders become the rows' content).
        lines: input row -> the sheet's line number (for messages).
        target: the canonical target of this run.

    Returns:
        The recorded batch.

    Raises:
        InputFileError: the sheet was issued against another Flexybox, or a
            line's status or ids are not what flexybulk writes (naming the
            line and column), or two lines share an id.
    """
    sheet = validation.sheet
    summary = read_summary(path)
    sheet_target = _text(summary.get("Target"))
    if sheet_target and canonical_target(sheet_target) != target:
        raise InputFileError(
            f"{path.name} records batch {batch_id} issued on {sheet_target}, but this run goes to {target}. "
            "Run it against the Flexybox it was issued on; nothing was issued now.")
    input_sha = _text(summary.get("SHA-256 of the input file")).lower()
    if not _SHA256.match(input_sha):
        input_sha = sheet.sha256  # a CSV result sheet has no Summary: the sheet itself stands for the input
    input_path = _text(summary.get("Input file")) or str(path.resolve())
    checks = {c.row.number: c for c in validation.checks}
    rows: list[NewRow] = []
    seen: dict[str, int] = {}
    given: list[tuple[int, str, str]] = []
    for row in sheet.rows:
        where = f"{sheet.where()}, row {lines.get(row.number, row.number)}"
        status_text = _text(row.original.get("Status")).upper()
        try:
            status = RowStatus(status_text)
        except ValueError:
            raise InputFileError(f"{where}, column 'Status': '{status_text}' is not a status flexybulk writes. "
                                 f"{DO_NOT_EDIT}") from None
        ids = [_text(row.original.get(col)).lower() for col in _ID_COLUMNS]
        for col, value in zip(_ID_COLUMNS, ids):
            if value and not _GUID.match(value):
                raise InputFileError(f"{where}, column '{col}': '{value}' is not an id flexybulk writes. {DO_NOT_EDIT}")
            if value and col != "CustomerId":
                if value in seen:
                    raise InputFileError(f"{where}, column '{col}': the same id is on row {seen[value]} too. {DO_NOT_EDIT}")
                seen[value] = lines.get(row.number, row.number)
        if any(ids) and not all(ids):
            raise InputFileError(f"{where}: the line has some of its ids but not all three. {DO_NOT_EDIT}")
        if not any(ids) and status in (RowStatus.ISSUED, RowStatus.UNKNOWN, RowStatus.FAILED):
            raise InputFileError(f"{where}: a {status.value} line must have its CustomerId, SalesOrderId and "
                                 f"ExternalPaymentId. {DO_NOT_EDIT}")
        if all(ids):
            given.append((row.number, ids[1], ids[2]))
        check = checks.get(row.number)
        order = check.order if check is not None else None
        content = order_content(order) if order is not None else None
        numbers = [n.strip() for n in _text(row.original.get("GiftCertificateNumbers")).split(",") if n.strip()]
        issued_at = row.original.get("IssuedAt")
        rows.append(_new_row(row.number, status, ids, content, check.fingerprint if check else None, numbers,
                             issued_at.isoformat() if hasattr(issued_at, "isoformat") else (_text(issued_at) or None)))
    # Rows the sheet shows without ids (never sent) get ids derived as the batch's own were, when the sheet's
    # ids are the derived ones; otherwise (an older batch with random ids) fresh random ones.
    sheet_name = _text(summary.get("Sheet")) or sheet.sheet_name
    salt = _check_ids(summary, target, input_sha, sheet_name, given, lines, sheet)
    ids_for = DerivedIds(target, input_sha, salt, sheet_name)
    for r in rows:
        if not r.sales_order_id:
            r.sales_order_id, r.payment_id = ids_for.row(r.row_number)
            r.customer_id = ids_for.customer(r.content["email"] if r.content else f"row {r.row_number}")
    return journal.create_batch(input_path=input_path, input_sha256=input_sha, target=target, sheet_name=sheet_name,
                                options={"adopted_from": str(Path(path).resolve())}, rows=rows, batch_id=batch_id,
                                id_salt=salt)


def _check_ids(summary: dict, target: str, input_sha: str, sheet_name: str | None, given: list[tuple[int, str, str]],
               lines: dict[int, int], sheet: Any) -> str | None:
    """The batch's id salt, after checking every line's ids against the ids its batch derived (issue #11).

    A result sheet records how its batch's ids were made (its Summary's
    ``Ids``): derived from the file, or derived with a reissue salt. Then
    every line's sales order and external payment ids must be the ones
    derived for its ``Row``: an edited id, or a ``Row`` moved to another line,
    would otherwise be adopted and sent. A sheet that says nothing (a CSV
    result sheet, or one written before ids were derived) is checked against
    the plain derivation when it matches; otherwise its ids can only be taken
    as they are, and new ids for its unsent rows are random.

    Raises:
        InputFileError: naming the first line whose ids are not its row's.
    """
    from .results import IDS_DERIVED, IDS_SALTED

    recorded = _text(summary.get("Ids"))
    if recorded == IDS_DERIVED:
        salt, known = None, True
    elif recorded.startswith(IDS_SALTED):
        salt, known = recorded[len(IDS_SALTED):].strip(), True
    else:
        plain = DerivedIds(target, input_sha, None, sheet_name)
        if given and all(plain.row(n) == (o, p) for n, o, p in given):
            return None
        return new_id()
    ids = DerivedIds(target, input_sha, salt, sheet_name)
    for n, order_id, payment_id in given:
        if known and ids.row(n) != (order_id, payment_id):
            raise InputFileError(
                f"{sheet.where()}, row {lines.get(n, n)}: its SalesOrderId and ExternalPaymentId are not the ids its batch "
                f"gave input row {n} (an edited id, or a Row moved to another line). {DO_NOT_EDIT} Nothing was issued.")
    return salt


def _new_row(number: int, status: RowStatus, ids: list[str], content: dict | None, fingerprint: str | None,
             numbers: list[str], issued_at: str | None) -> NewRow:
    customer_id, order_id, payment_id = ids
    if status == RowStatus.ISSUED:
        return NewRow(number, RowStatus.ISSUED, fingerprint, content, customer_id, order_id, payment_id,
                      step=Step.COMMITTED, certificate_numbers=numbers, issued_at=issued_at,
                      error="Adopted from the result sheet: issued before, never sent again.")
    if status in _MAY_HAVE_COMMITTED and order_id:
        total = None
        if content is not None:
            from decimal import Decimal

            total = str(Decimal(content["price"]) * int(content["quantity"]))
        return NewRow(number, status, fingerprint, content, customer_id, order_id, payment_id,
                      step=Step.COMMIT, payment_amount=total, commit_content=content)
    if status == RowStatus.FAILED:
        return NewRow(number, RowStatus.FAILED, fingerprint, content, customer_id, order_id, payment_id, step=Step.ORDER)
    if status in (RowStatus.SKIPPED,):
        return NewRow(number, RowStatus.SKIPPED, fingerprint, content, customer_id, order_id, payment_id)
    # INVALID, EXCLUDED, a PENDING line never sent: nothing was sent under it; planning decides it afresh.
    return NewRow(number, RowStatus.PENDING if content else RowStatus.INVALID, fingerprint, content,
                  customer_id, order_id, payment_id)
