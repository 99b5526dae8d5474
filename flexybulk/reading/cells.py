"""Parse single text cells of a recipient sheet: names and other text, headers, emails, phones,
postal codes, country and currency codes.

Pure functions, no I/O. Each parser takes one cell value as the reader got it
(``str`` for text, ``int``/``Decimal`` for numbers -- floats are converted with
:func:`number_from_float` first -- or ``bool``/``date``/``datetime`` from a
spreadsheet) and returns the cleaned value, ``None`` for an empty cell, or
raises :class:`CellValueError` whose message says what is wrong and what to do
(the reader turns it into a ``RowProblem``). Amounts and quantities are in
:mod:`flexybulk.reading.amounts`.

Beside each parser is its fast path over a whole column (``fast_*_column``):
the common cells parsed in one comprehension or in C, :data:`SLOW` for the
cells left to the parser. A fast path must give exactly what its parser gives
(``tests/test_sheet_fast_paths.py`` reads sheets both ways and compares).

The rules come from ``shared/pitfalls.md``; each function cites the pitfall it
answers (P5 postal codes, P6 phones, P14 emails and headers, P17 the formula guard).
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from decimal import Decimal
from itertools import repeat
from typing import Any

__all__ = [
    "CellValueError",
    "INVISIBLE",
    "SLOW",
    "clean_header",
    "clean_text",
    "fast_code_column",
    "fast_email_column",
    "fast_phone_column",
    "fast_postal_code_column",
    "fast_text_column",
    "normalize_code",
    "normalize_email",
    "normalize_header",
    "normalize_phone",
    "number_from_float",
    "postal_code_text",
    "postal_code_warning",
    "strip_formula_guard",
    "zero_pad_width",
]

SLOW = object()
"""A fast path's "this cell needs the full parser"."""


class CellValueError(ValueError):
    """A cell that cannot be parsed. ``str(err)`` is the user-facing message.

    The message quotes the cell as written and says what to write instead;
    the reader adds file, row and column (``model.RowProblem``).
    """


# Characters Excel, Word and web forms leave in cells and headers that print as
# nothing or as a space (pitfalls P3, P14): zero-width space/non-joiner/joiner,
# the BOM / zero-width no-break space, and the no-break spaces.
INVISIBLE = "\u200b\u200c\u200d\ufeff\u2060"
_NBSPS = "\u00a0\u202f\u2007"
_DROP_INVISIBLE = {ord(c): None for c in INVISIBLE}
_DROP_INVISIBLE_AND_NBSP = {**_DROP_INVISIBLE, **{ord(c): None for c in _NBSPS}}
_INVISIBLE_TO_NOTHING_NBSP_TO_SPACE = {**_DROP_INVISIBLE, **{ord(c): " " for c in _NBSPS}}

# The formula guard flexybulk's CSV writer (results.is_dangerous) puts in front of
# text a spreadsheet would run as a formula (pitfalls P17): '=..., '+45..., '-..., '@...
_GUARDED_START = ("'=", "'+", "'-", "'@", "'\t", "'\r", "'\n")


def strip_formula_guard(text: str) -> str:
    """Remove exactly one leading ``'`` that guards a formula-like text (pitfalls P17).

    ``"'=SUM(A1)"`` -> ``"=SUM(A1)"``, ``"'+4512345678"`` -> ``"+4512345678"``,
    only one is removed, and only where the writer would have put it: ``"'hej"``
    and ``"''=x"`` stay as they are (the apostrophe is then part of the data).
    """
    if text.startswith(_GUARDED_START):
        return text[1:]
    return text


def clean_text(value: Any) -> str | None:
    """A cell as clean single-line-safe text, or ``None`` when it is empty (pitfalls P7, P14).

    Removes zero-width characters and the BOM, turns no-break spaces into
    spaces, strips, and composes accents (NFC: a Mac's decomposed ``å``
    equals a typed ``å``). Integral numbers become integer text (``12`` never
    ``12.0``, pitfalls P6/P7); ``Decimal`` keeps its digits; dates become ISO text.
    Only a cell that is empty after stripping is empty: ``"NA"``, ``"None"``
    and ``"null"`` are text (pitfalls P8).
    """
    if value is None:
        return None
    if value.__class__ is not str:
        value = _number_or_date_text(value)
    if not value.isascii():
        value = unicodedata.normalize("NFC", value.translate(_INVISIBLE_TO_NOTHING_NBSP_TO_SPACE))
    value = value.strip()
    return value or None


_ODD_CHARACTER = re.compile("[" + INVISIBLE + _NBSPS + "]")  # what makes a text cell need clean_text


