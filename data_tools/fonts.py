"""Font faces: where they are, what they are called, which characters they really have.

Rendering needs to know, before drawing anything, whether a face has a glyph for a
character: Pillow draws a .notdef box (or nothing) for a missing one and has no API to
ask. The face's cmap (read with fontTools) is the answer, so coverage is always decided
from the cmap; a code point mapped to `.notdef` counts as missing.

A `.ttc`/`.otc` collection holds several faces (NotoSansCJK-Regular.ttc: JP, KR, SC,
TC, HK and their Mono forms), so a face is a file plus an index, written `path#index`
(`parse_font_spec`). A collection named without an index is an error when it holds more
than one face, because picking face 0 silently would give Japanese glyph forms from a
Noto CJK file.

Web fonts (`.woff`, `.woff2`) read like any other. Google Fonts and the npm @fontsource
packages ship a CJK face as about a hundred `unicode-range` subset files, each holding a
slice of the characters under the same full name; web-font files of one folder with one
full name are one face (a `FontFace` with `parts`): its coverage is the union of the
parts' cmaps and each character is drawn from the first part (in file-name order) that
has it. Such a face is named by its folder (`FOLDER#N` when the folder holds several),
and a folder whose font files are all of one face (an @fontsource package) names it too.

Discovery (`discover_fonts`) looks, in this order, at the paths given, the installed pip
font packages (top-level packages whose name contains "fonts", such as
`pylopdf_fonts_zh_cn` and `paperang_p2_fonts_cjk`; found without importing them) and the
platform's system font folders. A file found by scanning a folder that cannot be read
as a font is skipped; a file named explicitly must be a font (`InputError` otherwise).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import pkgutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .errors import InputError

WEB_FONT_SUFFIXES = (".woff", ".woff2")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc", *WEB_FONT_SUFFIXES)
PACKAGE_NAME_PART = "fonts"

_SINGLE_FONT_TAGS = (b"\x00\x01\x00\x00", b"OTTO", b"true", b"wOFF", b"wOF2")
_COLLECTION_TAG = b"ttcf"


@dataclass(frozen=True)
class FontFace:
    """One face: `path`, its `index` in a collection, its full name.

    A web-font subset family has `parts` (its files, in file-name order); its `path` is
    their folder and `index` its position among that folder's families.
    """

    path: Path
    index: int = 0
    name: str = ""
    collection: bool = False  # named path#index: a face of a .ttc/.otc, or one of several families in a folder
    parts: tuple[Path, ...] = ()

    @property
    def spec(self) -> str:
        """How to name this face on the command line (`--font`)."""
        return f"{self.path}#{self.index}" if self.collection else str(self.path)

    @property
    def files(self) -> tuple[tuple[Path, int], ...]:
        """The (file, face number in it) pairs the face's glyphs come from."""
        return tuple((part, 0) for part in self.parts) if self.parts else ((self.path, self.index),)

    def covers(self, characters: Sequence[str]) -> list[bool]:
        """For each character, whether the face's cmap maps it to a real glyph."""
        return [part >= 0 for part in self.part_of(characters)]

    def part_of(self, characters: Sequence[str]) -> list[int]:
        """For each character, the position in `files` of the first file that has it, or -1."""
        found = [-1] * len(characters)
        for position, (path, index) in enumerate(self.files):
            mapped = _mapped_code_points(path, index)
            for i, character in enumerate(characters):
                if found[i] < 0 and len(character) == 1 and ord(character) in mapped:
                    found[i] = position
        return found

    def missing(self, characters: Sequence[str]) -> list[str]:
        """The characters the face has no glyph for, in the given order."""
        return [c for c, present in zip(characters, self.covers(characters)) if not present]

    def sha256(self) -> str:
        """Digest of the whole font file, or of its parts' digests in order (for provenance)."""
        if not self.parts:
            return _file_sha256(self.path)
        return hashlib.sha256("".join(_file_sha256(part) for part in self.parts).encode()).hexdigest()


def parse_font_spec(spec: str | os.PathLike) -> tuple[Path, int | None]:
    """Split `path#index` into (path, index); a plain path gives index None."""
    text = os.fspath(spec)
    base, hash_sign, index = text.rpartition("#")
    if hash_sign and base and index.isdigit():
        return Path(base), int(index)
    return Path(text), None


