"""Helpers for the web page's tests: a ``flexybulk web`` server in a subprocess, Chromium, test sheets.

Not a test module. The browser is Debian's ``chromium`` driven by Playwright
through ``executable_path`` (Playwright's own browser download cannot work
here). Without it the browser tests skip, except where CI (``CI`` or
``FLEXYBULK_REQUIRE_BROWSER`` set) requires them: there a missing browser fails.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import openpyxl
import pytest
import requests

from conftest import REPO

CHROMIUM = Path(os.environ.get("FLEXYBULK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SHOTS = REPO / ".shots"

HEADERS = ["Navn", "E-mail", "Gavekorttype", "Beløb", "Antal", "Afdeling"]


def browser_required() -> bool:
    return bool(os.environ.get("FLEXYBULK_REQUIRE_BROWSER") or os.environ.get("CI"))


def import_playwright():
    """``playwright.sync_api``; a test module without it skips (in CI: fails at collection)."""
    if browser_required():
        import playwright.sync_api

        return playwright.sync_api
    return pytest.importorskip("playwright.sync_api")


def launch_chromium(playwright):
    """Debian's Chromium through Playwright; skips (or, in CI, fails) when it is not installed."""
    if not CHROMIUM.exists():
        if browser_required():
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium (.ci/run does: apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


class WebServer:
    """``flexybulk web --port 0 --no-browser ...`` in a subprocess on 127.0.0.1 (started again: on the same port); its
    output goes to files."""

    def __init__(self, args: list[str], env: dict[str, str], folder: Path) -> None:
        self.args, self.env, self.folder = args, env, folder
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.sandbox_url: str | None = None
        self.runs = 0

    def start(self) -> "WebServer":
        self.runs += 1
        self.out = self.folder / f"server-{self.runs}.out"
        self.err = self.folder / f"server-{self.runs}.err"
        # Started again, it listens where it did (as a restarted server does), so an open page can reach it.
        port = re.search(r":(\d+)/$", self.url).group(1) if self.url else "0"
        cmd = [sys.executable, str(REPO / "batch_issue.py"), "web", "--port", port, "--no-browser", *self.args]
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=self.env, cwd=self.folder)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self.out.read_text(encoding="utf-8", errors="replace")
            found = re.search(r"^Web page: (http://127\.0\.0\.1:\d+/)$", text, re.M)
            if found:
                self.url = found.group(1)
                sandbox = re.search(r"^Sandbox .*: (http://127\.0\.0\.1:\d+)$", text, re.M)
                self.sandbox_url = sandbox.group(1) if sandbox else None
                if self._healthy():
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"flexybulk web did not start:\n--- stdout\n{self.output()}")

    def _healthy(self) -> bool:
        try:
            return requests.get(self.url + "healthz", timeout=2).text == "ok"
        except requests.RequestException:
            return False

    def output(self) -> str:
        """Everything every run of the server printed (stdout and stderr)."""
        parts = []
        for n in range(1, self.runs + 1):
            for name in (f"server-{n}.out", f"server-{n}.err"):
                path = self.folder / name
                if path.exists():
                    parts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(parts)

    def kill(self) -> None:
        """``kill -9``: the process ends at once, in the middle of whatever it does."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def sandbox_state(self, token: str) -> dict:
        """``GET /_sandbox/state`` of the server's built-in sandbox (``--sandbox``)."""
        answer = requests.get(self.sandbox_url + "/_sandbox/state", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        answer.raise_for_status()
        return answer.json()


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a server subprocess: no real token or URLs, its own ledger and home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEXYBOX_", "FLEXYBULK_"))}
    env.update({"FLEXYBULK_LEDGER": str(tmp / "ledger" / "ledger.sqlite3"), "HOME": str(tmp / "home"),
                "XDG_DATA_HOME": str(tmp / "home" / "data"), "PYTHONPATH": str(REPO)})
    env.update(extra)
    return env


def write_sheet(path: Path, rows: list[list]) -> Path:
    """An XLSX of recipients with the Danish headers (as LibreOffice or Excel would save it: values only)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Modtagere"
    ws.append(HEADERS)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def result_rows(path: Path) -> list[dict]:
    """The Result sheet's rows as dicts (header -> value)."""
    ws = openpyxl.load_workbook(path, read_only=True)["Result"]
    values = list(ws.iter_rows(values_only=True))
    return [dict(zip(values[0], row)) for row in values[1:]]


def serve(args: list[str], env: dict[str, str], folder: Path) -> Iterator[WebServer]:
    server = WebServer(args, env, folder).start()
    try:
        yield server
    finally:
        server.stop()
