"""Bad input of every kind a user can hand the CLIs: each is one `PROG: error: ...` line and
exit code 2 -- never a traceback, a hang or a huge allocation.

Every case runs the real CLI in a subprocess. The processes are independent, so they are
started together (a few at a time) by one module fixture and each test checks one
result; that keeps the file fast although each `cond-lsgan` process imports torch.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import struct
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import torch

from cond_lsgan.checkpoint import save_checkpoint
from data_tools.gnt import encode_gnt_record
from data_tools.store import ClassTable, GlyphSet, write_store
from data_tools.synthetic import synthetic_digits
from fontdata import NOTO_SANS_SC, WQY_MICROHEI
from helpers import REPO_ROOT, TINY_RUN, TINY_TRAIN, assert_one_line_error, run_module

pytestmark = pytest.mark.slow  # every case runs a CLI in a subprocess

CONFIGS = REPO_ROOT / "configs"
ONE_STEP = [*TINY_TRAIN, "train.steps=1"]  # with mnist.toml (seed32)
ONE_STEP_DEMO = [*TINY_RUN, "train.steps=1"]  # with demo.toml
TIMEOUT = 120  # seconds for one command: far above what any case needs, so a hang fails the test
PARALLEL = 3


def _latin_font(path: Path) -> Path:
    """A valid TrueType font with one glyph, "A": no CJK character at all."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    pen = TTGlyphPen(None)
    pen.moveTo((100, 0))
    pen.lineTo((500, 700))
    pen.lineTo((900, 0))
    pen.closePath()
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder([".notdef", "A"])
    builder.setupCharacterMap({ord("A"): "A"})
    builder.setupGlyf({".notdef": TTGlyphPen(None).glyph(), "A": pen.glyph()})
    builder.setupHorizontalMetrics({".notdef": (500, 0), "A": (1000, 100)})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "Latin Only", "styleName": "Regular"})
    builder.setupOS2()
    builder.setupPost()
    builder.save(str(path))
    return path


