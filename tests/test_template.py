"""The recipient template: layout, dropdowns from the catalogue, formats, help sheet, the CLI, the round trip."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from flexybulk import validate as validation
from flexybulk.cli import cli, main
from flexybulk.client import FlexyboxClient, parse_catalogue
from flexybulk.errors import InputFileError
from flexybulk.model import Catalogue, CatalogueItem, Field, InputRow, Sheet
from flexybulk.sandbox import Sandbox, default_catalogue
from flexybulk.settings import TOKEN_ENV, URL_ENVS
from flexybulk.template import COLUMN_FIELDS, LAST_ROW, dropdown_names, write_template

HEADERS = {
    "da": ["Navn", "E-mail", "Gavekorttype", "Beløb", "Antal", "Afdeling",
           "Telefon", "Adresse", "Postnr", "By", "Land", "Valuta"],
    "en": ["Name", "Email", "Gift certificate type", "Amount", "Quantity", "Department",
           "Phone", "Address", "Postal code", "City", "Country", "Currency"],
}
SHEETS = {"da": ["Modtagere", "Vejledning", "Lister"], "en": ["Recipients", "Help", "Lists"]}
BUILTIN_TYPES = ["Gavekort", "Julegavekort", "Oplevelsesgavekort", "Firmagavekort"]
BUILTIN_DEPARTMENTS = ["Webshop", "København", "Aarhus", "Odense"]
LONG_NAME = "Oplevelsesgavekort til to personer med overnatning, " * 6  # > 255 characters on its own
FORMULA_START = ("=", "+", "-", "@")


def builtin_catalogue() -> Catalogue:
    """The sandbox's catalogue (flexybox-api.md part D), parsed as the client parses it."""
    raw = default_catalogue()
    return Catalogue(tuple(parse_catalogue(raw["types"], "type")), tuple(parse_catalogue(raw["departments"], "department")))


def odd_catalogue() -> Catalogue:
    """Names an inline list would break on, inactive items, repeats and names a sheet cannot hold."""
    types = (
        CatalogueItem("t1", "Gavekort, stor"),
        CatalogueItem("t2", 'Kort "Deluxe"'),
        CatalogueItem("t3", "Udgået kort", active=False),
        CatalogueItem("t4", LONG_NAME),
        CatalogueItem("t5", " gavekort, STOR "),  # the first name again, other case and spaces
        CatalogueItem("t6", "Bad\x01name"),  # a control character: cannot be stored in a cell
        CatalogueItem("t7", "   "),
        CatalogueItem("t8", "=Kampagne"),  # looks like a formula: must stay text
    )
    departments = (
        CatalogueItem(1, "Webshop"),
        CatalogueItem(2, "Lukket afdeling", active=False),
        CatalogueItem(3, "København Ø"),
    )
    return Catalogue(types, departments)


