"""CASIA-HWDB importer: `.gnt` files (and folders of them) -> glyph store.

A `.gnt` file is records back to back, no file header. Each record is

    uint32 LE  sample size, = 10 + w*h
    2 bytes    tag code in byte order: a GB code (gb18030 decodes it), or an ASCII
               character followed by 0x00 (HWDB1.0's letters, digits and symbols)
    uint16 LE  width w
    uint16 LE  height h
    w*h bytes  grey pixels, row-major, 255 = background

We read the files ourselves, one record at a time, because the files are large (HWDB1.1
is 1.1 million records) and because a damaged record must be reported with its file and
byte offset rather than turning into a garbage image: nothing is allocated from a size
field before it is checked against the width, the height and the bytes left in the file.
A record whose size field agrees with its width and height can be stepped over; one whose
size field is impossible or runs past the end leaves no way to find the next record, so
`--skip-bad` abandons the rest of that file.

Each bitmap is inverted to the store's ink convention (ink 255 on 0), padded to a square
(centred, so the aspect ratio is kept) and resized with PIL's Lanczos filter (Pillow's
antialiasing resampler). Each file becomes one source named by its stem ("1001-c": CASIA
names files by writer); files with the same stem in different folders share that source,
as equal names do in `data-tools merge`.

The class table is a charset (`data_tools.charsets`; records of other characters are
counted and skipped), or with `classes_from_data` the characters found, sorted by their
tag code: that order does not depend on which files were read in what order, and for
GB2312 characters it is the standard's order (level 1 in pinyin order, as `gb2312-1`).
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from .charsets import load_charset
from .errors import InputError
from .store import ClassTable, StoreWriter, check_image_size

HEADER = struct.Struct("<I2sHH")  # sample size, tag code, width, height
MAX_SIDE = 4096  # CASIA bitmaps are a few hundred pixels at most; anything larger is corruption
BATCH = 1024  # images per StoreWriter.append: bounds memory whatever the input size...
BATCH_BYTES = 64 << 20  # ...and at most this many bytes of them, whatever --size
SHOWN_EXAMPLES = 8


class BadRecord(InputError):
    """A record that cannot be read. `skip` is its size when the next record can still be found, else None."""

    def __init__(self, path: Path, offset: int, reason: str, skip: int | None = None) -> None:
        super().__init__(f"{path}: bad record at byte {offset}: {reason}")
        self.path, self.offset, self.reason, self.skip = path, offset, reason, skip

    @property
    def resumable(self) -> bool:
        return self.skip is not None


@dataclass
class GntRecord:
    offset: int  # byte offset of the record in its file
    tag: bytes  # the 2-byte tag code as stored
    char: str
    bitmap: np.ndarray | None  # uint8 (h, w) as stored, 255 = background; None when pixels were not read


def decode_tag(tag: bytes) -> str:
    """The character a 2-byte tag code names; ValueError if it names none."""
    if len(tag) == 2 and tag[1] == 0 and 0x21 <= tag[0] <= 0x7E:
        return chr(tag[0])  # HWDB1.0 stores ASCII symbols as (character, 0)
    try:
        text = tag.decode("gb18030")
    except UnicodeDecodeError:
        raise ValueError(f"tag code {tag.hex()} does not decode as GB18030") from None
    if len(text) != 1 or not text.isprintable() or text.isspace():
        raise ValueError(f"tag code {tag.hex()} decodes to {text!r}, not one character")
    return text


def encode_tag(char: str) -> bytes:
    """The 2-byte tag code of `char`: its GB18030 code, or (ASCII, 0) for a printable ASCII character."""
    if len(char) != 1:
        raise InputError(f"a .gnt tag names one character, got {char!r}")
    if 0x21 <= ord(char) <= 0x7E:
        return bytes([ord(char), 0])
    tag = char.encode("gb18030")
    if len(tag) != 2:
        raise InputError(f"{char!r} has no 2-byte GB code (GB18030 gives {len(tag)} bytes)")
    return tag


def encode_gnt_record(char: str, bitmap: np.ndarray) -> bytes:
    """One `.gnt` record for `char`: `bitmap` uint8 (h, w) in CASIA's convention, 255 = background.

    Concatenate records to make a `.gnt` file (tests, or a user's own data for `data-tools gnt`).
    """
    bitmap = np.asarray(bitmap)
    if bitmap.ndim != 2 or bitmap.dtype != np.uint8:
        raise InputError(f"a .gnt bitmap must be uint8 (h, w), got {bitmap.dtype} {bitmap.shape}")
    height, width = bitmap.shape
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise InputError(f"a .gnt bitmap must be 1..{MAX_SIDE} pixels a side, got {width}x{height}")
    return HEADER.pack(HEADER.size + width * height, encode_tag(char), width, height) + bitmap.tobytes()


def iter_gnt_records(
    path: str | os.PathLike,
    skip_bad: bool = False,
    on_bad: Callable[[BadRecord], None] | None = None,
    read_pixels: bool = True,
) -> Iterator[GntRecord]:
    """The records of one `.gnt` file, in file order.

    A bad record raises `BadRecord` (an InputError naming the file and byte offset), or
    with `skip_bad` is passed to `on_bad` and skipped; after a record whose size field
    cannot be trusted, nothing more of the file is read.
    """
    path = Path(path)
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    with handle:
        file_size = os.fstat(handle.fileno()).st_size
        offset = 0
        while offset < file_size:
            try:
                record, size = _read_record(handle, path, offset, file_size, read_pixels)
            except BadRecord as error:
                if not skip_bad:
                    raise
                if on_bad is not None:
                    on_bad(error)
                if not error.resumable:
                    return
                offset += error.skip
                handle.seek(offset)
                continue
            offset += size
            yield record


def _read_record(handle: BinaryIO, path: Path, offset: int, file_size: int, read_pixels: bool) -> tuple[GntRecord, int]:
    """The record at `offset` (the handle is there) and its size in bytes."""
    left = file_size - offset
    if left < HEADER.size:
        raise BadRecord(path, offset, f"truncated: {left} bytes left, a record header needs {HEADER.size}")
    size, tag, width, height = HEADER.unpack(handle.read(HEADER.size))
    if size != HEADER.size + width * height:
        raise BadRecord(path, offset, f"size field {size} does not match 10 + {width}x{height}")
    if size > left:
        raise BadRecord(path, offset, f"truncated: record of {size} bytes but only {left} left in the file")

    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise BadRecord(path, offset, f"bitmap is {width}x{height} (each side must be 1..{MAX_SIDE})", skip=size)
    try:
        char = decode_tag(tag)
    except ValueError as error:
        raise BadRecord(path, offset, str(error), skip=size) from None
    if not read_pixels:
        handle.seek(offset + size)
        return GntRecord(offset, tag, char, None), size
    pixels = handle.read(width * height)
    if len(pixels) != width * height:  # the file shrank while we read it
        raise BadRecord(path, offset, "truncated while reading")
    return GntRecord(offset, tag, char, np.frombuffer(pixels, dtype=np.uint8).reshape(height, width)), size


def to_glyph(bitmap: np.ndarray, size: int) -> np.ndarray:
    """A CASIA bitmap (255 = background) as a size x size store image: inverted, squared, resized."""
    height, width = bitmap.shape
    side = max(height, width)
    square = np.zeros((side, side), dtype=np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = 255 - bitmap
    if side == size:
        return square
    return np.asarray(Image.fromarray(square).resize((size, size), Image.LANCZOS))


def find_gnt_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The `.gnt` files named by `paths`: files as given, folders searched recursively.

    Folders are listed in sorted path order, so the same inputs always give the same
    sample order; a file reached twice is read once.
    """
    if not paths:
        raise InputError("no .gnt files or folders given")
    files: list[Path] = []
    seen: set[Path] = set()
    for given in map(Path, paths):
        if given.is_dir():
            found = sorted(p for p in given.rglob("*") if p.suffix.lower() == ".gnt" and p.is_file())
            if not found:
                raise InputError(f"{given}: no .gnt files in this folder")
        elif given.is_file():
            found = [given]
        else:
            raise InputError(f"{given}: no such file or folder")
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files


@dataclass
class GntImportSummary:
    """What `import_gnt` did, for the CLI to print."""

    out: Path
    size: int
    files: int = 0
    records: int = 0  # readable records, written or not
    written: int = 0
    classes: int = 0
    sources: int = 0
    class_origin: str = ""
    out_of_charset: Counter = field(default_factory=Counter)
    bad_records: int = 0
    cut_files: int = 0  # files abandoned at a record whose size field cannot be trusted
    bad_examples: list[BadRecord] = field(default_factory=list)  # the first few, for the report

    def note_bad(self, error: BadRecord) -> None:
        self.bad_records += 1
        self.cut_files += not error.resumable
        if len(self.bad_examples) < SHOWN_EXAMPLES:
            self.bad_examples.append(error)

    def report(self) -> str:
        lines = [
            f"read {_count(self.files, '.gnt file')}, {_count(self.records, 'record')}; wrote {_count(self.written, 'image')} "
            f"({self.size}x{self.size}, {_count(self.classes, 'class', 'classes')}, {_count(self.sources, 'source')}) to {self.out}"
        ]
        skipped = sum(self.out_of_charset.values())
        if skipped:
            examples = ", ".join(f"{char} ({count:,})" for char, count in self.out_of_charset.most_common(SHOWN_EXAMPLES))
            more = len(self.out_of_charset) - SHOWN_EXAMPLES
            examples += f", ... ({more:,} more characters)" if more > 0 else ""
            lines.append(f"skipped {_count(skipped, 'record')} of {_count(len(self.out_of_charset), 'character')} "
                         f"outside {self.class_origin}: {examples}")
        if self.bad_records:
            lines.append(f"skipped {_count(self.bad_records, 'bad record')} (--skip-bad)"
                         + (f"; {_count(self.cut_files, 'file')} cut short at a bad record" if self.cut_files else ""))
            for error in self.bad_examples:
                lines.append(f"  {error}" + ("; rest of file skipped" if not error.resumable else ""))
            if self.bad_records > len(self.bad_examples):
                lines.append(f"  ... ({self.bad_records - len(self.bad_examples):,} more)")
        return "\n".join(lines)


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number:,} {singular if number == 1 else plural or singular + 's'}"


