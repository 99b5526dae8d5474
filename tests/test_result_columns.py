"""The Result sheet's columns: each case a row can be in, and the values its line gets."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

from builders import make_sheet, person

from flexybulk.journal import RowRecord, Step
from flexybulk.model import Catalogue, RowStatus
from flexybulk.records import order_content
from flexybulk.result_columns import COLUMNS, result_columns
from flexybulk.results import TO_DO
from flexybulk.sandbox import default_catalogue
from flexybulk.client import parse_catalogue
from flexybulk.validate import validate

STAMP = "2026-12-01T10:15:00+00:00"


def _catalogue() -> Catalogue:
    raw = default_catalogue()
    return Catalogue(types=tuple(parse_catalogue(raw["types"], "type")),
                     departments=tuple(parse_catalogue(raw["departments"], "department")))


def _record(check, status, step, *, content=None, commit_content=None, certificates=(), issued_at=None, error=None):
    n = check.row.number
    return RowRecord(batch_id="b", row_number=n, status=status, step=step, fingerprint=check.fingerprint,
                     content=content, customer_id=f"c-{n}", sales_order_id=f"o-{n}", payment_id=f"p-{n}",
                     payment_amount=None, commit_content=commit_content, certificate_numbers=list(certificates),
                     error=error, settles=None, created_at=STAMP, updated_at=STAMP, issued_at=issued_at)


def _mixed():
    """Twelve rows, one of each case the Result sheet knows, and the ledger's record of each."""
    rows = [person(i, amount=str(100 + i) + ".50", department="Webshop" if i % 2 else "Aarhus") for i in range(12)]
    rows[6] = person(6, email="not an address")  # invalid now
    rows[7] = person(7, type="Ukendt")  # invalid now, never sent
    validation = validate(make_sheet(rows), _catalogue())
    checks = validation.checks
    recs = []
    for i, c in enumerate(checks):
        content = order_content(c.order) if c.order is not None else None
        issued = dict(content=content, certificates=[f"9{i}0", f"9{i}1"][: c.order.quantity] if c.order else [],
                      issued_at=STAMP)
        if i in (0, 1, 2):
            recs.append(_record(c, RowStatus.ISSUED, Step.COMMITTED, **issued))
        elif i == 3:  # issued, then its line edited: the content recorded differs
            recs.append(_record(c, RowStatus.ISSUED, Step.COMMITTED, **{**issued, "content": {**content, "price": "999.00"}}))
        elif i == 4:
            recs.append(None)  # not in the ledger: PENDING
        elif i == 5:  # a commit that may have gone through, for other money than the line says now
            recs.append(_record(c, RowStatus.UNKNOWN, Step.COMMIT, content=content,
                                commit_content={**content, "price": "77.25", "quantity": 2}, error="lost answer"))
        elif i == 6:  # issued before the line became invalid
            good = order_content(checks[0].order)
            recs.append(_record(c, RowStatus.ISSUED, Step.COMMITTED, content={**good, "email": "ida@example.com"},
                                certificates=["960"], issued_at=STAMP))
        elif i == 7:
            recs.append(_record(c, RowStatus.PENDING, Step.PLANNED, content=None))
        elif i == 8:
            recs.append(_record(c, RowStatus.FAILED, Step.ORDER, content=content, error="Flexybox refused"))
        elif i == 9:  # ISSUED with no time recorded and no numbers (an adopted sheet's row)
            recs.append(_record(c, RowStatus.ISSUED, Step.COMMITTED, content=content))
        elif i == 10:  # a content of another shape (an older version's record)
            recs.append(_record(c, RowStatus.ISSUED, Step.COMMITTED, **{**issued, "content": {**content, "extra": 1}}))
        else:
            recs.append(_record(c, RowStatus.ISSUED, Step.COMMITTED, **{**issued, "issued_at": "2026-12-01T11:00:00+00:00"}))
    return checks, recs


