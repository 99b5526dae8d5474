"""Steps 1 and 2 of the page: upload a sheet, check it (the dry run), fix cells in place, get the template.

Every figure shown comes from :func:`flexybulk.batches.check` on the upload
with its fixes (:func:`flexybulk.fixes.apply_fixes`); a fix is stored, then
the whole sheet is checked again at once. Nothing is issued here.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from .. import batches
from ..confirmations import sheet_names
from ..errors import FlexybulkError
from ..fixes import CellFix, apply_fixes, canonical_json, fixed_note, previous_values
from ..model import Field
from ..records import excluded_text
from . import i18n
from .app import Web, change_refused, deny, is_htmx, lang_of, refuse_change, render, user_of, web_of
from .store import Upload
from ..wording import page_words

SUGGESTION = re.compile(r"Did you mean '(.+?)'\?")
CHECK_SECONDS = 30  # a check is redone after this: the catalogue and the ledger may have changed meanwhile
CHECKS_KEPT = 20  # checks kept in memory (each holds a whole sheet)
ENCODINGS = ("utf-8", "cp1252", "mac_roman", "iso-8859-1", "utf-16")  # a CSV's encoding, when detection guessed wrong
MAPPABLE = [f for f in Field]


def _upload_or_404(request: Request) -> Upload | None:
    web = web_of(request)
    upload = web.store.get(request.path_params["uid"])
    if upload is None:
        return None
    user = user_of(request)
    if web.config.team and upload.user != user.name and not (user.can("approver") or user.can("admin")):
        return None  # another uploader's sheet is none of this user's business
    return upload


def not_found(request: Request) -> Response:
    t = i18n.translator(lang_of(request))
    return render(request, "message.html", status=404, title=t("error"), message=t("not_found"))


def changeable_upload(request: Request) -> Upload | Response:
    """The request's upload when its user may change it; else the page to answer with (404, or 403 from
    :func:`~flexybulk.web.app.refuse_change`)."""
    upload = _upload_or_404(request)
    if upload is None:
        return not_found(request)
    refused = refuse_change(request, upload)
    return upload if refused is None else refused


def _home(request: Request, status: int = 200, error: str | None = None) -> Response:
    """The upload page: the upload form (for uploaders), their recent uploads, and for approvers the batches
    awaiting their approval (never their own)."""
    web = web_of(request)
    user = user_of(request)
    uploads = web.store.all()
    mine = [u for u in uploads if u.user == user.name][:10]
    awaiting = [u for u in uploads if u.state == "awaiting_approval" and u.user != user.name
                and (u.confirmed or {}).get("user") != user.name] if web.config.team and user.can("approver") else []
    return render(request, "upload.html", status=status, uploads=mine, max_size=web.config.max_file_size,
                  max_rows=web.config.max_rows, error=error, awaiting=awaiting,
                  can_upload=change_refused(user, None, web.config.team) is None)


async def home(request: Request) -> Response:
    return _home(request)


async def upload(request: Request) -> Response:
    web = web_of(request)
    t = i18n.translator(lang_of(request))
    refused = refuse_change(request, None)
    if refused is not None:
        return refused
    async with request.form(max_files=1, max_fields=5, max_part_size=1024 * 1024) as form:
        item = form.get("file")
        if item is None or isinstance(item, str) or not item.filename:
            return _home(request, 400, t("upload_help"))
        try:
            stored = web.store.create(item.filename, item.file, user_of(request).name, limit=web.config.max_file_size)
        except ValueError:
            return _home(request, 413, t("too_large", size=_size(item.size or 0), limit=_size(web.config.max_file_size)))
    # A column mapped by hand for a file with the same headers is used again.
    try:
        source = batches.read_input(stored.path, web.read_request(stored), command="issue")
        remembered = web.store.remembered_columns(source.sheet.headers)
        if remembered:
            web.store.update(stored.id, request={**stored.request, "columns": remembered})
    except FlexybulkError:
        pass  # the check page shows why it cannot be read
    return RedirectResponse(f"/u/{stored.id}", status_code=303)


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{max(n, 1) / 1024:.0f} KB"


def checked_of(web: Web, upload: Upload) -> tuple[Any, Any, dict]:
    """``(input, Checked, previous)`` of the upload with its fixes, cached per state of the upload for :data:`CHECK_SECONDS`.

    ``previous`` is :func:`~flexybulk.fixes.previous_values` of the fixes (to mark the fixed cells).

    Raises:
        FlexybulkError: the sheet cannot be read or checked (the input is then attached as ``exc.source``).
    """
    key = repr(sorted((upload.request or {}).items(), key=str)) + canonical_json(upload.fixes())
    with web.checks_lock:
        cached = web.checks.get(upload.id)
    if cached and cached[0] == key and time.monotonic() - cached[2] < CHECK_SECONDS:
        return cached[1]
    request = web.read_request(upload)
    raw = batches.read_input(upload.path, request, command="issue")
    source = apply_fixes(raw, upload.fixes())
    previous = previous_values(raw, upload.fixes())
    try:
        checked = batches.check(source, web.target, request, ledger=web.config.ledger)
    except FlexybulkError as exc:
        exc.source = source  # type: ignore[attr-defined]
        exc.previous = previous  # type: ignore[attr-defined]
        raise
    with web.checks_lock:
        web.checks[upload.id] = (key, (source, checked, previous), time.monotonic())
        while len(web.checks) > CHECKS_KEPT:  # the oldest first: a dict keeps insertion order
            web.checks.pop(next(iter(web.checks)))
    return source, checked, previous


def catalogue_of(web: Web) -> Any | None:
    """The live catalogue for the type and department lists when no check could run (cached as a check is), or
    ``None`` when Flexybox cannot be asked (the page then says why the check failed, which is the same reason)."""
    with web.checks_lock:
        cached = web.checks.get("catalogue")
    if cached and time.monotonic() - cached[2] < CHECK_SECONDS:
        return cached[1]
    try:
        catalogue = batches.fetch_catalogue(web.target)
    except FlexybulkError:
        return None
    with web.checks_lock:
        web.checks["catalogue"] = ("", catalogue, time.monotonic())
    return catalogue


def forget(web: Web, upload_id: str) -> None:
    with web.checks_lock:
        web.checks.pop(upload_id, None)
    web.issuer.forget(upload_id)


def shown(value: Any) -> str:
    """A cell's value as text for the grid (the sheet's own value, never reformatted money)."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


