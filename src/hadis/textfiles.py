"""Reading user-supplied text files (CSV tables, JSON/YAML documents, prompt lists) with
one clear line for each way they can be wrong: missing, a directory, binary, UTF-16, not
UTF-8, ragged CSV rows, missing or unknown columns. A UTF-8 byte-order mark is accepted
(spreadsheets write one)."""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hadis.errors import HadisError


def read_text(path: str | Path, what: str, error: type[HadisError] = HadisError) -> str:
    """The file's text; `what` names it in errors (e.g. 'trace')."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise error(f"{what} {path} is a directory, not a file") from None
    except FileNotFoundError:
        raise error(f"cannot read {what} {path}: no such file") from None
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from e
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise error(f"{what} {path} is UTF-16 encoded; save it as UTF-8")
    if b"\x00" in raw:
        raise error(f"{what} {path} is not a text file (it contains NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(
            f"{what} {path} is not UTF-8 text (byte {e.start} cannot be decoded); "
            "is it a binary file?"
        ) from None


@dataclass(frozen=True)
class CsvRow:
    line: int  # line number in the file, for messages
    values: dict[str, str]


def read_csv(
    path: str | Path,
    what: str,
    *,
    required: Sequence[str] = (),
    optional: Sequence[str] = (),
    one_of: Sequence[str] = (),
    error: type[HadisError] = HadisError,
) -> tuple[list[str], list[CsvRow]]:
    """Header and rows of a CSV file with a header line.

    Every row must have as many fields as the header; `required` columns must be present
    (and at least one of `one_of`, when given); a column outside required, optional and
    one_of is named with the closest valid name. Values are stripped strings."""
    text = read_text(path, what, error)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise error(f"{what} {path}: not a valid CSV file: {e}") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]  # blank lines
    if not rows:
        raise error(f"{what} {path} is empty (expected a header line)")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        raise error(f"{what} {path}: a column appears twice in the header {header}")
    known = [*required, *optional, *one_of]
    for h in header:  # a misspelt column first: its message names the right one
        close = difflib.get_close_matches(h, known, n=1) if h not in known else []
        if close and close[0] not in header:
            raise error(f"{what} {path}: unknown column {h!r}; did you mean {close[0]!r}?")
    missing = [c for c in required if c not in header]
    if missing:
        raise error(f"{what} {path}: missing column(s) {', '.join(missing)}; header: {header}")
    if one_of and not any(c in header for c in one_of):
        names = " or ".join(repr(c) for c in one_of)
        raise error(f"{what} {path}: needs an {names} column; header: {header}")
    for h in header:
        if h not in known:
            close = difflib.get_close_matches(h, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise error(f"{what} {path}: unknown column {h!r}{hint} (columns: {', '.join(known)})")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise error(
                f"{what} {path}: line {line} has {len(row)} fields, the header has {len(header)}"
            )
        out.append(CsvRow(line, {h: v.strip() for h, v in zip(header, row, strict=True)}))
    if not out:
        raise error(f"{what} {path} has no rows (only a header)")
    return header, out


def parse_float(text: str, where: str, error: type[HadisError] = HadisError) -> float:
    """A finite number, else one line naming where it was."""
    try:
        value = float(text)
    except ValueError:
        raise error(f"{where} {text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise error(f"{where}: must be a finite number, got {text!r}")
    return value


def parse_int(text: str, where: str, error: type[HadisError] = HadisError) -> int:
    try:
        return int(text)
    except ValueError:
        raise error(f"{where} {text!r} is not an integer") from None