def read_faces(path: str | os.PathLike) -> list[FontFace]:
    """Every face of the font file at `path` (one for .ttf/.otf); InputError if not a font."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"font file not found: {path}")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a font file")
    try:
        with open(path, "rb") as handle:
            header = handle.read(12)
    except OSError as error:
        raise InputError(f"cannot read font {path}: {error.strerror or error}") from None
    tag = header[:4]
    if tag == _COLLECTION_TAG and len(header) == 12:
        count = struct.unpack(">I", header[8:12])[0]
        collection = True
    elif tag in _SINGLE_FONT_TAGS:
        count, collection = 1, False
    else:
        raise InputError(f"{path}: not a font file (expected TrueType/OpenType .ttf, .otf, .ttc, .otc, .woff or .woff2)")
    return [FontFace(path, index, _full_name(path, index), collection) for index in range(count)]


def open_font_spec(spec: str | os.PathLike) -> FontFace:
    """The face named by `path` or `path#index` (a file, or a folder of subset files), checked to exist."""
    path, index = parse_font_spec(spec)
    if path.is_dir():
        return _folder_face(path, index)
    faces = read_faces(path)
    if index is None:
        if len(faces) > 1:
            listing = "; ".join(f"#{face.index} {face.name}" for face in faces)
            raise InputError(f"{path} holds {len(faces)} faces, name one as {path}#N: {listing}")
        return faces[0]
    if index >= len(faces):
        raise InputError(f"{path} has {len(faces)} face(s) (#0-#{len(faces) - 1}), no face #{index}")
    return faces[index]


def discover_fonts(extra_paths: Iterable[str | os.PathLike] = (), installed: bool = True) -> list[FontFace]:
    """Faces in `extra_paths` (files, `path#index` or folders), then installed ones if `installed`.

    Installed means pip font packages, then the system font folders. Each file is listed
    once (by its resolved path), at its first place in that order.
    """
    faces: list[FontFace] = []
    seen: set[Path] = set()

    def add(found: list[FontFace]) -> None:
        if found and found[0].files[0][0].resolve() not in seen:
            seen.add(found[0].files[0][0].resolve())
            faces.extend(found)

    for spec in extra_paths:
        path, index = parse_font_spec(spec)
        if path.is_dir() and index is None:
            for found in _folder_faces(path):
                add(found)
        elif index is not None:
            add([open_font_spec(spec)])
        else:
            add(read_faces(path))
    if installed:
        for folder in font_package_dirs() + system_font_dirs():
            for found in _folder_faces(folder):
                add(found)
    return faces


def font_package_dirs() -> list[Path]:
    """Folders of the installed top-level packages whose name contains "fonts", by name."""
    folders = []
    names = sorted({module.name for module in pkgutil.iter_modules() if module.ispkg and PACKAGE_NAME_PART in module.name.lower()})
    for name in names:
        try:
            spec = importlib.util.find_spec(name)  # locates the package without importing it
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.submodule_search_locations:
            folders.extend(Path(location) for location in spec.submodule_search_locations)
    return folders


def system_font_dirs() -> list[Path]:
    """The usual font folders of this platform (those that exist)."""
    home = Path.home()
    if sys.platform == "win32":
        candidates = [Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts"]
        if "LOCALAPPDATA" in os.environ:
            candidates.append(Path(os.environ["LOCALAPPDATA"]) / "Microsoft" / "Windows" / "Fonts")
    elif sys.platform == "darwin":
        candidates = [Path("/System/Library/Fonts"), Path("/Library/Fonts"), home / "Library" / "Fonts"]
    else:
        candidates = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), home / ".local" / "share" / "fonts", home / ".fonts"]
    return [folder for folder in candidates if folder.is_dir()]


@functools.lru_cache(maxsize=1)
def find_cjk_caption_font() -> FontFace | None:
    """An installed face with every GB2312 level-1 character, for CJK captions; None if none.

    Pip font packages come first in discovery, so with the `fonts` extra installed the
    choice does not depend on the system's fonts.
    """
    from .charsets import gb2312_level1

    characters = gb2312_level1()
    for face in discover_fonts():
        if all(face.covers(characters)):
            return face
    return None


def _font_files(folder: Path) -> list[Path]:
    """Font files under `folder`, sorted, without following symlinked folders (no loops)."""
    files = []
    for root, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        files.extend(Path(root) / name for name in sorted(filenames) if name.lower().endswith(FONT_SUFFIXES))
    return files


def _folder_faces(folder: Path) -> list[list[FontFace]]:
    """The faces under `folder`, one list per file, or per subset family of web-font files.

    Web-font files of one folder with one full name form a family; where a subset ships
    as both .woff2 and .woff (as @fontsource packages do), the .woff copy is left out.
    A family of one file is that file's face.
    """
    by_folder: dict[Path, list[Path]] = {}
    for file in _font_files(folder):
        by_folder.setdefault(file.parent, []).append(file)
    found = []
    for directory, files in by_folder.items():
        web = [file for file in files if file.suffix.lower() in WEB_FONT_SUFFIXES]
        woff2_stems = {file.stem for file in web if file.suffix.lower() == ".woff2"}
        web = [file for file in web if file.suffix.lower() == ".woff2" or file.stem not in woff2_stems]
        found += [_try_read_faces(file) for file in files if file.suffix.lower() not in WEB_FONT_SUFFIXES]
        families: dict[str, list[Path]] = {}
        for file in web:
            for face in _try_read_faces(file):
                families.setdefault(face.name, []).append(file)
        several = sum(len(parts) > 1 for parts in families.values()) > 1
        index = 0
        for name, parts in sorted(families.items()):
            if len(parts) == 1:
                found.append(read_faces(parts[0]))
            else:
                found.append([FontFace(directory, index, name, several, tuple(parts))])
                index += 1
    return found


def _folder_face(folder: Path, index: int | None) -> FontFace:
    """The face `--font FOLDER[#N]` names: a family of subset files in FOLDER, or the one face found under it."""
    faces = [face for found in _folder_faces(folder) for face in found]
    own = [face for face in faces if face.parts and face.path == folder and index in (None, face.index)]
    if len(own) == 1:
        return own[0]
    candidates = own or (faces if index is None else [])
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise InputError(f"{folder}: no font face {'#' + str(index) + ' ' if index is not None else ''}found in this folder")
    listing = "; ".join(f"{face.spec} ({face.name})" for face in candidates[:6])
    raise InputError(f"{folder} holds {len(candidates)} faces, name one: {listing}{'; ...' if len(candidates) > 6 else ''}")


def _try_read_faces(path: Path) -> list[FontFace]:
    try:
        return read_faces(path)
    except InputError:
        return []


def _open_ttfont(path: Path, index: int):
    from fontTools.ttLib import TTFont  # imported here: most data-tools commands never need it

    return TTFont(path, fontNumber=index, lazy=True)


# What fontTools raises on damaged font data varies with the damage.
_FONT_ERRORS = (OSError, EOFError, ValueError, KeyError, IndexError, AssertionError, struct.error)


def _full_name(path: Path, index: int) -> str:
    from fontTools.ttLib import TTLibError

    try:
        with _open_ttfont(path, index) as font:
            name = font["name"].getBestFullName() if "name" in font else None
    except (TTLibError, *_FONT_ERRORS) as error:
        raise InputError(f"{path}: not a readable font ({error})") from None
    return name or (f"{path.stem} #{index}" if index else path.stem)


@functools.lru_cache(maxsize=512)  # a subset family has about a hundred files
def _mapped_code_points(path: Path, index: int) -> frozenset[int]:
    """The code points the cmap of face `index` of `path` maps to a glyph other than .notdef."""
    from fontTools.ttLib import TTLibError

    try:
        with _open_ttfont(path, index) as font:
            cmap = font.getBestCmap() or {}
    except (TTLibError, *_FONT_ERRORS) as error:
        raise InputError(f"{path}#{index}: cannot read the character map ({error})") from None
    return frozenset(code for code, glyph in cmap.items() if glyph != ".notdef")


@functools.lru_cache(maxsize=256)
def _file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def format_font_listing(faces: Sequence[FontFace], characters: Sequence[str] | None = None, show_missing: bool = False) -> str:
    """`data-tools fonts` output: one line per face (spec, name[, coverage]), missing characters below."""
    lines = []
    for face in faces:
        line = f"{face.spec}  {face.name}" + (f"  ({len(face.parts)} subset files)" if face.parts else "")
        if characters is not None:
            missing = face.missing(characters)
            line += f"  {len(characters) - len(missing):,}/{len(characters):,}"
            if show_missing and missing:
                line += "\n" + "\n".join("    missing: " + "".join(missing[start : start + 40]) for start in range(0, len(missing), 40))
        lines.append(line)
    return "\n".join(lines)
