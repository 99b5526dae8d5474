"""What the validation sheet and the result sheet hold: rows, typed columns, the Summary, "Needs attention".

Layout: the input's own columns and values, row for row in input order, then
flexybulk's columns. In XLSX every data row sits on the same sheet row
number as in the input, so "row 7" means the same line in both files; the
``Row`` column keeps the input row number even if someone sorts the sheet.

The XLSX also has typed columns (issue #13): ``AmountRead`` (the amount the
tool used, as a number) and ``LineTotal`` (quantity x amount), both in the
row's currency; ``IssuedAt`` is a date-time cell in local time. A CSV keeps
the plain layout (input columns, then Status ...): its cells are text anyway,
and tools that read it back rely on that column order.

A second sheet, the Summary, gives batch, target, files and hashes, the rows
per status (with the colours' legend) and the money per currency, per gift
certificate type and per department; "Needs attention" lists only the rows a
person must act on, with what to do. Neither looks like a recipient list to
the reader (no name or email header), so a result sheet given back to
``retry`` is read from its Result sheet alone.

The shapes themselves live in :mod:`flexybulk.output_sheet` (re-exported
here); :mod:`flexybulk.writers` writes them; ``write_output`` and
``is_dangerous`` are re-exported here for the callers.
"""

from __future__ import annotations

import operator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

from .model import RowStatus, Sheet
from .output_sheet import (  # noqa: F401 (the shapes and columns, re-exported)
    _ATTENTION_KINDS, _KINDS, ATTENTION_HEADERS, OWN_COLUMNS, RESULT_COLUMNS, TYPED_COLUMNS, VALIDATION_COLUMNS,
    OutputRow, OutputRows, OutputSheet,
)
from .records import same_content  # noqa: F401 (re-exported: what a result sheet compares each ISSUED line with)
from .result_columns import result_columns, typed_amounts as _typed, who as _who
from .writers import Heading, Label, Money, gc_paused, is_dangerous, write_output  # noqa: F401 (re-exported)

# The Summary's order of statuses; a status this version of RowStatus lacks is left out.
_RESULT_STATUSES = tuple(s for name in ("ISSUED", "FAILED", "UNKNOWN", "PENDING", "SKIPPED", "EXCLUDED", "INVALID")
                         for s in RowStatus if s.value == name)
MEANING = {
    "ISSUED": "The gift certificates exist. Never sent again.",
    "FAILED": "Flexybox refused the row; nothing was issued. See Needs attention.",
    "UNKNOWN": "The last call's outcome is not known. flexybulk retry settles it safely.",
    "PENDING": "Not finished (interrupted, or held back). flexybulk retry finishes it.",
    "SKIPPED": "Not sent on purpose (issued by an earlier batch, or invalid with --skip-invalid).",
    "EXCLUDED": "Left out on purpose (hidden or filtered out in the sheet); never sent.",
    "INVALID": "The row has problems; nothing was sent for it. See Needs attention.",
    "VALID": "The row passed every check.",
}
"""What each status means, by its value (the Summary's legend)."""
TO_DO = {
    "INVALID": "Correct the cells named in Details in this sheet, then run flexybulk retry on this sheet.",
    "FAILED": "If Details names a value (a misspelt email, a wrong type), correct it in this sheet; then run "
              "flexybulk retry on this sheet. It reuses the row's ids, so nothing is issued twice.",
    "UNKNOWN": "Run flexybulk retry on this sheet: it settles the row with its recorded ids and cannot issue "
               "twice. Do not issue it by hand.",
    "PENDING": "Run flexybulk retry on this sheet to finish the row (same ids, nothing issued twice).",
    "ISSUED": "Nothing to retry: issued as recorded, the edit was not applied. For a different gift "
              "certificate, put it in a new sheet and issue that.",
}
"""What a person does about a row in "Needs attention", by its status's value."""
TO_DO_VALIDATION = "Correct the cells named in Details in the input file, then validate again."

