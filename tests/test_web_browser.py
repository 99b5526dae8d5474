"""The web page in a real Chromium against ``flexybulk web --sandbox`` in a subprocess on 127.0.0.1 (issue #14).

One server for the module (started once: the browser tests stay fast); each
test uploads its own sheet. The sandbox's own state (``/_sandbox/state``)
is the truth every test compares with.
"""

from __future__ import annotations

import re
import socket
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from flexybulk.sandbox import DEFAULT_TOKEN
from webtools import import_playwright, SHOTS, launch_chromium, result_rows, serve, server_env, write_sheet

playwright_api = import_playwright()
expect = playwright_api.expect

MAX_MB = 1


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("web")


@pytest.fixture(scope="module")
def server(folder):
    env = server_env(folder)
    yield from serve(["--sandbox", "--new-ledger", "--data-dir", str(folder / "data"), "--max-file-size", str(MAX_MB)], env, folder)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def _certificates(server) -> list[dict]:
    return server.sandbox_state(DEFAULT_TOKEN)["certificates"]


def _amount(value) -> Decimal:
    """An amount cell as the sheet holds it: a number, or Danish text such as 1.250,00."""
    if isinstance(value, str):
        return Decimal(value.replace(".", "").replace(",", "."))
    return Decimal(str(value))


def _upload(page, server, path: Path) -> None:
    page.goto(server.url)
    page.get_by_test_id("upload-input").set_input_files(str(path))
    page.get_by_test_id("upload-button").click()
    page.get_by_test_id("check-summary").wait_for()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


MISTAKES = [
    ["Anna Hansen", "anna@example.com", "Gavekort", 250, 2, "Webshop"],
    ["Bo Jensen", "bo@@example.com", "Julegavekort", "499,95", 1, "Aarhus"],  # a mistyped email: typed right
    ["Carl Nielsen", "carl@example.com", "Gavekrot", 300, 3, "Webshop"],  # a misspelt type: "did you mean"
    ["Dorte Lund", "dorte@example.com", "Julegavekort", "1.250,00", 1, "Aarhus"],
]


def test_upload_fix_two_cells_confirm_and_the_result_sheet_equals_the_sandbox(page, server, folder):
    before = len(_certificates(server))
    sheet = write_sheet(folder / "kampagne-fejl.xlsx", MISTAKES)
    _upload(page, server, sheet)
    _shot(page, "browser-2-check")
    assert page.get_by_test_id("rows-invalid").inner_text() == "2"
    cells = page.get_by_test_id("problem-cell")
    assert cells.count() == 2
    assert [cells.nth(i).get_attribute("data-row") for i in range(2)] == ["3", "4"]

    # Fix 1: the email, typed in place.
    page.locator('[data-testid=problem-cell][data-column="E-mail"] a.cell').click()
    page.get_by_test_id("fix-input").fill("bo@example.com")
    page.get_by_test_id("fix-apply").click()
    expect(page.get_by_test_id("rows-invalid")).to_have_text("1")
    # Fix 2: the type, by accepting the "did you mean" with one click.
    page.locator('[data-testid=problem-cell][data-column="Gavekorttype"] a.cell').click()
    suggestion = page.get_by_test_id("fix-suggestion")
    assert suggestion.inner_text() == "Use 'Gavekort'"
    suggestion.click()
    expect(page.get_by_test_id("rows-invalid")).to_have_text("0")
    assert page.get_by_test_id("problem-cell").count() == 0
    assert page.get_by_test_id("certificates").inner_text() == "7"

    page.get_by_test_id("issue-button").click()
    page.get_by_test_id("confirm-button").wait_for()
    _shot(page, "browser-3-confirm")
    assert "SANDBOX" in page.get_by_test_id("confirm-target").inner_text()
    assert page.get_by_test_id("confirm-certificates").inner_text() == "7"
    assert page.get_by_test_id("confirm-money").inner_text() == "3,149.95 DKK"
    assert len(_certificates(server)) == before  # nothing issued before the confirmation

    page.get_by_test_id("confirm-button").click()
    page.get_by_test_id("finished").wait_for()
    _shot(page, "browser-5-result")
    assert page.get_by_test_id("status-count-ISSUED").inner_text() == "4"
    with page.expect_download() as info:
        page.get_by_test_id("download-result").click()
    downloaded = folder / "downloaded.result.xlsx"
    info.value.save_as(downloaded)

    rows = result_rows(downloaded)
    assert [r["Status"] for r in rows] == ["ISSUED"] * 4
    assert [r["E-mail"] for r in rows][1] == "bo@example.com" and rows[2]["Gavekorttype"] == "Gavekort"
    new = _certificates(server)[before:]
    assert len(new) == sum(int(r["Antal"]) for r in rows) == 7
    assert sum((Decimal(str(c["Amount"])) for c in new), Decimal(0)) == \
        sum((_amount(r["Beløb"]) * int(r["Antal"]) for r in rows), Decimal(0)) == Decimal("3149.95")
    numbers = {n.strip() for r in rows for n in r["GiftCertificateNumbers"].split(",")}
    assert numbers == {c["Number"] for c in new}


