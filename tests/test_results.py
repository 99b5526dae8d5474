"""The result and validation sheets as people see them (issue #13), and amounts that read back exactly.

Sheets are written by the real CLI against the sandbox and opened with
openpyxl (another program than the one that wrote them); amounts come back
through flexybulk's own reader too.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from clirun import flexybulk
from flexybulk.journal import Journal
from flexybulk.model import RowStatus
from flexybulk.results import OWN_COLUMNS, OutputRow, OutputSheet, write_output
from flexybulk.sandbox.state import Refusal
from flexybulk.reading import RESULT_COLUMNS as READER_OWN, ReadOptions, read_sheet
from flexybulk.writers import STATUS_COLOURS, Heading, Label, Money

HEADERS = ["Navn", "E-mail", "Gavekorttype", "Beløb", "Antal", "Afdeling", "Note"]
ROWS = [  # sheet rows 2..9
    ("Ida Hansen", "ida.hansen@example.com", "Gavekort", 499.95, 2, "Webshop", "Julegave"),
    ("Søren Østergaard", "soeren@example.org", "Julegavekort", "1.250,00", 1, "København", None),
    ("Åse Møller", "aase@example.net", "Gavekort", "499,95", 3, "Aarhus", "=HYPERLINK(\"http://x\")"),
    ("Mette Kjærgaard", "mette@example.com", "Oplevelsesgavekort", 100000, 1, "Odense", "PENDING here"),
    ("Lars Jensen", "lars@example.com", "Gavekrot", 250, 1, "Webshop", None),
    ("Magnus Pedersen", "magnus@example.com", "Firmagavekort", 0.01, 5, "København", "FAILED here"),
    ("Anne Larsen", "anne.larsen.med.en.lang.adresse@eksempel-virksomhed.dk", "Gavekort", 1234.5, 1, "Aarhus", None),
    ("Bo Ek", "bo@example.com", "Firmagavekort", 9.87, 4, "Webshop", None),
]
ISSUED_ROWS = {2: ("499.95", 2), 3: ("1250.00", 1), 4: ("499.95", 3), 8: ("1234.5", 1), 9: ("9.87", 4)}
EXPECTED_STATUS = {2: "ISSUED", 3: "ISSUED", 4: "ISSUED", 5: "PENDING", 6: "INVALID", 7: "FAILED", 8: "ISSUED", 9: "ISSUED"}


def _input(path: Path, rows=ROWS) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Modtagere"
    ws.append(HEADERS)
    for r in rows:
        ws.append(list(r))
    for row in ws.iter_rows(min_row=2, min_col=7, max_col=7):
        for cell in row:
            cell.data_type = "s"  # the note is text, even the one that looks like a formula
    wb.save(path)
    return path


@pytest.fixture
def mixed_result(tmp_path, sandbox_env):
    """The ROWS issued with --skip-invalid: row 5's customer call unanswered (PENDING: no commit was sent, issue #13),
    row 7's order refused (FAILED)."""
    src = _input(tmp_path / "kampagne.xlsx")
    state = sandbox_env.state
    real_customer, real_order = state.put_customer, state.put_order
    magnus = set()

    def customer(customer_id, body):
        if body.get("EmailAddress") == "mette@example.com":
            raise Refusal(503, "busy")
        if body.get("EmailAddress") == "magnus@example.com":
            magnus.add(str(customer_id).lower())
        return real_customer(customer_id, body)

    def order(body):
        if str(body.get("CustomerId")).lower() in magnus:
            raise Refusal(400, "Department is closed for this gift certificate type")
        return real_order(body)

    state.put_customer, state.put_order = customer, order
    try:
        run = flexybulk("issue", src, "--yes", "--skip-invalid", "--max-attempts", "1")
    finally:
        del state.put_customer, state.put_order
    assert run.code == 1, run.output
    return tmp_path / "kampagne.result.xlsx"


def _widths(ws) -> dict[str, float]:
    """Column letter -> width, with ranges of equal columns (one ``<col min max>`` element) spread out."""
    widths = {}
    for dim in ws.column_dimensions.values():
        for index in range(dim.min, dim.max + 1):
            widths[openpyxl.utils.get_column_letter(index)] = int(dim.width)  # XlsxWriter adds 0.71 (its padding)
    return widths