# The same, for a result sheet of a batch issued on the web page: its people press buttons, they run no commands.
MEANING_WEB = {**MEANING,
               "UNKNOWN": "The last call's outcome is not known. Retry on the web page's result page settles it safely.",
               "PENDING": "Not finished (interrupted, or held back). Resume or Retry on the web page's result page "
                          "finishes it.",
               "SKIPPED": "Not sent on purpose (issued by an earlier batch, or invalid with \"Issue only the valid "
                          "rows\" ticked)."}
TO_DO_WEB = {**TO_DO,
             "INVALID": "Correct the cells named in Details on the web page's result page, then press Retry.",
             "FAILED": "If Details names a value (a misspelt email, a wrong type), correct it on the web page's result "
                       "page; then press Retry. It reuses the row's ids, so nothing is issued twice.",
             "UNKNOWN": "Press Retry on the web page's result page: it settles the row with its recorded ids and "
                        "cannot issue twice. Do not issue it by hand.",
             "PENDING": "Press Resume or Retry on the web page's result page to finish the row (same ids, nothing "
                        "issued twice)."}


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


def input_values(sheet: Sheet, original: dict[str, Any]) -> dict[str, Any]:
    """The input's own columns of one row (flexybulk's own columns left out)."""
    return {h: v for h, v in original.items() if h not in OWN_COLUMNS}


def local_now() -> datetime:
    """Now, local time with its offset, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).astimezone()


def zone_text(moment: datetime) -> str:
    """``"local time, CET (UTC+01:00)"``: how the Summary names the zone of the sheet's times."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"local time, {moment.tzname()} (UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d})"


def _group_lines(title: str, first: str, groups: dict[tuple[str, str], list]) -> list[list[Any]]:
    """A Summary table: ``first`` | Rows | Gift certificates | Money, one line per (name, currency)."""
    lines: list[list[Any]] = [[], [Heading(title)], [Label(first), Label("Rows", right=True),
                                                     Label("Gift certificates", right=True), Label("Money", right=True)]]
    if not groups:
        lines.append(["(none)", 0, 0, None])
    for (name, currency), (rows, certificates, money) in sorted(groups.items(), key=lambda kv: (kv[0][0].casefold(), kv[0][1])):
        lines.append([name, rows, certificates, Money(money, currency)])
    return lines


def _add(groups: dict, key: tuple, rows: int, quantity: int, total: Decimal) -> None:
    entry = groups.get(key)
    if entry is None:
        entry = groups[key] = [0, 0, Decimal(0)]
    entry[0] += rows
    entry[1] += quantity
    entry[2] += total


def _status_lines(counts: dict, statuses: Sequence[RowStatus], meaning: dict[str, str] = MEANING) -> list[list[Any]]:
    lines: list[list[Any]] = [[], [Heading("Rows per status")], [Label("Status"), Label("Rows", right=True),
                                                               Label("What it means")]]
    lines += [[s, counts.get(s, 0), meaning.get(s.value, "")] for s in statuses]
    lines.append([Label("All rows"), sum(counts.values())])
    return lines


def money_lines(what: str, groups: dict[tuple[str, str, str], list]) -> list[list[Any]]:
    """The three money tables (per currency, per gift certificate type, per department) of ``what``.

    ``groups``: ``(type name, department name, currency)`` -> ``[rows, certificates, money]``
    (see :func:`_add`).
    """
    per_currency: dict = {}
    per_type: dict = {}
    per_department: dict = {}
    for (type_name, department_name, currency), (rows, quantity, total) in groups.items():
        _add(per_currency, (currency, currency), rows, quantity, total)
        _add(per_type, (type_name, currency), rows, quantity, total)
        _add(per_department, (department_name, currency), rows, quantity, total)
    return (_group_lines(f"{what} per currency", "Currency", per_currency)
            + _group_lines(f"{what} per gift certificate type", "Gift certificate type", per_type)
            + _group_lines(f"{what} per department", "Department", per_department))


