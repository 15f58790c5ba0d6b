"""CASIA `.gnt` import on files the tests write: layout, pixels, tags, damage, folders, sources."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from data_tools import gnt
from data_tools.errors import InputError
from data_tools.gnt import (
    BadRecord, decode_tag, encode_gnt_record, find_gnt_files, import_gnt, iter_gnt_records, to_glyph,
)
from data_tools.store import read_store
from helpers import assert_mentions


def raw_record(tag: bytes, width: int, height: int, pixels: bytes, size: int | None = None) -> bytes:
    """A record built straight from the CASIA layout, optionally with a wrong size field."""
    size = 10 + width * height if size is None else size
    return struct.pack("<I", size) + tag + struct.pack("<HH", width, height) + pixels


def bitmap(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A CASIA-style bitmap: 255 background with darker 'ink'."""
    return np.random.default_rng(seed).integers(0, 255, size=(height, width), dtype=np.uint8)


def write_gnt(path, records: list[tuple[str, np.ndarray]]) -> list[int]:
    """Write `records` as a .gnt file; return each record's byte offset."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data, offsets = b"", []
    for char, image in records:
        offsets.append(len(data))
        data += encode_gnt_record(char, image)
    path.write_bytes(data)
    return offsets


def test_encode_matches_the_casia_layout():
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)  # h=2, w=3
    assert encode_gnt_record("啊", image) == raw_record(b"\xb0\xa1", 3, 2, image.tobytes())
    assert encode_gnt_record("座", image)[4:6] == b"\xd7\xf9"
    assert encode_gnt_record("A", image)[4:6] == b"A\x00"  # HWDB1.0's ASCII symbols
    with pytest.raises(InputError, match="2-byte GB code"):
        encode_gnt_record("😀", image)


def test_decode_tag():
    assert decode_tag(b"\xb0\xa1") == "啊"
    assert decode_tag(b"\xd7\xf9") == "座"
    assert decode_tag(b"\xb0\xa2") == "阿"
    assert decode_tag(b"7\x00") == "7"
    for bad in (b"\xff\xff", b"\x00\x00", b"ab", b"\xb0 "):
        with pytest.raises(ValueError, match=bad.hex()):
            decode_tag(bad)


def test_to_glyph_inverts_and_centres_without_resizing():
    tall = np.array([[255, 0, 10]] * 5, dtype=np.uint8)  # w=3, h=5
    glyph = to_glyph(tall, 5)
    expected = np.zeros((5, 5), np.uint8)
    expected[:, 1:4] = [0, 255, 245]
    np.testing.assert_array_equal(glyph, expected)
    wide = np.zeros((2, 5), np.uint8)  # all ink, w=5, h=2: top padding (5-2)//2 = 1
    expected = np.zeros((5, 5), np.uint8)
    expected[1:3] = 255
    np.testing.assert_array_equal(to_glyph(wide, 5), expected)


def test_to_glyph_resize_keeps_the_aspect_ratio():
    wide = np.zeros((20, 40), np.uint8)  # a solid 40x20 bar of ink
    glyph = to_glyph(wide, 10)  # padded to 40x40 (rows 10..29), scaled by 1/4: ink rows 2.5..7.5
    assert glyph.shape == (10, 10) and glyph.dtype == np.uint8
    assert glyph[3:7].min() >= 250
    assert glyph[[0, 1, 8, 9]].max() <= 16
    np.testing.assert_array_equal(glyph, glyph[::-1])  # centred
    np.testing.assert_array_equal(glyph[:, 0], glyph[:, 5])  # the bar spans the full width


def test_round_trip_of_records_of_different_sizes(tmp_path):
    images = [bitmap(5, 3, 1), bitmap(2, 5, 2), bitmap(4, 4, 3), bitmap(1, 1, 4)]
    chars = ["阿", "啊", "座", "阿"]
    write_gnt(tmp_path / "1001-c.gnt", list(zip(chars, images)))
    summary = import_gnt([tmp_path / "1001-c.gnt"], tmp_path / "out.h5", size=5)
    glyphs = read_store(tmp_path / "out.h5")
    assert (summary.records, summary.written, summary.files) == (4, 4, 1)
    assert glyphs.images.shape == (4, 5, 5)
    assert len(glyphs.classes) == 3755 and glyphs.classes.text[0] == "啊" and glyphs.classes.text[-1] == "座"
    assert [glyphs.classes.text[label] for label in glyphs.labels] == chars
    np.testing.assert_array_equal(glyphs.images[0][:, 1:4], 255 - images[0])  # inverted, centred
    np.testing.assert_array_equal(glyphs.images[0][:, [0, 4]], 0)
    np.testing.assert_array_equal(glyphs.images[1][1:3], 255 - images[1])
    np.testing.assert_array_equal(glyphs.images[1][[0, 3, 4]], 0)
    assert glyphs.sources == ["1001-c"] and set(glyphs.source_ids) == {0}
    assert glyphs.provenance["command"] == "data-tools gnt"
    assert glyphs.provenance["files"] == [{"path": str(tmp_path / "1001-c.gnt"), "records": 4, "written": 4}]


def test_more_records_than_one_batch(tmp_path):
    count = gnt.BATCH * 2 + 5
    data = b"".join(encode_gnt_record("啊阿"[i % 2], np.full((2, 2), i % 256, np.uint8)) for i in range(count))
    (tmp_path / "w.gnt").write_bytes(data)
    import_gnt([tmp_path / "w.gnt"], tmp_path / "out.h5", size=2)
    glyphs = read_store(tmp_path / "out.h5")
    assert len(glyphs) == count
    np.testing.assert_array_equal(glyphs.images[:, 0, 0], 255 - np.arange(count) % 256)
    np.testing.assert_array_equal(glyphs.labels, np.arange(count) % 2)


def test_truncated_record_names_file_and_offset(tmp_path):
    path = tmp_path / "w.gnt"
    offsets = write_gnt(path, [("啊", bitmap(3, 4)), ("阿", bitmap(6, 5)), ("座", bitmap(7, 7))])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(BadRecord) as caught:
        list(iter_gnt_records(path))
    assert str(caught.value).startswith(f"{path}: bad record at byte {offsets[2]}: truncated")
    existing = tmp_path / "out.h5"
    existing.write_bytes(b"a good file")
    with pytest.raises(InputError, match=f"byte {offsets[2]}: truncated.*--skip-bad"):
        import_gnt([path], existing, size=8)
    assert existing.read_bytes() == b"a good file"  # a failed import never replaces the output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "w.gnt"]  # no temporary left


def test_header_cut_short(tmp_path):
    path = tmp_path / "w.gnt"
    write_gnt(path, [("啊", bitmap(3, 4))])
    path.write_bytes(path.read_bytes() + b"\x05\x00\x00")
    with pytest.raises(BadRecord, match="at byte 22: truncated: 3 bytes left"):
        list(iter_gnt_records(path))


def test_skip_bad_steps_over_self_consistent_records(tmp_path):
    good = encode_gnt_record("啊", bitmap(3, 3))
    records = [
        good,
        raw_record(b"\xff\xff", 2, 2, bytes(4)),  # tag that does not decode
        raw_record(b"\xb0\xa1", 0, 7, b""),  # zero width, size field 10 agrees
        raw_record(b"\xb0\xa1", 5000, 1, bytes(5000)),  # absurd width, size field agrees
        encode_gnt_record("阿", bitmap(2, 2)),
    ]
    path = tmp_path / "w.gnt"
    path.write_bytes(b"".join(records))
    offsets = np.cumsum([0] + [len(r) for r in records])[:-1].tolist()
    with pytest.raises(BadRecord, match=f"byte {offsets[1]}: tag code ffff"):
        list(iter_gnt_records(path))
    bad: list[BadRecord] = []
    chars = [record.char for record in iter_gnt_records(path, skip_bad=True, on_bad=bad.append)]
    assert chars == ["啊", "阿"]
    assert [error.offset for error in bad] == offsets[1:4]
    assert all(error.resumable for error in bad)
    assert "0x7" in bad[1].reason and "5000x1" in bad[2].reason


def test_skip_bad_abandons_a_file_with_an_impossible_size_and_continues(tmp_path):
    first = tmp_path / "a.gnt"
    records = [
        encode_gnt_record("啊", bitmap(3, 3)),
        raw_record(b"\xb0\xa2", 4, 4, bytes(16), size=999),  # size field disagrees with 4x4
        encode_gnt_record("阿", bitmap(3, 3)),  # unreachable: the size field cannot be trusted
    ]
    first.write_bytes(b"".join(records))
    huge = tmp_path / "b.gnt"  # a self-consistent 4000x4000 record that runs past the end
    huge.write_bytes(encode_gnt_record("座", bitmap(2, 2)) + raw_record(b"\xb0\xa1", 4000, 4000, bytes(100)))
    last = tmp_path / "c.gnt"
    write_gnt(last, [("阿", bitmap(2, 2)), ("啊", bitmap(2, 2))])

    with pytest.raises(InputError, match=f"{first}: bad record at byte {len(records[0])}: size field 999"):
        import_gnt([tmp_path], tmp_path / "out.h5", size=4)
    summary = import_gnt([tmp_path], tmp_path / "out.h5", size=4, skip_bad=True)
    glyphs = read_store(tmp_path / "out.h5")
    assert [glyphs.classes.text[label] for label in glyphs.labels] == ["啊", "座", "阿", "啊"]
    assert glyphs.sources == ["a", "b", "c"]
    np.testing.assert_array_equal(glyphs.source_ids, [0, 1, 2, 2])
    assert (summary.bad_records, summary.cut_files) == (2, 2)
    assert [(error.path, error.offset, error.resumable) for error in summary.bad_examples] == [
        (first, len(records[0]), False), (huge, len(encode_gnt_record("座", bitmap(2, 2))), False)
    ]
    assert_mentions(summary.bad_examples[1].reason, "truncated", "record of 16000010 bytes", "110 left")
    report = summary.report()
    assert "skipped 2 bad records (--skip-bad); 2 files cut short at a bad record" in report
    assert glyphs.provenance["bad_records"] == 2


def test_characters_outside_the_charset_are_counted_and_skipped(tmp_path):
    write_gnt(tmp_path / "w.gnt", [("啊", bitmap(2, 2)), ("座", bitmap(2, 2)), ("A", bitmap(2, 2)),
                                   ("阿", bitmap(2, 2)), ("座", bitmap(2, 2))])
    summary = import_gnt([tmp_path / "w.gnt"], tmp_path / "out.h5", size=2, charset="gb2312-1", limit=2)
    glyphs = read_store(tmp_path / "out.h5")
    assert glyphs.classes.text == ["啊", "阿"]
    np.testing.assert_array_equal(glyphs.labels, [0, 1])
    assert (summary.records, summary.written) == (5, 2)
    assert summary.out_of_charset == {"座": 2, "A": 1}
    assert "skipped 3 records of 2 characters outside charset gb2312-1 (first 2): 座 (2), A (1)" in summary.report()
    write_gnt(tmp_path / "only.gnt", [("座", bitmap(2, 2)), ("A", bitmap(2, 2))])
    with pytest.raises(InputError, match="none of the 2 records is a character of charset gb2312-1"):
        import_gnt([tmp_path / "only.gnt"], tmp_path / "none.h5", size=2, limit=2)
    assert not (tmp_path / "none.h5").exists()


def test_classes_from_data_sorted_by_gb_code(tmp_path):
    write_gnt(tmp_path / "w.gnt", [("座", bitmap(2, 2)), ("阿", bitmap(2, 2)), ("7", bitmap(2, 2)), ("啊", bitmap(2, 2)), ("阿", bitmap(2, 2))])
    import_gnt([tmp_path / "w.gnt"], tmp_path / "out.h5", size=2, classes_from_data=True)
    glyphs = read_store(tmp_path / "out.h5")
    assert glyphs.classes.text == ["7", "啊", "阿", "座"]
    assert [glyphs.classes.text[label] for label in glyphs.labels] == ["座", "阿", "7", "啊", "阿"]
    with pytest.raises(InputError, match="--limit applies to --charset"):
        import_gnt([tmp_path / "w.gnt"], tmp_path / "x.h5", size=2, classes_from_data=True, limit=3)


def test_folders_sorted_recursively_one_source_per_file(tmp_path):
    root = tmp_path / "hwdb"
    write_gnt(root / "b" / "1002-c.gnt", [("阿", bitmap(2, 2))])
    write_gnt(root / "a" / "1003-c.gnt", [("啊", bitmap(2, 2)), ("座", bitmap(2, 2))])
    write_gnt(root / "1001-c.GNT", [("座", bitmap(2, 2))])
    (root / "a" / "notes.txt").write_text("not a gnt file")
    extra = tmp_path / "1004-c.gnt"
    write_gnt(extra, [("啊", bitmap(2, 2))])
    files = find_gnt_files([root, root / "a" / "1003-c.gnt", extra])  # 1003-c is reached twice, read once
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["hwdb/1001-c.GNT", "hwdb/a/1003-c.gnt", "hwdb/b/1002-c.gnt", "1004-c.gnt"]

    import_gnt([root, root / "a" / "1003-c.gnt", extra], tmp_path / "out.h5", size=2)
    glyphs = read_store(tmp_path / "out.h5")
    assert glyphs.sources == ["1001-c", "1003-c", "1002-c", "1004-c"]
    np.testing.assert_array_equal(glyphs.source_ids, [0, 1, 1, 2, 3])
    assert [glyphs.classes.text[label] for label in glyphs.labels] == ["座", "啊", "座", "阿", "啊"]


def test_same_stem_in_two_folders_is_one_source(tmp_path):
    write_gnt(tmp_path / "trn" / "1001-c.gnt", [("啊", bitmap(2, 2))])
    write_gnt(tmp_path / "tst" / "1001-c.gnt", [("阿", bitmap(2, 2))])
    import_gnt([tmp_path], tmp_path / "out.h5", size=2)
    glyphs = read_store(tmp_path / "out.h5")
    assert glyphs.sources == ["1001-c"]
    np.testing.assert_array_equal(glyphs.source_ids, [0, 0])


def test_missing_paths_and_empty_folders(tmp_path):
    with pytest.raises(InputError, match="nowhere.gnt: no such file or folder"):
        find_gnt_files([tmp_path / "nowhere.gnt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no .gnt files in this folder"):
        find_gnt_files([tmp_path / "empty"])


def test_report_lists_a_few_bad_records_and_counts_the_rest(tmp_path):
    data = encode_gnt_record("啊", bitmap(2, 2)) + raw_record(b"\xff\xff", 1, 1, b"\x00") * 10
    (tmp_path / "w.gnt").write_bytes(data)
    summary = import_gnt([tmp_path / "w.gnt"], tmp_path / "out.h5", size=2, skip_bad=True)
    lines = summary.report().splitlines()
    assert lines[1] == "skipped 10 bad records (--skip-bad)"
    assert lines[2].startswith(f"  {tmp_path / 'w.gnt'}: "), lines[2]  # an example, indented under the count
    assert_mentions(lines[2], "bad record at byte 14", "ffff", "GB18030")
    assert len(lines) == 2 + gnt.SHOWN_EXAMPLES + 1 and lines[-1] == f"  ... ({10 - gnt.SHOWN_EXAMPLES} more)"
