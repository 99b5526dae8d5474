"""What a face that confirms a batch apart from running it needs from the library (issue #14).

The web page shows a prepared batch, waits for a person (and, in team mode,
an approver), and runs it later in a worker; the command line does all of
that in one process. This module holds the pieces that make the later run
exactly what was confirmed, and the record of who decided:

- :func:`plan_digest`: a fingerprint of what a :class:`~flexybulk.batches.Prepared` would issue;
- :func:`record_web_decision` and :func:`web_users`: the web user, the
  approver and the cells fixed on the page, in the batch's audit log;
- :func:`sheet_names`: the visible worksheets, for a sheet chooser.

No rule about money is decided here; the batch use cases stay in
:mod:`flexybulk.batches`.
"""

from __future__ import annotations

from pathlib import Path

from .batches import Prepared
def sheet_names(path: Path | str) -> list[str]:
    """The visible worksheets of a workbook (XLSX, XLSM, XLSB, ODS, XLS), in workbook order; ``[]`` for CSV or unreadable files.

    For a sheet chooser: :func:`read_input` refuses a workbook with several
    sheets of recipients until ``ReadRequest.sheet`` names one.
    """
    try:
        import python_calamine

        book = python_calamine.CalamineWorkbook.from_path(str(path))
        visible, worksheet = python_calamine.SheetVisibleEnum.Visible, python_calamine.SheetTypeEnum.WorkSheet
        return [m.name for m in book.sheets_metadata if m.visible == visible and m.typ == worksheet]
    except Exception:  # not a workbook calamine reads (CSV, a hostile file): no sheets to choose from
        return []


def plan_digest(prepared: Prepared) -> str:
    """A fingerprint (hex SHA-256) of what ``prepared`` would issue: the batch it continues (or "a new
    batch"), each row to send with its recipient, type, department, amount, quantity and currency, the rows
    to issue again, the near-duplicates, and the rows finishing an earlier batch's row with that row's ids.

    A face shows a prepared batch, the person confirms it, and the face
    prepares again before the run (the issuing lock is not held while a person
    thinks): the run goes ahead only if the digest is the same, so what is
    issued is exactly what was confirmed [issue #14]. ``""`` for a blocked batch.
    """
    import hashlib
    import json

    if prepared.blocked:
        return ""
    reissue = sorted(r.row_number for r in prepared.reissue)
    near = sorted(r.row_number for r in prepared.near)
    lines = [[o.row, o.email, str(o.type.id), str(o.department.id), str(o.price), o.quantity, o.currency]
             for o in prepared.orders]
    settling = sorted([r.row_number, r.earlier.batch_id, r.earlier.row_number] for r in prepared.settling if r.earlier)
    # A new batch gets a new id each time it is planned, so only a continued batch's id is part of the digest.
    batch = prepared.batch.id if prepared.plan.resumed else None
    text = json.dumps({"batch": batch, "orders": lines, "reissue": reissue, "near": near, "settling": settling}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_web_decision(ledger_path: Path, batch_id: str, *, user: str, approved_by: str | None = None,
                        file_sha256: str | None = None, fixes: list | None = None, action: str = "issue") -> None:
    """Append a ``web`` event to the batch's audit log: the web user who confirmed, who approved, and the
    cells fixed on the page (``[row, column, text]``), with the SHA-256 of the file as uploaded.

    The run's own ``run`` event (written by :meth:`Issuing.run`) carries the
    web user too; this line adds what only the web page knows [issue #14].
    """
    from .audit import AuditLog, audit_path

    log = AuditLog(audit_path(Path(ledger_path), batch_id))
    try:
        log.write("web", action=action, web_user=user, approved_by=approved_by, file_sha256=file_sha256,
                  fixes=fixes or [], batch_id=batch_id)
    finally:
        log.close_file()


def web_users(ledger_path: Path, batch_id: str) -> list[str]:
    """The web users named in a batch's audit log (who confirmed, who approved), in order, each once."""
    import json

    from .audit import audit_path

    names: list[str] = []
    try:
        lines = audit_path(Path(ledger_path), batch_id).read_text(encoding="utf-8").splitlines()
    except OSError:
        return names
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        for name in (event.get("web_user"), event.get("approved_by"), (event.get("options") or {}).get("web_user")):
            if name and name not in names:
                names.append(name)
    return names



__all__ = ["plan_digest", "record_web_decision", "sheet_names", "web_users"]