def import_gnt(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    size: int,
    charset: str | None = "gb2312-1",
    limit: int | None = None,
    classes_from_data: bool = False,
    skip_bad: bool = False,
    compression: str | None = None,
) -> GntImportSummary:
    """Write the records of the `.gnt` files under `paths` to a glyph store at `out`."""
    check_image_size(size)
    files = find_gnt_files(paths)
    try:
        if classes_from_data:
            if limit is not None:
                raise InputError("--limit applies to --charset, not --classes-from-data")
            characters = _characters_in(files, skip_bad)
            origin = "the data"
        else:
            characters = load_charset(charset or "gb2312-1", limit)
            origin = f"charset {charset}" + (f" (first {limit})" if limit is not None else "")
        summary = GntImportSummary(Path(out), size, files=len(files), classes=len(characters), class_origin=origin)
        provenance = {
            "command": "data-tools gnt",
            "classes": "found in the data, sorted by tag code" if classes_from_data else charset,
            "limit": limit,
            "size": size,
            "transform": "inverted (ink 255 on 0), padded to a centred square, resized with PIL LANCZOS",
            "skip_bad": skip_bad,
            "files": [],
        }
        with StoreWriter(out, size, ClassTable(characters), [], provenance, compression) as writer:
            _write_records(files, writer, {char: index for index, char in enumerate(characters)}, skip_bad, summary)
    except BadRecord as error:
        raise InputError(f"{error} (--skip-bad skips bad records)") from None
    return summary