def fast_text_column(values: list[Any], joined: str | None) -> list[Any]:
    """:func:`clean_text` over a text column's plain cells: ASCII, or composed (NFC) text without
    invisible characters or NBSP, needs only a strip (issue #4, pitfalls P11).

    ``joined``: the column's cells joined with ``"\\n"`` when every one is ``str``, else
    ``None``; one check over it then holds for every cell, and they are stripped in C.
    Returns one entry per cell: ``None`` (empty), the text, or :data:`SLOW`.
    """
    S = SLOW
    odd, nfc = _ODD_CHARACTER.search, unicodedata.is_normalized
    if joined is not None and (joined.isascii() or (not odd(joined) and nfc("NFC", joined))):
        # Every cell is plain text (checked once over the joined column): strip them in C.
        out = list(map(str.strip, values))
        return out if all(out) else [v or None for v in out]
    return [
        None if v is None else (
            (v.strip() or None) if v.__class__ is str and (v.isascii() or (not odd(v) and nfc("NFC", v))) else S
        )
        for v in values
    ]


def _number_or_date_text(value: Any) -> str:
    """Text for a non-text spreadsheet cell: ``12``, ``12.5``, ``2024-03-05``, ``TRUE``."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        value = number_from_float(value)
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    return str(value)


def number_from_float(value: float) -> int | Decimal:
    """A spreadsheet's float as an exact number: ``1000.0`` -> ``1000``, ``499.95`` -> ``Decimal('499.95')``.

    Uses the shortest round-trip text of the float (``repr``), so ``499.95``
    stays ``499.95`` and never becomes ``499.94999999999998863131622783839702606201171875``
    (pitfalls P1, P7). Never does float arithmetic on money.
    """
    if value.is_integer():
        return int(value)
    return Decimal(repr(value))


# --- headers (pitfalls P3, P14, P15) -----------------------------------------

# A unit at the end of a header: "Beløb (DKK)", "Pris [kr.]", "Beløb i kr", "Værdi DKK".
_UNIT_SUFFIX = re.compile(
    r"(?:\s*[(\[][^()\[\]]*[)\]]|\s+(?:i\s+)?(?:dkk|kr\.?|kroner))\s*$",
    re.IGNORECASE,
)
_HEADER_NOISE = str.maketrans("", "", "-_ .*:\t\r\n")


def clean_header(text: Any) -> str:
    """A header as the user wrote it, minus invisible characters: for messages and keys.

    Strips the BOM Excel glues to the first header (pitfalls P3), zero-width
    characters and surrounding whitespace; no-break spaces become spaces
    (pitfalls P14). ``"\\ufeffNavn"`` -> ``"Navn"``. Numbers become integer text.
    """
    return clean_text(text) or ""


def normalize_header(text: Any) -> str:
    """The comparison key of a header: ``"E-mail"`` -> ``"email"``, ``"Beløb (DKK)"`` -> ``"beløb"``.

    Removes BOM, NBSP and zero-width characters, applies NFKC and casefold,
    drops one unit suffix (``(DKK)``, ``(kr.)``, ``[kr]``, `` i kr``, `` DKK``)
    and ignores ``-``, ``_``, spaces, ``.``, ``*`` and ``:`` (pitfalls P3, P14, P15).
    ``"Antal stk."`` -> ``"antalstk"``, ``"Post nr."`` -> ``"postnr"``.
    """
    key = clean_header(text)
    key = unicodedata.normalize("NFKC", key).casefold()
    key = _UNIT_SUFFIX.sub("", key) or key
    return key.translate(_HEADER_NOISE)


# --- postal codes and phones (pitfalls P5, P6) ---------------------------------

_SCIENTIFIC = re.compile(r"^[-+]?\d+(?:[.,]\d+)?[eE][-+]?\d+$")
_ZEROS_FORMAT = re.compile(r"^0+$")


def zero_pad_width(number_format: str | None) -> int | None:
    """Width of a ``0000``-style number format, else ``None`` (pitfalls P5).

    ``"0000"`` -> 4; ``"00000"`` -> 5; ``"General"``, ``"0"``, ``"0.00"``,
    ``"@"`` and ``"00 00 00 00"`` -> ``None``. Only the first section of the
    format counts (``"0000;-0000"`` -> 4).
    """
    if not number_format:
        return None
    section = number_format.split(";", 1)[0].replace('"', "").replace("\\", "")
    if _ZEROS_FORMAT.match(section) and len(section) > 1:
        return len(section)
    return None


def _digits_of_number_cell(value: Any, what: str, text_hint: str) -> str:
    """Integer text of a numeric cell (``4512345678.0`` -> ``"4512345678"``); raises for fractions."""
    if value.__class__ is float:
        value = number_from_float(value)
    if value.__class__ is Decimal:
        if value != value.to_integral_value():
            raise CellValueError(f"'{value}' is not a {what} — {text_hint}")
        value = int(value)
    return str(value)


def postal_code_text(value: Any, number_format: str | None = None) -> str | None:
    """A postal code as text, or ``None`` for an empty cell (pitfalls P5, P6).

    Numeric cells become integer text (``8000.0`` -> ``"8000"``); with a
    ``0000`` number format they are zero-padded (``800`` -> ``"0800"``).
    Text is cleaned (NFKC, NBSP, zero-width, strip) and kept as written.

    Raises:
        CellValueError: scientific notation (``"8E+03"``: shortened by Excel),
            a fractional number, or a date/TRUE cell.
    """
    if value is None:
        return None
    cls = value.__class__
    if cls is str:
        text = clean_text(value)
        if text is None:
            return None
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        if _SCIENTIFIC.match(text):
            raise CellValueError(
                f"'{text}' was shortened by Excel — format the column as Text and export again"
            )
        return text
    if cls is bool or isinstance(value, (_dt.date, _dt.time, _dt.timedelta)):
        raise CellValueError(
            f"'{_number_or_date_text(value)}' is not a postal code — format the column as Text and type the postal code"
        )
    digits = _digits_of_number_cell(value, "postal code", "format the column as Text and type the postal code")
    width = zero_pad_width(number_format)
    if width and digits.isdigit():
        digits = digits.zfill(width)
    return digits



def fast_postal_code_column(values: list[Any]) -> list[Any]:
    """:func:`postal_code_text` over a column's integer cells of four digits or more, when the
    column has no zero-padding number format (issue #4); :data:`SLOW` for the rest."""
    S = SLOW
    return [None if v is None else (str(v) if v.__class__ is int and v >= 1000 else S) for v in values]


def postal_code_warning(code: str, country: str | None) -> str | None:
    """A message when a Danish postal code looks like Excel ate its leading zero (pitfalls P5).

    ``country`` is the row's country code (``None`` means DK, the default).
    ``"800"`` in DK -> ``"Postal code '800' has 3 digits — did Excel remove a
    leading 0? Write it as 0800 and format the column as Text"``; anything
    else -> ``None`` (the validator checks postal codes per country).
    """
    if (country or "DK") == "DK" and len(code) == 3 and code.isdigit():
        return (
            f"Postal code '{code}' has 3 digits — did Excel remove a leading 0? "
            f"Write it as 0{code} and format the column as Text"
        )
    return None


_PHONE_PUNCTUATION = re.compile(r"[\s\u00a0\u202f\-./()]+")
_DK_FAST = re.compile(r"^(?:\+45|0045|45(?=\d{8}$))?(\d{8})$")


def normalize_phone(value: Any, region: str | None = None, number_format: str | None = None) -> str | None:
    """A phone number in E.164 (``"+4512345678"``), or ``None`` for an empty cell (pitfalls P6).

    ``region`` is the row's ISO country code for numbers written without
    ``+``; ``None`` means DK; a region that is no country code only allows
    numbers with their own ``+``/``00`` prefix. Numeric cells are read as integer text first
    (``4512345678.0`` -> ``"4512345678"``, padded with a ``0000…`` format).
    Danish numbers take a fast path (``12 34 56 78``, ``0045…``, ``+45…``,
    ``45…``); others go through ``phonenumbers`` and must have a possible
    length for their country (validity of number ranges is not checked:
    test numbers such as ``+4512345678`` are accepted).

    Raises:
        CellValueError: scientific notation (``"4,51235E+09"``: shortened by
            Excel), text that is not a phone number, or an impossible length.
    """
    if value is None:
        return None
    if value.__class__ is str:
        text = clean_text(value)
        if text is None:
            return None
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        if _SCIENTIFIC.match(text.replace(" ", "")):
            raise CellValueError(
                f"'{text}' was shortened by Excel — format the column as Text and export again"
            )
    elif value.__class__ is bool or isinstance(value, (_dt.date, _dt.time, _dt.timedelta)):
        raise CellValueError(
            f"'{_number_or_date_text(value)}' is not a phone number — write it like +45 12 34 56 78"
        )
    else:
        text = _digits_of_number_cell(value, "phone number", "write it like +45 12 34 56 78")
        width = zero_pad_width(number_format)
        if width:
            text = text.zfill(width)
    region = (region or "DK").upper()
    compact = _PHONE_PUNCTUATION.sub("", text)
    if region == "DK":
        match = _DK_FAST.match(compact)
        if match:
            return "+45" + match.group(1)
    import phonenumbers  # imported on first non-Danish number: it costs ~0.1 s

    if region not in phonenumbers.SUPPORTED_REGIONS:
        # The row's country is not a country code (the validator reports that);
        # only a number that carries its own country code can still be read.
        if not compact.startswith(("+", "00")):
            raise CellValueError(
                f"'{text}' has no country code and the row's country '{region}' is not a country code — "
                "write the number like +45 12 34 56 78"
            )
        region = "DK" if compact.startswith("00") else None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise CellValueError(
            f"'{text}' is not a phone number for {region} — write it with the country code, like +45 12 34 56 78"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)



def fast_phone_column(values: list[Any], countries: list[Any] | None) -> list[Any]:
    """:func:`normalize_phone` over a column's Danish numbers, when the column has no zero-padding
    number format (issue #4): an 8-digit integer, or ASCII text that the parser's Danish fast
    path takes (the same two patterns: punctuation dropped, then +45/0045/45 and 8 digits).

    ``countries``: the rows' parsed country codes (``None``: no country column, all DK).
    Returns one entry per cell: ``None`` (empty), ``"+45…"``, or :data:`SLOW`.
    """
    S = SLOW
    dk, punct = _DK_FAST.match, _PHONE_PUNCTUATION.sub
    if countries is None:
        return [None if v is None else (
            ("+45%d" % v) if v.__class__ is int and 10_000_000 <= v <= 99_999_999
            else ("+45" + m.group(1)) if v.__class__ is str and v.isascii() and (m := dk(punct("", v))) else S
        ) for v in values]
    return [None if v is None else (
        S if c is not None and c != "DK"
        else ("+45%d" % v) if v.__class__ is int and 10_000_000 <= v <= 99_999_999
        else ("+45" + m.group(1)) if v.__class__ is str and v.isascii() and (m := dk(punct("", v))) else S
    ) for v, c in zip(values, countries)]


# --- emails (pitfalls P14) ----------------------------------------------------


def normalize_email(value: Any) -> str | None:
    """An email address cleaned for sending and comparing, or ``None`` for an empty cell (pitfalls P14).

    Removes NBSP and zero-width characters, applies NFKC, strips, drops a
    leading ``mailto:`` (and a ``?subject=…`` after it) and lower-cases:
    ``" Test@Example.COM\\u00a0"`` -> ``"test@example.com"``. The syntax itself
    is checked later by the validator; duplicates too.

    Raises:
        CellValueError: the address ends with a dot, or has more than one ``@``.
    """
    if value is None:
        return None
    text = value if value.__class__ is str else _number_or_date_text(value)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text.translate(_DROP_INVISIBLE_AND_NBSP))
    text = text.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].split("?", 1)[0].strip()
    if not text:
        return None
    shown = text
    text = text.lower()
    if text.count("@") > 1:
        raise CellValueError(f"'{shown}' has more than one @ — write one email address per row")
    if text.endswith("."):
        raise CellValueError(f"'{shown}' ends with a dot — remove the dot at the end")
    return text