# The result and validation sheets' own columns (results.OWN_COLUMNS, which a face may not import): not input.
OWN_COLUMNS = {"Status", "Error", "Warning", "CustomerId", "SalesOrderId", "ExternalPaymentId", "GiftCertificateNumbers",
               "IssuedAt", "BatchId", "Row", "AmountRead", "LineTotal"}


def input_headers(source: Any) -> list[str]:
    """The sheet's headers the grid shows: a result or validation sheet given back shows its input's columns only
    (its Status, Error, ids and AmountRead are what the last run wrote, not what is sent)."""
    headers = source.sheet.headers
    if source.batch_id or source.made_from:
        return [h for h in headers if h not in OWN_COLUMNS]
    return list(headers)


KNOWN_LABELS = {"done": "ISSUED", "skip": "ISSUED EARLIER", "near": "NEAR-DUPLICATE", "send": "SETTLES"}


def grid_rows(source: Any, checks: list, statuses: dict[int, str], known: dict | None = None,
              previous: dict | None = None, lang: str = "en") -> list[dict]:
    """The rows for the grid: each cell with its problems and warnings, and the row's status.

    ``statuses`` (row -> the ledger's status of this upload's batch) win; else
    ``known`` (row -> what an issue would decide, from :func:`flexybulk.batches.check`)
    labels rows already issued, near-duplicates and rows finishing an earlier batch's row.
    ``previous`` (``(row, column)`` -> ``(value before, text typed)``, :func:`~flexybulk.fixes.previous_values`)
    marks the cells fixed on the page: they show the text typed and what the cell held before.
    Every library message is in the page's words (:func:`~flexybulk.wording.page_words`, in ``lang``).
    """
    words = lambda text: page_words(text, lang)  # noqa: E731
    known, previous = known or {}, previous or {}
    headers = input_headers(source)
    out = []
    for c in checks:
        row = c.row
        cells = []
        for h in headers:
            fixed = previous.get((row.number, h))
            cells.append({"header": h, "value": fixed[1] if fixed else shown(row.original.get(h)),
                          "fixed": fixed is not None, "before": shown(fixed[0]) if fixed else "",
                          "problems": [words(p.message) for p in c.problems if p.column == h],
                          "warnings": [words(p.message) for p in c.warnings if p.column == h]})
        other = [words(f"{p.column}: {p.message}" if p.column else p.message) for p in c.problems
                 if p.column not in source.sheet.headers]
        planned = known.get(row.number)
        excluded = getattr(row, "excluded", None)
        status = statuses.get(row.number) or ("EXCLUDED" if excluded else None) \
            or (KNOWN_LABELS.get(planned.action) if planned else None) or ("VALID" if c.valid else "INVALID")
        warnings = [words(p.message) for p in c.warnings if p.column not in source.sheet.headers]
        if excluded:
            warnings.append(words(excluded_text(excluded)))
        if planned is not None and planned.message and row.number not in statuses:
            warnings.append(words(planned.message))
        out.append({"number": row.number, "cells": cells, "other": other, "valid": c.valid or bool(excluded), "status": status,
                    "warnings": warnings, "problem_columns": [p.column for p in c.problems if p.column in headers]})
    return out


