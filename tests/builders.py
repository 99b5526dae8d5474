"""Small builders for tests: sheets made in memory, without the reader."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

from flexybulk.model import InputRow, Sheet

HEADERS = {
    "name": "Navn", "email": "E-mail", "type": "Gavekorttype", "amount": "Beløb", "quantity": "Antal",
    "department": "Afdeling", "phone": "Telefon", "address": "Adresse", "postal_code": "Postnr", "city": "By",
    "country": "Land", "currency": "Valuta",
}
LETTERS = "ABCDEFGHIJKL"


def make_sheet(rows: list[dict[str, Any]], *, name: str = "liste.xlsx", first_row: int = 2, fields: list[str] | None = None) -> Sheet:
    """A Sheet whose rows have these parsed field values (amounts as text become Decimal)."""
    fields = fields or ["name", "email", "type", "amount", "quantity", "department"]
    headers = [HEADERS[f] for f in fields]
    input_rows = []
    for i, values in enumerate(rows):
        parsed = {}
        for key, value in values.items():
            if key == "amount" and isinstance(value, (str, int)):
                value = Decimal(str(value))
            parsed[key] = value
        original = {HEADERS[f]: values.get(f) for f in fields}
        input_rows.append(InputRow(first_row + i, {k: v for k, v in parsed.items() if v is not None}, original, []))
    digest = hashlib.sha256((name + repr(rows)).encode()).hexdigest()
    return Sheet(Path(name), "xlsx", "Ark1", first_row - 1, headers, {f: HEADERS[f] for f in fields},
                 {h: LETTERS[i] for i, h in enumerate(headers)}, input_rows, sha256=digest)


def person(i: int, **overrides: Any) -> dict[str, Any]:
    """A valid recipient row number ``i`` on the sandbox catalogue."""
    row = {"name": f"Test Person {i}", "email": f"person.{i}@example.com", "type": "Gavekort",
           "amount": "250", "quantity": 1 + i % 3, "department": "Webshop"}
    row.update(overrides)
    return row


def refuse_customer(monkeypatch, state, email: str, message: str, field: str | None = None) -> None:
    """Make the sandbox ``state`` refuse (400) the customer PUT of ``email``, as a vendor refuses a blocked
    address although its syntax is fine; every other customer is saved as usual."""
    from flexybulk.sandbox.state import Refusal

    real = state.put_customer

    def refusing(customer_id, body):
        if body.get("EmailAddress") == email:
            raise Refusal(400, message, field)
        return real(customer_id, body)

    monkeypatch.setattr(state, "put_customer", refusing)