# -- the two sheets --------------------------------------------------------------------


IDS_DERIVED = "derived from the file (flexybulk-id/1)"
IDS_SALTED = "derived, with the reissue salt "


def validation_sheet(validation: Any, *, notes: dict[int, str] | None = None) -> OutputSheet:
    """The validation sheet of a dry run: every input row with Status (VALID/INVALID), Error, Warning and Row.

    ``validation`` is a :class:`flexybulk.validate.Validation`. XLSX adds
    AmountRead and LineTotal; the Summary gives the file, its SHA-256, the
    rows per status and the money of the valid rows per currency, type and
    department; "Needs attention" lists the invalid rows. ``notes`` (input
    row -> text: what the ledger knows of the row, such as "Already issued
    on ...") are added to the row's Warning.
    """
    with gc_paused():  # a hundred thousand rows' objects, no cycles
        return _validation_sheet(validation, notes or {})


def _validation_sheet(validation: Any, notes: dict[int, str]) -> OutputSheet:
    from .records import excluded_text, problems_text
    from .validate import DEFAULT_CURRENCY

    sheet = validation.sheet
    notes = notes or {}
    checks = validation.checks
    attention: list[Sequence[Any]] = []
    groups: dict = {}
    valid_status, invalid_status, excluded_status = RowStatus.VALID, RowStatus.INVALID, RowStatus.EXCLUDED
    excluded = 0
    # Columns, not a dict per row (OutputRows): one append per cell.
    numbers = [c.row.number for c in checks]
    statuses, errors, warnings, amounts, totals, currencies = [], [], [], [], [], []
    add_status, add_error, add_warning, add_amount, add_total, add_currency = (
        statuses.append, errors.append, warnings.append, amounts.append, totals.append, currencies.append)
    for c in checks:
        row = c.row
        order = c.order
        if c.excluded:  # the person left it out (hidden or filtered): not a problem to fix (issue #12)
            fields = row.fields
            currency = str(fields.get("currency") or DEFAULT_CURRENCY).upper()
            amount, line_total = _typed(fields.get("amount"), fields.get("quantity"))
            add_status(excluded_status)
            add_error(excluded_text(c.excluded))
            excluded += 1
        elif order is not None:
            currency, price, quantity = order.currency, order.price, order.quantity
            amount = price
            line_total = total = price * quantity
            key = (order.type.name, order.department.name, currency)
            entry = groups.get(key)  # _add, inline: once per row
            if entry is None:
                entry = groups[key] = [0, 0, Decimal(0)]
            entry[0] += 1
            entry[1] += quantity
            entry[2] += total
            add_status(valid_status)
            add_error(None)
        else:
            fields = row.fields
            currency = str(fields.get("currency") or DEFAULT_CURRENCY).upper()
            amount, line_total = _typed(fields.get("amount"), fields.get("quantity"))
            error = problems_text(c.problems) or None
            add_status(invalid_status)
            add_error(error)
            attention.append([row.number, invalid_status, _who(fields), TO_DO_VALIDATION, error])
        add_amount(amount)
        add_total(line_total)
        add_currency(currency)
        add_warning(("; ".join(t for t in (problems_text(c.warnings), notes.get(row.number)) if t) or None
                     if c.warnings or row.number in notes else None))
    # The writers take only the input's own headers from the inputs, so the rows' dicts need no copy.
    rows = OutputRows(numbers, [c.row.original for c in checks],
                      {"Status": statuses, "Error": errors, "Warning": warnings, "Row": numbers,
                       "AmountRead": amounts, "LineTotal": totals},
                      {"AmountRead": currencies, "LineTotal": currencies})
    now = local_now()
    summary: list[Sequence[Any]] = [
        [Heading("Validation sheet (a dry run: nothing was issued)")],
        [Label("Input file"), str(sheet.path.resolve())],
        [Label("Sheet"), sheet.sheet_name],
        [Label("SHA-256 of the input file"), sheet.sha256],
        [Label("Written at"), now],
        [Label("Times"), zone_text(now)],
        [Label("Rows that need attention"), len(attention), "listed in the sheet Needs attention"],
    ]
    counts = {RowStatus.VALID: len(rows) - len(attention) - excluded, RowStatus.INVALID: len(attention),
              RowStatus.EXCLUDED: excluded}
    summary += _status_lines(counts, (RowStatus.VALID, RowStatus.INVALID) + ((RowStatus.EXCLUDED,) if excluded else ()))
    summary += money_lines("Valid rows", groups)
    return OutputSheet(sheet.headers, VALIDATION_COLUMNS, rows, header_row=sheet.header_row, summary=summary,
                       sheet_name="Validation", csv_delimiter=sheet.csv_delimiter or ",",
                       typed_columns=TYPED_COLUMNS, attention=attention)


