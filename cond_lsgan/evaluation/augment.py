"""`cond-lsgan evaluate augment`: do generated glyphs help a recogniser more than classical augmentation?

A user who trains a recogniser jitters the real glyphs anyway, so the question is not
whether generated glyphs beat nothing but whether they beat that. Four arms train the
judge's classifier with the same steps and seed, and each is tested on a third set
(e.g. handwriting-style faces held out with `data-tools split --holdout-sources`):

    real                      the real training glyphs as they are
    real+classical            the same with on-the-fly jitter (the judge's small random
                              rotation, scale, shear and shift per image)
    real+generated            real and generated glyphs, `generated_share` of each batch generated
    real+classical+generated  both

(A real set rendered with `data-tools render --augment K` bakes classical jitter into the
file; every arm then sees it.) The report gives each arm's test accuracy over the seeds
(mean, sd), the gain of each generated arm over the best arm without generated glyphs,
paired by seed (its sd is that of the per-seed differences), and the per-class view:
per-class accuracy averaged over the seeds, and which characters the best generated arm
gains or loses against that baseline.

Class tables are matched by class text: the classifier's classes are the real training
set's; every class with images in the generated or test set must be among them (an error
names those that are not).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..runtime import resolve_device
from ..shared import InputError, read_store
from .common import class_mapping, format_duration, spread, write_json
from .judge import default_steps, judge_outputs, train_classifier

# (name, on-the-fly jitter, generated glyphs in the batches)
ARMS = (("real", False, False), ("real+classical", True, False),
        ("real+generated", False, True), ("real+classical+generated", True, True))
BASELINES = tuple(name for name, _, generated in ARMS if not generated)
GENERATED_ARMS = tuple(name for name, _, generated in ARMS if generated)


def augment_experiment(real: str | Path, generated: str | Path, test: str | Path, out: str | Path,
                       seeds: Sequence[int], steps: int | None = None, device: str = "auto",
                       generated_share: float = 0.5, listed_classes: int = 10) -> dict:
    """Train the four arms for each seed, test them, write and return the report."""
    if not seeds:
        raise InputError("--seeds names no seed")
    if not 0.0 < generated_share < 1.0:
        raise InputError(f"--generated-share must be between 0 and 1 (exclusive), got {generated_share}")
    started = time.perf_counter()
    device_ = resolve_device(device, "--device")
    train_set, gen_set, test_set = read_store(real), read_store(generated), read_store(test)
    for name, store in ((generated, gen_set), (test, test_set)):
        if store.image_size != train_set.image_size:
            raise InputError(f"{name} has {store.image_size}px images but {real} has {train_set.image_size}px")
        if len(store) == 0:
            raise InputError(f"{name} holds no images")
    gen_map = class_mapping(gen_set.classes, train_set.classes, f"the generated set {generated}", f"the real set {real}",
                            np.unique(gen_set.labels).tolist())
    test_map = class_mapping(test_set.classes, train_set.classes, f"the test set {test}", f"the real set {real}",
                             np.unique(test_set.labels).tolist())
    num_classes = len(train_set.classes)
    gen_labels, test_labels = gen_map[gen_set.labels], test_map[test_set.labels]
    steps = default_steps(len(train_set)) if steps is None else steps
    print(f"augment: {len(train_set):,} real + {len(gen_set):,} generated training images ({generated_share:.0%} of each "
          f"batch in the generated arms), {len(test_set):,} test images, {num_classes:,} classes; "
          f"{len(seeds)} seed(s) x {len(ARMS)} classifiers x {steps} steps")

    runs, correct = [], {name: [] for name, _, _ in ARMS}  # correct[arm][seed position]: top-1 hit per test image
    for position, seed in enumerate(seeds):
        run = {"seed": seed}
        for index, (arm, jitter, with_generated) in enumerate(ARMS):
            model = train_classifier(train_set.images, train_set.labels, num_classes, steps, seed, device_, augment=jitter,
                                     label=f"seed {seed} {arm}",
                                     runs_after=len(ARMS) * len(seeds) - 1 if position == 0 and index == 0 else 0,
                                     extra=(gen_set.images, gen_labels) if with_generated else None,
                                     extra_share=generated_share if with_generated else 0.0)
            best = judge_outputs(model, test_set.images).top_classes
            correct[arm].append(best[:, 0] == test_labels)
            run[arm] = {"top1": float(correct[arm][-1].mean()),
                        "top5": float((best[:, :5] == test_labels[:, None]).any(axis=1).mean())}
        runs.append(run)
        print(f"seed {seed}: test accuracy " + ", ".join(f"{arm} {run[arm]['top1']:.2%}" for arm, _, _ in ARMS))

    accuracy = {arm: spread([run[arm]["top1"] for run in runs]) for arm, _, _ in ARMS}
    baseline = max(BASELINES, key=lambda arm: accuracy[arm]["mean"])
    gains = {arm: spread([run[arm]["top1"] - run[baseline]["top1"] for run in runs]) for arm in GENERATED_ARMS}
    best_generated = max(GENERATED_ARMS, key=lambda arm: gains[arm]["mean"])
    report = {
        "real": str(real), "generated": str(generated), "test": str(test), "steps": steps, "seeds": list(seeds),
        "generated_share": generated_share, "classes": num_classes, "real_images": len(train_set),
        "generated_images": len(gen_set), "test_images": len(test_set),
        "accuracy": accuracy, "baseline": baseline, "gain_over_baseline": gains,
        "per_class": per_class_view(correct, test_labels, train_set.classes.text, baseline, best_generated, listed_classes),
        "runs": runs, "seconds": time.perf_counter() - started,
    }
    write_json(report, out)
    print(summary_text(report))
    print(f"{format_duration(report['seconds'])}; wrote {out}")
    return report


def per_class_view(correct: dict[str, list[np.ndarray]], test_labels: np.ndarray, class_text: Sequence[str],
                   baseline: str, compared: str, listed: int) -> dict:
    """Per-class test accuracy of every arm (mean over seeds) and the classes `compared` gains or loses most."""
    present = np.unique(test_labels)
    counts = np.bincount(test_labels, minlength=len(class_text))[present]

    def class_accuracy(arm: str) -> np.ndarray:
        hits = np.mean([np.bincount(test_labels, weights=hit, minlength=len(class_text)) for hit in correct[arm]], axis=0)
        return hits[present] / counts

    per_arm = {arm: class_accuracy(arm) for arm in correct}
    gain = per_arm[compared] - per_arm[baseline]
    order = np.argsort(-gain, kind="stable")

    def entries(rows: Sequence[int]) -> list[dict]:
        return [{"class": class_text[present[row]], "gain": float(gain[row]), baseline: float(per_arm[baseline][row]),
                 compared: float(per_arm[compared][row])} for row in rows]

    gained = [row for row in order[:listed] if gain[row] > 0]
    lost = [row for row in order[::-1][:listed] if gain[row] < 0]

    return {"compared": compared, "baseline": baseline, "classes": len(present),
            "gaining": int((gain > 0).sum()), "losing": int((gain < 0).sum()), "unchanged": int((gain == 0).sum()),
            "most_gained": entries(gained), "most_lost": entries(lost),
            "class_text": [class_text[index] for index in present],
            "accuracy": {arm: values.tolist() for arm, values in per_arm.items()}}


def summary_text(report: dict) -> str:
    """The arms' accuracies, each generated arm's gain and the per-class counts, as lines to print."""
    seeds = len(report["seeds"])
    lines = [f"test accuracy over {seeds} seed(s), mean ± sd:"]
    for arm, value in report["accuracy"].items():
        gain = report["gain_over_baseline"].get(arm)
        extra = f"   gain over {report['baseline']}: {gain['mean']:+.2%} ± {gain['std']:.2%}" if gain else ""
        lines.append(f"  {arm:<26} {value['mean']:.2%} ± {value['std']:.2%}{extra}")
    view = report["per_class"]
    lines.append(f"per class, {view['compared']} against {view['baseline']}: {view['gaining']} of {view['classes']} gain, "
                 f"{view['losing']} lose, {view['unchanged']} unchanged")
    for title, key in (("gain most", "most_gained"), ("lose most", "most_lost")):
        if view[key]:
            lines.append(f"  {title}: " + " ".join(f"{entry['class']} {entry['gain']:+.0%}" for entry in view[key]))
    return "\n".join(lines)
