"""XLSX cells for flexybulk's big tables: values rendered into ``<c>`` elements, widths, heights, looks.

What the cells look like to a person (issue #13): a fill colour per status
(ISSUED/VALID green, FAILED/INVALID red, UNKNOWN/PENDING amber,
SKIPPED/EXCLUDED grey), wrapped text in the wrap columns, amounts as numbers
in the currency's number format, date-times as date-time cells, widths fitted
to the content (capped), rows as tall as their wrapped text.

Cells (ECMA-376 part 1, 18.3.1.4 ``c``): text as inline strings
(``t="inlineStr"``), XML-escaped, the characters XML 1.0 cannot hold shown as
U+FFFD, cut at Excel's 32,767 characters; numbers as the shortest text that
gives back the same value (``str`` of the ``Decimal`` read, ``repr`` of a
float), so an amount reads back exactly; a number no cell can hold (NaN,
1E+400, an int past 15 digits) as text; date-times as Excel serial days.
Text that starts like a formula (``= + - @``, tab, CR, LF; OWASP "CSV
Injection", pitfalls P17) is a string with Excel's quote-prefix style, never
a formula.

Speed: a 100,000-row sheet is a million cells or two. Most columns are laid
out whole (:mod:`flexybulk.output_layout`); the others are rendered here a
chunk of rows, a column and a type at a time: the values of each type picked
out and put back with C-level passes (``compress``, ``map``), text cleaned
with a few passes over the chunk's column joined, and a row made by one join
of constant markup and per-row texts (:func:`cell_parts`), never a string
built per cell in Python (benchmarks/README.md).
"""

from __future__ import annotations

import math
import operator
import re
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, time as dtime
from decimal import Decimal
from itertools import compress, repeat
from typing import Any, NamedTuple

from .model import RowStatus

DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r", "\n")

# Status -> (fill, font colour): Excel's own "Good", "Bad", "Neutral" cell styles, and a grey.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "ISSUED": ("#C6EFCE", "#006100"), "VALID": ("#C6EFCE", "#006100"),
    "FAILED": ("#FFC7CE", "#9C0006"), "INVALID": ("#FFC7CE", "#9C0006"),
    "UNKNOWN": ("#FFEB9C", "#9C5700"), "PENDING": ("#FFEB9C", "#9C5700"),
    "SKIPPED": ("#E7E6E6", "#3A3A3A"), "EXCLUDED": ("#E7E6E6", "#3A3A3A"),
}
HEADER_FILL = "#DDEBF7"

MAX_WIDTH = 50  # characters; longer text is cut at the cell edge (wrapped in the wrap columns)
WRAP_WIDTH = 60
MIN_WIDTH = 6
FILTER_BUTTON = 3  # the autofilter's arrow sits on the header text
PAGE_WIDTH = 180  # characters of column width on an A4 landscape page at about 70%

DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
_EPOCH = datetime(1899, 12, 30)  # Excel's day 0 (1900 date system, after the 1900 leap-year bug)

# Characters XML 1.0 cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE, plus the non-characters FFFE/FFFF).
ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ILLEGAL_BUT_NUL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MAX_TEXT = 32767  # Excel's limit of characters in a cell


def is_dangerous(text: str) -> bool:
    """True when a spreadsheet program could take ``text`` for a formula (OWASP CSV injection)."""
    return text.startswith(DANGEROUS_START)


class Money(NamedTuple):
    """An amount in a currency: a number cell with the currency's number format (``Decimal`` amount).

    A named tuple: a result sheet makes two per row, and a tuple is the cheapest object to make.
    """

    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Heading:
    """A Summary line that starts a section: bold, alone on its row."""

    text: str


@dataclass(frozen=True, slots=True)
class Label:
    """A bold Summary cell: a label before its value, or a table's column name (``right``: over numbers)."""

    text: str
    right: bool = False


def money_format(currency: str) -> str:
    """Excel number format for an amount in ``currency``: ``#,##0.00 "DKK"`` (separators follow the reader's locale)."""
    code = "".join(ch for ch in currency if ch.isalnum())[:8] or "?"
    return f'#,##0.00 "{code}"'


