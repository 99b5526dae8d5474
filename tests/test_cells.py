"""Single-cell parsing (flexybulk.reading.cells and .amounts): exact values and exact messages, pitfall by pitfall."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from flexybulk.reading.amounts import AmountConvention, amount_convention, parse_amount, parse_quantity
from flexybulk.reading.cells import (
    CellValueError,
    clean_header,
    clean_text,
    normalize_code,
    normalize_email,
    normalize_header,
    normalize_phone,
    number_from_float,
    postal_code_text,
    postal_code_warning,
    strip_formula_guard,
    zero_pad_width,
)

DK, EN, UNKNOWN, MIXED = (AmountConvention.DANISH, AmountConvention.ENGLISH,
                          AmountConvention.UNKNOWN, AmountConvention.MIXED)


def exact(value: Decimal, text: str) -> bool:
    """Same number *and* same written digits: Decimal('1234.50'), not Decimal('1234.5')."""
    return isinstance(value, Decimal) and str(value) == text


# --- amounts (P1) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1.234,50", "1234.50"),  # P1 input A
        ("250,00", "250.00"),
        ("1234,50", "1234.50"),
        ("250", "250"),
        ("1,234.50", "1234.50"),
        ("1234.50", "1234.50"),
        ("250.50", "250.50"),
        ("kr. 1.234,50", "1234.50"),
        ("1.234,50 kr.", "1234.50"),
        ("250,-", "250"),
        ("250,- kr", "250"),
        ("kr 250,-", "250"),
        ("99 DKK", "99"),
        ("DKK 99,95", "99.95"),
        ("1 234,50", "1234.50"),
        ("1\u00a0234,50\u00a0kr", "1234.50"),  # NBSP as thousands separator (Danish Excel)
        ("1.000.000", "1000000"),
        ("1,000,000", "1000000"),
        ("-50", "-50"),  # returned as-is; the validator rejects it
        ("0", "0"),
        ("\u221250,00", "-50.00"),  # a typographic minus
    ],
)
def test_amount_text_is_read_to_the_exact_decimal(text, expected):
    assert exact(parse_amount(text, UNKNOWN), expected)


def test_danish_column_reads_1_000_as_one_thousand():
    assert amount_convention(["1.234,50", "250,00", "1.000"]) is DK
    assert exact(parse_amount("1.000", DK), "1000")


def test_english_column_reads_1_234_as_one_thousand_two_hundred_and_thirty_four():
    assert amount_convention(["1,234.50", "1,234"]) is EN
    assert exact(parse_amount("1,234", EN), "1234")


@pytest.mark.parametrize("convention", [UNKNOWN, EN, MIXED])
def test_1_000_without_a_danish_hint_is_a_problem_with_both_readings(convention):
    # P1 input B: 250.50 says "dot decimals", and money never has three decimals.
    with pytest.raises(CellValueError) as err:
        parse_amount("1.000", convention)
    assert str(err.value) == "'1.000' could mean 1000 or 1 — write 1000 (or 1.000,00) if you mean 1000, or 1.00 if you mean 1"


def test_1_234_with_a_comma_outside_an_english_column_is_a_problem():
    with pytest.raises(CellValueError) as err:
        parse_amount("1,234", DK)
    assert str(err.value) == "'1,234' could mean 1234 or 1.234 (three decimals, which no price has) — write 1234 (or 1.234,00) if you mean 1234"


def test_input_b_column_is_english_and_still_refuses_1_000():
    column = ["250.50", "1.000"]
    convention = amount_convention(column)
    assert convention is EN
    assert exact(parse_amount("250.50", convention), "250.50")
    with pytest.raises(CellValueError, match="could mean 1000 or 1 "):
        parse_amount("1.000", convention)


@pytest.mark.parametrize(
    "column, expected",
    [
        (["1.234,50", "250,00"], DK),
        (["499,95", "1000", "2500"], DK),  # firmagaver-da.csv
        (["1,234.50"], EN),
        (["250.50"], EN),
        (["250", "1.000", ""], UNKNOWN),
        ([250, Decimal("499.95"), None], UNKNOWN),  # numeric cells carry no convention
        (["1.234,50", "1,234.50"], MIXED),
        (["abc", "250"], UNKNOWN),
    ],
)
def test_amount_convention_comes_from_the_whole_column(column, expected):
    assert amount_convention(column) is expected


@pytest.mark.parametrize("text", ["abc", "12a", "1.234.5", "1,23,45", "1.2.3,4", "kr", "1e3", "--5", "(50)", "250,"])
def test_garbage_amount_is_a_problem_that_says_what_to_write(text):
    with pytest.raises(CellValueError) as err:
        parse_amount(text, UNKNOWN)
    assert str(err.value) == f"'{text}' is not an amount — write the price as a number, e.g. 250 or 1.234,50"


def test_numeric_amount_cells_never_go_through_float_arithmetic():
    assert exact(parse_amount(499.95), "499.95")  # Decimal(repr(f)), not Decimal(f)
    assert exact(parse_amount(0.1 + 0.2), "0.30000000000000004")  # what the float really is
    assert exact(parse_amount(1000.0), "1000")
    assert exact(parse_amount(250), "250")
    assert exact(parse_amount(Decimal("12.50")), "12.50")


def test_empty_amount_is_absent_and_a_date_is_a_problem():
    assert parse_amount(None) is None
    assert parse_amount("  \u00a0 ") is None
    with pytest.raises(CellValueError, match="'2024-03-05' is not an amount"):
        parse_amount(dt.date(2024, 3, 5))
    with pytest.raises(CellValueError, match="'TRUE' is not an amount"):
        parse_amount(True)


def test_number_from_float_keeps_the_shortest_round_trip_digits():
    assert number_from_float(1000.0) == 1000 and isinstance(number_from_float(1000.0), int)
    assert exact(number_from_float(499.95), "499.95")
    assert number_from_float(4512345678.0) == 4512345678


# --- quantities (P7) ---------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("2", 2), (" 2 ", 2), ("2,0", 2), ("2.0", 2), ("2,00", 2), ("2 stk", 2), ("2 stk.", 2),
    (2, 2), (2.0, 2), (Decimal("3"), 3), ("-1", -1), ("0", 0), ("1000", 1000),
])
def test_quantity_is_an_int(value, expected):
    result = parse_quantity(value)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value, message", [
    ("2,5", "'2,5' is not a whole number — write how many gift certificates, e.g. 2"),
    (2.5, "'2.5' is not a whole number — write how many gift certificates, e.g. 2"),
    ("abc", "'abc' is not a number — write how many gift certificates, e.g. 2"),
    ("1.000", "'1.000' could mean 1000 or 1 — write 1000 or 1"),
    (dt.date(2024, 1, 2), "'2024-01-02' is not a number — write how many gift certificates, e.g. 2"),
])
def test_bad_quantity_is_a_problem(value, message):
    with pytest.raises(CellValueError) as err:
        parse_quantity(value)
    assert str(err.value) == message


def test_empty_quantity_is_absent_not_one():
    # The default of 1 is the validator's to apply (P7), never the reader's.
    assert parse_quantity(None) is None
    assert parse_quantity("   ") is None


# --- postal codes (P5, P6) -------------------------------------------------------------


def test_postal_code_keeps_text_and_pads_a_0000_format():
    assert postal_code_text("0800") == "0800"
    assert postal_code_text(" 2100\u00a0") == "2100"
    assert postal_code_text(800, "0000") == "0800"
    assert postal_code_text(800.0, "0000") == "0800"
    assert postal_code_text(8000.0) == "8000"  # never "8000.0"
    assert postal_code_text(2494, "00000") == "02494"  # pandas #46895
    assert postal_code_text(800, "General") == "800"
    assert postal_code_text("SE-123 45") == "SE-123 45"
    assert postal_code_text(None) is None and postal_code_text("") is None


def test_postal_code_in_scientific_notation_was_shortened_by_excel():
    with pytest.raises(CellValueError) as err:
        postal_code_text("8E+03")
    assert str(err.value) == "'8E+03' was shortened by Excel — format the column as Text and export again"


def test_three_digit_danish_postal_code_gets_a_warning_problem():
    assert postal_code_warning("800", None) == (
        "Postal code '800' has 3 digits — did Excel remove a leading 0? Write it as 0800 and format the column as Text"
    )
    assert postal_code_warning("800", "DK") is not None
    assert postal_code_warning("800", "NO") is None  # other countries: the validator's rules
    assert postal_code_warning("0800", None) is None


@pytest.mark.parametrize("fmt, width", [
    ("0000", 4), ("00000", 5), ("0000;-0000", 4), ('"0000"', 4),
    ("General", None), ("0", None), ("0.00", None), ("@", None), ("00 00 00 00", None), (None, None),
])
def test_zero_pad_width(fmt, width):
    assert zero_pad_width(fmt) == width


# --- phones (P6) -------------------------------------------------------------------------


@pytest.mark.parametrize("value, region, expected", [
    ("+4512345678", None, "+4512345678"),
    ("12 34 56 78", None, "+4512345678"),
    ("0045 12 34 56 78", None, "+4512345678"),
    ("+45 12-34-56-78", None, "+4512345678"),
    ("4512345678", None, "+4512345678"),
    (4512345678, None, "+4512345678"),  # a numeric cell lost its "+"
    (4512345678.0, None, "+4512345678"),  # never "4512345678.0"
    (94700087, "DK", "+4594700087"),
    ("+47 22 33 44 55", None, "+4722334455"),
    ("22 33 44 55", "NO", "+4722334455"),
    ("07700 900123", "GB", "+447700900123"),
    ("+4512345678\u200b", None, "+4512345678"),
])
def test_phone_is_normalised_to_e164(value, region, expected):
    assert normalize_phone(value, region) == expected


def test_phone_in_a_row_whose_country_is_not_a_code():
    assert normalize_phone("+46 70 123 45 67", "DANMARK") == "+46701234567"
    assert normalize_phone("0045 12 34 56 78", "DANMARK") == "+4512345678"
    with pytest.raises(CellValueError) as err:
        normalize_phone("12 34 56 78", "DANMARK")
    assert str(err.value) == (
        "'12 34 56 78' has no country code and the row's country 'DANMARK' is not a country code — "
        "write the number like +45 12 34 56 78"
    )


def test_phone_with_a_zero_format_is_padded_first():
    assert normalize_phone(1234567, "DK", "00000000") == "+4501234567"


@pytest.mark.parametrize("text", ["4,51235E+09", "4.51E+11", "4,51235E+9"])
def test_phone_in_scientific_notation_was_shortened_by_excel(text):
    with pytest.raises(CellValueError) as err:
        normalize_phone(text)
    assert str(err.value) == f"'{text}' was shortened by Excel — format the column as Text and export again"


@pytest.mark.parametrize("text", ["12", "abc", "123456789"])
def test_unparseable_phone_is_a_problem(text):
    with pytest.raises(CellValueError) as err:
        normalize_phone(text, "DK")
    assert str(err.value) == (
        f"'{text}' is not a phone number for DK — write it with the country code, like +45 12 34 56 78"
    )


# --- emails (P14) ------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (" test@example.com\u00a0", "test@example.com"),
    ("ANDEN@EXAMPLE.COM", "anden@example.com"),
    ("mailto:tredje@example.com", "tredje@example.com"),
    ("MAILTO:Tredje@Example.com?subject=Hej", "tredje@example.com"),
    ("\u200btest@example.com\u200d", "test@example.com"),
    ("\ufefftest@example.com", "test@example.com"),
    ("ｔｅｓｔ@example.com", "test@example.com"),  # full-width letters (NFKC)
    ("   ", None),
    (None, None),
])
def test_email_is_cleaned_and_lower_cased(value, expected):
    assert normalize_email(value) == expected


def test_email_with_a_trailing_dot_or_two_ats_is_a_problem():
    with pytest.raises(CellValueError) as err:
        normalize_email("fjerde@example.com.")
    assert str(err.value) == "'fjerde@example.com.' ends with a dot — remove the dot at the end"
    with pytest.raises(CellValueError) as err:
        normalize_email("a@b@example.com")
    assert str(err.value) == "'a@b@example.com' has more than one @ — write one email address per row"


# --- text, codes, headers (P3, P8, P14, P15, P17) --------------------------------------------


def test_clean_text_keeps_na_none_and_null():
    assert clean_text("NA") == "NA"
    assert clean_text("None") == "None"
    assert clean_text("null") == "null"
    assert clean_text(" \u00a0 ") is None
    assert clean_text("Søren\u00a0Test\u200b") == "Søren Test"
    assert clean_text("A\u030ase") == "Åse"  # decomposed (macOS) becomes composed
    assert clean_text(12.0) == "12"
    assert clean_text(dt.date(2024, 3, 5)) == "2024-03-05"


def test_codes_are_upper_cased_and_namibia_survives():
    assert normalize_code(" na ") == "NA"
    assert normalize_code("dkk") == "DKK"
    assert normalize_code("") is None


@pytest.mark.parametrize("header, key", [
    ("\ufeffNavn", "navn"),
    ("E-mail", "email"),
    ("E-MAIL\u00a0", "email"),
    ("e_mail", "email"),
    ("Email Address", "emailaddress"),
    ("Beløb (DKK)", "beløb"),
    ("Beløb (kr.)", "beløb"),
    ("Pris [kr]", "pris"),
    ("Værdi i kr", "værdi"),
    ("Beløb DKK", "beløb"),
    ("Antal stk.", "antalstk"),
    ("Post nr.", "postnr"),
    ("Tlf.\u200b", "tlf"),
    ("(DKK)", "(dkk)"),  # a header that is only a unit keeps it
])
def test_header_normalisation(header, key):
    assert normalize_header(header) == key


def test_clean_header_is_the_header_as_written_without_invisible_characters():
    assert clean_header("\ufeffNavn ") == "Navn"
    assert clean_header("Beløb\u00a0(DKK)") == "Beløb (DKK)"
    assert clean_header(2024.0) == "2024"


@pytest.mark.parametrize("text, expected", [
    ("'=SUM(A1)", "=SUM(A1)"),
    ("'+4512345678", "+4512345678"),
    ("'-50", "-50"),
    ("'@navn", "@navn"),
    ("'\n=x", "\n=x"),
    ("''=x", "''=x"),  # the writer never guards text that starts with ' : this one is data
    ("'hej", "'hej"),  # not a guard: the apostrophe is data
    ("=SUM(A1)", "=SUM(A1)"),
])
def test_formula_guard_is_stripped_exactly_once(text, expected):
    assert strip_formula_guard(text) == expected
