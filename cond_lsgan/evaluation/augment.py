"""`cond-lsgan evaluate augment`: does adding generated glyphs help a recogniser on unseen data?

That is what the paper's generated characters are for. For each seed, the judge's
classifier is trained twice with the same number of steps and the same seed: once on
the real training set, once on real + generated images, and both are tested on a third
set (e.g. fonts held out with `data-tools split --holdout-sources`). The report gives
both accuracies per seed and the difference (augmented - real) with its mean and spread
over seeds, so a gain can be told from seed noise.

Class tables are matched by class text: the classifier's classes are the real training
set's; every class that has images in the generated or test set must be among them (an
error names those that are not). Generated images are mixed in as they are: the batch
draws uniformly from the union, so a generated set as large as the real one makes half
of each batch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..runtime import resolve_device
from ..shared import InputError, read_store
from .common import class_mapping, format_duration, spread, write_json
from .judge import accuracy, default_steps, train_classifier


def augment_experiment(real: str | Path, generated: str | Path, test: str | Path, out: str | Path,
                       seeds: Sequence[int], steps: int | None = None, device: str = "auto") -> dict:
    """Train real-only and real+generated classifiers for each seed, test both, write the report."""
    if not seeds:
        raise InputError("--seeds names no seed")
    started = time.perf_counter()
    device_ = resolve_device(device, "--device")
    train_set, gen_set, test_set = read_store(real), read_store(generated), read_store(test)
    for name, store in ((generated, gen_set), (test, test_set)):
        if store.image_size != train_set.image_size:
            raise InputError(f"{name} has {store.image_size}px images but {real} has {train_set.image_size}px")
    gen_map = class_mapping(gen_set.classes, train_set.classes, f"the generated set {generated}", f"the real set {real}",
                            np.unique(gen_set.labels).tolist())
    test_map = class_mapping(test_set.classes, train_set.classes, f"the test set {test}", f"the real set {real}",
                             np.unique(test_set.labels).tolist())
    num_classes = len(train_set.classes)
    mixed_images = np.concatenate([train_set.images, gen_set.images])
    mixed_labels = np.concatenate([train_set.labels, gen_map[gen_set.labels]])
    test_labels = test_map[test_set.labels]
    steps = default_steps(len(train_set)) if steps is None else steps
    print(f"augment: {len(train_set):,} real + {len(gen_set):,} generated training images, {len(test_set):,} test images, "
          f"{num_classes:,} classes; {len(seeds)} seed(s) x 2 classifiers x {steps} steps")

    runs = []
    for position, seed in enumerate(seeds):
        arms = {}
        for arm, (images, labels) in (("real", (train_set.images, train_set.labels)), ("real+generated", (mixed_images, mixed_labels))):
            model = train_classifier(images, labels, num_classes, steps, seed, device_, label=f"seed {seed} {arm}",
                                     runs_after=2 * len(seeds) - 1 if position == 0 and arm == "real" else 0)
            arms[arm] = {"top1": accuracy(model, test_set.images, test_labels),
                         "top5": accuracy(model, test_set.images, test_labels, top=5)}
        runs.append({"seed": seed, "real": arms["real"], "augmented": arms["real+generated"],
                     "difference": arms["real+generated"]["top1"] - arms["real"]["top1"]})
        print(f"seed {seed}: test accuracy real {arms['real']['top1']:.2%}, real+generated {arms['real+generated']['top1']:.2%}, "
              f"difference {runs[-1]['difference']:+.2%}")
    report = {
        "real": str(real), "generated": str(generated), "test": str(test), "steps": steps, "seeds": list(seeds),
        "classes": num_classes, "real_images": len(train_set), "generated_images": len(gen_set), "test_images": len(test_set),
        "accuracy_real": spread([r["real"]["top1"] for r in runs]),
        "accuracy_augmented": spread([r["augmented"]["top1"] for r in runs]),
        "difference": spread([r["difference"] for r in runs]),
        "runs": runs, "seconds": time.perf_counter() - started,
    }
    write_json(report, out)
    difference = report["difference"]
    print(f"augmented - real test accuracy: {difference['mean']:+.2%} (std {difference['std']:.2%} over {len(runs)} seed(s)); "
          f"{format_duration(report['seconds'])}; wrote {out}")
    return report
