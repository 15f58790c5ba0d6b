"""A readability term in G's loss: `loss.classifier = judge.pt`, `loss.classifier_weight = w`.

A frozen classifier, trained by `cond-lsgan evaluate train-judge` on the GAN's own
training data, reads G's images, and w times its cross-entropy against the labels G was
asked for is added to G's loss (AC-GAN's classification term, with a classifier that
never sees generated images). It pulls each glyph toward what a recogniser reads as its
character; unchecked, such a term also pulls the glyphs of a class toward one form
(ReACGAN), so within-class diversity must be watched beside readability.

Readability is then to be reported by a *different* judge (another seed, another split of
the data, best other faces): this classifier's verdict is what G was optimised to please,
so it would grade its own exam. The classes are matched by text, as everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data_tools_api import ClassTable, InputError
from ..judge import load_judge
from ..selection import class_mapping


class JudgeLoss:
    """The cross-entropy of a frozen judge on G's images (N, 1, H, W) in G's output range, against labels (N,)."""

    def __init__(self, path: str, classes: ClassTable, image_size: int, output_range: str, device: torch.device) -> None:
        judge = load_judge(path, device)
        if judge.image_size != image_size:
            raise InputError(f"loss.classifier {path} reads {judge.image_size}px images; the data has {image_size}px")
        mapping = class_mapping(classes, judge.classes, "the training data", f"loss.classifier {path}")
        self.to_judge = torch.as_tensor(mapping, device=device)
        self.judge = judge.eval().requires_grad_(False)
        self.tanh = output_range == "tanh"

    def __call__(self, fake: Tensor, labels: Tensor) -> Tensor:
        x = fake.float()
        x = (x + 1.0) * 0.5 if self.tanh else x  # the judge reads [0, 1], ink 1
        _, logits = self.judge(x)
        return F.cross_entropy(logits.float(), self.to_judge[labels])