class Styles:
    """The workbook's cell formats, created once; ``index(fmt)`` is the style number a rendered cell names."""

    def __init__(self, wb: Any) -> None:
        self.wb = wb
        self.header = wb.add_format({"bold": True, "bg_color": HEADER_FILL, "bottom": 1})
        self.bold = wb.add_format({"bold": True})
        self.bold_right = wb.add_format({"bold": True, "align": "right"})
        self.heading = wb.add_format({"bold": True, "font_size": 13})
        self.quote = wb.add_format({"quote_prefix": True})
        self.wrap = wb.add_format({"text_wrap": True})
        self.wrap_quote = wb.add_format({"text_wrap": True, "quote_prefix": True})
        # On the left, as text is: right-aligned, IssuedAt ran into the CustomerId beside it (a fresh user's find).
        self.datetime = wb.add_format({"num_format": DATETIME_FORMAT, "align": "left"})
        self.date = wb.add_format({"num_format": DATE_FORMAT})
        self.indented = wb.add_format({"indent": 1})  # the Summary's text after a number
        self.bold_indented = wb.add_format({"bold": True, "indent": 1})
        self.number = wb.add_format({"num_format": "#,##0"})
        self.status = {s: wb.add_format({"bg_color": fill, "font_color": font})
                       for s, (fill, font) in STATUS_COLOURS.items()}
        self._money: dict[str, Any] = {}

    def money(self, currency: str) -> Any:
        fmt = self._money.get(currency)
        if fmt is None:
            fmt = self._money[currency] = self.wb.add_format({"num_format": money_format(currency)})
        return fmt

    @staticmethod
    def index(fmt: Any) -> int:
        # XlsxWriter numbers a format when a cell first uses it; the rendered cells name it directly.
        return fmt._get_xf_index()


def excel_serial(value: datetime | date) -> float:
    """Days since Excel's epoch (local wall time: a time zone is dropped, as Excel has none)."""
    if isinstance(value, datetime):
        naive = value.replace(tzinfo=None)
    else:
        naive = datetime.combine(value, dtime())
    delta = naive - _EPOCH
    return delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400


def number_text(value: Any) -> str | None:
    """The ``<v>`` text of a numeric cell that reads back as exactly ``value``; ``None`` if no number can hold it."""
    cls = value.__class__
    if cls is int:
        return str(value) if -(10**15) < value < 10**15 else None
    if cls is Decimal:
        if not value.is_finite() or not -300 < value.adjusted() < 300:
            return None
        return str(value)
    if cls is float:
        return repr(value) if math.isfinite(value) else None
    return None


# Characters past Latin-1 (our own messages' "—", a "’" pasted from Word) written as XML character references:
# one such character makes Python hold a whole chunk of rows two or four bytes a character while it joins and
# encodes it (measured: 0.2 ms of a 512-row chunk's 1.1 ms). Every reader decodes them to the same text.
_WIDE = re.compile(r"[^\x00-\xff]")


