"""The judge: a small CNN glyph classifier, trained on real data, whose features score generators.

Why our own: the usual FID uses Inception-v3 features, which need weights from the
internet and were trained on 299x299 photographs; on 28x28 glyphs they measure little.
A classifier trained on the glyphs themselves knows what makes a character readable, and
its penultimate layer is a feature space where distances between glyphs mean something.

Architecture (`channels` c, `feature_dim` F; any image size, any class count):
    [conv3 1->c, BN, ReLU, conv3 c->c, BN, ReLU, maxpool 2]
    [conv3 c->2c, BN, ReLU, conv3 2c->2c, BN, ReLU, maxpool 2]
    [conv3 2c->4c, BN, ReLU] -> adaptive average pool 2x2 -> FC 16c -> F, BN, ReLU = features
    -> dropout 0.2 -> FC F -> C = logits
With c = 16 a 28x28 image costs about 6 M multiply-adds, so a CPU trains it on thousands
of classes in minutes; the class count only sizes the last layer.

Training: Adam with a cosine learning-rate decay, label smoothing 0.1, batches drawn by
tensor indexing from uint8 images held in memory, and augmentation on the whole batch
with tensor ops (a random small rotation, scale, shear and shift per image through one
`affine_grid` / `grid_sample`), never per-sample PIL work. A seeded 10% of each class
(at least one sample stays in training) is held out to report accuracy.

The judge file is a plain dict (loads with `torch.load(weights_only=True)`):
    format, version     "cond-lsgan-judge", 2
    digest              sha256 of the rest (checkpoint.content_digest), checked on load (version 2 on)
    arch                {num_classes, image_size, channels, feature_dim}
    classes             {"text": [...], "codepoint": [...]}: class index -> character
    traditional_of      optional: {class text of a traditional form: [its simplified classes]}, the
                        training store's map (`data-tools render --with-traditional`), with which
                        `cond-lsgan audit` names glyphs drawn in their traditional form; absent in
                        judges of stores without one and in older judges (read as {})
    state               the model's state dict
    training            data path, steps, seed, held-out accuracy, ...
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import content_digest, read_versioned
from .data_tools_api import (ClassTable, GlyphSet, InputError, atomic_output, check_traditional_of, fraction_mask,
                             read_store)
from .progress import Progress, format_duration
from .runtime import resolve_device

FORMAT = "cond-lsgan-judge"
VERSION = 2  # 2: a content digest
BATCH = 128
HELD_OUT = 0.1
LEARNING_RATE = 3e-3
ESTIMATE_STEPS = 10
# augmentation ranges
ROTATION = math.radians(8.0)
SCALE = (0.9, 1.1)
SHEAR = 0.1
SHIFT_PX = 2.0


class Judge(nn.Module):
    """Glyph classifier; `features(images)` and `logits(images)` take uint8 (N, H, W) glyphs."""

    def __init__(self, num_classes: int, image_size: int, channels: int = 16, feature_dim: int = 128) -> None:
        super().__init__()
        c = channels
        self.num_classes, self.image_size, self.channels, self.feature_dim = num_classes, image_size, channels, feature_dim

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(
            *block(1, c), *block(c, c), nn.MaxPool2d(2),
            *block(c, 2 * c), *block(2 * c, 2 * c), nn.MaxPool2d(2),
            *block(2 * c, 4 * c), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(16 * c, feature_dim, bias=False), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(feature_dim, num_classes))
        self.classes = ClassTable([str(i) for i in range(num_classes)])
        self.traditional_of: dict[str, list[str]] = {}  # see the module docstring (judge file)
        self.info: dict[str, Any] = {}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x float (N, 1, H, W) in [0, 1] -> (features (N, F), logits (N, C))."""
        features = self.body(x * 2.0 - 1.0)
        return features, self.head(features)

    def _input(self, images: Tensor | np.ndarray) -> Tensor:
        images = torch.as_tensor(images, device=self.device)
        if images.dtype != torch.uint8 or images.ndim != 3:
            raise InputError(f"the judge takes uint8 glyphs (N, H, W), got {images.dtype} {tuple(images.shape)}")
        if images.shape[1:] != (self.image_size, self.image_size):
            raise InputError(f"the judge was trained on {self.image_size}x{self.image_size} images, "
                             f"got {images.shape[1]}x{images.shape[2]}")
        return images.unsqueeze(1).float() / 255.0

    @torch.no_grad()
    def features(self, images: Tensor | np.ndarray) -> Tensor:
        """Penultimate-layer features (N, F) of uint8 glyphs (N, H, W)."""
        return self.body(self._input(images) * 2.0 - 1.0)

    @torch.no_grad()
    def logits(self, images: Tensor | np.ndarray) -> Tensor:
        """Class scores (N, C) of uint8 glyphs (N, H, W)."""
        return self.head(self.features(images))


