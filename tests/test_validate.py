"""Validation: every problem of every row, with row numbers and columns; summaries in Decimal."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flexybulk.errors import ConfigError

from builders import make_sheet, person
from flexybulk.model import Catalogue, CatalogueItem, RowProblem
from flexybulk.sandbox import default_catalogue
from flexybulk.validate import check_email, clean_text, fingerprint, validate


@pytest.fixture
def catalogue() -> Catalogue:
    raw = default_catalogue()
    return Catalogue(
        types=tuple(CatalogueItem(t["Id"], t["Name"]) for t in raw["types"]) + (CatalogueItem("old-1", "Gammelt kort", active=False),),
        departments=tuple(CatalogueItem(d["Id"], d["Name"]) for d in raw["departments"]),
    )


def test_valid_rows_become_orders_with_catalogue_ids(catalogue):
    sheet = make_sheet([person(0, type="gavekort", department="KØBENHAVN", amount="499.95", quantity=2),
                        person(1, type="c64d4fab-d517-5859-aa54-af0d23944cd4", department="3")])
    v = validate(sheet, catalogue)
    assert [c.valid for c in v.checks] == [True, True]
    first, second = v.checks[0].order, v.checks[1].order
    assert first.type.id == "e2080ad4-3ed0-55aa-bcb6-d5d895186603" and first.department.id == 2
    assert first.total == Decimal("999.90") and first.currency == "DKK" and first.country == "DK"
    assert second.type.name == "Julegavekort" and second.department.id == 3 and type(second.department.id) is int
    totals = v.totals()
    assert (totals.certificates, totals.amounts) == (4, {"DKK": Decimal("1499.90")})
    assert totals.money() == "1,499.90 DKK"


def test_every_problem_of_every_row_is_reported_with_row_and_column(catalogue):
    sheet = make_sheet([
        person(0, name=None, email="not-an-email"),
        person(1, type="Gavekrot", department="Roskilde"),
        person(2, amount="-5", quantity=0),
        person(3, amount="10.555"),
        person(4, type="Gammelt kort"),
    ], name="fejl.xlsx")
    v = validate(sheet, catalogue)
    assert [c.valid for c in v.checks] == [False] * 5
    msgs = v.messages()
    assert "fejl.xlsx, sheet 'Ark1', row 2, column 'Navn' (A): the recipient's name is missing. Fill it in." in msgs
    assert any(m.startswith("fejl.xlsx, sheet 'Ark1', row 2, column 'E-mail' (B): 'not-an-email' is not a valid email address") for m in msgs)
    assert "fejl.xlsx, sheet 'Ark1', row 3, column 'Gavekorttype' (C): Unknown gift certificate type 'Gavekrot'. Did you mean 'Gavekort'?" in msgs
    assert any(m.startswith("fejl.xlsx, sheet 'Ark1', row 3, column 'Afdeling' (F): Unknown department 'Roskilde'.") for m in msgs)
    assert any("row 4, column 'Beløb' (D): -5 is not a positive amount" in m for m in msgs)
    assert any("row 4, column 'Antal' (E): 0 is not a positive whole number" in m for m in msgs)
    assert any("row 5, column 'Beløb' (D): 10.555 has more than two decimals" in m for m in msgs)
    assert any("row 6, column 'Gavekorttype' (C): The gift certificate type 'Gammelt kort' is inactive" in m for m in msgs)
    assert len(msgs) == 8


def test_reader_problems_are_kept_and_not_duplicated(catalogue):
    sheet = make_sheet([person(0, amount=None)])
    sheet.rows[0].problems.append(RowProblem(2, "Beløb", "'1.000' could mean 1000 or 1 ", "1.000", "D"))
    v = validate(sheet, catalogue)
    assert [p.message for p in v.checks[0].problems] == ["'1.000' could mean 1000 or 1 "]


def test_department_option_fills_missing_department(catalogue):
    from flexybulk.errors import InputFileError

    sheet = make_sheet([{"name": "A", "email": "a@example.com", "type": "Gavekort", "amount": "100"}],
                       fields=["name", "email", "type", "amount"])
    with pytest.raises(InputFileError) as err:
        validate(sheet, catalogue)
    assert str(err.value) == ("liste.xlsx, sheet 'Ark1': no column for the department (Afdeling/Department, or --department "
                              "for all rows). The header on row 1 has 'Navn', 'E-mail', 'Gavekorttype', 'Beløb'. Name the "
                              "columns as shown, or map one with --column, e.g. --column amount=\"Værdi i kr\".")
    v = validate(sheet, catalogue, default_department="odense")
    assert v.checks[0].order.department.id == 4
    from flexybulk.errors import ConfigError

    with pytest.raises(ConfigError) as bad:  # once, for the option, not per row
        validate(sheet, catalogue, default_department="Mars")
    assert str(bad.value) == "--department 'Mars': unknown department 'Mars'. Known: Webshop, København, Aarhus, Odense. Nothing was issued."


def test_a_sheet_without_required_columns_is_refused_once(catalogue):
    from flexybulk.errors import InputFileError

    sheet = make_sheet([{"email": "a@example.com"}], fields=["email"])
    with pytest.raises(InputFileError, match=r"no column for the recipient's name \(Navn/Name\); the gift certificate type"):
        validate(sheet, catalogue)


def test_country_and_currency_codes(catalogue):
    sheet = make_sheet([person(0, country="NA", currency="eur"), person(1, country="Danmark", currency="kroner")],
                       fields=["name", "email", "type", "amount", "quantity", "department", "country", "currency"])
    v = validate(sheet, catalogue)
    assert v.checks[0].order.country == "NA"  # Namibia, not "missing" (pitfalls P8)
    assert v.checks[0].order.currency == "EUR"
    msgs = v.messages()
    assert any("row 3, column 'Land' (G): 'Danmark' is not a two-letter ISO 3166 country code" in m for m in msgs)
    assert any("row 3, column 'Valuta' (H): 'kroner' is not an ISO 4217 currency code" in m for m in msgs)
    bad = validate(make_sheet([person(0, currency="XYZ", country="XX")], fields=["name", "email", "type", "amount", "quantity",
                                                                                "department", "country", "currency"]), catalogue)
    assert [p.value for p in bad.checks[0].problems] == ["XYZ", "XX"]


def test_bounds_and_control_characters(catalogue):
    sheet = make_sheet([person(0, name="Anna\x00 \u200bHansen\t"), person(1, name="x" * 10_000), person(2, amount="250000"),
                        person(3, quantity=5000)])
    v = validate(sheet, catalogue)
    assert v.checks[0].order.name == "Anna Hansen"
    msgs = v.messages()
    assert any("row 3, column 'Navn' (A): the name is 10,000 characters long; at most 200 are allowed" in m for m in msgs)
    assert any("row 4, column 'Beløb' (D): 250,000.00 is more than the 100,000.00 allowed" in m for m in msgs)
    assert any("row 5, column 'Antal' (E): 5,000 is more than the 1,000 allowed" in m for m in msgs)


def test_repeats_within_a_file_are_warnings_naming_both_rows(catalogue):
    sheet = make_sheet([person(0), person(1), person(0), person(2, email="PERSON.1@example.com")])
    v = validate(sheet, catalogue)
    assert all(c.valid for c in v.checks)
    warnings = v.warning_messages()
    assert len(warnings) == 2
    assert "row 4, column 'E-mail' (B): the same gift certificate as row 2 (same email, type, department, amount and quantity). Both rows are kept" in warnings[0]
    assert "row 5, column 'E-mail' (B): PERSON.1@example.com also appears in row 3; both rows are kept and share one customer." in warnings[1]


def test_summary_per_type_and_department(catalogue):
    sheet = make_sheet([person(0, type="Firmagavekort", amount="1000", quantity=5), person(1, department="Aarhus"),
                        person(2, currency="EUR", amount="10")], fields=["name", "email", "type", "amount", "quantity", "department", "currency"])
    v = validate(sheet, catalogue)
    by_type = v.by(lambda o: o.type.name)
    assert list(by_type) == ["Firmagavekort", "Gavekort"]
    assert by_type["Firmagavekort"].amounts == {"DKK": Decimal("5000")}
    assert by_type["Gavekort"].money() == "500.00 DKK + 30.00 EUR"
    assert v.by(lambda o: o.department.name)["Aarhus"].certificates == 2


def test_email_and_text_helpers():
    assert check_email("Anna@Example.COM") == ("Anna@example.com", None)
    assert check_email("a@@b.dk")[0] is None
    assert clean_text("  a\u00a0 b\u200b ") == "a b"
    one = fingerprint("A@example.com", "G", 1, Decimal("250"), 2, "dkk")
    assert one == fingerprint("a@example.com", "g", 1, Decimal("250.00"), 2, "DKK")
    assert one != fingerprint("a@example.com", "g", 2, Decimal("250.00"), 2, "DKK")
    assert one != fingerprint("a@example.com", "g", 1, Decimal("250.01"), 2, "DKK")


def test_names_compare_with_folded_spaces_and_active_items_win():
    catalogue = Catalogue(
        types=(CatalogueItem("old", "Gavekort", active=False), CatalogueItem("new", "Gavekort"),
               CatalogueItem("j", "Jule  gavekort")),
        departments=(CatalogueItem(1, "Webshop"),),
    )
    sheet = make_sheet([person(0), person(1, type="jule gavekort"), person(2, type=" JULE   GAVEKORT ")])
    v = validate(sheet, catalogue)
    assert [c.order.type.id for c in v.checks] == ["new", "j", "j"]


def test_row_fingerprints_equal_the_public_fingerprint_function(catalogue):
    from flexybulk.validate import order_fingerprint

    sheet = make_sheet([person(i, email=e, amount=a, quantity=q, department=d)
                        for i, (e, a, q, d) in enumerate([("Anna@Example.COM", "500", 1, "2"), ("anna@example.com", "500.00", 1, "KØBENHAVN"),
                                                          ("bo@example.com", "499.95", 3, "3"), ("Bo@EXAMPLE.com", "499.95", 3, "3"),
                                                          ("søren@københavn.dk", "1", 1000, "2")])])
    v = validate(sheet, catalogue)
    assert all(c.valid for c in v.checks)
    assert [c.fingerprint for c in v.checks] == [order_fingerprint(c.order) for c in v.checks]
    assert v.checks[0].fingerprint == v.checks[1].fingerprint and v.checks[2].fingerprint == v.checks[3].fingerprint


# --- check_all's cheap path against check() itself (issue #4) ------------------------------------------

ALL_FIELDS = ["name", "email", "type", "amount", "quantity", "department", "phone", "address", "postal_code", "city",
              "country", "currency"]


def _reference_checks(sheet, catalogue, default_department=None):
    """Every row through ``_RowChecker.check`` (no cheap path), repeats warned as validate() does."""
    from flexybulk import validate as V

    checker = V._RowChecker(sheet, catalogue, default_department)
    cleaned = [clean_text(r.fields["email"]) if r.fields.get("email") is not None else "" for r in sheet.rows]
    checks = [checker.check(row, cleaned[i]) for i, row in enumerate(sheet.rows)]
    V._warn_repeats(checker, checks)
    return checks


def _assert_same_as_reference(sheet, catalogue, default_department=None):
    got = validate(sheet, catalogue, default_department=default_department).checks
    want = _reference_checks(sheet, catalogue, default_department)
    assert got == want
    assert repr(got) == repr(want)  # Decimal('300') vs Decimal('300.00'), 2 vs 2.0, str vs int ids
    for g, w in zip(got, want):
        if w.order is not None:
            assert [type(v) for v in vars(g.order).values()] == [type(v) for v in vars(w.order).values()]
    return got


def _tricky_rows():
    base = dict(phone="+45 12 34 56 78", address="Skovvej 1", postal_code="0800", city="Aarhus C", country="DK", currency="DKK")
    p = lambda i, **kw: person(i, **{**base, **kw})  # noqa: E731
    return [
        p(0), p(1, type="Gavekrot"), p(2, type="Gavekrot"),  # the same bad cell twice: each message its own row
        p(3, name="  Anne   Hansen "), p(4, name="  Anne   Hansen "), p(5, name="Anne\u200bHansen\t"),
        p(6, name="x" * 201), p(7, name="x" * 201), p(8, name="   "), p(9, name=5), p(10, name=None),
        p(11, department=2), p(12, department="2"), p(13, department=Decimal("2")), p(14, department=Decimal("2.0")),
        p(15, department=True), p(16, department="  københavn "), p(17, department="Roskilde"), p(18, department=None),
        p(19, department="   "), p(20, type=True), p(21, type=1), p(22, type="Gammelt kort"), p(23, type="  GAVEKORT "),
        p(24, amount=Decimal("300")), p(25, amount=Decimal("300.00")), p(26, amount=Decimal("3E+2")),
        p(27, amount=Decimal("300.001")), p(28, amount=Decimal("0")), p(29, amount=Decimal("-1")),
        p(30, amount=Decimal("100000")), p(31, amount=Decimal("100000.01")), p(32, amount=Decimal("100000.00")),
        p(33, quantity=True), p(34, quantity=0), p(35, quantity=1000), p(36, quantity=1001), p(37, quantity=Decimal(2)),
        p(38, quantity="2"), p(39, quantity=2.0),
        p(40, phone=12345678), p(41, phone="x" * 33), p(42, phone=None), p(43, phone=""), p(44, phone="  "),
        p(45, postal_code=800), p(46, postal_code="1" * 21), p(47, postal_code=" 0800 "), p(48, city="Aarhus\tC"),
        p(49, city="A" * 101), p(50, address="a" * 201), p(51, address=None),
        p(52, currency="dkk"), p(53, currency="EUR"), p(54, currency="XYZ"), p(55, currency=None), p(56, currency=""),
        p(57, currency=1), p(58, country="dk"), p(59, country="NA"), p(60, country="XX"), p(61, country=None),
        p(62, email=None), p(63, email=""), p(64, email="not-an-email"), p(65, email="PERSON.0@EXAMPLE.com"),
        p(0), p(0, quantity=2), p(66, email="Person.66@Example.com "), p(67, email="mailto\u200b@x"),
        p(68, name="Anne Hansen", type="gavekort", department="KØBENHAVN", amount="499.95", quantity=3),
        p(69, name="Anne Hansen", type="Gavekort", department="2", amount="499.950", quantity=3, email="Person.68@example.com"),
    ]


def test_the_cheap_path_gives_what_check_gives_on_tricky_rows(catalogue):
    rows = _tricky_rows() + [person(100 + i, email=f"extra.{i}@example.com") for i in range(5)]
    sheet = make_sheet(rows, fields=ALL_FIELDS)
    # Cells the builder would turn into Decimals, and a reader problem on an otherwise valid row.
    for row, amount in zip(sheet.rows[-5:-1], (300, "300", 300.0, True)):
        row.fields["amount"] = amount
    sheet.rows[-1].problems.append(RowProblem(sheet.rows[-1].number, "Beløb", "'1.000' could mean 1000 or 1", "1.000", "D"))
    got = _assert_same_as_reference(sheet, catalogue)
    assert (sum(c.valid for c in got), len(got)) == (37, 77)
    assert "row 73, column 'E-mail' (B): the same gift certificate as row 72" in " ".join(validate(sheet, catalogue).warning_messages())
    msgs = validate(sheet, catalogue).messages()
    assert [m for m in msgs if "Gavekrot" in m] == [
        f"liste.xlsx, sheet 'Ark1', row {n}, column 'Gavekorttype' (C): Unknown gift certificate type 'Gavekrot'. Did you mean 'Gavekort'?"
        for n in (3, 4)]
    assert sum("the name is 201 characters long" in m for m in msgs) == 2


def test_the_cheap_path_with_a_default_department_and_without_optional_columns(catalogue):
    rows = _tricky_rows()
    _assert_same_as_reference(make_sheet(rows, fields=ALL_FIELDS), catalogue, default_department="odense")
    with pytest.raises(ConfigError):  # an unknown --department stops validation once, before any row
        validate(make_sheet(rows, fields=ALL_FIELDS), catalogue, default_department="Mars")
    _assert_same_as_reference(make_sheet(rows, fields=["name", "email", "type", "amount", "quantity", "department"]), catalogue)
    no_department = [{k: v for k, v in r.items() if k != "department"} for r in rows]
    _assert_same_as_reference(make_sheet(no_department, fields=["name", "email", "type", "amount", "quantity"]), catalogue,
                              default_department="3")


def test_a_cell_valid_in_one_row_and_the_same_value_of_another_class_in_another(catalogue):
    # 2 == 2.0 == Decimal("2.0") as dict keys, but they clean to different texts: no cache may merge them.
    sheet = make_sheet([person(0, department="2"), person(1, department=Decimal("2.0")), person(2, department=2),
                        person(3, department=Decimal("2")), person(4, type="1"), person(5, type=True)])
    got = _assert_same_as_reference(sheet, catalogue)
    assert [c.valid for c in got] == [True, False, True, True, False, False]


def test_progress_is_called_every_thousand_rows_and_at_the_end(catalogue):
    for n, want in ((2500, [1000, 2000, 2500]), (2000, [1000, 2000, 2000]), (3, [3])):
        seen = []
        validate(make_sheet([person(i) for i in range(n)]), catalogue, progress=seen.append)
        assert seen == want


def _reference_warnings(checks):
    """The repeat warnings as first written (before issue #4): (row, other row, kind) per warning."""
    first_by_email, first_by_print, out = {}, {}, []
    for c in checks:
        if c.order is None:
            continue
        email = c.order.email.casefold()
        if c.fingerprint in first_by_print:
            out.append((c.row.number, first_by_print[c.fingerprint], "same order"))
        elif email in first_by_email:
            out.append((c.row.number, first_by_email[email], "same email"))
        first_by_email.setdefault(email, c.row.number)
        first_by_print.setdefault(c.fingerprint, c.row.number)
    return out


def test_repeat_warnings_equal_the_first_way_of_finding_them(catalogue):
    emails = ["a@example.com", "A@EXAMPLE.COM", "b@example.com", "a@example.com", "c@example.com", "B@example.com"]
    rows = [person(i, email=emails[i % 6], amount=("250", "250.00", "300")[i % 3], quantity=1 + i % 2,
                   department=("Webshop", "1", "Aarhus")[i % 3 // 2], type=(None if i == 7 else "Gavekort")) for i in range(40)]
    v = validate(make_sheet(rows), catalogue)
    got = []
    for c in v.checks:
        for w in c.warnings:
            other = int(w.message.split("row ")[1].split(" ")[0].rstrip(";"))
            got.append((c.row.number, other, "same order" if w.message.startswith("the same gift") else "same email"))
    assert got == _reference_warnings(v.checks)
    assert {k for *_, k in got} == {"same order", "same email"}


@pytest.mark.parametrize("amount, message", [
    (Decimal("NaN"), "is not a number."),
    (Decimal("Infinity"), "Infinity is more than the 100,000.00 allowed per gift certificate. Check the amount."),
    (Decimal("1E+30"), "1.000E+30 is more than the 100,000.00 allowed per gift certificate. Check the amount."),
    (10**30, "1.000E+30 is more than the 100,000.00 allowed per gift certificate. Check the amount."),
    (Decimal("123456789012345678901234567890.125"), "1.235E+29 is more than the 100,000.00 allowed per gift certificate. Check the amount."),
    (Decimal("100000.001"), "100000.001 has more than two decimals. Round it to øre/cents."),
    (Decimal("100000.01"), "100,000.01 is more than the 100,000.00 allowed per gift certificate. Check the amount."),
    (Decimal("99999.999"), "99999.999 has more than two decimals. Round it to øre/cents."),
])
def test_amounts_beyond_the_decimal_context_are_row_problems(catalogue, amount, message):
    """The 28-digit default context cannot round 10^30; such typos are problems, never a crash."""
    v = validate(make_sheet([person(0), person(1, amount=amount)]), catalogue)
    assert [c.valid for c in v.checks] == [True, False]
    assert [p.message for p in v.checks[1].problems] == [message]
    assert [p.row for p in v.checks[1].problems] == [3]


def test_an_amount_written_in_kroner_on_a_row_of_another_currency_is_a_problem(catalogue, tmp_path):
    """A fresh user's find: '100 DKK' with Valuta EUR was issued as 100 EUR; Valuta XXX (no currency) was accepted."""
    import openpyxl

    from flexybulk.reading import read_sheet

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Navn", "E-mail", "Gavekorttype", "Afdeling", "Beløb", "Antal", "Valuta"])
    cells = [("100 DKK", "EUR"), ("250 kr", "EUR"), ("250 kr", "SEK"), ("kr. 99", "DKK"), ("300,00", "EUR"), (100, "XXX")]
    for i, (amount, currency) in enumerate(cells):
        ws.append([f"Person {i}", f"p{i}@example.com", "Gavekort", "Webshop", amount, 1, currency])
    wb.save(tmp_path / "valuta.xlsx")
    sheet = read_sheet(tmp_path / "valuta.xlsx")
    v = validate(sheet, catalogue)
    assert [c.order is not None for c in v.checks] == [False, False, True, True, True, False]
    assert [(c.order.price, c.order.currency) for c in v.checks if c.order] == [
        (Decimal("250"), "SEK"), (Decimal("99"), "DKK"), (Decimal("300.00"), "EUR")]
    said = [p.message for c in v.checks for p in c.problems]
    assert said == [
        "'100 DKK' is written in DKK, but Valuta says EUR. Write the amount without the currency, or correct the currency.",
        "'250 kr' is written in kr, but Valuta says EUR. Write the amount without the currency, or correct the currency.",
        "'XXX' is ISO 4217's code for no currency, a test, a metal or a unit of account, not money to pay in. Write a "
        "currency such as DKK, EUR or SEK."]