def _table(ws) -> tuple[list[str], list[list]]:
    rows = [list(r) for r in ws.iter_rows()]
    return [c.value for c in rows[0]], rows[1:]


def _summary_table(ws, title: str) -> dict[str, openpyxl.cell.Cell]:
    """A Summary table's name -> its money cell (the lines under ``title`` and its column names)."""
    rows = list(ws.iter_rows())
    start = next(i for i, r in enumerate(rows) if r[0].value == title)
    assert [c.value for c in rows[start + 1][:4]] == [rows[start + 1][0].value, "Rows", "Gift certificates", "Money"]
    table = {}
    for r in rows[start + 2:]:
        if r[0].value is None:
            break
        table[r[0].value] = r
    return table


def test_result_sheet_is_styled_typed_and_its_summary_equals_the_sandbox(mixed_result, sandbox_env, isolated_env):
    wb = openpyxl.load_workbook(mixed_result)
    assert wb.sheetnames == ["Result", "Summary", "Needs attention"]
    ws = wb["Result"]
    headers, rows = _table(ws)
    assert headers == HEADERS + ["AmountRead", "LineTotal", "Status", "Error", "GiftCertificateNumbers", "IssuedAt",
                                 "CustomerId", "SalesOrderId", "ExternalPaymentId", "BatchId", "Row"]
    col = {h: i for i, h in enumerate(headers)}
    letter = {h: openpyxl.utils.get_column_letter(i + 1) for h, i in col.items()}
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{letter['Row']}9"
    assert all(c.font.b for c in ws[1])
    widths = _widths(ws)
    for h in headers:  # every column has a width fitted to its header and content, capped
        width = widths[letter[h]]
        longest = max(len(str(r[col[h]].value or "")) for r in rows)
        assert len(h) + 3 <= width <= 61, (h, width)
        if h not in ("Error", "AmountRead", "LineTotal", "IssuedAt", "GiftCertificateNumbers"):
            assert width >= min(longest, 50), (h, width, longest)
    assert widths[letter["E-mail"]] == 50 and widths[letter["SalesOrderId"]] == 37  # capped; a GUID and a margin

    with Journal(isolated_env) as journal:
        records = {r.row_number: r for r in journal.rows(rows[0][col["BatchId"]].value)}
    for r in rows:
        number = r[col["Row"]].value
        status = r[col["Status"]]
        assert status.value == EXPECTED_STATUS[number]
        assert status.fill.fgColor.rgb == "FF" + STATUS_COLOURS[status.value][0][1:], number
        assert r[col["Note"]].value == ROWS[number - 2][6]  # input values exactly as read
        amount, total, issued_at = r[col["AmountRead"]], r[col["LineTotal"]], r[col["IssuedAt"]]
        assert amount.data_type == "n" and total.data_type == "n"
        assert amount.number_format == total.number_format == '#,##0.00 "DKK"'
        if number in ISSUED_ROWS:
            price, quantity = ISSUED_ROWS[number]
            assert Decimal(repr(amount.value)) == Decimal(price)
            assert Decimal(repr(total.value)) == Decimal(price) * quantity
            local = datetime.fromisoformat(records[number].issued_at).astimezone().replace(tzinfo=None)
            assert isinstance(issued_at.value, datetime) and issued_at.is_date
            assert issued_at.value == local
        else:
            assert issued_at.value is None
        if r[col["Error"]].value:
            assert r[col["Error"]].alignment.wrap_text
    assert rows[2][col["Note"]].quotePrefix and rows[2][col["Note"]].data_type == "s"

    # The Summary's money is the sandbox's: per gift certificate type, per department, per currency.
    state = sandbox_env.state
    type_names = {t["Id"]: t["Name"] for t in state.types}
    department_names = {d["Id"]: d["Name"] for d in state.departments}
    orders = {o["Id"]: o for o in state.orders.values()}
    per_type, per_department = defaultdict(Decimal), defaultdict(Decimal)
    for cert in state.certificates:
        per_type[type_names[cert["GiftCertificateTypeId"]]] += Decimal(str(cert["Amount"]))
        per_department[department_names[orders[cert["SalesOrderId"]]["DepartmentId"]]] += Decimal(str(cert["Amount"]))
    summary = wb["Summary"]
    for title, expected in (("Issued per gift certificate type", per_type), ("Issued per department", per_department),
                            ("Issued per currency", {"DKK": sum(per_type.values())})):
        table = _summary_table(summary, title)
        assert {name: Decimal(repr(r[3].value)) for name, r in table.items()} == dict(expected), title
        assert all(r[3].number_format == '#,##0.00 "DKK"' and r[3].data_type == "n" for r in table.values())
    assert sum(per_type.values()) == Decimal("5023.73")  # 2 × 499.95 + 1,250 + 3 × 499.95 + 1,234.50 + 4 × 9.87
    statuses = {r[0].value: r for r in summary.iter_rows() if r[0].value in STATUS_COLOURS}
    assert {s: r[1].value for s, r in statuses.items()} == {"ISSUED": 5, "FAILED": 1, "UNKNOWN": 0, "PENDING": 1,
                                                            "SKIPPED": 0, "EXCLUDED": 0, "INVALID": 1}
    assert all(r[0].fill.fgColor.rgb == "FF" + STATUS_COLOURS[s][0][1:] for s, r in statuses.items())  # the legend
    labels = {r[0].value: r[1].value for r in summary.iter_rows() if r[0].value}
    assert labels["Target"] == sandbox_env.url and labels["Sheet"] == "Modtagere" and len(labels["SHA-256 of the input file"]) == 64
    assert isinstance(labels["Written at"], datetime)

    attention_headers, attention = _table(wb["Needs attention"])
    assert attention_headers == ["Row", "Status", "Who", "What to do", "Details"]
    assert [(r[0].value, r[1].value, r[2].value) for r in attention] == [
        (5, "PENDING", "Mette Kjærgaard, mette@example.com"), (6, "INVALID", "Lars Jensen, lars@example.com"),
        (7, "FAILED", "Magnus Pedersen, magnus@example.com")]
    assert attention[0][3].value == "Run flexybulk retry on this sheet to finish the row (same ids, nothing issued twice)."
    assert "Department is closed" in attention[2][4].value and "Gavekrot" in attention[1][4].value


