"""Validation: rows + the live catalogue -> orders and row problems (the dry run).

Pure functions: no I/O, no HTTP. Every problem of every row is collected
(csvkit's ``RowChecker`` style), never raised, so one pass tells the user
everything to fix.

Rules and their sources:
- name and email required, email syntax by email-validator without DNS
  (RFC 5321/5322 as that library implements them), normalised as it does; a
  sheet's addresses go through ``flexybulk.emails`` (the same verdicts, the
  domain check once per distinct domain, worker processes for big sheets);
- gift certificate type and department known by id or by name, names
  compared case-insensitively; an unknown name gets a "did you mean"
  suggestion (issue #2);
- amount positive with at most two decimals, quantity a positive whole number
  (issue #2); upper bounds so that a typo cannot issue a fortune (issue #6);
- currency a three-letter code (ISO 4217 shape), country a two-letter ISO
  3166-1 code (pycountry's copy of ISO 4217 and ISO 3166; ``NA`` is Namibia, pitfalls P8);
- a sheet without a column for a required field is refused as a whole, naming
  the headers it has, rather than reporting the same gap on every row;
- text sent to the API has control characters removed and bounded lengths (issue #6);
- the same email or the same order twice in one file is a warning naming both
  rows, not an error: one person may rightly get two cards (issue #3).
"""

from __future__ import annotations

import decimal
import difflib
import gc
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Callable, Iterable

from email_validator import EmailNotValidError, validate_email

from . import emails as _emails
from .model import Catalogue, CatalogueItem, Field, InputRow, Order, RowProblem, Sheet

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
    """An active ISO 4217 alphabetic code (pycountry's copy of the standard)."""
    import pycountry

    return bool(_CURRENCY_RE.match(code)) and pycountry.currencies.get(alpha_3=code) is not None


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


@dataclass
class RowCheck:
    """The verdict on one row.

    Attributes:
        row: the input row.
        order: the order to issue, or ``None`` when the row has problems.
        problems: what makes the row invalid (empty when valid).
        warnings: worth a look but not blocking (a repeat within the file).
        fingerprint: :func:`order_fingerprint` of the order (empty when invalid).
    """

    row: InputRow
    order: Order | None
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def valid(self) -> bool:
        return self.order is not None

    @property
    def excluded(self) -> str | None:
        """Why the person left the row out (hidden, filtered out), or ``None``: such a row is neither valid nor invalid."""
        return self.row.excluded


@dataclass
class Totals:
    """Certificates and money, per currency (``Decimal``, in that currency's units)."""

    rows: int = 0
    certificates: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)

    def add(self, order: Order) -> None:
        """Count one order."""
        self.add_line(order.currency, order.price, order.quantity)

    def add_line(self, currency: str, price: Decimal, quantity: int) -> None:
        """Count one row of ``quantity`` certificates at ``price`` each."""
        self.rows += 1
        self.certificates += quantity
        self.amounts[currency] = self.amounts.get(currency, Decimal(0)) + price * quantity

    def money(self) -> str:
        """``"31,500.00 DKK"`` (several currencies joined with ``" + "``)."""
        if not self.amounts:
            return "0.00"
        return " + ".join(f"{format_money(v)} {c}" for c, v in sorted(self.amounts.items()))


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


@dataclass
class Validation:
    """Every row's verdict plus the batch summary."""

    sheet: Sheet
    checks: list[RowCheck]

    @property
    def valid(self) -> list[RowCheck]:
        return [c for c in self.checks if c.valid]

    @property
    def invalid(self) -> list[RowCheck]:
        return [c for c in self.checks if not c.valid and c.row.excluded is None]

    @property
    def excluded(self) -> list[RowCheck]:
        """The rows the person left out (``InputRow.excluded``): never sent, never blocking."""
        return [c for c in self.checks if c.row.excluded is not None]

    def totals(self) -> Totals:
        """Totals over the valid rows."""
        t = Totals()
        for c in self.checks:
            if c.order is not None:
                t.add(c.order)
        return t

    def by(self, key: Callable[[Order], str]) -> dict[str, Totals]:
        """Totals of the valid rows grouped by ``key`` (e.g. type name), in first-seen order."""
        groups: dict[str, Totals] = {}
        for c in self.checks:
            if c.order is not None:
                groups.setdefault(key(c.order), Totals()).add(c.order)
        return groups

    def messages(self) -> list[str]:
        """Every problem, one full line each (file, sheet, row, column, what to do)."""
        return [self.sheet.describe(p) for c in self.checks for p in c.problems]

    def warning_messages(self) -> list[str]:
        """Every warning, one full line each."""
        return [self.sheet.describe(p) for c in self.checks for p in c.warnings]


