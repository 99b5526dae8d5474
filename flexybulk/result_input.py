"""A result sheet given back as input (``retry``): which batch it belongs to, and whether its lines are intact.

A result sheet carries ``BatchId`` and ``Row`` on every line, and the ids
used for it. Those columns tie each line to its ledger row, so a sorted or
trimmed sheet still maps each line to the right row, and a line whose
``Row`` or ids were edited is refused rather than sending one recipient's
values under another row's ids (issue #3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import FlexybulkError, InputFileError
from .journal import Step
from .model import Sheet

DO_NOT_EDIT = "The Row, BatchId and id columns must not be edited: copy them back from the original result sheet."


def result_sheet_batch(sheet: Sheet) -> tuple[str | None, dict[int, int]]:
    """For a result sheet given as input: its batch id, with each row renumbered to its input row.

    Rows keep the ``Row`` column's number, so a sorted or trimmed result
    sheet still maps each line to its ledger row. Returns ``(batch id,
    {input row: line in this sheet})``, or ``(None, {})`` for an ordinary input.
    Changes ``sheet.rows[i].number`` to the input row number.

    Raises:
        InputFileError: the sheet names more than one batch, a line has no or
            a bad ``Row``, or two lines claim the same input row.
    """
    if "BatchId" not in sheet.headers or "Row" not in sheet.headers:
        return None, {}
    batches = {str(r.original.get("BatchId")).strip() for r in sheet.rows if r.original.get("BatchId") not in (None, "")}
    if not batches:
        return None, {}
    if len(batches) > 1:
        raise InputFileError(f"{sheet.where()} mixes rows of {len(batches)} batches ({', '.join(sorted(batches))}). Retry each batch's own result sheet.")
    return batches.pop(), _renumber(sheet, "BatchId")


def validation_sheet_identity(sheet: Sheet, path: Path) -> tuple[str, str | None] | None:
    """For a validation sheet given to ``issue``: ``(SHA-256, sheet name)`` of the file it was made from, else ``None``.

    A validation sheet has the original file's rows on their own row
    numbers (its ``Row`` column) and records that file's SHA-256 and sheet in
    its Summary. Issued as it is, it stands for that file (issue #11): the
    same batch, the same derived ids, so a colleague who issues the checked
    copy on another laptop cannot issue the rows again. Its rows are
    renumbered to the input rows their ``Row`` column names.

    Raises:
        InputFileError: a line has no or a bad ``Row``, or two lines claim the same row.
    """
    if not {"Status", "Warning", "Row"} <= set(sheet.headers) or "BatchId" in sheet.headers:
        return None
    summary = read_summary(path)
    sha = str(summary.get("SHA-256 of the input file") or "").strip().lower()
    if len(sha) != 64 or any(ch not in "0123456789abcdef" for ch in sha):
        return None  # a CSV validation sheet has no Summary: it stands for itself
    original_sheet = summary.get("Sheet")
    _renumber(sheet, None)
    return sha, (str(original_sheet) if original_sheet not in (None, "") else None)


def _renumber(sheet: Sheet, batch_column: str | None) -> dict[int, int]:
    """Renumber ``sheet``'s rows to the input rows their ``Row`` column names; returns {input row: line}."""
    lines: dict[int, int] = {}
    for r in sheet.rows:
        value = r.original.get("Row")
        if value in (None, "") and (batch_column is None or r.original.get(batch_column) in (None, "")):
            raise InputFileError(f"{sheet.where()}, row {r.number}: this line has no Row{' and no BatchId' if batch_column else ''}, "
                                 "so it was not part of the checked file. Put new recipients in a new sheet and run "
                                 "flexybulk issue on that.")
        try:
            number = int(str(value).strip())
        except (TypeError, ValueError):
            raise InputFileError(f"{sheet.where()}, row {r.number}, column 'Row': '{value}' is not a row number. {DO_NOT_EDIT}") from None
        if number in lines:
            raise InputFileError(f"{sheet.where()}: rows {lines[number]} and {r.number} both say they are input row {number}. "
                                 "Delete the copied line.")
        lines[number] = r.number
        for problem in r.problems:  # found while reading its cells, on this line: the row's own number now
            if problem.row == r.number:
                problem.row = number
        r.number = number
    sheet.lines = lines  # messages name the line too, where it is not the row's number
    return lines


def check_result_lines(sheet: Sheet, lines: dict[int, int], records: dict[int, Any]) -> None:
    """Each line of a result sheet must be the ledger row it names (``Row``), judged by its ids.

    A line whose ``Row`` was edited (or whose id cells were) would send one
    recipient's values under another row's ids: refused, naming both lines.
    ``records`` maps input row numbers to the batch's ledger rows.

    Raises:
        InputFileError: a line names a row the batch does not have, or its ids belong to another row.
    """
    by_order = {r.sales_order_id.lower(): n for n, r in records.items()}
    rows = {r.number: r for r in sheet.rows}
    for number, line in sorted(lines.items(), key=lambda kv: kv[1]):
        rec = records.get(number)
        row = rows[number]
        where = f"{sheet.where()}, row {line}"
        if rec is None:
            raise InputFileError(f"{where}, column 'Row': the batch has no input row {number}. {DO_NOT_EDIT}")
        order = str(row.original.get("SalesOrderId") or "").strip().lower()
        payment = str(row.original.get("ExternalPaymentId") or "").strip().lower()
        if order and order != rec.sales_order_id.lower():
            owner = by_order.get(order)
            whose = f"input row {owner}" if owner is not None else "no row of this batch"
            raise InputFileError(f"{where}: column 'Row' says input row {number}, but its SalesOrderId {order} belongs to {whose}. "
                                 + DO_NOT_EDIT)
        if payment and payment != rec.payment_id.lower():
            raise InputFileError(f"{where}: its ExternalPaymentId is not the one recorded for input row {number}. {DO_NOT_EDIT}")
        if not order and rec.step != Step.PLANNED:
            raise InputFileError(f"{where}: input row {number} was sent as sales order {rec.sales_order_id}, but this line has no "
                                 f"SalesOrderId. {DO_NOT_EDIT}")


def looks_like_own_sheet(path: Path, sheet_name: str) -> bool:
    """True when ``path`` is an output flexybulk wrote: an XLSX with its ``sheet_name`` and ``Summary`` sheets,
    or a CSV whose header has flexybulk's ``Status`` and ``Row`` columns. Reads only the sheet names or one line."""
    try:
        from python_calamine import CalamineWorkbook

        names = set(CalamineWorkbook.from_path(str(path)).sheet_names)
        return {sheet_name, "Summary"} <= names
    except Exception:  # not a workbook: perhaps a CSV output
        pass
    try:
        import csv

        with open(path, encoding="utf-8-sig", newline="") as fh:
            line = fh.readline(100_000)
        header = next(csv.reader([line], delimiter=";" if line.count(";") > line.count(",") else ","), [])
        return {"Status", "Row"} <= {h.strip() for h in header}
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def read_summary(path: Path) -> dict[str, Any]:
    """The label -> value pairs of a result sheet's ``Summary`` sheet (XLSX/ODS); ``{}`` when it has none (CSV).

    Read with calamine, values as calamine gives them (text, numbers).
    """
    try:
        from python_calamine import CalamineWorkbook

        book = CalamineWorkbook.from_path(str(path))
        if "Summary" not in book.sheet_names:
            return {}
        rows = book.get_sheet_by_name("Summary").to_python()
    except Exception:  # not a workbook (CSV), or unreadable: no summary to go by
        return {}
    summary: dict[str, Any] = {}
    for r in rows:  # the first of a label counts: the batch's own lines come before the Summary's tables
        if len(r) >= 2 and r[0] not in (None, ""):
            summary.setdefault(str(r[0]).strip(), r[1])
    return summary


@dataclass
class ExistingResult:
    """A file already at a result sheet's path: whose batch it records, and for which Flexybox.

    ``readable`` is false when the file cannot be read as a flexybulk
    result sheet at all (then ``batch_id`` and ``target`` are ``None``).
    """

    path: Path
    readable: bool
    batch_id: str | None = None
    target: str | None = None


def existing_result(path: Path) -> ExistingResult | None:
    """What lies at ``path`` if anything: ``None`` when no file is there (issue #11: a result sheet is a second ledger)."""
    from .settings import canonical_target
    from .reading import ReadOptions, read_sheet

    path = Path(path)
    if not path.exists():
        return None
    try:
        batch_id, _ = result_sheet_batch(read_sheet(path, ReadOptions()))
    except FlexybulkError:
        return ExistingResult(path, False)
    if batch_id is None:
        return ExistingResult(path, False)
    target = read_summary(path).get("Target")
    return ExistingResult(path, True, batch_id, canonical_target(str(target)) if target else None)


def check_moved_values(validation: Any, lines: dict[int, int], records: dict[int, Any]) -> None:
    """Refuse a result sheet whose lines carry another row's values: sorted on some columns only (issue #11).

    Excel sorts only the selected columns when a person selects them: the
    recipients then move while Status, the ids and ``Row`` stay, and a retry
    would send one person's values under another row's ids (a second gift
    certificate for someone already issued, nothing for the one who failed).
    A line whose order differs from what its own ledger row records, and
    equals (by fingerprint) what *another* row of the batch records, is taken
    for such a move. ``validation`` is the sheet's validation, ``records``
    input row -> ledger row, ``lines`` input row -> the sheet's line.

    Raises:
        InputFileError: naming the lines and the rows whose values they carry.
    """
    by_print: dict[str, list[int]] = {}
    for n, rec in records.items():
        if rec.fingerprint:
            by_print.setdefault(rec.fingerprint, []).append(n)
    moved = []
    for c in validation.checks:
        rec = records.get(c.row.number)
        if c.order is None or rec is None or rec.fingerprint is None or c.fingerprint == rec.fingerprint:
            continue
        others = [n for n in by_print.get(c.fingerprint, []) if n != c.row.number]
        if others:
            moved.append((lines.get(c.row.number, c.row.number), c.row.number, others[0]))
    if moved:
        shown = "; ".join(f"row {line} (input row {n}) has the values of input row {other}" for line, n, other in moved[:5])
        more = f" and {len(moved) - 5} more" if len(moved) > 5 else ""
        raise InputFileError(
            f"{validation.sheet.where()}: {shown}{more}. The sheet looks sorted on some columns only, so its values no "
            "longer sit beside their own Status, ids and Row. Undo the sort (or sort whole rows), then run retry again. "
            "Nothing was issued.")