def test_a_result_sheet_is_read_back_from_its_result_sheet_only(mixed_result):
    """Summary and Needs attention hold no recipient-list header: the reader never sees a second candidate."""
    for options in (ReadOptions(), ReadOptions(columns={"amount": "Beløb", "type": "Gavekorttype"})):
        sheet = read_sheet(mixed_result, options)
        assert sheet.sheet_name == "Result"
        assert [r.number for r in sheet.rows] == list(range(2, 10))
        assert not {"AmountRead", "LineTotal", "Status", "IssuedAt"} & set(sheet.column_map.values())
    assert OWN_COLUMNS <= set(READER_OWN)  # every column flexybulk adds is its own to the reader


def test_retry_reads_every_amount_back_equal_and_sends_nothing(tmp_path, sandbox_env, isolated_env):
    amounts = [0.01, 0.1, 0.2, 0.3, 9.87, 19.99, 1234.5, 99999.99, 100000, "1.250,00", "499,95", "0,30", "100.000,00"]
    rows = [(f"Person {i}", f"p{i}@example.com", "Gavekort", a, 1 + i % 3, "Webshop", None) for i, a in enumerate(amounts)]
    src = _input(tmp_path / "kanter.xlsx", rows)
    assert flexybulk("issue", src, "--yes").code == 0
    result = tmp_path / "kanter.result.xlsx"
    back = read_sheet(result)
    with Journal(isolated_env) as journal:
        prices = {r.row_number: Decimal(r.content["price"]) for r in journal.rows(back.rows[0].original["BatchId"])}
    assert {r.number: r.fields["amount"] for r in back.rows} == prices
    assert {r.number: Decimal(str(r.original["AmountRead"])) for r in back.rows} == prices
    assert [r.original["Beløb"] for r in back.rows] == [r.original["Beløb"] for r in read_sheet(src).rows]

    sent = [r for r in sandbox_env.state.requests if r[0] != "GET"]
    counts = sandbox_env.state.counts()
    run = flexybulk("retry", result, "--yes")
    assert run.code == 0, run.output
    assert [r for r in sandbox_env.state.requests if r[0] != "GET"] == sent  # nothing sent: only the catalogue read
    assert sandbox_env.state.counts() == counts
    ws = openpyxl.load_workbook(result)["Result"]
    headers, lines = _table(ws)
    assert {r[headers.index("Status")].value for r in lines} == {"ISSUED"}
    assert all(r[headers.index("Error")].value is None for r in lines)  # never read as edited


