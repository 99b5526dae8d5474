"""flexybulk.emails: the memoised and parallel paths give email-validator's own verdicts, message for message."""

from __future__ import annotations

import time

import email_validator
import pytest

from builders import make_sheet, person
from flexybulk import emails
from flexybulk.model import Catalogue, CatalogueItem
from flexybulk.sandbox import default_catalogue
from flexybulk.validate import validate

TRICKY = [
    "anna@example.com", "Anna@Example.COM", "ANNA@EXAMPLE.COM.", "anna@example.com.", "anna.@example.com",
    ".anna@example.com", "an..na@example.com", "anna@@example.com", "anna@", "@example.com", "anna",
    "anna@localhost", "anna@example", "anna@sub.example.invalid", "anna@x.test", "anna@host.local", "anna@x.onion",
    "anna@123.123.123.123", "anna@[123.123.123.123]", "anna@[IPv6:::1]", "anna@[300.1.1.1]",
    '"anna"@example.com', '"an na"@example.com', '"an\\"na"@example.com', '"a@b"@example.com',
    "Anna Jensen <anna@example.com>", "<anna@example.com>", '"Anna" <anna@example.com>',
    "søren@københavn.dk", "SØREN@KØBENHAVN.DK", "søren@xn--kbenhavn-54a.dk", "soren@XN--KBENHAVN-54A.DK",
    "soren@xn--abc.dk", "soren@xn--.dk", "jørgen@ærø.dk", "user@例え.テスト", "user@例え.jp", "用户@例子.广告",
    "a@1.xn--4dbc.com", "a@xn--4dbc.1.com", "a@אב.com", "a@-example.com", "a@example-.com", "a@ex_ample.com",
    "a@exa mple.com", "a b@example.com", "a\u200bb@example.com", "a@exam\u200bple.com", "ａ@ｅｘａｍｐｌｅ.com",
    "a@ｅｘａｍｐｌｅ.com", "postmaster@example.com", "POSTMASTER@example.com", "Abuse@Example.com",
    "e\u0301@example.com", "\u00e9@example.com", "a@e\u0301xample.com",
    "x" * 64 + "@example.com", "x" * 65 + "@example.com", "x" * 64 + "@" + "d" * 63 + "." + "e" * 63 + "." + "f" * 57 + ".dk",
    "a@" + "d" * 63 + ".dk", "a@" + "d" * 64 + ".dk", "a@" + ("abcdefghij." * 23) + "dk", "a@" + ("abcdefghij." * 25) + "dk",
    "y" * 60 + "@" + "d" * 60 + "." + "e" * 60 + "." + "f" * 60 + ".dk",
    "mailto:anna@example.com", "anna@example.com;bo@example.com", "anna@example.com, bo@example.com",
    "anna(comment)@example.com", "anna@example.com (Anna)", "a+tag@gmail.com", "a!#$%&'*+/=?^_`{|}~@example.com",
    "a@.example.com", "a@example..com", "a@example.com..", "a@[]", "a@[example.com]", "\"\"@example.com",
    "a@xn--ls8h.la", "a@💩.la", "a@ex\u0000ample.com", "a\tb@example.com", "a@exa\u202emple.com",
]


def plain(address: str):
    try:
        return email_validator.validate_email(address, check_deliverability=False).normalized, None
    except email_validator.EmailNotValidError as exc:
        return None, str(exc)


def test_the_memoised_domain_check_is_used_only_with_a_verified_email_validator(monkeypatch):
    # An email-validator newer than MEMO_VERSIONS gets the plain validate_email (correct, only slower):
    # after checking this module's tests with it, extend MEMO_VERSIONS.
    verified = email_validator.__version__.startswith(emails.MEMO_VERSIONS)
    assert emails.EmailChecker().memoised is verified
    monkeypatch.setattr(email_validator, "__version__", "2.4.0")
    assert emails.EmailChecker().memoised
    monkeypatch.setattr(email_validator, "__version__", "9.0.0")
    checker = emails.EmailChecker()
    assert not checker.memoised and checker("Mette@Example.COM") == plain("Mette@Example.COM")


@pytest.mark.parametrize("memo", [True, False])
def test_the_checker_gives_email_validators_verdicts_and_messages(memo):
    if memo and not email_validator.__version__.startswith(emails.MEMO_VERSIONS):
        pytest.skip("the memo is not used with this email-validator version (see MEMO_VERSIONS)")
    check = emails.EmailChecker(memo=memo)
    assert check.memoised is memo
    for _ in range(2):  # the second time from the memo
        for address in TRICKY:
            assert check(address) == plain(address), address
    assert sum(check(a)[0] is None for a in TRICKY) > 30  # the list has plenty of refusals