def load(path: Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(path)


def validations(ws) -> dict[str, tuple]:
    """sqref -> (type, operator, formula1, errorStyle, errorTitle, error) of the sheet's data validations."""
    return {str(dv.sqref): (dv.type, dv.operator, dv.formula1, dv.errorStyle, dv.errorTitle, dv.error)
            for dv in ws.data_validations.dataValidation}


def column_of(lang: str, fld: Field) -> str:
    return "ABCDEFGHIJKL"[COLUMN_FIELDS.index(fld)]


# -- the data sheet -------------------------------------------------------------


@pytest.mark.parametrize("lang", ["da", "en"])
def test_layout_headers_freeze_formats_and_no_data_cells(tmp_path, lang):
    path = write_template(tmp_path / "modtagere.xlsx", builtin_catalogue(), lang=lang)
    assert path == tmp_path / "modtagere.xlsx"
    wb = load(path)
    assert wb.sheetnames == SHEETS[lang]
    assert [ws.sheet_state for ws in wb.worksheets] == ["visible", "visible", "hidden"]
    assert wb.active.title == SHEETS[lang][0]

    ws = wb[SHEETS[lang][0]]
    assert [c.value for c in ws[1]] == HEADERS[lang]
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.max_row == 1  # an empty template: nothing below the header, so ws.append writes row 2
    for letter, header in zip("ABCDEFGHIJKL", HEADERS[lang]):
        assert ws.column_dimensions[letter].width >= len(header) + 3
    assert ws.column_dimensions["B"].width >= 30  # emails are long

    # Text format on phone and postal code (P5, P6), amount format on amount: column formats,
    # which Excel and LibreOffice give every cell typed into the column.
    formats = {letter: ws.column_dimensions[letter].number_format for letter in "ABCDEFGHIJKL"}
    assert formats == {"A": "General", "B": "General", "C": "General", "D": "#,##0.00", "E": "General",
                       "F": "General", "G": "@", "H": "General", "I": "@", "J": "General", "K": "General",
                       "L": "General"}
    assert column_of(lang, Field.PHONE) == "G" and column_of(lang, Field.POSTAL_CODE) == "I"
    assert column_of(lang, Field.AMOUNT) == "D"

    # Defaults for country and currency are told in the header cells' comments.
    assert "DK" in ws["K1"].comment.text and "DKK" in ws["L1"].comment.text


@pytest.mark.parametrize("lang", ["da", "en"])
def test_dropdowns_refer_to_the_hidden_lists_and_numbers_are_checked(tmp_path, lang):
    wb = load(write_template(tmp_path / "t.xlsx", builtin_catalogue(), lang=lang))
    data, _, lists_name = SHEETS[lang]
    lists = wb[lists_name]
    assert lists.sheet_state == "hidden"
    assert [c.value for c in lists["A"]][1:] == BUILTIN_TYPES
    assert [c.value for c in lists["B"]][1:] == BUILTIN_DEPARTMENTS

    found = validations(wb[data])
    assert set(found) == {"C2:C10001", "F2:F10001", "E2:E10001", "D2:D10001"}
    assert LAST_ROW == 10_001
    # Stored as Excel stores it (no leading "="); Excel shows =Lister!$A$2:$A$5.
    assert found["C2:C10001"][:4] == ("list", None, f"{lists_name}!$A$2:$A$5", "warning")
    assert found["F2:F10001"][:4] == ("list", None, f"{lists_name}!$B$2:$B$5", "warning")
    assert found["E2:E10001"][:4] == ("whole", "greaterThanOrEqual", "1", "stop")
    assert found["D2:D10001"][:4] == ("decimal", "greaterThan", "0", "stop")
    if lang == "da":
        assert found["E2:E10001"][4:] == ("Ugyldigt antal", "Skriv antallet af gavekort som et helt tal: 1 eller mere.")
        assert found["D2:D10001"][4:] == ("Ugyldigt beløb", "Skriv værdien af ét gavekort som et tal større end 0, fx 500 eller 499,95.")
        assert found["C2:C10001"][4] == "Ukendt gavekorttype"
    else:
        assert found["E2:E10001"][4:] == ("Invalid quantity", "Write the number of gift certificates as a whole number: 1 or more.")
        assert found["D2:D10001"][4:] == ("Invalid amount", "Write the value of one gift certificate as a number greater than 0, e.g. 500 or 499.95.")
        assert found["C2:C10001"][4] == "Unknown gift certificate type"
    for dv in wb[data].data_validations.dataValidation:
        assert dv.showErrorMessage and dv.allow_blank
        assert len(dv.errorTitle) <= 32 and len(dv.error) <= 255  # Excel's limits for the error box


def test_lists_hold_exactly_the_active_names_whatever_they_contain(tmp_path):
    catalogue = odd_catalogue()
    expected_types = ["Gavekort, stor", 'Kort "Deluxe"', LONG_NAME.strip(), "=Kampagne"]
    assert len(",".join(expected_types)) > 255  # too long for an inline list
    assert dropdown_names(catalogue.types) == expected_types
    assert dropdown_names(catalogue.departments) == ["Webshop", "København Ø"]

    wb = load(write_template(tmp_path / "t.xlsx", catalogue))
    lists = wb["Lister"]
    assert [c.value for c in lists["A"]] == ["Gavekorttyper", *expected_types]
    assert [c.value for c in lists["B"] if c.value is not None] == ["Afdelinger", "Webshop", "København Ø"]
    kampagne = lists["A5"]
    assert kampagne.value == "=Kampagne" and kampagne.data_type == "s" and kampagne.quotePrefix
    found = validations(wb["Modtagere"])
    assert found["C2:C10001"][2] == "Lister!$A$2:$A$5"
    assert found["F2:F10001"][2] == "Lister!$B$2:$B$3"
    # The dropdown column is wide enough for ordinary names but not absurdly wide.
    assert wb["Modtagere"].column_dimensions["C"].width == 50


def test_a_list_without_active_names_gets_no_dropdown(tmp_path):
    catalogue = Catalogue((CatalogueItem("t1", "Udgået", active=False),), (CatalogueItem(1, "Webshop"),))
    wb = load(write_template(tmp_path / "t.xlsx", catalogue))
    assert [c.value for c in wb["Lister"]["A"] if c.value is not None] == ["Gavekorttyper"]
    found = validations(wb["Modtagere"])
    assert "C2:C10001" not in found
    assert found["F2:F10001"][2] == "Lister!$B$2:$B$2"
    assert wb["Vejledning"]["D4"].value == "Gavekort"  # the example falls back to a plain name


@pytest.mark.parametrize("lang", ["da", "en"])
def test_no_formula_cells_and_no_formula_like_text(tmp_path, lang):
    wb = load(write_template(tmp_path / "t.xlsx", odd_catalogue(), lang=lang))
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate}"
                if isinstance(cell.value, str) and cell.value.startswith(FORMULA_START):
                    # Only a catalogue name may, and it is stored as text with Excel's quote prefix.
                    assert (ws.title, cell.value, cell.quotePrefix) == (SHEETS[lang][2], "=Kampagne", True)


