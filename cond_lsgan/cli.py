"""`cond-lsgan` command line: parses arguments and calls the library; no logic of its own.

    cond-lsgan train --config configs/mnist.toml --data m.h5 --out runs/mnist [--resume auto] [key=value ...]
    cond-lsgan sample --checkpoint CKPT --out grid.png [--n 64]
    cond-lsgan generate --checkpoint CKPT --n N --out gen.h5
    cond-lsgan demo [--out DIR]
    cond-lsgan evaluate train-judge|generator|augment ...   (see cond_lsgan/evaluation)
    cond-lsgan styles --checkpoint CKPT --data STORE --out styles.pt [--sources A B] [--sheet fit.png]
    cond-lsgan audit STORE --judge J [--report R.json] [--out CLEAN.h5] [--sheet flagged.png]
    cond-lsgan experiment mog --loss lsgan|bce --seeds 0-9 --out DIR [key=value ...]
    cond-lsgan report RUN [--evaluation REPORT.json] --out report.html

Bad input (missing file, config typo, wrong store) prints one line and exits with 2, and
so does an output that is one of the command's inputs (`check_outputs_apart`, before any
work: an output never replaces an input). A training run stopped by SIGTERM or SIGINT
saves a checkpoint and exits with 128 + the signal number (143, 130); under torchrun
every rank runs this same command.

The process is this module's, not the library's: it checks the glyph stores a command
reads in a child process before any thread exists (`probe_store`: a damaged HDF5 file
can crash or hang the process that opens it), and sets the process-wide options that
CPU training is measured faster with (process.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .configs import shipped_config
from .data_tools_api import OneLineParser, check_outputs_apart, finite_float, probe_store, run_cli, seed_int
from .training.run_folder import RUN_FILES
from .training.run_outputs import check_outside_run_folders

EVALUATION_INPUTS = ("checkpoint", "judge", "data", "real", "generated", "test")  # the options `evaluate` reads


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="cond-lsgan", description="Train and sample class-conditional least-squares GANs.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a GAN on a glyph store")
    train.add_argument("--config", help="TOML config (default: the run folder's config.json when resuming)")
    train.add_argument("--data", required=True, help="glyph store (.h5) to train on")
    train.add_argument("--out", required=True, help="run folder for config, metrics, samples, checkpoints")
    train.add_argument("--resume", help="'auto' (newest checkpoint in --out, if any; give it under torchrun --max-restarts) "
                       "or a checkpoint path")
    train.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides, e.g. train.steps=300")

    sample = commands.add_parser("sample", help="write a grid of generated images")
    sample.add_argument("--checkpoint", required=True)
    sample.add_argument("--out", required=True, help="PNG file")
    sample.add_argument("--n", type=int, default=64, help="images (unconditional) or columns per class (default 64; 8 is a good value for classes)")
    rows = sample.add_mutually_exclusive_group()
    rows.add_argument("--chars", help="conditional: one row per character, e.g. 永和九年 (or per class text: a,b/c)")
    rows.add_argument("--classes", help="conditional: one row per class index, e.g. 0,5-9")
    sample.add_argument("--interpolate", metavar="A,B", help="conditional: soft labels from class A to class B, one row per noise")
    _add_sampling_options(sample)

    generate = commands.add_parser("generate", help="write generated images to a glyph store or PNG files")
    generate.add_argument("--checkpoint", required=True)
    generate.add_argument("--out", required=True, help="glyph store (.h5), or a new folder with --format png")
    which = generate.add_mutually_exclusive_group()
    which.add_argument("--chars", help="conditional: the classes of these characters, e.g. 永和九年 (or class texts: a,b/c)")
    which.add_argument("--classes", help="conditional: class indices, e.g. 0,5-9")
    which.add_argument("--all", action="store_true", help="conditional: every class")
    count = generate.add_mutually_exclusive_group(required=True)
    count.add_argument("--per-class", type=int, help="conditional: images per chosen class")
    count.add_argument("--n", type=int, help="unconditional: number of images")
    generate.add_argument("--format", choices=["h5", "png"], default="h5")
    generate.add_argument("--batch-size", type=int, default=256)
    generate.add_argument("--judge", help="judge file (evaluate train-judge): keep only glyphs it reads as their label")
    generate.add_argument("--min-confidence", type=finite_float, metavar="P",
                          help="with --judge: the judge's probability of the label must be at least P (e.g. 0.5)")
    generate.add_argument("--max-rounds", type=int, default=10, help="with --judge: rounds of redrawing rejected glyphs (default 10)")
    generate.add_argument("--styles", help="styles file (cond-lsgan styles): draw each glyph's noise between two fitted styles")
    generate.add_argument("--style-reach", type=finite_float, default=0.0, metavar="R",
                          help="with --styles: draw along the line through two styles up to R of their distance past "
                               "either one (styles no face has; default 0: between the two)")
    _add_sampling_options(generate)

    demo = commands.add_parser("demo", help="train a small model end to end on built-in data and write a grid")
    demo.add_argument("--out", default="cond-lsgan-demo", help="folder for everything the demo writes")
    demo.add_argument("--steps", type=int, default=None, help="training steps (default: the demo config's)")
    _add_evaluation_commands(commands)

    styles = commands.add_parser("styles", help="fit one noise vector per font face of a store, for generate --styles")
    styles.add_argument("--checkpoint", required=True, help="the checkpoint that will generate with these styles")
    styles.add_argument("--data", required=True, help="glyph store whose faces (sources) to fit")
    styles.add_argument("--out", required=True, help="styles file to write (.pt)")
    styles.add_argument("--sources", nargs="+", metavar="NAME", help="fit only these sources (default: every source with glyphs)")
    styles.add_argument("--glyphs-per-source", type=int, default=32, help="glyphs of each face one style must draw (default 32)")
    styles.add_argument("--steps", type=int, default=200, help="Adam steps per face (default 200)")
    styles.add_argument("--seed", type=seed_int, default=0)
    styles.add_argument("--sheet", help="PNG: each face's real glyphs above what its fitted style draws")
    styles.add_argument("--device", default="auto")

    audit = commands.add_parser("audit", help="flag glyphs a judge reads as another class, and outliers of their class")
    audit.add_argument("store", help="glyph store to audit")
    audit.add_argument("--judge", required=True, help="judge file (evaluate train-judge), best trained on other glyphs")
    audit.add_argument("--report", help="report of every flagged glyph and every source (.json)")
    audit.add_argument("--out", help="write the store without its flagged glyphs here (.h5)")
    audit.add_argument("--sheet", help="PNG of the flagged glyphs, captioned 'label drawn as read' (traditional), label>read "
                                       "(misread) or label? (outlier)")
    audit.add_argument("--min-confidence", type=finite_float, default=0.9, metavar="P",
                       help="misread: the judge reads another class with probability >= P (default 0.9)")
    audit.add_argument("--outlier-z", type=finite_float, default=4.0, metavar="Z",
                       help="outlier: robust z of the distance to the class's median features above Z (default 4)")
    audit.add_argument("--traditional-odds", type=finite_float, default=None, metavar="R",
                       help="traditional: the judge gives a traditional form of the label R times the label's probability, "
                            "or reads it with --min-confidence (default 10; needs a judge trained on a store rendered "
                            "with data-tools render --with-traditional)")
    audit.add_argument("--device", default="auto")

    report = commands.add_parser("report", help="one self-contained HTML page of a run: config, curves, grids, evaluation")
    report.add_argument("run", metavar="RUN", help="run folder (the --out of train); it may still be training")
    report.add_argument("--evaluation", metavar="REPORT", help="JSON report of evaluate generator (its .png beside it is shown too)")
    report.add_argument("--out", required=True, help="HTML file to write")
    return parser


def _check_outputs(inputs: dict, outputs: dict) -> None:
    """Every command but train: no output is an input, and none is a part of a run folder that train writes."""
    check_outside_run_folders(outputs)
    check_outputs_apart(inputs, outputs)


def _train(args: argparse.Namespace) -> int:
    from .training.loop import train
    from .training.resume import resolve_run_config

    check_outputs_apart({"--data": args.data, "--config": args.config},
                        {"--out": [args.out, *(Path(args.out) / name for name in RUN_FILES)]})
    config = resolve_run_config(args.config, args.out, args.resume, args.overrides)
    probe_store(args.data)
    _tune_process_for_training(config.train.device)
    result = train(config, args.data, args.out, resume=args.resume)
    if result.signal:  # stopped early with a checkpoint (the log said so): the shell's code for that signal
        return 128 + result.signal
    if result.main:
        print(f"trained to step {result.step}; checkpoint {result.checkpoint}; samples and metrics in {result.run_dir}")
    return 0


def _tune_process_for_training(device_name: str) -> None:
    """Process-wide settings that training on the CPU is measured faster with (process.py); the process is ours here."""
    from .process import keep_freed_memory
    from .runtime import resolve_device

    if resolve_device(device_name).type == "cpu":
        keep_freed_memory()


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=seed_int, default=0, help="noise seed: the same seed gives the same images")
    parser.add_argument("--truncation", type=finite_float, help="redraw noise values beyond ±T (fewer, cleaner variations)")
    parser.add_argument("--weights", choices=["ema", "raw"], default="ema", help="EMA (default) or raw generator weights")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                        help="arithmetic of the generator (default: the checkpoint's train.precision)")


def _sample(args: argparse.Namespace) -> None:
    from .sampling.generate import sample_grid

    _check_outputs({"--checkpoint": args.checkpoint}, {"--out": args.out})
    path = sample_grid(args.checkpoint, args.out, n=args.n, seed=args.seed, device=args.device, chars=args.chars,
                       indices=args.classes, interpolate=args.interpolate, truncation=args.truncation, weights=args.weights,
                       precision=args.precision)
    print(f"wrote {path}")


def _generate(args: argparse.Namespace) -> None:
    from .sampling.generate import GenerateRequest, generate_pngs, generate_store

    _check_outputs({"--checkpoint": args.checkpoint, "--judge": args.judge, "--styles": args.styles}, {"--out": args.out})
    request = GenerateRequest(
        args.checkpoint, args.per_class if args.per_class is not None else args.n, chars=args.chars,
        indices=args.classes, all_classes=args.all, seed=args.seed, batch_size=args.batch_size,
        truncation=args.truncation, device=args.device, weights=args.weights, precision=args.precision,
        judge=args.judge, min_confidence=args.min_confidence, max_rounds=args.max_rounds, styles=args.styles,
        style_reach=args.style_reach)
    write = generate_pngs if args.format == "png" else generate_store
    count = write(request, args.out)
    print(f"wrote {count} generated images to {args.out}")


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    _tune_process_for_training("auto")  # the demo config's train.device
    run_demo(args.out, steps=args.steps)


def _add_evaluation_commands(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("evaluate", help="measure generators with a judge classifier trained on real glyphs")
    kinds = evaluate.add_subparsers(dest="evaluation", required=True)
    judge = kinds.add_parser("train-judge", help="train the judge (a small CNN classifier) on a glyph store")
    judge.add_argument("--data", required=True, help="glyph store of real images")
    judge.add_argument("--out", required=True, help="judge file to write (.pt)")
    judge.add_argument("--steps", type=int, help="training steps (default: about 15 epochs, 500 to 5,000)")
    judge.add_argument("--seed", type=seed_int, default=0)
    judge.add_argument("--device", default="auto")
    generator = kinds.add_parser("generator", help="score a checkpoint: readability, judge-FID, diversity, copies")
    generator.add_argument("--checkpoint", required=True)
    generator.add_argument("--judge", required=True, help="judge file from train-judge")
    generator.add_argument("--data", required=True, help="real glyph store to compare with")
    generator.add_argument("--out", required=True, help="report (.json); a PNG of the best and worst classes goes beside it")
    generator.add_argument("--per-class", type=int, default=50, help="conditional: images generated per class (default 50)")
    generator.add_argument("--n", type=int, default=5000, help="unconditional: images generated (default 5000)")
    generator.add_argument("--chars", help="conditional: only these classes (default: all the model's classes)")
    generator.add_argument("--seed", type=seed_int, default=0)
    generator.add_argument("--weights", choices=["ema", "raw"], default="ema", help="EMA (default) or raw generator weights")
    generator.add_argument("--device", default="auto")
    generator.add_argument("--html", metavar="PAGE", help="also write the report as one self-contained HTML page")
    augment = kinds.add_parser("augment", help="do generated images help a classifier on held-out data more than jitter does?")
    augment.add_argument("--real", required=True, help="real training glyph store")
    augment.add_argument("--generated", required=True, nargs="+", metavar="STORE",
                         help="generated glyph store(s) (cond-lsgan generate); several are compared in one run")
    augment.add_argument("--test", required=True, help="test glyph store (e.g. held-out fonts)")
    augment.add_argument("--out", required=True, help="report (.json)")
    augment.add_argument("--seeds", default="0-2", help="classifier seeds, e.g. 0-2 (default)")
    augment.add_argument("--steps", type=int, help="classifier steps, the same for every arm (default as train-judge)")
    augment.add_argument("--generated-share", type=finite_float, default=0.5,
                         help="share of each batch drawn from the generated set in the generated arms (default 0.5)")
    augment.add_argument("--device", default="auto")

    experiment = commands.add_parser("experiment", help="the paper's experiments")
    which = experiment.add_subparsers(dest="experiment", required=True)
    mog = which.add_parser("mog", help="2-D mixture of 8 Gaussians, regular GAN (bce) vs LSGAN, over seeds")
    mog.add_argument("--loss", required=True, choices=["lsgan", "bce"])
    mog.add_argument("--seeds", default="0-9", help="seeds, e.g. 0-9 (default); all train at once")
    mog.add_argument("--out", required=True, help="folder for per-seed results, summary.json and compare.png")
    mog.add_argument("--config", default=str(shipped_config("mog8.toml")),
                     help="TOML config (default: the shipped configs/mog8.toml, the paper's settings)")
    mog.add_argument("--html", metavar="PAGE", help="also write the summary and figures as one self-contained HTML page")
    mog.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides, e.g. train.steps=2000")


def _evaluate(args: argparse.Namespace) -> None:
    from . import judge
    from .evaluation import augment_experiment as augment
    from .evaluation import scoring
    from .evaluation.common import picture_path
    from .selection import parse_seeds

    picture = [picture_path(args.out)] if args.evaluation == "generator" else []
    _check_outputs({f"--{option}": getattr(args, option, None) for option in EVALUATION_INPUTS},
                   {"--out": [args.out, *picture], "--html": getattr(args, "html", None)})
    for option in ("data", "real", "generated", "test"):  # the stores this command reads
        value = getattr(args, option, None)
        for path in value if isinstance(value, list) else [] if value is None else [value]:
            probe_store(path)
    if args.evaluation == "train-judge":
        judge.train_judge_file(args.data, args.out, steps=args.steps, seed=args.seed, device=args.device)
    elif args.evaluation == "generator":
        scoring.evaluate_generator(args.checkpoint, args.judge, args.data, args.out, per_class=args.per_class, n=args.n,
                                   chars=args.chars, seed=args.seed, device=args.device, weights=args.weights)
        if args.html:
            from .report.evaluation import write_evaluation_page

            print(f"wrote {write_evaluation_page(args.out, args.html)}")
    else:
        augment.augment_experiment(args.real, args.generated, args.test, args.out, parse_seeds(args.seeds),
                                   steps=args.steps, device=args.device, generated_share=args.generated_share)


def _styles(args: argparse.Namespace) -> None:
    from .sampling.style_fit import fit_styles_file, summary_text

    _check_outputs({"--checkpoint": args.checkpoint, "--data": args.data}, {"--out": args.out, "--sheet": args.sheet})
    probe_store(args.data)
    styles = fit_styles_file(args.checkpoint, args.data, args.out, args.sources, args.glyphs_per_source, args.steps,
                             args.seed, args.device, args.sheet)
    print(summary_text(styles))
    print(f"wrote {', '.join(str(path) for path in (args.out, args.sheet) if path)}")


def _audit(args: argparse.Namespace) -> None:
    from .evaluation.audit import audit_store, summary_text

    _check_outputs({"STORE": args.store, "--judge": args.judge},
                   {"--report": args.report, "--out": args.out, "--sheet": args.sheet})
    probe_store(args.store)
    report = audit_store(args.store, args.judge, args.report, args.out, args.sheet, args.min_confidence, args.outlier_z,
                         args.device, args.traditional_odds)
    print(summary_text(report))
    written = [path for path in (args.report, args.out, args.sheet if report["flagged"] else None) if path]
    if written:
        print(f"wrote {', '.join(map(str, written))}")


def _experiment(args: argparse.Namespace) -> None:
    from .evaluation.mog import mog_config, output_files, run_mog
    from .selection import parse_seeds

    _check_outputs({"--config": args.config},
                   {"--out": [args.out, *output_files(args.out, args.loss, parse_seeds(args.seeds))], "--html": args.html})
    config = mog_config(args.config, args.overrides, args.loss)
    run_mog(config, parse_seeds(args.seeds), args.out)
    print(f"wrote {Path(args.out) / args.loss} and the summary {Path(args.out) / 'summary.json'}, figure {Path(args.out) / 'compare.png'}")
    if args.html:
        from .report.mog_page import write_mog_page

        print(f"wrote {write_mog_page(args.out, args.html)}")


def _report(args: argparse.Namespace) -> None:
    from .evaluation.common import picture_path
    from .report.run_report import write_run_report

    evaluation = [args.evaluation, picture_path(args.evaluation)] if args.evaluation else None  # the report, its picture
    grids = sorted((Path(args.run) / "samples").glob("*.png"))  # read too: a hard link to one is refused
    _check_outputs({"RUN": [*(Path(args.run) / name for name in RUN_FILES), *grids], "--evaluation": evaluation},
                   {"--out": args.out})
    print(f"wrote {write_run_report(args.run, args.out, args.evaluation)}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"train": _train, "sample": _sample, "generate": _generate, "demo": _demo, "evaluate": _evaluate,
                "experiment": _experiment, "audit": _audit, "report": _report, "styles": _styles}
    return run_cli(lambda: handlers[args.command](args), prog="cond-lsgan")
