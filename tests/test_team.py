"""Exactly once for a team (issue #11): several ledgers, lost ledgers, URL spellings, old result sheets.

Every test asserts what the sandbox on 127.0.0.1 really holds.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from clirun import flexybulk
from conftest import REPO
from flexybulk.issue import derived_id
from test_cli_issue import result_rows

SAMPLES = REPO / "samples"
ROWS, CERTIFICATES, TOTAL = 6, 18, Decimal("10399.85")


def _laptop(tmp_path: Path, name: str, monkeypatch=None) -> tuple[Path, Path]:
    """A colleague's laptop: their own copy of the file and their own (new) ledger."""
    home = tmp_path / name
    home.mkdir()
    return Path(shutil.copy(SAMPLES / "kampagne.xlsx", home / "kampagne.xlsx")), home / "ledger.sqlite3"


def _money(sandbox) -> Decimal:
    return sum((c["Amount"] for c in sandbox.state.certificates), Decimal(0))


def test_derived_ids_depend_on_target_file_row_and_salt():
    base = derived_id("sales-order", "https://pos.flexybox.com", "ab" * 32, "2")
    assert base == derived_id("sales-order", "https://pos.flexybox.com", "ab" * 32, "2")
    others = {derived_id("sales-order", "https://pos.flexybox.com", "ab" * 32, "3"),
              derived_id("sales-order", "https://other.example", "ab" * 32, "2"),
              derived_id("sales-order", "https://pos.flexybox.com", "cd" * 32, "2"),
              derived_id("external-payment", "https://pos.flexybox.com", "ab" * 32, "2"),
              derived_id("sales-order", "https://pos.flexybox.com", "ab" * 32, "2", salt="reissue")}
    assert base not in others and len(others) == 5
    assert base[14] == "5"  # RFC 9562 version 5


def test_two_ledgers_same_file_same_flexybox_issue_once(tmp_path, sandbox_env, monkeypatch):
    anna_file, anna_ledger = _laptop(tmp_path, "anna")
    bo_file, bo_ledger = _laptop(tmp_path, "bo")
    monkeypatch.setenv("FLEXYBULK_LEDGER", str(anna_ledger))
    first = flexybulk("issue", anna_file, "--yes", "--new-ledger")
    assert first.code == 0, first.output
    assert sandbox_env.state.counts()["certificates"] == CERTIFICATES

    monkeypatch.setenv("FLEXYBULK_LEDGER", str(bo_ledger))
    second = flexybulk("issue", bo_file, "--yes", "--new-ledger")
    assert second.code == 0, second.output
    counts = sandbox_env.state.counts()
    assert (counts["committed_orders"], counts["certificates"]) == (ROWS, CERTIFICATES)  # not twice
    assert _money(sandbox_env) == TOTAL
    assert "Issued now: nothing." in second.stdout
    assert f"Already issued in Flexybox by another ledger or laptop (same file, same ids): {ROWS} rows" in second.stdout
    anna = result_rows(anna_file.with_name("kampagne.result.xlsx"))
    bo = result_rows(bo_file.with_name("kampagne.result.xlsx"))
    ids = ("CustomerId", "SalesOrderId", "ExternalPaymentId", "GiftCertificateNumbers")
    assert [tuple(r[k] for k in ids) for r in bo] == [tuple(r[k] for k in ids) for r in anna]
    assert [r["Status"] for r in bo] == ["ISSUED"] * ROWS
    assert all("another ledger or laptop issued this file" in r["Error"] for r in bo)
