"""Regenerate the sample sheets in this folder: ``python samples/make_samples.py``.

All samples use the sandbox's built-in catalogue (``shared/flexybox-api.md`` part D)
and reserved example domains; the people are invented.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
from openpyxl.styles import Font

HERE = Path(__file__).resolve().parent
HEADERS = ["Navn", "E-mail", "Telefon", "Adresse", "Postnr", "By", "Gavekorttype", "Afdeling", "Beløb", "Antal"]


def _sheet(path: Path, title: str, rows: list[list], headers: list[str] = HEADERS) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(row)
    # Phone and postal code are text, as the template sets them (pitfalls P5, P6).
    for col in ("C", "E"):
        for cell in ws[col][1:]:
            cell.number_format = "@"
    for cell in ws["I"][1:]:
        cell.number_format = "#,##0.00"
    ws.freeze_panes = "A2"
    wb.save(path)


def kampagne() -> None:
    rows = [
        ["Mette Frederiksen-Test", "mette@example.com", "+4520123456", "Testvej 1", "2100", "København Ø", "Julegavekort", "København", 500, 1],
        ["Søren Prøvesen", "soeren@example.org", "20 12 34 57", "Prøvegade 12", "8000", "Aarhus C", "Gavekort", "Aarhus", 250, 2],
        ["Åse Ørnebjerg", "aase@example.net", "", "Ågade 3", "5000", "Odense C", "Oplevelsesgavekort", "Odense", 1000, 1],
        ["Lars Eksempel", "lars@example.com", "+4531234567", "", "", "", "gavekort", "webshop", 199.95, 3],
        ["Julie Demo", "julie@example.com", "", "", "", "", "Firmagavekort", "Webshop", 750, 10],
        ["Bo Fiktiv", "bo@example.org", "40506070", "Bovej 9", "0800", "Høje Taastrup", "Julegavekort", "København", 300, 1],
    ]
    _sheet(HERE / "kampagne.xlsx", "Modtagere", rows)


def firmagaver_csv() -> None:
    # Danish Excel's "CSV (semikolonsepareret)": Windows-1252, ';', decimal commas, CRLF.
    lines = [
        "Navn;E-mail;Gavekorttype;Beløb;Antal;Afdeling;Land",
        "Jørgen Fiktivsen;jorgen@example.com;Gavekort;499,95;2;Aarhus;DK",
        "Lærke Ødegaard;laerke@example.org;Firmagavekort;1.250,50;1;Webshop;DK",
        "Søs Sandkasse;soes@example.net;Julegavekort;300;4;København;DK",
        "Thøger Demonstrup;thoeger@example.com;Oplevelsesgavekort;750,00;1;Odense;DK",
    ]
    (HERE / "firmagaver.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))


def fejl() -> None:
    rows = [
        ["Gyldig Person", "gyldig@example.com", "", "", "", "", "Gavekort", "Webshop", 250, 1],  # 2: valid
        [None, "mangler.navn@example.com", "", "", "", "", "Gavekort", "Webshop", 250, 1],  # 3: no name
        ["Forkert Email", "forkert@@example", "", "", "", "", "Gavekort", "Webshop", 250, 1],  # 4: bad email
        ["Ukendt Type", "type@example.com", "", "", "", "", "Gavekrot", "Webshop", 250, 1],  # 5: type typo
        ["Ukendt Afdeling", "afd@example.com", "", "", "", "", "Gavekort", "Roskilde", 250, 1],  # 6: unknown department
        ["Negativt Beløb", "neg@example.com", "", "", "", "", "Gavekort", "Webshop", -100, 1],  # 7: negative amount
        ["Tre Decimaler", "tre@example.com", "", "", "", "", "Gavekort", "Webshop", 99.999, 1],  # 8: 3 decimals
        ["Nul Antal", "nul@example.com", "", "", "", "", "Gavekort", "Webshop", 250, 0],  # 9: quantity 0
        ["Halvt Antal", "halv@example.com", "", "", "", "", "Gavekort", "Webshop", 250, "2,5"],  # 10: quantity 2,5
        ["Mangler Beløb", "beloeb@example.com", "", "", "", "", "Gavekort", "Webshop", None, 1],  # 11: no amount
        ["Excel Telefon", "tlf@example.com", "4,51235E+09", "", "", "", "Gavekort", "Webshop", 250, 1],  # 12: phone shortened by Excel
        ["Også Gyldig", "ogsaa@example.com", "", "", "", "", "Julegavekort", "Aarhus", 500, 2],  # 13: valid
    ]
    _sheet(HERE / "fejl.xlsx", "Modtagere", rows)


if __name__ == "__main__":
    kampagne()
    firmagaver_csv()
    fejl()
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("*.*")) if p.suffix in (".xlsx", ".csv")))
