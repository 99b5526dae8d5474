"""The rules a single value must meet, and the values derived from an order: text, email, codes, fingerprint, money.

Pure functions; sources as in :mod:`flexybulk.validate`.
"""

from __future__ import annotations

import decimal
import difflib
import hashlib
import re
import unicodedata
from decimal import Decimal
from functools import lru_cache
from typing import Any, Iterable

from email_validator import EmailNotValidError, validate_email

from ..model import CatalogueItem, Field, Order

DEFAULT_QUANTITY = 1
DEFAULT_COUNTRY = "DK"
DEFAULT_CURRENCY = "DKK"

MAX_AMOUNT = Decimal("100000")  # kroner (or the row's currency) per gift certificate
MAX_QUANTITY = 1000
MAX_LENGTHS = {  # characters, after cleaning; past these a row error, never a silent cut
    Field.NAME: 200,
    Field.ADDRESS: 200,
    Field.CITY: 100,
    Field.POSTAL_CODE: 20,
    Field.PHONE: 32,
}

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


@lru_cache(maxsize=512)
def _known_currency(code: str) -> bool:
    """An active ISO 4217 alphabetic code of money (pycountry's copy of the standard).

    Not the codes ISO keeps for what is no money to pay in: no currency
    (XXX), testing (XTS), precious metals (XAU, XAG, XPD, XPT) and units of
    account (XDR, XBA-XBD, XSU, XUA) (a fresh user's find: XXX was accepted).
    """
    import pycountry

    return (bool(_CURRENCY_RE.match(code)) and code not in NOT_MONEY
            and pycountry.currencies.get(alpha_3=code) is not None)


NOT_MONEY = frozenset(("XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XDR", "XBA", "XBB", "XBC", "XBD", "XSU", "XUA"))

# A currency word in an amount's own text ("250 kr", "99 DKK"), which the reader strips: kroner are Danish,
# Swedish, Norwegian or Icelandic; DKK only Danish.
_KRONER = re.compile(r"(?<![A-Za-z])(dkk|kr)(?![A-Za-z])", re.IGNORECASE)
_KRONER_CURRENCIES = {"dkk": frozenset(("DKK",)), "kr": frozenset(("DKK", "SEK", "NOK", "ISK"))}


def amount_currency_conflict(raw: Any, currency: str) -> str | None:
    """The currency word in an amount's text when it contradicts the row's ``currency`` (``"DKK"``), else ``None``.

    ``"100 DKK"`` on a row whose currency is EUR would be issued as 100 EUR.
    """
    if raw.__class__ is not str:
        return None
    found = _KRONER.search(raw)
    if found is None or currency in _KRONER_CURRENCIES[found.group(1).lower()]:
        return None
    return found.group(1)


@lru_cache(maxsize=512)
def _known_country(code: str) -> bool:
    """An ISO 3166-1 alpha-2 code (pycountry's copy of the standard); ``NA`` is Namibia (pitfalls P8)."""
    import pycountry

    return bool(_COUNTRY_RE.match(code)) and pycountry.countries.get(alpha_2=code) is not None


_TWO_PLACES = Decimal("0.01")


def clean_text(value: Any) -> str:
    """``value`` as text with control and format characters removed and spaces trimmed.

    Unicode categories Cc (controls, tab and newline included) and Cf
    (zero-width and direction marks, BOM) become nothing, except that a
    tab or line break becomes a space; runs of spaces fold to one.
    """
    text = str(value)
    if text.isprintable():
        return " ".join(text.split()) if "  " in text else text.strip()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\t\n\r\v\f\x85\u2028\u2029":
            out.append(" ")
        elif cat in ("Cc", "Cf"):
            continue
        else:
            out.append(ch)
    return " ".join("".join(out).split())


@lru_cache(maxsize=65536)
def check_email(address: str) -> tuple[str | None, str | None]:
    """Check an email address's syntax with email-validator (no DNS lookups).

    Returns ``(normalized, None)`` or ``(None, reason)``. The normalised form
    is email-validator's (domain lower-cased and IDNA-normalised). A whole
    sheet's addresses go through :class:`flexybulk.emails.EmailVerdicts`
    instead, which gives the same verdicts faster.
    """
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, str(exc)
    return result.normalized, None


