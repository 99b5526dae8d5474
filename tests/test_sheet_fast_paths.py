"""The reader's fast paths give exactly what the per-cell parsers give (issue #4).

``flexybulk.reading`` parses the common cells of a column in bulk and leaves the
rest to :mod:`flexybulk.reading.cells` cell by cell. ``columns._FAST_PATHS = False``
sends every cell through the per-cell parsers; each sheet here is read both
ways (and through both engines) and must give the same sheet, compared with
types (``1`` is not ``1.0``, ``Decimal('1.0')`` is not ``Decimal('1')``).

The rows are worked on in blocks (``rows._BLOCK_ROWS``); the fast reads here use
blocks of 3 rows, so that block edges, and a column's convention decided over all
its blocks, are exercised too.

Each tricky value is put into a sheet of otherwise plain columns, once in every
column, so a check that decides for a whole column must notice the one odd cell.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

import flexybulk.reading.columns as columns_module
import flexybulk.reading.engines as engines_module
import flexybulk.reading.rows as rows_module
from flexybulk.model import Sheet
from flexybulk.reading import ReadOptions, read_sheet

HEAD = ["Navn", "E-mail", "Telefon", "Adresse", "Postnr", "By", "Gavekorttype", "Afdeling", "Beløb", "Antal", "Note"]


def plain_row(i: int) -> list:
    return [f"Test Person {i}", f"p{i}@example.com", 20000000 + i if i % 3 else f"+45 20 00 00 {i % 100:02d}",
            f"Prøvevej {i}", 8000 + i % 3, "Aarhus C", "Gavekort", "Webshop", (250, 499.95, 1000)[i % 3], 1 + i % 4,
            f"note {i}"]


TRICKY = [
    None, "", " ", "  padded  ", "\u00a0nbsp\u00a0", "zero\u200bwidth", "\ufeffbom", "A\u030a decomposed",
    "Åse Ødegaard", "ｆｕｌｌｗｉｄｔｈ", "'=SUM(A1)", "'+4512345678", "'hej", "''=x", "#N/A", "#DIV/0!",
    "0800", "800", "12345678", "+45 12 34 56 78", "0045 12 34 56 78", "4512345678", "+46 8 123 456 78",
    "4,51235E+09", "8E+03", "1.234,50", "1,234.50", "1.000", "250,-", "kr. 99", "2 stk", "2,5", "tusind",
    "MAILTO:X@Example.COM?subject=hi", "a@@b.dk", "trailing@dot.dk.", "UPPER@EXAMPLE.COM", " spaced@example.com ",
    "NA", "None", "x" * 5000, "line\nbreak",
    0, 1, -5, 800, 12345678, 4512345678, 1e20, 0.1, 499.95, 1234.5, 2.0, 2.5, True, False,
    dt.date(2024, 3, 5), dt.datetime(2024, 3, 5, 14, 30), dt.time(12, 30),
]


def write_xlsx(path: Path, rows: list[list]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Modtagere"
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def snapshot(sheet: Sheet):
    def typed(mapping):
        return [(k, type(v).__name__, repr(v)) for k, v in mapping.items()]

    return (sheet.header_row, sheet.headers, sheet.column_map, sheet.column_letters, sheet.notes, sheet.warnings,
            [(r.number, typed(r.fields), typed(r.original), [repr(p) for p in r.problems]) for r in sheet.rows])


def both_ways(path: Path, monkeypatch: pytest.MonkeyPatch, **options):
    """The sheet read on the fast paths, in blocks of 3 rows (any odd cell lands in some blocks
    and not in others), and read cell by cell in one block: they must be the same."""
    with monkeypatch.context() as m:
        m.setattr(rows_module, "_BLOCK_ROWS", 3)
        fast = snapshot(read_sheet(path, ReadOptions(**options)))
    with monkeypatch.context() as m:
        m.setattr(columns_module, "_FAST_PATHS", False)
        m.setattr(rows_module, "_BLOCK_ROWS", 10**9)
        general = snapshot(read_sheet(path, ReadOptions(**options)))
    return fast, general


@pytest.mark.parametrize("engine", ["calamine", "fallback"])
def test_a_plain_sheet_reads_the_same_on_the_fast_paths(tmp_path, monkeypatch, engine):
    if engine == "fallback":
        monkeypatch.setattr(engines_module, "_CALAMINE_ENABLED", False)
    path = write_xlsx(tmp_path / "plain.xlsx", [HEAD] + [plain_row(i) for i in range(60)])
    fast, general = both_ways(path, monkeypatch)
    assert fast == general
    assert len(fast[-1]) == 60 and not any(problems for *_, problems in fast[-1])


@pytest.mark.parametrize("value", TRICKY, ids=[repr(v)[:30] for v in TRICKY])
def test_one_tricky_cell_in_every_column_reads_the_same_on_the_fast_paths(tmp_path, monkeypatch, value):
    rows = [HEAD] + [plain_row(i) for i in range(40)]
    for j in range(len(HEAD)):
        rows[3 + 2 * j][j] = value  # one odd cell per column, each on its own row
    path = write_xlsx(tmp_path / "tricky.xlsx", rows)
    fast, general = both_ways(path, monkeypatch)
    assert fast == general


def test_a_sheet_full_of_tricky_cells_reads_the_same_on_the_fast_paths_with_either_engine(tmp_path, monkeypatch):
    rows = [HEAD + ["Land"]]
    for i, value in enumerate(TRICKY):
        row = plain_row(i) + [("DK", "SE", None, " dk ", "NA")[i % 5]]
        row[i % len(HEAD)] = value
        row[(i + 5) % len(HEAD)] = value
        rows.append(row)
    path = write_xlsx(tmp_path / "all.xlsx", rows)
    fast, general = both_ways(path, monkeypatch)
    assert fast == general
    monkeypatch.setattr(engines_module, "_CALAMINE_ENABLED", False)
    fast, general = both_ways(path, monkeypatch)  # openpyxl reads some odd cells its own way: compare within it
    assert fast == general


def test_a_csv_with_tricky_text_reads_the_same_on_the_fast_paths(tmp_path, monkeypatch):
    texts = [v for v in TRICKY if isinstance(v, str) and "\n" not in v]
    lines = [";".join(HEAD)]
    for i in range(40):
        lines.append(";".join(str(v) for v in plain_row(i)))
    for i, value in enumerate(texts):
        row = [str(v) for v in plain_row(100 + i)]
        row[i % len(HEAD)] = value.replace(";", ",")
        lines.append(";".join(row))
    path = tmp_path / "tricky.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fast, general = both_ways(path, monkeypatch)
    assert fast == general


def test_phone_text_takes_the_fast_path_only_for_danish_rows(tmp_path, monkeypatch):
    rows = [["Navn", "E-mail", "Telefon", "Land"],
            ["A", "a@example.com", "+45 12 34 56 78", "DK"],
            ["B", "b@example.com", "12 34 56 78", None],
            ["C", "c@example.com", "0045-12.34.56.78", "dk"],
            ["D", "d@example.com", "12 34 56 78", "SE"],
            ["E", "e@example.com", "+46 8 123 456 78", "SE"],
            ["F", "f@example.com", "+45 12 34 56 78", "XX"]]
    path = write_xlsx(tmp_path / "phones.xlsx", rows)
    fast, general = both_ways(path, monkeypatch)
    assert fast == general
    phones = {r.number: r.fields.get("phone") for r in read_sheet(path).rows}
    assert phones[2] == phones[3] == phones[4] == "+4512345678"
    assert phones[6] == "+46812345678" and phones[7] == "+4512345678"


def test_amount_convention_still_decides_text_amounts_next_to_numbers(tmp_path, monkeypatch):
    rows = [["Navn", "E-mail", "Beløb"], ["A", "a@example.com", 250], ["B", "b@example.com", "1.000"],
            ["C", "c@example.com", "1.234,50"], ["D", "d@example.com", 499.95]]
    path = write_xlsx(tmp_path / "amounts.xlsx", rows)
    fast, general = both_ways(path, monkeypatch)
    assert fast == general
    amounts = [r.fields.get("amount") for r in read_sheet(path).rows]
    assert amounts == [Decimal("250"), Decimal("1000"), Decimal("1234.50"), Decimal("499.95")]


def test_original_column_gives_what_the_per_cell_rule_gives():
    cells = [499.95, 499.95, 1.0, -0.0, 0.1, 1e20, float("inf"), 149.5, "", " ", "'=x", "'hej", "tekst", None, True,
             0, 12, Decimal("1.10"), dt.date(2024, 3, 5)]
    expected = [columns_module._original_value(v) if not isinstance(v, float) or not v.is_integer() else int(v)
                for v in cells]
    got = columns_module._original_column(cells)
    assert [(type(v), repr(v)) for v in got] == [(type(v), repr(v)) for v in expected]
    assert got[0] == Decimal("499.95") and got[7] == Decimal("149.5") and got[1] is got[0]


def test_rows_whose_first_cell_is_blank_are_kept_when_another_cell_has_a_value(tmp_path):
    path = tmp_path / "blanks.csv"
    path.write_text("Navn;E-mail;Beløb\n;a@example.com;100\n \t;;\n;;\n\nB;b@example.com;200\n  ;;0\n", encoding="utf-8")
    sheet = read_sheet(path)
    assert [r.number for r in sheet.rows] == [2, 6, 7]


@pytest.mark.parametrize("block", [1, 2, 5, 1024])
def test_block_size_never_changes_the_sheet(tmp_path, monkeypatch, block):
    rows = [HEAD + ["Land"]] + [plain_row(i) + ["DK"] for i in range(30)]
    rows[4][8] = "1.000"  # ambiguous alone; the column's "1.234,50" below makes it Danish
    rows[25][8] = "1.234,50"
    rows[7][4] = "#N/A"
    rows[9] = [None] * len(rows[9])  # a blank row between blocks
    rows[12][2], rows[12][11] = "12 34 56 78", "SE"
    path = write_xlsx(tmp_path / "blocks.xlsx", rows)
    expected = snapshot(read_sheet(path))
    monkeypatch.setattr(rows_module, "_BLOCK_ROWS", block)
    got = snapshot(read_sheet(path))
    assert got == expected
    amounts = {number: fields for number, fields, *_ in got[-1]}
    assert ("amount", "Decimal", "Decimal('1000')") in amounts[5]