def fast_email_column(values: list[Any], joined: str | None) -> list[Any]:
    """:func:`normalize_email` over a column's plain ASCII addresses (issue #4).

    ``joined`` as for :func:`fast_text_column`. When it is all ASCII and has no
    ``mailto:`` anywhere, the cells are stripped, lower-cased and checked (one
    ``@``, no trailing dot, none empty) in C; any cell failing a check sends the
    column to the per-cell comprehension. Returns ``None`` (empty), the address, or :data:`SLOW`.
    """
    S = SLOW
    if joined is not None and joined.isascii() and "mailto:" not in joined.lower():
        out = list(map(str.lower, map(str.strip, values)))
        if all(out) and set(map(str.count, out, repeat("@"))) == {1} and not any(map(str.endswith, out, repeat("."))):
            return out
    return [
        None if v is None else (
            e if v.__class__ is str and v.isascii() and (e := v.strip().lower()) and e.count("@") == 1
            and e[-1] != "." and not e.startswith("mailto:") else S
        )
        for v in values
    ]


def normalize_code(value: Any) -> str | None:
    """A country or currency code, cleaned and upper-cased: ``" dk "`` -> ``"DK"`` (pitfalls P8).

    ``"NA"`` (Namibia) stays ``"NA"``; only an empty cell is ``None``. The
    validator checks the code against ISO 3166 / ISO 4217.
    """
    text = clean_text(value)
    if text is None:
        return None
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.upper()


def fast_code_column(values: list[Any]) -> list[Any]:
    """:func:`normalize_code` over a column's ASCII cells: stripped and upper-cased (issue #4);
    :data:`SLOW` for the rest."""
    S = SLOW
    return [None if v is None else ((v.strip().upper() or None) if v.__class__ is str and v.isascii() else S)
            for v in values]
