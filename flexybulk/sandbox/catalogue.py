"""The sandbox's gift certificate types and departments.

The built-in catalogue is fixed by ``shared/flexybox-api.md`` part D, because
sample sheets and shared test inputs refer to it by name and id.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import simplejson

# Part D: names exactly as written (æøå included), ids exactly as listed.
_TYPES = (
    ("e2080ad4-3ed0-55aa-bcb6-d5d895186603", "Gavekort"),
    ("c64d4fab-d517-5859-aa54-af0d23944cd4", "Julegavekort"),
    ("ff689036-26c7-5b7a-b4d5-2791a4b87fb6", "Oplevelsesgavekort"),
    ("6a9dd469-60ed-5762-b109-8643cafdb100", "Firmagavekort"),
)
_DEPARTMENTS = ((1, "Webshop"), (2, "København"), (3, "Aarhus"), (4, "Odense"))


def default_catalogue() -> dict[str, list[dict[str, Any]]]:
    """A fresh copy of the built-in catalogue (``flexybox-api.md`` part D).

    Shape: ``{"types": [{"Id": "<guid>", "Name": str, "IsActive": True,
    "ValidityMonths": 36}, ...], "departments": [{"Id": int, "Name": str}, ...]}``.
    Department ids are ints on purpose: the client must send back exactly the
    JSON value it received. ``IsActive`` and ``ValidityMonths`` are the
    plausible extra fields part B allows; a client must not depend on them.
    """
    return {
        "types": [{"Id": id_, "Name": name, "IsActive": True, "ValidityMonths": 36} for id_, name in _TYPES],
        "departments": [{"Id": id_, "Name": name} for id_, name in _DEPARTMENTS],
    }


def normalise_catalogue(catalogue: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """Check a caller's catalogue and return it as the sandbox will serve it.

    The catalogue goes through a JSON round trip (numbers other than ints
    become ``Decimal``), so the ids the sandbox compares against are exactly
    what a client parsing the served JSON gets back.

    Raises:
        ValueError: ``catalogue`` lacks a ``"types"`` or ``"departments"``
            list of objects, or holds something JSON cannot carry.
    """
    if catalogue is None:
        return default_catalogue()
    if not isinstance(catalogue, dict):
        raise ValueError("catalogue must be a dict with 'types' and 'departments' lists")
    for key in ("types", "departments"):
        items = catalogue.get(key)
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise ValueError(f"catalogue[{key!r}] must be a list of dicts")
    try:
        text = simplejson.dumps(
            {"types": catalogue["types"], "departments": catalogue["departments"]}, use_decimal=True
        )
    except TypeError as err:
        raise ValueError(f"catalogue is not JSON-serialisable: {err}") from err
    return json.loads(text, parse_float=Decimal)


def item_field(item: dict[str, Any], name: str) -> Any:
    """The value of ``name`` in a catalogue item, matching the key without regard to case.

    Part A tells the client to match field names without regard to case, so
    an odd test catalogue may spell them ``"id"``; the sandbox reads it the
    same way. Returns ``None`` when the item has no such field.
    """
    wanted = name.casefold()
    for key, value in item.items():
        if key.casefold() == wanted:
            return value
    return None
