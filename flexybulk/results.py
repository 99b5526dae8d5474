"""Write the validation sheet and the result sheet (XLSX or CSV), atomically.

Layout: the input's own columns and values, row for row in input order, then
flexybulk's columns. In XLSX every data row sits on the same sheet row
number as in the input, so "row 7" means the same line in both files; the
``Row`` column keeps the input row number even if someone sorts the sheet.

Safety (issue #6, OWASP "CSV Injection"; pitfalls P17): text is never
written as a formula. XLSX text cells are written as explicit strings, and
those beginning with ``= + - @``, a tab or a carriage return also get Excel's
quote-prefix style (what Excel itself does for ``'=...``). CSV text cells
beginning with those characters get a leading ``'``; numbers are written as
numbers and are never prefixed. The reader strips that one ``'`` again.

Files are written to a temporary name in the same folder and renamed into
place (``os.replace``), so a crash never leaves half a result sheet.
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

import openpyxl
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

from .errors import InputFileError
from .model import RowStatus, Sheet

RESULT_COLUMNS = ("Status", "Error", "CustomerId", "SalesOrderId", "ExternalPaymentId",
                  "GiftCertificateNumbers", "IssuedAt", "BatchId", "Row")
VALIDATION_COLUMNS = ("Status", "Error", "Warning", "Row")
OWN_COLUMNS = frozenset(RESULT_COLUMNS) | frozenset(VALIDATION_COLUMNS)

# OWASP's list, plus a line feed: XML readers turn a leading CR into LF, and it must stay neutralised.
_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def is_dangerous(text: str) -> bool:
    """True when a spreadsheet program could take ``text`` for a formula (OWASP CSV injection)."""
    return text.startswith(_DANGEROUS_START)


@dataclass
class OutputRow:
    """One row of an output sheet.

    ``number`` is the input's sheet row number; ``input_values`` maps the
    input's headers to their cell values; ``extra`` maps flexybulk's own
    column names to values (``str``, ``int``, ``Decimal``, ``None``).
    """

    number: int
    input_values: dict[str, Any]
    extra: dict[str, Any]


@dataclass
class OutputSheet:
    """A whole output: columns, rows and a summary (list of label/value pairs)."""

    input_headers: list[str]
    own_columns: Sequence[str]
    rows: list[OutputRow]
    header_row: int = 1
    summary: list[tuple[str, Any]] = field(default_factory=list)
    sheet_name: str = "Result"
    csv_delimiter: str = ","

    @property
    def headers(self) -> list[str]:
        return [h for h in self.input_headers if h not in OWN_COLUMNS] + list(self.own_columns)


def default_output_path(input_path: Path, kind: str) -> Path:
    """``kampagne.xlsx`` -> ``kampagne.result.xlsx`` (``kind`` = ``"result"`` or ``"validation"``).

    A ``.result`` or ``.validation`` part of the input's name is replaced, so
    ``kampagne.validation.xlsx`` gives ``kampagne.result.xlsx``. Never the input
    itself (issue #11: an output must not overwrite the file it was made from):
    then ``kampagne (2).result.xlsx``. (A retry updates a result sheet in place
    on purpose; that choice is made by the caller, not here.)
    """
    stem = input_path.stem
    for suffix in (".result", ".validation"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    path = input_path.with_name(f"{stem}.{kind}.xlsx")
    return numbered_path(path, kind) if path == input_path else path


def numbered_path(path: Path, kind: str, n: int = 2) -> Path:
    """``kampagne.result.xlsx`` -> ``kampagne (2).result.xlsx`` (the ``n``-th copy, the way desktop programs name them)."""
    stem = path.stem[: -len(f".{kind}")] if path.stem.endswith(f".{kind}") else path.stem
    return path.with_name(f"{stem} ({n}).{kind}{path.suffix}")


def write_output(sheet: OutputSheet, path: Path) -> Path:
    """Write ``sheet`` to ``path`` (``.csv``/``.tsv``/``.txt`` as CSV, anything else as XLSX), atomically.

    Raises:
        InputFileError: the folder is not writable or the file is open elsewhere.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent or "."))
    except OSError as exc:
        raise InputFileError(f"Cannot write {path}: {exc.strerror}. Choose another place with --output.") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if suffix in (".csv", ".tsv", ".txt"):
                _write_csv(sheet, fh, "\t" if suffix == ".tsv" else sheet.csv_delimiter)
            else:
                _write_xlsx(sheet, fh)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file owner-only; give it the permissions any saved file gets (the umask's).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise InputFileError(f"Cannot write {path}: {exc.strerror}. Close it if it is open in a spreadsheet program, or choose another place with --output.") from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _xlsx_cell(ws: Any, value: Any, bold: bool = False) -> Any:
    """What to append for one cell: the plain value where openpyxl stores it as it is, else a styled cell.

    A plain value is cheaper by far: openpyxl's write-only sheet reuses one
    cell object for plain values, while each cell object passed in costs it a
    failed conversion (and a ``repr``) - most of the time of writing a
    100,000-row result sheet (issue #4). Text becomes a cell object only where
    openpyxl would not store it as text: starting with ``=`` (a formula) or
    equal to an error code such as ``#N/A``, and where the quote prefix guards a
    formula-like start (issue #6).
    """
    if isinstance(value, RowStatus):
        value = value.value
    if isinstance(value, Decimal):
        # A number, not text: the spreadsheet can sum it. Decimals are stored by value, as Excel stores numbers.
        value = int(value) if value == value.to_integral_value() else value
    if isinstance(value, bool) or value is None or isinstance(value, (int, Decimal, float, datetime, date)):
        if not bold:
            return value
        cell = WriteOnlyCell(ws, value=value)
    else:
        # XML 1.0 cannot hold most control characters; show where one was rather than fail the whole sheet.
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", str(value))
        dangerous = is_dangerous(text)
        if not (bold or dangerous or text.startswith("=") or text in ERROR_CODES):
            return text  # openpyxl stores it as a shared string, as the cell below would
        cell = WriteOnlyCell(ws, value=text)
        cell.data_type = "s"  # never a formula or an error value, whatever the text is
        if dangerous:
            cell.quotePrefix = True
    if bold:
        cell.font = Font(bold=True)
    return cell


def _write_xlsx(sheet: OutputSheet, fh: Any) -> None:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(sheet.sheet_name[:31])
    headers = sheet.headers
    ws.freeze_panes = f"A{sheet.header_row + 1}"
    for _ in range(1, sheet.header_row):
        ws.append([])
    ws.append([_xlsx_cell(ws, h, bold=True) for h in headers])
    current = sheet.header_row
    # Keep every row on its input row number (blank lines stay blank), as long as the rows are in
    # input order; a sorted result sheet given back is written line after line in its own order.
    numbers = [row.number for row in sheet.rows]
    in_order = all(a < b for a, b in zip(numbers, numbers[1:]))
    for row in sheet.rows:
        while in_order and current + 1 < row.number:
            ws.append([])
            current += 1
        values = {**row.input_values, **row.extra}
        ws.append([_xlsx_cell(ws, values.get(h)) for h in headers])
        current += 1
    summary = wb.create_sheet("Summary")
    for label, value in sheet.summary:
        summary.append([_xlsx_cell(summary, label, bold=True), _xlsx_cell(summary, value)])
    wb.save(fh)


def _csv_text(value: Any, decimal_comma: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, RowStatus):
        return value.value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, Decimal)):
        text = str(value)
        return text.replace(".", ",") if decimal_comma else text
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = str(value)
    return "'" + text if is_dangerous(text) else text