def test_each_case_gets_its_status_money_ids_and_attention():
    checks, recs = _mixed()
    fast = result_columns(checks, recs, TO_DO)
    assert set(fast.columns) == set(COLUMNS) and all(len(v) == 12 for v in fast.columns.values())
    assert fast.currencies == ["DKK"] * 12
    status = fast.columns["Status"]
    assert [s.value for s in status] == ["ISSUED", "ISSUED", "ISSUED", "ISSUED", "PENDING", "UNKNOWN", "ISSUED",
                                         "INVALID", "FAILED", "ISSUED", "ISSUED", "ISSUED"]
    assert fast.columns["AmountRead"][:4] == [Decimal("100.50"), Decimal("101.50"), Decimal("102.50"), Decimal("999.00")]
    assert fast.columns["AmountRead"][5] == Decimal("77.25") and fast.columns["LineTotal"][5] == Decimal("154.50")
    assert fast.columns["LineTotal"][2] == Decimal("102.50") * checks[2].order.quantity
    assert fast.columns["Error"][3].startswith("Issued as: ") and fast.columns["Error"][0] is None
    assert fast.columns["CustomerId"][7] is None and fast.columns["CustomerId"][8] == f"c-{checks[8].row.number}"
    assert fast.columns["GiftCertificateNumbers"][9] is None and fast.columns["IssuedAt"][9] is None
    assert fast.columns["IssuedAt"][11] == datetime.fromisoformat("2026-12-01T11:00:00+00:00").astimezone()
    assert [a[0] for a in fast.attention] == [checks[i].row.number for i in (3, 4, 5, 6, 7, 8, 10)]
    issued_rows = sum(entry[0] for entry in fast.issued.values())
    assert issued_rows == 8  # rows 0-3, 6, 9, 10, 11
    money = sum(entry[2] for entry in fast.issued.values())
    expected = sum(Decimal(r.content["price"]) * int(r.content["quantity"]) for r in recs
                   if r is not None and r.status is RowStatus.ISSUED)
    assert money == expected


def test_every_row_issued_as_committed():
    """The shape of a finished batch: every row ISSUED as its line says (the benchmark's case)."""
    rows = [person(i, amount=f"{200 + i % 7}.{i % 100:02d}") for i in range(300)]
    validation = validate(make_sheet(rows), _catalogue())
    recs = [_record(c, RowStatus.ISSUED, Step.COMMITTED, content=order_content(c.order),
                    certificates=[str(10 * k + q) for q in range(c.order.quantity)], issued_at=STAMP)
            for k, c in enumerate(validation.checks)]
    fast = result_columns(validation.checks, recs, TO_DO)
    assert fast.attention == [] and fast.columns["Error"] == [None] * 300
    assert fast.columns["AmountRead"] == [c.order.price for c in validation.checks]
    assert fast.columns["LineTotal"] == [c.order.price * c.order.quantity for c in validation.checks]
    assert fast.columns["GiftCertificateNumbers"][4] == ", ".join(str(40 + q) for q in range(validation.checks[4].order.quantity))
    assert sum(e[0] for e in fast.issued.values()) == 300
    assert sum(e[2] for e in fast.issued.values()) == sum(c.order.price * c.order.quantity for c in validation.checks)
    assert sum(e[1] for e in fast.issued.values()) == sum(c.order.quantity for c in validation.checks)


def test_a_non_finite_recorded_price_has_no_line_total():
    rows = [person(i) for i in range(3)]
    validation = validate(make_sheet(rows), _catalogue())
    recs = [_record(c, RowStatus.ISSUED, Step.COMMITTED, content=order_content(c.order), issued_at=STAMP)
            for c in validation.checks]
    odd = dataclasses.replace(validation.checks[1], order=dataclasses.replace(validation.checks[1].order,
                                                                              price=Decimal("NaN")))
    checks = [validation.checks[0], odd, validation.checks[2]]
    recs[1] = dataclasses.replace(recs[1], content=order_content(odd.order))
    fast = result_columns(checks, recs, TO_DO)
    assert fast.columns["LineTotal"][0] == Decimal(250) * checks[0].order.quantity
    assert fast.columns["LineTotal"][1] is None and fast.columns["AmountRead"][1].is_nan()