TOP_CLASSES = 5  # the judge's best classes kept per image (top-5 accuracy)


@dataclass
class JudgeOutputs:
    """What the reports read of the judge, per image, on the CPU.

    Not the (N, C) probability matrix: at 235,000 images and 3,740 classes that is 3.5 GB
    (19 GB at 20,000 classes), and filling it slowed the judge pass down. Each image keeps its best classes, their top probability and,
    when the images were asked for as classes, the probability of that class.
    """

    features: np.ndarray  # float64 (N, F)
    top_classes: np.ndarray  # int64 (N, TOP_CLASSES), best first
    top_probability: np.ndarray  # float32 (N,): the probability of top_classes[:, 0]
    class_probability: np.ndarray | None = None  # float32 (N,): the probability of the class each image was asked for
    also_probability: np.ndarray | None = None  # float32 (N, K): those of the `also` classes asked for (0 for -1)

    @property
    def predictions(self) -> np.ndarray:
        return self.top_classes[:, 0]

    def __getitem__(self, rows) -> "JudgeOutputs":
        pick = None if self.class_probability is None else self.class_probability[rows]
        also = None if self.also_probability is None else self.also_probability[rows]
        return JudgeOutputs(self.features[rows], self.top_classes[rows], self.top_probability[rows], pick, also)


@torch.no_grad()
def judge_outputs(judge: Judge, images: np.ndarray, classes: np.ndarray | None = None, batch: int = 512,
                  also: np.ndarray | None = None) -> JudgeOutputs:
    """Run the judge (in eval mode) over uint8 images (N, H, W) in batches; `classes` (N,),
    if given, are the classes the images should be, whose probabilities are kept; so are
    those of `also` (N, K), more classes per image (-1: none; `audit` asks for the label's
    traditional forms)."""
    judge.eval()
    top = min(TOP_CLASSES, judge.num_classes)
    features, top_classes, top_probability, class_probability, also_probability = [], [], [], [], []
    for start in range(0, len(images), batch):
        f = judge.features(images[start : start + batch])
        features.append(f.double().cpu().numpy())
        probabilities = torch.softmax(judge.head(f).float(), dim=1)  # (B, C)
        best = probabilities.topk(top, dim=1)
        top_classes.append(best.indices.cpu().numpy())
        top_probability.append(best.values[:, 0].cpu().numpy())
        if classes is not None:
            wanted = torch.as_tensor(np.asarray(classes[start : start + batch]), device=probabilities.device)
            class_probability.append(probabilities.gather(1, wanted[:, None])[:, 0].cpu().numpy())
        if also is not None:
            wanted = torch.as_tensor(np.asarray(also[start : start + batch]), device=probabilities.device)
            picked = probabilities.gather(1, wanted.clamp(min=0))
            also_probability.append(torch.where(wanted >= 0, picked, torch.zeros_like(picked)).cpu().numpy())
    if not features:
        return JudgeOutputs(np.zeros((0, judge.feature_dim)), np.zeros((0, top), dtype=np.int64),
                            np.zeros(0, dtype=np.float32), None if classes is None else np.zeros(0, dtype=np.float32),
                            None if also is None else np.zeros((0, np.shape(also)[1]), dtype=np.float32))
    return JudgeOutputs(np.concatenate(features), np.concatenate(top_classes), np.concatenate(top_probability),
                        np.concatenate(class_probability) if classes is not None else None,
                        np.concatenate(also_probability) if also is not None else None)


