"""Traditional forms of simplified characters, for `data-tools render --with-traditional`.

Why: some faces draw a simplified code point with its traditional form (Liu Jian Mao Cao
draws 会 as 會, 于 as 於, 阴 as 陰) and their cmaps do not even hold the traditional
code point, so no font check can see it. A judge that has a class for 會 can: render adds
one class per traditional form and records in the store which simplified class each is
the form of (`traditional_of`, {"會": ["会"], ...}; store.py); the judge keeps that map
and `cond-lsgan audit` names a glyph labelled 会 that it reads as 會 "traditional".

The forms come from OpenCC (the `opencc` package, an optional extra: `pip install
'cond-lsgan[traditional]'`), in this order: its standard conversion (`s2t`), the Taiwan
and Hong Kong standards (`s2tw`, `s2hk`: 为 -> 爲 in s2t but 為 in Taiwan), then every
other character that its traditional-to-simplified table (`t2s`) turns into the
character (发 <- 發 and 髮, 后 <- 後, 只 <- 隻), ordered by code point. Each character is
converted alone (the inputs are joined by newlines, which no OpenCC phrase spans), never
in context. CJK compatibility ideographs (U+F900..., canonically equal to a unified
ideograph and drawn alike) are left out.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Sequence

from .errors import InputError

INSTALL_HINT = "pip install 'cond-lsgan[traditional]'"
STANDARDS = ("s2t", "s2tw", "s2hk")  # OpenCC configurations, the first one's form first
# The code points t2s is asked about: the CJK unified ideograph blocks (BMP, extension A, and B onwards).
CANDIDATE_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0x20000, 0x323B0))


@functools.lru_cache(maxsize=None)
def _converter(config: str):
    """An OpenCC converter (loading its dictionaries takes a moment: once per process); InputError naming the
    extra where the package is missing."""
    try:
        import opencc
    except ImportError:
        raise InputError(f"--with-traditional needs the opencc package: {INSTALL_HINT}") from None
    return opencc.OpenCC(f"{config}.json")


def _convert_each(config: str, characters: Sequence[str]) -> list[str]:
    """Each of `characters` converted on its own (see the module docstring)."""
    if not characters:
        return []
    converted = _converter(config).convert("\n".join(characters)).split("\n")
    if len(converted) != len(characters):  # never seen: OpenCC keeps line breaks
        raise RuntimeError(f"OpenCC {config} returned {len(converted)} lines for {len(characters)}")
    return converted


@functools.lru_cache(maxsize=1)
def _simplified_to_other_forms() -> dict[str, tuple[str, ...]]:
    """For each simplified character, the characters t2s turns into it (code point order)."""
    candidates = [chr(code) for start, stop in CANDIDATE_RANGES for code in range(start, stop)]
    found: dict[str, list[str]] = {}
    for traditional, simplified in zip(candidates, _convert_each("t2s", candidates)):
        if traditional != simplified and len(simplified) == 1:
            found.setdefault(simplified, []).append(traditional)
    return {simplified: tuple(forms) for simplified, forms in found.items()}


def traditional_forms(character: str) -> list[str]:
    """The traditional forms of `character` other than itself, most standard first; [] if it has none."""
    return traditional_forms_of([character])[character]


def traditional_forms_of(characters: Sequence[str]) -> dict[str, list[str]]:
    """`traditional_forms` of each of `characters` (one OpenCC call per configuration)."""
    characters = list(dict.fromkeys(characters))
    standard = [_convert_each(config, characters) for config in STANDARDS]
    others = _simplified_to_other_forms()
    forms = {}
    for position, character in enumerate(characters):
        found = [converted[position] for converted in standard] + list(others.get(character, ()))
        forms[character] = [form for form in dict.fromkeys(found)
                            if form != character and len(form) == 1 and unicodedata.normalize("NFC", form) == form]
    return forms


def traditional_classes(characters: Sequence[str]) -> dict[str, list[str]]:
    """The classes `--with-traditional` adds to a charset: {traditional form: [its simplified characters]}.

    One entry per distinct form that differs from its character and is not itself in
    `characters`, in the order the charset first meets it; a form of several of the
    characters (餘 of 余 and 馀) lists them all, in charset order.
    """
    present = set(characters)
    added: dict[str, list[str]] = {}
    for character, forms in traditional_forms_of(characters).items():
        for form in forms:
            if form not in present:
                added.setdefault(form, []).append(character)
    return added


def add_traditional(characters: Sequence[str], faces: Sequence, charset_name: str) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """`render --with-traditional`: (the charset followed by its traditional forms that at least one of `faces`
    covers, their `traditional_of` map, the forms no face covers).

    A form no face has would be a class without samples; it is left out (and listed)
    rather than added empty. InputError when nothing would be added.
    """
    added = traditional_classes(characters)
    if not added:
        raise InputError(f"--with-traditional: none of the {len(characters):,} characters of {charset_name} has a "
                         f"traditional form that is not itself in the set")
    forms = list(added)
    covered = [False] * len(forms)
    for face in faces:
        covered = [was or now for was, now in zip(covered, face.covers(forms))]
    kept = {form: added[form] for form, ok in zip(forms, covered) if ok}
    if not kept:
        raise InputError(f"--with-traditional: no font face has any of the {len(forms):,} traditional forms of "
                         f"{charset_name} ({''.join(forms[:20])}{'...' if len(forms) > 20 else ''})")
    return list(characters) + list(kept), kept, [form for form, ok in zip(forms, covered) if not ok]
