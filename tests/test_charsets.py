"""Character sets: the built-in GB2312 sets and their order, limits, users' lists, errors."""

from __future__ import annotations

import pytest

from data_tools.charsets import gb2312_all, gb2312_level1, load_charset, load_charset_file, write_charset
from data_tools.errors import InputError


def test_gb2312_level1_is_3755_characters_in_gb_order():
    level1 = gb2312_level1()
    assert len(level1) == 3755 == len(set(level1))
    assert level1[0] == "啊" and level1[1] == "阿" and level1[-1] == "座"
    assert level1[:5] == [bytes([0xB0, column]).decode("gb2312") for column in range(0xA1, 0xA6)]


def test_gb2312_is_level1_then_level2():
    everything = gb2312_all()
    assert len(everything) == 6763 == len(set(everything))
    assert everything[:3755] == gb2312_level1()
    assert everything[3755] == bytes([0xD8, 0xA1]).decode("gb2312")


def test_builtin_names_and_limit():
    assert load_charset("digits") == list("0123456789")
    assert load_charset("gb2312-1", limit=3740) == gb2312_level1()[:3740]
    assert load_charset("gb2312", limit=2) == ["啊", "阿"]
    with pytest.raises(InputError, match="--limit 11 is more than the 10 characters of digits"):
        load_charset("digits", limit=11)
    with pytest.raises(InputError, match="--limit must be positive"):
        load_charset("digits", limit=0)
    with pytest.raises(InputError, match="unknown charset 'gb2312-2'"):
        load_charset("gb2312-2")


def test_file_one_character_per_line(tmp_path):
    path = tmp_path / "chars.txt"
    path.write_text("\ufeff啊\nA\n7\n\n", encoding="utf-8")  # a BOM and trailing blank lines are fine
    assert load_charset_file(path) == ["啊", "A", "7"]
    assert load_charset(str(path), limit=2) == ["啊", "A"]


def test_file_as_one_plain_string(tmp_path):
    path = tmp_path / "chars.txt"
    path.write_text("永和九年\n", encoding="utf-8")
    assert load_charset_file(path) == ["永", "和", "九", "年"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("啊\n阿\n啊\n", r":3: '啊' is a duplicate \(first on line 1\)"),
        ("啊\n\n阿\n", r":2: whitespace or an empty line"),
        ("啊\n阿 \n", r":2: whitespace"),
        ("啊\n阿埃\n", r":2: '阿埃' is 2 characters; write one character per line"),
        ("啊阿啊", r":1: '啊' is a duplicate \(first on line 1\)"),
        ("啊 阿", r":1: whitespace"),
        ("\n\n", r"no characters"),
    ],
)
def test_file_errors_name_the_line(tmp_path, text, message):
    path = tmp_path / "chars.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_charset_file(path)


def test_unreadable_files(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("é\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8 text"):
        load_charset_file(latin1)
    with pytest.raises(InputError, match="charset file not found"):
        load_charset_file(tmp_path / "absent.txt")
    with pytest.raises(InputError, match="cannot read charset file"):
        load_charset_file(tmp_path)


def test_write_charset_round_trips(tmp_path):
    path = tmp_path / "out" / "set.txt"
    write_charset(path, gb2312_level1()[:50])
    assert load_charset_file(path) == gb2312_level1()[:50]
    assert [p.name for p in path.parent.iterdir()] == ["set.txt"]  # no temporary file left
