"""The library's command-line phrases in the web page's own words (a browser user has no command line).

In the library, not in :mod:`flexybulk.web`, because a batch issued on the web page gets a result
sheet in these words too (:func:`flexybulk.results.result_sheet` with ``face="web"``); the pages use
it from here.

The library's messages name what to do on the command line ("run flexybulk
retry on it", "choose one with --sheet", "--allow-reissue"); the command
line needs them as they are. :func:`page_words` rewrites those phrases, and
only those, into what the page offers instead ("press Retry", "choose the
sheet under Columns"), and hides what a browser user cannot use (the ledger's
path, another process's id). Everything else in a message stays word for
word. The table is ordered: longer phrases before the shorter ones inside them.
The page's own controls are named as the page shows them in its language
(``Retry`` / ``Prøv igen``, ``Columns`` / ``Kolonner``).
"""

from __future__ import annotations

import re

_COLUMNS = "under {columns} on this page"
CONTROLS = {  # the page's controls as i18n names them: (Danish, English)
    "retry": ("Prøv igen", "Retry"),
    "columns": ("Kolonner", "Columns"),
    "hidden": ("Udsted også skjulte og bortfiltrerede rækker", "Issue hidden and filtered-out rows too"),
}

PHRASES: list[tuple[re.Pattern, str]] = [(re.compile(p), r) for p, r in [
    # Retrying: the result page's Retry button.
    (r"A rerun \(flexybulk retry on the result sheet\)", "{retry}"),
    (r"Rerun \(flexybulk retry on the result sheet\)", "Press {retry}"),
    (r"rerun \(flexybulk retry on the result sheet\)", "press {retry}"),
    (r"Correct the row in the result sheet and run flexybulk retry on it\.",
     "Correct the row's cell below (click it) and press {retry}."),
    (r"Correct (.+?) in the result sheet and run flexybulk retry on it\.", r"Correct \1 below (click the cell) and press {retry}."),
    (r"run flexybulk retry on the result sheet with another payment type \(--payment-type\)\.",
     "the payment type is set where the page is started: ask whoever runs it."),
    (r"(?:run|use) flexybulk retry on (?:this sheet|the result sheet|it)", "press {retry}"),
    (r"flexybulk retry", "{retry}"),
    (r"Fix the token and rerun", "Ask whoever runs the page to fix the Flexybox token, then press {retry}"),
    (r"and run flexybulk issue on that\.", "and upload that."),
    # Issuing again what an earlier batch issued: not offered on the page.
    (r" Not issued again; use --allow-reissue to issue it anyway\.", " Not issued again."),
    (r" \(--allow-reissue\)", ""),
    # The sheet, the columns, the default department, hidden rows, the encoding: the Columns panel.
    (r"choose one with --sheet", f"choose one {_COLUMNS}"),
    (r"choose the sheet (that has them )?with --sheet", rf"choose the sheet \1{_COLUMNS}"),
    (r"because --sheet names it", "because it was chosen"),
    (r"map one with --column, e\.g\. --column \w+=\"[^\"]*\"", f"map one {_COLUMNS}"),
    (r"choose one with --column \w+=\"[^\"]*\"", f"choose one {_COLUMNS}"),
    (r"(?:map|name) (?:one|a column) with --column", f"map the column {_COLUMNS}"),
    (r"--column chose another column", f"another column was chosen {_COLUMNS}"),
    (r"--column \w+='([^']*)'", r"the column chosen as '\1'"),
    (r"or give one for all rows with --department", f"or choose one for all rows {_COLUMNS}"),
    (r"or --department for all rows", f"or a department for all rows {_COLUMNS}"),
    (r"--department '([^']*)'", r"The department for rows without one ('\1')"),
    (r"--department", "Department for rows without one"),
    (r"Unhide it and run again, or use --include-hidden, to issue it\.",
     f"Unhide it and upload the sheet again, or tick '{{hidden}}' {_COLUMNS}, to issue it."),
    (r"read the file with --encoding ([\w-]+)(?: \(or --encoding ([\w-]+) if)",
     rf"choose the text encoding \1 {_COLUMNS} (or \2 if"),
    (r"(?:read (?:it|the file) )?with --encoding ([\w-]+)", rf"with the text encoding \1 {_COLUMNS}"),
    (r"--encoding (?:[\w-]+ )?overrides", f"the text encoding {_COLUMNS} overrides"),
    (r" ?\(--encoding ([\w-]+)\)", r" (chosen \1)"),
    (r"--encoding ([\w-]+)", r"the text encoding \1"),
    (r", or raise the limit with --max-rows", ", or ask whoever runs the page to raise its limit"),
    (r", or raise the limit with --max-file-size \(in MB\)", ", or ask whoever runs the page to raise its limit"),
    # The ledger's lock held by another process: no path, no process id.
    (r"Another flexybulk is issuing with the ledger .+? right now \((?:pid \d+, )?(.*)\)\. Wait for it to finish, then run "
     r"again: running both at once could issue the same rows twice\.",
     r"Another flexybulk is issuing with this page's ledger right now (\1). This batch starts by itself as soon as "
     "that has finished: running both at once could issue the same rows twice."),
]]


def page_words(text: str | None, lang: str = "en") -> str:
    """``text`` (a library message) with its command-line phrases in the page's words (see the module docstring),
    the page's controls named in ``lang`` (``"da"`` or ``"en"``)."""
    if not text:
        return text or ""
    index = 0 if lang == "da" else 1
    names = {k: v[index] for k, v in CONTROLS.items()}
    for pattern, replacement in PHRASES:
        text = pattern.sub(replacement.format(**names) if "{" in replacement else replacement, text)
    return text


SHEET_PHRASES: list[tuple[re.Pattern, str]] = [(re.compile(p), r) for p, r in [
    # In a result sheet the page's "below (click the cell)" means nothing: the result page is where to correct.
    (r"Correct the row in the result sheet and run flexybulk retry on it\.",
     "Correct the row on the web page's result page and press Retry."),
    (r"Correct (.+?) in the result sheet and run flexybulk retry on it\.",
     r"Correct \1 on the web page's result page and press Retry."),
]]


def sheet_words(text: str | None) -> str:
    """``text`` (a library message) as a result sheet of a batch issued on the web page says it: the page's
    words (:func:`page_words`, English, as the sheet is), corrections made on the web page's result page."""
    if not text:
        return text or ""
    for pattern, replacement in SHEET_PHRASES:
        text = pattern.sub(replacement, text)
    return page_words(text)
