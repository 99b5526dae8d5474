"""Team mode's roles as the README says, in-process: uploaders change only their own uploads and see only their
own batches, approvers look and approve, and the approver's home page lists what awaits them (issue #14)."""

from __future__ import annotations

import re
import time


from webtools import write_sheet
from webviews import PASSWORDS, _app, _copy, _digest, _issue, _login, _state, _upload, team, users_file  # noqa: F401

# users_file: anna = uploader + approver, bo = approver only, carl = uploader only.


def test_an_approver_without_the_uploader_role_can_look_and_approve_but_not_upload_fix_or_issue(team, sandbox, tmp_path):
    _login(team, "carl")
    uid = _upload(team, write_sheet(tmp_path / "carl.xlsx", [["Dan", "dan@example.com", "Gavekrot", 250, 2, "Webshop"]]))
    _login(team, "bo")
    home = team.get("/").text
    assert 'data-testid="upload-input"' not in home and "Uploading needs the uploader role." in home
    with open(tmp_path / "carl.xlsx", "rb") as fh:
        refused = team.post("/upload", files={"file": ("bo.xlsx", fh)}, follow_redirects=False)
    assert refused.status_code == 403 and "uploading, fixing and issuing need the uploader role" in refused.text
    page = team.get(f"/u/{uid}").text  # bo may look at carl's sheet
    assert 'data-testid="problem-cell"' in page and "hx-get=" not in page and "/settings" not in page
    for path, data in [("fix", {"row": "2", "column": "Gavekorttype", "text": "Gavekort"}), ("settings", {"department": "Aarhus"}),
                       ("options", {"skip_invalid": "1"}), ("confirm", {"digest": "x"}), ("retry", {}), ("resume", {})]:
        assert team.post(f"/u/{uid}/{path}", data=data, follow_redirects=False).status_code == 403, path
    assert (tmp_path / "data" / "uploads" / uid / "fixes.json").exists() is False
    _login(team, "carl")
    team.post(f"/u/{uid}/fix", data={"row": "2", "column": "Gavekorttype", "text": "Gavekort"})
    _digest(team, uid)
    _login(team, "bo")
    confirm = team.get(f"/u/{uid}/confirm").text
    assert 'data-testid="confirm-button"' not in confirm and "Only carl, who uploaded the sheet, can issue it." in confirm
    time.sleep(0.3)
    assert sandbox.state.counts()["customers"] == 0


def test_an_uploader_changes_only_their_own_uploads_even_with_the_approver_role(team, sandbox, tmp_path):
    _login(team, "carl")
    uid = _upload(team, write_sheet(tmp_path / "carl.xlsx", [["Dan", "dan@example.com", "Gavekort", 250, 2, "Webshop"]]))
    digest = _digest(team, uid)
    _login(team, "anna")
    assert team.get(f"/u/{uid}").status_code == 200  # an approver looks
    refused = team.post(f"/u/{uid}/confirm", data={"digest": digest})
    assert refused.status_code == 403 and "only carl, who uploaded it, or an admin can change or issue this upload" in refused.text
    assert team.post(f"/u/{uid}/fix", data={"row": "2", "column": "Navn", "text": "X"}).status_code == 403
    time.sleep(0.3)
    assert sandbox.state.counts()["customers"] == 0
    _login(team, "carl")
    assert _issue(team, uid)["state"] == "done"


def test_history_shows_an_uploader_their_own_batches_and_approvers_every_batch(team, sandbox, tmp_path):
    _login(team, "carl")
    carls = _upload(team, write_sheet(tmp_path / "carl.xlsx", [["Dan", "dan@example.com", "Gavekort", 250, 1, "Webshop"]]))
    carl_batch = _issue(team, carls)["batch_id"]
    _login(team, "anna")
    annas = _upload(team, write_sheet(tmp_path / "anna.xlsx", [["Eva", "eva@example.com", "Gavekort", 300, 1, "Aarhus"]]))
    anna_batch = _issue(team, annas)["batch_id"]

    def batches_seen(name):
        _login(team, name)
        return set(re.findall(r'data-testid="history-row" data-batch="([^"]+)"', team.get("/history").text))

    assert batches_seen("carl") == {carl_batch}
    assert batches_seen("anna") == batches_seen("bo") == {carl_batch, anna_batch}
    _login(team, "carl")
    assert team.get("/history?q=anna").text.count('data-testid="history-row"') == 0


def test_the_approvers_home_page_lists_what_awaits_their_approval_in_plain_words(team, sandbox, tmp_path):
    _login(team, "anna")
    uid = _upload(team, _copy("kampagne.xlsx", tmp_path))
    team.post(f"/u/{uid}/confirm", data={"digest": _digest(team, uid)})
    _state(team, uid, ("awaiting_approval",))
    own = team.get(f"/u/{uid}/confirm").text
    assert "Waiting for approval: another person with the approver role must approve before the batch starts." in own
    assert "(not you)" not in own and 'data-testid="awaiting-row"' not in team.get("/").text  # not her own to approve
    _login(team, "bo")
    home = team.get("/").text
    assert re.search(rf'<a href="/u/{uid}/confirm" data-testid="awaiting-row">kampagne.xlsx</a>\s*· anna', home)
    page = team.get(f"/u/{uid}/confirm").text
    assert "anna asks for your approval of 10,399.85 DKK. Look through the figures, then approve." in page
    assert 'data-testid="approve-button"' in page
    _login(team, "carl")  # an uploader: nothing to approve, and anna's upload is not his to see
    assert 'data-testid="awaiting-yours"' not in team.get("/").text