# -- the help sheet ----------------------------------------------------------------


def test_danish_help_sheet_rows(tmp_path):
    wb = load(write_template(tmp_path / "modtagere.xlsx", builtin_catalogue(), lang="da"))
    rows = list(wb["Vejledning"].iter_rows(values_only=True))
    assert rows[0] == ("Kolonne", "Påkrævet?", "Hvad skal der stå", "Eksempel", "Standardværdi")
    table = [(r[0], r[1], r[3], r[4]) for r in rows[1:13]]
    assert table == [
        ("A: Navn", "Påkrævet", "Søren Ærø Østergård", None),
        ("B: E-mail", "Påkrævet", "soren@example.com", None),
        ("C: Gavekorttype", "Påkrævet", "Gavekort", None),
        ("D: Beløb", "Påkrævet", "499,95", None),
        ("E: Antal", "Valgfri", "2", "1"),
        ("F: Afdeling", "Påkrævet", "Webshop", None),
        ("G: Telefon", "Valgfri", "12 34 56 78", None),
        ("H: Adresse", "Valgfri", "Åboulevarden 12, 2. th.", None),
        ("I: Postnr", "Valgfri", "0800", None),
        ("J: By", "Valgfri", "Høje Taastrup", None),
        ("K: Land", "Valgfri", "DK", "DK"),
        ("L: Valuta", "Valgfri", "DKK", "DKK"),
    ]
    what = {r[0].split(": ")[1]: r[2] for r in rows[1:13]}
    assert all(what.values())
    assert "formateret som tekst" in what["Telefon"] and "formateret som tekst" in what["Postnr"]
    assert "--department" in what["Afdeling"]
    assert rows[13] == (None,) * 5
    notes = [r[0] for r in rows[14:]]
    assert notes[0] == "Sådan gør du"
    assert "Prøv filen, før der udstedes noget (en prøvekørsel, der udsteder intet): flexybulk validate modtagere.xlsx" in notes
    assert any(n.startswith("Telefon og Postnr skal forblive tekst") for n in notes)


