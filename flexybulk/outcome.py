"""What one row's flow ended with, and what a failed call means for the row (issue #11).

The runner (``issue.BatchRunner``) sends a row's three calls; when one fails
for good, :func:`after_failure` decides the row's status and the words in its
result line from the call's :class:`~flexybulk.errors.ApiError`. The rules:

- A commit that *may* have reached Flexybox (an attempt's answer lost, a read
  timeout, a 5xx; in this run, or a commit an earlier run sent and nothing
  settled since) can only be settled by a success: any later refusal leaves
  the row UNKNOWN at its COMMIT step with its ids, and a rerun re-posts the
  same payment id. A refusal of a retry does not undo an earlier attempt that
  went through (100 rows with 30 % lost commit answers once became 162
  certificates, then 203 after a corrected copy was issued).
- Flexybox answering a commit "already committed" (a vendor that refuses the
  repeat the article says it ignores; :func:`~flexybulk.client.says_already_committed`)
  settles the row as ISSUED: the sales order id is ours alone, so the
  commit it speaks of was ours. The certificate numbers are read from that
  answer if it carries them; otherwise the row is ISSUED without numbers and
  says where to find them.
- Only a definite refusal of a call that cannot have issued anything makes a
  row FAILED, with "Nothing was issued for this row", in the sheet's words
  (the column that holds the refused value; :mod:`.refusals`).
- A row that cannot have reached the commit (its customer or sales order
  call failed without a verdict, and no commit of it was ever sent) is
  PENDING, never UNKNOWN: no gift certificate can exist yet, and a rerun
  finishes it with the same ids (issue #13).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from .answers import certificate_numbers, says_already_committed
from .errors import ApiError, AuthError
from .model import RowStatus
from .refusals import RefusalWords, Refused, clean_message

_RERUN_COMMIT = ("Rerun (flexybulk retry on the result sheet): the same payment id is re-posted, "
                 "so it cannot issue twice.")


@dataclass
class Outcome:
    """What one row's flow ended with.

    Attributes:
        status: the row's status now.
        error: the words for the result line's Error column (a note for an ISSUED row), or ``None``.
        numbers: the gift certificate numbers issued (ISSUED only; may be empty, see the module docstring).
        content: set when what was committed differs from the ledger's content (a settled older version).
        unreachable: no attempt of the failed call can have reached Flexybox.
        commit_reached: a commit of this row may have reached Flexybox and nothing settled it:
            the ledger must keep the row at its COMMIT step (``Journal.finish_row``).
        fatal: the rejected token that must stop the whole run, if that is what ended the row.
        already: Flexybox held the order committed before this run, under the row's ids (another
            ledger or laptop issued the same file): nothing new was issued.
        earlier: set by the runner when Flexybox answered that an earlier run's commit of the row went
            through (a rerun settling it): nothing new was issued.
    """

    status: RowStatus
    error: str | None = None
    numbers: list[str] = field(default_factory=list)
    content: dict | None = None
    unreachable: bool = False
    commit_reached: bool = False
    fatal: AuthError | None = None
    already: bool = False  # Flexybox held the order committed before this run (another ledger issued it)
    earlier: bool = False  # Flexybox answered that an earlier run's commit of this row went through


def _refused(exc: ApiError) -> bool:
    """The last attempt was answered with a refusal (a 4xx other than 429): a verdict on the request itself."""
    return exc.status is not None and 400 <= exc.status < 500 and exc.status != 429


DescribeRefusal = Callable[[str, ApiError, "dict | None"], Refused]
"""``(step, error, content sent) -> Refused``: a refusal in the sheet's words (:class:`~flexybulk.refusals.RefusalWords`)."""

_PLAIN_WORDS = RefusalWords()  # no sheet: the refused field in words only

_WHAT = {"customer": "save the customer", "sales order": "save the sales order", "commit": "commit the sales order"}


