"""Decode a data file's bytes: never silently, and never into C1 control characters.

A file that is not UTF-8 stops with the line and byte that failed, and a hint naming the encoding
the file most likely has: Windows-1252 (``cp1252``) when bytes 0x80-0x9F occur and decode with it
(curly quotes, dashes, the euro sign), else latin-1. Decoding such a file as latin-1 would turn
those bytes into invisible C1 control characters (U+0080-U+009F); that is reported too, naming
every place, rather than trained on.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from fmhub.data.problems import MAX_LISTED, Problem, shorten_value
from fmhub.errors import DataError

ENCODING_HINT = "pass --encoding with the file's encoding (e.g. --encoding latin-1), or save it as UTF-8"
CP1252_HINT = ("the file looks like Windows-1252 (bytes 0x80-0x9F such as curly quotes): pass --encoding cp1252, "
               "or save it as UTF-8")
C1_CONTROLS = re.compile("[\u0080-\u009f]")
"""The C1 control characters: what bytes 0x80-0x9F become when a Windows-1252 file is read as latin-1."""

_WINDOWS_BYTES = re.compile(b"[\x80-\x9f]")


def read_text(path: Path, encoding: str) -> tuple[str, list[Problem]]:
    """Read and decode a text data file.

    Args:
        path: The file.
        encoding: A Python codec name (``utf-8``, ``cp1252``, ``latin-1``, ``utf-16`` ...). For UTF-8
            a leading byte-order mark is removed.

    Returns:
        (the text, warnings): a warning lists C1 control characters stored as such in a UTF-8 or
        UTF-16 file (most likely text that was once decoded with the wrong encoding).

    Raises:
        DataError: unknown codec; unreadable file; bytes not decodable with ``encoding`` (the line
            and byte, with an encoding hint: cp1252 when it decodes the file and bytes 0x80-0x9F
            occur, else latin-1); C1 control characters produced by a single-byte codec (each
            line and column listed, cp1252 suggested when it decodes the file); a NUL character.
    """
    try:
        info = codecs.lookup(encoding)
    except (LookupError, ValueError):  # ValueError: a NUL character in the name
        raise DataError(f"unknown encoding {encoding!r} for {path}",
                        "use a codec name such as utf-8, latin-1, cp1252, utf-16") from None
    if not getattr(info, "_is_text_encoding", True):  # zlib, base64, hex, rot13: not bytes -> text
        raise DataError(f"{encoding!r} is not a text encoding (for {path})",
                        "use a codec name such as utf-8, latin-1, cp1252, utf-16")
    codec = info.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}", "check its permissions") from None
    codec = "utf-8" if codec == "utf-8-sig" else codec
    start = 3 if codec == "utf-8" and raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[start:].decode(codec)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, raw, start + exc.start, codec) from None
    except UnicodeError as exc:  # codecs such as punycode raise a bare UnicodeError
        raise DataError(f"cannot decode {path} as {encoding}: {exc}",
                        "pass --encoding with the file's encoding (utf-8, cp1252, latin-1, utf-16)") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataError(f"{path}:{line}: NUL character in a text file (is it UTF-16 or binary?)",
                        "pass --encoding utf-16 if the file is UTF-16, or export it again as UTF-8 text")
    warnings: list[Problem] = []
    if C1_CONTROLS.search(text):
        multibyte = codec.startswith(("utf-8", "utf-16", "utf-32", "utf_"))
        problems = c1_problems(path, text, encoding, suggest_cp1252=not multibyte and is_cp1252(raw))
        if not multibyte:
            first, count = problems[0], len(C1_CONTROLS.findall(text))
            lines = "\n".join(p.describe(with_hint=False) for p in problems[:MAX_LISTED])
            more = f"\n... and {len(problems) - MAX_LISTED} more line(s)" if len(problems) > MAX_LISTED else ""
            raise DataError(f"{count} C1 control character(s) in {path} decoded as {encoding}:\n{lines}{more}",
                            first.hint, [p.to_dict() for p in problems])
        warnings.extend(problems)
    return text, warnings


def is_cp1252(raw: bytes) -> bool:
    """True when ``raw`` holds bytes 0x80-0x9F and decodes as Windows-1252 (a likely cp1252 file).

    A file without those bytes decodes alike with latin-1 and cp1252 (above 0x9F), so nothing tells
    them apart; a file where one of them is undefined in cp1252 (0x81, 0x8D, 0x8F, 0x90, 0x9D) is not.
    """
    if not _WINDOWS_BYTES.search(raw):
        return False
    try:
        raw.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def c1_problems(path: Path, text: str, codec: str, suggest_cp1252: bool) -> list[Problem]:
    """One problem per line holding C1 control characters, naming the first one's column and value.

    Args:
        path: The file (for the messages).
        text: Its decoded text.
        codec: The codec that decoded it, as the user named it.
        suggest_cp1252: Whether the hint suggests ``--encoding cp1252`` (the file decodes with it).

    Returns:
        Problems with ``line``, the 1-based character column in ``message`` and the character
        (``'\\x93'``) as ``value``; severity ``error`` for a single-byte codec, else ``warning``.
    """
    multibyte = codecs.lookup(codec).name.startswith(("utf-8", "utf-16", "utf-32", "utf_"))
    if suggest_cp1252:
        hint = "pass --encoding cp1252: the file is Windows-1252, and its bytes 0x80-0x9F are characters there"
    elif multibyte:
        hint = ("the file stores invisible control characters U+0080-U+009F (text once decoded as latin-1 "
                "instead of Windows-1252?): replace them, e.g. U+0093/U+0094 by curly quotes")
    else:
        hint = "pass --encoding with the file's real encoding (e.g. --encoding cp1252), or save it as UTF-8"
    problems: list[Problem] = []
    line_start, line = 0, 1
    for match in C1_CONTROLS.finditer(text):
        pos = match.start()
        if pos < line_start:
            continue
        line += text.count("\n", line_start, pos)
        line_start = text.rfind("\n", 0, pos) + 1
        count = len(C1_CONTROLS.findall(text, pos, _line_end(text, pos)))
        more = f" ({count} on this line)" if count > 1 else ""
        problems.append(Problem(f"C1 control character U+{ord(match.group()):04X} at column {pos - line_start + 1} "
                                f"after decoding as {codec}{more}", str(path), line,
                                value=shorten_value(match.group()), hint=hint,
                                severity="warning" if multibyte else "error"))
        line_start = _line_end(text, pos)
        line += 1
    return problems


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end + 1


def _decode_error(path: Path, raw: bytes, offset: int, codec: str) -> DataError:
    line = raw.count(b"\n", 0, offset) + 1
    line_start = raw.rfind(b"\n", 0, offset) + 1
    byte = f"0x{raw[offset]:02x}"
    message = (f"{path}:{line}: cannot decode byte {byte} as {codec} "
               f"(byte {offset - line_start + 1} of the line, offset {offset} in the file)")
    hint = ENCODING_HINT
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        hint = "the file starts with a UTF-16 byte-order mark: pass --encoding utf-16"
    elif codec != "cp1252" and is_cp1252(raw):
        hint = CP1252_HINT
    problem = Problem(f"cannot decode byte {byte} as {codec}", str(path), line, value=byte, hint=hint)
    details = problem.to_dict() | {"byte_offset": offset, "byte_in_line": offset - line_start + 1}
    return DataError(message, hint, [details])