def test_english_help_sheet_rows_and_a_file_name_with_spaces(tmp_path):
    wb = load(write_template(tmp_path / "jul 2025.xlsx", builtin_catalogue(), lang="en"))
    rows = list(wb["Help"].iter_rows(values_only=True))
    assert rows[0] == ("Column", "Required?", "What to write", "Example", "Default")
    assert [(r[0], r[1], r[4]) for r in rows[1:13]] == [
        ("A: Name", "Required", None), ("B: Email", "Required", None), ("C: Gift certificate type", "Required", None),
        ("D: Amount", "Required", None), ("E: Quantity", "Optional", "1"), ("F: Department", "Required", None),
        ("G: Phone", "Optional", None), ("H: Address", "Optional", None), ("I: Postal code", "Optional", None),
        ("J: City", "Optional", None), ("K: Country", "Optional", "DK"), ("L: Currency", "Optional", "DKK"),
    ]
    assert rows[4][3] == "499.95" and rows[9][3] == "0800"
    notes = [r[0] for r in rows[14:]]
    assert 'Check the file before anything is issued (a dry run that issues nothing): flexybulk validate "jul 2025.xlsx"' in notes
    assert any(n.startswith("Phone and Postal code must stay text") for n in notes)


@pytest.mark.parametrize("lang", ["da", "en"])
def test_only_the_data_sheet_has_cells_that_look_like_a_header(tmp_path, lang):
    """A reader choosing the sheet by its header row (pitfalls P13) must find one candidate only."""
    def key(text):
        return "".join(ch for ch in text.casefold() if ch not in "-_ .:*")

    header_keys = {key(h) for names in HEADERS.values() for h in names}
    wb = load(write_template(tmp_path / "t.xlsx", builtin_catalogue(), lang=lang))
    for ws in wb.worksheets[1:]:
        texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
        assert [t for t in texts if key(t) in header_keys] == [], ws.title


def test_help_texts_agree_with_the_validator():
    """The limits and defaults the help sheet states are the validator's."""
    assert validation.MAX_AMOUNT == Decimal("100000") and validation.MAX_QUANTITY == 1000
    assert (validation.DEFAULT_QUANTITY, validation.DEFAULT_COUNTRY, validation.DEFAULT_CURRENCY) == (1, "DK", "DKK")


def test_required_columns_are_exactly_what_the_validator_requires(tmp_path):
    """A row with only the columns the help sheet calls required is valid; leaving any one out is not."""
    wb = load(write_template(tmp_path / "t.xlsx", builtin_catalogue()))
    required = [COLUMN_FIELDS[i] for i, r in enumerate(wb["Vejledning"].iter_rows(min_row=2, max_row=13, values_only=True))
                if r[1] == "Påkrævet"]
    assert required == [Field.NAME, Field.EMAIL, Field.TYPE, Field.AMOUNT, Field.DEPARTMENT]
    values = {Field.NAME: "Søren Ærø", Field.EMAIL: "soren@example.com", Field.TYPE: "Julegavekort",
              Field.AMOUNT: Decimal("250.50"), Field.DEPARTMENT: "København"}

    def check(fields: dict) -> list:
        headers = HEADERS["da"]
        sheet = Sheet(path=tmp_path / "t.xlsx", format="xlsx", sheet_name="Modtagere", header_row=1, headers=headers,
                      column_map={f.value: h for f, h in zip(COLUMN_FIELDS, headers)},
                      column_letters={h: "ABCDEFGHIJKL"[i] for i, h in enumerate(headers)},
                      rows=[InputRow(2, {f.value: v for f, v in fields.items()})])
        return validation.validate(sheet, builtin_catalogue()).checks[0].problems

    assert check(values) == []
    for fld in required:
        problems = check({f: v for f, v in values.items() if f != fld})
        assert [p.column for p in problems] == [HEADERS["da"][COLUMN_FIELDS.index(fld)]]


# -- writing the file -------------------------------------------------------------------