def _make_files(root: Path, digits32: Path, digits28: Path) -> dict[str, Path]:
    """Every input the cases use, good and bad, in `root` (copies of the digit stores given among them)."""
    f: dict[str, Path] = {}

    def path(name: str) -> Path:
        f[name.replace(".", "_")] = root / name
        return root / name

    shutil.copy(digits32, path("d32.h5"))
    shutil.copy(digits28, path("d28.h5"))
    three = synthetic_digits(30, size=32, seed=3)
    write_store(path("three32.h5"), GlyphSet(three.images, three.labels % 3, ClassTable(["0", "1", "2"]),
                                             three.sources, three.source_ids, {}))
    path("text.h5").write_text("hello, not HDF5\n" * 50)
    with h5py.File(path("other.h5"), "w") as file:
        file["x"] = np.zeros(3)
    good = f["d28_h5"].read_bytes()
    for length in (8, 100, 2048, len(good) // 2, len(good) - 1):
        path(f"cut{length}.h5").write_bytes(good[:length])
    f["cut_lengths"] = [8, 100, 2048, len(good) // 2, len(good) - 1]
    shutil.copy(f["d28_h5"], path("badlabel.h5"))
    with h5py.File(f["badlabel_h5"], "r+") as file:
        file["labels"][3] = 12
    shutil.copy(f["d28_h5"], path("huge.h5"))  # claims a billion images it does not hold
    with h5py.File(f["huge_h5"], "r+") as file:
        for name in ("images", "labels", "source_ids"):
            del file[name]
        file.create_dataset("images", shape=(10**9, 28, 28), dtype=np.uint8, chunks=(1, 28, 28))
        file.create_dataset("labels", shape=(10**9,), dtype=np.int32, chunks=(65536,))
        file.create_dataset("source_ids", shape=(10**9,), dtype=np.int32, chunks=(65536,))

    rng = np.random.default_rng(0)
    path("random.gnt").write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    records = b"".join(encode_gnt_record(c, rng.integers(0, 256, (20, 15), dtype=np.uint8)) for c in "啊阿埃")
    path("good.gnt").write_bytes(records)
    path("cut.gnt").write_bytes(records[:-50])
    tag = "啊".encode("gb18030")  # a record of 60000x60000 pixels (3.6 GB) in a 110-byte file
    path("absurd.gnt").write_bytes(struct.pack("<I2sHH", 10 + 60000 * 60000, tag, 60000, 60000) + b"\xff" * 100)

    path("notafont.ttf").write_text("not a font\n" * 20)
    _latin_font(path("latin.ttf"))
    path("cutfont.otf").write_bytes(Path(NOTO_SANS_SC).read_bytes()[:5000])

    path("str.toml").write_text('[train]\nsteps = "10"\n')
    path("inf.toml").write_text("[train]\nlr_d = inf\n")
    path("negative.toml").write_text("[model]\nwidth = -1.0\n")
    path("broken.toml").write_text("[train\nsteps = 1\n")
    return f


def _make_checkpoints(f: dict[str, Path], root: Path) -> None:
    """A real paper28 checkpoint (trained on 32x32 images: paper28 takes any multiple of 4), and damaged copies."""
    run = root / "run"
    result = run_module("cond_lsgan", "train", "--config", CONFIGS / "demo.toml", "--data", f["d32_h5"], "--out", run,
                        *ONE_STEP_DEMO, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    f["ckpt"] = checkpoint = run / "checkpoints" / "step_0000001.pt"
    # Edited copies saved with a digest of their own content: consistent files that do not fit, not damaged ones.
    state = {k: v for k, v in torch.load(checkpoint, weights_only=True).items() if k not in ("format", "version", "digest")}
    model = state["config"]["model"]
    save_checkpoint({**state, "config": {**state["config"], "model": {**model, "arch": "seed32"}}}, root / "arch.pt")
    save_checkpoint({**state, "classes": {"text": ["a", "b", "c"], "codepoint": [97, 98, 99]}}, root / "classes.pt")
    save_checkpoint({k: v for k, v in state.items() if k != "generator_ema"}, root / "noema.pt")
    save_checkpoint({**state, "image_size": 10**6}, root / "bigsize.pt")
    torch.save({"format": "cond-lsgan-checkpoint", "version": 1, "payload": Payload()}, root / "pickle.pt")
    data = checkpoint.read_bytes()
    (root / "cut.pt").write_bytes(data[: len(data) // 2])
    (root / "cutend.pt").write_bytes(data[:-10])
    for name in ("arch", "classes", "noema", "bigsize", "pickle", "cut", "cutend"):
        f[f"{name}_pt"] = root / f"{name}.pt"


class Payload:
    """Any pickled object: loading it would run code from the file."""


# (id, program, arguments from (files, case folder), fragments of the one error line)
Args = Callable[[dict, Path], list]
CASES: list[tuple[str, str, Args, tuple[str, ...]]] = [
    # HDF5 stores
    ("store-not-hdf5", "data-tools", lambda f, o: ["info", f["text_h5"]], ("not an HDF5 file",)),
    ("store-other-hdf5", "data-tools", lambda f, o: ["info", f["other_h5"]], ("not a glyph store",)),
    *[(f"store-cut-{i}", "data-tools", (lambda i: lambda f, o: ["info", f["root"] / f"cut{f['cut_lengths'][i]}.h5"])(i),
       ("cannot open HDF5 file",)) for i in range(5)],
    ("store-label-out-of-range", "data-tools", lambda f, o: ["info", f["badlabel_h5"]], ("label 12 is out of range [0, 10) at sample 3",)),
    ("store-claims-a-billion-images", "data-tools", lambda f, o: ["preview", f["huge_h5"], "--out", o / "p.png"],
     ("claims shape (1000000000, 28, 28)",)),
    ("train-on-text-file", "cond-lsgan", lambda f, o: ["train", "--config", CONFIGS / "mnist.toml", "--data", f["text_h5"],
                                                       "--out", o / "run", *ONE_STEP], ("not an HDF5 file",)),
    ("train-on-cut-store", "cond-lsgan", lambda f, o: ["train", "--config", CONFIGS / "mnist.toml", "--data",
                                                       f["root"] / "cut2048.h5", "--out", o / "run", *ONE_STEP], ("truncated file",)),
    ("train-label-out-of-range", "cond-lsgan", lambda f, o: ["train", "--config", CONFIGS / "demo.toml", "--data", f["badlabel_h5"],
                                                             "--out", o / "run", *ONE_STEP_DEMO], ("label 12 is out of range",)),
    ("train-28px-store-with-seed32", "cond-lsgan", lambda f, o: ["train", "--config", CONFIGS / "mnist.toml", "--data", f["d28_h5"],
                                                                 "--out", o / "run", *ONE_STEP], ("seed32 needs an image size that is a multiple of 16",)),
    # CASIA .gnt
    ("gnt-random-bytes", "data-tools", lambda f, o: ["gnt", f["random_gnt"], "--size", "28", "--out", o / "g.h5"], ("bad record at byte 0",)),
    ("gnt-truncated", "data-tools", lambda f, o: ["gnt", f["cut_gnt"], "--size", "28", "--out", o / "g.h5"], ("truncated",)),
    ("gnt-absurd-record", "data-tools", lambda f, o: ["gnt", f["absurd_gnt"], "--size", "28", "--out", o / "g.h5"],
     ("record of 3600000010 bytes but only 110 left",)),
    ("gnt-absurd-size", "data-tools", lambda f, o: ["gnt", f["good_gnt"], "--size", "100000", "--out", o / "g.h5"],
     ("image size must be between 1 and 1024",)),
    # fonts
    ("font-not-a-font", "data-tools", lambda f, o: ["render", "--charset", "digits", "--font", f["notafont_ttf"], "--out", o / "r.h5"],
     ("not a font file",)),
    ("font-without-cjk", "data-tools", lambda f, o: ["render", "--charset", "gb2312-1", "--limit", "10", "--font", f["latin_ttf"],
                                                     "--out", o / "r.h5"], ("has none of the 10 characters",)),
    ("font-cut", "data-tools", lambda f, o: ["render", "--charset", "digits", "--font", f["cutfont_otf"], "--out", o / "r.h5"],
     ("cannot read the character map",)),
    ("font-face-index-out-of-range", "data-tools", lambda f, o: ["render", "--charset", "digits", "--font", f"{WQY_MICROHEI}#7",
                                                                 "--out", o / "r.h5"], ("no face #7",)),
    ("render-augment-huge", "data-tools", lambda f, o: ["render", "--charset", "digits", "--font", NOTO_SANS_SC, "--augment",
                                                        "1000000000", "--out", o / "r.h5"], ("GiB per font",)),
    ("preview-negative-seed", "data-tools", lambda f, o: ["preview", f["d28_h5"], "--seed", "-1", "--out", o / "p.png"],
     ("--seed", "between 0 and 2^63 - 1")),
    ("preview-per-class-huge", "data-tools", lambda f, o: ["preview", f["d28_h5"], "--per-class", "1000000000000", "--out", o / "p.png"],
     ("--per-class must be at most",)),
    ("split-negative-seed", "data-tools", lambda f, o: ["split", f["d28_h5"], "--test-fraction", "0.5", "--seed", "-1",
                                                        "--train", o / "a.h5", "--test", o / "b.h5"], ("--seed", "between 0 and 2^63 - 1")),
    # configs
    ("config-wrong-type", "cond-lsgan", lambda f, o: ["train", "--config", f["str_toml"], "--data", f["d32_h5"], "--out", o / "run"],
     ("train.steps must be int, got '10'",)),
    ("config-inf", "cond-lsgan", lambda f, o: ["train", "--config", f["inf_toml"], "--data", f["d32_h5"], "--out", o / "run"],
     ("train.lr_d must be a finite number, got inf",)),
    ("config-negative-width", "cond-lsgan", lambda f, o: ["train", "--config", f["negative_toml"], "--data", f["d32_h5"],
                                                          "--out", o / "run"], ("model.width must be positive",)),
    ("config-broken-toml", "cond-lsgan", lambda f, o: ["train", "--config", f["broken_toml"], "--data", f["d32_h5"], "--out", o / "run"],
     ("invalid TOML",)),
    ("override-nan-lr", "cond-lsgan", lambda f, o: ["train", "--config", CONFIGS / "mnist.toml", "--data", f["d32_h5"],
                                                    "--out", o / "run", *ONE_STEP, "train.lr_g=nan"], ("train.lr_g must be a finite number, got nan",)),
    ("override-huge-batch", "cond-lsgan", lambda f, o: ["train", "--config", CONFIGS / "mnist.toml", "--data", f["d32_h5"],
                                                        "--out", o / "run", *ONE_STEP, f"train.batch_size={10**12}"],
     ("train.batch_size must be at most",)),
    ("override-huge-width", "cond-lsgan", lambda f, o: ["train", "--config", CONFIGS / "demo.toml", "--data", f["d32_h5"],
                                                        "--out", o / "run", *ONE_STEP, "model.width=1000"], ("model.width must be at most",)),
    # checkpoints: resuming
    ("resume-other-class-count", "cond-lsgan", lambda f, o: ["train", "--config", CONFIGS / "demo.toml", "--data", f["three32_h5"],
                                                             "--out", o / "run", "--resume", f["ckpt"], *ONE_STEP_DEMO, "train.steps=2"],
     ("different class table (10 classes) than the data (3)",)),
    ("resume-other-architecture", "cond-lsgan", lambda f, o: ["train", "--config", CONFIGS / "mnist.toml", "--data", f["d32_h5"],
                                                              "--out", o / "run", "--resume", f["ckpt"], *ONE_STEP, "train.steps=2"],
     ("was trained with model settings",)),
    ("resume-pickle", "cond-lsgan", lambda f, o: ["train", "--config", CONFIGS / "demo.toml", "--data", f["d32_h5"], "--out", o / "run",
                                                  "--resume", f["pickle_pt"], *ONE_STEP_DEMO, "train.steps=2"], ("refused to load",)),
    ("resume-cut-checkpoint", "cond-lsgan", lambda f, o: ["train", "--config", CONFIGS / "demo.toml", "--data", f["d32_h5"],
                                                          "--out", o / "run", "--resume", f["cut_pt"], *ONE_STEP_DEMO, "train.steps=2"],
     ("not a readable checkpoint",)),
    # checkpoints: generating and sampling
    ("generate-other-architecture", "cond-lsgan", lambda f, o: ["generate", "--checkpoint", f["arch_pt"], "--n", "4", "--out", o / "g.h5",
                                                                "--device", "cpu"], ("arch.pt: weights do not fit its own model config (Missing key(s)",)),
    ("sample-other-class-count", "cond-lsgan", lambda f, o: ["sample", "--checkpoint", f["classes_pt"], "--out", o / "s.png",
                                                             "--device", "cpu"], ("weights do not fit", "size mismatch")),
    ("generate-missing-weights", "cond-lsgan", lambda f, o: ["generate", "--checkpoint", f["noema_pt"], "--all", "--per-class", "1",
                                                             "--out", o / "g.h5", "--device", "cpu"], ("damaged checkpoint (no generator_ema)",)),
    ("generate-absurd-image-size", "cond-lsgan", lambda f, o: ["generate", "--checkpoint", f["bigsize_pt"], "--all", "--per-class", "1",
                                                               "--out", o / "g.h5", "--device", "cpu"], ("image_size is 1000000",)),
    ("sample-pickle", "cond-lsgan", lambda f, o: ["sample", "--checkpoint", f["pickle_pt"], "--out", o / "s.png"],
     ("refused to load: it holds a test_bad_input.Payload object",)),
    ("generate-cut-checkpoint", "cond-lsgan", lambda f, o: ["generate", "--checkpoint", f["cutend_pt"], "--all", "--per-class", "1",
                                                            "--out", o / "g.h5"], ("not a readable checkpoint",)),
    ("generate-huge-count", "cond-lsgan", lambda f, o: ["generate", "--checkpoint", f["ckpt"], "--all", "--per-class", str(10**12),
                                                        "--out", o / "g.h5", "--device", "cpu"], ("at most 10,000,000 images",)),
    ("sample-huge-n", "cond-lsgan", lambda f, o: ["sample", "--checkpoint", f["ckpt"], "--n", str(10**12), "--out", o / "s.png"],
     ("--n must be between 1 and",)),
    ("generate-negative-seed", "cond-lsgan", lambda f, o: ["generate", "--checkpoint", f["ckpt"], "--all", "--per-class", "1",
                                                           "--seed", "-1", "--out", o / "g.h5"], ("--seed", "between 0 and 2^63 - 1")),
    ("generate-pngs-under-a-file", "cond-lsgan", lambda f, o: ["generate", "--checkpoint", f["ckpt"], "--all", "--per-class", "1",
                                                              "--format", "png", "--out", f["d28_h5"] / "pngs", "--device", "cpu"],
     ("d28.h5 is a file, not a folder",)),
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, few_digits32, few_digits28) -> dict[str, object]:
    """Run every case (several at a time); id -> CompletedProcess."""
    root = tmp_path_factory.mktemp("bad-input")
    files = _make_files(root, few_digits32, few_digits28)
    files["root"] = root
    _make_checkpoints(files, root)

    def run(case) -> object:
        name, prog, make_args, _ = case
        out = root / "out" / name
        out.mkdir(parents=True)
        module = "data_tools" if prog == "data-tools" else "cond_lsgan"
        return run_module(module, *make_args(files, out), timeout=TIMEOUT)

    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        return dict(zip([case[0] for case in CASES], pool.map(run, CASES)))


@pytest.mark.parametrize("name, prog, fragments", [(c[0], c[1], c[3]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(outcomes, name, prog, fragments):
    assert_one_line_error(outcomes[name], prog, *fragments)