def result_sheet(sheet: Sheet, validation: Any, batch: Any, records: dict, ledger_path: Path, *,
                 face: str = "cli") -> OutputSheet:
    """The result sheet of a batch: every input row with its status, error, ids and certificate numbers.

    Args:
        sheet: the input as read; validation: its :class:`~flexybulk.validate.Validation`.
        batch: the ledger's :class:`~flexybulk.journal.BatchRecord`.
        records: input row number -> :class:`~flexybulk.journal.RowRecord` (the ledger's word on each row).
        ledger_path: the ledger file (named in the Summary).
        face: ``"cli"`` or ``"web"``: whose words say what to do (commands, or the web page's buttons),
            and, for the web, the input file by the name it was uploaded under, not the server's path.

    An invalid row that was never issued is INVALID; an ISSUED row whose
    line differs from what was committed says what was really issued.
    AmountRead and LineTotal are what was issued (ISSUED rows: the ledger's
    content), what will be settled for a row whose commit may have gone
    through (its ``commit_content``, whatever the line says now), else what
    the row says. The Summary's money is the ledger's
    ISSUED rows, per currency, type and department.
    """
    with gc_paused():  # a hundred thousand rows' objects, no cycles
        return _result_sheet(sheet, validation, batch, records, ledger_path, face == "web")


def write_result_sheet(path: Path, sheet: Sheet, validation: Any, batch: Any, records: dict, ledger_path: Path, *,
                       face: str = "cli") -> Path:
    """:func:`result_sheet` written to ``path`` by :func:`write_output`; returns the path written.

    Both under one pause of the cyclic GC, the sheet dropped before it runs
    again: otherwise a collection between the two walks the hundred thousand
    rows just made, and one after walks what the write made (measured on the
    benchmark's 100,000 rows: 0.02 s and 0.06 s of 1.4 s).

    Raises:
        InputFileError: the file cannot be written.
    """
    with gc_paused():
        return write_output(result_sheet(sheet, validation, batch, records, ledger_path, face=face), path)


def write_validation_sheet(path: Path, validation: Any, *, notes: dict[int, str] | None = None) -> Path:
    """:func:`validation_sheet` written to ``path`` by :func:`write_output`, as :func:`write_result_sheet` does.

    Raises:
        InputFileError: the file cannot be written.
    """
    with gc_paused():
        return write_output(validation_sheet(validation, notes=notes), path)