def jitter_batch(x: Tensor, rng: torch.Generator) -> Tensor:
    """A random small affine change of each image of x (B, 1, H, W) in [0, 1]; background stays 0."""
    n, size = x.shape[0], x.shape[-1]
    def uniform(low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(n, generator=rng, device=x.device)

    angle, scale, shear = uniform(-ROTATION, ROTATION), uniform(*SCALE), uniform(-SHEAR, SHEAR)
    shift = (torch.rand(n, 2, generator=rng, device=x.device) * 2 - 1) * (2 * SHIFT_PX / size)
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # (B, 2, 3): output -> input coordinates
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def default_steps(count: int) -> int:
    """About 15 epochs of `count` images, at least 500 and at most 5,000 steps."""
    return int(min(5000, max(500, 15 * count // BATCH)))


def train_classifier(images: np.ndarray, labels: np.ndarray, num_classes: int, steps: int, seed: int = 0,
                     device: torch.device | str = "cpu", augment: bool = True, label: str = "judge",
                     channels: int = 16, feature_dim: int = 128, runs_after: int = 0,
                     extra: tuple[np.ndarray, np.ndarray] | None = None, extra_share: float = 0.0) -> Judge:
    """Train a Judge on uint8 images (N, H, W) with labels in [0, num_classes); returns it in eval mode.

    `extra`: more (images, labels), e.g. generated glyphs, of which each batch holds
    round(extra_share * batch), the rest drawn from `images`; the share is then what the
    caller states, whatever the two sets' sizes. `runs_after`: how many more trainings like
    this one the caller will run, so that the printed run-time estimate covers them too.
    """
    if steps < 1:
        raise InputError(f"--steps must be positive, got {steps}")
    if len(images) == 0:
        raise InputError("no images to train the classifier on")
    device = torch.device(device)
    torch.manual_seed(seed)
    model = Judge(num_classes, images.shape[1], channels, feature_dim).to(device)
    data = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    targets = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=1e-5)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    rng = torch.Generator(device).manual_seed(seed)
    progress = Progress(steps, label)
    model.train()
    started = time.perf_counter()
    batch = min(BATCH, len(data))
    extra_batch = round(extra_share * batch) if extra is not None else 0
    if extra is not None:
        extra_data = torch.from_numpy(np.ascontiguousarray(extra[0])).to(device)
        extra_targets = torch.from_numpy(np.asarray(extra[1], dtype=np.int64)).to(device)
    for step in range(1, steps + 1):
        picked = torch.randint(0, len(data), (batch - extra_batch,), generator=rng, device=device)
        images_now, labels_now = data[picked], targets[picked]
        if extra_batch:
            picked_extra = torch.randint(0, len(extra_data), (extra_batch,), generator=rng, device=device)
            images_now = torch.cat([images_now, extra_data[picked_extra]])
            labels_now = torch.cat([labels_now, extra_targets[picked_extra]])
        x = images_now.unsqueeze(1).float() / 255.0
        if augment:
            x = jitter_batch(x, rng)
        _, logits = model(x)
        loss = F.cross_entropy(logits, labels_now, label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step == min(ESTIMATE_STEPS, steps):
            seconds = progress.estimate(step, time.perf_counter() - started, what=" steps")
            if runs_after:
                progress.line(f"{label}: estimated run time with the {runs_after} classifier(s) after it: "
                              f"{format_duration(seconds * (1 + runs_after))}")
        progress.update(1)
    progress.close()
    return model.eval()


def accuracy(judge: Judge, images: np.ndarray, labels: np.ndarray, top: int = 1) -> float | None:
    """Share of images whose label is among the judge's `top` best classes (None for no images)."""
    if len(images) == 0:
        return None
    if top > TOP_CLASSES:
        raise ValueError(f"top must be at most {TOP_CLASSES}, got {top}")
    best = judge_outputs(judge, images).top_classes[:, :top]
    return float((best == np.asarray(labels)[:, None]).any(axis=1).mean())


@dataclass
class JudgeReport:
    path: Path
    classes: int
    train_images: int
    held_out_images: int
    steps: int
    held_out_accuracy: float | None
    held_out_top5: float | None
    seconds: float
    traditional: int = 0  # classes that are traditional forms of others (the store's traditional_of)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        if self.held_out_accuracy is None:
            result = "no held-out images (every class has one sample)"
        else:
            result = f"held-out accuracy {self.held_out_accuracy:.1%} (top-5 {self.held_out_top5:.1%}) on {self.held_out_images:,} images"
        traditional = f" ({self.traditional:,} of them traditional forms)" if self.traditional else ""
        return (f"trained the judge on {self.train_images:,} images of {self.classes:,} classes{traditional} for {self.steps} "
                f"steps in {self.seconds:.0f} s; {result}; wrote {self.path}")


def train_judge(glyphs: GlyphSet, steps: int | None = None, seed: int = 0, device: str = "auto",
                channels: int = 16, feature_dim: int = 128) -> tuple[Judge, dict]:
    """Train a judge on a store in memory, holding out a seeded 10% of each class; returns (judge, training info)."""
    device_ = resolve_device(device, "--device")
    held = fraction_mask(glyphs.labels, len(glyphs.classes), HELD_OUT, seed) if len(glyphs) > 1 else np.zeros(len(glyphs), bool)
    steps = default_steps(int((~held).sum())) if steps is None else steps
    started = time.perf_counter()
    judge = train_classifier(glyphs.images[~held], glyphs.labels[~held], len(glyphs.classes), steps, seed, device_,
                             channels=channels, feature_dim=feature_dim)
    judge.classes = glyphs.classes
    judge.traditional_of = dict(glyphs.traditional_of)
    info = {
        "steps": steps, "seed": seed, "train_images": int((~held).sum()), "held_out_images": int(held.sum()),
        "held_out_accuracy": accuracy(judge, glyphs.images[held], glyphs.labels[held]),
        "held_out_top5": accuracy(judge, glyphs.images[held], glyphs.labels[held], top=5),
        "seconds": time.perf_counter() - started,
    }
    judge.info = info
    return judge, info


def train_judge_file(data: str | Path, out: str | Path, steps: int | None = None, seed: int = 0,
                     device: str = "auto") -> JudgeReport:
    """`cond-lsgan evaluate train-judge`: train on a glyph store, save the judge, print a summary."""
    glyphs = read_store(data)
    judge, info = train_judge(glyphs, steps, seed, device)
    info["data"] = str(data)
    save_judge(judge, out, info)
    report = JudgeReport(Path(out), len(glyphs.classes), info["train_images"], info["held_out_images"], info["steps"],
                         info["held_out_accuracy"], info["held_out_top5"], info["seconds"], len(judge.traditional_of))
    print(report.text())
    return report


def save_judge(judge: Judge, path: str | Path, info: dict) -> None:
    """Write the judge file (module docstring) atomically, with its content digest, as checkpoints are written."""
    state = {
        "format": FORMAT, "version": VERSION,
        "arch": {"num_classes": judge.num_classes, "image_size": judge.image_size, "channels": judge.channels,
                 "feature_dim": judge.feature_dim},
        "classes": judge.classes.to_dict(),
        **({"traditional_of": judge.traditional_of} if judge.traditional_of else {}),
        "state": {k: v.detach().cpu() for k, v in judge.state_dict().items()},
        "training": info,
    }
    state["digest"] = content_digest(state)
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:  # a Python file keeps a failed write's
        torch.save(state, handle)  # OSError, so a full disk is one line (checkpoint.save_checkpoint)


def load_judge(path: str | Path, device: str | torch.device = "auto") -> Judge:
    """Rebuild a judge from its file, read as every versioned file is (checkpoint.read_versioned: no code is
    unpickled, the digest is checked from version 2 on); eval mode. Read on the CPU and moved once built, so a
    bad file is named before a bad --device."""
    path = Path(path)
    state = read_versioned(path, "judge file", FORMAT, VERSION, digest_since=2, make="cond-lsgan evaluate train-judge")
    device = resolve_device(device, "--device") if isinstance(device, str) else device
    arch = state["arch"]
    judge = Judge(int(arch["num_classes"]), int(arch["image_size"]), int(arch["channels"]), int(arch["feature_dim"]))
    judge.load_state_dict(state["state"])
    judge.classes = ClassTable.from_dict(state["classes"])
    try:
        judge.traditional_of = check_traditional_of(state.get("traditional_of", {}), judge.classes)
    except InputError as error:
        raise InputError(f"{path}: damaged judge file ({error})") from None
    judge.info = dict(state.get("training", {}))
    return judge.to(device).eval()