def fingerprint(email: str, type_id: Any, department_id: Any, price: Decimal, quantity: int, currency: str) -> str:
    """A stable hash of what makes two rows "the same issue" (issue #3).

    Normalised email (case-folded), gift certificate type id, department id,
    amount (to two decimals), quantity and currency. Hex SHA-256.
    """
    return _fingerprint_of(email, _fingerprint_tail(type_id, department_id, price, quantity, currency))


def _fingerprint_tail(type_id: Any, department_id: Any, price: Decimal, quantity: int, currency: str) -> str:
    """The part of :func:`fingerprint`'s hashed text after the email (the same for many rows of a sheet)."""
    return "\x1f".join((
        repr(type_id) if not isinstance(type_id, str) else type_id.lower(),
        repr(department_id) if not isinstance(department_id, str) else department_id.lower(),
        str(price.quantize(_TWO_PLACES)),
        str(quantity),
        currency.upper(),
    ))


def _fingerprint_of(email: str, tail: str) -> str:
    """:func:`fingerprint` from the email and :func:`_fingerprint_tail`."""
    return hashlib.sha256(f"{email.casefold()}\x1f{tail}".encode("utf-8")).hexdigest()


def order_fingerprint(order: Order) -> str:
    """:func:`fingerprint` of a valid order."""
    return fingerprint(order.email, order.type.id, order.department.id, order.price, order.quantity, order.currency)


class CatalogueIndex:
    """Look up gift certificate types or departments by id or by name.

    Ids match by their text (``2`` matches department id ``2``, GUIDs match
    case-insensitively); names match case-insensitively (``casefold``).
    Lookups are dict lookups, so validating 100,000 rows stays linear.
    """

    def __init__(self, items: Iterable[CatalogueItem], what: str) -> None:
        self.what = what
        self.items = list(items)
        self._by_id = {_key(str(item.id)): item for item in self.items}
        self._by_name: dict[str, CatalogueItem] = {}
        # Active items first, so an inactive namesake never hides the active one.
        for item in sorted(self.items, key=lambda i: not i.active):
            self._by_name.setdefault(_key(item.name), item)

    def find(self, text: str) -> tuple[CatalogueItem | None, str | None]:
        """``(item, None)`` when known, else ``(None, message)`` with a suggestion."""
        key = _key(text)
        item = self._by_id.get(key) or self._by_name.get(key)
        if item is not None:
            if not item.active:
                return None, f"the {self.what} '{item.name}' is inactive in Flexybox; choose an active one"
            return item, None
        names = [i.name for i in self.items if i.active]
        close = difflib.get_close_matches(text.strip(), names, n=1, cutoff=0.7)
        if not close:  # case-insensitive second chance
            folded = {n.casefold(): n for n in names}
            hits = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.7)
            close = [folded[h] for h in hits]
        hint = f" Did you mean '{close[0]}'?" if close else f" Known: {', '.join(names)}." if len(names) <= 12 else ""
        return None, f"unknown {self.what} '{text}'.{hint}"


def _key(text: str) -> str:
    """How catalogue names and ids are compared: spaces folded, case folded."""
    return " ".join(text.split()).casefold()


def format_money(value: Decimal) -> str:
    """``Decimal('31500')`` -> ``'31,500.00'`` (two decimals, comma thousands).

    Any finite amount, however large (a typo of 10^30 included): rounded in a
    context with enough digits rather than the default 28, which would raise.
    ``Infinity`` is written as such.
    """
    if not value.is_finite():
        return str(value)
    digits = max(decimal.getcontext().prec, value.adjusted() + 4)
    return f"{value.quantize(_TWO_PLACES, context=decimal.Context(prec=digits)):,}"


_FIELD_LABELS = {
    Field.NAME: "name",
    Field.EMAIL: "email",
    Field.TYPE: "gift certificate type",
    Field.AMOUNT: "amount",
    Field.QUANTITY: "quantity",
    Field.DEPARTMENT: "department",
    Field.CURRENCY: "currency",
    Field.COUNTRY: "country",
    Field.PHONE: "phone number",
    Field.ADDRESS: "address",
    Field.POSTAL_CODE: "postal code",
    Field.CITY: "city",
}
