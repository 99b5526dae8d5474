"""What one read of an input file works with: its options, the file and its cells, and small text helpers.

:class:`ReadOptions` is the reader's public input (re-exported by
:mod:`flexybulk.reading`). The private shapes are shared by the reading
modules: ``_Grid`` (one sheet's raw cells, before any interpretation),
``_Column`` and ``_Header`` (what the header row says), and ``_Context`` (what
the reader knows about the file while it works, for messages and notes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from flexybulk.errors import InputFileError
from flexybulk.model import Field


@dataclass(frozen=True)
class ReadOptions:
    """How to read an input file.

    Attributes:
        sheet: the worksheet to read, by name; ``None`` picks the one visible
            sheet whose header matches (pitfalls P13).
        columns: ``--column`` overrides, field name -> header text
            (``{"amount": "Værdi i kr"}``); the header is matched after the
            same normalisation as the built-in names (pitfalls P15).
        max_file_size: bytes; larger files are refused before reading (issue #6).
        max_rows: data rows (non-empty rows below the header); more are
            refused with both counts (pitfalls P10, P11).
        include_hidden: ``--include-hidden``: rows hidden or filtered out in the
            sheet are read as ordinary rows (with a warning); by default they are
            ``InputRow.excluded`` (issue #12).
        encoding: ``--encoding``: the codec of a CSV file (any name Python knows,
            ``"mac-roman"``, ``"cp1252"``); ``None`` detects it (issue #12).
    """

    sheet: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    max_file_size: int = 50 * 1024 * 1024
    max_rows: int = 100_000
    include_hidden: bool = False
    encoding: str | None = None


_MIB = 1024 * 1024


def column_letter(index: int) -> str:
    """Spreadsheet column letter of a 0-based column index: 0 -> ``"A"``, 27 -> ``"AB"``."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_index(letters: str) -> int:
    """0-based index of a column letter: ``"A"`` -> 0, ``"AB"`` -> 27."""
    index = 0
    for ch in letters:
        index = index * 26 + ord(ch) - 64
    return index - 1


def _quote(name: str) -> str:
    return f"'{name}'"


def _join_names(items: list[str]) -> str:
    """``["A", "C"]`` -> ``"A and C"``; ``["A", "C", "E"]`` -> ``"A, C and E"``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _size_text(size: int) -> str:
    if size >= _MIB:
        return f"{size / _MIB:,.1f} MB"
    return f"{size:,} bytes"



@dataclass
class _Grid:
    """The cells of one worksheet or CSV file, before any interpretation.

    ``rows[i][j]`` is the cell at sheet row ``first_row + i`` and column index
    ``first_col + j`` (0-based). Empty cells are ``""``; other values are
    ``str``, ``int``, ``float``, ``bool``, ``date``/``datetime``/``time``.
    """

    rows: list[list[Any]]
    first_row: int = 1
    first_col: int = 0
    merged: list[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=list)
    line_numbers: list[int] | None = None  # CSV: the physical line each record starts on
    filled: set[tuple[int, int]] | None = None  # header-area cells copied from a merged range
    uncounted_rows: int = 0  # CSV: non-empty records past the row limit, counted but not kept


@dataclass
class _Column:
    index: int  # 0-based index into the grid's rows
    header: str
    letter: str
    field: Field | None = None


@dataclass
class _Header:
    index: int  # index into grid.rows
    score: int
    fields: set[Field]


@dataclass
class _Context:
    """What the reader knows about the file while it works: for messages and notes."""

    path: Path
    opts: ReadOptions
    data: bytes = b""
    format: str = "csv"
    sheet_name: str | None = None
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    archive: Any = None  # the opened zip of an XLSX or ODS (zipfile.ZipFile)
    list_end: list[str] = field(default_factory=list)  # Sheet.list_end
    list_stop: int | None = None  # the first sheet row not read because the list ended above it
    encoding: str | None = None  # Sheet.encoding
    decode_doubt: str | None = None  # Sheet.decode_doubt

    @property
    def where(self) -> str:
        text = _quote(self.path.name)
        if self.sheet_name is not None:
            text += f", sheet {_quote(self.sheet_name)}"
        return text

    def error(self, message: str) -> InputFileError:
        return InputFileError(f"{self.where}: {message}")

