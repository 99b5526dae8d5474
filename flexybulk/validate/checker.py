"""The row checker: every rule applied to one row (``check``), and the fast way through a big sheet (``check_all``).

``check_all`` judges each distinct cell, and each type/department/amount
combination, once (issue #4); any row with a problem goes through the
unchanged ``check``, so every message comes from one place.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

from .. import emails as _emails
from ..model import Catalogue, CatalogueItem, Field, InputRow, Order, RowProblem, Sheet
from .rules import (NOT_MONEY, amount_currency_conflict, _FIELD_LABELS, DEFAULT_COUNTRY, DEFAULT_CURRENCY, DEFAULT_QUANTITY, MAX_AMOUNT, MAX_LENGTHS, MAX_QUANTITY, _TWO_PLACES,
                    CatalogueIndex, _fingerprint_of, _fingerprint_tail, _known_country, _known_currency, check_email,
                    clean_text, format_money, order_fingerprint)
from .verdicts import RowCheck


# Field keys as plain strings: ``Field.X.value`` is an enum property lookup, and check() needs ~15 per row.
_NAME, _EMAIL, _TYPE, _DEPARTMENT, _AMOUNT, _QUANTITY = (Field.NAME.value, Field.EMAIL.value, Field.TYPE.value,
                                                         Field.DEPARTMENT.value, Field.AMOUNT.value, Field.QUANTITY.value)
_CURRENCY, _COUNTRY, _PHONE, _ADDRESS, _POSTAL_CODE, _CITY = (Field.CURRENCY.value, Field.COUNTRY.value, Field.PHONE.value,
                                                               Field.ADDRESS.value, Field.POSTAL_CODE.value, Field.CITY.value)


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
        if row.problems and row.problems[0].alone:
            # One cause said once: a line read whole into one column is not also "name missing, email missing, ..."
            # (a fresh user's find: five problems for one misplaced separator).
            return RowCheck(row, None, list(row.problems))
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
        elif not any(p.column == header[_DEPARTMENT] for p in problems):  # said already (a merged cell)
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
            said = ("is ISO 4217's code for no currency, a test, a metal or a unit of account, not money to pay in"
                    if currency in NOT_MONEY else "is not an ISO 4217 currency code")
            problems.append(self.problem(row, Field.CURRENCY, f"'{typed}' {said}. Write a currency such as DKK, EUR or SEK.", typed))
        elif price is not None and currency is not DEFAULT_CURRENCY:
            raw_amount = row.original.get(amount_header) if amount_header else None
            word = amount_currency_conflict(raw_amount, currency)
            if word is not None:  # "100 DKK" on a EUR row would be issued as 100 EUR (a fresh user's find)
                where = f"{header[_CURRENCY]} says {currency}" if header[_CURRENCY] else f"the row's currency is {currency}"
                problems.append(self.problem(
                    row, Field.AMOUNT, f"'{raw_amount}' is written in {word}, but {where}. Write the amount without "
                    "the currency, or correct the currency.", raw_amount))

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
        amount_header = self._header[_AMOUNT]
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
                if currency is not DEFAULT_CURRENCY and (
                        not known_currency(currency)
                        or amount_currency_conflict(row.original.get(amount_header) if amount_header else None, currency)):
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
