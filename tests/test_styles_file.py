"""The styles file is as safe as a checkpoint: a content digest checked on load, every entry checked for
shape and type, each problem one line naming the file; an older file without digest still loads if it
checks out; `cond-lsgan styles` writes nothing when one of its outputs cannot be written."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from cond_lsgan.checkpoint import DamagedCheckpoint, content_digest
from cond_lsgan.sampling.generate import GenerateRequest, generate_store
from cond_lsgan.data_tools_api import InputError
from cond_lsgan.sampling.style_fit import fit_styles_file
from cond_lsgan.sampling.style_set import StyleSet
from data_tools.store import GlyphSet, read_store, write_store
from data_tools.synthetic import synthetic_digits
from helpers import assert_one_line_error, run_cond_lsgan

Z_DIM = 16  # TINY_PAPER28's model.z_dim


@pytest.fixture(scope="module")
def fitted(tiny_run, tmp_path_factory):
    """A one-step checkpoint, a store of two faces, and a real styles file fitted to them (seconds: the
    styles need not be good, only real)."""
    root = tmp_path_factory.mktemp("styles_file")
    digits = synthetic_digits(40, size=16, seed=7)
    faces = GlyphSet(digits.images, digits.labels, digits.classes, ["Face A", "Face B"],
                     (np.arange(len(digits.labels)) % 2).astype(np.int32), {})
    write_store(root / "faces.h5", faces)
    checkpoint = tiny_run("train.steps=1", data=root / "faces.h5", out=root / "run").checkpoint
    styles = root / "styles.pt"
    fit_styles_file(checkpoint, root / "faces.h5", styles, glyphs_per_source=4, steps=2, device="cpu")
    return root, checkpoint, styles


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line(error: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def write_state(path, state: dict, digest: bool = True):
    """A hand-made styles file: `state` as given, with the digest of what it holds unless `digest` is False."""
    if digest:
        state = {**state, "digest": content_digest(state)}
    torch.save(state, path)
    return path


def good_state(sources=("Face A", "Face B"), noise=None) -> dict:
    noise = torch.zeros(len(sources), Z_DIM) if noise is None else noise
    return {"format": "cond-lsgan styles", "version": 2, "sources": list(sources), "noise": noise,
            "checkpoint_sha256": "0" * 64, "fit": [{"source": s, "glyphs": 4, "rmse": 1.0, "random_rmse": 2.0} for s in sources]}


def test_a_styles_file_changed_after_saving_is_refused_and_left_as_it_was(fitted, tmp_path):
    root, checkpoint, styles = fitted
    data = styles.read_bytes()
    noise = StyleSet.load(styles).noise
    at = data.find(noise.numpy().tobytes())  # torch stores tensor bytes uncompressed: the styles are right there
    assert at > 0

    def changed(name: str, start: int, new: bytes):
        damaged = bytearray(data)
        damaged[start:start + len(new)] = new
        assert damaged != bytearray(data)
        (tmp_path / name).write_bytes(bytes(damaged))
        return tmp_path / name

    name_at = data.find(b"Face A")
    cases = [changed("nan.pt", at, np.float32(np.nan).tobytes()),  # a NaN in the first style: black glyphs, exit 0
             changed("four_bytes.pt", at + 8, np.float32(0.123).tobytes()),  # a finite value changed: other glyphs
             changed("name.pt", name_at, b"Face C")]  # a plain value in the pickle, not a tensor
    for path in cases:
        before = sha256(path)
        with pytest.raises(DamagedCheckpoint) as error:
            StyleSet.load(path, checkpoint, Z_DIM)
        one_line(error, str(path), "damaged styles file", "content differs", "cond-lsgan styles")
        assert sha256(path) == before  # reading never touches the file
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedCheckpoint) as error:
        StyleSet.load(truncated)
    one_line(error, str(truncated), "not a readable styles file")
    # Through the CLI: one line, exit 2, nothing generated.
    out = tmp_path / "generated.h5"
    result = run_cond_lsgan("generate", "--checkpoint", checkpoint, "--all", "--per-class", "2", "--out", out,
                            "--styles", cases[0], "--device", "cpu")
    assert_one_line_error(result, "cond-lsgan", f"{cases[0]}: damaged styles file")
    assert not out.exists() and sha256(cases[0]) != sha256(styles)


def test_each_malformed_styles_file_is_one_line_naming_the_file_and_the_problem(fitted, tmp_path):
    _, checkpoint, _ = fitted
    noise_nan = torch.zeros(2, Z_DIM)
    noise_nan[1, 3] = float("nan")
    noise_inf = torch.zeros(2, Z_DIM)
    noise_inf[0, 0] = float("inf")
    without_fit = good_state()
    del without_fit["fit"]
    cases = {
        "list.pt": ({**good_state(), "noise": torch.zeros(2, Z_DIM).tolist()}, "noise is a list, not a 2-D float tensor"),
        "flat.pt": ({**good_state(), "noise": torch.zeros(2 * Z_DIM)}, "noise has shape (32,), not (sources, z_dim)"),
        "ints.pt": ({**good_state(), "noise": torch.zeros(2, Z_DIM, dtype=torch.int64)}, "noise is torch.int64"),
        "no_fit.pt": (without_fit, "no fit"),
        "short_sources.pt": (good_state(noise=torch.zeros(3, Z_DIM)), "2 sources but 3 rows of noise"),
        "nan.pt": (good_state(noise=noise_nan), "the style of 'Face B' holds NaN or inf"),
        "inf.pt": (good_state(noise=noise_inf), "the style of 'Face A' holds NaN or inf"),
        "names.pt": ({**good_state(), "sources": ["Face A", 7]}, "sources is not a list of names"),
        "not_dict.pt": ([1, 2, 3], "not a cond-lsgan styles file"),
        "newer.pt": ({**good_state(), "version": 3}, "styles file version 3 is newer than this cond-lsgan reads (2)"),
    }
    for name, (state, fragment) in cases.items():
        path = tmp_path / name
        torch.save(state, path) if not isinstance(state, dict) else write_state(path, state)
        with pytest.raises(InputError) as error:
            StyleSet.load(path)
        one_line(error, str(path), fragment)
    # The noise must be as long as the checkpoint's.
    path = write_state(tmp_path / "z.pt", good_state(noise=torch.zeros(2, Z_DIM + 1)))
    with pytest.raises(InputError) as error:
        StyleSet.load(path, checkpoint, Z_DIM)
    one_line(error, str(path), f"styles of {Z_DIM + 1}-long noise; this generator takes {Z_DIM}")
    # A file whose version promises a digest but holds none.
    path = write_state(tmp_path / "undigested.pt", good_state(), digest=False)
    with pytest.raises(DamagedCheckpoint) as error:
        StyleSet.load(path)
    one_line(error, str(path), "damaged styles file (no content digest")
    with pytest.raises(InputError) as error:
        StyleSet.load(tmp_path)
    one_line(error, str(tmp_path), "is a folder, not a styles file")
    # Saving refuses what loading would refuse, so no reader ever meets it.
    with pytest.raises(InputError) as error:
        StyleSet(["Face A", "Face B"], noise_nan, "0" * 64, good_state()["fit"]).save(tmp_path / "saved.pt")
    one_line(error, "the style of 'Face B' holds NaN or inf")
    assert not (tmp_path / "saved.pt").exists()


def test_a_styles_file_from_before_digests_generates_as_before_if_it_checks_out(fitted, tmp_path):
    root, checkpoint, styles = fitted
    state = torch.load(styles, weights_only=True)
    assert state["version"] == 2 and state["digest"] == content_digest(state)
    old = {key: value for key, value in state.items() if key != "digest"} | {"version": 1}
    write_state(tmp_path / "old.pt", old, digest=False)
    assert torch.equal(StyleSet.load(tmp_path / "old.pt", checkpoint, Z_DIM).noise, StyleSet.load(styles).noise)
    new_out, old_out = tmp_path / "new.h5", tmp_path / "old.h5"
    for path, out in ((styles, new_out), (tmp_path / "old.pt", old_out)):
        generate_store(GenerateRequest(checkpoint, 2, all_classes=True, seed=3, device="cpu", precision="fp32", styles=path),
                       out)
    assert np.array_equal(read_store(new_out).images, read_store(old_out).images)
    # An old file is checked for everything but the digest it never had.
    noise = old["noise"].clone()
    noise[0, 0] = float("nan")
    path = write_state(tmp_path / "old_nan.pt", {**old, "noise": noise}, digest=False)
    with pytest.raises(InputError) as error:
        StyleSet.load(path, checkpoint, Z_DIM)
    one_line(error, str(path), "the style of 'Face A' holds NaN or inf", "fit them again with cond-lsgan styles")


def test_styles_writes_nothing_when_the_sheet_cannot_be_written(fitted, tmp_path):
    root, checkpoint, _ = fitted
    out = tmp_path / "styles.pt"
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("not a folder")
    for sheet in (tmp_path / "a_folder", tmp_path / "a_file" / "fit.png"):
        with pytest.raises(InputError) as error:
            fit_styles_file(checkpoint, root / "faces.h5", out, glyphs_per_source=4, steps=2, device="cpu", sheet=sheet)
        one_line(error, f"cannot write {sheet}")
        assert not out.exists()
    with pytest.raises(InputError) as error:  # --out a folder: refused before fitting, as the sheet is
        fit_styles_file(checkpoint, root / "faces.h5", tmp_path / "a_folder", glyphs_per_source=4, steps=2, device="cpu",
                        sheet=tmp_path / "fit.png")
    one_line(error, f"cannot write {tmp_path / 'a_folder'}")
    assert not (tmp_path / "fit.png").exists()
    # An older styles file at --out is kept as it was, through the CLI.
    out.write_bytes(b"an older styles file")
    result = run_cond_lsgan("styles", "--checkpoint", checkpoint, "--data", root / "faces.h5", "--out", out,
                            "--glyphs-per-source", "4", "--steps", "2", "--device", "cpu", "--sheet", tmp_path / "a_folder")
    assert_one_line_error(result, "cond-lsgan", f"cannot write {tmp_path / 'a_folder'}")
    assert out.read_bytes() == b"an older styles file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder", "styles.pt"]  # no temporary left
    fit_styles_file(checkpoint, root / "faces.h5", out, glyphs_per_source=4, steps=2, device="cpu", sheet=tmp_path / "fit.png")
    assert StyleSet.load(out).sources == ["Face A", "Face B"] and (tmp_path / "fit.png").stat().st_size > 0
