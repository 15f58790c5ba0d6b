"""Everything `cond_lsgan` uses of `data_tools`, in one place.

The dependency runs one way: `data_tools` (datasets and their HDF5 format) knows nothing
of `cond_lsgan`, and `cond_lsgan` modules import these names from here, never from
`data_tools` directly (a test checks both). So a reader sees at a glance which parts of
the dataset side the GAN side relies on:

    InputError, run_cli            bad input -> one line on stderr, exit code 2
    OneLineParser, finite_float,   argparse with one-line errors; numbers checked where parsed
    seed_int, SEED_LIMIT
    check_outputs_apart            refuse an output that is one of the inputs (every command, first)
    atomic_output, write_error,    outputs written under a temporary name, renamed when complete
    make_parent_folder
    ClassTable, GlyphSet,          the glyph store: class table, images in memory, writer, reader
    StoreWriter, read_store,
    MAX_IMAGE_SIZE, check_traditional_of  (and the traditional_of map of a store: render --with-traditional)
    probe_store                    a store from outside checked in a child process, before any
                                   thread exists (the CLI calls it on --data and the like)
    fraction_mask                  the seeded per-class hold-out that `data-tools split` uses
    image_grid, save_png           image grids with captions (training samples, `sample`, reports)
    render_glyphs, resolve_faces,  drawing characters from fonts (`cond-lsgan demo` only)
    format_report
"""

from data_tools.arguments import SEED_LIMIT, OneLineParser, finite_float, seed_int
from data_tools.atomic import atomic_output, make_parent_folder, write_error
from data_tools.errors import InputError, run_cli
from data_tools.grid import image_grid, save_png
from data_tools.paths import check_outputs_apart
from data_tools.probe import probe_store
from data_tools.render import format_report, render_glyphs, resolve_faces
from data_tools.split import fraction_mask
from data_tools.store import MAX_IMAGE_SIZE, ClassTable, GlyphSet, StoreWriter, check_traditional_of, read_store

__all__ = [
    "InputError", "run_cli", "OneLineParser", "finite_float", "seed_int", "SEED_LIMIT", "check_outputs_apart", "atomic_output", "make_parent_folder", "write_error", "ClassTable", "GlyphSet",
    "StoreWriter", "read_store", "MAX_IMAGE_SIZE", "probe_store", "fraction_mask", "image_grid", "save_png", "render_glyphs",
    "resolve_faces", "format_report", "check_traditional_of",
]