def test_a_double_click_on_confirm_issues_once(page, server, folder):
    before = len(_certificates(server))
    sheet = write_sheet(folder / "dobbelt.xlsx", [["Eva Holm", "eva@example.com", "Gavekort", 100, 2, "Webshop"],
                                                  ["Finn Berg", "finn@example.com", "Gavekort", 150, 1, "Webshop"]])
    _upload(page, server, sheet)
    page.get_by_test_id("issue-button").click()
    button = page.get_by_test_id("confirm-button")
    button.wait_for()
    digest = page.locator("input[name=digest]").input_value()
    confirm_url = page.url
    # The same confirmation sent twice more at once from this tab's session, as a second tab would.
    post = lambda: page.request.post(confirm_url, form={"digest": digest}, headers={"Origin": server.url.rstrip("/")},
                                     max_redirects=0)
    button.dblclick()
    answers = [post(), post()]
    assert all(a.status == 303 for a in answers)
    page.get_by_test_id("finished").wait_for()
    assert page.get_by_test_id("status-count-ISSUED").inner_text() == "2"
    assert len(_certificates(server)) - before == 3


def test_a_cross_site_post_is_refused(browser, server, folder):
    """A page on another origin (another port on 127.0.0.1) posts a form to the server: refused, nothing changes."""
    evil = socket.socket()
    evil.bind(("127.0.0.1", 0))
    evil_port = evil.getsockname()[1]
    evil.close()
    context = browser.new_context()
    page = context.new_page()
    html = (f"<form id=f method=post action='{server.url}u/00000000000000000000/confirm'>"
            "<input name=digest value=x></form>")
    page.route(f"http://127.0.0.1:{evil_port}/", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.goto(f"http://127.0.0.1:{evil_port}/")
    with page.expect_navigation() as info:
        page.evaluate("document.getElementById('f').submit()")
    assert info.value.status == 403
    assert "another site" in info.value.text()
    context.close()
    # The same from a script without a browser's headers is not a browser's forgery, and is judged by the route.
    assert requests.post(server.url + "upload", headers={"Origin": "http://evil.example"}, timeout=5).status_code == 403


def test_an_oversized_upload_is_refused_before_it_is_read(page, server, folder):
    big = folder / "stor.csv"
    big.write_bytes(b"Navn;E-mail\n" + b"x;y@example.com\n" * (MAX_MB * 1024 * 1024 // 16 + 1000))
    # In the page: said at once, nothing sent.
    page.goto(server.url)
    page.get_by_test_id("upload-input").set_input_files(str(big))
    assert "too large" in page.locator("#size-error").inner_text()
    # On the server: a declared length over the limit is answered 413 without the body ever being sent.
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1].strip("/")))) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                  b"Content-Length: 10000000000\r\n\r\n")
        s.settimeout(5)
        answer = b""
        while chunk := s.recv(4096):  # the server closes the connection after its answer
            answer += chunk
        answer = answer.decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "Refused: the file is too large: 9,536.7 MB." in answer
    uploads = list((folder / "data" / "uploads").iterdir())
    assert all((u / "stor.csv").exists() is False for u in uploads)