def _statuses(web: Web, upload: Upload) -> dict[int, str]:
    if not upload.batch_id:
        return {}
    status = batches.batch_progress(web.config.ledger, upload.batch_id)
    return {r.row_number: r.status.value for r in status.rows}


async def check_page(request: Request) -> Response:
    web = web_of(request)
    upload = _upload_or_404(request)
    if upload is None:
        return not_found(request)
    only = request.query_params.get("only") == "problems"
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    sheets = sheet_names(upload.path)
    context: dict[str, Any] = {"upload": upload, "sheets": sheets, "only": only, "error": None, "source": None,
                               "encodings": ENCODINGS, "ledger_lines": [], "sending": None, "by_type": {},
                               "by_department": {}, "first_problem": None,
                               "checked": None, "fixes": len(upload.fixes()),
                               "editable": upload.batch_id is None and change_refused(user_of(request), upload, web.config.team) is None,
                               "fields": MAPPABLE, "departments": [], "edit": None, "notes": []}
    try:
        source, checked, previous = checked_of(web, upload)
    except FlexybulkError as exc:
        context["error"] = page_words(web.redact(str(exc)), lang_of(request))
        context["source"] = getattr(exc, "source", None)
        if context["editable"]:
            # The lists come from the live catalogue even when the check cannot run (no department column, say).
            catalogue = catalogue_of(web)
            context["departments"] = _names(catalogue.departments) if catalogue else []
        return render(request, "check.html", status=422, page=1, pages=1, rows=[], retry_mode=False, **context)
    checks = checked.validation.checks
    if only:
        checks = [c for c in checks if not c.valid or c.warnings]
    size = web.config.page_size
    pages = max(1, math.ceil(len(checks) / size))
    page = min(page, pages)
    rows = grid_rows(source, checks[(page - 1) * size: page * size], _statuses(web, upload), checked.known, previous,
                     lang_of(request))
    first = next((c for c in checked.validation.invalid for p in c.problems if p.column in source.sheet.headers), None)
    # The page says how many cells were fixed in its own words (t("fixed_cells")): not the sheet's English note too.
    notes = [line for line in source.sheet.notes if line != fixed_note(context["fixes"])]
    context.update(source=source, checked=checked, departments=_names(checked.catalogue.departments), notes=notes,
                   sending=checked.would_send(), by_type=checked.would_send_by(lambda o: o.type.name),
                   by_department=checked.would_send_by(lambda o: o.department.name),
                   ledger_lines=ledger_lines(checked.known, i18n.translator(lang_of(request))),
                   first_problem=_first_problem(first, source, only, size, checks))
    edit = request.query_params.get("edit")
    if edit and ":" in edit:
        number, _, column = edit.partition(":")
        context["edit"] = _editor_context(source, checked, number, column)
    return render(request, "check.html", page=page, pages=pages, rows=rows, retry_mode=False, headers=input_headers(source),
                  **context)