def after_failure(step: str, exc: ApiError, *, sales_order_id: str, commit_sent_before: bool,
                  note: str | None = None, content: dict | None = None, sent: dict | None = None,
                  describe_refusal: DescribeRefusal | None = None) -> Outcome:
    """The row's outcome when its ``step`` call (``"customer"``, ``"sales order"`` or ``"commit"``) failed with ``exc``.

    Args:
        step: the call that failed.
        exc: its error, as the client raises it (``outcome_unknown`` covers every attempt).
        sales_order_id: the row's sales order id (named in an ISSUED row's note).
        commit_sent_before: an earlier run sent this row's commit and no answer settled it
            (``RowRecord.commit_may_have_happened``), so nothing now can prove it did not happen.
        note: what the flow had to say already (a settled older version), kept in front of the words.
        content: what the commit was sent for, when it differs from the ledger's content (for ISSUED).
        sent: the order content the calls were sent with (its quantity makes "the gift certificate"
            or "the gift certificates"; a refused value without a column is named from it).
        describe_refusal: says a definite refusal in the sheet's words (which column, what to
            correct); without it, the refused field is named in words only.

    Returns:
        An :class:`Outcome`; ``fatal`` is set for an :class:`~flexybulk.errors.AuthError`.
        Never FAILED when a commit may have reached Flexybox (the module docstring's rules);
        PENDING, never UNKNOWN, when no commit can have been sent.
    """
    commit_reached = commit_sent_before or (step == "commit" and exc.outcome_unknown)
    one = _quantity(sent if sent is not None else content) == 1
    them = "the gift certificate" if one else "the gift certificates"
    if step == "commit" and says_already_committed(exc):
        numbers = _numbers_in(exc.response_body)
        text = (f"Flexybox answered that sales order {sales_order_id} is already committed ({exc.status}: "
                f"{clean_message(exc.server_message or '')}): an earlier commit of this row went through, so "
                + ("its gift certificate exists" if one else "its gift certificates exist"))
        if numbers:
            text += "; its number is from that answer." if len(numbers) == 1 else "; their numbers are from that answer."
        else:
            text += (f", but that answer did not list {'its number' if one else 'their numbers'}: look "
                     f"{'it' if one else 'them'} up in Flexybox under sales order {sales_order_id}.")
        return Outcome(RowStatus.ISSUED, _join(note, text), numbers, content)
    if isinstance(exc, AuthError):
        if commit_reached:
            text = ("Not finished: Flexybox refused the token while settling a commit that may have gone through, "
                    f"so {them} may or may not exist. Fix the token and rerun: the same payment id is "
                    "re-posted, so it cannot issue twice.")
            return Outcome(RowStatus.UNKNOWN, _join(note, text), commit_reached=True, fatal=exc)
        return Outcome(RowStatus.PENDING, "Not finished: Flexybox refused the token. Fix the token and rerun.", fatal=exc)
    if commit_reached:
        if exc.not_sent:  # this run's call never left; the earlier run's commit is still unsettled
            text = (f"Not sent: {_unreachable(step, exc)}. This row's commit was sent by an earlier run and may have gone "
                    f"through, so {them} may or may not exist. Rerun (flexybulk retry on the result sheet) when "
                    "Flexybox can be reached: the same payment id is re-posted, so it cannot issue twice.")
            return Outcome(RowStatus.UNKNOWN, _join(note, text), unreachable=True, commit_reached=True)
        # A refusal is said in the sheet's words, as for a FAILED row (the raw answer is in the audit log);
        # its "correct it" advice is left out: the row is settled exactly as its commit was first sent.
        why = ((describe_refusal or _PLAIN_WORDS)(step, exc, sent if sent is not None else content).lead
               if _refused(exc) else _clause(exc))
        if step != "commit":
            text = (f"The {step} call failed while settling a commit sent by an earlier run: {why}. That commit may "
                    f"have gone through, so {them} may or may not exist. {_RERUN_COMMIT}")
        elif _refused(exc):
            text = (f"The commit may have gone through, although a retry of it was refused ({why}). A refusal of "
                    f"a retry does not undo an earlier attempt, so {them} may or may not exist. {_RERUN_COMMIT}")
        else:
            text = (f"The commit's outcome is unknown: {_clause(exc)}. {them[0].upper()}{them[1:]} may or may not exist. "
                    f"{_RERUN_COMMIT}")
        return Outcome(RowStatus.UNKNOWN, _join(note, text), commit_reached=True)
    if exc.not_sent:
        # Never reached Flexybox: not a refusal, nothing to correct. The row simply is not finished.
        return Outcome(RowStatus.PENDING, f"Not sent: {_unreachable(step, exc)}. Nothing was issued for this row; "
                       "rerun (flexybulk retry on the result sheet) when Flexybox can be reached.", unreachable=True)
    if exc.outcome_unknown and not _refused(exc):
        # The customer or sales order PUT may or may not have been saved, but no commit was ever sent for this
        # row, so no gift certificate can exist: the row is simply not finished (PENDING), never UNKNOWN.
        return Outcome(RowStatus.PENDING, (
            f"Not finished: the call to {_WHAT.get(step, step)} got no clear answer: {_detail(exc)}. Nothing can have "
            "been issued: no commit was sent for this row. Rerun (flexybulk retry on the result sheet) to finish it "
            "with the same ids."))
    # A definite refusal of a call that cannot have issued anything (a customer or sales order PUT, or a
    # commit none of whose attempts may have gone through).
    refused = (describe_refusal or _PLAIN_WORDS)(step, exc, sent if sent is not None else content)
    return Outcome(RowStatus.FAILED, f"{refused.lead}. Nothing was issued for this row. {refused.fix}")


def _quantity(content: dict | None) -> int | None:
    try:
        return int(content["quantity"]) if content else None
    except (KeyError, TypeError, ValueError):
        return None


def _numbers_in(body: object) -> list[str]:
    """Certificate numbers in an error's answer: the order itself, or an order one level down (``{"Order": {...}}``)."""
    numbers = certificate_numbers(body)
    if not numbers and isinstance(body, dict):
        numbers = next((found for value in body.values() if (found := certificate_numbers(value))), [])
    return numbers


def _clause(exc: ApiError) -> str:
    """The error's text without its final period, to go inside a sentence (a server's message often ends with one)."""
    return clean_message(str(exc))


def _detail(exc: ApiError) -> str:
    """What went wrong, without the call's method and path (whose ids differ per row): ``"no answer within 60 s (gave up after 5 attempts)"``.

    Rows that met the same trouble then say it in the same words, and a face can show them once.
    """
    text = str(exc)
    path = urlsplit(exc.url).path if exc.url else None
    where = f"{exc.method} {path}" if exc.method and path else None
    if where and text.startswith(where):
        text = text[len(where):].lstrip(":").lstrip()
    return clean_message(text)


def _unreachable(step: str, exc: ApiError) -> str:
    """``"could not connect to crm.flexybox.com to save the customer"``: no ids, so that every such row reads alike."""
    host = urlsplit(exc.url).netloc if exc.url else ""
    return f"could not connect to {host or 'Flexybox'} to {_WHAT.get(step, step)}"


def _join(note: str | None, text: str) -> str:
    return f"{note} {text}" if note else text
