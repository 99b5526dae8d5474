"""What a file really is, and whether it is safe to open: size limits, magic bytes, zip bombs, macros,
passwords (issue #6, pitfalls P16).

The format is decided by content, never by name: a zip archive is an XLSX
or an ODS workbook by its parts, an OLE2 compound file is a legacy XLS, any
other file is text (CSV) unless its first bytes say PDF, image, archive or
RTF. Everything unsafe or unreadable is refused here, before any engine
parses the file, with an :class:`~flexybulk.errors.InputFileError` that
names the file and says what to do. A name that says another format than
the content gets a note.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

from flexybulk.errors import InputFileError

from .context import ReadOptions, _MIB, _Context, _quote, _size_text

# --- limits (issue #6) --------------------------------------------------------------

MAX_UNCOMPRESSED = 200 * 1024 * 1024  # zip bomb limits
MAX_RATIO = 100
RATIO_APPLIES_ABOVE = 10 * 1024 * 1024
MAX_ZIP_MEMBERS = 10_000


def _read_bytes(path: Path, opts: ReadOptions) -> bytes:
    """The file's bytes, after the size limit was checked on the directory entry (issue #6)."""
    name = _quote(path.name)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputFileError(f"{name} does not exist — check the file name and folder") from None
    except OSError as exc:
        raise InputFileError(f"{name} cannot be opened ({exc.strerror}) — check the path and permissions") from None
    if path.is_dir():
        raise InputFileError(f"{name} is a folder, not a file — give the spreadsheet file itself")
    if size > opts.max_file_size:
        raise InputFileError(
            f"{name} is {_size_text(size)}; the limit is {_size_text(opts.max_file_size)} — split it into smaller files"
        )
    if size == 0:
        raise InputFileError(f"{name} is empty (0 bytes) — export the spreadsheet again")
    try:
        with open(path, "rb") as handle:
            data = handle.read(opts.max_file_size + 1)
    except OSError as exc:
        raise InputFileError(f"{name} cannot be read ({exc.strerror}) — check the permissions") from None
    if len(data) > opts.max_file_size:  # it grew after stat()
        raise InputFileError(f"{name} is larger than the limit of {_size_text(opts.max_file_size)} — split it")
    return data


_OTHER_MAGIC = (
    (b"%PDF", "a PDF document — export the list from the original spreadsheet as .xlsx or .csv instead"),
    (b"\x89PNG", "a PNG image, not a spreadsheet — save the recipient list as .xlsx or .csv"),
    (b"\xff\xd8\xff", "a JPEG image, not a spreadsheet — save the recipient list as .xlsx or .csv"),
    (b"GIF8", "a GIF image, not a spreadsheet — save the recipient list as .xlsx or .csv"),
    (b"\x1f\x8b", "a gzip archive — unpack it and give the spreadsheet inside"),
    (b"Rar!", "a RAR archive — unpack it and give the spreadsheet inside"),
    (b"7z\xbc\xaf", "a 7-Zip archive — unpack it and give the spreadsheet inside"),
    (b"{\\rtf", "an RTF document — save the list as .xlsx or .csv"),
    (b"PK\x05\x06", "an empty zip archive, not a spreadsheet — export the list again"),
)


def _refuse_other_formats(data: bytes, ctx: _Context) -> None:
    """A file that is neither zip nor OLE2 but starts like a PDF, an image, an archive or RTF is refused (pitfalls P16)."""
    for magic, what in _OTHER_MAGIC:
        if data.startswith(magic):
            raise InputFileError(f"{_quote(ctx.path.name)} is really {what}")


# --- zip containers: XLSX, ODS (issue #6, pitfalls P16) -------------------------

_ODS_MIMETYPE = "application/vnd.oasis.opendocument.spreadsheet"


def _open_zip(data: bytes, ctx: _Context) -> zipfile.ZipFile | None:
    """Decide what a zip archive holds and refuse what cannot or must not be read (issue #6, pitfalls P16).

    Sets ``ctx.format`` to ``"xlsx"``, ``"xlsb"`` or ``"ods"``. Returns the opened archive
    (its sheet XML is scanned later for what the values do not carry).

    Raises:
        InputFileError: damaged, a zip bomb, password-protected, macros,
            another kind of document (Word, PowerPoint, Numbers, ODT) or a plain archive.
    """
    name = _quote(ctx.path.name)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise InputFileError(
            f"{name} is damaged: it starts like a spreadsheet (a zip archive) but cannot be opened ({exc}). "
            "Ask the sender for a new copy, or open it in Excel or LibreOffice and save it again"
        ) from None
    _check_zip_bomb(infos, len(data), name)
    names = {info.filename for info in infos}
    if any(info.flag_bits & 0x1 for info in infos):
        raise InputFileError(f"{name} is password-protected — remove the password and save it again")

    if "mimetype" in names:
        mimetype = _read_member(zf, "mimetype", 1024, name).decode("ascii", "replace").strip()
        if mimetype == _ODS_MIMETYPE or mimetype == _ODS_MIMETYPE + "-template":
            _refuse_ods_macros(names, name)
            ctx.format = "ods"
            _note_extension(ctx, "ods", (".ods", ".ots"))
            return zf
        if "opendocument.text" in mimetype:
            raise InputFileError(f"{name} is really an OpenDocument text document (.odt), not a spreadsheet")
        raise InputFileError(f"{name} is really an OpenDocument file of type '{mimetype}', not a spreadsheet")

    if "[Content_Types].xml" in names:
        content_types = _read_member(zf, "[Content_Types].xml", 4 * _MIB, name).decode("utf-8", "replace")
        if "xl/workbook.bin" in names:
            # XLSB: its main part's content type always says macroEnabled; only a VBA project is a macro.
            if "xl/vbaProject.bin" in names:
                raise InputFileError(
                    f"{name} is a macro-enabled workbook — save it as a plain .xlsx (Excel Workbook) and try again"
                )
            ctx.format = "xlsb"
            _note_extension(ctx, "xlsb", (".xlsb",))
            return zf
        if "xl/vbaProject.bin" in names or "macroEnabled" in content_types:
            raise InputFileError(
                f"{name} is a macro-enabled workbook — save it as a plain .xlsx (Excel Workbook) and try again"
            )
        if "xl/workbook.xml" in names or "spreadsheetml" in content_types:
            ctx.format = "xlsx"
            _note_extension(ctx, "xlsx", (".xlsx", ".xltx"))
            return zf
        if "word/document.xml" in names:
            raise InputFileError(f"{name} is really a Word document, not a spreadsheet — save the list as .xlsx")
        if "ppt/presentation.xml" in names:
            raise InputFileError(f"{name} is really a PowerPoint presentation, not a spreadsheet")
    if any(n.startswith("Index/") and n.endswith(".iwa") for n in names):
        raise InputFileError(f"{name} is an Apple Numbers file — in Numbers choose File > Export To > Excel")
    raise InputFileError(f"{name} is a zip archive, not a spreadsheet — unpack it and give the spreadsheet inside")


