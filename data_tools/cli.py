"""`data-tools`: build and inspect glyph stores. Argument parsing only; the work lives in the modules."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from .errors import InputError, run_cli
from .grid import save_png
from .info import preview_grid, store_report
from .mnist import download_mnist, import_mnist

PROG = "data-tools"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Build and inspect cond-lsgan glyph stores (HDF5).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mnist = commands.add_parser("mnist", help="import MNIST IDX files into a glyph store")
    origin = mnist.add_mutually_exclusive_group(required=True)
    origin.add_argument("--idx-dir", type=Path, help="folder holding the IDX files (raw or .gz)")
    origin.add_argument("--download", action="store_true", help="download with torchvision into --root")
    mnist.add_argument("--root", type=Path, help="download folder (with --download)")
    mnist.add_argument("--split", choices=["train", "test"], required=True)
    mnist.add_argument("--size", type=int, choices=[28, 32], required=True, help="28 = native, 32 = the seed's Resize(32)")
    mnist.add_argument("--out", type=Path, required=True, help="glyph store to write (.h5)")
    mnist.add_argument("--gzip", action="store_true", help="gzip-compress the images")
    mnist.set_defaults(handler=_mnist)

    info = commands.add_parser("info", help="validate a glyph store and describe it")
    info.add_argument("store", type=Path)
    info.set_defaults(handler=_info)

    preview = commands.add_parser("preview", help="write a labelled grid of random samples as PNG")
    preview.add_argument("store", type=Path)
    preview.add_argument("--out", type=Path, required=True, help="PNG file to write")
    preview.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    preview.add_argument("--seed", type=int, default=0, help="which samples (default 0)")
    preview.add_argument("--columns", type=int, default=None, help="grid columns (default: square)")
    preview.set_defaults(handler=_preview)
    return parser


def _mnist(args: argparse.Namespace) -> int:
    if args.download:
        if args.root is None:
            raise InputError("--download needs --root DIR (where to keep the downloaded files)")
        idx_dir = download_mnist(args.root, args.split)
    else:
        idx_dir = args.idx_dir
    compression = "gzip" if args.gzip else None
    count = import_mnist(idx_dir, args.split, args.size, args.out, compression=compression)
    print(f"wrote {count:,} MNIST {args.split} images ({args.size}x{args.size}) to {args.out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    print(store_report(args.store))
    return 0


def _preview(args: argparse.Namespace) -> int:
    grid = preview_grid(args.store, n=args.n, seed=args.seed, columns=args.columns)
    save_png(grid, args.out)
    print(f"wrote a {grid.width}x{grid.height} preview grid to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `data-tools` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_cli(lambda: args.handler(args), prog=PROG)