def test_replaces_an_existing_file_atomically_with_ordinary_permissions(tmp_path):
    target = tmp_path / "modtagere.xlsx"
    target.write_bytes(b"old")
    old_umask = os.umask(0o022)
    try:
        write_template(target, builtin_catalogue())
    finally:
        os.umask(old_umask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["modtagere.xlsx"]  # no temporary file left
    assert load(target).sheetnames == SHEETS["da"]
    if os.name == "posix":
        assert stat.S_IMODE(target.stat().st_mode) == 0o644  # the umask decides, as for any new file


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "modtagere.xlsx"
    target.write_bytes(b"old")

    def disk_full(self, fh):
        fh.write(b"PK\x03\x04 half a workbook")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(openpyxl.Workbook, "save", disk_full)
    with pytest.raises(InputFileError) as err:
        write_template(target, builtin_catalogue())
    assert str(err.value) == (f"Cannot write {target}: No space left on device. "
                              "Close it if it is open in a spreadsheet program, or choose another place.")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["modtagere.xlsx"]


def test_a_missing_folder_is_an_input_file_error(tmp_path):
    target = tmp_path / "nowhere" / "modtagere.xlsx"
    with pytest.raises(InputFileError) as err:
        write_template(target, builtin_catalogue())
    assert str(err.value) == (f"Cannot write {target}: No such file or directory. "
                              "Check that the folder exists and that you may write to it, or choose another place.")


def test_an_unknown_language_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="lang must be one of da, en, not 'de'"):
        write_template(tmp_path / "t.xlsx", builtin_catalogue(), lang="de")
    assert list(tmp_path.iterdir()) == []


# -- the command --------------------------------------------------------------------------


@pytest.fixture
def runner() -> CliRunner:
    assert list(cli.commands).count("template") == 1
    return CliRunner()


