"""flexybulk.output_fork: half of a big table rendered by a forked child, the same file, and no process left behind."""

from __future__ import annotations

import os
import signal
import sys
import time
import zipfile

import openpyxl
import pytest

from flexybulk import output_fork, output_layout, writers
from flexybulk.errors import InputFileError
from flexybulk.results import write_output
from test_writers import _random_sheet

PARTS = ("xl/worksheets/sheet1.xml", "xl/styles.xml")


@pytest.fixture
def small_fork(monkeypatch):
    """Tables from 100 rows on are cut in two (the second part a child's), in chunks of 64 rows."""
    monkeypatch.setattr(output_fork, "FORK_MIN_ROWS", 100)
    monkeypatch.setattr(writers, "_CHUNK_ROWS", 64)


@pytest.fixture
def children(monkeypatch):
    """The pids of the helper children started, and how many gave their XML (not ``None``)."""
    seen = {"pids": [], "used": 0}
    real_init, real_output = output_fork.Helper.__init__, output_fork.Helper.output

    def init(self, *args):
        real_init(self, *args)
        seen["pids"].append(self.pid)

    def output(self):
        got = real_output(self)
        seen["used"] += got is not None
        return got

    monkeypatch.setattr(output_fork.Helper, "__init__", init)
    monkeypatch.setattr(output_fork.Helper, "output", output)
    return seen


def _parts(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None  # every member's CRC checks out
        return {name: z.read(name) for name in PARTS}


def _gone(pid: int) -> bool:
    """The child is not running and was reaped (not even a zombie of this process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    else:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _alone(sheet, path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(output_fork, "enabled", False)
        write_output(sheet, path)
    return _parts(path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux forks a helper")
def test_a_forked_child_renders_half_the_table_and_the_file_is_the_same(tmp_path, small_fork, children, monkeypatch):
    for seed in range(12):
        sheet = _random_sheet(seed)
        alone = _alone(sheet, tmp_path / "alone.xlsx", monkeypatch)
        before = len(children["pids"])
        write_output(sheet, tmp_path / "forked.xlsx")
        assert _parts(tmp_path / "forked.xlsx") == alone, seed
        assert len(children["pids"]) == before + (len(sheet.rows) >= 100)
    # The children's XML was used, not only the parent's fallback (a child that meets amounts after other
    # values in a column gives its part back: their style was not numbered before the fork).
    assert children["used"] >= 4
    assert all(_gone(pid) for pid in children["pids"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux forks a helper")
@pytest.mark.parametrize("how", ["raises while rendering", "dies", "numbers a style", "hangs laying out",
                                 "hangs rendering", "cannot fork"])
def test_a_child_that_fails_leaves_its_part_to_the_parent(tmp_path, small_fork, children, monkeypatch, how):
    sheet = _random_sheet(0)  # 1300 rows, amounts in several currencies
    alone = _alone(sheet, tmp_path / "alone.xlsx", monkeypatch)
    parent = os.getpid()
    real_prepare, real_chunks = output_layout.TablePart.prepare, output_layout.TablePart.chunks

    def prepare(self, styles):
        if os.getpid() != parent:
            if how == "numbers a style":
                styles.index(styles.money("XYZ"))
            elif how == "hangs laying out":
                time.sleep(60)
        return real_prepare(self, styles)

    def chunks(self, widths, styles, rows):
        if os.getpid() != parent:
            if how == "raises while rendering":
                raise MemoryError("no memory in the child")
            if how == "dies":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "hangs rendering":
                time.sleep(60)
        return real_chunks(self, widths, styles, rows)

    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(output_layout.TablePart, "prepare", prepare)
    monkeypatch.setattr(output_layout.TablePart, "chunks", chunks)
    monkeypatch.setattr(output_fork, "TIMEOUT", 1.0)
    if how == "cannot fork":
        monkeypatch.setattr(output_fork.os, "fork", no_fork)
    started = time.monotonic()
    write_output(sheet, tmp_path / "forked.xlsx")
    assert time.monotonic() - started < 20
    assert _parts(tmp_path / "forked.xlsx") == alone
    assert children["used"] == 0
    assert len(children["pids"]) == (0 if how == "cannot fork" else 1)
    assert all(_gone(pid) for pid in children["pids"])
    assert openpyxl.load_workbook(tmp_path / "forked.xlsx")["Result"].max_row == sheet.rows[-1].number


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux forks a helper")
def test_no_child_is_left_behind_when_the_parent_fails(tmp_path, small_fork, children, monkeypatch):
    sheet = _random_sheet(0)

    def broken_summary(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers, "_write_summary", broken_summary)
    with pytest.raises(InputFileError, match="No space left"):
        write_output(sheet, tmp_path / "out.xlsx")
    assert len(children["pids"]) == 1 and _gone(children["pids"][0])
    assert not list(tmp_path.iterdir())  # nor half a file


def test_without_fork_one_process_does_it_all(tmp_path, small_fork, children, monkeypatch):
    sheet = _random_sheet(0)
    alone = _alone(sheet, tmp_path / "alone.xlsx", monkeypatch)
    with monkeypatch.context() as m:
        m.delattr(output_fork.os, "fork")  # Windows
        assert not output_fork.available()
        write_output(sheet, tmp_path / "one.xlsx")
    with monkeypatch.context() as m:
        m.setattr(output_fork.sys, "platform", "darwin")  # has fork, but its libraries are not fork-safe
        assert not output_fork.available()
        write_output(sheet, tmp_path / "two.xlsx")
    assert _parts(tmp_path / "one.xlsx") == _parts(tmp_path / "two.xlsx") == alone
    assert children["pids"] == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux forks a helper")
def test_a_child_whose_parent_is_gone_stops(tmp_path):
    """The helper's child ends when its parent dies without a word (here: killed between two chunks)."""
    import subprocess

    script = f"""
import os, sys, time
sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(output_fork.__file__)))!r})
from flexybulk import output_fork
def render(widths):
    for i in range(1000):
        time.sleep(0.05)
        yield b"x"
helper = output_fork.Helper(lambda: [1], render, lambda: 0)
print(helper.pid, flush=True)
assert helper.widths() == [1]
helper.go([1])
os._exit(0)  # the parent is gone, without killing its child
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    child = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the orphaned child kept running")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux forks a helper")
def test_a_child_forked_while_other_threads_hold_locks_still_renders(tmp_path, small_fork, children, monkeypatch):
    """As in the web server or during validation's email workers: threads alive and holding locks at fork time."""
    import logging
    import threading

    sheet = _random_sheet(11)
    alone = _alone(sheet, tmp_path / "alone.xlsx", monkeypatch)
    held, stop = threading.Lock(), threading.Event()
    log = logging.getLogger("flexybulk.test.busy")

    def busy():  # holds a lock most of the time and keeps logging's and the allocator's locks busy
        while not stop.is_set():
            with held:
                log.debug("%s", [str(i) for i in range(200)])

    workers = [threading.Thread(target=busy, daemon=True) for _ in range(3)]
    for t in workers:
        t.start()
    result: list = []
    writer = threading.Thread(target=lambda: result.append(write_output(sheet, tmp_path / "forked.xlsx")))
    try:
        writer.start()
        writer.join(60)
    finally:
        stop.set()
        for t in workers:
            t.join()
    assert not writer.is_alive() and result
    assert _parts(tmp_path / "forked.xlsx") == alone
    assert children["used"] == 1 and all(_gone(pid) for pid in children["pids"])
