"""Character sets: the ordered lists of characters that become class tables.

Built-in sets are decoded from the GB2312 code table with Python's `gb2312` codec, so the
order is the standard's (level 1 is in pinyin order, 啊 first, 座 last), and that order is
the canonical class index: class i of every `gb2312-1` store is the same character.

    gb2312-1   3,755 level-1 characters (rows 0xB0-0xD7); CASIA-HWDB1.0 holds 3,740 of them
    gb2312     6,763: level 1, then the 3,008 level-2 characters (rows 0xD8-0xF7)
    digits     "0".."9"

A user's own list (`load_charset_file`) is one character per line or one plain string;
whitespace and duplicates are rejected with the line number, since either would make
two classes disagree about what they are.
"""

from __future__ import annotations

from pathlib import Path

from .atomic import atomic_output
from .errors import InputError


def _gb2312_rows(first_row: int, last_row: int) -> list[str]:
    """Every character that decodes in GB2312 rows first_row..last_row (columns 0xA1-0xFE)."""
    characters = []
    for row in range(first_row, last_row + 1):
        for column in range(0xA1, 0xFF):
            try:
                characters.append(bytes([row, column]).decode("gb2312"))
            except UnicodeDecodeError:  # 0xD7FA-0xD7FE are unassigned
                pass
    return characters


def gb2312_level1() -> list[str]:
    return _gb2312_rows(0xB0, 0xD7)


def gb2312_all() -> list[str]:
    return _gb2312_rows(0xB0, 0xF7)


BUILTIN = {
    "gb2312-1": gb2312_level1,
    "gb2312": gb2312_all,
    "digits": lambda: [str(d) for d in range(10)],
}


def load_charset(name_or_path: str, limit: int | None = None) -> list[str]:
    """A built-in set by name, or a user's file by path; `limit` keeps the first N."""
    if name_or_path in BUILTIN:
        characters = BUILTIN[name_or_path]()
    elif Path(name_or_path).is_file():
        characters = load_charset_file(name_or_path)
    else:
        raise InputError(f"unknown charset {name_or_path!r}: use one of {', '.join(BUILTIN)} or a text file path")
    return limit_charset(characters, limit, name_or_path)


def charset_file(name_or_path: str | None) -> str | None:
    """The file a charset argument names: None for a built-in set (or no argument)."""
    return None if name_or_path is None or name_or_path in BUILTIN else name_or_path


def limit_charset(characters: list[str], limit: int | None, name: str) -> list[str]:
    """The first `limit` characters (all if None); InputError if the set is shorter."""
    if limit is None:
        return characters
    if limit < 1:
        raise InputError(f"--limit must be positive, got {limit}")
    if limit > len(characters):
        raise InputError(f"--limit {limit} is more than the {len(characters)} characters of {name}")
    return characters[:limit]


def write_charset(path: str | Path, characters: list[str]) -> None:
    """Write one character per line (UTF-8), the form `load_charset_file` reads back."""
    with atomic_output(path) as temporary:
        temporary.write_text("".join(c + "\n" for c in characters), encoding="utf-8")


def load_charset_file(path: str | Path) -> list[str]:
    """Characters from a UTF-8 file: one per line, or a single line holding them all."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"charset file not found: {path}") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:  # a folder, no permission, ...
        raise InputError(f"cannot read charset file {path}: {error.strerror or error}") from None
    lines = text.splitlines()
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise InputError(f"{path}: no characters")
    one_per_line = len(lines) > 1
    characters: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        entries = [line] if one_per_line else list(line)
        for entry in entries:
            if entry == "" or any(c.isspace() for c in entry):
                raise InputError(f"{path}:{number}: whitespace or an empty line where a character should be")
            if one_per_line and len(entry) != 1:
                raise InputError(f"{path}:{number}: {entry!r} is {len(entry)} characters; write one character per line")
            if entry in seen:
                raise InputError(f"{path}:{number}: {entry!r} is a duplicate (first on line {seen[entry]})")
            seen[entry] = number
            characters.append(entry)
    return characters
