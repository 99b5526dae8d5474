"""The sandbox's gift certificate types and departments.

The built-in catalogue is fixed by ``shared/flexybox-api.md`` part D, because
sample sheets and shared test inputs refer to it by name and id.

A caller may replace it (a JSON file, :func:`load_catalogue`) or add rules to
it (:func:`with_rules`). Two fields of a gift certificate type are rules the
sandbox enforces on sales orders, so that refusals of orders our own
validation accepted can be rehearsed (issue #13); part B allows such
plausible extra fields, and the client must not depend on them:

- ``IsActive: false``: an order line for the type gets 400.
- ``MaxPrice``: a JSON number; an order line whose ``Price`` is above it gets
  400 naming ``GiftCertificates.GiftCertificates[<i>].Price``.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable, Mapping

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
            list of objects, holds something JSON cannot carry, or a type
            has an ``IsActive`` that is not true/false or a ``MaxPrice`` that
            is not a number greater than 0.
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
    result = json.loads(text, parse_float=Decimal)
    for index, item in enumerate(result["types"]):
        _check_rules(item, f"catalogue['types'][{index}]")
    return result


def _check_rules(item: dict[str, Any], where: str) -> None:
    active = item_field(item, "IsActive")
    if active is not None and not isinstance(active, bool):
        raise ValueError(f"{where}: IsActive must be true or false, not {active!r}")
    max_price = item_field(item, "MaxPrice")
    if max_price is None:
        return
    number = isinstance(max_price, Decimal) or (isinstance(max_price, int) and not isinstance(max_price, bool))
    if not number or not Decimal(max_price).is_finite() or max_price <= 0:
        raise ValueError(f"{where}: MaxPrice must be a number greater than 0 (such as 1000 or 499.95), not {max_price!r}")


def load_catalogue(path: Path | str) -> dict[str, list[dict[str, Any]]]:
    """Read a catalogue from a JSON file: ``{"types": [...], "departments": [...]}`` as in
    :func:`default_catalogue`, numbers with a fraction read as ``Decimal``.

    Raises:
        ValueError: the file cannot be read, is not UTF-8 JSON, or is not a
            valid catalogue (:func:`normalise_catalogue`); the message names
            the file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as err:
        raise ValueError(f"Cannot read the catalogue file {path}: {err.strerror}.") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"The catalogue file {path} is not UTF-8 JSON: {err}.") from None
    try:
        return normalise_catalogue(data)
    except ValueError as err:
        raise ValueError(f"The catalogue file {path} is not a catalogue: {err}. Write it as "
                         '{"types": [{"Id": ..., "Name": ...}, ...], "departments": [{"Id": ..., "Name": ...}, ...]}.') from None


def with_rules(catalogue: dict[str, Any] | None = None, *, max_prices: Mapping[str, Decimal | int] | None = None,
               inactive: Iterable[str] = ()) -> dict[str, list[dict[str, Any]]]:
    """A copy of ``catalogue`` (the built-in one for ``None``) with sales order rules on some types.

    Args:
        catalogue: as for :func:`normalise_catalogue`.
        max_prices: gift certificate type (its ``Name``, matched without
            regard to case, or its ``Id``) -> the largest ``Price`` an order
            line may have, in the order's currency (``MaxPrice``).
        inactive: gift certificate types (name or id) to mark ``IsActive: false``.

    Raises:
        ValueError: a type that is not in the catalogue (the message lists
            the names), a maximum price that is not a number > 0, or a
            malformed ``catalogue``.
    """
    result = normalise_catalogue(catalogue)
    types = result["types"]

    def find(wanted: str) -> dict[str, Any]:
        for item in types:
            name, ident = item_field(item, "Name"), item_field(item, "Id")
            if (isinstance(name, str) and name.casefold() == wanted.casefold()) or str(ident) == wanted:
                return item
        names = ", ".join(repr(item_field(item, "Name")) for item in types)
        raise ValueError(f"There is no gift certificate type {wanted!r} in the catalogue; its types are {names}.")

    for wanted, price in (max_prices or {}).items():
        item = find(wanted)
        _set_field(item, "MaxPrice", price)
        _check_rules(item, f"the gift certificate type {wanted!r}")
    for wanted in inactive:
        _set_field(find(wanted), "IsActive", False)
    return result


def _set_field(item: dict[str, Any], name: str, value: Any) -> None:
    """Set ``name`` in a catalogue item, under the item's own spelling of the key if it has one."""
    key = next((k for k in item if k.casefold() == name.casefold()), name)
    item[key] = value


def describe_rules(types: list[dict[str, Any]]) -> list[str]:
    """The sales order rules of these gift certificate types in words: ``["Gavekort at most 1000", "Julegavekort inactive"]``."""
    rules = [f"{item_field(t, 'Name')} at most {item_field(t, 'MaxPrice')}" for t in types if item_field(t, "MaxPrice") is not None]
    return rules + [f"{item_field(t, 'Name')} inactive" for t in types if item_field(t, "IsActive") is False]


def parse_max_price(text: str) -> tuple[str, Decimal]:
    """``"Gavekort=1000"`` -> ``("Gavekort", Decimal("1000"))``: the ``--max-price`` option's value.

    Raises:
        ValueError: not ``TYPE=AMOUNT``, or the amount is not a plain number
            greater than 0 (``1000`` or ``499.95``, a point before decimals).
    """
    name, sep, amount = text.rpartition("=")
    try:
        price = Decimal(amount.strip())
    except InvalidOperation:
        price = None
    if not sep or not name.strip() or price is None or not price.is_finite() or price <= 0:
        raise ValueError(f"--max-price {text!r} must look like TYPE=AMOUNT with an amount greater than 0, "
                         "e.g. --max-price Gavekort=1000 or --max-price \"Julegavekort=499.95\".")
    return name.strip(), price


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