EDGE_AMOUNTS = ["0.01", "0.10", "0.29", "0.30", "9.87", "19.99", "1234.5", "99999.99", "100000.00",
                "4503599627370.49", "12345678.91", "99999999.99", "0", "-0.01"]


def test_amounts_read_back_exactly_through_both_writers_paths(tmp_path):
    """Input cells and typed columns (rendered here: str of the Decimal) and the Summary (XlsxWriter: %.16G)."""
    rng = random.Random(13)
    amounts = [Decimal(a) for a in EDGE_AMOUNTS] + [Decimal(rng.randrange(0, 10**10)) / 100 for _ in range(3000)]
    rows = [OutputRow(i + 2, {"Navn": f"P{i}", "E-mail": f"p{i}@example.com", "Beløb": a},
                      {"AmountRead": Money(a, "DKK"), "Status": RowStatus.VALID, "Row": i + 2})
            for i, a in enumerate(amounts)]
    summary = [[Heading("Amounts")]] + [[Label(f"a{i}"), Money(a, "EUR"), a] for i, a in enumerate(amounts)]
    path = write_output(OutputSheet(["Navn", "E-mail", "Beløb"], ["Status", "Row"], rows, summary=summary,
                                    typed_columns=["AmountRead"]), tmp_path / "kanter.xlsx")
    sheet = read_sheet(path)
    assert [r.fields.get("amount") for r in sheet.rows] == amounts
    assert [Decimal(str(r.original["AmountRead"])) for r in sheet.rows] == amounts
    wb = openpyxl.load_workbook(path)
    got = [(Decimal(repr(r[1].value)), Decimal(repr(r[2].value)), r[1].number_format)
           for r in wb["Summary"].iter_rows(min_row=2)]
    assert got == [(a, a, '#,##0.00 "EUR"') for a in amounts]


def test_absurd_amounts_still_give_a_validation_sheet(tmp_path, sandbox_env):
    """An amount no number cell can hold (1E+400, NaN) or past 15 digits: the sheet is still written."""
    path = tmp_path / "absurd.csv"
    path.write_text("Navn;E-mail;Gavekorttype;Afdeling;Beløb\n"
                    "A;a@example.com;Gavekort;Webshop;1000000000000000000000000000000\n"
                    "B;b@example.com;Gavekort;Webshop;1e400\n"
                    "D;d@example.com;Gavekort;Webshop;250\n", encoding="utf-8")
    run = flexybulk("validate", path)
    assert run.code == 1 and "unexpected" not in run.output
    ws = openpyxl.load_workbook(tmp_path / "absurd.validation.xlsx")["Validation"]
    headers, rows = _table(ws)
    amount = headers.index("AmountRead")
    assert [r[amount].value for r in rows] == [10**30, None, 250]
    assert [r[headers.index("Status")].value for r in rows] == ["INVALID", "INVALID", "VALID"]
    attention_headers, attention = _table(openpyxl.load_workbook(tmp_path / "absurd.validation.xlsx")["Needs attention"])
    assert [(r[0].value, r[1].value) for r in attention] == [(2, "INVALID"), (3, "INVALID")]
    assert attention[0][3].value == "Correct the cells named in Details in the input file, then validate again."


def test_validation_summary_totals_per_type_and_department(tmp_path, sandbox_env):
    src = _input(tmp_path / "kampagne.xlsx")
    run = flexybulk("validate", src)
    assert run.code == 1
    wb = openpyxl.load_workbook(tmp_path / "kampagne.validation.xlsx")
    ws = wb["Validation"]
    headers, rows = _table(ws)
    assert headers[-6:] == ["AmountRead", "LineTotal", "Status", "Error", "Warning", "Row"]
    assert ws.auto_filter.ref == "A1:M9" and ws.freeze_panes == "A2"
    valid = [r for r in rows if r[headers.index("Status")].value == "VALID"]
    per_type = defaultdict(Decimal)
    for r in valid:
        per_type[r[headers.index("Gavekorttype")].value] += Decimal(repr(r[headers.index("LineTotal")].value))
    table = _summary_table(wb["Summary"], "Valid rows per gift certificate type")
    assert {name: Decimal(repr(r[3].value)) for name, r in table.items()} == dict(per_type)
    assert dict(per_type) == {"Gavekort": Decimal("3734.25"), "Julegavekort": Decimal("1250.00"),
                              "Oplevelsesgavekort": Decimal("100000"), "Firmagavekort": Decimal("39.53")}
    departments = _summary_table(wb["Summary"], "Valid rows per department")
    assert {name: (r[1].value, r[2].value) for name, r in departments.items()} == {
        "Aarhus": (2, 4), "København": (2, 6), "Odense": (1, 1), "Webshop": (2, 6)}


