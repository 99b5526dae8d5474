"""Text files: CSV and TSV, decoded and split into records (pitfalls P2, P3, P4, P16, P17).

Owns (with :mod:`.decoding`, which picks the encoding) the refusals of
binary junk and of HTML/XML pages saved as ``.csv``, the warning for
double-encoded text, Excel's ``sep=`` line, the choice of delimiter (``;``,
``,`` or tab, by known header names through the ``csv`` module, never by
hand-splitting) and strict quoting with the line of a broken quote.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Iterable

from flexybulk.errors import InputFileError
from flexybulk.model import Field, Sheet

from .context import _Context, _Grid, _quote
from .decoding import _decode, _decode_doubt
from .layout import HEADER_SEARCH_ROWS, _find_header, _is_blank_row, _no_header_message
from .rows import _build_sheet


_MOJIBAKE = ("Ã¸", "Ã¦", "Ã¥", "Ã˜", "Ã…", "Ã†")
_SEP_LINE = re.compile(r'^"?sep=(.)"?[ \t]*$', re.IGNORECASE)
_DELIMITERS = (";", ",", "\t")
_DELIMITER_NAMES = {";": "';'", ",": "','", "\t": "tab"}


def _read_text(data: bytes, ctx: _Context, overrides: dict[str, Field]) -> Sheet:
    name = _quote(ctx.path.name)
    text, encoding_note, ctx.encoding = _decode(data, name, ctx.opts.encoding)
    stripped = text.lstrip(" \t\r\n\ufeff")
    if stripped.startswith("<"):
        raise InputFileError(_markup_message(name, stripped[:2000]))
    ctx.format = "csv"
    ctx.notes.append(encoding_note)
    _warn_mojibake(text, ctx)
    ctx.decode_doubt = _decode_doubt(text, ctx.encoding)

    line_offset = 0
    forced = None
    first_line, _, rest = text.partition("\n")
    sep = _SEP_LINE.match(first_line.rstrip("\r").lstrip("\ufeff"))
    if sep:
        # Excel's "sep=;" directive line: honour it and do not count it as a row (pitfalls P2).
        forced = sep.group(1)
        text = rest
        line_offset = 1
        ctx.notes.append(f"Used the separator {_DELIMITER_NAMES.get(forced, repr(forced))} from the sep= line")

    delimiter = forced or _choose_delimiter(text, ctx, overrides, line_offset)
    ctx.delimiter = delimiter
    grid = _parse_csv(text, delimiter, ctx, line_offset)
    suffix = ctx.path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls", ".ods", ".xlsb"):
        kind = {"\t": "tab-separated", ";": "semicolon-separated", ",": "comma-separated"}.get(delimiter, "delimited")
        ctx.notes.append(f"{name} is really a {kind} text file — read it as CSV")
    header = _find_header(grid, overrides)
    if header is None:
        raise ctx.error(_no_header_message(grid) + (f". {ctx.decode_doubt}" if ctx.decode_doubt else ""))
    return _build_sheet(grid, header, ctx, overrides)


def _markup_message(name: str, head: str) -> str:
    lower = head.lower()
    if "<html" in lower or "<!doctype html" in lower or "<table" in lower or "<body" in lower:
        what = "an HTML page"
    elif "urn:schemas-microsoft-com:office:spreadsheet" in lower or "<workbook" in lower:
        what = "an Excel 2003 XML spreadsheet"
    else:
        what = "an XML file, not a spreadsheet"
    return f"{name} is really {what} — open it in Excel and save as .xlsx"


def _warn_mojibake(text: str, ctx: _Context) -> None:
    """Warn when UTF-8 text was decoded twice somewhere upstream: ``Ã¸`` for ``ø`` (pitfalls P4)."""
    positions = [p for p in (text.find(m) for m in _MOJIBAKE) if p >= 0]
    if positions:
        first = min(positions)
        sample = text[first : first + 2]
        line = text.count("\n", 0, first) + 1
        ctx.warnings.append(
            f"{_quote(ctx.path.name)} line {line}: the text looks double-encoded ('{sample}' where æ, ø or å was "
            "probably meant) — the file was converted twice; export it again as 'CSV UTF-8' from the original"
        )


class _CsvError(Exception):
    """csv.Error with the line where the failing record starts."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(detail)
        self.line = line
        self.detail = detail


