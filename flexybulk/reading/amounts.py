"""Parse amount and quantity cells: the price of one gift certificate and how many (pitfalls P1, P7).

Pure functions, no I/O, the numeric half of :mod:`flexybulk.reading.cells`
(which has the text cells and the conventions shared by both): each parser
takes one cell value as the reader got it and returns a ``Decimal``/``int``,
``None`` for an empty cell, or raises :class:`~flexybulk.reading.cells.CellValueError`.
Beside each parser is its fast path over a whole column (``fast_*_column``),
which must give exactly what the parser gives for the cells it takes
(``tests/test_sheet_fast_paths.py`` reads sheets both ways and compares).
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import Enum
from typing import Any, Iterable

from .cells import SLOW, CellValueError, _DROP_INVISIBLE, _DROP_INVISIBLE_AND_NBSP, _number_or_date_text, number_from_float

__all__ = [
    "AmountConvention",
    "amount_convention",
    "fast_amount_column",
    "fast_quantity_column",
    "parse_amount",
    "parse_quantity",
]

# --- amounts (pitfalls P1) ----------------------------------------------------


class AmountConvention(str, Enum):
    """How a column writes its numbers, decided from all its text values (pitfalls P1).

    DANISH: ``,`` is the decimal mark and ``.`` groups thousands (``1.234,50``).
    ENGLISH: ``.`` is the decimal mark and ``,`` groups thousands (``1,234.50``).
    UNKNOWN: no value tells (only ``250``, ``1.000``-like values, or numeric cells).
    MIXED: both kinds occur; each unambiguous value is read by its own form
    and an ambiguous one is a problem.
    """

    DANISH = "danish"
    ENGLISH = "english"
    UNKNOWN = "unknown"
    MIXED = "mixed"


# Decorations people put around amounts: "kr. 1.234,50", "250,-", "99 DKK", "1 234,50 kr".
_AMOUNT_PREFIX = re.compile(r"^(?:dkk|kr\.?)(?=[-+\d])", re.IGNORECASE)
_AMOUNT_SUFFIX = re.compile(r"(?:[.,]-+)?(?:dkk|kr\.?)?$", re.IGNORECASE)
_SPACES = re.compile(r"[\s\u00a0\u202f\u2007\u2009]+")
_CORE = re.compile(r"^[-+]?\d[\d.,]*$")
_GROUPED_DOT = re.compile(r"^[1-9]\d{0,2}(?:\.\d{3})+$")
_GROUPED_COMMA = re.compile(r"^[1-9]\d{0,2}(?:,\d{3})+$")
_ONE_GROUP = re.compile(r"^[1-9]\d{0,2}$")

# Kinds of a cleaned amount text.
_PLAIN, _DANISH, _ENGLISH, _AMBIGUOUS_DOT, _AMBIGUOUS_COMMA, _BAD = range(6)


def _amount_core(text: str) -> str | None:
    """Strip spaces, currency words and ``,-``; ``None`` when what is left is not a number."""
    core = _SPACES.sub("", text.translate(_DROP_INVISIBLE)).replace("\u2212", "-")
    core = _AMOUNT_PREFIX.sub("", core)
    core = _AMOUNT_SUFFIX.sub("", core, count=1)
    if core.startswith(("kr", "KR", "Kr", "dkk", "DKK")):  # "kr 250,-" after the suffix went
        core = _AMOUNT_PREFIX.sub("", core)
    if not _CORE.match(core) or core[-1] in ".,":
        return None
    return core


def _classify(core: str) -> tuple[int, str, str]:
    """Kind of an unsigned number text and its integer and fraction digits.

    Returns ``(kind, integer_digits, fraction_digits)``; for the two ambiguous
    kinds the digits are those of the *thousands* reading.
    """
    dots, commas = core.count("."), core.count(",")
    if not dots and not commas:
        return _PLAIN, core, ""
    if dots and commas:
        mark = "," if core.rfind(",") > core.rfind(".") else "."
        whole, _, frac = core.rpartition(mark)
        group_re = _GROUPED_DOT if mark == "," else _GROUPED_COMMA
        if core.count(mark) != 1 or not group_re.match(whole) or not frac.isdigit():
            return _BAD, "", ""
        return (_DANISH if mark == "," else _ENGLISH), whole.replace("." if mark == "," else ",", ""), frac
    sep = "," if commas else "."
    parts = core.split(sep)
    if len(parts) == 2:
        whole, frac = parts
        if len(frac) == 3 and _ONE_GROUP.match(whole):
            return (_AMBIGUOUS_COMMA if sep == "," else _AMBIGUOUS_DOT), whole + frac, ""
        return (_DANISH if sep == "," else _ENGLISH), whole, frac
    # Several of one separator can only be thousands grouping: 1.234.567 / 1,234,567.
    if (_GROUPED_DOT if sep == "." else _GROUPED_COMMA).match(core):
        return (_DANISH if sep == "." else _ENGLISH), core.replace(sep, ""), ""
    return _BAD, "", ""


def amount_convention(values: Iterable[Any]) -> AmountConvention:
    """Decide a column's number convention from all its values (pitfalls P1).

    Only text values count (numeric spreadsheet cells carry no convention).
    A value that can only be Danish (``1.234,50``, ``250,00``, ``1.234.567``)
    or only English (``1,234.50``, ``250.50``, ``1,234,567``) is a hint;
    ``250`` and the ambiguous ``1.000``/``1,234`` are not.
    """
    danish = english = False
    for value in values:
        if value.__class__ is not str:
            continue
        core = _amount_core(value)
        if core is None:
            continue
        kind = _classify(core.lstrip("+-"))[0]
        if kind == _DANISH:
            danish = True
        elif kind == _ENGLISH:
            english = True
        if danish and english:
            return AmountConvention.MIXED
    if danish:
        return AmountConvention.DANISH
    if english:
        return AmountConvention.ENGLISH
    return AmountConvention.UNKNOWN


def _danish_thousands(digits: str) -> str:
    """``"1000"`` -> ``"1.000"``: the integer written with Danish thousands dots."""
    return f"{int(digits):,}".replace(",", ".")


def parse_amount(value: Any, convention: AmountConvention = AmountConvention.UNKNOWN) -> Decimal | None:
    """The price of one gift certificate as ``Decimal``, or ``None`` for an empty cell (pitfalls P1).

    ``value`` is a numeric cell (``int``, ``Decimal``, or ``float`` read via
    :func:`number_from_float`) or text. Text may be Danish (``1.234,50``,
    ``1234,50``, ``250,00``, ``250``) or English (``1,234.50``, ``1234.50``)
    and decorated (``kr``, ``kr.``, ``DKK``, ``,-``, spaces, NBSP):
    ``"1.234,50 kr."`` -> ``Decimal("1234.50")``, ``"250,-"`` -> ``Decimal("250")``.

    ``convention`` (from :func:`amount_convention` over the whole column)
    settles values with one separator and three digits after it: ``1.000`` is
    1000 in a Danish column, and ``1,234`` is 1234 in an English one. In any
    other column such a value raises, giving both readings.
    Zero and negative amounts are returned as they are (the validator rejects them).

    Raises:
        CellValueError: for text that is not an amount, an ambiguous value,
            or a non-number cell (a date, TRUE/FALSE).
    """
    if value is None:
        return None
    cls = value.__class__
    if cls is int:
        return Decimal(value)
    if cls is Decimal:
        return value
    if cls is float:
        return Decimal(number_from_float(value))
    if cls is not str:
        raise CellValueError(f"'{_number_or_date_text(value)}' is not an amount — write the price as a number, e.g. 250 or 1.234,50")
    text = value.strip()
    if not text.translate(_DROP_INVISIBLE_AND_NBSP).strip():
        return None
    core = _amount_core(text)
    if core is None:
        raise CellValueError(f"'{text}' is not an amount — write the price as a number, e.g. 250 or 1.234,50")
    sign = "-" if core[0] == "-" else ""
    kind, whole, frac = _classify(core.lstrip("+-"))
    if kind == _BAD:
        raise CellValueError(f"'{text}' is not an amount — write the price as a number, e.g. 250 or 1.234,50")
    if (kind == _AMBIGUOUS_DOT and convention is not AmountConvention.DANISH) or (
        kind == _AMBIGUOUS_COMMA and convention is not AmountConvention.ENGLISH
    ):
        # 1.000 is "one thousand" to a Dane and "one" to an English locale; money
        # never has three decimals, so only a column that shows the separator is a
        # thousands mark settles it (pitfalls P1, input B).
        mark = core.lstrip("+-")[-4]
        small = Decimal(core.lstrip("+-").replace(mark, "."))
        shown = format(small.normalize(), "f")
        # Offer one unambiguous spelling for each reading, so either meaning can be written down.
        thousands = f"write {sign}{whole} (or {sign}{_danish_thousands(whole)},00) if you mean {sign}{whole}"
        if small != small.quantize(Decimal("0.01")):
            raise CellValueError(f"'{text}' could mean {sign}{whole} or {sign}{shown} (three decimals, which no price has) — {thousands}")
        two_places = f"{small:.2f}".replace(".", mark)
        raise CellValueError(f"'{text}' could mean {sign}{whole} or {sign}{shown} — {thousands}, or {sign}{two_places} if you mean {sign}{shown}")
    return Decimal(f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}")


def fast_amount_column(values: list[Any]) -> list[Any]:
    """:func:`parse_amount` over a column's common cells, in one comprehension (issue #4).

    ``values``: the column's cells (``None`` for empty). Returns one entry per
    cell: ``None`` for an empty cell, the ``Decimal`` of an ``int`` or
    ``Decimal`` cell (as :func:`parse_amount` gives it), else :data:`SLOW`:
    text carries a convention and is left to the parser.
    """
    S = SLOW
    return [None if v is None else (Decimal(v) if v.__class__ is int else (v if v.__class__ is Decimal else S))
            for v in values]


# --- quantities (pitfalls P7) -------------------------------------------------

_WHOLE_WITH_ZERO_DECIMALS = re.compile(r"^([-+]?\d+)(?:[.,]0{1,2})?$")
_QUANTITY_UNIT = re.compile(r"\s*(?:stk\.?|pcs\.?|x)$", re.IGNORECASE)


def parse_quantity(value: Any) -> int | None:
    """The number of gift certificates as ``int``, or ``None`` for an empty cell (pitfalls P7).

    Accepts ``2``, ``"2"``, ``"2,0"``, ``"2.00"``, ``"2 stk"`` and numeric
    ``2.0`` (read as ``2``). Zero and negative numbers are returned as they are
    (the validator rejects them).

    Raises:
        CellValueError: ``"2,5"`` (not whole), ``"1.000"`` (1000 or 1?),
            ``"abc"``, or a date/TRUE cell.
    """
    if value is None:
        return None
    cls = value.__class__
    if cls is int:
        return value
    if cls is float:
        value = number_from_float(value)
        if value.__class__ is int:
            return value
        cls = Decimal
    if cls is Decimal:
        if value == value.to_integral_value():
            return int(value)
        raise CellValueError(f"'{value}' is not a whole number — write how many gift certificates, e.g. 2")
    if cls is not str:
        raise CellValueError(
            f"'{_number_or_date_text(value)}' is not a number — write how many gift certificates, e.g. 2"
        )
    text = _SPACES.sub(" ", value.translate(_DROP_INVISIBLE)).strip()
    if not text:
        return None
    core = _QUANTITY_UNIT.sub("", text).replace(" ", "")
    match = _WHOLE_WITH_ZERO_DECIMALS.match(core)
    if match:
        return int(match.group(1))
    if re.fullmatch(r"[-+]?[1-9]\d{0,2}[.,]\d{3}", core):
        digits = core.replace(".", "").replace(",", "")
        small = format(Decimal(core.replace(",", ".")).normalize(), "f")
        raise CellValueError(f"'{text}' could mean {int(digits)} or {small} — write {int(digits)} or {small}")
    if re.fullmatch(r"[-+]?\d+[.,]\d+", core):
        raise CellValueError(f"'{text}' is not a whole number — write how many gift certificates, e.g. 2")
    raise CellValueError(f"'{text}' is not a number — write how many gift certificates, e.g. 2")


def fast_quantity_column(values: list[Any]) -> list[Any]:
    """:func:`parse_quantity` over a column's common cells: ``int`` cells as they are, ``None`` for
    empty ones, :data:`SLOW` for the rest (issue #4)."""
    S = SLOW
    return [None if v is None else (v if v.__class__ is int else S) for v in values]