def _first_problem(check: Any, source: Any, only: bool, size: int, shown_checks: list) -> dict | None:
    """Where the first problem cell is: its row, column and the grid page it is on (the "skip to the first problem")."""
    if check is None:
        return None
    column = next(p.column for p in check.problems if p.column in source.sheet.headers)
    index = next((i for i, c in enumerate(shown_checks) if c.row.number == check.row.number), 0)
    return {"row": check.row.number, "column": column, "page": index // size + 1}


def ledger_lines(known: dict, t: Any) -> list[str]:
    """What the ledger knows of the rows (``Checked.known``), one line per kind, with the batches and dates."""
    lines = []
    for action, key in (("done", "known_done"), ("skip", "known_skip"), ("near", "known_near"), ("send", "known_settling")):
        rows = [r for r in known.values() if r.action == action]
        if not rows:
            continue
        batches_seen: dict[str, str] = {}
        for r in rows:
            if r.earlier is not None:
                batches_seen.setdefault(r.earlier.batch_id, (r.earlier.issued_at or r.earlier.updated_at or "")[:10])
        where = "; ".join(f"{b}, {day}" if day else b for b, day in batches_seen.items())
        lines.append(t(key + ("_1" if len(rows) == 1 else ""), n=len(rows), batches=where))
    return lines


def _names(items: Any) -> list[str]:
    return sorted({i.name for i in items if i.active}, key=str.casefold)


def _editor_context(source: Any, checked: Any, number: str, column: str, retry: bool = False) -> dict | None:
    try:
        row_number = int(number)
    except ValueError:
        return None
    sheet = source.sheet
    if column not in sheet.headers:
        return None
    check = next((c for c in checked.validation.checks if c.row.number == row_number), None) if checked else None
    row = check.row if check else next((r for r in sheet.rows if r.number == row_number), None)
    if row is None:
        return None
    field_of = {h: f for f, h in sheet.column_map.items()}
    choices: list[str] = []
    if checked is not None and field_of.get(column) == Field.TYPE.value:
        choices = _names(checked.catalogue.types)
    elif checked is not None and field_of.get(column) == Field.DEPARTMENT.value:
        choices = _names(checked.catalogue.departments)
    problems = [p.message for p in (check.problems if check else []) if p.column == column]
    suggestions = [m.group(1) for p in problems if (m := SUGGESTION.search(p))]
    letter = sheet.column_letters.get(column, "")
    return {"row": row_number, "column": column, "value": shown(row.original.get(column)), "choices": choices,
            "problems": problems, "suggestions": suggestions, "cell": f"{letter}{row_number}", "retry": retry}


async def editor(request: Request) -> Response:
    """The editor of one cell (an htmx fragment, or the check page with it open)."""
    web = web_of(request)
    upload = _upload_or_404(request)
    if upload is None:
        return not_found(request)
    retry = request.query_params.get("retry") == "1"
    number, column = request.query_params.get("row", ""), request.query_params.get("column", "")
    try:
        if retry:
            source = web.issuer.input_of(_as_retry(upload))
            checked = batches.check(source, web.target, web.read_request(upload), ledger=web.config.ledger)
        else:
            source, checked, _ = checked_of(web, upload)
    except FlexybulkError as exc:
        return render(request, "message.html", status=422, title="", message=page_words(web.redact(str(exc)), lang_of(request)))
    context = _editor_context(source, checked, number, column, retry)
    if context is None:
        return not_found(request)
    if not is_htmx(request):
        back = f"/u/{upload.id}/progress" if retry else f"/u/{upload.id}"
        return RedirectResponse(f"{back}?edit={number}:{column}#editor", status_code=303)
    return render(request, "_editor.html", upload=upload, edit=context)


def _as_retry(upload: Upload) -> Upload:
    copy = Upload(**{**upload.to_json(), "mode": "retry"}, folder=upload.folder)
    return copy


async def fix(request: Request) -> Response:
    """Store one cell fix, then show the sheet checked again."""
    web = web_of(request)
    upload = changeable_upload(request)
    if isinstance(upload, Response):
        return upload
    form = await request.form(max_files=0, max_fields=10)
    retry = form.get("retry") == "1"
    try:
        row = int(str(form.get("row", "")))
    except ValueError:
        return deny(request, "row", 400)
    column = str(form.get("column", ""))
    text = str(form.get("suggestion") or form.get("text") or "")  # a "did you mean" button, else the field
    if len(text) > 1000:
        return deny(request, "text", 400)
    if retry:
        if upload.state in ("queued", "running") or not upload.result_path.exists():
            return deny(request, "busy", 409)
        web.store.add_fix(upload, CellFix(row, column, text), retry=True)
    else:
        if upload.batch_id is not None:
            return deny(request, "batch", 409)
        web.store.add_fix(upload, CellFix(row, column, text))
    forget(web, upload.id)
    back = f"/u/{upload.id}/progress" if retry else f"/u/{upload.id}"
    query = "" if retry else _keep_query(form)
    return RedirectResponse(f"{back}{query}#row-{row}", status_code=303)


def _keep_query(form: Any) -> str:
    parts = []
    if form.get("only") == "problems":
        parts.append("only=problems")
    if str(form.get("page", "")).isdigit():
        parts.append(f"page={form.get('page')}")
    return "?" + "&".join(parts) if parts else ""


async def settings(request: Request) -> Response:
    """The sheet, the column mapping and the default department (re-read at once)."""
    web = web_of(request)
    upload = changeable_upload(request)
    if isinstance(upload, Response):
        return upload
    if upload.batch_id is not None:
        return deny(request, "batch", 409)
    form = await request.form(max_files=0, max_fields=40)
    current = dict(upload.request or {})
    if "sheet" in form:
        current["sheet"] = str(form["sheet"]) or None
        current["columns"] = {}
    if "department" in form:
        current["department"] = str(form["department"]) or None
    if "options" in form:
        current["include_hidden"] = form.get("include_hidden") == "1"
        encoding = str(form.get("encoding") or "")
        current["encoding"] = encoding if encoding in ENCODINGS else None
    if any(key.startswith("map:") for key in form.keys()):
        known = {f.value for f in Field}
        columns = {key[4:]: str(value) for key, value in form.items() if key.startswith("map:") and value and key[4:] in known}
        current["columns"] = columns
        try:
            source = batches.read_input(upload.path, web.read_request(Upload(**{**upload.to_json(), "request": current},
                                                                                folder=upload.folder)))
            web.store.remember_columns(source.sheet.headers, columns)
        except FlexybulkError:
            pass  # shown on the check page
    web.store.update(upload.id, request=current)
    forget(web, upload.id)
    return RedirectResponse(f"/u/{upload.id}", status_code=303)


async def validation_sheet(request: Request) -> Response:
    web = web_of(request)
    upload = _upload_or_404(request)
    if upload is None:
        return not_found(request)
    try:
        _, checked, _ = checked_of(web, upload)
        path = batches.write_validation(checked.validation, upload.validation_path, notes=checked.notes())
    except FlexybulkError as exc:
        return render(request, "message.html", status=422, title="", message=page_words(web.redact(str(exc)), lang_of(request)))
    return FileResponse(path, filename=path.name, media_type=XLSX)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def template(request: Request) -> Response:
    """The empty recipient sheet with dropdowns from the live catalogue (``flexybulk template``)."""
    web = web_of(request)
    lang = request.query_params.get("lang", lang_of(request))
    lang = lang if lang in i18n.LANGUAGES else "da"
    name = "modtagere.xlsx" if lang == "da" else "recipients.xlsx"
    folder = Path(tempfile.mkdtemp(prefix="template-"))
    try:
        written = batches.make_template(folder / name, web.target, lang=lang)
    except FlexybulkError as exc:
        return render(request, "message.html", status=502, title="", message=page_words(web.redact(str(exc)), lang_of(request)))
    data = written.path.read_bytes()
    written.path.unlink()
    folder.rmdir()
    return Response(data, media_type=XLSX, headers={"content-disposition": f'attachment; filename="{name}"'})
