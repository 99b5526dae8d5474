"""Where the list of recipients ends (issue #12: "the list ends where the list ends").

People put more below a list: a totals row (``I alt``, ``Total``, ``Sum``), or
after a blank row a second table (a note such as "Waiting list – not to
receive gift cards yet", a title, the header again, more people). None of it
may be issued as recipients. The list ends

- at a row that repeats the header (two or more of its cells are the header's names);
- at a blank row followed by a row that does not look like a recipient: a
  header again, a totals row, or a row with fewer than two of the list's
  columns filled in (a note, a title);

and a totals row at the bottom of what is left is named and left out too.
What lies below is not read; :attr:`~flexybulk.model.Sheet.list_end` says
where the list ends and what was left out, by row number.

Cost on a list without any of this: one comparison per row with the header's
first known cell (about 13 ms per 100,000 rows), and no work for blank rows
unless there are some.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from flexybulk.model import Field

from .cells import clean_text, normalize_header
from .context import _Context
from .layout import _field_for

TOTAL_WORDS = frozenset({
    "i alt", "ialt", "i alt dkk", "sum", "sum i alt", "samlet", "samlet sum", "total", "totalt", "totals",
    "total dkk", "grand total", "subtotal", "sub total", "in total", "gesamt", "summe",
})
"""Texts that make a row a totals row (casefolded, ``:`` and ``.`` at the end dropped)."""


def _total_word(row: list[Any]) -> str | None:
    """The totals word of a totals row (``"I alt"``), or ``None``: its first text cell is a totals
    word and no cell holds an email address."""
    word = None
    for value in row:
        if value.__class__ is str and value.strip():
            if "@" in value:
                return None
            if word is None:
                text = value.strip()
                if text.casefold().rstrip(":. ") not in TOTAL_WORDS:
                    return None
                word = text
    return word


def _is_header_like(row: list[Any], header_keys: dict[int, str], overrides: dict[str, Field]) -> bool:
    """Two or more cells name known fields (or the header's own texts): a header again."""
    hits = 0
    for j, value in enumerate(row):
        if value.__class__ is str and value.strip():
            key = normalize_header(value)
            if header_keys.get(j) == key or _field_for(key, overrides) is not None:
                hits += 1
                if hits >= 2:
                    return True
    return False


def _filled(row: list[Any], columns: list[int]) -> int:
    return sum(1 for j in columns if j < len(row) and clean_text(row[j]) is not None)


def _cut_list(body: list[list[Any]], kept: list[int], header_cells: list[Any], first_data: int,
              overrides: dict[str, Field], ctx: _Context) -> list[int]:
    """``kept`` (indexes of the non-empty rows of ``body``) up to where the list ends; the rows
    left out are named in ``ctx.list_end``. ``first_data`` is the sheet row number of ``body[0]``."""
    if not kept:
        return kept
    header_keys = {j: normalize_header(v) for j, v in enumerate(header_cells) if v.__class__ is str and v.strip()}
    known = [j for j, key in header_keys.items() if _field_for(key, overrides) is not None]
    end, why = len(kept), None

    if known:
        # A repeated header: the header's first known cell looked for in its column (in C), the
        # full test only for rows that have it.
        j0, h0 = known[0], header_cells[known[0]]
        contiguous = kept[-1] - kept[0] + 1 == len(kept)
        rows = body[kept[0]:kept[-1] + 1] if contiguous else list(map(body.__getitem__, kept))
        try:
            seen = h0 in map(itemgetter(j0), rows)
        except IndexError:  # short CSV records
            seen = True
        if seen:
            for p, row in enumerate(rows):
                if len(row) > j0 and row[j0] == h0 and _is_header_like(row, header_keys, overrides):
                    end, why = p, f"row {first_data + kept[p]} repeats the header"
                    break

    if kept[-1] - kept[0] + 1 != len(kept):  # some blank rows between the list's rows (kept[p] are rows[p])
        for p in range(1, end):
            if kept[p] - kept[p - 1] == 1:
                continue
            row = body[kept[p]]
            if _total_word(row) is not None and p == end - 1:
                break  # the bottom totals row, named below
            if _is_header_like(row, header_keys, overrides) or _total_word(row) is not None or _filled(row, known) < 2:
                blank, number = first_data + kept[p - 1] + 1, first_data + kept[p]
                end, why = p, f"row {blank} is blank and row {number} does not look like a recipient"
                break

    below = kept[end:]
    kept = kept[:end]
    last_of_list = first_data + kept[-1] if kept else None  # a totals row included
    totals = []
    while kept and len(totals) < 3:
        word = _total_word(body[kept[-1]])
        if word is None:
            break
        totals.append((first_data + kept.pop(), word))
    for number, word in reversed(totals):
        ctx.list_end.append(f"{ctx.where}: row {number} ('{word}') is a totals row, not a recipient: it is not read")
    if below:
        first, last = first_data + below[0], first_data + below[-1]
        rows = f"row {first} below the list looks" if first == last else f"rows {first}–{last} below the list look"
        ends = f"the list ends at row {last_of_list} ({why}); " if last_of_list is not None else f"{why}; "
        ctx.list_end.append(
            f"{ctx.where}: {ends}{rows} like a second table and {'is' if first == last else 'are'} not read; "
            "delete them or move them to their own sheet"
        )
    if totals or below:
        ctx.list_stop = totals[-1][0] if totals else first_data + below[0]
    return kept
