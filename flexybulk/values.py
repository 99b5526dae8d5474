"""Parse single cells of a recipient sheet: amounts, quantities, emails, phones, postal codes.

Pure functions, no I/O. Each parser takes one cell value as the reader got it
(``str`` for text, ``int``/``Decimal`` for numbers -- floats are converted with
:func:`number_from_float` first -- or ``bool``/``date``/``datetime`` from a
spreadsheet) and returns the cleaned value, ``None`` for an empty cell, or
raises :class:`CellValueError` whose message says what is wrong and what to do
(the reader turns it into a ``RowProblem``).

The rules come from ``shared/pitfalls.md``; each function cites the pitfall it
answers (P1 amounts, P5 postal codes, P6 phones, P7 quantities, P14 emails and
headers, P17 the formula guard).
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from decimal import Decimal
from enum import Enum
from typing import Any, Iterable

__all__ = [
    "CellValueError",
    "AmountConvention",
    "INVISIBLE",
    "amount_convention",
    "clean_header",
    "clean_text",
    "normalize_code",
    "normalize_email",
    "normalize_header",
    "normalize_phone",
    "number_from_float",
    "parse_amount",
    "parse_quantity",
    "postal_code_text",
    "postal_code_warning",
    "strip_formula_guard",
    "zero_pad_width",
]


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
