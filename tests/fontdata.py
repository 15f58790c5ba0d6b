"""Fonts for the font and rendering tests: the pip font packages of the `test` extra, and
small fonts the tests cut from them with fontTools (a subset lacking most characters,
one whose cmap sends several characters to one glyph or to an empty glyph)."""

from __future__ import annotations

import logging
from pathlib import Path

import paperang_p2_fonts_cjk
import pylopdf_fonts_zh_cn
from fontTools import subset
from fontTools.ttLib import TTFont

NOTO_SANS_SC = pylopdf_fonts_zh_cn.sans_path()
NOTO_SERIF_SC = pylopdf_fonts_zh_cn.serif_path()
WQY_MICROHEI = Path(paperang_p2_fonts_cjk.__file__).parent / "fonts" / "wqy-microhei.ttc"  # 2 faces

logging.getLogger("fontTools.subset").setLevel(logging.ERROR)  # "FFTM NOT subset" chatter


def subset_font(source: Path, text: str, out: Path, name: str, remap: dict[str, str] | None = None,
                flavor: str | None = None) -> Path:
    """Write a font with only the glyphs of `text` (plus .notdef), full name `name`.

    `flavor` "woff" or "woff2" writes a web font, as Google Fonts and @fontsource ship them.

    `remap` then points characters at the glyph of another character already in the
    font (`{"X": "Y"}` draws Y for X), which is how a font ends up with a cmap entry for a
    character it has no real glyph for.
    """
    font = TTFont(source, fontNumber=0)
    options = subset.Options()
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    names = font["name"]
    for record in list(names.names):
        if record.nameID in (1, 4, 6, 16, 17):
            names.removeNames(nameID=record.nameID)
    names.setName(name, 1, 3, 1, 0x409)
    names.setName(name, 4, 3, 1, 0x409)
    names.setName(name.replace(" ", ""), 6, 3, 1, 0x409)
    for table in font["cmap"].tables:
        if table.isUnicode():
            for character, target in (remap or {}).items():
                table.cmap[ord(character)] = table.cmap[ord(target)]
    font.flavor = flavor
    font.save(out)
    return out
