"""``flexybulk validate`` (the dry run) and ``flexybulk sandbox`` as a user runs them."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys

import openpyxl
import requests

from clirun import flexybulk
from conftest import REPO

SAMPLES = REPO / "samples"

EXPECTED_PROBLEMS = {
    3: ("Navn", "the recipient's name is missing"),
    4: ("E-mail", "'forkert@@example' has more than one @"),
    5: ("Gavekorttype", "Unknown gift certificate type 'Gavekrot'. Did you mean 'Gavekort'?"),
    6: ("Afdeling", "Unknown department 'Roskilde'."),
    7: ("Beløb", "-100 is not a positive amount"),
    8: ("Beløb", "99.999 has more than two decimals"),
    9: ("Antal", "0 is not a positive whole number"),
    10: ("Antal", "'2,5' is not a whole number"),
    11: ("Beløb", "the amount is missing"),
    12: ("Telefon", "'4,51235E+09' was shortened by Excel"),
}


def test_mistakes_sample_names_each_bad_row_and_passes_the_good_ones(tmp_path, sandbox_env):
    src = shutil.copy(SAMPLES / "fejl.xlsx", tmp_path / "fejl.xlsx")
    run = flexybulk("validate", src)
    assert run.code == 1
    assert "Valid rows: 2 of 12 · gift certificates: 3 · total: 1,250.00 DKK" in run.stdout
    lines = [l.strip() for l in run.stderr.splitlines() if l.strip().startswith("fejl.xlsx")]
    assert len(lines) == len(EXPECTED_PROBLEMS)
    for line, (row, (column, text)) in zip(lines, sorted(EXPECTED_PROBLEMS.items())):
        assert line.startswith(f"fejl.xlsx, sheet 'Modtagere', row {row}, column '{column}'"), line
        assert text in line, line
    assert "Nothing was issued." in run.stderr
    assert {m for m, _, _ in sandbox_env.state.requests} == {"GET"}  # read-only: no customer, no order
    assert sandbox_env.state.counts() == {"customers": 0, "orders": 0, "committed_orders": 0, "certificates": 0}

    sheet = openpyxl.load_workbook(tmp_path / "fejl.validation.xlsx")["Validation"]
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert header[-4:] == ("Status", "Error", "Warning", "Row")
    statuses = {r[-1]: r[-4] for r in rows[1:]}
    assert statuses == {n: ("VALID" if n in (2, 13) else "INVALID") for n in range(2, 14)}
    errors = {r[-1]: r[-3] for r in rows[1:]}
    assert errors[5].startswith("Gavekorttype (G): Unknown gift certificate type 'Gavekrot'")


def test_valid_sheet_exits_0_and_says_it_was_a_dry_run(tmp_path, sandbox_env):
    src = shutil.copy(SAMPLES / "firmagaver.csv", tmp_path / "firmagaver.csv")
    run = flexybulk("validate", src, "-o", tmp_path / "tjek.csv")
    assert run.code == 0, run.output
    assert "Read as Windows-1252" in run.stdout
    assert "Valid rows: 4 of 4 · gift certificates: 8 · total: 4,200.40 DKK" in run.stdout
    assert "Nothing was issued (this was a dry run)." in run.stdout
    text = (tmp_path / "tjek.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "Navn;E-mail;Gavekorttype;Beløb;Antal;Afdeling;Land;Status;Error;Warning;Row"
    assert text.splitlines()[2].startswith("Lærke Ødegaard;laerke@example.org;Firmagavekort;1.250,50;1;Webshop;DK;VALID;")


def test_sandbox_command_prints_url_and_token_and_serves_until_ctrl_c(tmp_path):
    proc = subprocess.Popen([sys.executable, str(REPO / "batch_issue.py"), "sandbox", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        first = proc.stdout.readline()
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first).group(1)
        token = re.search(r"Token: (\S+)", proc.stdout.readline()).group(1)
        answer = requests.get(f"{url}/api/v2/departments", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert [d["Name"] for d in answer.json()] == ["Webshop", "København", "Aarhus", "Odense"]
        assert requests.get(f"{url}/api/v2/departments", timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Stopped." in out and "Traceback" not in err


def test_an_unknown_department_option_is_blamed_on_the_option(tmp_path, sandbox_env):
    src = tmp_path / "uden-afdeling.csv"
    src.write_text("Navn;E-mail;Gavekorttype;Beløb\nA;a@example.com;Gavekort;100\n", encoding="utf-8")
    run = flexybulk("validate", src, "--department", "Nope")
    # Said once, for the option (a fresh user's finding: once per row it drowned the real problems), exit 2.
    assert run.code == 2
    assert "Error: --department 'Nope': unknown department 'Nope'. Known: Webshop, København, Aarhus, Odense. Nothing was issued." in run.stderr
    assert flexybulk("validate", src, "--department", "aarhus").code == 0


def test_non_finite_or_odd_option_values_are_usage_errors(tmp_path, sandbox_env):
    for args, text in ((["--timeout", "nan"], "--timeout must be"), (["--timeout", "inf"], "--timeout must be"),
                       (["--rate", "inf"], "--rate must be"), (["--payment-type", ""], "payment type")):
        run = flexybulk("issue", SAMPLES / "kampagne.xlsx", "--yes", *args)
        assert run.code == 2, (args, run.output)
        assert text in run.output and "Traceback" not in run.output and "unexpected" not in run.output
    assert sandbox_env.state.counts()["customers"] == 0


def test_absurd_amounts_are_row_problems_not_tracebacks(tmp_path, sandbox_env):
    """Amounts beyond the decimal context's 28 digits, and NaN/infinity, are named row by row (no traceback)."""
    path = tmp_path / "absurd.csv"
    path.write_text("Navn;E-mail;Gavekorttype;Afdeling;Beløb\n"
                    "A;a@example.com;Gavekort;Webshop;1000000000000000000000000000000\n"
                    "B;b@example.com;Gavekort;Webshop;1e400\n"
                    "C;c@example.com;Gavekort;Webshop;NaN\n"
                    "D;d@example.com;Gavekort;Webshop;250\n", encoding="utf-8")
    run = flexybulk("validate", path)
    out = run.stdout + run.stderr
    assert run.code == 1 and "Traceback" not in out
    assert "row 2, column 'Beløb' (E): 1.000E+30 is more than the 100,000.00 allowed per gift certificate" in out
    assert "row 3, column 'Beløb' (E): '1e400' is not an amount" in out
    assert "row 4, column 'Beløb' (E)" in out
    assert "row 5" not in out


def test_ctrl_c_during_a_dry_run_exits_130_and_writes_nothing(tmp_path, sandbox_env, monkeypatch):
    """Click turns a KeyboardInterrupt into Abort; the exit code must still say "interrupted" (README: 130)."""
    src = tmp_path / "liste.csv"
    src.write_text("Navn;E-mail;Gavekorttype;Afdeling;Beløb\nA;a@example.com;Gavekort;Webshop;250\n", encoding="utf-8")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    from flexybulk import validate as validate_module

    real = validate_module.validate
    monkeypatch.setattr(validate_module, "validate", interrupted)  # the CLI imports it when it validates
    run = flexybulk("validate", src)
    assert run.code == 130 and "Interrupted" in run.stderr and "Traceback" not in run.output
    assert not (tmp_path / "liste.validation.xlsx").exists()
    monkeypatch.setattr(validate_module, "validate", real)
    # A declined confirmation is still exit 1, "Aborted".
    declined = flexybulk("issue", src, input="n\n")
    assert declined.code == 1 and "Aborted" in declined.stderr