def _write_records(files: Sequence[Path], writer: StoreWriter, class_index: dict[str, int], skip_bad: bool, summary: GntImportSummary) -> None:
    """Stream the records of `files` into `writer`, BATCH images at a time, counting into `summary`."""
    source_ids: dict[str, int] = {}
    images: list[np.ndarray] = []
    labels: list[int] = []
    sources: list[int] = []

    def flush() -> None:
        if images:
            writer.append(np.stack(images), labels, sources)
            images.clear()
            labels.clear()
            sources.clear()

    for path in files:
        if path.stem not in source_ids:
            source_ids[path.stem] = writer.add_source(path.stem)
        source = source_ids[path.stem]
        read = written = 0
        for record in iter_gnt_records(path, skip_bad, summary.note_bad):
            read += 1
            label = class_index.get(record.char)
            if label is None:
                summary.out_of_charset[record.char] += 1
                continue
            written += 1
            images.append(to_glyph(record.bitmap, summary.size))
            labels.append(label)
            sources.append(source)
            if len(images) >= BATCH or len(images) * summary.size**2 >= BATCH_BYTES:
                flush()
        flush()
        summary.records += read
        summary.written += written
        writer.provenance["files"].append({"path": str(path), "records": read, "written": written})
    if summary.written == 0:
        raise InputError(f"no images to write to {summary.out}: none of the {summary.records:,} records is a character of {summary.class_origin}")
    writer.provenance.update(records=summary.records, written=summary.written,
                             out_of_charset=sum(summary.out_of_charset.values()), bad_records=summary.bad_records)
    summary.sources = len(writer.sources)


def _characters_in(files: Sequence[Path], skip_bad: bool) -> list[str]:
    """Every character the files hold, sorted by tag code (a pass over the headers only)."""
    tags: dict[str, bytes] = {}
    for path in files:
        for record in iter_gnt_records(path, skip_bad, read_pixels=False):
            tags.setdefault(record.char, record.tag)
    if not tags:
        raise InputError(f"no readable records in {len(files)} .gnt files")
    return sorted(tags, key=lambda char: tags[char])
