"""flexybulk.writers: the XLSX cells it renders into XlsxWriter's workbook, read back by other programs."""

from __future__ import annotations

import zipfile
from decimal import Decimal

import openpyxl
import pytest
import xlsxwriter

from clirun import flexybulk
from flexybulk.errors import InputFileError
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


def _random_sheet(seed: int):
    """A sheet of random columns: clean and unclean text, gaps, amounts in several currencies, numbers no cell
    holds, date-times (some before 1900), statuses, booleans and mixed columns; rows over several chunks."""
    import random
    from datetime import date, datetime, timedelta, timezone

    from flexybulk.writers import Money

    rng = random.Random(seed)
    texts = ["Ida", "Søren Østergaard", "a&b", "<tag>", "=1+1", "+45 1234", "-5", "@x", " lead", "trail ", "tab\there",
             "nul\x00x", "ctl\x01", "\ufffe", "€uro", "line\nbreak", "x" * 70, "#N/A", "100%", "%s", "\u00a0nbsp"]
    makers = {
        "text": lambda: rng.choice(texts) + rng.choice(["", str(rng.randrange(1000))]),
        "clean": lambda: rng.choice(["Ida", "Bo Ek", "Åse", "Jens"]) + str(rng.randrange(100)),
        "int": lambda: rng.choice([0, -5, 10**14, 10**15, -999999999999999, rng.randrange(10**6)]),
        "decimal": lambda: rng.choice([Decimal("0.01"), Decimal("1250.00"), Decimal("-0"), Decimal("NaN"), Decimal("1E+400"),
                                       Decimal("1234567890123456.5"), Decimal(rng.randrange(10**8)) / 100]),
        "float": lambda: rng.choice([0.1, 499.95, float("inf"), 1e20, 1e-7, rng.random()]),
        "money": lambda: Money(Decimal(rng.randrange(10**7)) / 100, rng.choice(["DKK", "DKK", "EUR", "SEK"])),
        "odd money": lambda: Money(rng.choice([Decimal("NaN"), Decimal("12.50"), Decimal("1E+400")]), "DKK"),
        "datetime": lambda: datetime(2026, 11, 30, 12, rng.randrange(60), tzinfo=timezone(timedelta(hours=1))),
        "old datetime": lambda: rng.choice([datetime(1850, 1, 1), datetime(2020, 1, 1, 10)]),
        "date": lambda: date(2026, 1, rng.randrange(1, 28)),
        "status": lambda: rng.choice(list(RowStatus)),
        "bool": lambda: rng.random() < 0.5,
        "mixed": lambda: rng.choice(["x", 12, Decimal("1.5"), 2.5, "", True, date(2020, 1, 1), Money(Decimal(1), "EUR")]),
        # A phone number typed as a number on some rows, as text on others (and the odd value no cell holds).
        "phone": lambda: (rng.choice([10**15, "=1", "Søren & Co", 1e-7, "line\nbreak"]) if rng.random() < 0.004
                          else rng.choice([rng.randrange(10**7, 10**8), "12 34 56 78", "", 2.5, Decimal("0.5"), 12345678])),
    }
    n = rng.choice([1, 7, 511, 1300])
    columns = [(f"C{j} {kind}", kind, rng.choice([0, 0, 0.001, 0.03, 0.3, 1.0]), rng.choice(["plain", "wrap", "status", "int"]))
               for j, kind in enumerate(rng.sample(sorted(makers), 7))]
    own = {h for h, *_ in columns[::2]}
    rows, number = [], 1
    for _ in range(n):
        number += 1 if rng.random() < 0.95 else 3
        values = {h: None if rng.random() < holes else makers[kind]() for h, kind, holes, _ in columns}
        rows.append(OutputRow(number, {h: v for h, v in values.items() if h not in own},
                              {h: v for h, v in values.items() if h in own}))
    sheet = OutputSheet([h for h, *_ in columns if h not in own], [h for h, *_ in columns if h in own], rows)
    sheet.kinds = {h: kind for h, _, _, kind in columns}
    return sheet


