"""A vendor refusal in the sheet's words (issue #13): flexybulk.refusals and answers.refusal_parts.

Pure functions over errors shaped as the client raises them; the end-to-end
cases against the sandbox are in test_cli_refusals.py.
"""

from __future__ import annotations

import pytest

from builders import make_sheet, person
from flexybulk.answers import refusal_parts
from flexybulk.errors import ApiError
from flexybulk.model import RowStatus
from flexybulk.outcome import after_failure
from flexybulk.refusals import RefusalWords, clean_message

CONTENT = {"name": "Anna Hansen", "email": "anna@example.com", "type_name": "Julegavekort", "department_name": "Webshop",
           "price": "600", "quantity": 2, "currency": "DKK", "country": "DK", "postal_code": "8000"}


def refusal(field: str | None, message: str, *, status: int = 400, path: str = "/api/v1/salesorders") -> ApiError:
    body = {"Message": message, **({"Field": field} if field else {})}
    prefix = f"{field}: " if field and field.lower() not in message.lower() else ""
    return ApiError(f"PUT {path} answered {status} Bad Request: {prefix}{message}", status=status,
                    server_message=prefix + message, method="PUT", url="https://pos.flexybox.com" + path,
                    response_body=body)


@pytest.fixture
def words():
    # Navn (A), E-mail (B), Gavekorttype (C), Beløb (D), Antal (E), Afdeling (F), Telefon (G), Land (H)
    sheet = make_sheet([person(0)], fields=["name", "email", "type", "amount", "quantity", "department", "phone", "country"])
    return RefusalWords.for_sheet(sheet, payment_type="Mastercard")


@pytest.mark.parametrize("field, lead", [
    ("GiftCertificates.GiftCertificates[0].Price", "Flexybox refused the amount in Beløb (D)"),
    ("GiftCertificates.GiftCertificates[0].Quantity", "Flexybox refused the quantity in Antal (E)"),
    ("GiftCertificates.GiftCertificates[0].GiftCertificateTypeId", "Flexybox refused the gift certificate type in Gavekorttype (C)"),
    ("DepartmentId", "Flexybox refused the department in Afdeling (F)"),
    ("FullName", "Flexybox refused the name in Navn (A)"),
    ("EmailAddress", "Flexybox refused the email address in E-mail (B)"),
    ("emailaddress", "Flexybox refused the email address in E-mail (B)"),  # any case, as answers are read
    ("PhoneNumber", "Flexybox refused the phone number in Telefon (G)"),
    ("CountryCode", "Flexybox refused the country in Land (H)"),
    # No column in this sheet: the value that was sent (a default) is named instead.
    ("Currency", "Flexybox refused the currency DKK"),
    ("PostalCode", "Flexybox refused the postal code 8000"),
    ("PostalDistrict", "Flexybox refused the city"),
    ("Payments[0].ExternalPayment.Amount", "Flexybox refused the payment amount (Beløb (D) × Antal (E))"),
    ("Payments[0].ExternalPayment.Type", "Flexybox refused the payment type Mastercard of the commit"),
    # Fields this module does not know, or none: the call, with the server's message.
    ("Payments[0].ExternalPayment.Id", "Flexybox refused the sales order"),
    ("Checksum", "Flexybox refused the sales order"),
    (None, "Flexybox refused the sales order"),
])
def test_each_api_field_is_named_by_the_sheets_column(words, field, lead):
    said = words("sales order", refusal(field, "Not accepted."), CONTENT)
    assert said.lead == f"{lead}: Not accepted"


def test_the_fix_names_the_column_to_correct(words):
    said = words("sales order", refusal("GiftCertificates.GiftCertificates[0].Price", "Too high."), CONTENT)
    assert said.fix == "Correct Beløb (D) in the result sheet and run flexybulk retry on it."
    said = words("sales order", refusal("Currency", "Unknown."), CONTENT)
    assert said.fix == "Correct the row in the result sheet and run flexybulk retry on it."


def test_a_name_read_from_first_and_last_name_columns_names_both():
    sheet = make_sheet([person(0)])
    sheet.column_map = {"first_name": "Fornavn", "last_name": "Efternavn", "email": "E-mail"}
    sheet.column_letters = {"Fornavn": "A", "Efternavn": "B", "E-mail": "C"}
    said = RefusalWords.for_sheet(sheet)("customer", refusal("FullName", "Too long.", path="/api/v2/customers/x"), CONTENT)
    assert said.lead == "Flexybox refused the name in Fornavn (A) and Efternavn (B): Too long"


def test_the_issues_example_reads_as_one_clean_sentence(words):
    """The issue's report: a doubled period after the type's name, and the field path repeated in the message."""
    exc = refusal("GiftCertificates.GiftCertificates[0].Price",
                  "GiftCertificates.GiftCertificates[0].Price: Price exceeds the maximum for Julegavekort..")
    outcome = after_failure("sales order", exc, sales_order_id="so", commit_sent_before=False, sent=CONTENT,
                            describe_refusal=words)
    assert outcome.status == RowStatus.FAILED
    assert outcome.error == ("Flexybox refused the amount in Beløb (D): Price exceeds the maximum for Julegavekort. "
                             "Nothing was issued for this row. Correct Beløb (D) in the result sheet and run flexybulk "
                             "retry on it.")


def test_a_refusal_without_words_of_its_own_falls_back_to_the_call_and_status():
    exc = ApiError("PUT /api/v1/salesorders answered 422 Unprocessable Entity", status=422, method="PUT",
                   url="https://pos.flexybox.com/api/v1/salesorders")
    outcome = after_failure("sales order", exc, sales_order_id="so", commit_sent_before=False, sent=CONTENT)
    assert outcome.error == ("Flexybox refused the sales order: PUT /api/v1/salesorders answered 422 Unprocessable Entity. "
                             "Nothing was issued for this row. Correct the row in the result sheet and run flexybulk "
                             "retry on it.")


def test_refusal_parts_reads_the_sandboxs_body_and_aspnets_validation_problem():
    assert refusal_parts({"Message": "Bad.", "Field": "EmailAddress"}) == ("EmailAddress", "Bad.")
    assert refusal_parts({"message": "Bad."}) == (None, "Bad.")
    problem = {"type": "https://tools.ietf.org/html/rfc9110#section-15.5.1", "title": "One or more validation errors occurred.",
               "status": 400, "errors": {"GiftCertificates.GiftCertificates[0].Price": ["The price is too high."]}}
    assert refusal_parts(problem) == ("GiftCertificates.GiftCertificates[0].Price", "The price is too high.")
    two = {**problem, "errors": {"FullName": ["Required."], "EmailAddress": ["Required."]}}
    assert refusal_parts(two) == (None, "One or more validation errors occurred.")  # several fields: none is named
    assert refusal_parts("not json") == (None, None)


def test_clean_message_leaves_one_sentence_to_end():
    assert clean_message("  Price  too high.. ") == "Price too high"
    assert clean_message("Price: too high.", "price") == "too high"
    assert clean_message("no answer within 60 s. (gave up after 5 attempts)") == "no answer within 60 s (gave up after 5 attempts)"
    assert clean_message("Type…") == "Type…"
