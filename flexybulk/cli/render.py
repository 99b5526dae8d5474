"""How the command line shows the library's data: the read, the dry run, the plan, a run's outcome, a status.

Pure presentation over :mod:`flexybulk.batches`' dataclasses: each function
prints lines and, where a command ends, returns its exit code.
"""

from __future__ import annotations

from pathlib import Path

from ..batches import BatchStatus, Checked, Input, Outcome, Prepared, row_ranges, same_words
from ..errors import ExitCode, Interrupted
from ..model import RowStatus
from ..target import SANDBOX
from ..validate import Validation
from .base import echo, plural, warn


def show_input(source: Input, *, quiet: bool = False) -> None:
    """``Read kampagne.xlsx, sheet 'X' (XLSX): 25 rows.``, the reader's notes, and its warnings on stderr."""
    sheet = source.sheet
    if not quiet:
        echo(f"Read {sheet.where()} ({sheet.format.upper()}): {plural(len(sheet.rows), 'row')}.")
        for note in sheet.notes:
            echo(f"  {note}")
    for w in sheet.warnings + sheet.list_end:
        warn(w)


def show_validation(validation: Validation, *, limit: int = 200, quiet: bool = False) -> None:
    """Counts and totals per type and department on stdout (not with ``quiet``); every problem (up to ``limit``) on stderr."""
    if not quiet:
        totals = validation.totals()
        rows = len(validation.checks) - len(validation.excluded)
        echo(f"Valid rows: {len(validation.valid):,} of {rows:,} · gift certificates: {totals.certificates:,} · total: {totals.money()}")
        for line in validation.sheet.exclusions():  # the person's selection (issue #12)
            echo(f"{line[0].upper()}{line[1:]} (--include-hidden reads {'them' if line.startswith('rows') else 'it'}).")
        for title, key in (("gift certificate type", lambda o: o.type.name), ("department", lambda o: o.department.name)):
            groups = validation.by(key)
            if groups:
                echo(f"By {title}:")
                width = max(len(k) for k in groups)
                for name, t in groups.items():
                    # The numbers right-aligned, their words left-aligned: "1 row" and "2 rows" keep the digits in one column.
                    echo(f"  {name:<{width}}  {t.rows:>7,} {_word(t.rows, 'row'):<4}  {t.certificates:>7,} "
                         f"{_word(t.certificates, 'certificate'):<12}  {t.money():>18}")
    problems = validation.messages()
    if problems:
        echo(f"{plural(len(validation.invalid), 'invalid row')}, {plural(len(problems), 'problem')}:", err=True)
        for line in problems[:limit]:
            echo(f"  {line}", err=True)
        if len(problems) > limit:
            echo(f"  … and {len(problems) - limit:,} more: see the Error column of the output sheet.", err=True)
    show_warnings(validation, limit=limit)


def show_warnings(validation: Validation, *, limit: int = 200) -> None:
    """The validation's warnings (repeats within the file) on stderr."""
    for line in validation.warning_messages()[:limit]:
        warn(line)


