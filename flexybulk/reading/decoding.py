"""A text file's bytes to text: which encoding, said out loud (pitfalls P3, P4; issue #12).

Strict decoding only, never ``errors="replace"``/``"ignore"``: a byte-order
mark (UTF-8/16/32), else UTF-8, else a legacy 8-bit code page. Of those,
Windows-1252 (Danish Excel's "CSV (semikolonsepareret)") unless the bytes are
plainly a Mac's: Excel for Mac's "CSV (Macintosh)" is Mac Roman with CR line
ends, and its æ, ø, å (0xBE, 0xBF, 0x8C) read as Windows-1252 are ``¾ ¿ Œ``
inside words (``S¿ren Kj¾r``). Mac Roman is chosen when its reading gives
only plausible letters where Windows-1252 gives symbols inside words (or
cannot decode at all), or the line ends are CR only; ``--encoding`` overrides.
charset-normalizer was not used: on a short Danish list it cannot tell these
two code pages apart any better than these two rules, and the rules say why.

When the text still shows signs of a wrong decode (a symbol between two
letters), ``_decode_doubt`` words a hint naming ``--encoding`` for the
messages about headers that do not match.
"""

from __future__ import annotations

import codecs

from flexybulk.errors import ConfigError, InputFileError

_SAMPLE = 256 * 1024  # characters judged; a wrong decode shows in the first lines
_PLAUSIBLE = set("æøåäöüéÆØÅÄÖÜÉ")  # the letters of Danish, Norwegian, Swedish and German names
_TYPOGRAPHIC = set("‘’“”–—«»…·°§½€£")  # fine between letters (O’Brien, 1–2)
_LABELS = {"utf-8": "UTF-8", "cp1252": "Windows-1252", "mac_roman": "Mac Roman", "utf-16": "UTF-16",
           "utf-32": "UTF-32", "utf-8-sig": "UTF-8 (with BOM)", "latin-1": "Latin-1", "iso8859-1": "Latin-1"}


def _label(codec: str) -> str:
    return _LABELS.get(codecs.lookup(codec).name, codec)


def _judge(text: str) -> tuple[int, int]:
    """``(plausible, odd)`` non-ASCII characters in the start of ``text``: the letters of Nordic and
    German names count as plausible; a symbol between two letters, or a capital letter inside a
    word of small letters (``SÅren``), as odd. Other letters count as neither."""
    good = bad = 0
    sample = text[:_SAMPLE]
    if sample.isascii():
        return 0, 0
    for i, ch in enumerate(sample):
        if ch < "\x80":
            continue
        before = sample[i - 1] if i else " "
        after = sample[i + 1] if i + 1 < len(sample) else " "
        if ch.isalpha():
            if ch.isupper() and before.isalpha() and (before.islower() or after.islower()):
                bad += 1
            elif ch in _PLAUSIBLE:
                good += 1
        elif ch not in _TYPOGRAPHIC and before.isalpha() and after.isalpha():
            bad += 1
    return good, bad


def _odd_word(text: str) -> tuple[str, int] | None:
    """The first word with a symbol between two letters (``Bel¿b``) and its line, or ``None``."""
    sample = text[:_SAMPLE]
    for i, ch in enumerate(sample):
        if ch >= "\x80" and not ch.isalpha() and ch not in _TYPOGRAPHIC and 0 < i < len(sample) - 1 \
                and sample[i - 1].isalpha() and sample[i + 1].isalpha():
            start, end = i, i + 1
            while start > 0 and not sample[start - 1].isspace() and sample[start - 1] not in ";,\t\"":
                start -= 1
            while end < len(sample) and not sample[end].isspace() and sample[end] not in ";,\t\"":
                end += 1
            return sample[start:end], sample.count("\n", 0, i) + 1
    return None


def _decode_doubt(text: str, codec: str) -> str | None:
    """A hint for header messages when ``text`` looks wrongly decoded, naming ``--encoding``; else ``None``."""
    odd = _odd_word(text)
    if odd is None:
        return None
    word, line = odd
    return (f"The text looks wrongly decoded ('{word}' on line {line}, read as {_label(codec)}): give the file's "
            "encoding with --encoding, e.g. --encoding mac-roman for a CSV saved by Excel for Mac, or --encoding cp850 "
            "for an old DOS program's")


