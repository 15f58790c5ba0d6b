"""The work of `data-tools render` done in worker processes: each draws chunks of one face's characters.

render.py sends `RenderJob` once to each worker and then (face position, character
indices) tasks; a worker opens each file of a face once, and draws each character from
the file of the face that has it (a web-font subset family has many). With one worker
the chunks are drawn in the calling process.

A face can have an intact cmap (so it was chosen) and yet outlines FreeType refuses to
draw ("invalid outline"), a file FreeType cannot load, or absurdly large glyphs
(drawing.GlyphTooLarge). That is a damaged font, not a bug of ours: the chunk comes back
with `damage` saying so, for render.py to leave the face out or refuse it, rather than as
an exception that would end the whole run with a traceback.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import ImageFont

from .drawing import GlyphTooLarge, augment_glyph, draw_glyph, draw_size, fit_glyph


@dataclass(frozen=True)
class RenderJob:
    """Everything a worker needs, sent once when it starts."""

    faces: tuple[tuple[tuple[str, int], ...], ...]  # by face position: its (path, face index) files
    part_of: tuple[tuple[int, ...] | None, ...]  # by face position: the file drawing each character (None: one file)
    characters: tuple[str, ...]
    size: int
    margin: int
    augment: int
    seed: int


_job: RenderJob | None = None
_fonts: dict[tuple[int, int], ImageFont.FreeTypeFont] = {}  # (face position, file position) -> font
_damaged: dict[int, str] = {}  # face position -> why it cannot be drawn, once a chunk found out


def _start_worker(job: RenderJob, ignore_interrupt: bool) -> None:
    global _job
    if ignore_interrupt:  # Ctrl-C reaches the whole process group; the main process handles it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _job = job
    _fonts.clear()
    _damaged.clear()


class Chunk(NamedTuple):
    """One rendered chunk: for each character index, its 1 + augment images as bytes (None if blank).

    `damage` says why FreeType could not load or draw the face, where it could not; the
    chunk's `rendered` then stops there.
    """

    position: int
    rendered: list[tuple[int, bytes | None]]
    damage: str | None = None


def _render_chunk(task: tuple[int, tuple[int, ...]]) -> Chunk:
    """Render one chunk of the face at the task's position (nothing more once a face proved damaged)."""
    position, indices = task
    job = _job
    if position in _damaged:
        return Chunk(position, [], _damaged[position])
    parts = job.part_of[position]
    rendered = []
    for i in indices:
        part = parts[i] if parts else 0
        try:
            rendered.append((i, _render_character(_font(position, part), job, position, i)))
        except (FaceDamaged, GlyphTooLarge) as error:
            _damaged[position] = str(error)
            return Chunk(position, rendered, _damaged[position])
        except OSError as error:  # Pillow passes FreeType's errors on as OSError: "invalid outline", ...
            _damaged[position] = f"FreeType cannot draw {job.characters[i]} ({error})"
            return Chunk(position, rendered, _damaged[position])
    return Chunk(position, rendered)


class FaceDamaged(Exception):
    """A file of a face that FreeType cannot load (fontTools read its cmap, so it was chosen)."""


def _font(position: int, part: int) -> ImageFont.FreeTypeFont:
    """File `part` of the face at `position`, opened once per worker."""
    font = _fonts.get((position, part))
    if font is None:
        path, index = _job.faces[position][part]
        try:
            font = ImageFont.truetype(path, draw_size(_job.size), index=index, layout_engine=ImageFont.Layout.BASIC)
        except OSError as error:
            which = f"its file {os.path.basename(path)}" if len(_job.faces[position]) > 1 else "it"
            raise FaceDamaged(f"FreeType cannot load {which} ({error})") from None
        _fonts[position, part] = font
    return font


def _render_character(font: ImageFont.FreeTypeFont, job: RenderJob, position: int, char_index: int) -> bytes | None:
    big = draw_glyph(font, job.characters[char_index])
    if big is None:
        return None
    plain = fit_glyph(big, job.size, job.margin)
    if plain is None:
        return None
    parts = [plain]
    for variant in range(1, job.augment + 1):
        rng = np.random.default_rng((job.seed, position, char_index, variant))
        parts.append(augment_glyph(big, job.size, job.margin, rng, job.size / font.size) or plain)
    return b"".join(parts)


class chunk_results:
    """Context manager yielding the `Chunk`s in task order.

    With one worker the chunks are rendered in this process; otherwise by a pool that
    is terminated on the way out, also when the caller is interrupted.
    """

    def __init__(self, job: RenderJob, tasks: list, workers: int) -> None:
        self.job, self.tasks, self.workers = job, tasks, min(workers, max(1, len(tasks)))
        self.pool = None

    def __enter__(self):
        if self.workers == 1:
            _start_worker(self.job, ignore_interrupt=False)
            return map(_render_chunk, self.tasks)
        # While the pool forks, Ctrl-C is only noted: forked workers inherit that (not the
        # default "die") until their initializer ignores it, and the main process acts on
        # a noted Ctrl-C once the pool exists, instead of losing it.
        in_main_thread = threading.current_thread() is threading.main_thread()
        noted: list[int] = []
        previous = signal.signal(signal.SIGINT, lambda number, frame: noted.append(number)) if in_main_thread else None
        try:
            self.pool = multiprocessing.get_context().Pool(self.workers, initializer=_start_worker, initargs=(self.job, True))
        finally:
            if in_main_thread:
                signal.signal(signal.SIGINT, previous)
        if noted:
            self.pool.terminate()
            self.pool.join()
            raise KeyboardInterrupt
        return self.pool.imap(_render_chunk, self.tasks)

    def __exit__(self, kind, value, traceback) -> None:
        if self.pool is not None:
            if kind is None:
                self.pool.close()
            else:
                self.pool.terminate()
            self.pool.join()