def _word(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _them(n: int) -> str:
    return "it" if n == 1 else "them"


def show_known(checked: Checked, *, limit: int = 200) -> None:
    """What the ledger says an issue would do with rows other than sending them (the dry run's truth, issue #11)."""
    if not checked.ledger_exists:
        if checked.ledger_named:  # a typo in --ledger or FLEXYBULK_LEDGER would otherwise pass unnoticed
            warn(f"the ledger {checked.ledger} (named by --ledger or FLEXYBULK_LEDGER) does not exist, so the dry run "
                 "could not look for rows issued before. Check the path if you expected one.")
        else:
            echo(f"Ledger: {checked.ledger} (not created yet: nothing was issued with it)")
        return
    echo(f"Ledger: {checked.ledger}")
    known = checked.known
    if not known:
        return
    counts = {k: sum(1 for r in known.values() if r.action == k) for k in ("done", "skip", "near", "send")}
    skipped = counts["done"] + counts["skip"]
    parts = [f"{plural(skipped, 'row')} already issued (an issue would skip {_them(skipped)})"] if skipped else []
    if counts["near"]:
        parts.append(f"{plural(counts['near'], 'row')} resembling gift certificates already issued "
                     f"(an issue would ask about {_them(counts['near'])})")
    if counts["send"]:
        parts.append(f"{plural(counts['send'], 'row')} whose commit may already have gone through (an issue settles "
                     f"{_them(counts['send'])} with the recorded ids)")
    echo("The ledger knows " + "; ".join(parts) + ":")
    for n, r in list(known.items())[:limit]:
        echo(f"  row {n}: {r.message}")  # each message says what an issue would do
    if len(known) > limit:
        echo(f"  … and {len(known) - limit:,} more: see the Warning column of the validation sheet.")
    send = checked.would_send()
    echo(f"An issue would send now: {plural(send.rows, 'row')}, {plural(send.certificates, 'gift certificate')}, "
         f"{send.money()}.")


def show_plan(prepared: Prepared) -> None:
    """The validation, the batch, the rows skipped or settled, and what is about to be issued."""
    plan = prepared.plan
    show_validation(prepared.validation)
    if prepared.adopted:
        echo(f"Adopted batch {plan.batch.id} from {prepared.input.path.name}: the ledger did not know it, so it was "
             "rebuilt from the sheet's ids; ISSUED rows are never sent again, the others finish with their own ids.")
    echo(f"Batch {plan.batch.id}" + (" (resumed)" if plan.resumed else ""))
    if prepared.already_issued:
        echo(f"Already issued in this batch: {plural(prepared.already_issued, 'row')} (skipped).")
    for r in prepared.issued_edited:  # the totals above are the sheet's; these lines' edits are not sent
        echo(f"  row {r.row_number}: {r.message}")
    for r in plan.duplicates:
        if r.action == "skip" and not r.edited:  # an edited one was said above
            echo(f"  row {r.row_number}: {r.message}")
    if prepared.skipped:
        echo(f"Issued by an earlier batch: {plural(len(prepared.skipped), 'row')} (skipped).")
    for r in prepared.settling:
        echo(f"  row {r.row_number}: {r.message}")
    if prepared.held:
        echo(f"Held back by --first: {plural(len(prepared.held), 'row')} (they stay PENDING; flexybulk retry sends them).")
    totals = prepared.totals
    echo(f"To issue now: {plural(len(prepared.orders), 'row')}, {plural(totals.certificates, 'gift certificate')}, {totals.money()}.")
    if prepared.in_doubt:  # counted above, yet perhaps issued already (a fresh user's find after kill -9)
        n = len(prepared.in_doubt)
        echo(f"  Of these, {plural(n, 'row')} (rows {row_ranges(prepared.in_doubt)}) had a commit sent before that "
             "nothing settled (an answer lost, a run killed): their gift certificates may exist already. They are "
             "settled with their own payment ids, which Flexybox does not take twice, so nothing is issued twice.")


def confirmation_question(prepared: Prepared) -> str:
    """``Issue 18 gift certificates worth 10,399.85 DKK for 6 rows on Flexybox at pos.flexybox.com?`` (or ``on the SANDBOX``).

    The target is named in words (``Target.label``) whichever it is, so that
    nobody issues real gift certificates believing it is a rehearsal (issue #13).
    """
    totals = prepared.totals
    return (f"Issue {plural(totals.certificates, 'gift certificate')} worth {totals.money()} for "
            f"{plural(len(prepared.orders), 'row')} on {prepared.target.label}?")


def _issued(totals) -> str:
    """``"6 rows, 18 gift certificates, 10,399.85 DKK"``, or ``"nothing"``."""
    if not totals.rows:
        return "nothing"
    return f"{plural(totals.rows, 'row')}, {plural(totals.certificates, 'gift certificate')}, {totals.money()}"


def show_rows(records: list, *, limit: int = 50, err: bool = True) -> None:
    """The rows that need attention, one line per row, or one line for rows that read alike.

    ``  row 5: FAILED: ...``; rows with the same status and words (Flexybox
    unreachable for seven rows) are said once, with their count and rows:
    ``  7 rows: PENDING: Not sent: ... (rows 2-8)`` (issue #13).
    """
    groups = same_words(records)
    for status, text, numbers in groups[:limit]:
        if len(numbers) == 1:
            echo(f"  row {numbers[0]}: {status.value}: {text}", err=err)
        else:
            echo(f"  {plural(len(numbers), 'row')}: {status.value}: {text} (rows {row_ranges(numbers)})", err=err)
    if len(groups) > limit:
        rest = sum(len(numbers) for _, _, numbers in groups[limit:])
        echo(f"  … and {plural(rest, 'more row')}: see the result sheet.", err=err)


def show_outcome(outcome: Outcome, *, quiet: bool = False) -> int:
    """What a run issued, what is left and how to finish it; returns the exit code.

    With ``quiet``, stdout gets one final line (what was issued and the result
    sheet); the rows needing attention and how to finish still go to stderr.

    Raises:
        FlexybulkError: the error that stopped the run (a refused token); Interrupted after Ctrl-C.
    """
    out = outcome.output
    now, in_all = outcome.issued_now, outcome.issued_in_all
    if quiet:
        _show_attention(outcome)
        echo(f"Issued now: {_issued(now)}. Result sheet: {out}")
        return _finish(outcome)
    echo(f"Issued now: {_issued(now)}.")
    unnumbered = [n for n, st in outcome.sent.items() if st == RowStatus.ISSUED and n in outcome.records
                  and not outcome.records[n].certificate_numbers]
    if unnumbered:
        echo(f"Issued without certificate numbers: {plural(len(unnumbered), 'row')} (Flexybox's answer listed none); "
             "look them up in Flexybox under the sales order ids in the result sheet.")
    if outcome.earlier:
        echo(f"Settled: {_issued(outcome.settled_earlier)}, issued by an earlier run whose commit had gone through "
             "(Flexybox said so); nothing new was issued for them.")
    if outcome.already:
        echo(f"Already issued in Flexybox by another ledger or laptop (same file, same ids): {plural(len(outcome.already), 'row')}; "
             "nothing new was issued for them.")
    if in_all.rows != now.rows:
        echo(f"Issued in this batch in all: {_issued(in_all)}.")
    echo(f"Batch: {outcome.prepared.batch.id}")
    counts = outcome.counts
    other = ", ".join(f"{s.value}: {n:,}" for s, n in sorted(counts.items(), key=lambda kv: kv[0].value) if s != RowStatus.ISSUED)
    if other:
        echo(f"Not issued: {other}.")
    echo(f"Result sheet: {out}")
    _show_attention(outcome)
    return _finish(outcome)


def shell_path(path: Path) -> str:
    """A path as it can be pasted into a shell (quoted when it has spaces: ``'kampagne (2).result.xlsx'``)."""
    import shlex

    return shlex.quote(str(path))


def _show_attention(outcome: Outcome) -> None:
    out = outcome.output
    source = shell_path(Path(outcome.prepared.batch.input_path))
    for r in outcome.absent:
        # The sheet just written lacks the line too: the input file is where the row still is (a fresh user's find).
        echo(f"  input row {r.row_number}: {r.status.value} in the ledger, but not in this sheet, so it was not retried. "
             f"To finish it, run flexybulk issue {source} (correct the row there first if Flexybox refused it; rows "
             f"already issued are never sent again), or see: flexybulk status {shell_path(out)}", err=True)
    show_rows(outcome.attention)


def _finish(outcome: Outcome) -> int:
    out = outcome.output
    if outcome.fatal is not None:
        raise outcome.fatal
    if outcome.interrupted:
        raise Interrupted(f"Interrupted. The rows not yet sent are PENDING in {out}; run: flexybulk retry {shell_path(out)}")
    if outcome.attention:  # rows only the ledger still has were told their own way (_show_attention)
        echo(f"To finish: flexybulk retry {shell_path(out)}", err=True)
    return ExitCode.ROWS_FAILED if outcome.attention or outcome.absent or outcome.invalid else ExitCode.OK


def show_status(status: BatchStatus, file_name: str) -> int:
    """A batch's counts, money issued and the rows needing attention; returns the exit code."""
    batch = status.batch
    if not status.exists:
        echo(f"The ledger {status.ledger} does not exist, so it has no batch for {file_name}: nothing was issued with it. "
             "If you expected one, check --ledger (or FLEXYBULK_LEDGER).")
        return ExitCode.OK
    if batch is None:
        echo(f"The ledger {status.ledger} has no batch for {file_name}. Nothing was issued from it with this ledger.")
        return ExitCode.OK
    rows = status.rows
    echo(f"Ledger: {status.ledger}")
    echo(f"Batch {batch.id} · {batch.input_path} · target {batch.target}")
    echo(f"Created {batch.created_at} by {batch.os_user or 'unknown user'}; last change {batch.updated_at}.")
    echo("Rows: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(status.counts.items())) + f" (of {len(rows):,}).")
    issued = status.issued
    echo(f"Issued: {plural(issued.certificates, 'gift certificate')}, {issued.money()}.")
    attention = status.attention
    if attention:
        echo(f"Needing attention: {plural(len(attention), 'row')}")
        show_rows(attention, limit=100, err=False)
        command, path = status.finishing_file()
        echo(f"To finish: flexybulk {command} {shell_path(path)}" + (" --sandbox" if batch.target == SANDBOX else ""))
        return ExitCode.ROWS_FAILED
    echo("No rows need attention.")
    return ExitCode.OK


def show_history(statuses: list[BatchStatus]) -> None:
    """One line per batch: when, who, file, target, counts and money issued."""
    if not statuses:
        echo("The ledger has no batches yet.")
        return
    for s in statuses:
        b = s.batch
        counts = ", ".join(f"{k}: {v:,}" for k, v in sorted(s.counts.items()))
        echo(f"{b.created_at[:16].replace('T', ' ')}  {b.id}  {b.os_user or '?'}  {Path(b.input_path).name}  "
             f"{b.target}  {counts}  issued {s.issued.money()}")