class _RowChecker:
    def __init__(self, sheet: Sheet, catalogue: Catalogue, default_department: str | None,
                 emails: _emails.EmailVerdicts | None = None) -> None:
        self.sheet = sheet
        self.email_verdict = emails.get if emails is not None else check_email
        self.known_emails: dict = emails.results if emails is not None else {}  # verdicts already known, by address
        self.types = CatalogueIndex(catalogue.types, "gift certificate type")
        self.departments = CatalogueIndex(catalogue.departments, "department")
        self.default_department = default_department
        self.default_department_item: CatalogueItem | None = None
        self.default_department_error: str | None = None
        if default_department is not None:
            self.default_department_item, self.default_department_error = self.departments.find(default_department)
        # Per-row work kept small for 100,000-row sheets (issue #4): headers looked up once, and the
        # few distinct type, department, currency and country cells checked once each.
        self._header = {fld.value: sheet.column_map.get(fld.value) for fld in Field}
        self._type_cache: dict[str, tuple[CatalogueItem | None, str | None]] = {}
        self._department_cache: dict[str, tuple[CatalogueItem | None, str | None]] = {}
        self._code_cache: dict[tuple, str] = {}
        # Without a currency or country column every row has the default, checked once here.
        self._fixed_currency = DEFAULT_CURRENCY if self._header[_CURRENCY] is None else None
        self._fixed_country = DEFAULT_COUNTRY if self._header[_COUNTRY] is None else None

    def _find(self, index: CatalogueIndex, cache: dict, text: str) -> tuple[CatalogueItem | None, str | None]:
        found = cache.get(text)
        if found is None:
            found = cache[text] = index.find(text)
        return found

    def _code(self, fld: str, raw: Any, default: str) -> str:
        """A currency or country cell, cleaned and upper-cased (cached per distinct cell)."""
        key = (fld, type(raw), raw)  # the type too: 1 and 1.0 are equal keys but clean to different text
        try:
            return self._code_cache[key]
        except (KeyError, TypeError):  # TypeError: an unhashable cell value, never cached
            code = clean_text(raw or default).upper()
            try:
                self._code_cache[key] = code
            except TypeError:
                pass
            return code

    def problem(self, row: InputRow, fld: Field | None, message: str, value: Any = None) -> RowProblem:
        header = self.sheet.column_map.get(fld.value) if fld is not None else None
        letter = self.sheet.column_letters.get(header) if header is not None else None
        if fld is not None and header is None:
            # The field has no column (a default or a missing column): name the field instead.
            header = _FIELD_LABELS.get(fld, fld.value)
        return RowProblem(row.number, header, message, None if value is None else str(value), letter)

    def text(self, row: InputRow, fld: Field, problems: list[RowProblem], raw: Any = None) -> str | None:
        if raw is None:
            raw = row.fields.get(fld.value)
            if raw is None:
                return None
        text = clean_text(raw)
        limit = MAX_LENGTHS.get(fld)
        if limit is not None and len(text) > limit:
            problems.append(self.problem(row, fld, f"the {_FIELD_LABELS.get(fld, fld.value)} is {len(text):,} characters long; at most {limit} are allowed. Shorten it.", text[:40] + "…"))
            return None
        return text or None

    def check(self, row: InputRow, cleaned_email: str | None = None) -> RowCheck:
        if row.excluded is not None:
            return RowCheck(row, None)  # left out by the person: not judged (issue #12)
        problems = list(row.problems)
        get = row.fields.get
        header = self._header

        name = self.text(row, Field.NAME, problems)
        if name is None and not any(p.column == header[_NAME] for p in problems):
            problems.append(self.problem(row, Field.NAME, "the recipient's name is missing. Fill it in."))

        email = None
        raw_email = get(_EMAIL)
        if cleaned_email is not None:
            cleaned = cleaned_email
        else:
            cleaned = clean_text(raw_email) if raw_email is not None else ""
        if not cleaned:
            if not any(p.column == header[_EMAIL] for p in problems):
                problems.append(self.problem(row, Field.EMAIL, "the email address is missing. Fill it in."))
        else:
            email, why = self.email_verdict(cleaned)
            if email is None:
                problems.append(self.problem(row, Field.EMAIL, f"'{raw_email}' is not a valid email address: {why} Correct it.", raw_email))

        gtype = None
        raw_type = get(_TYPE)
        cleaned = clean_text(raw_type) if raw_type is not None else ""
        if not cleaned:
            problems.append(self.problem(row, Field.TYPE, "the gift certificate type is missing. Write a type's name or id."))
        else:
            gtype, why = self._find(self.types, self._type_cache, cleaned)
            if gtype is None:
                problems.append(self.problem(row, Field.TYPE, why[0].upper() + why[1:], raw_type))

        department = None
        raw_dep = get(_DEPARTMENT)
        cleaned = clean_text(raw_dep) if raw_dep is not None else ""
        if cleaned:
            department, why = self._find(self.departments, self._department_cache, cleaned)
            if department is None:
                problems.append(self.problem(row, Field.DEPARTMENT, why[0].upper() + why[1:], raw_dep))
        elif self.default_department is not None:
            department = self.default_department_item
            if department is None:
                why = self.default_department_error or "unknown department"
                problems.append(RowProblem(row.number, "--department", why[0].upper() + why[1:], self.default_department))
        else:
            problems.append(self.problem(row, Field.DEPARTMENT, "the department is missing. Fill in the department's name or id, or give one for all rows with --department."))

        price = get(_AMOUNT)
        amount_header = header[_AMOUNT]
        if price is None:
            if not any(p.column == amount_header and amount_header for p in problems):
                problems.append(self.problem(row, Field.AMOUNT, "the amount is missing. Write the value of one gift certificate, e.g. 500 or 499,95."))
        elif not isinstance(price, Decimal) or price.is_nan():
            problems.append(self.problem(row, Field.AMOUNT, "is not a number.", price))
            price = None
        elif price <= 0:
            problems.append(self.problem(row, Field.AMOUNT, f"{price} is not a positive amount. Write the value of one gift certificate.", price))
            price = None
        elif price.is_finite() and price.adjusted() < 20 and price != price.quantize(_TWO_PLACES):
            # (10^20 and more is far above the limit below, and beyond what the 28-digit context can round.)
            problems.append(self.problem(row, Field.AMOUNT, f"{price} has more than two decimals. Round it to øre/cents.", price))
            price = None
        elif price > MAX_AMOUNT:
            shown = format_money(price) if price.adjusted() < 18 else f"{price:.3E}"  # 1.500E+400, not 400 digits
            problems.append(self.problem(row, Field.AMOUNT, f"{shown} is more than the {format_money(MAX_AMOUNT)} allowed per gift certificate. Check the amount.", price))
            price = None

        quantity = get(_QUANTITY, DEFAULT_QUANTITY)
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            problems.append(self.problem(row, Field.QUANTITY, "is not a whole number.", quantity))
            quantity = None
        elif quantity < 1:
            problems.append(self.problem(row, Field.QUANTITY, f"{quantity} is not a positive whole number. Write 1 or more.", quantity))
            quantity = None
        elif quantity > MAX_QUANTITY:
            problems.append(self.problem(row, Field.QUANTITY, f"{quantity:,} is more than the {MAX_QUANTITY:,} allowed in one row. Split it over several rows.", quantity))
            quantity = None

        currency = self._fixed_currency or self._code(_CURRENCY, get(_CURRENCY), DEFAULT_CURRENCY)
        if currency is not DEFAULT_CURRENCY and not _known_currency(currency):
            typed = clean_text(get(_CURRENCY))
            problems.append(self.problem(row, Field.CURRENCY, f"'{typed}' is not an ISO 4217 currency code such as DKK, EUR or SEK.", typed))

        country = self._fixed_country or self._code(_COUNTRY, get(_COUNTRY), DEFAULT_COUNTRY)
        if country is not DEFAULT_COUNTRY and not _known_country(country):
            typed = clean_text(get(_COUNTRY))
            problems.append(self.problem(row, Field.COUNTRY, f"'{typed}' is not a two-letter ISO 3166 country code such as DK, SE or NO.", typed))

        raw = get(_PHONE)
        phone = None if raw is None else self.text(row, Field.PHONE, problems, raw)
        raw = get(_ADDRESS)
        address = None if raw is None else self.text(row, Field.ADDRESS, problems, raw)
        raw = get(_POSTAL_CODE)
        postal = None if raw is None else self.text(row, Field.POSTAL_CODE, problems, raw)
        raw = get(_CITY)
        city = None if raw is None else self.text(row, Field.CITY, problems, raw)

        if problems:
            return RowCheck(row, None, problems)
        order = Order(
            row=row.number, name=name, email=email, type=gtype, department=department,
            price=price, quantity=quantity, currency=currency, country=country,
            phone=phone, address=address, postal_code=postal, city=city,
        )
        return RowCheck(row, order, [], fingerprint=order_fingerprint(order))

    def check_all(self, rows: list[InputRow], cleaned_emails: list[str],
                  progress: Callable[[int], None] | None = None) -> list[RowCheck]:
        """:meth:`check` of every row, in order (``cleaned_emails[i]`` is row ``i``'s cleaned address).

        ``progress`` is called with the number of rows checked after every 1,000th row.

        A row that passes every check the cheap way (each field's distinct cell judged once, below)
        becomes its order here; any other row, and any row a cheap check is unsure of, goes through
        :meth:`check` itself, so every problem and message is :meth:`check`'s own (issue #4).
        """
        check, verdict, known_email, fingerprint_of = self.check, self.email_verdict, self.known_emails.get, _fingerprint_of
        name_cache, combos = {}, {}
        # The optional text fields: (field key, cache of verdicts by cell, length limit).
        optional_texts = tuple((key, {}, MAX_LENGTHS[fld]) for key, fld in (
            (_PHONE, Field.PHONE), (_ADDRESS, Field.ADDRESS), (_POSTAL_CODE, Field.POSTAL_CODE), (_CITY, Field.CITY)))
        text_verdict, combo_verdict, make_order = self._text_verdict, self._combo_verdict, Order
        fixed_currency, fixed_country = self._fixed_currency, self._fixed_country
        code, known_currency, known_country = self._code, _known_currency, _known_country
        miss, bad, decimal = _MISS, _BAD, Decimal
        name_limit = MAX_LENGTHS[Field.NAME]
        checks: list[RowCheck] = []
        append = checks.append
        for i, row in enumerate(rows):
            email = cleaned_emails[i]
            get = row.fields.get
            try:
                if row.problems or not email or row.excluded is not None:
                    raise _Slow
                raw = get(_NAME)
                name = name_cache.get(raw, miss)
                if name is miss:
                    name = text_verdict(name_cache, raw, name_limit)
                if name is None or name is bad:
                    raise _Slow
                email = (known_email(email) or verdict(email))[0]
                if email is None:
                    raise _Slow
                currency = fixed_currency or code(_CURRENCY, get(_CURRENCY), DEFAULT_CURRENCY)
                if currency is not DEFAULT_CURRENCY and not known_currency(currency):
                    raise _Slow
                country = fixed_country or code(_COUNTRY, get(_COUNTRY), DEFAULT_COUNTRY)
                if country is not DEFAULT_COUNTRY and not known_country(country):
                    raise _Slow
                # Type, department, amount and quantity in one lookup per distinct combination.
                price = get(_AMOUNT)
                quantity = get(_QUANTITY, DEFAULT_QUANTITY)
                if price.__class__ is not decimal or quantity.__class__ is not int or not price.is_finite():
                    raise _Slow
                key = (get(_TYPE), get(_DEPARTMENT), price, quantity, currency)
                combo = combos.get(key)
                if combo is None:
                    combo = combo_verdict(combos, key)
                if combo is bad:
                    raise _Slow
                gtype, department, tail = combo
                texts = [cache[raw] if (raw := get(key)) in cache else text_verdict(cache, raw, limit)
                         for key, cache, limit in optional_texts]
                if bad in texts:
                    raise _Slow
                phone, address, postal, city = texts
            except (_Slow, ArithmeticError, TypeError):  # ArithmeticError, TypeError: e.g. a NaN amount; check() decides
                append(check(row, cleaned_emails[i]))
            else:
                append(RowCheck(row, make_order(row.number, name, email, gtype, department, price, quantity, currency,
                                                country, phone, address, postal, city), [],
                                fingerprint=fingerprint_of(email, tail)))
            if progress is not None and (i + 1) % 1000 == 0:
                progress(i + 1)
        return checks

    # The cheap checks of check_all. Each returns what check() would make of cells that pass, or _BAD
    # for anything else (check() then finds the problem). Results are cached per cell value only for
    # str cells (never 1, 1.0 and True alike), and each cache belongs to one field of one sheet.

    def _text_verdict(self, cache: dict, raw: Any, limit: int) -> Any:
        """:meth:`text` of a text cell: its cleaned text, ``None`` (empty), or ``_BAD`` (too long)."""
        if raw is None:
            found = None
        else:
            text = clean_text(raw)
            found = _BAD if len(text) > limit else text or None
        if raw is None or raw.__class__ is str:
            cache[raw] = found
        return found

    def _combo_verdict(self, cache: dict, key: tuple) -> Any:
        """``(type, department, fingerprint tail)`` for valid type, department, amount, quantity and currency, else ``_BAD``.

        ``key`` is ``(type cell, department cell, amount, quantity, currency)``, the amount a
        ``Decimal`` and the quantity an ``int`` (the caller checks their classes). Cached when both cells
        are text (or the department cell empty): the amount and quantity tests compare values only, and
        equal amounts make the same fingerprint tail.
        """
        raw_type, raw_dep, price, quantity, currency = key
        found: Any = _BAD
        if 0 < price <= MAX_AMOUNT and price == price.quantize(_TWO_PLACES) and 0 < quantity <= MAX_QUANTITY:
            cleaned = clean_text(raw_type) if raw_type is not None else ""
            gtype = self._find(self.types, self._type_cache, cleaned)[0] if cleaned else None
            cleaned = clean_text(raw_dep) if raw_dep is not None else ""
            if cleaned:
                department = self._find(self.departments, self._department_cache, cleaned)[0]
            else:
                department = self.default_department_item if self.default_department is not None else None
            if gtype is not None and department is not None:
                tail = _fingerprint_tail(gtype.id, department.id, price, quantity, currency)
                found = (gtype, department, tail)
        if raw_type.__class__ is str and (raw_dep is None or raw_dep.__class__ is str):
            cache[key] = found
        return found


