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
    sample.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default="auto")

    generate = commands.add_parser("generate", help="write generated images to a glyph store")
    generate.add_argument("--checkpoint", required=True)
    generate.add_argument("--n", type=int, required=True, help="number of images")
    generate.add_argument("--out", required=True, help="glyph store (.h5)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--batch-size", type=int, default=256)
    generate.add_argument("--device", default="auto")

    demo = commands.add_parser("demo", help="train a small model end to end on built-in data and write a grid")
    demo.add_argument("--out", default="cond-lsgan-demo", help="folder for everything the demo writes")
    demo.add_argument("--steps", type=int, default=None, help="training steps (default: the demo config's)")
    return parser


def _train(args: argparse.Namespace) -> None:
    from .training import resolve_run_config, train

    config = resolve_run_config(args.config, args.out, args.resume, args.overrides)
    result = train(config, args.data, args.out, resume=args.resume)
    print(f"trained to step {result.step}; checkpoint {result.checkpoint}; samples and metrics in {result.run_dir}")


def _sample(args: argparse.Namespace) -> None:
    from .generate import sample_grid

    print(f"wrote {sample_grid(args.checkpoint, args.out, args.n, args.seed, args.device)}")


def _generate(args: argparse.Namespace) -> None:
    from .generate import generate_store

    count = generate_store(args.checkpoint, args.out, args.n, args.seed, args.batch_size, args.device)
    print(f"wrote {count} generated images to {args.out}")


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(args.out, steps=args.steps)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"train": _train, "sample": _sample, "generate": _generate, "demo": _demo}
    return run_cli(lambda: handlers[args.command](args), prog="cond-lsgan")
