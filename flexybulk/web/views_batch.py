"""Steps 3 to 6 of the page: confirm (and approve), follow the progress, get the result and retry, the history.

The confirmation shows a batch prepared by the issuing queue
(:class:`~flexybulk.web.jobs.Preview`); confirming queues a run that goes
ahead only if the batch is still exactly what was shown (its digest). The
progress is read from the ledger on every poll, so a refresh, a closed tab
or a restarted server loses nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import batches
from ..confirmations import web_users
from ..errors import FlexybulkError
from ..fixes import apply_fixes, previous_values
from ..model import RowStatus
from . import i18n
from .app import change_refused, deny, is_htmx, lang_of, refuse_change, render, user_of, web_of
from .jobs import Preview, Work
from ..wording import page_words
from .views_sheet import XLSX, _as_retry, _editor_context, _upload_or_404, changeable_upload, forget, grid_rows, not_found

# Every status a batch's row can have (the validation sheet's VALID is not one); a status the library adds
# (EXCLUDED for hidden rows, issue #12) is shown as soon as it exists.
_ORDER = ["ISSUED", "PENDING", "FAILED", "UNKNOWN", "SKIPPED", "EXCLUDED", "INVALID"]
STATUSES = sorted((s.value for s in RowStatus if s is not RowStatus.VALID),
                  key=lambda v: _ORDER.index(v) if v in _ORDER else len(_ORDER))


def routes() -> list[Route]:
    return [
        Route("/u/{uid}/confirm", confirm_page),
        Route("/u/{uid}/confirm", confirm, methods=["POST"]),
        Route("/u/{uid}/options", options, methods=["POST"]),
        Route("/u/{uid}/approve", approve, methods=["POST"]),
        Route("/u/{uid}/progress", progress_page),
        Route("/u/{uid}/stop", stop, methods=["POST"]),
        Route("/u/{uid}/resume", resume, methods=["POST"]),
        Route("/u/{uid}/retry", retry, methods=["POST"]),
        Route("/u/{uid}/result.xlsx", result_sheet),
        Route("/history", history),
    ]


def _progress_url(uid: str) -> str:
    return f"/u/{uid}/progress"


async def confirm_page(request: Request) -> Response:
    web = web_of(request)
    upload = _upload_or_404(request)
    if upload is None:
        return not_found(request)
    if upload.state in ("queued", "running"):
        return RedirectResponse(_progress_url(upload.id), status_code=303)
    found = web.issuer.preview(upload)
    if isinstance(found, Work) and not is_htmx(request):
        # A preview takes a moment (a catalogue fetch and the plan): wait a little rather than show "Preparing…".
        await asyncio.to_thread(found.done.wait, 3.0)
        found = web.issuer.preview(upload)
    preview = found if isinstance(found, Preview) else None
    place = None
    if isinstance(found, Work):
        place = web.issuer.place(upload.id) or (1 if web.issuer.current is not None and web.issuer.current is not found else None)
    user = user_of(request)
    context: dict[str, Any] = {
        "upload": upload, "preview": preview, "pending": preview is None, "place": place,
        "needs_approval": bool(preview and not preview.error and web.needs_approval(preview.amounts)),
        "approval_limit": web.config.approval_above,
        "own": upload.user == user.name or (upload.confirmed or {}).get("user") == user.name,
        "busy": found.message if isinstance(found, Work) else None,
        "can_change": change_refused(user, upload, web.config.team) is None,
    }
    name = "_confirm_body.html" if is_htmx(request) and request.query_params.get("fragment") else "confirm.html"
    return render(request, name, **context)


async def _form(request: Request) -> Any:
    return await request.form(max_files=0, max_fields=10)


async def options(request: Request) -> Response:
    web = web_of(request)
    upload = changeable_upload(request)
    if isinstance(upload, Response):
        return upload
    form = await _form(request)
    if upload.state in ("new", "needs_confirmation"):
        web.store.update(upload.id, skip_invalid=form.get("skip_invalid") == "1")
        forget(web, upload.id)
    return RedirectResponse(f"/u/{upload.id}/confirm", status_code=303)


def _ready_preview(web: Any, upload: Any, digest: str) -> Preview | None:
    found = web.issuer.preview(upload)
    if isinstance(found, Preview) and not found.error and not found.blocked and found.digest and found.digest == digest:
        return found
    return None


async def confirm(request: Request) -> Response:
    """The person confirmed the figures shown: queue the run (once), or ask for approval."""
    web = web_of(request)
    upload = changeable_upload(request)
    if isinstance(upload, Response):
        return upload
    form = await _form(request)
    user = user_of(request)
    if upload.state in ("queued", "running"):
        return RedirectResponse(_progress_url(upload.id), status_code=303)  # a double click, a second tab
    preview = _ready_preview(web, upload, str(form.get("digest", "")))
    if preview is None:
        return RedirectResponse(f"/u/{upload.id}/confirm?changed=1", status_code=303)
    near = form.get("near_confirmed") == "1"
    if preview.near and not near:
        # Near-duplicates are issued only on their own decision (issue #11), never by the general "yes".
        return RedirectResponse(f"/u/{upload.id}/confirm?near=1", status_code=303)
    if web.needs_approval(preview.amounts):
        with web.store.lock:
            current = web.store.get(upload.id)
            if current is not None and current.state in ("new", "needs_confirmation"):
                web.store.update(upload.id, state="awaiting_approval",
                                 confirmed={"digest": preview.digest, "user": user.name, "approved_by": None, "near": near})
        return RedirectResponse(f"/u/{upload.id}/confirm", status_code=303)
    web.issuer.submit(upload.id, user=user.name, digest=preview.digest, near_confirmed=near,
                      from_states=("new", "needs_confirmation"))
    return RedirectResponse(_progress_url(upload.id), status_code=303)


async def approve(request: Request) -> Response:
    """An approver (not the uploader, not who confirmed) lets a batch above the approval amount start."""
    web = web_of(request)
    upload = _upload_or_404(request)
    if upload is None:
        return not_found(request)
    t = i18n.translator(lang_of(request))
    user = user_of(request)
    if not user.can("approver"):
        return deny(request, "approver")
    confirmed = upload.confirmed or {}
    if user.name in (upload.user, confirmed.get("user")):
        return deny(request, t("cannot_approve_own"))
    if upload.state != "awaiting_approval":
        return RedirectResponse(f"/u/{upload.id}/confirm", status_code=303)
    form = await _form(request)
    preview = _ready_preview(web, upload, str(form.get("digest", "")))
    if preview is None or preview.digest != confirmed.get("digest"):
        return RedirectResponse(f"/u/{upload.id}/confirm?changed=1", status_code=303)
    web.issuer.submit(upload.id, user=confirmed.get("user") or upload.user, digest=preview.digest, approved_by=user.name,
                      near_confirmed=bool(confirmed.get("near")), from_states=("awaiting_approval",))
    return RedirectResponse(_progress_url(upload.id), status_code=303)


def _attention_rows(web: Any, upload: Any, status: batches.BatchStatus, lang: str) -> tuple[list[dict], str | None]:
    """The rows needing attention, with their cells from the result sheet and its retry fixes (editable)."""
    wanted = {r.row_number: r for r in status.attention}
    if not wanted or not upload.result_path.exists():
        return [], None
    try:
        raw = web.issuer.input_of(_as_retry(upload), fixed=False)
        source = apply_fixes(raw, upload.retry_fixes())
    except FlexybulkError as exc:
        return [], web.redact(str(exc))
    from ..validate import RowCheck

    checks = [RowCheck(r, None) for r in source.sheet.rows if r.number in wanted]
    rows = grid_rows(source, checks, {n: r.status.value for n, r in wanted.items()},
                     previous=previous_values(raw, upload.retry_fixes()), lang=lang)
    for row in rows:
        rec = wanted[row["number"]]
        row["error"] = page_words(web.redact(batches.row_state_text(rec)), lang)
    # grid_rows shows the input's columns only (input_headers): AmountRead and LineTotal are what the last run read,
    # and a retry writes them anew from the fixed input.
    return rows, None


_SHOWN_WAITING = 20  # rows not sent yet listed one by one on the result page; the others in one line


def next_action(upload: Any, counts: dict[str, int]) -> str | None:
    """The one thing to press on the result page: ``"resume"`` for an interrupted batch, or a stopped one whose
    unfinished rows are all PENDING and unchanged; ``"retry"`` when rows need attention otherwise (FAILED,
    UNKNOWN, INVALID, or a cell fixed for the retry); ``None`` when nothing is left to do (or it runs)."""
    if upload.state == "interrupted":
        return "resume"
    if upload.state != "done":
        return None
    other = counts.get("FAILED", 0) + counts.get("UNKNOWN", 0) + counts.get("INVALID", 0)
    if counts.get("PENDING", 0) and not other and not upload.retry_fixes():
        return "resume"
    if (other or counts.get("PENDING", 0)) and upload.result_path.exists():
        return "retry"
    return None


async def progress_page(request: Request) -> Response:
    web = web_of(request)
    upload = _upload_or_404(request)
    if upload is None:
        return not_found(request)
    work = web.issuer.running(upload.id)
    status = batches.batch_progress(web.config.ledger, upload.batch_id) if upload.batch_id else None
    counts = {s: (status.counts.get(s, 0) if status else 0) for s in STATUSES}
    attention, problem = ([], None)
    if status is not None and upload.state not in ("queued", "running"):
        attention, problem = _attention_rows(web, upload, status, lang_of(request))
    edit = None
    query_edit = request.query_params.get("edit")
    if query_edit and ":" in query_edit and upload.state not in ("queued", "running"):
        number, _, column = query_edit.partition(":")
        try:
            edit = _editor_context(web.issuer.input_of(_as_retry(upload)), None, number, column, retry=True)
        except FlexybulkError:
            edit = None
    total = sum(counts.values())
    # Retry sends the rows that can go now; an INVALID row goes only once a cell of it is fixed (a fresh user's
    # find: the page said it sends six rows when all six were invalid and nothing was fixed).
    unfixed = sum(1 for r in attention if r["status"] == "INVALID" and not any(c["fixed"] for c in r["cells"]))
    sendable = len(attention) - unfixed
    # A stopped batch's rows not sent yet: the first few shown (a cell of any can be fixed), the rest in one line
    # (a fresh user's find: 255 rows each saying "not sent yet." made the page 16,000 px tall on a phone).
    waiting = [r["number"] for r in attention if r["status"] == "PENDING" and not any(c["fixed"] for c in r["cells"])]
    hidden = set(waiting[_SHOWN_WAITING:])
    if hidden:
        attention = [r for r in attention if r["number"] not in hidden]
    context = {
        "upload": upload, "work": work, "place": web.issuer.place(upload.id), "ledger_status": status, "counts": counts,
        "statuses": STATUSES, "total": total, "attention": attention, "attention_problem": problem, "edit": edit,
        "issued": status.issued if status else None, "retry_fixes": len(upload.retry_fixes()),
        "live": upload.state in ("queued", "running"), "action": next_action(upload, counts),
        "can_change": change_refused(user_of(request), upload, web.config.team) is None,
        "headers": [c["header"] for c in attention[0]["cells"]] if attention else [],
        "sendable": sendable, "unfixed": unfixed,
        "hidden_waiting": len(hidden), "hidden_rows": batches.row_ranges(sorted(hidden)) if hidden else "",
    }
    name = "_progress_body.html" if is_htmx(request) and request.query_params.get("fragment") else "progress.html"
    return render(request, name, **context)


async def stop(request: Request) -> Response:
    """Stop a run: whoever may start it, and approvers (who may have let it start)."""
    web = web_of(request)
    upload = _upload_or_404(request)
    if upload is None:
        return not_found(request)
    if not user_of(request).can("approver"):
        refused = refuse_change(request, upload)
        if refused is not None:
            return refused
    web.issuer.stop(upload.id)
    return RedirectResponse(_progress_url(upload.id), status_code=303)


async def resume(request: Request) -> Response:
    """Continue an interrupted or stopped batch with its recorded ids (no new confirmation of new rows)."""
    web = web_of(request)
    upload = changeable_upload(request)
    if isinstance(upload, Response):
        return upload
    if upload.batch_id is None:
        return RedirectResponse(f"/u/{upload.id}/confirm", status_code=303)
    web.issuer.submit(upload.id, user=user_of(request).name, digest=None, approved_by=upload.approved_by,
                      from_states=("interrupted", "done"))
    return RedirectResponse(_progress_url(upload.id), status_code=303)


async def retry(request: Request) -> Response:
    """Prepare a retry of the rows needing attention (from the result sheet and its fixes): back to the confirmation."""
    web = web_of(request)
    upload = changeable_upload(request)
    if isinstance(upload, Response):
        return upload
    if upload.state in ("queued", "running") or not upload.result_path.exists():
        return RedirectResponse(_progress_url(upload.id), status_code=303)
    web.store.update(upload.id, mode="retry", state="new", skip_invalid=False, message=None)
    forget(web, upload.id)
    return RedirectResponse(f"/u/{upload.id}/confirm", status_code=303)


async def result_sheet(request: Request) -> Response:
    upload = _upload_or_404(request)
    if upload is None or not upload.result_path.exists():
        return not_found(request)
    return FileResponse(upload.result_path, filename=upload.result_path.name, media_type=XLSX)


async def history(request: Request) -> Response:
    """Every batch of the ledger, newest first, searchable; each with its upload when the page still has it.

    An uploader (team mode) sees only their own batches: those they uploaded or are named in (the README's
    roles); approvers and admins see every batch, also those run from the command line.
    """
    web = web_of(request)
    user = user_of(request)
    sees_all = not web.config.team or user.can("approver")
    query = (request.query_params.get("q") or "").strip()
    uploads = web.store.all()
    by_batch: dict[str, Any] = {}
    for u in uploads:
        if u.batch_id and u.batch_id not in by_batch:
            by_batch[u.batch_id] = u
    entries = []
    for status in batches.list_batches(web.config.ledger):
        b = status.batch
        upload = by_batch.get(b.id)
        people = [p for p in [b.web_user, *web_users(status.ledger, b.id)] if p] or [b.os_user or ""]
        unfinished = bool(status.attention)
        entry = {"batch": b, "counts": dict(status.counts), "issued": status.issued, "people": list(dict.fromkeys(people)),
                 "file": Path(b.input_path).name if not upload else upload.filename, "upload": upload,
                 "unfinished": unfinished}
        if not sees_all and (upload is None or upload.user != user.name) and user.name not in entry["people"]:
            continue
        counts = {s: entry["counts"].get(s, 0) for s in STATUSES}
        entry["action"] = next_action(upload, counts) if upload is not None else None
        entry["can_change"] = upload is not None and change_refused(user, upload, web.config.team) is None
        haystack = " ".join([entry["file"], b.id, b.target, *entry["people"], *entry["counts"],
                             "unfinished" if unfinished else "complete"]).casefold()
        if query and query.casefold() not in haystack:
            continue
        entries.append(entry)
    awaiting = [u for u in uploads if u.state == "awaiting_approval"] if user.can("approver") else []
    return render(request, "history.html", entries=entries, query=query, awaiting=awaiting)