class _Slow(Exception):
    """check_all: this row needs check() itself."""


_MISS = object()  # not in a cache yet
_BAD = object()  # a cell check_all leaves to check()


# Field keys as plain strings: ``Field.X.value`` is an enum property lookup, and check() needs ~15 per row.
_NAME, _EMAIL, _TYPE, _DEPARTMENT, _AMOUNT, _QUANTITY = (Field.NAME.value, Field.EMAIL.value, Field.TYPE.value,
                                                         Field.DEPARTMENT.value, Field.AMOUNT.value, Field.QUANTITY.value)
_CURRENCY, _COUNTRY, _PHONE, _ADDRESS, _POSTAL_CODE, _CITY = (Field.CURRENCY.value, Field.COUNTRY.value, Field.PHONE.value,
                                                               Field.ADDRESS.value, Field.POSTAL_CODE.value, Field.CITY.value)

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


def check_columns(sheet: Sheet, default_department: str | None = None) -> None:
    """Refuse a sheet that has no column for a required field (name, email, type, amount, department).

    Raises:
        InputFileError: naming the missing fields and the headers found, and how to map one.
    """
    have = set(sheet.column_map)
    missing = []
    if not have & {Field.NAME.value, Field.FIRST_NAME.value, Field.LAST_NAME.value}:
        missing.append("the recipient's name (Navn/Name)")
    for fld, example in ((Field.EMAIL, "E-mail"), (Field.TYPE, "Gavekorttype/Type"), (Field.AMOUNT, "Beløb/Amount")):
        if fld.value not in have:
            missing.append(f"the {_FIELD_LABELS[fld]} ({example})")
    if Field.DEPARTMENT.value not in have and default_department is None:
        missing.append("the department (Afdeling/Department, or --department for all rows)")
    if missing:
        from .errors import InputFileError

        found = ", ".join(f"'{h}'" for h in sheet.headers) or "nothing"
        raise InputFileError(
            f"{sheet.where()}: no column for {'; '.join(missing)}. The header on row {sheet.header_row} has {found}. "
            "Name the columns as shown, or map one with --column, e.g. --column amount=\"Værdi i kr\"."
            + (f" {sheet.decode_doubt}" if sheet.decode_doubt else "")
        )


