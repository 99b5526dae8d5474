"""Write an empty recipient sheet (XLSX) for marketing staff to fill in: ``flexybulk template``.

The template is built so that what people type survives until ``flexybulk
validate`` reads it:

- sheet 1 (``Modtagere`` / ``Recipients``): one bold, frozen header row with
  the column names the reader recognises (pitfalls P15), in Danish or English;
- dropdowns for the gift certificate type and the department, filled from the
  catalogue's *active* names. The names sit on a hidden helper sheet
  (``Lister`` / ``Lists``) and the validation refers to that range, because an
  inline list breaks on a comma or a quote in a name and Excel caps it at 255
  characters;
- a whole-number check (>= 1) on the quantity and a decimal check (> 0) on the
  amount, with an error message in the sheet's language;
- the phone and postal code columns formatted as text (``@``), so Excel keeps
  ``0800`` and does not turn ``4512345678`` into ``4,51E+09`` (pitfalls P5, P6);
  the amount column formatted ``#,##0.00``;
- sheet 2 (``Vejledning`` / ``Help``): per column whether it is required, what
  to write, an example and the default, plus the dry run command.

Formats are column formats (the ``<col style>`` of the sheet), not styled
empty cells: Excel and LibreOffice apply them to every cell typed into the
column, while the sheet keeps no used cells below the header, so a script's
``ws.append`` still writes to row 2 and a reader sees no 10,000 blank rows
(pitfalls P10).

No cell holds a formula (pitfalls P17): every text is written as an explicit
string. The only formulas are the data validations' references to the lists.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .errors import InputFileError
from .model import Catalogue, CatalogueItem, Field

if TYPE_CHECKING:
    import openpyxl

# openpyxl is imported where a workbook is built, not here: importing this module (the CLI's
# template command does) must not make every other command pay for openpyxl.

__all__ = [
    "COLUMN_FIELDS",
    "FIRST_ROW",
    "HEADERS",
    "LANGUAGES",
    "LAST_ROW",
    "SHEET_NAMES",
    "dropdown_names",
    "is_template_lists",
    "write_template",
]

LANGUAGES = ("da", "en")

FIRST_ROW = 2  # the first data row (row 1 is the header)
LAST_ROW = 10_001  # the last row the data validations cover: 10,000 recipients

TEXT_FORMAT = "@"
AMOUNT_FORMAT = "#,##0.00"

# The columns in sheet order, as canonical fields (model.Field).
COLUMN_FIELDS: tuple[Field, ...] = (
    Field.NAME, Field.EMAIL, Field.TYPE, Field.AMOUNT, Field.QUANTITY, Field.DEPARTMENT,
    Field.PHONE, Field.ADDRESS, Field.POSTAL_CODE, Field.CITY, Field.COUNTRY, Field.CURRENCY,
)

HEADERS: dict[str, tuple[str, ...]] = {
    "da": ("Navn", "E-mail", "Gavekorttype", "Beløb", "Antal", "Afdeling",
           "Telefon", "Adresse", "Postnr", "By", "Land", "Valuta"),
    "en": ("Name", "Email", "Gift certificate type", "Amount", "Quantity", "Department",
           "Phone", "Address", "Postal code", "City", "Country", "Currency"),
}

# data sheet, help sheet, hidden lists sheet
SHEET_NAMES: dict[str, tuple[str, str, str]] = {
    "da": ("Modtagere", "Vejledning", "Lister"),
    "en": ("Recipients", "Help", "Lists"),
}

_WIDTHS = {  # characters; the two list columns widen to their longest name (up to _MAX_LIST_WIDTH)
    Field.NAME: 28, Field.EMAIL: 32, Field.TYPE: 22, Field.AMOUNT: 12, Field.QUANTITY: 9,
    Field.DEPARTMENT: 18, Field.PHONE: 16, Field.ADDRESS: 30, Field.POSTAL_CODE: 11,
    Field.CITY: 18, Field.COUNTRY: 9, Field.CURRENCY: 9,
}
_MAX_LIST_WIDTH = 50
_PLAIN_SHEET_NAME = re.compile(r"[A-Za-z_][A-Za-z_]*")  # needs no quotes in a reference
_COLUMN_FORMATS = {Field.PHONE: TEXT_FORMAT, Field.POSTAL_CODE: TEXT_FORMAT, Field.AMOUNT: AMOUNT_FORMAT}


@dataclass(frozen=True)
class _Help:
    """One line of the help sheet: is the column required, what to write, an example, the default."""

    required: bool
    what: str
    example: str
    default: str | None = None


@dataclass(frozen=True)
class _Texts:
    """Every text of the template in one language."""

    help_headers: tuple[str, str, str, str, str]
    required: str
    optional: str
    columns: dict[Field, _Help]
    notes: tuple[str, ...]  # below the column table; "{file}" becomes the template's file name
    list_headers: tuple[str, str]
    header_comments: dict[Field, str]
    list_error: dict[Field, tuple[str, str]]  # title (<= 32 characters), message (<= 255)
    amount_error: tuple[str, str]
    quantity_error: tuple[str, str]


# The limits stated here are validate.py's (MAX_AMOUNT, MAX_QUANTITY, DEFAULT_* there);
# tests/test_template.py checks that the texts and those constants agree.
_DA = _Texts(
    help_headers=("Kolonne", "Påkrævet?", "Hvad skal der stå", "Eksempel", "Standardværdi"),
    required="Påkrævet",
    optional="Valgfri",
    columns={
        Field.NAME: _Help(True, "Modtagerens fulde navn.", "Søren Ærø Østergård"),
        Field.EMAIL: _Help(True, "Modtagerens e-mailadresse.", "soren@example.com"),
        Field.TYPE: _Help(True, "Vælg gavekorttypen på listen i cellen. Et id fra Flexybox virker også.", "{type}"),
        Field.AMOUNT: _Help(True, "Værdien af ét gavekort i rækkens valuta (kroner for DKK): et tal større end 0 "
                                  "med højst to decimaler og højst 100.000. Skriv kun tallet, uden kr.", "499,95"),
        Field.QUANTITY: _Help(False, "Antal gavekort til modtageren: et helt tal fra 1 til 1.000.", "2", "1"),
        Field.DEPARTMENT: _Help(True, "Vælg afdelingen på listen i cellen. Et id fra Flexybox virker også. Kan stå tom, "
                                      "hvis du giver alle rækker samme afdeling med --department, når du kører flexybulk.",
                                "{department}"),
        Field.PHONE: _Help(False, "Modtagerens telefonnummer, gerne med landekode. Kolonnen er formateret som tekst; "
                                  "lad den blive det, ellers bliver lange numre til fx 4,51E+09.", "12 34 56 78"),
        Field.ADDRESS: _Help(False, "Vej, husnummer og etage.", "Åboulevarden 12, 2. th."),
        Field.POSTAL_CODE: _Help(False, "Postnummeret. Kolonnen er formateret som tekst, så et 0 foran bliver stående; "
                                        "lad den blive det.", "0800"),
        Field.CITY: _Help(False, "Bynavnet.", "Høje Taastrup"),
        Field.COUNTRY: _Help(False, "Landekode med to bogstaver, fx DK, SE eller NO. Tom celle betyder DK.", "DK", "DK"),
        Field.CURRENCY: _Help(False, "Valutakode med tre bogstaver, fx DKK eller EUR. Tom celle betyder DKK.", "DKK", "DKK"),
    },
    notes=(
        "Sådan gør du",
        "Skriv én modtager pr. række, fra række 2. Ret ikke overskrifterne i række 1.",
        "Telefon og Postnr skal forblive tekst: skift ikke kolonnernes format til Tal eller Standard, "
        "ellers forsvinder et 0 foran (0800 bliver 800), og lange numre bliver til 4,51E+09.",
        "Prøv filen, før der udstedes noget (en prøvekørsel, der udsteder intet): flexybulk validate {file}",
        "Listerne over gavekorttyper og afdelinger kommer fra Flexybox, da skabelonen blev lavet. "
        "Lav en ny skabelon, hvis de er ændret: flexybulk template {file}",
    ),
    list_headers=("Gavekorttyper", "Afdelinger"),
    header_comments={
        Field.COUNTRY: "Tom celle betyder DK (Danmark). Skriv landekoden med to bogstaver, fx SE.",
        Field.CURRENCY: "Tom celle betyder DKK (danske kroner). Skriv valutakoden med tre bogstaver, fx EUR.",
        Field.PHONE: "Formateret som tekst, så nummeret bevares præcis som skrevet.",
        Field.POSTAL_CODE: "Formateret som tekst, så et 0 foran bliver stående (0800).",
    },
    list_error={
        Field.TYPE: ("Ukendt gavekorttype", "Vælg en gavekorttype på listen. Har du skrevet et id fra Flexybox, "
                                            "så tryk Ja for at beholde det."),
        Field.DEPARTMENT: ("Ukendt afdeling", "Vælg en afdeling på listen. Har du skrevet et id fra Flexybox, "
                                              "så tryk Ja for at beholde det."),
    },
    amount_error=("Ugyldigt beløb", "Skriv værdien af ét gavekort som et tal større end 0, fx 500 eller 499,95."),
    quantity_error=("Ugyldigt antal", "Skriv antallet af gavekort som et helt tal: 1 eller mere."),
)

_EN = _Texts(
    help_headers=("Column", "Required?", "What to write", "Example", "Default"),
    required="Required",
    optional="Optional",
    columns={
        Field.NAME: _Help(True, "The recipient's full name.", "Søren Ærø Østergård"),
        Field.EMAIL: _Help(True, "The recipient's email address.", "soren@example.com"),
        Field.TYPE: _Help(True, "Choose the gift certificate type from the list in the cell. An id from Flexybox works too.",
                          "{type}"),
        Field.AMOUNT: _Help(True, "The value of one gift certificate in the row's currency (kroner for DKK): a number "
                                  "greater than 0 with at most two decimals and at most 100,000. Write the number only, "
                                  "without kr.", "499.95"),
        Field.QUANTITY: _Help(False, "How many gift certificates the recipient gets: a whole number from 1 to 1,000.",
                              "2", "1"),
        Field.DEPARTMENT: _Help(True, "Choose the department from the list in the cell. An id from Flexybox works too. "
                                      "May be left empty if you give every row the same department with --department "
                                      "when you run flexybulk.", "{department}"),
        Field.PHONE: _Help(False, "The recipient's phone number, preferably with the country code. The column is "
                                  "formatted as text; keep it so, or long numbers turn into 4.51E+09.", "12 34 56 78"),
        Field.ADDRESS: _Help(False, "Street, number and floor.", "Åboulevarden 12, 2. th."),
        Field.POSTAL_CODE: _Help(False, "The postal code. The column is formatted as text, so a leading 0 stays; "
                                        "keep it so.", "0800"),
        Field.CITY: _Help(False, "The city.", "Høje Taastrup"),
        Field.COUNTRY: _Help(False, "Two-letter country code, e.g. DK, SE or NO. An empty cell means DK.", "DK", "DK"),
        Field.CURRENCY: _Help(False, "Three-letter currency code, e.g. DKK or EUR. An empty cell means DKK.", "DKK", "DKK"),
    },
    notes=(
        "How to",
        "Write one recipient per row, from row 2. Do not change the headers in row 1.",
        "Phone and Postal code must stay text: do not change the columns' format to Number or General, "
        "or a leading 0 disappears (0800 becomes 800) and long numbers turn into 4.51E+09.",
        "Check the file before anything is issued (a dry run that issues nothing): flexybulk validate {file}",
        "The lists of gift certificate types and departments come from Flexybox as they were when the template "
        "was made. Make a new template if they have changed: flexybulk template {file}",
    ),
    list_headers=("Gift certificate types", "Departments"),
    header_comments={
        Field.COUNTRY: "An empty cell means DK (Denmark). Write a two-letter country code, e.g. SE.",
        Field.CURRENCY: "An empty cell means DKK (Danish kroner). Write a three-letter currency code, e.g. EUR.",
        Field.PHONE: "Formatted as text, so the number stays exactly as written.",
        Field.POSTAL_CODE: "Formatted as text, so a leading 0 stays (0800).",
    },
    list_error={
        Field.TYPE: ("Unknown gift certificate type", "Choose a gift certificate type from the list. If you wrote an "
                                                      "id from Flexybox, press Yes to keep it."),
        Field.DEPARTMENT: ("Unknown department", "Choose a department from the list. If you wrote an id from "
                                                 "Flexybox, press Yes to keep it."),
    },
    amount_error=("Invalid amount", "Write the value of one gift certificate as a number greater than 0, "
                                    "e.g. 500 or 499.95."),
    quantity_error=("Invalid quantity", "Write the number of gift certificates as a whole number: 1 or more."),
)

_TEXTS = {"da": _DA, "en": _EN}

_HEADER_FILL_COLOUR = "DDEBF7"
# What openpyxl refuses in a cell (its ILLEGAL_CHARACTERS_RE): XML 1.0 forbids these controls.
_ILLEGAL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def dropdown_names(items: Iterable[CatalogueItem]) -> list[str]:
    """The names a dropdown offers for ``items``: active ones, in catalogue order.

    Names are stripped of surrounding spaces; a name that repeats an earlier
    one (compared case-insensitively, as ``validate.CatalogueIndex`` compares
    names) is left out, and so are empty names and names holding control
    characters a spreadsheet cannot store (such an item can still be chosen
    by writing its id).
    """
    names: list[str] = []
    seen: set[str] = set()
    for item in items:
        if not item.active:
            continue
        name = str(item.name).strip()
        key = name.casefold()
        if not name or key in seen or _ILLEGAL_CHARACTERS.search(name):
            continue
        seen.add(key)
        names.append(name)
    return names


def write_template(path: Path, catalogue: Catalogue, *, lang: str = "da") -> Path:
    """Write an empty recipient sheet to ``path`` (XLSX), atomically, and return ``path``.

    Args:
        path: the file to write (normally ``*.xlsx``); an existing file is replaced.
            The folder must exist.
        catalogue: the live catalogue; the dropdowns offer
            ``dropdown_names(catalogue.types)`` and ``dropdown_names(catalogue.departments)``.
            When a list is empty its column gets no dropdown (ids can still be written).
        lang: ``"da"`` (sheet ``Modtagere``, Danish headers and help) or ``"en"``.

    Layout: the data sheet first and active, the help sheet second, the
    hidden lists sheet third (types in column A, departments in column B,
    from row 2). Data validations cover rows ``FIRST_ROW``..``LAST_ROW``.

    The workbook is written to a temporary file in the same folder, flushed
    to disk, and renamed over ``path`` (``os.replace``): a crash or a full
    disk leaves the old file, if any, untouched and no partial template.

    Raises:
        ValueError: ``lang`` is not ``"da"`` or ``"en"`` (a programming error).
        InputFileError: the file cannot be written (folder missing or not
            writable, disk full, the file open in Excel on Windows). Never an
            ``OSError``: the message says what to do instead.
    """
    if lang not in _TEXTS:
        raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}, not {lang!r}")
    path = Path(path)
    workbook = _build(catalogue, lang, path.name)
    try:
        fd, tmp = _open_temp(path.parent, path.name)
    except OSError as exc:
        raise InputFileError(f"Cannot write {path}: {exc.strerror or exc}. "
                             "Check that the folder exists and that you may write to it, or choose another place.") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            workbook.save(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise InputFileError(f"Cannot write {path}: {exc.strerror or exc}. "
                             "Close it if it is open in a spreadsheet program, or choose another place.") from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def is_template_lists(name: str, first_row: Iterable[Any]) -> bool:
    """True for the hidden helper sheet a template from :func:`write_template` carries (issue #13).

    Recognised by what this module writes there, in either language: the
    sheet's name (``Lister`` / ``Lists``) and its header row (``Gavekorttyper``,
    ``Afdelinger`` / ``Gift certificate types``, ``Departments``). The reader
    then does not report it among the hidden sheets it ignored: it is the
    tool's own, not the person's.
    """
    cells = [str(v).strip() for v in first_row if v not in (None, "")]
    return any(name == SHEET_NAMES[lang][2] and tuple(cells) == _TEXTS[lang].list_headers for lang in LANGUAGES)


def _sheet_ref(name: str) -> str:
    """``Lister`` as is, ``'Ark 2'`` quoted: Excel's form of a sheet name in a reference."""
    return name if _PLAIN_SHEET_NAME.fullmatch(name) else "'" + name.replace("'", "''") + "'"