def test_whole_column_layouts_give_the_cells_chunk_by_chunk_rendering_gives(tmp_path, monkeypatch):
    """flexybulk.output_layout's prepared columns and output_cells' rendering of each chunk: the same XML, byte for byte."""
    from flexybulk import output_cells, output_layout, writers

    monkeypatch.setattr(writers, "_CHUNK_ROWS", 256)  # several chunks, a column's gaps in some of them only
    laid_out = 0
    real_prepare = output_layout.prepare
    for seed in range(40):
        sheet = _random_sheet(seed)
        with monkeypatch.context() as m:
            m.setattr(output_layout, "prepare", lambda col, letter, styles: output_cells.column_width(col, styles))
            write_output(sheet, tmp_path / "chunks.xlsx")

        def counting(col, letter, styles):
            nonlocal laid_out
            width = real_prepare(col, letter, styles)
            laid_out += col.layout is not None
            return width

        monkeypatch.setattr(output_layout, "prepare", counting)
        write_output(sheet, tmp_path / "layouts.xlsx")
        monkeypatch.setattr(output_layout, "prepare", real_prepare)
        with zipfile.ZipFile(tmp_path / "chunks.xlsx") as a, zipfile.ZipFile(tmp_path / "layouts.xlsx") as b:
            for name in ("xl/worksheets/sheet1.xml", "xl/styles.xml"):
                assert a.read(name) == b.read(name), (seed, name)
    assert laid_out >= 60  # the layouts were used, not only the fallback


def test_a_result_sheets_columns_are_laid_out_whole(tmp_path, monkeypatch):
    """Every column of a finished batch's result sheet but Error (mostly empty) is laid out whole, not chunk by chunk
    (the speed of issue #13 rests on it; a status column once fell back because RowStatus is a str too)."""
    from datetime import datetime, timezone

    from flexybulk import output_layout
    from flexybulk.writers import Money

    real = output_layout.prepare
    layouts = {}

    def recording(col, letter, styles):
        width = real(col, letter, styles)
        layouts.setdefault(col.header, col.layout and col.layout[0])
        return width

    monkeypatch.setattr(output_layout, "prepare", recording)
    moment = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    rows = []
    for i in range(2000):
        bad = i % 400 == 7
        rows.append(OutputRow(2 + i, {"Navn": f"Søren {i}", "Telefon": 12345678 if i % 3 else f"+45 12 34 {i}",
                                      "Beløb": Decimal("250.00")},
                              {"Status": RowStatus.INVALID if bad else RowStatus.ISSUED,
                               "Error": "E-mail: not an address" if bad else None,
                               "AmountRead": Money(Decimal("250.00"), "DKK"),
                               "CustomerId": None if bad else f"c-{i}", "IssuedAt": None if bad else moment,
                               "GiftCertificateNumbers": None if bad else f"{100 + i}", "Row": 2 + i}))
    sheet = OutputSheet(["Navn", "Telefon", "Beløb"],
                        ["Status", "Error", "GiftCertificateNumbers", "IssuedAt", "CustomerId", "Row"], rows,
                        typed_columns=["AmountRead"])
    write_output(sheet, tmp_path / "r.xlsx")
    assert layouts == {"Navn": "dense", "Telefon": "dense", "Beløb": "dense", "AmountRead": "dense", "Status": "dense",
                       "Error": None, "GiftCertificateNumbers": "holey", "IssuedAt": "holey", "CustomerId": "holey",
                       "Row": "dense"}


