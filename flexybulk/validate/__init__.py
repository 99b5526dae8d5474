"""Validation: rows + the live catalogue -> orders and row problems (the dry run).

Pure functions: no I/O, no HTTP. Every problem of every row is collected
(csvkit's ``RowChecker`` style), never raised, so one pass tells the user
everything to fix.

Rules and their sources:
- name and email required, email syntax by email-validator without DNS
  (RFC 5321/5322 as that library implements them), normalised as it does; a
  sheet's addresses go through ``flexybulk.emails`` (the same verdicts, the
  domain check once per distinct domain, worker processes for big sheets);
- gift certificate type and department known by id or by name, names
  compared case-insensitively; an unknown name gets a "did you mean"
  suggestion (issue #2);
- amount positive with at most two decimals, quantity a positive whole number
  (issue #2); upper bounds so that a typo cannot issue a fortune (issue #6);
- currency a three-letter code (ISO 4217 shape), country a two-letter ISO
  3166-1 code (pycountry's copy of ISO 4217 and ISO 3166; ``NA`` is Namibia, pitfalls P8);
- a sheet without a column for a required field is refused as a whole, naming
  the headers it has, rather than reporting the same gap on every row;
- text sent to the API has control characters removed and bounded lengths (issue #6);
- the same email or the same order twice in one file is a warning naming both
  rows, not an error: one person may rightly get two cards (issue #3).

Modules: :mod:`.rules` (single values), :mod:`.checker` (a row), :mod:`.verdicts` (the results).
"""

from __future__ import annotations

import gc
from typing import Callable

from .. import emails as _emails
from ..model import Catalogue, Field, Sheet
from .checker import _EMAIL, _RowChecker
from .rules import (_FIELD_LABELS, DEFAULT_COUNTRY, DEFAULT_CURRENCY, DEFAULT_QUANTITY, MAX_AMOUNT, MAX_LENGTHS, MAX_QUANTITY, CatalogueIndex,
                    check_email, clean_text, fingerprint, format_money, order_fingerprint)
from .verdicts import RowCheck, Totals, Validation

__all__ = [
    "DEFAULT_COUNTRY", "DEFAULT_CURRENCY", "DEFAULT_QUANTITY", "MAX_AMOUNT", "MAX_LENGTHS", "MAX_QUANTITY", "CatalogueIndex",
    "RowCheck", "Totals", "Validation", "check_columns", "check_email", "clean_text", "fingerprint", "format_money",
    "order_fingerprint", "validate",
]



def check_columns(sheet: Sheet, default_department: str | None = None) -> None:
    """Refuse a sheet that has no column for a required field (name, email, type, amount, department).

    Raises:
        InputFileError: naming the missing fields and the headers found, and how to map one.
    """
    have = set(sheet.column_map)
    missing = []
    if not have & {Field.NAME.value, Field.FIRST_NAME.value, Field.LAST_NAME.value}:
        missing.append("the recipient's name (Navn/Name)")
    for fld, example in ((Field.EMAIL, "E-mail"), (Field.TYPE, "Gavekorttype/Type"), (Field.AMOUNT, "Beløb/Amount")):
        if fld.value not in have:
            missing.append(f"the {_FIELD_LABELS[fld]} ({example})")
    if Field.DEPARTMENT.value not in have and default_department is None:
        missing.append("the department (Afdeling/Department, or --department for all rows)")
    if missing:
        from ..errors import InputFileError

        found = ", ".join(f"'{h}'" for h in sheet.headers) or "nothing"
        raise InputFileError(
            f"{sheet.where()}: no column for {'; '.join(missing)}. The header on row {sheet.header_row} has {found}. "
            "Name the columns as shown, or map one with --column, e.g. --column amount=\"Værdi i kr\"."
            + (f" {sheet.decode_doubt}" if sheet.decode_doubt else "")
        )


def validate(sheet: Sheet, catalogue: Catalogue, *, default_department: str | None = None,
             progress: Callable[[int], None] | None = None) -> Validation:
    """Check every row of ``sheet`` against ``catalogue``.

    Args:
        sheet: what ``sheet.read_sheet`` returned.
        catalogue: the live gift certificate types and departments.
        default_department: ``--department``: name or id used for rows whose
            department cell is empty or whose sheet has no department column.
        progress: called with the number of rows checked so far, every 1,000 rows and at the end.

    Returns:
        A :class:`Validation` with one :class:`RowCheck` per row, in input
        order. Repeats within the file are added as warnings naming both rows.

    Raises:
        InputFileError: a required field has no column at all (:func:`check_columns`).
        ConfigError: ``default_department`` is not a known, active department.
    """
    check_columns(sheet, default_department)
    if default_department is not None:
        # Said once for the option, not on every row that would use it (and not ignored when no row does).
        found, why = CatalogueIndex(catalogue.departments, "department").find(default_department)
        if found is None:
            from ..errors import ConfigError

            raise ConfigError(f"--department '{default_department}': {why} Nothing was issued.")
    rows = sheet.rows
    # Every row's cleaned address first, so that email-validator can work through the distinct ones
    # in worker processes while this one checks the rows (flexybulk.emails, issue #4).
    cleaned_emails = [clean_text(raw) if raw is not None else "" for raw in (row.fields.get(_EMAIL) for row in rows)]
    # The checks and orders made here form no reference cycles, but creating hundreds of thousands of
    # objects makes the cyclic GC rescan the whole sheet again and again (over a third of the time spent
    # outside email-validator on a 100,000-row sheet, issue #4); it is off for the loop, as read_sheet does.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with _emails.EmailVerdicts(filter(None, cleaned_emails), parallel_min=_emails.PARALLEL_MIN,
                                    chunk=_emails.CHUNK) as verdicts:
            checker = _RowChecker(sheet, catalogue, default_department, verdicts)
            checks = checker.check_all(rows, cleaned_emails, progress)
        if progress is not None:
            progress(len(checks))
        _warn_repeats(checker, checks)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Validation(sheet, checks)


def _warn_repeats(checker: _RowChecker, checks: list[RowCheck]) -> None:
    """Warn on each valid row whose order (fingerprint) or else email came in an earlier row, naming that row."""
    first_by_email: dict[str, int] = {}
    first_by_print: dict[str, int] = {}
    for c in checks:
        order = c.order
        if order is None:
            continue
        other = first_by_print.get(c.fingerprint)
        if other is not None:
            c.warnings.append(checker.problem(c.row, Field.EMAIL, f"the same gift certificate as row {other} (same email, type, department, amount and quantity). Both rows are kept; delete one if that is a mistake.", order.email))
            continue  # its email is known already: the row it repeats has the same (the fingerprint hashes it)
        number = c.row.number
        first_by_print[c.fingerprint] = number
        email = order.email.casefold()
        other = first_by_email.get(email)
        if other is None:
            first_by_email[email] = number
        else:
            c.warnings.append(checker.problem(c.row, Field.EMAIL, f"{order.email} also appears in row {other}; both rows are kept and share one customer.", order.email))