def test_no_page_cookie_or_log_contains_the_token(page, server, folder):
    """The sandbox's token is what the server sends to Flexybox; it must appear nowhere a browser or a log sees."""
    seen: list[str] = []
    page.on("response", lambda r: seen.append(r.text()) if "text" in (r.headers.get("content-type") or "") else None)
    sheet = write_sheet(folder / "token.xlsx", [["Gry Dahl", "gry@example.com", "Gavekort", 100, 1, "Webshop"]])
    _upload(page, server, sheet)
    page.get_by_test_id("issue-button").click()
    page.get_by_test_id("confirm-button").click()
    page.get_by_test_id("finished").wait_for()
    page.goto(server.url + "history")
    seen.append(page.content())
    assert len(seen) > 5
    assert all(DEFAULT_TOKEN not in text for text in seen)
    assert all(DEFAULT_TOKEN not in f"{c['name']}={c['value']}" for c in page.context.cookies())
    assert DEFAULT_TOKEN not in server.output()
    audit = list((folder / "ledger").glob("audit/*.jsonl"))
    assert audit and all(DEFAULT_TOKEN not in p.read_text(encoding="utf-8") for p in audit)


def test_keyboard_alone_from_upload_to_result(page, server, folder):
    """Tab order reaches every control, focus is visible, Enter and Space work the controls."""
    before = len(_certificates(server))
    sheet = write_sheet(folder / "tastatur.xlsx", [["Hans Moe", "hans@example.com", "Gavekrot", 200, 1, "Webshop"]])
    choosers = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))  # listening before the page loads: file chooser interception is on in time
    page.goto(server.url)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    # The file chooser is opened with the keyboard too: Tab to it, then the file is given to the chooser.
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.testid") == "upload-input":
            break
    assert page.evaluate("document.activeElement.dataset.testid") == "upload-input"
    outline = page.evaluate("getComputedStyle(document.activeElement.closest('label').querySelector('.button')).outlineStyle")
    assert outline == "solid"  # the focus is visible on the button that stands for the file input
    page.keyboard.press("Enter")
    page.wait_for_timeout(50)
    for _ in range(100):
        if choosers:
            break
        page.wait_for_timeout(50)
    assert len(choosers) == 1
    choosers[0].set_files(str(sheet))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.testid") == "upload-button"
    page.keyboard.press("Enter")
    page.get_by_test_id("check-summary").wait_for()
    # Tab to the problem cell and open its editor with Space.
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('[data-testid=problem-cell]') !== null"):
            break
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "1280-keyboard-focus.png"))
    page.keyboard.press("Space")
    expect(page.get_by_test_id("fix-input")).to_be_focused()  # the cursor goes into the editor
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.testid") == "fix-suggestion"
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("rows-invalid")).to_have_text("0")
    expect(page.locator("#row-2 a.cell").first).to_be_focused()  # after a fix the cursor is back on the fixed row
    page.get_by_test_id("issue-button").focus()
    page.keyboard.press("Enter")
    try:
        page.get_by_test_id("confirm-button").wait_for()
    except Exception:
        print(page.url, page.content()[-3000:])
        raise
    page.get_by_test_id("confirm-button").focus()
    page.keyboard.press("Space")
    page.get_by_test_id("finished").wait_for()
    assert len(_certificates(server)) - before == 1