def test_a_column_of_text_and_numbers_is_laid_out_whole_and_gives_the_same_cells(tmp_path, monkeypatch):
    """A phone column typed as numbers on some rows and text on others (the benchmark's sheets have one)."""
    import random

    from flexybulk import output_cells, output_layout, writers

    monkeypatch.setattr(writers, "_CHUNK_ROWS", 256)
    rng = random.Random(7)
    real = output_layout._text_and_numbers
    laid_out = []
    monkeypatch.setattr(output_layout, "_text_and_numbers",
                        lambda col, *a: (real(col, *a), laid_out.append(col.layout is not None))[0])
    mixed = [lambda: rng.randrange(10**7, 10**8), lambda: "12 34 56 78", lambda: "+45 12 34 56 78",
             lambda: "Østergade 1", lambda: 2.5, lambda: Decimal("-0.5")]
    whole = mixed[:4] + [lambda: -rng.randrange(10**5)]  # whole numbers only: "%d" of each, its own path
    for kind in ("plain", "int"):
        for holes in (0, 0.01):
            for choices, odd in [(mixed, o) for o in (None, "=1", 10**15, 1e-7, " a&b\x01")] + [
                    (whole, o) for o in (None, 10**15, 10**15 - 1, -(10**14), -(10**14) + 1, "—")]:
                values = [None if rng.random() < holes else "" if rng.random() < 0.01 else rng.choice(choices)()
                          for _ in range(900)]
                if odd is not None:
                    values[rng.randrange(900)] = odd
                rows = [OutputRow(2 + i, {"Telefon": v}, {"Status": RowStatus.ISSUED}) for i, v in enumerate(values)]
                sheet = OutputSheet(["Telefon"], ["Status"], rows)
                sheet.kinds = {"Telefon": kind, "Status": "status"}
                write_output(sheet, tmp_path / "layouts.xlsx")
                with monkeypatch.context() as m:
                    m.setattr(output_layout, "prepare", lambda col, letter, styles: output_cells.column_width(col, styles))
                    write_output(sheet, tmp_path / "chunks.xlsx")
                with zipfile.ZipFile(tmp_path / "chunks.xlsx") as a, zipfile.ZipFile(tmp_path / "layouts.xlsx") as b:
                    for name in ("xl/worksheets/sheet1.xml", "xl/styles.xml"):
                        assert a.read(name) == b.read(name), (kind, holes, odd, name)
    # Laid out whole unless a number no cell holds is there (text that needs care is laid out with its look).
    assert laid_out == [True, True, False, False, True, True, False, True, False, True, True] * 4
    ws = openpyxl.load_workbook(tmp_path / "layouts.xlsx")["Result"]
    got = [ws.cell(2 + i, 1).value for i in range(900)]
    assert got == [None if v in ("", None) else float(v) if isinstance(v, Decimal) else v.replace("\x01", "\ufffd")
                   if isinstance(v, str) else v for v in values]


def test_a_plain_text_column_is_written_as_it_is_and_any_other_is_cleaned(tmp_path):
    from flexybulk.output_layout import plain_texts

    assert plain_texts(["Søren Østergaard", "ida@example.com", "100%", "a-b", "1 + 1"])
    for odd in ("a&b", "<b>", "=1+1", "+45", "-5", "@x", " lead", "trail ", "\tx", "nul\x00", "ctl\x01", "\ufffe", "x\u00a0"):
        assert not plain_texts(["fine", odd, "fine"]), odd
        assert not plain_texts([odd]), odd
    path = _write(tmp_path, [("a&b <c>", None), ("=1+1", None), ("ok", None)])
    ws = openpyxl.load_workbook(path)["Result"]
    assert [ws["A2"].value, ws["A3"].value, ws["A4"].value] == ["a&b <c>", "=1+1", "ok"]
    assert ws["A3"].quotePrefix and not ws["A4"].quotePrefix