def _wide(text: str) -> bool:
    """True when ``text`` holds a character past Latin-1 (a C pass: Latin-1 text encodes, wider text does not)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return True
    return False


def _char_ref(match: re.Match) -> str:
    return f"&#{ord(match.group())};"


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Past the first text of a joined column, one that starts like a formula (quote prefix) or starts or ends
# with whitespace (xml:space). Led by the joiner, so the regex engine scans for it at C speed.
_NEEDS_CARE = re.compile(r"\x00(?:[=+\-@\s]|(?<=\s\x00))")


_CONTROLS = bytes(c for c in range(1, 32) if c not in (9, 10, 13))  # XML 1.0's illegal bytes, NUL aside


def has_illegal(text: str) -> bool:
    """True when ``text`` holds a character XML cannot (NUL aside: the joiner of :func:`clean_column`).

    Text that fits Latin-1 (Danish does) is checked as bytes, a C pass five
    times faster than the regular expression, which checks any other text.
    """
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return _ILLEGAL_BUT_NUL.search(text) is not None
    return len(raw.translate(None, _CONTROLS)) != len(raw)


def clean_column(texts: list[str], short: bool = False) -> tuple[list[str], bool]:
    """``texts`` cut at Excel's limit, the characters XML cannot hold shown as U+FFFD, ``& < >`` escaped.

    Also says whether any text needs a look of its own (formula-like start,
    whitespace at an end). Done on the whole column joined: a few C-speed
    passes instead of calls per cell; a column holding NUL, the joiner, goes
    cell by cell. ``short``: the texts are known to be within the limit.
    """
    if not texts:
        return texts, False
    if not short and max(map(len, texts)) > MAX_TEXT:
        texts = [t[:MAX_TEXT] for t in texts]  # before escaping: a cut must not split an &amp;
    blob = "\x00".join(texts)
    if blob.count("\x00") != len(texts) - 1:
        return [_xml_text(ILLEGAL.sub("\ufffd", t)) for t in texts], True
    care = (blob.startswith(DANGEROUS_START) or blob[:1].isspace() or blob[-1:].isspace()
            or _NEEDS_CARE.search(blob) is not None)
    changed = False
    if has_illegal(blob):
        blob, changed = _ILLEGAL_BUT_NUL.sub("\ufffd", blob), True
    if "&" in blob or "<" in blob or ">" in blob:
        blob, changed = _xml_text(blob), True
    if not blob.isascii() and _wide(blob):
        blob, changed = _WIDE.sub(_char_ref, blob), True
    return (blob.split("\x00") if changed else texts), care  # unchanged: the same strings, not copies


@dataclass
class Column:
    """One column of a table to render: header, a value per row, how it looks."""

    header: str
    values: list
    kind: str = "plain"  # plain, status, wrap, int
    # Learnt by column_width's pass over the values, so the rendering need not look again:
    dense: type | None = None  # the one class of every value, when there is no empty cell
    short: bool = False  # no text past Excel's limit of characters in a cell
    layout: tuple | None = None  # the cells worked out for the whole column (flexybulk.output_layout)
    # Amounts kept apart from their currencies (results.OutputRows): values are Decimal or None, a cell is
    # Money(value, currencies[i]). flexybulk.output_layout makes the Money when it renders chunk by chunk.
    currencies: list | None = None
    # Learnt by output_layout.look_at before the column is laid out: the classes of its values, its distinct
    # texts when they repeat a lot, and its texts joined by NUL: every value, when every one is text, or the
    # non-empty ones (``present``) of a text column with gaps.
    seen: bool = False
    numbers_only: bool = False  # a wrap column of lists of numbers (output_cells.row_heights counts their lines)
    digits: int = 0  # ... and the one length of every number in it, when they all have one (0: not known)
    kinds: set | None = None
    distinct: set | None = None
    joined: str | None = None
    present: list | None = None


_NONE = type(None)
_LETTER = re.compile(r"[A-Za-z]")  # in a number's text: NaN, Infinity or an exponent - the careful path


def column_width(col: Column, styles: Styles) -> int:
    """Characters the column's widest cell shows (capped later); numbers the money styles it will use."""
    values = col.values
    kinds = set(map(type, values))
    if len(kinds) == 1 and _NONE not in kinds and (str not in kinds or all(values)):
        col.dense = next(iter(kinds))
    kinds.discard(_NONE)
    longest = 0
    if kinds <= {str}:
        longest = max(map(len, filter(None, values)), default=0)
        col.short = longest <= MAX_TEXT
    elif kinds <= {str, int, Decimal, float}:
        # Distinct values first: amounts, quantities and codes repeat. A None counts as "None", below MIN_WIDTH.
        longest = max(map(len, map(str, set(values))), default=0)
        if col.kind == "int":
            longest += longest // 3
    elif kinds == {RowStatus}:
        longest = max(len(v.value) for v in set(values) if v is not None)
    elif kinds and all(issubclass(k, (datetime, date)) for k in kinds):
        longest = 19 if any(issubclass(k, datetime) for k in kinds) else 10
    elif kinds == {Money}:
        present = list(filter(None, values))  # a Money is a non-empty tuple
        currencies = set(map(_CURRENCY, present))
        for currency in sorted(currencies):  # numbered in a fixed order: the same sheet, the same file
            styles.index(styles.money(currency))
        digits = max(map(len, map(str, map(_AMOUNT, present))))
        longest = digits + digits // 3 + 3 + max(map(len, currencies))  # separators, decimals, " DKK"
    else:
        for v in values:
            cls = v.__class__
            if v is None:
                continue
            if cls is str:
                longest = max(longest, len(v))
            elif cls is Money:
                styles.index(styles.money(v.currency))
                longest = max(longest, len(str(v.amount)) + len(v.currency) + 5)
            elif isinstance(v, datetime):
                longest = max(longest, 19)
            elif isinstance(v, date):
                longest = max(longest, 10)
            else:
                text = v.value if cls is RowStatus else str(v)
                longest = max(longest, len(text) + (len(text) // 3 if col.kind == "int" else 0))
    return max(len(col.header) + FILTER_BUTTON, longest)


Pieces = list  # of str (the same on every row) and lists (one text per row), in the order they are written


def cell_parts(col: Column, letter: str, numbers: list[str], values: list, styles: Styles) -> Pieces:
    """One column's cells on sheet rows ``numbers`` as pieces: constant texts and lists of a text per row.

    Row ``i``'s ``<c>`` element is the pieces joined, a list giving its item
    ``i``. The writer joins every column's pieces into one sequence per row,
    so a row costs one C-level join instead of a string built per cell. A
    column of one type and no gaps gives its texts as lists between constant
    markup; any other gives whole cells (from :func:`render_column`; ``""``
    for an empty cell).
    """
    cls = col.dense
    if cls is None:
        kinds = set(map(type, values))
        if len(kinds) == 1 and _NONE not in kinds and (str not in kinds or all(values)):
            cls = kinds.pop()
    if cls is not None:
        parts = _parts(cls, values, letter, numbers, col.kind, styles, col.short)
        if parts is not None:
            return parts
        return [_cells(cls, values, letter, numbers, col.kind, styles, col.short)]
    return [render_column(col, letter, numbers, values, styles)]


def joined(pieces: Pieces) -> list[str]:
    """The texts that ``pieces`` make, one per row."""
    fmt = "".join(p.replace("%", "%%") if p.__class__ is str else "%s" for p in pieces)
    return list(map(fmt.__mod__, zip(*[p for p in pieces if p.__class__ is not str])))


def render_column(col: Column, letter: str, numbers: list[str], values: list, styles: Styles) -> list[str]:
    """The ``<c>`` elements of one column's ``values`` on sheet rows ``numbers`` (as text; ``""`` for an empty cell).

    Cells are rendered a type at a time (:func:`_cells`), the values of each
    picked out and the cells put back in place by C-level passes
    (``compress``, ``map``), not a branch per cell.
    """
    if col.dense is not None:  # known from column_width: one batch, no gaps
        return _cells(col.dense, values, letter, numbers, col.kind, styles, col.short)
    types = list(map(type, values))
    kinds = set(types)
    if len(kinds) == 1 and _NONE not in kinds and (str not in kinds or all(values)):
        return _cells(kinds.pop(), values, letter, numbers, col.kind, styles)
    kinds.discard(_NONE)
    out = [""] * len(values)
    for cls in kinds:
        flags = list(map(operator.is_, types, repeat(cls)))
        where, these, rows = list(compress(range(len(values)), flags)), list(compress(values, flags)), list(compress(numbers, flags))
        if cls is str and not all(these):  # an empty text is an empty cell
            full = list(map(bool, these))
            where, these, rows = list(compress(where, full)), list(compress(these, full)), list(compress(rows, full))
        deque(map(out.__setitem__, where, _cells(cls, these, letter, rows, col.kind, styles, col.short)), maxlen=0)
    return out


def _cells(cls: type, values: list, letter: str, numbers: list[str], kind: str, styles: Styles,
           short: bool = False) -> list[str]:
    """The ``<c>`` elements of ``values``, all of class ``cls`` and none empty, in column ``letter`` on rows ``numbers``.

    ``short``: the texts are known to be within Excel's limit.
    """
    parts = _parts(cls, values, letter, numbers, kind, styles, short)
    if parts is not None:
        return joined(parts)
    # Some value no number cell can hold (NaN, 1E+400, an int past 15 digits) or a date before 1900: cell by cell.
    if cls is Money:
        style = {c: styles.index(styles.money(c)) for c in {m.currency for m in values}}
        out = []
        for n, m in zip(numbers, values):
            text = number_text(m.amount)
            out.append(f'<c r="{letter}{n}" s="{style[m.currency]}"><v>{text}</v></c>' if text is not None
                       else _text_cells([str(m.amount)], letter, [n], kind, styles)[0])
        return out
    if issubclass(cls, (datetime, date)):
        style = styles.index(styles.datetime if issubclass(cls, datetime) else styles.date)
        serials = {v: repr(excel_serial(v)) for v in set(values) if v.year >= 1900}  # a batch's rows share seconds
        return [f'<c r="{letter}{n}" s="{style}"><v>{serials[v]}</v></c>' if v in serials
                else _text_cells([v.isoformat()], letter, [n], kind, styles)[0] for n, v in zip(numbers, values)]
    s = f' s="{styles.index(styles.number)}"' if kind == "int" else ""
    out = []
    for n, v in zip(numbers, values):
        text = number_text(v)
        out.append(f'<c r="{letter}{n}"{s}><v>{text}</v></c>' if text is not None
                   else _text_cells([str(v)], letter, [n], kind, styles)[0])
    return out


_AMOUNT, _CURRENCY = operator.itemgetter(0), operator.itemgetter(1)  # of a Money
_STATUS_TEXT = operator.attrgetter("value")


def _parts(cls: type, values: list, letter: str, numbers: list[str], kind: str, styles: Styles,
           short: bool = False) -> Pieces | None:
    """:func:`cell_parts` of ``values``, all of class ``cls`` and none empty; ``None`` if some cell needs :func:`_cells`."""
    if cls is str:
        return _text_parts(values, letter, numbers, kind, styles, short)
    if cls is RowStatus:
        return _text_parts(list(map(_STATUS_TEXT, values)), letter, numbers, kind, styles)
    if cls is Money:
        texts = _number_texts(list(map(_AMOUNT, values)))
        if texts is None:
            return None
        currencies = list(map(_CURRENCY, values))
        style = {c: f'" s="{styles.index(styles.money(c))}"><v>' for c in set(currencies)}
        if len(style) == 1:
            return [f'<c r="{letter}', numbers, style.popitem()[1], texts, "</v></c>"]
        return [f'<c r="{letter}', numbers, list(map(style.__getitem__, currencies)), texts, "</v></c>"]
    if cls is bool:
        return [f'<c r="{letter}', numbers, '" t="b"><v>', ["1" if v else "0" for v in values], "</v></c>"]
    if cls is int or cls is Decimal or cls is float:
        s = f' s="{styles.index(styles.number)}"' if kind == "int" else ""
        if cls is int:
            if values and not (-(10**15) < min(values) and max(values) < 10**15):
                return None
            texts = list(map(str, values))
        else:
            texts = _number_texts(values)
            if texts is None:
                return None
        return [f'<c r="{letter}', numbers, f'"{s}><v>', texts, "</v></c>"]
    if issubclass(cls, (datetime, date)):
        style = styles.index(styles.datetime if issubclass(cls, datetime) else styles.date)
        serials = {v: repr(excel_serial(v)) for v in set(values) if v.year >= 1900}  # a batch's rows share seconds
        try:
            return [f'<c r="{letter}', numbers, f'" s="{style}"><v>', list(map(serials.__getitem__, values)), "</v></c>"]
        except KeyError:  # a date before 1900 (no serial day): that one is text
            return None
    return _text_parts(list(map(str, values)), letter, numbers, kind, styles)


def _number_texts(values: list) -> list[str] | None:
    """The ``<v>`` texts of numbers (``int``, ``Decimal``, ``float``), or ``None`` if any needs :func:`number_text`."""
    texts = list(map(str, values))  # a float's str is its repr: the shortest text that reads back the same
    if not texts:
        return texts
    if _LETTER.search("".join(texts)) or max(map(len, texts)) > 15:
        return None  # NaN, Infinity, an exponent, an int past a double's 15 digits, a long Decimal
    return texts


def _text_parts(texts: list[str], letter: str, numbers: list[str], kind: str, styles: Styles,
                short: bool = False) -> Pieces:
    """Inline-string cells; formula-like text gets the quote prefix, a status its colour, wrap columns wrap."""
    wrap = kind == "wrap"
    plain = styles.index(styles.wrap) if wrap else 0
    if kind != "status":
        cleaned, care = clean_column(texts, short)
        if not care:
            s = f' s="{plain}"' if plain else ""
            return [f'<c r="{letter}', numbers, f'"{s} t="inlineStr"><is><t>', cleaned, "</t></is></c>"]
    # A look per text (a status's fill, the quote prefix, xml:space), made once for each distinct text.
    quote = styles.index(styles.wrap_quote if wrap else styles.quote)
    status_style = {s: styles.index(f) for s, f in styles.status.items()} if kind == "status" else {}
    distinct = list(set(texts))
    tails = {}
    for raw, text in zip(distinct, clean_column(distinct, short)[0]):
        style = quote if raw.startswith(DANGEROUS_START) else status_style.get(raw, plain)
        s = f' s="{style}"' if style else ""
        space = "" if raw.strip() is raw else ' xml:space="preserve"'
        tails[raw] = f'"{s} t="inlineStr"><is><t{space}>{text}</t></is></c>'
    return [f'<c r="{letter}', numbers, list(map(tails.__getitem__, texts))]


def text_ends(texts: list[str], kind: str, styles: Styles) -> list[str]:
    """What follows ``<c r="A7`` in each text's cell (its look, the inline string, the end), as :func:`_text_parts` makes it."""
    rest = _text_parts(texts, "", [""] * len(texts), kind, styles)[2:]
    return rest[0] if len(rest) == 1 else joined(rest)  # one piece: a text per row already (each with its look)


def _text_cells(texts: list[str], letter: str, numbers: list[str], kind: str, styles: Styles,
                short: bool = False) -> list[str]:
    """:func:`_text_parts` as whole cells."""
    return joined(_text_parts(texts, letter, numbers, kind, styles, short))


def row_heights(wrapped: list[tuple[list, int, bool, int]]) -> dict[int, str]:
    """Row index -> the ``<row>`` attributes giving it room for its wrapped text (rows that need more than one line).

    ``wrapped``: ``(values, width, numbers_only, digits)`` per wrap column,
    ``numbers_only`` for a column of number lists (certificate numbers),
    ``digits`` the one length of every number in the whole column (0: not
    one, or not known). Neither Excel
    nor LibreOffice grows a row for wrapped text when it opens a file, so the
    height is set, 15 points a line: lines estimated from the text's length
    at the column's width (words wrap a little earlier: 90%); a list of
    numbers of one length (``17961675080000005, 17961675080000006``) is
    counted exactly, numbers per line, as digits are as wide as the width's
    unit (a row of three certificate numbers had a blank second line: a
    fresh user's find).
    """
    lines: dict[int, int] = {}
    for values, width, listed, digits in wrapped:
        fits = max(1, int(width * 0.9))
        # The texts that may need more than one line, found at C speed: longer than a line, or with a line break.
        texts = list(compress(range(len(values)), map(operator.is_, map(type, values), repeat(str))))
        found = list(map(values.__getitem__, texts))
        tall = list(compress(texts, map(operator.gt, map(len, found), repeat(fits))))
        if listed and 0 < digits <= width:
            # Every number of the column has one length: a row's lines from its count of numbers, at C speed
            # (the loop below took 0.06 s of a 100,000-row result sheet for its certificate numbers).
            per_line = (width + 2) // (digits + 2)
            counts = map(operator.add, map(str.count, map(values.__getitem__, tall), repeat(", ")), repeat(per_line))
            for i, n in zip(tall, map(operator.floordiv, counts, repeat(per_line))):
                if n > lines.get(i, 1):
                    lines[i] = n
            continue
        tall = set(tall)
        if "\n" in "".join(found):
            tall.update(compress(texts, map(operator.contains, found, repeat("\n"))))
        for i in tall:
            v = values[i]
            n = _listed_lines(v, width) if listed else None
            if n is None:
                n = sum(-(-len(part) // fits) or 1 for part in v.split("\n"))
            if n > lines.get(i, 1):
                lines[i] = n
    return {i: f' ht="{min(409, 15 * n)}" customHeight="1"' for i, n in lines.items()}


NUMBER_LIST = b"0123456789, "  # the characters of a list of numbers (", " between them)


def _listed_lines(text: str, width: int) -> int | None:
    """Lines a list of numbers of one length takes at ``width`` digits a line (``None``: not such a list)."""
    lengths = set(map(len, text.split(", ")))
    if len(lengths) != 1:  # numbers of other lengths (or no list): the estimate
        return None
    digits = lengths.pop()
    if digits < 1 or digits > width:
        return None
    per_line = (width + 2) // (digits + 2)  # n numbers take n * digits + 2 * (n - 1) characters
    return -(-(text.count(", ") + 1) // per_line)


def column_letter(index: int) -> str:
    """0 -> ``A``, 26 -> ``AA``."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