def test_a_domain_refused_then_accepted_in_another_address_keeps_each_verdict():
    check = emails.EmailChecker()
    for address in ["a@" + "d" * 64 + ".dk", "x" * 65 + "@example.com", "ok@example.com", "y" * 250 + "@example.com",
                    "b@example.com", "c@EXAMPLE.com", "c@localhost", "c@localhost"]:
        assert check(address) == plain(address), address


def test_the_library_itself_is_not_patched():
    check = emails.EmailChecker()
    check("a@example.com")
    from email_validator import syntax, validate_email as module_fn

    assert module_fn.__globals__["validate_email_domain_name"] is syntax.validate_email_domain_name


def _addresses(n: int) -> list[str]:
    out = []
    for i in range(n):
        out.append(TRICKY[i % len(TRICKY)] if i % 3 == 0 else f"person{i}@domain{i % 7}.dk")
    return out + out[:50]  # repeats too


def test_parallel_verdicts_equal_the_plain_ones():
    addresses = _addresses(600)
    with emails.EmailVerdicts(addresses, parallel_min=1, workers=2, chunk=7) as verdicts:
        assert verdicts.parallel
        got = [verdicts.get(a) for a in addresses]
        assert verdicts.get("not@in.the-list.dk") == plain("not@in.the-list.dk")
    assert got == [plain(a) for a in addresses]


def test_the_workers_do_part_of_the_work_when_the_caller_is_slow():
    addresses = [f"p{i}@example.com" for i in range(400)]
    with emails.EmailVerdicts(addresses, parallel_min=1, workers=1, chunk=10) as verdicts:
        import time

        deadline = time.monotonic() + 20
        while verdicts.chunks_by_workers < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        got = [verdicts.get(a) for a in addresses]
        assert verdicts.chunks_by_workers >= 3
    assert got == [plain(a) for a in addresses]


def test_the_caller_checks_untaken_chunks_from_the_end_while_a_worker_has_the_one_it_needs(monkeypatch):
    import threading
    import time

    release = threading.Event()  # the worker's answers are held back until the caller has nothing left to take
    real_receive, real_last_free = emails._receive, emails.EmailVerdicts._last_free

    def held(stream):
        release.wait(20)
        return real_receive(stream)

    def last_free(self, k):
        j = real_last_free(self, k)
        if j is None:
            release.set()
        return j

    monkeypatch.setattr(emails, "_receive", held)
    monkeypatch.setattr(emails.EmailVerdicts, "_last_free", last_free)
    addresses = _addresses(300)
    with emails.EmailVerdicts(addresses, parallel_min=1, workers=1, chunk=10) as verdicts:
        deadline = time.monotonic() + 20
        while verdicts._state[1] != emails._WORKER and time.monotonic() < deadline:
            time.sleep(0.01)
        assert verdicts._state[1] == emails._WORKER
        got = [verdicts.get(a) for a in addresses]
        chunks = len(verdicts._chunks)
        assert verdicts.chunks_stolen == chunks - 3  # all but chunk 0 (the caller's) and the worker's two in flight
        assert verdicts.chunks_by_workers == 2
    assert got == [plain(a) for a in addresses]


def test_when_no_worker_can_start_everything_is_checked_in_process(monkeypatch):
    def no_process():
        raise OSError("no processes here")

    monkeypatch.setattr(emails, "_start_worker", no_process)
    addresses = _addresses(200)
    with emails.EmailVerdicts(addresses, parallel_min=1, workers=2, chunk=5) as verdicts:
        got = [verdicts.get(a) for a in addresses]
        assert verdicts.chunks_by_workers == 0
    assert got == [plain(a) for a in addresses]


def test_a_worker_that_fails_midway_hands_its_chunks_back(monkeypatch):
    real_receive = emails._receive
    calls = []

    def flaky(stream):
        calls.append(1)
        if len(calls) == 2:
            raise EOFError("the worker died")
        if len(calls) == 3:
            real_receive(stream)
            return [("nonsense", None)]  # the wrong number of verdicts
        return real_receive(stream)

    monkeypatch.setattr(emails, "_receive", flaky)
    addresses = _addresses(300)
    with emails.EmailVerdicts(addresses, parallel_min=1, workers=2, chunk=4) as verdicts:
        import time

        deadline = time.monotonic() + 20
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        got = [verdicts.get(a) for a in addresses]
    assert got == [plain(a) for a in addresses]