def _check_zip_bomb(infos: list[zipfile.ZipInfo], packed: int, name: str) -> None:
    """Refuse archives that unpack to far more than a spreadsheet needs, before any parse (issue #6).

    Uses the sizes the archive declares: > 200 MB in total, or a ratio over
    100:1 once more than 10 MB would be unpacked, or more than 10,000 members.
    """
    if len(infos) > MAX_ZIP_MEMBERS:
        raise InputFileError(
            f"{name} holds {len(infos):,} files; a spreadsheet holds a few dozen — it is refused as unsafe"
        )
    total = sum(info.file_size for info in infos)
    compressed = max(1, sum(info.compress_size for info in infos), packed // 2)
    ratio = total / compressed
    if total > MAX_UNCOMPRESSED or (total > RATIO_APPLIES_ABOVE and ratio > MAX_RATIO):
        raise InputFileError(
            f"{name} would unpack to {_size_text(total)} from {_size_text(packed)} (ratio {ratio:,.0f}:1) — "
            "far more than a recipient list needs (a zip bomb?), so it is refused. "
            "Copy the data into a new workbook and save that"
        )


def _read_member(zf: zipfile.ZipFile, member: str, limit: int, name: str) -> bytes:
    """A small zip member, at most ``limit`` bytes (its declared size is not trusted)."""
    try:
        with zf.open(member) as handle:
            content = handle.read(limit + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, ValueError) as exc:
        raise InputFileError(
            f"{name} is damaged ({member}: {exc}) — open it in Excel or LibreOffice and save it again"
        ) from None
    if len(content) > limit:
        raise InputFileError(f"{name} has an oversized part {member} — it is refused as unsafe")
    return content


def _refuse_ods_macros(names: set[str], name: str) -> None:
    """An ODS with Basic modules is macro-enabled: refused like an XLSM (issue #6)."""
    library_files = {"script-lb.xml", "script-lc.xml", "dialog-lb.xml", "dialog-lc.xml"}
    for member in names:
        if member.startswith(("Basic/", "Scripts/")) and PurePosixPath(member).name not in library_files:
            if not member.endswith("/"):
                raise InputFileError(
                    f"{name} contains macros — save it without macros as a plain .xlsx or .ods and try again"
                )


def _note_extension(ctx: _Context, real: str, expected: tuple[str, ...]) -> None:
    """A note when the name says another format than the content (pitfalls P16)."""
    suffix = ctx.path.suffix.lower()
    if suffix and suffix not in expected:
        what = {"xlsx": "an XLSX workbook", "ods": "an ODS spreadsheet", "xls": "a legacy Excel (.xls) workbook",
                "xlsb": "a binary Excel (.xlsb) workbook"}[real]
        ctx.notes.append(f"{_quote(ctx.path.name)} is really {what} — read it as one")


# --- OLE2: legacy XLS, encrypted XLSX (issue #6, pitfalls P16) ---------------------


def _ole_name(text: str) -> bytes:
    return text.encode("utf-16-le")


def _check_ole2(data: bytes, ctx: _Context) -> None:
    """Compound files: encrypted OOXML, XLS with macros, Word documents are refused; a plain XLS sets ``ctx.format``.

    Directory entries store stream names in UTF-16LE, so a byte search finds
    them without an OLE library.
    """
    name = _quote(ctx.path.name)
    if _ole_name("EncryptedPackage") in data or _ole_name("EncryptionInfo") in data:
        raise InputFileError(f"{name} is password-protected — remove the password and save it again")
    if _ole_name("_VBA_PROJECT_CUR") in data:
        raise InputFileError(
            f"{name} is a macro-enabled workbook — save it as a plain .xlsx (Excel Workbook) and try again"
        )
    if _ole_name("WordDocument") in data:
        raise InputFileError(f"{name} is really a Word document, not a spreadsheet — save the list as .xlsx")
    if _ole_name("Workbook") not in data and _ole_name("Book") not in data:
        raise InputFileError(f"{name} is an Office file but not an Excel workbook — save the list as .xlsx")
    ctx.format = "xls"
    _note_extension(ctx, "xls", (".xls", ".xlt"))