def _csv_records(text: str, delimiter: str, limit: int | None = None) -> Iterable[tuple[int, list[str]]]:
    """``(start line, fields)`` per record, with strict quoting (pitfalls P2).

    Raises:
        _CsvError: broken quoting, with the line where the bad record starts.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    line = 0
    count = 0
    while limit is None or count < limit:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CsvError(line + 1, str(exc)) from None
        yield line + 1, fields
        line = reader.line_num
        count += 1


def _choose_delimiter(text: str, ctx: _Context, overrides: dict[str, Field], line_offset: int) -> str:
    """Pick ``;``, ``,`` or tab by known header names, then by equal field counts (pitfalls P2).

    Each candidate is parsed with ``csv`` and an explicit delimiter; never
    csv.Sniffer alone, never hand-split lines.
    """
    sample_end = len(text)
    if len(text) > 256 * 1024:
        cut = text.rfind("\n", 0, 256 * 1024)
        sample_end = cut if cut > 0 else len(text)
    sample = text[:sample_end]
    results = []
    for delimiter in _DELIMITERS:
        records: list[list[str]] = []
        try:
            for _, fields in _csv_records(sample, delimiter, limit=200):
                records.append(fields)
        except _CsvError:
            pass  # judge by the records before the bad quote; the full parse reports the line
        if not records:
            continue
        grid = _Grid(rows=[list(r) for r in records])
        header = _find_header(grid, overrides)
        if header is None:
            continue
        width = len(records[header.index])
        body = [r for r in records[header.index + 1 :] if r and not _is_blank_row(r)]
        consistent = sum(1 for r in body if len(r) == width or (len(r) > width and _is_blank_row(r[width:])))
        share = consistent / len(body) if body else 1.0
        results.append(((header.score, share), delimiter, records))
    if not results:
        first = text.split("\n", 1)[0].strip()[:120]
        raise InputFileError(
            f"{_quote(ctx.path.name)}: no header row found — the first line is '{first}'. "
            "The file needs a header with column names such as Navn, E-mail, Beløb, separated by ';', ',' or tabs"
            + (f". {ctx.decode_doubt}" if ctx.decode_doubt else "")
        )
    results.sort(key=lambda item: item[0], reverse=True)
    best = results[0]
    rivals = [r for r in results[1:] if r[0] == best[0] and r[2] != best[2]]
    if rivals:
        names = " or ".join(_DELIMITER_NAMES[d] for d in [best[1]] + [r[1] for r in rivals])
        raise InputFileError(
            f"{_quote(ctx.path.name)}: Could not tell whether the file is separated by {names}. "
            "Save it as 'CSV UTF-8' from Excel, or add a first line sep=; (with the right separator)"
        )
    return best[1]


def _parse_csv(text: str, delimiter: str, ctx: _Context, line_offset: int) -> _Grid:
    """All records as a grid of strings, with clear messages for broken quoting (pitfalls P2).

    Record numbers are the rows a spreadsheet shows (a quoted value with line
    breaks stays one row; a ``sep=`` line is not a row, as in Excel).
    """
    name = _quote(ctx.path.name)
    rows: list[list[str]] = []
    lines: list[int] = []
    # Once more non-empty records were stored than the row limit allows whatever the
    # header row is, the file will be refused: only count the rest (issue #6: memory).
    store_limit = ctx.opts.max_rows + HEADER_SEARCH_ROWS + 1
    stored = overflow = 0
    try:
        for start, fields in _csv_records(text, delimiter):
            non_blank = bool(fields) and not _is_blank_row(fields)
            if stored >= store_limit:
                overflow += non_blank
                continue
            stored += non_blank
            rows.append(fields)
            lines.append(start + line_offset)
    except _CsvError as exc:
        at = exc.line + line_offset
        if "unexpected end of data" in exc.detail:
            raise InputFileError(
                f"{name} line {at}: a quote (\") opened here is never closed, so the rest of the file would be "
                "one value — fix the quotes on that line or export the file again"
            ) from None
        raise InputFileError(
            f"{name} line {at}: the quoting is broken ({exc.detail}) — a value has a stray \" character. "
            "Fix the quotes on that line or export the file again"
        ) from None
    _check_swallowed_lines(rows, lines, delimiter, name)
    return _Grid(rows=rows, line_numbers=lines, first_row=1, uncounted_rows=overflow)


def _check_swallowed_lines(rows: list[list[str]], lines: list[int], delimiter: str, name: str) -> None:
    """A quoted value that runs over lines holding whole records: an unclosed quote (pitfalls P2)."""
    if not rows:
        return
    width = max(len(rows[0]), 2)
    for fields, line in zip(rows, lines):
        for value in fields:
            if "\n" in value and delimiter in value:
                inner = value.split("\n")[1:]
                if any(part.count(delimiter) >= width - 1 for part in inner):
                    raise InputFileError(
                        f"{name} line {line}: a quote (\") opened here runs over the next lines, which look like "
                        "rows of their own — a closing quote is missing. Fix the quotes on that line"
                    )

