"""flexybulk.writers: the XLSX cells it renders into XlsxWriter's workbook, read back by other programs."""

from __future__ import annotations

import zipfile
from decimal import Decimal

import openpyxl
import pytest
import xlsxwriter

from clirun import flexybulk
from flexybulk.model import RowStatus
from flexybulk.results import OutputRow, OutputSheet, write_output
from flexybulk.reading import read_sheet


def _write(tmp_path, texts: list, kinds: dict | None = None, **kw):
    rows = [OutputRow(i + 2, {"Text": t}, {"Status": RowStatus.FAILED, "Error": e, "Row": i + 2})
            for i, (t, e) in enumerate(texts)]
    sheet = OutputSheet(["Text"], ["Status", "Error", "Row"], rows, **kw)
    if kinds is not None:
        sheet.kinds = kinds
    return write_output(sheet, tmp_path / "out.xlsx")


def test_text_past_excels_limit_is_cut_before_escaping_and_edge_spaces_are_kept(tmp_path):
    long = "x" * 32765 + "&<>" + "y" * 10  # a cut at 32,767 characters falls inside "&amp;"
    path = _write(tmp_path, [(long, None), ("  two spaces  ", "\ttab first"), ("a\x01b\uffffc", "line\nbreak")])
    ws = openpyxl.load_workbook(path)["Result"]  # parses: the XML is well formed
    got = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    assert got[0][0] == long[:32767] and len(got[0][0]) == 32767
    assert got[1][:2] == ["  two spaces  ", "FAILED"] and got[1][2] == "\ttab first"
    assert ws["C3"].quotePrefix and not ws["A3"].quotePrefix
    assert got[2][0] == "a\ufffdb\ufffdc" and got[2][2] == "line\nbreak"


def test_rows_with_wrapped_text_get_the_height_it_needs(tmp_path):
    long_error = "Flexybox refused the sales order: " + "a reason that goes on " * 12
    path = _write(tmp_path, [("short", None), ("long", long_error)])
    ws = openpyxl.load_workbook(path)["Result"]
    assert ws["C3"].alignment.wrap_text and ws.column_dimensions["C"].width < len(long_error)
    assert ws.row_dimensions[3].height == 15 * 6  # 298 characters at 54 a line (90% of 60)
    assert ws.row_dimensions[2].height is None


def test_a_sheet_given_back_in_another_order_is_written_line_after_line(tmp_path):
    rows = [OutputRow(n, {"Text": f"row {n}"}, {"Status": RowStatus.ISSUED, "Row": n}) for n in (7, 3, 5)]
    path = write_output(OutputSheet(["Text"], ["Status", "Row"], rows), tmp_path / "sorted.xlsx")
    ws = openpyxl.load_workbook(path)["Result"]
    assert [[c.value for c in r] for r in ws.iter_rows()] == [
        ["Text", "Status", "Row"], ["row 7", "ISSUED", 7], ["row 3", "ISSUED", 3], ["row 5", "ISSUED", 5]]
    assert ws.auto_filter.ref == "A1:C4"


def test_the_header_below_a_title_keeps_its_row_and_the_frozen_pane_follows(tmp_path, sandbox_env):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Julegaver 2026"])
    ws.append([])
    ws.append(["Navn", "E-mail", "Gavekorttype", "Beløb", "Antal", "Afdeling", "Valuta"])
    ws.append(["Ida", "ida@example.com", "Gavekort", 250, 2, "Webshop", "EUR"])
    ws.append(["Bo", "bo@example.com", "Gavekort", "1.250,50", 1, "Aarhus", "DKK"])
    src = tmp_path / "titel.xlsx"
    wb.save(src)
    assert flexybulk("validate", src).code == 0
    book = openpyxl.load_workbook(tmp_path / "titel.validation.xlsx")
    out = book["Validation"]
    assert out.freeze_panes == "A4" and out.auto_filter.ref == "A3:M5"  # 7 input, 2 typed, 4 own columns
    assert [c.value for c in out[3]][:2] == ["Navn", "E-mail"] and out["A4"].value == "Ida"
    amount = {c.value: c.column_letter for c in out[3]}["AmountRead"]
    assert (out[f"{amount}4"].value, out[f"{amount}4"].number_format) == (250, '#,##0.00 "EUR"')
    assert (out[f"{amount}5"].value, out[f"{amount}5"].number_format) == (1250.5, '#,##0.00 "DKK"')
    summary = [[c.value for c in r] for r in book["Summary"].iter_rows()]
    start = next(i for i, r in enumerate(summary) if r[0] == "Valid rows per currency")
    assert [r[:4] for r in summary[start + 2:start + 4]] == [["DKK", 1, 1, 1250.5], ["EUR", 1, 2, 500]]
    assert read_sheet(tmp_path / "titel.validation.xlsx").header_row == 3


def test_the_writer_hooks_xlsxwriter_still_has():
    """The two XlsxWriter internals flexybulk.writers relies on (setup.cfg pins XlsxWriter below 4)."""
    from xlsxwriter.format import Format
    from xlsxwriter.worksheet import Worksheet

    assert callable(getattr(Worksheet, "_write_sheet_data")) and callable(getattr(Format, "_get_xf_index"))
    assert int(xlsxwriter.__version__.split(".")[0]) == 3


def test_the_table_sheet_is_streamed_in_whole(tmp_path):
    path = _write(tmp_path, [(f"line {i}", None) for i in range(10_000)])
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
        assert z.testzip() is None
    assert "flexybulk rows" not in xml and xml.count("<row ") == 10_001
    assert xml.index("<sheetData>") < xml.index('<row r="10001">') < xml.index("</sheetData>") < xml.index("<autoFilter")
    assert '<dimension ref="A1:D10001"/>' in xml  # Text, Status, Error, Row


@pytest.mark.parametrize("value, shown", [(Decimal("NaN"), "NaN"), (Decimal("1E+400"), "1E+400"), (10**20, str(10**20)),
                                          (float("inf"), "inf")])
def test_a_number_no_cell_can_hold_is_shown_as_text(tmp_path, value, shown):
    rows = [OutputRow(2, {"Amount": value}, {"Row": 2})]
    path = write_output(OutputSheet(["Amount"], ["Row"], rows), tmp_path / "odd.xlsx")
    ws = openpyxl.load_workbook(path)["Result"]
    assert (ws["A2"].value, ws["A2"].data_type) == (shown, "s")


def test_the_summary_s_own_lines_win_over_a_table_row_of_the_same_name(tmp_path):
    """read_summary (adoption, existing results) takes a label's first line: a department called 'Target' cannot move a batch."""
    from flexybulk.result_input import read_summary
    from flexybulk.writers import Heading, Label, Money

    summary = [[Heading("Result sheet")], [Label("Batch"), "b-1"], [Label("Target"), "https://pos.example.com"], [],
               [Heading("Issued per department")], [Label("Department"), Label("Rows", right=True)],
               ["Target", 2, 3, Money(Decimal("750.00"), "DKK")], ["Batch", 1, 1, Money(Decimal("1"), "DKK")]]
    rows = [OutputRow(2, {"Text": "x"}, {"Status": RowStatus.ISSUED, "Row": 2})]
    path = write_output(OutputSheet(["Text"], ["Status", "Row"], rows, summary=summary), tmp_path / "s.xlsx")
    got = read_summary(path)
    assert (got["Target"], got["Batch"]) == ("https://pos.example.com", "b-1")
