"""The real-world corpus: one parametrized test over every ``tests/corpus/*.expected.json``.

Each case names its input -- a committed file beside it, or a small spec that
:func:`build` turns into a file at test time -- and the expected outcome: the
sheet's shape, every row's parsed fields and problems (exact messages), or the
exact refusal. Workbook cases run through calamine and again through the
fallback engine (openpyxl for XLSX, xlrd for XLS), which must agree (pitfalls
P20). Adding a case is adding a file: see tests/corpus/README.md.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import re
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.styles import Font

import flexybulk.reading.engines as engines_module
from flexybulk.errors import InputFileError
from flexybulk.reading import ReadOptions, read_sheet

CORPUS = Path(__file__).resolve().parent / "corpus"
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls")


def load_cases() -> list[tuple[str, dict, str]]:
    params = []
    for path in sorted(CORPUS.glob("*.expected.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        name = path.name.removesuffix(".expected.json")
        case["_name"] = name
        workbook = case.get("build", {}).get("kind") == "xlsx" or str(case.get("input", "")).endswith(WORKBOOK_SUFFIXES)
        for engine in case.get("engines", ["calamine", "fallback"] if workbook else ["default"]):
            params.append(pytest.param(name, case, engine, id=f"{name}[{engine}]"))
    return params


CASES = load_cases()


def test_the_corpus_covers_every_pitfall_and_has_at_least_25_cases():
    cases = {p.values[0]: p.values[1] for p in CASES}
    assert len(cases) >= 25
    covered = {pid for case in cases.values() for pid in case.get("pitfalls", [])}
    wanted = {f"P{i}" for i in range(1, 21)}
    assert wanted <= covered, f"no case for {sorted(wanted - covered, key=lambda p: int(p[1:]))}"


@pytest.mark.parametrize("name, case, engine", CASES)
def test_corpus_case(name: str, case: dict, engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if engine == "fallback":
        monkeypatch.setattr(engines_module, "_CALAMINE_ENABLED", False)
    path = materialise(case, tmp_path)
    opts = ReadOptions(**case.get("options", {}))

    if "error" in case:
        with pytest.raises(InputFileError) as err:
            read_sheet(path, opts)
        assert str(err.value) == case["error"]
        return

    sheet = read_sheet(path, opts)
    for attribute, expected in case.get("sheet", {}).items():
        assert jsonable(getattr(sheet, attribute)) == expected, attribute
    if "rows" in case:
        # With "totals" the listed rows are the first few; otherwise they are all the rows.
        if "totals" not in case:
            assert [r.number for r in sheet.rows] == [want["number"] for want in case["rows"]]
        for row, want in zip(sheet.rows, case["rows"]):
            assert row_json(row, with_original="original" in want, with_excluded="excluded" in want) == want, f"row {want['number']}"
    if "totals" in case:
        certificates = sum(r.fields.get("quantity", 1) for r in sheet.rows)
        money = sum((r.fields["amount"] * r.fields.get("quantity", 1) for r in sheet.rows), Decimal(0))
        expected = case["totals"]
        assert (len(sheet.rows), certificates, money) == (expected["rows"], expected["certificates"],
                                                          Decimal(expected["amount"]))
        assert not [p for r in sheet.rows for p in r.problems]


# --- comparing -------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Values as the .expected.json files write them; Decimal keeps its exact digits."""
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"time": value.isoformat()}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        raise AssertionError(f"a float leaked out of the reader: {value!r}")
    return value


def row_json(row, with_original: bool, with_excluded: bool = False) -> dict:
    out = {
        "number": row.number,
        "fields": jsonable(row.fields),
        "problems": [
            {"row": p.row, "column": p.column, "column_letter": p.column_letter, "message": p.message}
            for p in row.problems
        ],
    }
    if with_original:
        out["original"] = jsonable(row.original)
    if with_excluded:
        out["excluded"] = row.excluded
    return out


