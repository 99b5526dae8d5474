"""The page's words in Danish and English, and which language a request gets.

The language is the ``lang`` cookie (set by the switch in the page's
header), else the browser's ``Accept-Language`` (Danish when it prefers
``da`` to ``en``), else English. Only the page's own words are translated:
the sheets' column names, the values in them and the library's messages
about rows stay as they are (they name the sheet's own headers).
"""

from __future__ import annotations

LANGUAGES = ("da", "en")
LANG_COOKIE = "flexybulk_lang"

TEXTS: dict[str, tuple[str, str]] = {
    # key: (Danish, English)
    "app_name": ("Gavekort i bulk", "Gift certificates in bulk"),
    "skip_to_content": ("Spring til indholdet", "Skip to content"),
    "nav_upload": ("Upload", "Upload"),
    "nav_history": ("Historik", "History"),
    "logout": ("Log ud", "Log out"),
    "signed_in_as": ("Logget ind som", "Signed in as"),
    "target_sandbox": ("SANDKASSE — intet rigtigt gavekort udstedes", "SANDBOX — no real gift certificate is issued"),
    "target_real": ("Rigtig Flexybox", "Real Flexybox"),
    "step_upload": ("1. Upload", "1. Upload"),
    "step_check": ("2. Tjek", "2. Check"),
    "step_confirm": ("3. Bekræft", "3. Confirm"),
    "step_progress": ("4. Udstedelse", "4. Issuing"),
    "step_result": ("5. Resultat", "5. Result"),
    # upload
    "upload_title": ("Upload et regneark med modtagere", "Upload a sheet of recipients"),
    "upload_help": ("Træk filen hertil, eller vælg den. Excel (XLSX, XLSM, XLSB, XLS), OpenOffice/LibreOffice (ODS) eller CSV.",
                    "Drag the file here, or choose it. Excel (XLSX, XLSM, XLSB, XLS), OpenOffice/LibreOffice (ODS) or CSV."),
    "choose_file": ("Vælg fil", "Choose file"),
    "upload_button": ("Upload og tjek", "Upload and check"),
    "upload_limit": ("Højst {size} og {rows} rækker.", "At most {size} and {rows} rows."),
    "too_large": ("Filen er for stor: {size}. Grænsen er {limit}. Del den i mindre filer.",
                  "The file is too large: {size}. The limit is {limit}. Split it into smaller files."),
    "template_title": ("Skabelon", "Template"),
    "template_help": ("Et tomt ark med de rigtige kolonner og rullelister over gavekorttyper og afdelinger fra Flexybox.",
                      "An empty sheet with the right columns and dropdowns of the gift certificate types and departments from Flexybox."),
    "template_da": ("Hent skabelon (dansk)", "Download template (Danish)"),
    "template_en": ("Hent skabelon (engelsk)", "Download template (English)"),
    "recent_uploads": ("Dine seneste uploads", "Your recent uploads"),
    "no_uploads": ("Ingen endnu.", "None yet."),
    # check
    "check_title": ("Tjek", "Check"),
    "file": ("Fil", "File"),
    "sheet": ("Ark", "Sheet"),
    "header_row": ("Overskriftsrække", "Header row"),
    "rows": ("Rækker", "Rows"),
    "valid_rows": ("Gyldige", "Valid"),
    "invalid_rows": ("Med fejl", "With problems"),
    "certificates": ("Antal gavekort", "Gift certificates"),
    "rows_n": ("{n} rækker", "{n} rows"), "rows_n_1": ("1 række", "1 row"),
    "certs_n": ("{n} gavekort", "{n} gift certificates"), "certs_n_1": ("1 gavekort", "1 gift certificate"),
    "total": ("Beløb", "Total"),
    "per_currency": ("Pr. valuta", "Per currency"),
    "per_type": ("Pr. gavekorttype", "Per gift certificate type"),
    "per_department": ("Pr. afdeling", "Per department"),
    "all_valid": ("Alle rækker er gyldige. Intet er udstedt endnu.", "All rows are valid. Nothing has been issued yet."),
    "would_send": ("Alle rækker er gyldige. En udstedelse sender {rows}: {certs} for {money}. Intet er udstedt endnu.",
                   "All rows are valid. An issue would send {rows}: {certs} for {money}. Nothing has been issued yet."),
    "would_send_nothing": ("En udstedelse sender intet: alle gyldige rækker er allerede udstedt. Intet er udstedt nu.",
                           "An issue would send nothing: every valid row is issued already. Nothing was issued now."),
    "known_done": ("{n} rækker er allerede udstedt (batch {batches}): en udstedelse sender intet for dem.",
                   "{n} rows were already issued (batch {batches}): an issue sends nothing for them."),
    "known_done_1": ("1 række er allerede udstedt (batch {batches}): en udstedelse sender intet for den.",
                     "1 row was already issued (batch {batches}): an issue sends nothing for it."),
    "known_skip": ("{n} rækker blev udstedt af en tidligere batch ({batches}): de sendes ikke igen.",
                   "{n} rows were issued by an earlier batch ({batches}): they are not sent again."),
    "known_skip_1": ("1 række blev udstedt af en tidligere batch ({batches}): den sendes ikke igen.",
                     "1 row was issued by an earlier batch ({batches}): it is not sent again."),
    "known_near": ("{n} rækker ligner gavekort, som samme e-mail allerede har fået ({batches}): de sendes kun, hvis du "
                   "vælger dem ved bekræftelsen.",
                   "{n} rows look like gift certificates the same email already received ({batches}): they are sent only "
                   "if you choose them at the confirmation."),
    "known_near_1": ("1 række ligner et gavekort, som samme e-mail allerede har fået ({batches}): den sendes kun, hvis du "
                     "vælger den ved bekræftelsen.",
                     "1 row looks like a gift certificate the same email already received ({batches}): it is sent only "
                     "if you choose it at the confirmation."),
    "known_settling": ("{n} rækker afslutter en tidligere batchs ufærdige række med dens egne id'er ({batches}).",
                       "{n} rows finish an earlier batch's unfinished row with that row's own ids ({batches})."),
    "known_settling_1": ("1 række afslutter en tidligere batchs ufærdige række med dens egne id'er ({batches}).",
                         "1 row finishes an earlier batch's unfinished row with that row's own ids ({batches})."),
    "first_problem": ("Gå til første fejl (række {row}, {column})", "Go to the first problem (row {row}, {column})"),
    "one_invalid": ("1 række har fejl. Ret den herunder — klik på den røde celle.",
                    "1 row has problems. Fix it below — click the red cell."),
    "some_invalid": ("{n} rækker har fejl. Ret dem herunder — klik på en rød celle.",
                     "{n} rows have problems. Fix them below — click a red cell."),
    "only_problems": ("Kun rækker med fejl", "Only rows with problems"),
    "all_rows": ("Alle rækker", "All rows"),
    "page_of": ("Side {page} af {pages}", "Page {page} of {pages}"),
    "previous": ("Forrige", "Previous"),
    "next": ("Næste", "Next"),
    "row": ("Række", "Row"),
    "status": ("Status", "Status"),
    "warnings": ("Advarsler", "Warnings"),
    "notes": ("Noter", "Notes"),
    "download_validation": ("Hent tjek-arket (XLSX)", "Download the validation sheet (XLSX)"),
    "go_confirm": ("Videre til bekræftelse", "Go on to confirm"),
    "fix_title": ("Ret celle {cell}", "Fix cell {cell}"),
    "fix_apply": ("Ret og tjek igen", "Fix and check again"),
    "did_you_mean": ("Mente du '{name}'?", "Did you mean '{name}'?"),
    "use_suggestion": ("Brug '{name}'", "Use '{name}'"),
    "cancel": ("Annuller", "Cancel"),
    "fixed_cells": ("{n} celler rettet her på siden (filen selv er uændret).", "{n} cells fixed on this page (the file itself is unchanged)."),
    "fixed_cells_1": ("1 celle rettet her på siden (filen selv er uændret).", "1 cell fixed on this page (the file itself is unchanged)."),
    "fixed_was": ("rettet her · før: {before}", "fixed here · was: {before}"),
    "retry_fixed_cells": ("{n} celler rettet til Prøv igen.", "{n} cells fixed for the retry."),
    "retry_fixed_cells_1": ("1 celle rettet til Prøv igen.", "1 cell fixed for the retry."),
    "mapping_title": ("Kolonner", "Columns"),
    "mapping_help": ("Hvilken kolonne er hvad. En kolonne du vælger selv, huskes til næste fil med de samme overskrifter.",
                     "Which column is what. A column you choose yourself is remembered for the next file with the same headers."),
    "not_used": ("(bruges ikke)", "(not used)"),
    "automatic": ("Automatisk: {found}", "Automatic: {found}"),
    "automatic_detected": ("Automatisk (genkendes)", "Automatic (detected)"),
    "field_name": ("Navn", "Name"), "field_first_name": ("Fornavn", "First name"), "field_last_name": ("Efternavn", "Last name"),
    "field_email": ("E-mail", "Email"), "field_type": ("Gavekorttype", "Gift certificate type"),
    "field_amount": ("Beløb pr. gavekort", "Amount per gift certificate"), "field_quantity": ("Antal", "Quantity"),
    "field_department": ("Afdeling", "Department"), "field_phone": ("Telefon", "Phone"), "field_address": ("Adresse", "Address"),
    "field_postal_code": ("Postnummer", "Postal code"), "field_city": ("By", "City"), "field_country": ("Land", "Country"),
    "field_currency": ("Valuta", "Currency"),
    "apply_mapping": ("Brug disse kolonner", "Use these columns"),
    "encoding": ("Tegnsæt (kun CSV)", "Text encoding (CSV only)"),
    "include_hidden": ("Udsted også skjulte og bortfiltrerede rækker", "Issue hidden and filtered-out rows too"),
    "default_department": ("Afdeling til rækker uden afdeling", "Department for rows without one"),
    "none": ("(ingen)", "(none)"),
    "choose_sheet": ("Vælg arket med modtagerne", "Choose the sheet with the recipients"),
    "use_sheet": ("Brug dette ark", "Use this sheet"),
    "read_error": ("Filen kunne ikke læses", "The file could not be read"),
    "ledger_status": ("Allerede i bogføringen", "Already in the ledger"),
    # confirm
    "confirm_title": ("Bekræft udstedelsen", "Confirm the issue"),
    "preparing": ("Gør batchen klar…", "Preparing the batch…"),
    "waiting_queue": ("Venter på at en anden batch bliver færdig først.", "Waiting for another batch to finish first."),
    "will_issue_on": ("Udsteder på", "Issues on"),
    "the_sandbox": ("SANDKASSEN (den indbyggede prøve-Flexybox)", "the SANDBOX (the built-in practice Flexybox)"),
    "real_flexybox": ("den rigtige Flexybox på {host}", "the real Flexybox at {host}"),
    "to_send": ("Rækker der sendes", "Rows to send"),
    "already_issued": ("Allerede udstedt i denne batch (sendes ikke igen)", "Already issued in this batch (not sent again)"),
    "issued_edited": ("Udstedt, men linjen er ændret siden (ændringerne sendes ikke)",
                      "Issued, but the line was edited since (the edits are not sent)"),
    "skipped_earlier": ("Udstedt af en tidligere batch — sendes ikke igen", "Issued by an earlier batch — not sent again"),
    "near_title": ("{n} rækker ligner gavekort, som samme e-mail allerede har fået (samme type, andet beløb eller antal)",
                   "{n} rows look like gift certificates the same email already received (same type, other amount or quantity)"),
    "near_title_1": ("1 række ligner et gavekort, som samme e-mail allerede har fået (samme type, andet beløb eller antal)",
                     "1 row looks like a gift certificate the same email already received (same type, other amount or quantity)"),
    "near_confirm": ("Jeg har set de {n} rækker ovenfor og vil udstede dem med de andre (skal vælges for at udstede)",
                     "I have looked at the {n} rows above and mean to issue them with the rest (required to issue)"),
    "near_confirm_1": ("Jeg har set rækken ovenfor og vil udstede den med de andre (skal vælges for at udstede)",
                       "I have looked at the row above and mean to issue it with the rest (required to issue)"),
    "near_help": ("Tallene og knappen nedenfor omfatter disse rækker. Hører de ikke med, så fjern dem fra arket og upload det igen.",
                  "The figures and the button below include these rows. If they do not belong, delete them from the sheet and upload it again."),
    "near_included": ("(med {n} lignende rækker)", "(including {n} near-duplicate rows)"),
    "near_included_1": ("(med 1 lignende række)", "(including 1 near-duplicate row)"),
    "settling": ("Afslutter en tidligere batchs række med dens egne id'er", "Finishes an earlier batch's row with its own ids"),
    "blocked": ("{n} rækker har fejl, så intet kan udstedes endnu.", "{n} rows have problems, so nothing can be issued yet."),
    "skip_invalid": ("Udsted kun de gyldige rækker (rækker med fejl springes over)", "Issue only the valid rows (rows with problems are skipped)"),
    "issue_button": ("Udsted {certs} for {money}", "Issue {certs} for {money}"),
    "nothing_to_send": ("Der er intet at sende: alle rækker er allerede udstedt.", "There is nothing to send: every row is issued already."),
    "needs_approval": ("Over {limit} skal en anden person med godkender-rollen godkende, før batchen kan starte.",
                       "Above {limit} another person with the approver role must approve before the batch can start."),
    "ask_approval": ("Bed om godkendelse", "Ask for approval"),
    "awaiting_approval": ("Venter på godkendelse: en anden person med godkender-rollen skal godkende, før batchen starter.",
                          "Waiting for approval: another person with the approver role must approve before the batch starts."),
    "awaiting_your_approval": ("{who} beder om din godkendelse af {money}. Se tallene igennem, og godkend.",
                               "{who} asks for your approval of {money}. Look through the figures, then approve."),
    "awaiting_approval_other": ("Venter på godkendelse af en godkender (bedt om af {who}).",
                                "Waiting for approval by a person with the approver role (asked by {who})."),
    "only_owner_issues": ("Kun {owner}, der uploadede arket, kan udstede det.", "Only {owner}, who uploaded the sheet, can issue it."),
    "awaiting_yours": ("Venter på din godkendelse", "Awaiting your approval"),
    "approver_only": ("Du har rollen godkender: du ser og godkender andres batches. Upload kræver rollen uploader.",
                      "You have the approver role: you look at and approve other people's batches. Uploading needs the uploader role."),
    "none_awaiting": ("Ingen batches venter på godkendelse.", "No batches await approval."),
    "look_and_approve": ("Se og godkend", "Look and approve"),
    "approve_button": ("Godkend og udsted", "Approve and issue"),
    "cannot_approve_own": ("Du kan ikke godkende din egen batch.", "You cannot approve your own batch."),
    "changed": ("Noget er ændret siden du bekræftede. Se tallene igen.", "Something changed since you confirmed. Look at the figures again."),
    "back_to_check": ("Tilbage til tjek", "Back to the check"),
    "back_to_result": ("Tilbage til resultatet", "Back to the result"),
    "retry_title": ("Send de rækker der mangler igen", "Send the rows that need attention again"),
    # progress / result
    "progress_title": ("Udstedelse", "Issuing"),
    "queued": ("I kø: {n} batches er foran denne.", "In the queue: {n} batches are ahead of this one."),
    "queued_1": ("I kø: 1 batch er foran denne.", "In the queue: 1 batch is ahead of this one."),
    "running": ("Udsteder…", "Issuing…"),
    "starting": ("Starter…", "Starting…"),
    "rate": ("{rate} rækker/s", "{rate} rows/s"),
    "eta": ("ca. {eta} tilbage", "about {eta} left"),
    "stop_button": ("Stop", "Stop"),
    "stop_help": ("Rækker der er i gang, bliver færdige; resten venter (PENDING).", "Rows in flight finish; the rest wait (PENDING)."),
    "stopping": ("Stopper… rækker der er i gang, bliver færdige.", "Stopping… rows in flight finish."),
    "interrupted": ("Afbrudt: serveren stoppede under udstedelsen. Intet er tabt: fortsæt med de samme id'er.",
                    "Interrupted: the server stopped while issuing. Nothing is lost: go on with the same ids."),
    "lost_contact": ("Siden har mistet forbindelsen til serveren siden {time}: tallene nedenfor er fra da. Intet er tabt: "
                     "hver række står i loggen. Siden fortsætter selv, når serveren kører igen.",
                     "This page lost contact with the server at {time}: the figures below are from then. Nothing is "
                     "lost: every row is in the ledger. The page carries on by itself when the server runs again."),
    "resume_button": ("Fortsæt", "Resume"),
    "resume_help": ("Fortsæt går videre med de samme id'er: rækker der er udstedt, sendes ikke igen, og rækker i tvivl afsluttes som først sendt.",
                    "Resume goes on with the same ids: rows already issued are not sent again, rows in doubt are settled as first sent."),
    "resume_help_stopped": ("Fortsæt sender de {n} ventende rækker med deres egne id'er; intet udstedt sendes igen. Vil du rette en celle først, så ret den nedenfor: knappen bliver så til Prøv igen.",
                            "Resume sends the {n} waiting rows with their recorded ids; nothing already issued is sent again. To change a cell first, fix it below: the button then becomes Retry."),
    "resume_help_stopped_1": ("Fortsæt sender den ventende række med dens egne id'er; intet udstedt sendes igen. Vil du rette en celle først, så ret den nedenfor: knappen bliver så til Prøv igen.",
                              "Resume sends the waiting row with its recorded ids; nothing already issued is sent again. To change a cell first, fix it below: the button then becomes Retry."),
    "retry_help": ("Prøv igen sender de {n} rækker igen, når du har bekræftet tallene, hver med sine egne id'er, så intet udstedes to gange.",
                   "Retry sends these {n} rows again once you confirm the figures, each with its own recorded ids, so nothing is issued twice."),
    "retry_help_1": ("Prøv igen sender rækken igen, når du har bekræftet tallene, med dens egne id'er, så intet udstedes to gange.",
                     "Retry sends this row again once you confirm the figures, with its own recorded ids, so nothing is issued twice."),
    "retry_invalid_stay": ("{n} ugyldige rækker sendes ikke, før du retter dem.", "{n} invalid rows are not sent until you fix them."),
    "retry_invalid_stay_1": ("1 ugyldig række sendes ikke, før du retter den.", "1 invalid row is not sent until you fix it."),
    "retry_fix_first": ("Ret cellerne i de ugyldige rækker nedenfor (klik på en celle), og tryk så Prøv igen: rækker der stadig er ugyldige, sendes ikke.",
                        "Fix the cells of the invalid rows below (click a cell), then press Retry: rows that are still invalid are not sent."),
    "result_title": ("Resultat", "Result"),
    "issued_none": ("Udstedt: intet endnu.", "Issued: nothing yet."),
    "finished_ok": ("Færdig. Alle rækker er udstedt.", "Finished. Every row is issued."),
    "finished_attention_1": ("Færdig, men 1 række kræver opmærksomhed.", "Finished, but 1 row needs attention."),
    "finished_attention": ("Færdig, men {n} rækker kræver opmærksomhed.", "Finished, but {n} rows need attention."),
    "stopped": ("Stoppet. {n} rækker venter.", "Stopped. {n} rows are waiting."),
    "stopped_1": ("Stoppet. 1 række venter.", "Stopped. 1 row is waiting."),
    "issued_money": ("Udstedt", "Issued"),
    "download_result": ("Hent resultat-arket (XLSX)", "Download the result sheet (XLSX)"),
    "in_doubt": ("Heraf havde {n} rækker (rækkerne {rows}) et commit sendt før, som intet svar afgjorde: deres gavekort findes måske allerede. De afsluttes med deres egne betalings-id'er, som Flexybox ikke tager to gange, så intet udstedes to gange.",
                 "Of these, {n} rows (rows {rows}) had a commit sent before that nothing settled: their gift certificates may exist already. They are settled with their own payment ids, which Flexybox does not take twice, so nothing is issued twice."),
    "in_doubt_1": ("Heraf havde 1 række (række {rows}) et commit sendt før, som intet svar afgjorde: dens gavekort findes måske allerede. Den afsluttes med sit eget betalings-id, som Flexybox ikke tager to gange, så intet udstedes to gange.",
                   "Of these, 1 row (row {rows}) had a commit sent before that nothing settled: its gift certificates may exist already. It is settled with its own payment id, which Flexybox does not take twice, so nothing is issued twice."),
    "more_waiting": ("… og {n} rækker mere, der ikke er sendt endnu (rækkerne {rows}): de sendes, som de står.",
                     "… and {n} more rows not sent yet (rows {rows}): they are sent as they are."),
    "more_waiting_1": ("… og 1 række mere, der ikke er sendt endnu (række {rows}): den sendes, som den står.",
                       "… and 1 more row not sent yet (row {rows}): it is sent as it is."),
    "attention_title": ("Rækker der kræver opmærksomhed", "Rows that need attention"),
    "attention_help": ("Ret en celle hvis det er nødvendigt (f.eks. en forkert e-mail): klik på den.",
                       "Fix a cell if needed (a misspelt email, say): click it."),
    "retry_button": ("Prøv igen", "Retry"),
    "error": ("Fejl", "Error"),
    "waiting_ledger": ("Venter på bogføringen: {message}", "Waiting for the ledger: {message}"),
    # history
    "history_title": ("Historik", "History"),
    "search": ("Søg", "Search"),
    "search_help": ("fil, person, status eller batch-id", "file, person, status or batch id"),
    "when": ("Hvornår (UTC)", "When (UTC)"),
    "who": ("Hvem", "Who"),
    "target": ("Mål", "Target"),
    "counts": ("Rækker", "Rows"),
    "issued": ("Udstedt", "Issued"),
    "open": ("Åbn", "Open"),
    "result_sheet": ("Resultat-ark", "Result sheet"),
    "no_batches": ("Ingen batches endnu.", "No batches yet."),
    "unfinished": ("Ikke færdig", "Unfinished"),
    "complete": ("Færdig", "Complete"),
    "awaiting_list": ("Venter på godkendelse", "Awaiting approval"),
    # login
    "login_title": ("Log ind", "Log in"),
    "user_name": ("Brugernavn", "User name"),
    "password": ("Adgangskode", "Password"),
    "login_button": ("Log ind", "Log in"),
    "login_failed": ("Forkert brugernavn eller adgangskode.", "Wrong user name or password."),
    "login_locked": ("For mange forkerte forsøg. Vent {seconds} sekunder, og prøv igen.",
                     "Too many wrong attempts. Wait {seconds} seconds, then try again."),
    "need_uploader": ("upload, rettelser og udstedelse kræver rollen uploader (du kan se og godkende).",
                      "uploading, fixing and issuing need the uploader role (you may look and approve)."),
    "not_own": ("kun {owner}, der uploadede den, eller en admin kan ændre eller udstede denne upload.",
                "only {owner}, who uploaded it, or an admin can change or issue this upload."),
    "not_allowed": ("Det må du ikke: {why}", "You may not do that: {why}"),
    "not_found": ("Findes ikke (måske slettet efter opbevaringstiden).", "Not found (perhaps deleted after the keeping time)."),
    "language": ("Sprog", "Language"),
}


def choose(cookie: str | None, accept_language: str | None) -> str:
    """``"da"`` or ``"en"``: the cookie's choice, else the browser's first preference of the two, else English."""
    if cookie in LANGUAGES:
        return cookie
    best, best_q = "en", -1.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        if lang not in LANGUAGES:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        q -= position * 1e-6  # equal weights: the first listed wins
        if q > best_q:
            best, best_q = lang, q
    return best


def translator(lang: str):
    """``t(key, **values)``: the text in ``lang`` with ``{name}`` places filled in (the key itself if unknown).

    ``t.n(key, count, **values)`` says a count: the key's ``_1`` form for one (``"1 row"``), else the key with
    ``{n}`` as the count written in the language's way (``50,000`` / ``50.000``).
    """
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 1

    def t(key: str, **values: object) -> str:
        pair = TEXTS.get(key)
        text = pair[index] if pair else key
        return text.format(**values) if values else text

    def n(key: str, count: int, **values: object) -> str:
        written = f"{count:,}".replace(",", "." if lang == "da" else ",")
        return t(key + "_1" if count == 1 and key + "_1" in TEXTS else key, n=written, **values)

    t.n = n  # type: ignore[attr-defined]
    return t