def test_cli_writes_the_template_from_the_sandbox(runner, tmp_path):
    out = tmp_path / "modtagere.xlsx"
    result = runner.invoke(cli, ["template", str(out), "--sandbox"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Template: {out}",
        "Dropdowns: 4 gift certificate types, 4 departments (from sandbox).",
        f"Fill it in, then check it (issues nothing): flexybulk validate {out}",
    ]
    wb = load(out)
    assert [c.value for c in wb["Lister"]["A"]][1:] == BUILTIN_TYPES
    assert [c.value for c in wb["Lister"]["B"]][1:] == BUILTIN_DEPARTMENTS


def test_cli_takes_the_active_names_from_a_live_catalogue(runner, tmp_path, monkeypatch):
    """Through HTTP, as a user with FLEXYBOX_* set: IsActive false is left out; no departments, no dropdown."""
    catalogue = {
        "types": [{"Id": "t1", "Name": "Gavekort, stor", "IsActive": True},
                  {"Id": "t2", "Name": "Udgået", "IsActive": False},
                  {"Id": "t3", "Name": 'Kort "Deluxe"'}],
        "departments": [{"Id": 1, "Name": "Lukket", "IsActive": False}],
    }
    with Sandbox(catalogue=catalogue) as sb:
        monkeypatch.setenv(TOKEN_ENV, sb.token)
        for var in URL_ENVS.values():
            monkeypatch.setenv(var, sb.url)
        out = tmp_path / "modtagere.xlsx"
        result = runner.invoke(cli, ["template", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Dropdowns: 2 gift certificate types, 0 departments (from {sb.url})." in result.output.splitlines()
    assert "Warning: Flexybox lists no active departments: the 'Afdeling' column has no dropdown." in result.output
    wb = load(out)
    assert [c.value for c in wb["Lister"]["A"]] == ["Gavekorttyper", "Gavekort, stor", 'Kort "Deluxe"']
    assert set(validations(wb["Modtagere"])) == {"C2:C10001", "E2:E10001", "D2:D10001"}


def test_cli_english_and_overwriting(runner, tmp_path, capsys):
    out = tmp_path / "recipients.xlsx"
    out.write_bytes(b"a filled-in sheet")
    # Through main(): the one error boundary turns the refusal into a message and exit code 2.
    assert main(["template", str(out), "--lang", "en", "--sandbox"]) == 2
    assert capsys.readouterr().err == f"Error: {out} exists already. Choose another name, or add --force to overwrite it.\n"
    assert out.read_bytes() == b"a filled-in sheet"
    result = runner.invoke(cli, ["template", str(out), "--lang", "EN", "--sandbox", "--force"])
    assert result.exit_code == 0, result.output
    assert load(out).sheetnames == SHEETS["en"]


def test_cli_refuses_a_name_that_is_not_xlsx(runner, tmp_path, capsys):
    assert main(["template", str(tmp_path / "modtagere.csv"), "--sandbox"]) == 2
    assert capsys.readouterr().err == "Error: modtagere.csv: the template is an Excel workbook; give it a name ending in .xlsx.\n"
    assert list(tmp_path.iterdir()) == []


def test_cli_help_has_an_example(runner):
    result = runner.invoke(cli, ["template", "--help"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "  Examples:" in lines
    assert "    flexybulk template modtagere.xlsx --sandbox            # try it with the sandbox's catalogue" in lines
    assert "--lang [da|en]" in result.output and "--force" in result.output


def test_importing_the_module_does_not_load_openpyxl():
    """cli.py imports this module at start-up; the other commands must not pay for openpyxl."""
    code = "import sys, flexybulk.template; sys.exit('openpyxl' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1]).returncode == 0


# -- the round trip ------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["da", "en"])
def test_a_template_filled_in_by_a_script_validates_cleanly(runner, tmp_path, settings, lang):
    """A template written by `flexybulk template --sandbox` and filled in by a script validates cleanly."""
    sheet_module = pytest.importorskip("flexybulk.reading")
    out = tmp_path / "kampagne.xlsx"
    assert runner.invoke(cli, ["template", str(out), "--sandbox", "--lang", lang]).exit_code == 0

    wb = openpyxl.load_workbook(out)
    data, _, lists_name = SHEETS[lang]
    types = [c.value for c in wb[lists_name]["A"]][1:]
    departments = [c.value for c in wb[lists_name]["B"]][1:]
    ws = wb[data]
    # Name, Email, Type, Amount, Quantity, Department, Phone, Address, Postal code, City, Country, Currency
    ws.append(["Søren Ærø Østergård", "soren@example.com", types[1], 250.5, 2, departments[1],
               "+4512345678", "Åboulevarden 12, 2. th.", "0800", "København K", None, None])
    ws.append(["Åse Blåbær", "aase@example.com", types[0], 500, 1, departments[3],
               None, None, "5000", "Odense C", "DK", "DKK"])
    wb.save(out)

    sheet = sheet_module.read_sheet(out, sheet_module.ReadOptions())
    assert sheet.sheet_name == data  # not the help sheet, not the hidden lists
    assert sheet.warnings == []
    assert sheet.headers == HEADERS[lang]
    assert [r.number for r in sheet.rows] == [2, 3]
    first = sheet.rows[0].fields
    assert first["postal_code"] == "0800"
    assert first["amount"] == Decimal("250.50") and isinstance(first["amount"], Decimal)
    assert first["quantity"] == 2
    assert first["name"] == "Søren Ærø Østergård"

    with FlexyboxClient(settings) as client:
        catalogue = client.get_catalogue()
    result = validation.validate(sheet, catalogue)
    assert result.messages() == [] and result.warning_messages() == []
    assert [c.problems for c in result.checks] == [[], []]
    orders = [c.order for c in result.checks]
    assert [(o.row, o.type.name, o.department.name, o.price, o.quantity, o.postal_code, o.country, o.currency)
            for o in orders] == [
        (2, "Julegavekort", "København", Decimal("250.50"), 2, "0800", "DK", "DKK"),
        (3, "Gavekort", "Odense", Decimal("500"), 1, "5000", "DK", "DKK"),
    ]
    assert orders[0].phone == "+4512345678"