def _decode(data: bytes, name: str, wanted: str | None = None) -> tuple[str, str, str]:
    """Strict UTF-8 (BOM or not), UTF-16/32 with a BOM, else Windows-1252 or Mac Roman (pitfalls P3, P4; issue #12).

    ``wanted`` is ``--encoding``: that codec alone, strictly. Returns
    ``(text, note, codec)``; CR-only line ends (a classic Mac's) become ``\\n``.

    Raises:
        ConfigError: ``wanted`` is no encoding Python knows.
        InputFileError: a NUL byte in the first KB (binary junk), or bytes that
            the encoding (or none of the candidates) can decode, naming the line.
    """
    if wanted:
        try:
            codec = codecs.lookup(wanted).name
        except LookupError:
            raise ConfigError(f"--encoding {wanted}: not an encoding Python knows. "
                              "Give one such as utf-8, cp1252, mac-roman or cp850.") from None
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + data[: exc.start].count(b"\r") * (b"\n" not in data) + 1
            raise InputFileError(
                f"{name} line {line}: the text is not {_label(codec)} (byte 0x{data[exc.start]:02X}, --encoding {wanted}) — "
                "give the file's real encoding, or save the list as 'CSV UTF-8'"
            ) from None
        return _line_ends(text), f"Read as {_label(codec)} (--encoding {wanted})", codec
    for bom, codec, label in (
        (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
        (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
        (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 (with BOM)"),
        (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
        (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
    ):
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                line = data[: exc.start].decode(codec, "replace").count("\n") + 1
                raise InputFileError(
                    f"{name} line {line}: the file says it is {label} but has bytes that are not — "
                    "save it again as 'CSV UTF-8' from Excel"
                ) from None
            nul = text.find("\x00", 0, 1024)
            if nul >= 0:
                raise InputFileError(_nul_message(name, text.count("\n", 0, nul) + 1))
            return text, f"Read as {label}", codec
    nul = data.find(b"\x00", 0, 1024)
    if nul >= 0:
        raise InputFileError(_nul_message(name, data.count(b"\n", 0, nul) + 1))
    try:
        return data.decode("utf-8"), "Read as UTF-8", "utf-8"
    except UnicodeDecodeError:
        pass
    mac = data.decode("mac_roman")  # every byte is a Mac Roman character
    try:
        windows: str | None = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        windows, failed = None, exc
    cr_only = b"\r" in data and b"\n" not in data
    mac_good, mac_bad = _judge(mac)
    if mac_good and not mac_bad and (cr_only or windows is None or _judge(windows)[1]):
        why = "its line ends are a Mac's (CR only)" if cr_only else "its æ, ø and å are a Mac's"
        return _line_ends(mac), f"Read as Mac Roman (the file is not UTF-8, and {why}; --encoding overrides)", "mac_roman"
    if windows is not None:
        return _line_ends(windows), "Read as Windows-1252 (the file is not UTF-8)", "cp1252"
    line = data.count(b"\n", 0, failed.start) + 1
    raise InputFileError(
        f"{name} line {line}: the text is neither UTF-8 nor Windows-1252 (byte 0x{data[failed.start]:02X}) — "
        "it may not be a text file. Save the list as 'CSV UTF-8' or .xlsx"
    ) from None


def _line_ends(text: str) -> str:
    """A classic Mac's CR-only line ends as ``\\n``, so lines count as everywhere else."""
    if "\r" in text and "\n" not in text:
        return text.replace("\r", "\n")
    return text


def _nul_message(name: str, line: int) -> str:
    if name.rstrip("'").lower().endswith((".xlsx", ".xlsm", ".xls", ".ods")):
        # Named as a workbook but neither a zip nor an OLE2 file: damaged, or not a spreadsheet at all.
        return (
            f"{name} is not a readable spreadsheet: it is neither an Excel/LibreOffice workbook nor a text file. "
            "Ask the sender for the file again, or open it in Excel or LibreOffice and save it as .xlsx"
        )
    return (
        f"{name} line {line}: contains a NUL byte — it is not a text/CSV file (or it is UTF-16 without "
        "a byte-order mark). Save the list as .xlsx or 'CSV UTF-8' and try again"
    )
