"""Cell fixes (flexybulk.fixes): typed text parsed as the reader parses the same text in a file, for every format."""

from __future__ import annotations

import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from conftest import REPO
from flexybulk import batches
from flexybulk.errors import ConfigError
from flexybulk.fixes import CellFix, apply_fixes, canonical_json, fixed_identity, load_fixes, save_fixes
from flexybulk.sandbox import default_catalogue
from flexybulk.validate import validate
from flexybulk.answers import parse_catalogue
from flexybulk.model import Catalogue

CORPUS = REPO / "tests" / "corpus"
SAMPLES = REPO / "samples"
FORMATS = {
    "xlsx": SAMPLES / "kampagne.xlsx",
    "ods": CORPUS / "p20-kampagne-libreoffice.ods",
    "xls": CORPUS / "p20-kampagne-libreoffice.xls",
    "csv": SAMPLES / "firmagaver.csv",
}
TYPED = {"E-mail": "  Ny.Adresse@Example.COM ", "Beløb": "1.234,50", "Antal": "3 stk"}


def _read(path: Path) -> batches.Input:
    return batches.read_input(path, batches.ReadRequest(), command="validate")


def _catalogue() -> Catalogue:
    raw = default_catalogue()
    return Catalogue(tuple(parse_catalogue(raw["types"], "types")), tuple(parse_catalogue(raw["departments"], "departments")))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_typed_text_is_parsed_as_the_same_text_in_the_file(fmt, tmp_path):
    source = _read(FORMATS[fmt])
    number = source.sheet.rows[0].number
    fixed = apply_fixes(source, [CellFix(number, h, text) for h, text in TYPED.items()])
    row = fixed.sheet.rows[0]
    assert row.fields["email"] == "ny.adresse@example.com"
    assert row.fields["amount"] == Decimal("1234.50")
    assert row.fields["quantity"] == 3
    # The result sheet writes back what was typed in a text column (CSV), the number read in a number column (finding 17).
    assert row.original["Beløb"] == ("1.234,50" if fmt == "csv" else Decimal("1234.50"))
    assert row.original["Antal"] == ("3 stk" if fmt == "csv" else 3)
    assert row.original["E-mail"] == "  Ny.Adresse@Example.COM "
    assert source.sheet.rows[0].fields.get("amount") != Decimal("1234.50")  # the input as read is unchanged
    assert fixed.sheet.rows[1:] == source.sheet.rows[1:]

    # The same text typed into the file and read by the reader gives the same fields.
    csv = tmp_path / "typed.csv"
    headers = source.sheet.headers
    line = {**{h: ("" if v is None else str(v)) for h, v in source.sheet.rows[0].original.items()}, **TYPED}
    csv.write_text(";".join(headers) + "\n" + ";".join(line[h].replace(";", ",") for h in headers) + "\n", encoding="utf-8")
    assert _read(csv).sheet.rows[0].fields == row.fields


def test_a_fix_removes_the_cells_problem_and_a_bad_fix_is_a_problem_on_that_cell():
    source = _read(SAMPLES / "fejl.xlsx")
    catalogue = _catalogue()
    before = {c.row.number: c for c in validate(source.sheet, catalogue).checks}
    assert not before[4].valid and before[4].problems[0].column == "E-mail"
    assert not before[12].valid and before[12].problems[0].column == "Telefon"  # 4,51235E+09: shortened by Excel
    fixed = apply_fixes(source, [CellFix(4, "E-mail", "forkert@example.com"), CellFix(12, "Telefon", "20 12 34 56"),
                                 CellFix(7, "Beløb", "ti kroner")])
    after = {c.row.number: c for c in validate(fixed.sheet, catalogue).checks}
    assert after[4].valid and after[4].order.email == "forkert@example.com"
    assert after[12].valid and after[12].order.phone == "+4520123456"
    assert [(p.column, p.column_letter, p.value) for p in after[7].problems] == [("Beløb", "I", "ti kroner")]
    assert "is not an amount" in after[7].problems[0].message


def test_the_country_is_parsed_first_and_the_phone_follows_it():
    source = _read(SAMPLES / "firmagaver.csv")
    sheet = source.sheet
    assert "Land" in sheet.headers and "Telefon" not in sheet.headers
    fixed = apply_fixes(source, [CellFix(2, "Land", " se ")])
    assert fixed.sheet.rows[0].fields["country"] == "SE"


def test_the_fixed_inputs_identity_differs_from_the_file_and_is_stable(tmp_path):
    source = _read(SAMPLES / "kampagne.xlsx")
    file_sha = hashlib.sha256((SAMPLES / "kampagne.xlsx").read_bytes()).hexdigest()
    assert source.sheet.sha256 == file_sha
    a, b = CellFix(2, "Beløb", "600"), CellFix(3, "E-mail", "x@example.com")
    fixed = apply_fixes(source, [a, b])
    assert fixed.sheet.sha256 not in ("", file_sha)
    assert fixed.sheet.sha256 == fixed_identity(file_sha, [b, a])  # the order of the fixes does not matter
    expected = hashlib.sha256(("flexybulk-fixes-1\n" + file_sha + "\n" + canonical_json([a, b])).encode()).hexdigest()
    assert fixed.sheet.sha256 == expected
    assert canonical_json([a, b]) == '[[2,"Beløb","600"],[3,"E-mail","x@example.com"]]'
    # The last fix of a cell wins, and an earlier text of it does not count.
    assert fixed_identity(file_sha, [CellFix(2, "Beløb", "1"), a, b]) == fixed.sheet.sha256
    assert fixed_identity(file_sha, []) == file_sha
    # Saved and loaded (a restarted server), the same input with the same identity.
    save_fixes(tmp_path / "fixes.json", [CellFix(2, "Beløb", "1"), a, b])
    assert (tmp_path / "fixes.json").stat().st_mode & 0o077 == 0
    loaded = load_fixes(tmp_path / "fixes.json")
    assert loaded == [a, b]
    again = apply_fixes(_read(SAMPLES / "kampagne.xlsx"), loaded)
    assert again.sheet.sha256 == fixed.sheet.sha256
    assert [r.fields for r in again.sheet.rows] == [r.fields for r in fixed.sheet.rows]


def test_a_fix_naming_no_such_row_or_column_is_refused():
    source = _read(SAMPLES / "kampagne.xlsx")
    with pytest.raises(ConfigError, match="no row 99"):
        apply_fixes(source, [CellFix(99, "Beløb", "1")])
    with pytest.raises(ConfigError, match="no column 'Pris'"):
        apply_fixes(source, [CellFix(2, "Pris", "1")])


def test_a_corrupt_fixes_file_is_a_clear_error(tmp_path):
    (tmp_path / "fixes.json").write_text('{"version": "other", "fixes": []}', encoding="utf-8")
    with pytest.raises(ConfigError, match="not a cell fixes file"):
        load_fixes(tmp_path / "fixes.json")
    assert load_fixes(tmp_path / "absent.json") == []


def test_first_and_last_name_columns_rebuild_the_name(tmp_path):
    path = tmp_path / "mailchimp.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["First Name", "Last Name", "Email", "Type", "Amount", "Department"])
    ws.append(["Anna", "Hansen", "anna@example.com", "Gavekort", 100, "Webshop"])
    wb.save(path)
    fixed = apply_fixes(_read(path), [CellFix(2, "Last Name", "Berg")])
    assert fixed.sheet.rows[0].fields["name"] == "Anna Berg"