def test_a_worker_that_dies_at_once_changes_nothing(monkeypatch):
    import subprocess
    import sys

    monkeypatch.setattr(emails, "_start_worker", lambda: subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.exit(3)"], stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    addresses = _addresses(300)
    with emails.EmailVerdicts(addresses, parallel_min=1, workers=2, chunk=4) as verdicts:
        got = [verdicts.get(a) for a in addresses]
    assert got == [plain(a) for a in addresses]


def test_few_addresses_start_no_worker(monkeypatch):
    monkeypatch.setattr(emails, "_start_worker", lambda: pytest.fail("no worker for a small sheet"))
    with emails.EmailVerdicts(["a@example.com"] * 10, parallel_min=5, workers=2) as verdicts:
        assert not verdicts.parallel
        assert verdicts.get("a@example.com") == ("a@example.com", None)


def test_validate_gives_the_same_checks_with_and_without_workers(monkeypatch):
    raw = default_catalogue()
    catalogue = Catalogue(types=tuple(CatalogueItem(t["Id"], t["Name"]) for t in raw["types"]),
                          departments=tuple(CatalogueItem(d["Id"], d["Name"]) for d in raw["departments"]))
    rows = [person(i, email=a) for i, a in enumerate(TRICKY + TRICKY[:10] + [None, "", "  ", "\u200b"])]
    sheet = make_sheet(rows, name="tricky.xlsx")

    def outcome():
        v = validate(sheet, catalogue)
        return ([(c.valid, c.order, c.fingerprint) for c in v.checks], v.messages(), v.warning_messages())

    monkeypatch.setattr(emails, "PARALLEL_MIN", 10**9)
    alone = outcome()
    monkeypatch.setattr(emails, "PARALLEL_MIN", 1)
    monkeypatch.setattr(emails, "CHUNK", 3)
    assert outcome() == alone
    assert any("is not a valid email address" in m for m in alone[1])
    assert any("also appears in row" in m or "the same gift certificate" in m for m in alone[2])


def test_a_worker_runs_this_copy_even_from_a_folder_holding_another_flexybulk(tmp_path, monkeypatch):
    decoy = tmp_path / "flexybulk"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("")
    # A decoy worker that would answer every address as refused.
    (decoy / "emails.py").write_text(
        "import pickle, sys\n"
        "inp, out = sys.stdin.buffer, sys.stdout.buffer\n"
        "while True:\n"
        "    h = inp.read(8)\n"
        "    if len(h) != 8: break\n"
        "    a = pickle.loads(inp.read(int.from_bytes(h, 'big')))\n"
        "    d = pickle.dumps([(None, 'decoy')] * len(a))\n"
        "    out.write(len(d).to_bytes(8, 'big') + d); out.flush()\n")
    monkeypatch.chdir(tmp_path)
    proc = emails._start_worker()
    try:
        emails._send(proc.stdin, ["Mette@Example.COM", "bad@@x"])
        assert emails._receive(proc.stdout) == [plain("Mette@Example.COM"), plain("bad@@x")]
    finally:
        emails._stop_worker(proc)


def test_chunks_and_verdicts_larger_than_a_pipe_buffer_do_not_hang():
    """A chunk (here ~190 KB) and its verdicts exceed a pipe's 64 KiB: writing the next chunk while the
    worker writes verdicts must not deadlock (it did, with long addresses, before the writer thread)."""
    import threading

    addresses = [f"a.rather.long.local.part.number.{i:06d}@a-long-company-domain-name-{i % 40}.example.dk"
                 for i in range(8_000)]
    got: list = []

    def run() -> None:
        with emails.EmailVerdicts(addresses, parallel_min=1, workers=1, chunk=2_000) as verdicts:
            time.sleep(0.5)  # the caller is busy elsewhere: the worker takes chunk after chunk
            got.extend(verdicts.get(a) for a in addresses)
            got.append(verdicts.chunks_by_workers)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "email verdicts hung"
    assert got[:-1] == [plain(a) for a in addresses] and got[-1] >= 1


def test_a_chunk_that_cannot_be_sent_ends_the_worker_instead_of_hanging(monkeypatch):
    """If writing a chunk fails while the worker is alive, the worker is ended, so nobody waits for its answer."""
    import threading

    real_send = emails._send
    calls = {"n": 0}

    def failing_send(stream, obj):
        calls["n"] += 1
        if calls["n"] == 2 and threading.current_thread().name == "flexybulk-email-writer":
            raise RuntimeError("cannot send this chunk")
        return real_send(stream, obj)

    monkeypatch.setattr(emails, "_send", failing_send)
    addresses = [f"p{i}@example.com" for i in range(600)]
    got: list = []

    def run() -> None:
        with emails.EmailVerdicts(addresses, parallel_min=1, workers=1, chunk=50) as verdicts:
            time.sleep(0.3)
            got.extend(verdicts.get(a) for a in addresses)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "email verdicts hung"
    assert got == [plain(a) for a in addresses]