@pytest.mark.parametrize("width", [1280, 1024])
def test_screenshots_of_each_step(browser, server, folder, width):
    """Each step at 1280x800 and 1024 px wide, kept in .shots/ to be looked at; the page never scrolls sideways."""
    context = browser.new_context(viewport={"width": width, "height": 800}, locale="da-DK")
    page = context.new_page()
    # Other recipients than the other tests' (those are issued already, and would rightly not be sent again).
    rows = [[name, email.replace("@", f"+{width}@", 1), *rest] for name, email, *rest in MISTAKES]
    sheet = write_sheet(folder / f"skaermbillede-{width}.xlsx", rows)
    page.goto(server.url)
    _shot(page, f"{width}-1-upload")
    _upload(page, server, sheet)
    _shot(page, f"{width}-2-check")
    page.locator('[data-testid=problem-cell][data-column="Gavekorttype"] a.cell').click()
    page.get_by_test_id("fix-suggestion").wait_for()
    page.screenshot(path=str(SHOTS / f"{width}-2b-fix.png"))
    page.get_by_test_id("fix-suggestion").click()
    expect(page.get_by_test_id("rows-invalid")).to_have_text("1")
    page.locator('[data-testid=problem-cell][data-column="E-mail"] a.cell').click()
    page.get_by_test_id("fix-input").fill(f"bo+{width}@example.com")
    page.get_by_test_id("fix-apply").click()
    expect(page.get_by_test_id("rows-invalid")).to_have_text("0")
    page.get_by_test_id("issue-button").click()
    page.get_by_test_id("confirm-button").wait_for()
    _shot(page, f"{width}-3-confirm")
    page.get_by_test_id("confirm-button").click()
    page.get_by_test_id("finished").wait_for()
    _shot(page, f"{width}-5-result")
    page.goto(server.url + "history")
    _shot(page, f"{width}-6-history")
    for name in ("", "history"):
        page.goto(server.url + name)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


def test_only_problem_cells_are_tab_stops_a_skip_reaches_the_first_and_enter_in_a_list_applies(page, server, folder):
    """Keyboard (finding 19) and the mouse on a problem's reason (finding 10)."""
    rows = [[f"K {i}", f"k{i}@example.com", "Gavekort", 100, 1, "Webshop"] for i in range(8)]
    rows[5][5] = "Roskilde"  # an unknown department, in the last column of row 7
    rows[6][2] = "Gavekrot"
    _upload(page, server, write_sheet(folder / "tab.xlsx", rows))
    # Of the grid's cells only the two with a problem are in the Tab order.
    stops = page.evaluate("[...document.querySelectorAll('table.grid a.cell')].filter(a => a.tabIndex >= 0)"
                          ".map(a => a.closest('td').dataset.row + ':' + a.closest('td').dataset.column)")
    assert stops == ["7:Afdeling", "8:Gavekorttype"]
    assert page.locator("table.grid a.cell").count() == 8 * 6
    # The skip link at the top of the grid puts the cursor on the first problem.
    page.get_by_test_id("first-problem").focus()
    page.keyboard.press("Enter")
    expect(page.locator('td[data-row="7"][data-column="Afdeling"] a.cell')).to_be_focused()
    # From the "only rows with problems" toggle, the next problem is two Tabs away (the scrolling region between).
    page.get_by_test_id("only-problems").focus()
    for _ in range(2):
        page.keyboard.press("Tab")
    expect(page.locator('td[data-row="7"][data-column="Afdeling"] a.cell')).to_be_focused()
    # Enter in the editor's list of departments applies the fix.
    page.keyboard.press("Enter")
    select = page.get_by_test_id("fix-input")
    expect(select).to_be_focused()
    select.select_option("Aarhus")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("rows-invalid")).to_have_text("1")
    # A click on the red reason under a value opens that cell's editor too.
    page.locator('td[data-row="8"][data-column="Gavekorttype"] .why').click()
    expect(page.get_by_test_id("editor")).to_contain_text("Gavekorttype")
    page.get_by_test_id("fix-suggestion").click()
    expect(page.get_by_test_id("rows-invalid")).to_have_text("0")
    assert page.locator('[data-testid="fixed-cell"]').count() == 2


def test_a_click_anywhere_in_a_tall_cell_opens_its_editor(page, server, folder):
    """A fresh user's find: in a row made tall by another cell's long text, only the value's own line opened it."""
    sheet = write_sheet(folder / "klik.xlsx", [["Anna Hansen", "anna@example.com", "Gavekrot", 250, 2, "Webshop"],
                                               ["Bo Jensen med et meget langt navn " * 4, "bo@@example.com", "Gavekort", 100, 1,
                                                "Webshop"]])
    _upload(page, server, sheet)
    cell = page.locator('td[data-row="3"][data-column="Gavekorttype"]')
    box = cell.bounding_box()
    assert box["height"] > 40  # made tall by the long name beside it
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 3)  # well below the value's text
    expect(page.locator("#editor")).to_contain_text("Fix cell C3")