def test_the_switch_interval_is_given_back_after_writing_even_by_two_writers_at_once(tmp_path, monkeypatch):
    """The writer shortens the GIL switch interval while it deflates (flexybulk.output_zip._quick_switches)."""
    import sys
    import threading

    from flexybulk import output_zip

    before = sys.getswitchinterval()
    during = []
    real_feed = output_zip._feed

    def feed(*args):
        during.append(sys.getswitchinterval())
        return real_feed(*args)

    monkeypatch.setattr(output_zip, "_feed", feed)

    def write(name):
        write_output(OutputSheet(["Text"], ["Status"], [OutputRow(2, {"Text": name}, {"Status": RowStatus.ISSUED})]),
             tmp_path / f"{name}.xlsx")

    threads = [threading.Thread(target=write, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sys.getswitchinterval() == before
    assert len(during) == 4 and max(during) <= 0.0005 < before
    assert len(list(tmp_path.glob("t*.xlsx"))) == 4
    with pytest.raises(InputFileError):
        write_output(OutputSheet(["Text"], ["Status"], []), tmp_path / "missing" / "x.xlsx")
    assert sys.getswitchinterval() == before


def test_the_big_sheet_is_deflated_in_pieces_on_several_threads_and_reads_back(tmp_path, monkeypatch):
    """output_zip._Deflater: independent deflate pieces, one valid stream; zipfile's CRC, openpyxl and the reader agree."""
    import zlib

    from flexybulk import output_zip

    monkeypatch.setattr(output_zip, "_HAND_OVER", 64 << 10)  # many pieces for a small sheet
    pieces = []
    real = output_zip._deflate_piece
    monkeypatch.setattr(output_zip, "_deflate_piece", lambda data, level: pieces.append(len(data)) or real(data, level))
    rows = [OutputRow(i + 2, {"Navn": f"Søren Østergaard {i} <&>", "E-mail": f"s{i}@example.com"},
                      {"Status": RowStatus.VALID, "Row": i + 2}) for i in range(20_000)]
    path = write_output(OutputSheet(["Navn", "E-mail"], ["Status", "Row"], rows), tmp_path / "big.xlsx")
    assert len(pieces) > 10
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("xl/worksheets/sheet1.xml")
        assert info.compress_type == zipfile.ZIP_DEFLATED and z.testzip() is None
        xml = z.read(info)
        with z.open(info) as raw:  # the member's bytes, one raw deflate stream (zipfile checks the CRC on reading)
            assert raw.read() == xml
    assert info.file_size == len(xml) == sum(pieces)  # every byte went through the pieces
    assert zlib.decompressobj(-15).decompress(_member_bytes(path, info)) == xml  # one stream, as any unzip reads it
    ws = openpyxl.load_workbook(path)["Result"]
    assert ws["A20001"].value == "Søren Østergaard 19999 <&>"
    assert read_sheet(path).rows[-1].original["Navn"] == "Søren Østergaard 19999 <&>"


def _member_bytes(path, info) -> bytes:
    """A zip member's stored (compressed) bytes, read past its local header."""
    import struct

    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        fh.seek(info.header_offset + 30 + name_length + extra_length)
        return fh.read(info.compress_size)


def test_the_zipfile_writer_still_takes_a_compressor_of_ours():
    """zipfile's member writer keeps its compressor in ``_compressor`` (output_zip._Deflater.take_over puts ours there)."""
    import io

    with zipfile.ZipFile(io.BytesIO(), "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z, z.open("x.xml", "w") as member:
        assert hasattr(member._compressor, "compress") and hasattr(member._compressor, "flush")


@pytest.mark.parametrize("seed", range(6))
def test_amounts_kept_apart_from_their_currencies_give_the_cells_money_gives(tmp_path, monkeypatch, seed):
    """results.OutputRows may keep a column's amounts and currencies apart (no Money per row): the same XML."""
    import random

    from flexybulk import writers
    from flexybulk.results import OutputRows
    from flexybulk.writers import Money

    monkeypatch.setattr(writers, "_CHUNK_ROWS", 128)
    rng = random.Random(seed)
    n = rng.choice([5, 700])
    odd = [Decimal("NaN"), Decimal("1E+400"), Decimal("12345678901234567")] if seed % 3 == 0 else []
    amounts = [None if rng.random() < (0.02, 0.5, 0)[seed % 3] else rng.choice([Decimal("0.01"), Decimal("250.00"),
               Decimal(rng.randrange(10**8)) / 100] + odd) for _ in range(n)]
    currencies = [rng.choice(["DKK", "DKK", "EUR", "SEK"]) if seed % 2 else "DKK" for _ in range(n)]
    numbers = list(range(2, n + 2))
    inputs = [{"Navn": f"P{i}"} for i in range(n)]
    apart = OutputSheet(["Navn"], ["Row"], OutputRows(numbers, inputs, {"AmountRead": amounts, "Row": numbers},
                                                      {"AmountRead": currencies}), typed_columns=["AmountRead"])
    money = [None if a is None else Money(a, c) for a, c in zip(amounts, currencies)]
    together = OutputSheet(["Navn"], ["Row"], [OutputRow(k, inputs[i], {"AmountRead": money[i], "Row": k})
                                               for i, k in enumerate(numbers)], typed_columns=["AmountRead"])
    assert apart.rows[0].extra["AmountRead"] == money[0] and list(apart.rows) == list(together.rows)
    write_output(apart, tmp_path / "apart.xlsx")
    write_output(together, tmp_path / "together.xlsx")
    with zipfile.ZipFile(tmp_path / "apart.xlsx") as a, zipfile.ZipFile(tmp_path / "together.xlsx") as b:
        for name in ("xl/worksheets/sheet1.xml", "xl/styles.xml"):
            assert a.read(name) == b.read(name), name
    got = [c.value for c in openpyxl.load_workbook(tmp_path / "apart.xlsx")["Result"]["B"][1:]]
    for value, amount in zip(got, amounts):  # row by row
        if amount is None:
            assert value is None
        elif not amount.is_finite() or amount.adjusted() >= 300:
            assert value == str(amount)  # no number cell holds it: text
        elif len(str(amount)) <= 15:
            assert Decimal(repr(value)) == amount


def test_columns_of_few_distinct_texts_are_laid_out_as_the_chunks_would_be(tmp_path, monkeypatch):
    """output_layout._distinct: a type, a department, a batch id looked at once per distinct text; the same XML."""
    import random

    from flexybulk import output_cells, output_layout

    rng = random.Random(7)
    pools = {"Type": ["Gavekort", "Julegavekort", "Firmagavekort"], "Dept": ["Webshop", "Aarhus", "", None],
             "Odd": ["Jensen & Co", "Webshop"], "Formula": ["=1+1", "Webshop"], "Batch": ["6f1c1d9e-3b7a"],
             "Few gaps": ["Odense"] * 500 + [None], "Status text": ["ISSUED", RowStatus.ISSUED]}
    rows = [OutputRow(i + 2, {h: rng.choice(pool) for h, pool in pools.items()}, {"Row": i + 2}) for i in range(6000)]
    sheet = OutputSheet(list(pools), ["Row"], rows)
    used = []
    real_distinct = output_layout._distinct
    monkeypatch.setattr(output_layout, "_distinct", lambda values: used.append(real_distinct(values)) or used[-1])
    write_output(sheet, tmp_path / "layouts.xlsx")
    assert sum(d is not None for d in used) >= 5  # the distinct-text path was taken
    monkeypatch.setattr(output_layout, "prepare", lambda col, letter, styles: output_cells.column_width(col, styles))
    write_output(sheet, tmp_path / "chunks.xlsx")
    with zipfile.ZipFile(tmp_path / "chunks.xlsx") as a, zipfile.ZipFile(tmp_path / "layouts.xlsx") as b:
        for name in ("xl/worksheets/sheet1.xml", "xl/styles.xml"):
            assert a.read(name) == b.read(name), name
    ws = openpyxl.load_workbook(tmp_path / "layouts.xlsx")["Result"]
    assert {c.value for c in ws["C"][1:]} == {"Jensen & Co", "Webshop"}
    assert all(c.quotePrefix for c in ws["D"][1:] if c.value == "=1+1")


def test_the_summarys_numbers_are_written_as_their_shortest_text(tmp_path):
    """A fresh user's find: XlsxWriter's %.16G wrote the Summary's 71868551.49 as 71868551.48999999."""
    import re

    from flexybulk.writers import Money

    amounts = ["71868551.49", "9379299.62", "970975496.32", "0.01", "99999999.99"]
    summary = [[f"Total {a}", Money(Decimal(a), "DKK")] for a in amounts] + [["Rows", 100000]]
    rows = [OutputRow(2, {"Text": "x"}, {"Status": RowStatus.ISSUED, "Row": 2})]
    path = write_output(OutputSheet(["Text"], ["Status", "Row"], rows, summary=summary), tmp_path / "s.xlsx")
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet2.xml").decode()
    assert re.findall(r'<c r="B\d+"(?: s="\d+")?><v>([^<]*)</v>', xml) == amounts + ["100000"]
    got = openpyxl.load_workbook(path)["Summary"]
    assert [Decimal(repr(got.cell(r, 2).value)) for r in range(1, 6)] == [Decimal(a) for a in amounts]


def test_an_input_cell_with_a_line_break_wraps_and_its_row_gets_the_height(tmp_path):
    """A fresh user's find: an address typed on two lines stayed one line high and spilt over the rows above."""
    rows = [OutputRow(n, {"Navn": f"P {n}", "Adresse": "Testvej 1\n2100 København Ø" if n == 3 else "Vej 2"},
                      {"Status": RowStatus.ISSUED, "Row": n}) for n in range(2, 6)]
    path = write_output(OutputSheet(["Navn", "Adresse"], ["Status", "Row"], rows), tmp_path / "lines.xlsx")
    ws = openpyxl.load_workbook(path)["Result"]
    assert ws["B3"].value == "Testvej 1\n2100 København Ø"  # the value exactly
    assert ws["B3"].alignment.wrap_text and ws.row_dimensions[3].height == 30  # two lines of 15 points
    assert ws.row_dimensions[2].height in (None, 15) and not ws["A3"].alignment.wrap_text


@pytest.mark.parametrize("beside", ["Bag & Ved 3", "=1+1", " Vej 4", 12345678, None])
def test_a_line_break_wraps_whatever_else_its_column_holds(tmp_path, beside):
    """A second fresh user's find: beside an ``&`` (or formula-like text, a space at an end) the column took the
    chunk-by-chunk path before it was marked as wrapping, and the two-line address overprinted the row above.
    Numbers beside it (a phone column typed both ways) too."""
    values = ["Vej 2", "Vestergade 5\n2. th.", beside, "Vej 5"] * 3
    rows = [OutputRow(2 + i, {"Navn": f"P {i}", "Adresse": v}, {"Status": RowStatus.ISSUED, "Row": 2 + i})
            for i, v in enumerate(values)]
    path = write_output(OutputSheet(["Navn", "Adresse"], ["Status", "Row"], rows), tmp_path / "lines.xlsx")
    ws = openpyxl.load_workbook(path)["Result"]
    for i, v in enumerate(values):
        assert ws.cell(2 + i, 2).value == (v if v != "" else None)
    for r in (3, 7, 11):
        assert ws.cell(r, 2).alignment.wrap_text and ws.row_dimensions[r].height == 30, r
    assert ws.row_dimensions[2].height in (None, 15) and not ws["A3"].alignment.wrap_text
    if isinstance(beside, str) and beside.startswith("="):
        assert ws["B4"].quotePrefix and ws["B4"].alignment.wrap_text  # still text, never a formula


def test_certificate_numbers_get_the_lines_they_take(tmp_path):
    """A fresh user's find: three 17-digit certificate numbers fit one line of the 60-wide column, but the row was
    two lines high. A list of numbers of one length is counted exactly; any other text keeps the estimate."""
    def numbers(count, digits=17):
        return ", ".join(str(10 ** (digits - 1) + k) for k in range(count))

    # The last: lengths that add up as six of 17 would (two lines), yet 17 + 30 + 30 digits do not fit one: three.
    texts = [numbers(1), numbers(3), numbers(4), numbers(10), numbers(7, 12), "1, 22, 333, " * 8 + "4444",
             ", ".join("7" * n for n in (17, 30, 30, 4, 4, 17))]
    rows = [OutputRow(2 + i, {"Navn": f"P {i}"}, {"Status": RowStatus.ISSUED, "GiftCertificateNumbers": t, "Row": 2 + i})
            for i, t in enumerate(texts)]
    path = write_output(OutputSheet(["Navn"], ["Status", "GiftCertificateNumbers", "Row"], rows), tmp_path / "c.xlsx")
    ws = openpyxl.load_workbook(path)["Result"]
    assert round(ws.column_dimensions["C"].width) == 61  # 60 characters and XlsxWriter's padding
    assert [ws.cell(2 + i, 3).value for i in range(len(texts))] == texts
    heights = [ws.row_dimensions[2 + i].height for i in range(len(texts))]
    # 1 and 3 numbers: one line; 4: two (three a line); 10: four; seven of 12 digits: four a line, two lines;
    # numbers of mixed lengths: the estimate (102 characters at 53 a line: two lines; 112 characters: three).
    assert heights == [None, None, 30, 60, 30, 30, 45]



def test_a_column_whose_numbers_all_have_one_length_counts_each_rows_lines_exactly(tmp_path):
    # The whole column's numbers of one length (a batch's certificate numbers): counted at C speed from the
    # number of numbers per row; the same heights as counting each row's list on its own.
    from flexybulk.output_cells import Column
    from flexybulk.output_layout import look_at

    def numbers(count, digits):
        return ", ".join(str(10 ** (digits - 1) + k) for k in range(count))

    for digits, counts, expected in ((17, [1, 3, 4, 10, None, 6], [None, None, 30, 60, None, 30]),
                                     (12, [7, 4, 5, None, 13], [30, None, 30, None, 60])):
        texts = [None if n is None else numbers(n, digits) for n in counts]
        col = Column("GiftCertificateNumbers", texts, "wrap")
        look_at(col)
        assert col.numbers_only and col.digits == digits
        rows = [OutputRow(2 + i, {"Navn": f"P {i}"}, {"Status": RowStatus.ISSUED, "GiftCertificateNumbers": t,
                                                        "Row": 2 + i}) for i, t in enumerate(texts)]
        path = write_output(OutputSheet(["Navn"], ["Status", "GiftCertificateNumbers", "Row"], rows),
                            tmp_path / f"c{digits}.xlsx")
        ws = openpyxl.load_workbook(path)["Result"]
        width = round(ws.column_dimensions["C"].width) - 1
        per_line = (width + 2) // (digits + 2)
        assert [ws.cell(2 + i, 3).value for i in range(len(texts))] == texts
        assert [ws.row_dimensions[2 + i].height for i in range(len(texts))] == expected, (width, per_line)
    mixed = Column("GiftCertificateNumbers", [numbers(2, 12), numbers(2, 17)], "wrap")
    look_at(mixed)
    assert mixed.numbers_only and mixed.digits == 0

def test_a_written_table_lets_go_of_its_layout_and_the_gc_is_as_it_was(tmp_path, monkeypatch):
    # The laid-out table is freed as soon as its rows are written, not when the GC finds XlsxWriter's workbook
    # cycle (0.06 s of a 100,000-row write); the GC is switched back on only if it was on.
    import gc

    import flexybulk.writers as writers

    made = []
    make = writers._table_worksheet_class

    def capture():
        cls = make()
        init = cls.__init__

        def __init__(self, *a, **kw):
            init(self, *a, **kw)
            made.append(self)
        return type("Captured", (cls,), {"__init__": __init__})

    monkeypatch.setattr(writers, "_table_worksheet_class", capture)
    path = _write(tmp_path, [("Anna", "x"), ("Bo", None)])
    assert [c.value for c in openpyxl.load_workbook(path)["Result"]["A"]] == ["Text", "Anna", "Bo"]
    assert made and all(ws._part is None and ws._table is None for ws in made)
    assert gc.isenabled()
    gc.disable()
    try:
        _write(tmp_path, [("Anna", None)])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_summarys_text_after_a_number_starts_a_space_in_and_its_date_time_sits_left(tmp_path):
    # A fresh user's find in the PDF: "6The gift certificates exist..." and a right-aligned Written at.
    from datetime import datetime as _dt

    from flexybulk.results import Label

    rows = [OutputRow(2, {"Text": "a"}, {"Status": RowStatus.ISSUED, "Row": 2})]
    sheet = OutputSheet(["Text"], ["Status", "Row"], rows)
    sheet.summary = [[Label("Written at"), _dt(2026, 12, 2, 9, 30)], [Label("Status"), Label("Rows", right=True),
                     Label("What it means")], [RowStatus.ISSUED, 6, "The gift certificates exist."]]
    ws = openpyxl.load_workbook(write_output(sheet, tmp_path / "s.xlsx"))["Summary"]
    assert ws["B1"].alignment.horizontal == "left" and ws["B1"].number_format.startswith("yyyy")
    assert ws["C2"].alignment.indent == 1 and ws["C2"].font.bold
    assert ws["B3"].value == 6 and ws["C3"].value == "The gift certificates exist." and ws["C3"].alignment.indent == 1


def test_every_cell_sits_at_the_top_of_its_row(tmp_path):
    # A row made tall by wrapped certificate numbers showed the name and status on its last line (Excel's bottom).
    numbers = ", ".join(str(17961765510000000 + k) for k in range(10))
    rows = [OutputRow(2, {"Text": "Julie"}, {"Status": RowStatus.ISSUED, "GiftCertificateNumbers": numbers, "Row": 2})]
    path = write_output(OutputSheet(["Text"], ["Status", "GiftCertificateNumbers", "Row"], rows), tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(path)["Result"]
    assert ws.row_dimensions[2].height == 60
    assert [ws.cell(2, c).alignment.vertical for c in range(1, 5)] == ["top"] * 4
    assert ws["A1"].alignment.vertical == "top"


def test_characters_past_latin1_are_written_as_references_and_read_back_as_themselves(tmp_path):
    # One "—" made Python hold a whole chunk two bytes a character (the join and the UTF-8 encoding 20% slower);
    # written as &#8212; it reads back the same in every reader.
    names = ["Åse O’Brien", "Ærø 😀 Hansen", "Plain Name", "Zoë—Line"] * 3
    errors = ["E-mail (B): 'x@@y' has more than one @ — write one address", None, "Søren ✓", None] * 3
    rows = [OutputRow(i + 2, {"Text": n}, {"Status": RowStatus.FAILED, "Error": e, "Row": i + 2})
            for i, (n, e) in enumerate(zip(names, errors))]
    path = write_output(OutputSheet(["Text"], ["Status", "Error", "Row"], rows), tmp_path / "w.xlsx")
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet1.xml")
    assert b"O&#8217;Brien" in xml and b"&#128512;" in xml and b"one @ &#8212; write" in xml and b"&#10003;" in xml
    assert "—".encode() not in xml and "’".encode() not in xml
    ws = openpyxl.load_workbook(path)["Result"]
    assert [ws.cell(r, 1).value for r in range(2, 14)] == names
    assert [ws.cell(r, 3).value for r in range(2, 14)] == errors
    from python_calamine import CalamineWorkbook

    back = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Result").to_python()[1:]
    assert [r[0] for r in back] == names and [r[2] or None for r in back] == errors