def _result_sheet(sheet: Sheet, validation: Any, batch: Any, records: dict, ledger_path: Path, web: bool) -> OutputSheet:
    from .records import row_ranges

    checks = validation.checks
    ISSUED = RowStatus.ISSUED
    numbers = [c.row.number for c in checks]
    made = result_columns(checks, list(map(records.get, numbers)), TO_DO_WEB if web else TO_DO)
    attention, issued, statuses = made.attention, made.issued, made.columns["Status"]
    if web:  # the library's messages in the page's words (press Retry, not flexybulk retry), each distinct one once
        from .wording import sheet_words

        errors = made.columns["Error"]
        said = {text: sheet_words(text) for text in set(errors) if text}
        made.columns["Error"] = list(map(said.get, errors, errors))
        for line in attention:
            line[4] = said.get(line[4], line[4])
    # The writers take only the input's own headers from the inputs, so the rows' dicts need no copy.
    rows = OutputRows(numbers, [c.row.original for c in checks],
                      {**made.columns, "BatchId": [batch.id] * len(numbers), "Row": numbers},
                      {"AmountRead": made.currencies, "LineTotal": made.currencies})

    # Rows the ledger issued in this batch whose lines are not on this sheet (deleted from a result sheet given
    # back): the Summary's counts and money stay the batch's, as `flexybulk status` says (a fresh user's find).
    absent = [rec for n in sorted(records.keys() - set(numbers))  # a set difference: C speed on 100,000 rows
              if (rec := records[n]).status is ISSUED and rec.content]
    for rec in absent:
        content = rec.content
        price, quantity = Decimal(content["price"]), int(content["quantity"])
        _add(issued, (content["type_name"], content["department_name"], content["currency"]), 1, quantity,
             price * quantity)
    now = local_now()
    summary: list[Sequence[Any]] = [
        [Heading("Result sheet")],
        [Label("Batch"), batch.id],
        [Label("Target"), batch.target],
        [Label("Input file"), *((Path(batch.input_path).name, "uploaded on the web page") if web else (batch.input_path,))],
        [Label("Sheet"), batch.sheet_name],
        [Label("SHA-256 of the input file"), batch.input_sha256],
        # What adoption checks a line's ids against (issue #11): derived ids can be recomputed from these.
        [Label("Ids"), IDS_DERIVED if batch.id_salt is None else f"{IDS_SALTED}{batch.id_salt}"],
    ]
    if sheet.sha256 != batch.input_sha256:
        # A retry's sheet is written from a result sheet: an auditor can check both files (issue #11).
        summary += [[Label("Written from"), str(sheet.path.resolve())],
                    [Label("SHA-256 of the file written from"), sheet.sha256]]
    summary += [
        [Label("Ledger"), str(Path(ledger_path).resolve())],
        [Label("Written at"), now],
        [Label("Times"), f"{zone_text(now)}; IssuedAt too"],
        [Label("Rows that need attention"), len(attention), "listed in the sheet Needs attention"],
    ]
    if absent:
        summary.append([Label("Issued rows not on this sheet"), len(absent),
                        f"rows {row_ranges([r.row_number for r in absent])} of the batch were issued, but their lines "
                        "were deleted from the sheet given back; counted below, their ids are in the ledger"])
    counts = {st: statuses.count(st) for st in _RESULT_STATUSES}
    counts[ISSUED] = counts.get(ISSUED, 0) + len(absent)
    summary += _status_lines(counts, _RESULT_STATUSES, MEANING_WEB if web else MEANING)
    summary += money_lines("Issued", issued)
    attention_headers = ATTENTION_HEADERS
    if not all(map(operator.lt, numbers, numbers[1:])):  # C speed on 100,000 rows
        # A result sheet given back sorted is written in its own order (writers._table_columns): "Row" stays the
        # batch's row (the Result sheet's Row column, the messages' row), "Line" says where it stands now.
        line = {n: sheet.header_row + 1 + i for i, n in enumerate(numbers)}
        attention = [[a[0], line[a[0]], *a[1:]] for a in attention]
        attention_headers = (ATTENTION_HEADERS[0], "Line", *ATTENTION_HEADERS[1:])
    return OutputSheet(sheet.headers, RESULT_COLUMNS, rows, header_row=sheet.header_row, summary=summary,
                       sheet_name="Result", csv_delimiter=sheet.csv_delimiter or ",",
                       typed_columns=TYPED_COLUMNS, attention=attention, attention_headers=attention_headers)
