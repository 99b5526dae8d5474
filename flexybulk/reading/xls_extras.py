"""What a legacy XLS sheet's values do not carry, read through xlrd with formatting info: number formats
of postal codes and phones (pitfalls P5) and the person's marks, hidden and filtered-out rows,
struck-through cells and hyperlinks (issue #12).

calamine gives the values; xlrd opens the workbook once more with
``formatting_info=True`` (XLS files are small: at most 65,536 rows). An
AutoFilter shows as the sheet's built-in ``_FilterDatabase`` name; XLS does not
say which hidden rows of its range the filter hid, so they all count as
filtered out.
"""

from __future__ import annotations

from .cells import zero_pad_width
from .context import _Context
from .marks import _Filter, _Marks


def _xls_extras(ctx: _Context, want: set[tuple[int, int]], recipient_cols: set[int]) -> tuple[dict[tuple[int, int], str], _Marks]:
    """``(formats, marks)``: the zero-padding number formats of the ``want`` cells (row, column),
    and the chosen sheet's marks (struck-through cells only in ``recipient_cols``)."""
    marks = _Marks()
    try:
        import xlrd

        book = xlrd.open_workbook(file_contents=ctx.data, formatting_info=True, on_demand=True)
        sheet = book.sheet_by_name(ctx.sheet_name)
    except Exception:  # formats and marks are refinements; the values were read already
        return {}, marks
    formats = {}
    try:
        for row, col in want:
            xf = book.xf_list[sheet.cell_xf_index(row - 1, col)]
            fmt = book.format_map.get(xf.format_key)
            if fmt is not None and zero_pad_width(fmt.format_str):
                formats[(row, col)] = fmt.format_str
    except Exception:
        formats = {}

    marks.hidden_rows = {r + 1 for r, info in sheet.rowinfo_map.items() if info.hidden}
    if marks.hidden_rows:
        index = book.sheet_names().index(ctx.sheet_name)
        for name in book.name_obj_list:
            if name.builtin and name.name == "_FilterDatabase" and name.scope == index:
                try:
                    _, row_lo, row_hi, col_lo, _ = name.area2d()
                except Exception:  # an odd range: treat the whole sheet as filtered
                    row_lo, row_hi, col_lo = 0, sheet.nrows, 0
                marks.filters.append(_Filter(first_row=row_lo + 1, last_row=row_hi, criteria={col_lo: None}))
    struck_fonts = {i for i, font in enumerate(book.font_list) if font.struck_out}
    if struck_fonts:
        struck_xfs = {i for i, xf in enumerate(book.xf_list) if xf.font_index in struck_fonts}
        for r in range(sheet.nrows):
            for c in recipient_cols:
                if c < sheet.ncols and sheet.cell_xf_index(r, c) in struck_xfs:
                    marks.struck.add((r + 1, c))
    for (r, c), link in sheet.hyperlink_map.items():
        if link.type == "url" and link.url_or_path:
            marks.links[(r + 1, c)] = link.url_or_path.rstrip("\x00")
    return formats, marks