def validate(sheet: Sheet, catalogue: Catalogue, *, default_department: str | None = None,
             progress: Callable[[int], None] | None = None) -> Validation:
    """Check every row of ``sheet`` against ``catalogue``.

    Args:
        sheet: what ``sheet.read_sheet`` returned.
        catalogue: the live gift certificate types and departments.
        default_department: ``--department``: name or id used for rows whose
            department cell is empty or whose sheet has no department column.
        progress: called with the number of rows checked so far, every 1,000 rows and at the end.

    Returns:
        A :class:`Validation` with one :class:`RowCheck` per row, in input
        order. Repeats within the file are added as warnings naming both rows.

    Raises:
        InputFileError: a required field has no column at all (:func:`check_columns`).
    """
    check_columns(sheet, default_department)
    rows = sheet.rows
    # Every row's cleaned address first, so that email-validator can work through the distinct ones
    # in worker processes while this one checks the rows (flexybulk.emails, issue #4).
    cleaned_emails = [clean_text(raw) if raw is not None else "" for raw in (row.fields.get(_EMAIL) for row in rows)]
    # The checks and orders made here form no reference cycles, but creating hundreds of thousands of
    # objects makes the cyclic GC rescan the whole sheet again and again (over a third of the time spent
    # outside email-validator on a 100,000-row sheet, issue #4); it is off for the loop, as read_sheet does.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with _emails.EmailVerdicts(filter(None, cleaned_emails), parallel_min=_emails.PARALLEL_MIN,
                                    chunk=_emails.CHUNK) as verdicts:
            checker = _RowChecker(sheet, catalogue, default_department, verdicts)
            checks = checker.check_all(rows, cleaned_emails, progress)
        if progress is not None:
            progress(len(checks))
        _warn_repeats(checker, checks)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Validation(sheet, checks)


def _warn_repeats(checker: _RowChecker, checks: list[RowCheck]) -> None:
    """Warn on each valid row whose order (fingerprint) or else email came in an earlier row, naming that row."""
    first_by_email: dict[str, int] = {}
    first_by_print: dict[str, int] = {}
    for c in checks:
        order = c.order
        if order is None:
            continue
        other = first_by_print.get(c.fingerprint)
        if other is not None:
            c.warnings.append(checker.problem(c.row, Field.EMAIL, f"the same gift certificate as row {other} (same email, type, department, amount and quantity). Both rows are kept; delete one if that is a mistake.", order.email))
            continue  # its email is known already: the row it repeats has the same (the fingerprint hashes it)
        number = c.row.number
        first_by_print[c.fingerprint] = number
        email = order.email.casefold()
        other = first_by_email.get(email)
        if other is None:
            first_by_email[email] = number
        else:
            c.warnings.append(checker.problem(c.row, Field.EMAIL, f"{order.email} also appears in row {other}; both rows are kept and share one customer.", order.email))