def _write_csv(sheet: OutputSheet, fh: Any, delimiter: str) -> None:
    import io

    # UTF-8 with BOM: Danish Excel reads it as UTF-8 only with the BOM (pitfalls P4).
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    writer = csv.writer(text, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    decimal_comma = delimiter == ";"
    headers = sheet.headers
    writer.writerow([_csv_text(h, False) for h in headers])
    for row in sheet.rows:
        values = {**row.input_values, **row.extra}
        writer.writerow([_csv_text(values.get(h), decimal_comma) for h in headers])
    text.flush()
    text.detach()


def input_values(sheet: Sheet, original: dict[str, Any]) -> dict[str, Any]:
    """The input's own columns of one row (flexybulk's own columns left out)."""
    return {h: v for h, v in original.items() if h not in OWN_COLUMNS}


# -- what goes in the sheets ---------------------------------------------------


def validation_sheet(validation: Any, *, notes: dict[int, str] | None = None) -> OutputSheet:
    """The validation sheet of a dry run: every input row with Status (VALID/INVALID), Error, Warning and Row.

    ``validation`` is a :class:`flexybulk.validate.Validation`; the Summary
    gives the file, its SHA-256, the counts and the totals per currency.
    ``notes`` (input row -> text: what the ledger knows of the row, such as
    "Already issued on ...") are added to the row's Warning.
    """
    from .records import excluded_text, problems_text

    sheet = validation.sheet
    notes = notes or {}
    rows = []
    for c in validation.checks:
        warning = "; ".join(t for t in (problems_text(c.warnings), notes.get(c.row.number)) if t)
        extra = {
            "Status": RowStatus.EXCLUDED if c.excluded else RowStatus.VALID if c.valid else RowStatus.INVALID,
            "Error": excluded_text(c.excluded) if c.excluded else problems_text(c.problems) or None,
            "Warning": warning or None,
            "Row": c.row.number,
        }
        rows.append(OutputRow(c.row.number, input_values(sheet, c.row.original), extra))
    totals = validation.totals()
    summary = [("Input file", str(sheet.path.resolve())), ("Sheet", sheet.sheet_name), ("SHA-256 of the input file", sheet.sha256),
               ("Rows", len(validation.checks)), ("Valid rows", len(validation.valid)),
               ("Invalid rows", len(validation.invalid))]
    summary += [("Excluded rows (hidden or filtered out)", len(validation.excluded))] if validation.excluded else []
    summary += [("Gift certificates", totals.certificates)]
    summary += [(f"Total {cur}", amount) for cur, amount in sorted(totals.amounts.items())]
    return OutputSheet(sheet.headers, VALIDATION_COLUMNS, rows, header_row=sheet.header_row, summary=summary,
                       sheet_name="Validation", csv_delimiter=sheet.csv_delimiter or ",")


def result_sheet(sheet: Sheet, validation: Any, batch: Any, records: dict, ledger_path: Path) -> OutputSheet:
    """The result sheet of a batch: every input row with its status, error, ids and certificate numbers.

    Args:
        sheet: the input as read; validation: its :class:`~flexybulk.validate.Validation`.
        batch: the ledger's :class:`~flexybulk.journal.BatchRecord`.
        records: input row number -> :class:`~flexybulk.journal.RowRecord` (the ledger's word on each row).
        ledger_path: the ledger file (named in the Summary).

    An invalid row that was never issued is INVALID; an ISSUED row whose
    line differs from what was committed says what was really issued.
    """
    from collections import Counter

    from .records import describe_content, excluded_text, issued_totals, order_content, problems_text
    from .journal import Step, utcnow

    rows = []
    counts: Counter = Counter()
    for c in validation.checks:
        rec = records.get(c.row.number)
        status = rec.status if rec else RowStatus.PENDING
        error = rec.error if rec else None
        if c.excluded and status != RowStatus.ISSUED:
            status, error = RowStatus.EXCLUDED, excluded_text(c.excluded)
        elif not c.valid and status != RowStatus.ISSUED:
            status, error = RowStatus.INVALID, problems_text(c.problems)
        if status == RowStatus.ISSUED and rec.content and (c.order is None or order_content(c.order) != rec.content):
            # The line was edited after the issue (or a rerun used an older copy): say what was really issued.
            note = (f"Issued as: {describe_content(rec.content)}. The values on this line differ and were not applied: "
                    "an issued row is never sent again.")
            error = f"{error} {note}" if error and note not in error else note
        counts[status.value] += 1
        # Ids are shown for every row that has them in use; only a row never sent and now invalid has none to show.
        show_ids = rec is not None and not (status in (RowStatus.INVALID, RowStatus.EXCLUDED) and rec.step == Step.PLANNED)
        extra = {
            "Status": status,
            "Error": error,
            "CustomerId": rec.customer_id if show_ids else None,
            "SalesOrderId": rec.sales_order_id if show_ids else None,
            "ExternalPaymentId": rec.payment_id if show_ids else None,
            "GiftCertificateNumbers": ", ".join(rec.certificate_numbers) if rec and rec.certificate_numbers else None,
            "IssuedAt": rec.issued_at if rec else None,
            "BatchId": batch.id,
            "Row": c.row.number,
        }
        rows.append(OutputRow(c.row.number, input_values(sheet, c.row.original), extra))

    summary: list[tuple[str, Any]] = [
        ("Batch", batch.id), ("Input file", batch.input_path), ("Sheet", sheet.sheet_name),
        ("SHA-256 of the input file", batch.input_sha256)]
    if sheet.sha256 != batch.input_sha256:
        # A retry's sheet is written from a result sheet: an auditor can check both files (issue #11).
        summary += [("Written from", str(sheet.path.resolve())), ("SHA-256 of the file written from", sheet.sha256)]
    summary += [("Target", batch.target), ("Written at (UTC)", utcnow()), ("Rows", len(validation.checks))]
    summary += [(f"Rows {k}", v) for k, v in sorted(counts.items())]
    issued = issued_totals(records[c.row.number] for c in validation.checks if c.row.number in records)
    summary += [("Gift certificates issued", issued.certificates)]
    summary += [(f"Total issued {cur}", v) for cur, v in sorted(issued.amounts.items())]
    summary += [("Ledger", str(Path(ledger_path).resolve()))]
    return OutputSheet(sheet.headers, RESULT_COLUMNS, rows, header_row=sheet.header_row, summary=summary,
                       sheet_name="Result", csv_delimiter=sheet.csv_delimiter or ",")
