"""A vendor's refusal in the words of the person's sheet (issue #13).

Flexybox refuses a call by naming the request field at fault
(``GiftCertificates.GiftCertificates[0].Price``, ``EmailAddress``;
``shared/flexybox-api.md`` part B). A coordinator knows the sheet, not the
API: :class:`RefusalWords` says which column of *their* sheet holds the value
that was refused ("Flexybox refused the amount in Beløb (D): ...") and what to
correct. It is built from the sheet's ``column_map`` and ``column_letters``
(:meth:`RefusalWords.for_sheet`) by the use case that knows the sheet
(``batches.Issuing.run``) and handed to the runner, which knows no sheet.

A refusal that names no field, or one this module does not know, falls back
to the server's own message, cleaned (no doubled period, no repeated field
path). The raw answer itself is kept in the audit log (:mod:`.audit`).

Nothing here decides a row's status: :func:`flexybulk.outcome.after_failure`
does, and uses these words only for a definite refusal (FAILED).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping

from .answers import refusal_parts
from .errors import ApiError
from .model import Field, Sheet

# API field (its last path segment, lower case) -> (what it is, in words; the input fields holding it; content key).
# The customer's fields are the vendor's customer body (part A); the rest are the sales order's and its line's.
_FIELDS: dict[str, tuple[str, tuple[Field, ...], str | None]] = {
    "fullname": ("name", (Field.NAME,), "name"),
    "emailaddress": ("email address", (Field.EMAIL,), "email"),
    "phonenumber": ("phone number", (Field.PHONE,), "phone"),
    "streetaddress": ("address", (Field.ADDRESS,), "address"),
    "postalcode": ("postal code", (Field.POSTAL_CODE,), "postal_code"),
    "postaldistrict": ("city", (Field.CITY,), "city"),
    "countrycode": ("country", (Field.COUNTRY,), "country"),
    "price": ("amount", (Field.AMOUNT,), "price"),
    "quantity": ("quantity", (Field.QUANTITY,), "quantity"),
    "giftcertificatetypeid": ("gift certificate type", (Field.TYPE,), "type_name"),
    "departmentid": ("department", (Field.DEPARTMENT,), "department_name"),
    "currency": ("currency", (Field.CURRENCY,), "currency"),
}
# A name read from a first-name and a last-name column (Mailchimp exports) was refused in both.
_NAME_PARTS = (Field.FIRST_NAME, Field.LAST_NAME)

_SEGMENT = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class Refused:
    """A refusal in words: ``lead`` says what was refused and why, ``fix`` what to do.

    ``lead`` ends without a period: ``"Flexybox refused the amount in Beløb (D):
    Price 600 is above the maximum price 500 of gift certificate type 'Gavekort'"``;
    ``fix`` is a whole sentence.
    """

    lead: str
    fix: str


_FIX_ROW = "Correct the row in the result sheet and run flexybulk retry on it."


@dataclass(frozen=True)
class RefusalWords:
    """Turns a refusal into the sheet's words. Callable as ``words(step, exc, content)`` -> :class:`Refused`.

    Attributes:
        columns: input field name (``model.Field`` value) -> the sheet's header (``Sheet.column_map``).
        letters: header -> column letter (``Sheet.column_letters``).
        payment_type: the external payment's ``Type`` the run sends (named when it is refused).

    Without columns (the default), a refused field is named in words only
    ("the amount"), with the value that was sent.
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    letters: Mapping[str, str] = field(default_factory=dict)
    payment_type: str | None = None

    @classmethod
    def for_sheet(cls, sheet: Sheet, payment_type: str | None = None) -> "RefusalWords":
        """The words for refusals of rows read from ``sheet`` (an input or a result sheet given back)."""
        return cls(dict(sheet.column_map), dict(sheet.column_letters), payment_type)

    def column(self, fld: Field) -> str | None:
        """``"Beløb (D)"``: the sheet's header of ``fld`` with its letter, or ``None`` when the sheet has no such column."""
        header = self.columns.get(fld.value)
        if header is None:
            return None
        letter = self.letters.get(header)
        return f"{header} ({letter})" if letter else header

    def __call__(self, step: str, exc: ApiError, content: dict | None = None) -> Refused:
        """What Flexybox refused in the ``step`` call (``"customer"``, ``"sales order"``, ``"commit"``) and what to do.

        ``content`` is what the call was sent for (the ledger's recorded order
        content), so that a value without a column can be named.
        """
        api_field, said = refusal_parts(exc.response_body)
        message = clean_message(said or exc.server_message or str(exc), api_field)
        content = content or {}
        path = (api_field or "").strip()
        last = _SEGMENT.sub("", path.rsplit(".", 1)[-1]).strip().lower()
        if path.lower().startswith("payments"):
            if last == "amount":
                amount, quantity = self.column(Field.AMOUNT), self.column(Field.QUANTITY)
                if amount and quantity:
                    return Refused(f"Flexybox refused the payment amount ({amount} × {quantity}): {message}",
                                   f"Correct {amount} or {quantity} in the result sheet and run flexybulk retry on it.")
            elif last == "type":
                named = f"payment type {self.payment_type}" if self.payment_type else "payment type"
                return Refused(f"Flexybox refused the {named} of the commit: {message}",
                               "Nothing in the row needs correcting: run flexybulk retry on the result sheet with "
                               "another payment type (--payment-type).")
            return Refused(f"Flexybox refused the {step}: {message}", _FIX_ROW)
        known = _FIELDS.get(last)
        if known is None:
            return Refused(f"Flexybox refused the {step}: {message}", _FIX_ROW)
        what, fields, key = known
        columns = [c for c in map(self.column, fields) if c]
        if not columns and fields == (Field.NAME,):
            columns = [c for c in map(self.column, _NAME_PARTS) if c]
        if columns:
            where = " and ".join(columns)
            return Refused(f"Flexybox refused the {what} in {where}: {message}",
                           f"Correct {where} in the result sheet and run flexybulk retry on it.")
        value = _shown(content, key)
        return Refused(f"Flexybox refused the {what}" + (f" {value}" if value else "") + f": {message}", _FIX_ROW)


def clean_message(text: str, api_field: str | None = None) -> str:
    """The server's words made to fit inside a sentence.

    Strips whitespace, a leading ``"<field>: "`` (the field is named in
    words already), a period before a parenthesis (the client's ``"...
    s. (gave up after 5 attempts)"``) and the final periods
    (``"Julegavekort.."`` -> ``"Julegavekort"``), so that the sentence it
    goes into adds exactly one.
    """
    text = " ".join(str(text).split())
    text = re.sub(r"\.+ \(", " (", text)  # "no answer within 60 s. (gave up after 5 attempts)": the note is inside the sentence
    if api_field and text.lower().startswith(api_field.lower() + ":"):
        text = text[len(api_field) + 1:].lstrip()
    return text.rstrip(". ") or text


def _shown(content: dict, key: str | None) -> str | None:
    """The value that was sent, for a field the sheet has no column of (a default, say): ``"600.00 DKK"``, ``"Webshop"``."""
    value = content.get(key) if key else None
    if value is None or value == "":
        return None
    if key == "price":
        return f"{Decimal(str(value)):.2f} {content.get('currency', '')}".rstrip()
    return str(value)


__all__ = ["Refused", "RefusalWords", "clean_message"]