def _open_temp(folder: Path, name: str) -> tuple[int, str]:
    """Create a new hidden temporary file beside the target; ``(fd, path)``.

    ``os.open`` with mode 0o666 lets the umask decide the permissions, as for any
    file the user creates (``mkstemp`` would make the template 0600, unreadable for
    colleagues on a shared drive). ``O_EXCL`` makes the name ours alone.

    Raises:
        OSError: the folder is missing or not writable.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(folder / f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _text(ws: Any, row: int, column: int, value: str | None, *, style: dict[str, Any] | None = None) -> None:
    """Put ``value`` into a cell as a plain string: never a formula, whatever it starts with (pitfalls P17).

    ``style``: cell attributes to set (``font``, ``fill``, ``alignment``).
    """
    from .results import is_dangerous

    if value is None:
        return
    cell = ws.cell(row=row, column=column)
    cell.value = value
    cell.data_type = "s"
    if is_dangerous(value):
        cell.quotePrefix = True  # what Excel does for a typed '=...: show the text, never evaluate it
    for name, attr in (style or {}).items():
        setattr(cell, name, attr)


def _build(catalogue: Catalogue, lang: str, file_name: str) -> openpyxl.Workbook:
    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    heading = {"font": Font(bold=True), "fill": PatternFill("solid", start_color=_HEADER_FILL_COLOUR)}
    bold = {"font": Font(bold=True)}
    wrap = {"alignment": Alignment(wrap_text=True, vertical="top")}
    texts = _TEXTS[lang]
    data_name, help_name, lists_name = SHEET_NAMES[lang]
    types = dropdown_names(catalogue.types)
    departments = dropdown_names(catalogue.departments)

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = data_name
    help_ws = wb.create_sheet(help_name)
    lists = wb.create_sheet(lists_name)
    lists.sheet_state = "hidden"

    # The hidden lists: one name per cell, so commas and quotes in names are harmless.
    list_ranges: dict[Field, str] = {}
    for col, (fld, names, header) in enumerate(
            ((Field.TYPE, types, texts.list_headers[0]), (Field.DEPARTMENT, departments, texts.list_headers[1])), 1):
        _text(lists, 1, col, header, style=heading)
        for row, name in enumerate(names, 2):
            _text(lists, row, col, name)
        letter = get_column_letter(col)
        lists.column_dimensions[letter].width = min(_MAX_LIST_WIDTH, max([len(header), *map(len, names)]) + 2)
        if names:
            # Stored without the leading "=", as Excel itself stores validation formulas in the XML;
            # Excel shows it as =Lister!$A$2:$A$5.
            list_ranges[fld] = f"{_sheet_ref(lists_name)}!${letter}${FIRST_ROW}:${letter}${len(names) + 1}"

    # The data sheet: header, widths, column formats, validations. No data cells.
    headers = HEADERS[lang]
    letters: dict[Field, str] = {}
    for col, (fld, header) in enumerate(zip(COLUMN_FIELDS, headers), 1):
        letter = get_column_letter(col)
        letters[fld] = letter
        _text(ws, 1, col, header, style=heading)
        width = _WIDTHS[fld]
        if fld in (Field.TYPE, Field.DEPARTMENT):
            names = types if fld == Field.TYPE else departments
            width = min(_MAX_LIST_WIDTH, max([width, *(len(n) + 3 for n in names)]))
        dim = ws.column_dimensions[letter]
        dim.width = max(width, len(header) + 3)
        if fld in _COLUMN_FORMATS:
            dim.number_format = _COLUMN_FORMATS[fld]
        comment = texts.header_comments.get(fld)
        if comment:
            ws.cell(row=1, column=col).comment = Comment(comment, "flexybulk", width=260, height=70)
    ws.freeze_panes = "A2"

    def rows(fld: Field) -> str:
        return f"{letters[fld]}{FIRST_ROW}:{letters[fld]}{LAST_ROW}"

    for fld, formula in list_ranges.items():
        title, message = texts.list_error[fld]
        # "warning", not "stop": an id, or a type added in Flexybox after the template was made, must stay possible.
        dv = DataValidation(type="list", formula1=formula, allow_blank=True, showErrorMessage=True,
                            errorStyle="warning", errorTitle=title, error=message)
        dv.add(rows(fld))
        ws.add_data_validation(dv)
    title, message = texts.quantity_error
    dv = DataValidation(type="whole", operator="greaterThanOrEqual", formula1="1", allow_blank=True,
                        showErrorMessage=True, errorStyle="stop", errorTitle=title, error=message)
    dv.add(rows(Field.QUANTITY))
    ws.add_data_validation(dv)
    title, message = texts.amount_error
    dv = DataValidation(type="decimal", operator="greaterThan", formula1="0", allow_blank=True,
                        showErrorMessage=True, errorStyle="stop", errorTitle=title, error=message)
    dv.add(rows(Field.AMOUNT))
    ws.add_data_validation(dv)

    # The help sheet: one row per column, then how to check the file.
    for col, header in enumerate(texts.help_headers, 1):
        _text(help_ws, 1, col, header, style=heading)
    examples = {"type": types[0] if types else "Gavekort", "department": departments[0] if departments else "Webshop"}
    for row, (fld, header) in enumerate(zip(COLUMN_FIELDS, headers), 2):
        item = texts.columns[fld]
        # "B: E-mail", never a bare "E-mail": a reader looking for the recipients' header
        # row must not take this sheet for a second candidate (pitfalls P13).
        _text(help_ws, row, 1, f"{letters[fld]}: {header}", style=bold)
        _text(help_ws, row, 2, texts.required if item.required else texts.optional)
        _text(help_ws, row, 3, item.what, style=wrap)
        _text(help_ws, row, 4, item.example.format(**examples))
        _text(help_ws, row, 5, item.default)
    row = len(COLUMN_FIELDS) + 3  # one blank row after the table
    shown_name = f'"{file_name}"' if any(c.isspace() for c in file_name) else file_name
    for i, note in enumerate(texts.notes):
        _text(help_ws, row + i, 1, note.format(file=shown_name), style=bold if i == 0 else None)
    for letter, width in zip("ABCDE", (22, 12, 70, 24, 14)):
        help_ws.column_dimensions[letter].width = width
    help_ws.freeze_panes = "A2"

    wb.active = 0
    return wb