# --- building inputs ------------------------------------------------------------------------


_BUILT: dict[str, bytes] = {}  # each spec is built once per session, whatever the engines


def materialise(case: dict, tmp_path: Path) -> Path:
    """The case's input file: a committed one, or one built from its spec."""
    if "input" in case:
        path = CORPUS / case["input"]
        assert path.exists(), f"{case['_name']}: missing input {path.name}"
        return path
    spec = case["build"]
    path = tmp_path / spec.get("filename", case["_name"] + spec.get("ext", ".xlsx"))
    if case["_name"] not in _BUILT:
        _BUILT[case["_name"]] = build(spec)
    path.write_bytes(_BUILT[case["_name"]])
    return path


def build(spec: dict) -> bytes:
    """Bytes of a generated input. Kinds: ``xlsx`` (openpyxl + optional zip patches), ``zip``, ``bytes``."""
    kind = spec["kind"]
    if kind == "xlsx":
        data = _xlsx(spec)
        if spec.get("patch") or spec.get("add") or spec.get("drop") or spec.get("truncate"):
            data = _patch_zip(data, spec)
        return data
    if kind == "zip":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for name, body in spec["members"].items():
                if isinstance(body, dict) and "zeros" in body:
                    with z.open(name, "w", force_zip64=True) as member:
                        for _ in range(body["zeros"] // (1 << 20)):
                            member.write(bytes(1 << 20))
                else:
                    z.writestr(name, body)
        return out.getvalue()
    if kind == "bytes":
        data = bytes.fromhex(spec["hex"]) if "hex" in spec else spec["text"].encode(spec.get("encoding", "utf-8"))
        if "random" in spec:
            data += random.Random(spec["random"]["seed"]).randbytes(spec["random"]["size"])
        return data
    raise ValueError(f"unknown build kind {kind!r}")


def _cell_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "date" in value:
            return dt.date.fromisoformat(value["date"])
        if "datetime" in value:
            return dt.datetime.fromisoformat(value["datetime"])
    return value


def _xlsx(spec: dict) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for sheet_spec in spec["sheets"]:
        ws = wb.create_sheet(sheet_spec.get("title", "Ark1"))
        for r, row in enumerate(sheet_spec.get("rows", []), start=sheet_spec.get("first_row", 1)):
            for c, value in enumerate(row, start=sheet_spec.get("first_col", 1)):
                if value is not None:
                    ws.cell(r, c, _cell_value(value))
        for ref, value in sheet_spec.get("cells", {}).items():
            ws[ref] = _cell_value(value)
        for ref, fmt in sheet_spec.get("number_formats", {}).items():
            ws[ref].number_format = fmt
        for ref in sheet_spec.get("merged", []):
            ws.merge_cells(ref)
        for r in sheet_spec.get("hidden_rows", []):
            ws.row_dimensions[r].hidden = True
        for r in range(sheet_spec.get("bold_rows_from", 0), sheet_spec.get("bold_rows_to", -1) + 1):
            ws.cell(r, 1).font = Font(bold=True)  # formatting without values (pitfalls P10)
        ws.sheet_state = sheet_spec.get("state", "visible")
    for i, sheet_spec in enumerate(spec["sheets"]):
        if sheet_spec.get("active"):
            wb.active = i
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _patch_zip(data: bytes, spec: dict) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename in spec.get("drop", []):
                continue
            body = src.read(info.filename)
            for patch in spec.get("patch", []):
                if patch["member"] == info.filename:
                    text, count = re.subn(patch["regex"], patch["replace"], body.decode("utf-8"))
                    assert count, f"patch {patch['regex']!r} matched nothing in {info.filename}"
                    body = text.encode("utf-8")
            dst.writestr(info.filename, body)
        for name, body in spec.get("add", {}).items():
            dst.writestr(name, body)
    data = out.getvalue()
    return data[: spec["truncate"]] if spec.get("truncate") else data
