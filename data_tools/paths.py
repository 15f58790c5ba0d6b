"""Outputs never replace inputs: the check every command makes before it does any work.

Each command of both CLIs hands `check_outputs_apart` the paths it reads and the paths
it writes. An output that is the same file as an input is refused with an `InputError`
naming both paths as the user gave them, so `data-tools preview a.h5 --out a.h5` exits
with code 2 and leaves `a.h5` as it was, instead of turning the store into a PNG.

"The same file" covers every way of spelling one: the same path, `./a.h5` and
`../dir/a.h5`, symbolic links on the way (os.path.realpath resolves them and `..`), and,
when both exist, hard links (the same device and inode, as os.path.samefile compares).
Two outputs of different options that are the same file (`split --train X --test X`)
are refused too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from .errors import InputError

PathArgument = str | os.PathLike
Paths = PathArgument | Iterable[PathArgument] | None  # one path, several, or none (an option not given)
Identity = tuple[str, tuple[int, int] | None]  # real path, and (device, inode) when the file exists


def check_outputs_apart(inputs: Mapping[str, Paths], outputs: Mapping[str, Paths]) -> None:
    """InputError if an output is the same file as an input, or as an output of another option.

    `inputs`: what a read path is, for the message ("store", "--data", "IDX file") -> the
    path or paths as the user gave them (or as found from them: the files of a folder).
    `outputs`: the option ("--out") -> the path the user gave, then any files the command
    writes from it (a run folder's log.txt, a report's picture beside it). None is skipped.
    """
    read = [(label, path, _identity(path)) for label, paths in inputs.items() for path in _listed(paths)]
    written: list[tuple[str, Path, Path, Identity]] = []  # (option, given path, path written, identity)
    for option, paths in outputs.items():
        listed = _listed(paths)
        written += [(option, listed[0], path, _identity(path)) for path in listed]
    for option, given, path, identity in written:
        for label, source, source_identity in read:
            if _same(identity, source_identity):
                how = f"{option} {given} is" if path == given else f"{option} {given} writes {path}, which is"
                raise InputError(f"{how} the input {label} {source}; writing it would replace the input; "
                                 f"choose another {option}")
    for index, (option, given, _, identity) in enumerate(written):
        for other, other_given, _, other_identity in written[index + 1:]:
            if other != option and _same(identity, other_identity):
                raise InputError(f"{option} and {other} are the same file ({given})")


def _listed(paths: Paths) -> list[Path]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(path) for path in paths if path is not None]


def _identity(path: Path) -> Identity:
    try:
        stat = os.stat(path)
    except (OSError, ValueError):  # not there (yet), or a name the OS cannot take
        return os.path.realpath(path), None
    return os.path.realpath(path), (stat.st_dev, stat.st_ino)


def _same(one: Identity, other: Identity) -> bool:
    return one[0] == other[0] or (one[1] is not None and one[1] == other[1])
