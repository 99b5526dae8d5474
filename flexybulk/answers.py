"""Reading Flexybox's answers: catalogue lists, certificate numbers, error messages, "already committed".

Pure functions over parsed JSON (numbers as ``Decimal``), no HTTP: the vendor
article says little about the shapes of answers, so each reader accepts the
plausible ones (``shared/flexybox-api.md`` part A: a bare list or an OData
``value`` envelope, field names in any case) and says plainly what it could
not read.
"""

from __future__ import annotations

import re
from typing import Any

import simplejson

from .errors import ApiError
from .model import CatalogueItem


def _lower_keys(obj: dict) -> dict:
    return {str(k).lower(): v for k, v in obj.items()}


def server_message(body: Any, text: str) -> str | None:
    """Pull a human message out of an error body (JSON or text), field name included."""
    if isinstance(body, dict):
        low = _lower_keys(body)
        msg = None
        for key in ("message", "error", "detail", "title", "error_description"):
            if isinstance(low.get(key), str) and low[key].strip():
                msg = low[key].strip()
                break
        if msg is None and low.get("errors"):
            msg = simplejson.dumps(low["errors"], ensure_ascii=False, use_decimal=True)
        field = low.get("field")
        if msg and isinstance(field, str) and field and field.lower() not in msg.lower():
            msg = f"{field}: {msg}"
        if msg:
            return msg[:500]
    text = (text or "").strip()
    return text[:300] or None


def refusal_parts(body: Any) -> tuple[str | None, str | None]:
    """``(field, message)`` of a refusal's JSON body: the request field at fault and the server's own words.

    Two shapes are read (field names in any case): ``{"Message": ..., "Field": ...}``
    (``shared/flexybox-api.md`` part B: a 400 "with a JSON body naming the
    field", as the sandbox answers), and ASP.NET's validation problem
    ``{"title": ..., "errors": {"Price": ["..."]}}`` when it names exactly one
    field. ``field`` is ``None`` when the body names none (or several);
    ``message`` is ``None`` when the body has no words of its own.
    """
    if not isinstance(body, dict):
        return None, None
    low = _lower_keys(body)
    errors = low.get("errors")
    if isinstance(errors, dict) and len(errors) == 1:
        (name, said), = errors.items()
        words = said[0] if isinstance(said, list) and said else said
        if isinstance(name, str) and name.strip() and isinstance(words, str) and words.strip():
            return name.strip(), words.strip()
    message = next((low[key].strip() for key in ("message", "error", "detail", "title", "error_description")
                    if isinstance(low.get(key), str) and low[key].strip()), None)
    field = low.get("field")
    return (field.strip() if isinstance(field, str) and field.strip() else None), message


def parse_catalogue(payload: Any, what: str) -> list[CatalogueItem]:
    """Read a catalogue list from a bare JSON list or an OData ``value`` envelope.

    Field names are matched without regard to case; only ``Id`` and ``Name``
    are required (``shared/flexybox-api.md`` part A/B). An ``IsActive`` or
    ``Active`` field that is ``false`` marks the item inactive. Ids are kept
    exactly as received (a GUID string, or a JSON number).

    Raises:
        ApiError: the payload is not a list of objects with an id and a name.
    """
    items = payload
    if isinstance(payload, dict):
        low = _lower_keys(payload)
        items = low.get("value")
    if not isinstance(items, list):
        raise ApiError(f"The {what} list from Flexybox has an unexpected shape (neither a list nor an OData 'value' list).")
    result = []
    for raw in items:
        if not isinstance(raw, dict):
            raise ApiError(f"The {what} list from Flexybox holds a non-object entry: {raw!r:.80}.")
        low = _lower_keys(raw)
        ident, name = low.get("id"), low.get("name")
        if ident is None or not isinstance(name, str):
            raise ApiError(f"A {what} from Flexybox lacks an Id or a Name: {simplejson.dumps(raw, use_decimal=True)[:200]}.")
        active = low.get("isactive", low.get("active", True))
        result.append(CatalogueItem(id=ident, name=name, active=active is not False, raw=raw))
    return result


def certificate_numbers(order: Any) -> list[str]:
    """The gift certificate numbers in a commit answer, if it lists any.

    Looks for a ``GiftCertificates`` list (any case, possibly nested one level
    as the order body is) whose items carry ``Number``, ``CertificateNumber``,
    ``GiftCertificateNumber`` or ``Code``. The vendor article does not say
    what the commit answers, so an answer without numbers is not an error.
    """
    if not isinstance(order, dict):
        return []
    low = _lower_keys(order)
    certs = low.get("giftcertificates")
    if isinstance(certs, dict):
        certs = _lower_keys(certs).get("giftcertificates")
    numbers = []
    if isinstance(certs, list):
        for cert in certs:
            if isinstance(cert, dict):
                c = _lower_keys(cert)
                for key in ("number", "certificatenumber", "giftcertificatenumber", "code"):
                    if c.get(key) not in (None, ""):
                        numbers.append(str(c[key]))
                        break
    return numbers


_ALREADY_COMMITTED = re.compile(
    r"\balready\s+(?:been\s+)?(?:committed|completed|paid|finali[sz]ed)\b"
    r"|\ballerede\s+(?:er\s+|blevet\s+)*(?:committet|committed|gennemført|betalt|afsluttet)",
    re.IGNORECASE,
)


def says_already_committed(error: ApiError) -> bool:
    """True when Flexybox refused a commit because the sales order is already committed.

    The vendor article says a repeated commit with the same payment id is
    ignored; a vendor that refuses it instead (``400``, ``409`` or ``422``
    with words such as "already committed", "already been completed",
    "already paid", or Danish "allerede gennemført") is telling us that an
    earlier commit of this order *did* happen. Sales order ids are chosen by
    us, one per row, so that commit was ours. The sandbox answers so with
    ``Faults(commit_409_on_repeat=True)``. Matched without regard to case, in
    the server's own message only.
    """
    if error.status not in (400, 409, 422) or not error.server_message:
        return False
    return _ALREADY_COMMITTED.search(error.server_message) is not None
