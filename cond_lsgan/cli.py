"""`cond-lsgan` command line: parses arguments and calls the library; no logic of its own.

    cond-lsgan train --config configs/mnist.toml --data m.h5 --out runs/mnist [--resume auto] [key=value ...]
    cond-lsgan sample --checkpoint CKPT --out grid.png [--n 64]
    cond-lsgan generate --checkpoint CKPT --n N --out gen.h5
    cond-lsgan demo [--out DIR]

Bad input (missing file, config typo, wrong store) prints one line and exits with 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from data_tools.errors import InputError, run_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cond-lsgan", description="Train and sample class-conditional least-squares GANs.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a GAN on a glyph store")
    train.add_argument("--config", help="TOML config (default: the run folder's config.json when resuming)")
    train.add_argument("--data", required=True, help="glyph store (.h5) to train on")
    train.add_argument("--out", required=True, help="run folder for config, metrics, samples, checkpoints")
    train.add_argument("--resume", help="'auto' (newest checkpoint in --out, if any) or a checkpoint path")
    train.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides, e.g. train.steps=300")

    sample = commands.add_parser("sample", help="write a grid of generated images")
    sample.add_argument("--checkpoint", required=True)
    sample.add_argument("--out", required=True, help="PNG file")
    sample.add_argument("--n", type=int, default=64, help="images (unconditional) or columns per class (default 64; 8 is a good value for classes)")
    sample.add_argument("--chars", help="conditional: one row per character, e.g. 永和九年")
    sample.add_argument("--interpolate", metavar="A,B", help="conditional: soft labels from class A to class B, one row per noise")
    _add_sampling_options(sample)

    generate = commands.add_parser("generate", help="write generated images to a glyph store or PNG files")
    generate.add_argument("--checkpoint", required=True)
    generate.add_argument("--out", required=True, help="glyph store (.h5), or a new folder with --format png")
    which = generate.add_mutually_exclusive_group()
    which.add_argument("--chars", help="conditional: the classes of these characters, e.g. 永和九年")
    which.add_argument("--classes", help="conditional: class indices, e.g. 0,5-9")
    which.add_argument("--all", action="store_true", help="conditional: every class")
    count = generate.add_mutually_exclusive_group(required=True)
    count.add_argument("--per-class", type=int, help="conditional: images per chosen class")
    count.add_argument("--n", type=int, help="unconditional: number of images")
    generate.add_argument("--format", choices=["h5", "png"], default="h5")
    generate.add_argument("--batch-size", type=int, default=256)
    _add_sampling_options(generate)

    demo = commands.add_parser("demo", help="train a small model end to end on built-in data and write a grid")
    demo.add_argument("--out", default="cond-lsgan-demo", help="folder for everything the demo writes")
    demo.add_argument("--steps", type=int, default=None, help="training steps (default: the demo config's)")
    return parser


def _train(args: argparse.Namespace) -> None:
    from .training import resolve_run_config, train

    config = resolve_run_config(args.config, args.out, args.resume, args.overrides)
    result = train(config, args.data, args.out, resume=args.resume)
    print(f"trained to step {result.step}; checkpoint {result.checkpoint}; samples and metrics in {result.run_dir}")


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="noise seed: the same seed gives the same images")
    parser.add_argument("--truncation", type=float, help="redraw noise values beyond ±T (fewer, cleaner variations)")
    parser.add_argument("--weights", choices=["ema", "raw"], default="ema", help="EMA (default) or raw generator weights")
    parser.add_argument("--device", default="auto")


def _sample(args: argparse.Namespace) -> None:
    from .generate import sample_grid

    path = sample_grid(args.checkpoint, args.out, n=args.n, seed=args.seed, device=args.device, chars=args.chars,
                       interpolate=args.interpolate, truncation=args.truncation, weights=args.weights)
    print(f"wrote {path}")


def _generate(args: argparse.Namespace) -> None:
    from .generate import generate_pngs, generate_store

    per_class = args.per_class if args.per_class is not None else args.n
    write = generate_pngs if args.format == "png" else generate_store
    count = write(args.checkpoint, args.out, per_class, chars=args.chars, indices=args.classes, all_classes=args.all,
                  seed=args.seed, batch_size=args.batch_size, truncation=args.truncation, device=args.device,
                  weights=args.weights)
    print(f"wrote {count} generated images to {args.out}")


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(args.out, steps=args.steps)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"train": _train, "sample": _sample, "generate": _generate, "demo": _demo}
    return run_cli(lambda: handlers[args.command](args), prog="cond-lsgan")
