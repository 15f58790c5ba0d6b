"""Which classes and seeds a command means: index ranges, class texts, a class table matched onto another.

One module for the choices every command makes by class (`--classes 0,5-9`, `--chars`,
`--seeds 0-2`, the rows of a grid) and for matching two class tables by text, so a
judge, a checkpoint and a store built from different character lists are never compared
index by index.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from .data_tools_api import ClassTable, InputError

SHOWN_NAMES = 20  # missing classes named in one error


def parse_ranges(text: str, option: str, count: int | None = None) -> list[int]:
    """ "0,5-9" -> [0, 5, 6, 7, 8, 9] (order kept) for `option` (--seeds, --classes); each below `count` if given."""
    chosen: list[int] = []
    for part in str(text).split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise InputError(f"{option}: {part!r} is not a number or a range like 5-9")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise InputError(f"{option}: range {part.strip()} runs backwards")
        if count is not None and last >= count:
            raise InputError(f"{option}: {part.strip()} is outside the model's classes 0-{count - 1}")
        chosen.extend(range(first, last + 1))
    return chosen


def parse_seeds(text: str) -> list[int]:
    """ "0-2" -> [0, 1, 2]; "0,4,7-9" -> [0, 4, 7, 8, 9]; duplicates dropped, order kept."""
    return list(dict.fromkeys(parse_ranges(text, "--seeds")))


def class_mapping(source: ClassTable, target: ClassTable, source_name: str, target_name: str,
                  used: Sequence[int] | None = None) -> np.ndarray:
    """For each class of `source`, its index in `target` by class text (-1 where absent).

    Classes listed in `used` (default: all) must exist in `target`; otherwise one error
    names the missing ones, so a judge, a checkpoint and a data set built from different
    character lists never get compared index by index.
    """
    lookup = {text: index for index, text in enumerate(target.text)}
    mapping = np.array([lookup.get(text, -1) for text in source.text], dtype=np.int64)
    needed = range(len(source)) if used is None else used
    missing = [source.text[i] for i in needed if mapping[i] < 0]
    if missing:
        shown = " ".join(missing[:SHOWN_NAMES]) + (f" ... ({len(missing)} in all)" if len(missing) > SHOWN_NAMES else "")
        raise InputError(f"{len(missing)} class(es) of {source_name} are not in {target_name}'s class table "
                         f"({len(target)} classes): {shown}")
    return mapping


def spread_classes(count: int, rows: int) -> list[int]:
    """Up to `rows` class indices spread evenly over [0, count), first and last included.

    A grid of thousands of classes shows this fixed subset as rows, so one picture
    compares classes and successive pictures (training's samples) compare steps.
    """
    if count <= rows:
        return list(range(count))
    return [round(i * (count - 1) / (rows - 1)) for i in range(rows)]


def select_classes(classes: ClassTable, chars: str | None = None, indices: str | None = None, all_classes: bool = False) -> list[int]:
    """Class indices chosen by characters, by an index list like "0,5-9", or all of them.

    `chars` is split at commas and spaces; a piece that is a class text of several
    characters (`Greek/character01`) is that class, any other piece is one class per character.
    """
    if sum(x is not None and x is not False for x in (chars, indices, all_classes or None)) != 1:
        raise InputError("choose the classes with exactly one of --chars, --classes or --all")
    if all_classes:
        return list(range(len(classes)))
    if chars is not None:
        return _classes_of_text(classes, chars)
    return parse_ranges(indices, "--classes", len(classes))


def _classes_of_text(classes: ClassTable, chars: str) -> list[int]:
    pieces = chars.replace(",", " ").split()
    known = set(classes.text)
    wanted = [text for piece in pieces for text in ([piece] if piece in known else piece)]
    missing = [repr(text) for text in wanted if text not in known]  # in the order given: nothing merged or dropped
    if missing:
        several = any(len(text) > 1 for text in classes.text)
        raise InputError(f"not in the model's class table ({len(classes)} classes): {', '.join(missing[:20])}"
                         + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
                         + ("; its classes of several characters are chosen whole (--chars a,b/c) or by index (--classes)"
                            if several else ""))
    if not wanted:
        raise InputError("--chars is empty")
    return [classes.index(text) for text in wanted]