def test_same_content_is_order_content_compared():
    """The result sheet compares every ISSUED row's order with its recorded content without building the dict."""
    import dataclasses

    from flexybulk.model import CatalogueItem, Order
    from flexybulk.records import order_content
    from flexybulk.results import same_content

    order = Order(row=2, name="Ida Hansen", email="ida@example.com", type=CatalogueItem("t-1", "Gavekort"),
                  department=CatalogueItem(7, "Webshop"), price=Decimal("250.00"), quantity=2, currency="DKK",
                  country="DK", phone="+45 12345678", address="Skovvej 1", postal_code="8000", city="Aarhus")
    content = order_content(order)
    assert same_content(order, content) and same_content(order, dict(content))
    changed = {"name": "Ida Jensen", "email": "ida@example.org", "type_id": "t-2", "type_name": "Julegavekort",
               "department_id": 8, "department_name": "Odense", "price": "250", "quantity": 3, "currency": "EUR",
               "country": "SE", "phone": None, "address": "Skovvej 2", "postal_code": "8200", "city": "Viby"}
    assert set(changed) == set(content)  # every field order_content records is compared
    for key, value in changed.items():
        assert not same_content(order, {**content, key: value}), key
        assert (order_content(order) == {**content, key: value}) is False
    assert not same_content(order, {k: v for k, v in content.items() if k != "city"})
    assert not same_content(order, {**content, "extra": 1})
    assert not same_content(order, {**{k: v for k, v in content.items() if k != "city"}, "extra": 1})
    assert not same_content(dataclasses.replace(order, price=Decimal("250.0")), content)  # the text, as recorded


def test_output_rows_are_columns_seen_as_rows():
    from flexybulk.results import OutputRows

    rows = OutputRows([2, 3, 5], [{"Navn": "A"}, {"Navn": "B"}, {"Navn": "C"}],
                      {"Status": [RowStatus.VALID, RowStatus.INVALID, RowStatus.VALID], "Row": [2, 3, 5]})
    assert len(rows) == 3
    assert rows[1] == OutputRow(3, {"Navn": "B"}, {"Status": RowStatus.INVALID, "Row": 3})
    assert rows[-1].number == 5 and [r.number for r in rows] == [2, 3, 5] and [r.number for r in rows[1:]] == [3, 5]
    with pytest.raises(IndexError):
        rows[3]
    with pytest.raises(ValueError):
        OutputRows([2, 3], [{}, {}], {"Status": [RowStatus.VALID]})


def test_validation_sheet_as_csv_and_xlsx_hold_the_same_rows(tmp_path, sandbox_env):
    """The validation sheet's rows are columns (OutputRows); the CSV writer sees them as rows."""
    src = _input(tmp_path / "kampagne.xlsx")
    assert flexybulk("validate", src, "-o", tmp_path / "v.csv").code == 1
    assert flexybulk("validate", src, "-o", tmp_path / "v.xlsx").code == 1
    import csv

    lines = list(csv.reader((tmp_path / "v.csv").read_text(encoding="utf-8-sig").splitlines()))
    headers, rows = _table(openpyxl.load_workbook(tmp_path / "v.xlsx")["Validation"])
    assert lines[0] == HEADERS + ["Status", "Error", "Warning", "Row"]
    assert [line[lines[0].index("Status")] for line in lines[1:]] == [r[headers.index("Status")].value for r in rows]
    assert [int(line[-1]) for line in lines[1:]] == [r[headers.index("Row")].value for r in rows] == list(range(2, 10))
    assert [line[0] for line in lines[1:]] == [r[0] for r in ROWS]
