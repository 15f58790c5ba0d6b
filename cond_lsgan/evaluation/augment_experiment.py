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
file; every arm then sees it.) Several generated sets (say, random noise and noise mixed
between fitted font styles, `cond-lsgan styles`) are compared in one run: each adds its
two arms, named `real+generated [NAME]` and `real+classical+generated [NAME]` after the
file's name, beside the same two baselines. The report gives each arm's test accuracy over the seeds
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

from ..data_tools_api import InputError, read_store
from ..judge import default_steps, judge_outputs, train_classifier
from ..progress import format_duration
from ..runtime import resolve_device
from ..selection import class_mapping
from .common import spread, write_json

# (name, on-the-fly jitter); the generated arms follow, two per generated set (arm_table)
BASELINE_ARMS = (("real", False), ("real+classical", True))
BASELINES = tuple(name for name, _ in BASELINE_ARMS)
# The arms of one generated set: "real+generated", "real+classical+generated" (a [NAME] after each with several sets)
GENERATED_ARMS = ("real+generated", "real+classical+generated")


def arm_table(generated: Sequence[str | Path]) -> list[tuple[str, bool, int | None]]:
    """(arm name, jitter, index of its generated set or None) for the baselines and two arms per generated set."""
    names = [Path(path).stem for path in generated]
    if len(set(names)) < len(names):  # two files of one name in different folders: tell them apart by position
        names = [f"{index + 1}: {name}" for index, name in enumerate(names)]
    arms = [(name, jitter, None) for name, jitter in BASELINE_ARMS]
    for index, name in enumerate(names):
        tag = f" [{name}]" if len(generated) > 1 else ""
        arms += [(f"{GENERATED_ARMS[0]}{tag}", False, index), (f"{GENERATED_ARMS[1]}{tag}", True, index)]
    return arms


def augment_experiment(real: str | Path, generated: str | Path | Sequence[str | Path], test: str | Path, out: str | Path,
                       seeds: Sequence[int], steps: int | None = None, device: str = "auto",
                       generated_share: float = 0.5, listed_classes: int = 10) -> dict:
    """Train every arm for each seed, test them, write and return the report."""
    generated = [generated] if isinstance(generated, (str, Path)) else list(generated)
    if not seeds:
        raise InputError("--seeds names no seed")
    if not generated:
        raise InputError("--generated names no glyph store")
    if not 0.0 < generated_share < 1.0:
        raise InputError(f"--generated-share must be between 0 and 1 (exclusive), got {generated_share}")
    started = time.perf_counter()
    device_ = resolve_device(device, "--device")
    train_set, test_set = read_store(real), read_store(test)
    gen_sets = [read_store(path) for path in generated]
    for name, store in (*zip(generated, gen_sets), (test, test_set)):
        if store.image_size != train_set.image_size:
            raise InputError(f"{name} has {store.image_size}px images but {real} has {train_set.image_size}px")
        if len(store) == 0:
            raise InputError(f"{name} holds no images")
    gen_extras = [(store.images, class_mapping(store.classes, train_set.classes, f"the generated set {path}",
                                               f"the real set {real}", np.unique(store.labels).tolist())[store.labels])
                  for path, store in zip(generated, gen_sets)]
    test_map = class_mapping(test_set.classes, train_set.classes, f"the test set {test}", f"the real set {real}",
                             np.unique(test_set.labels).tolist())
    num_classes = len(train_set.classes)
    test_labels = test_map[test_set.labels]
    steps = default_steps(len(train_set)) if steps is None else steps
    arms = arm_table(generated)
    print(f"augment: {len(train_set):,} real + {' / '.join(f'{len(store):,}' for store in gen_sets)} generated training "
          f"images ({generated_share:.0%} of each batch in the generated arms), {len(test_set):,} test images, "
          f"{num_classes:,} classes; {len(seeds)} seed(s) x {len(arms)} classifiers x {steps} steps")

    runs, correct = [], {name: [] for name, _, _ in arms}  # correct[arm][seed position]: top-1 hit per test image
    for position, seed in enumerate(seeds):
        run = {"seed": seed}
        for index, (arm, jitter, which) in enumerate(arms):
            model = train_classifier(train_set.images, train_set.labels, num_classes, steps, seed, device_, augment=jitter,
                                     label=f"seed {seed} {arm}",
                                     runs_after=len(arms) * len(seeds) - 1 if position == 0 and index == 0 else 0,
                                     extra=None if which is None else gen_extras[which],
                                     extra_share=0.0 if which is None else generated_share)
            best = judge_outputs(model, test_set.images).top_classes
            correct[arm].append(best[:, 0] == test_labels)
            run[arm] = {"top1": float(correct[arm][-1].mean()),
                        "top5": float((best[:, :5] == test_labels[:, None]).any(axis=1).mean())}
        runs.append(run)
        print(f"seed {seed}: test accuracy " + ", ".join(f"{arm} {run[arm]['top1']:.2%}" for arm, _, _ in arms))

    accuracy, baseline, gains, best_generated = compare_arms(runs, [arm for arm, _, _ in arms])
    report = {
        "real": str(real), "generated": [str(path) for path in generated], "test": str(test), "steps": steps,
        "seeds": list(seeds), "generated_share": generated_share, "classes": num_classes, "real_images": len(train_set),
        "generated_images": [len(store) for store in gen_sets], "test_images": len(test_set),
        "accuracy": accuracy, "baseline": baseline, "gain_over_baseline": gains,
        "per_class": per_class_view(class_accuracies(correct, test_labels, train_set.classes.text), baseline,
                                    best_generated, listed_classes),
        "runs": runs, "seconds": time.perf_counter() - started,
    }
    write_json(report, out)
    print(summary_text(report))
    print(f"{format_duration(report['seconds'])}; wrote {out}")
    return report


def compare_arms(runs: list[dict], arms: Sequence[str]) -> tuple[dict, str, dict, str]:
    """From per-seed runs: each arm's accuracy spread, the best arm without generated glyphs (the baseline),
    each other arm's gain over it paired by seed, and the arm with the largest mean gain."""
    accuracy = {arm: spread([run[arm]["top1"] for run in runs]) for arm in arms}
    baseline = max(BASELINES, key=lambda arm: accuracy[arm]["mean"])
    gains = {arm: spread([run[arm]["top1"] - run[baseline]["top1"] for run in runs]) for arm in arms if arm not in BASELINES}
    return accuracy, baseline, gains, max(gains, key=lambda arm: gains[arm]["mean"])


def class_accuracies(correct: dict[str, list[np.ndarray]], test_labels: np.ndarray,
                     class_text: Sequence[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    """The classes with test images, and per arm their test accuracy averaged over the seeds."""
    present = np.unique(test_labels)
    counts = np.bincount(test_labels, minlength=len(class_text))[present]

    def class_accuracy(arm: str) -> np.ndarray:
        hits = np.mean([np.bincount(test_labels, weights=hit, minlength=len(class_text)) for hit in correct[arm]], axis=0)
        return hits[present] / counts

    return [class_text[index] for index in present], {arm: class_accuracy(arm) for arm in correct}


def per_class_view(classes: tuple[list[str], dict[str, np.ndarray]], baseline: str, compared: str, listed: int) -> dict:
    """Per-class test accuracy of every arm (class_accuracies) and the classes `compared` gains or loses most."""
    class_text, per_arm = classes
    gain = per_arm[compared] - per_arm[baseline]
    order = np.argsort(-gain, kind="stable")

    def entries(rows: Sequence[int]) -> list[dict]:
        return [{"class": class_text[row], "gain": float(gain[row]), baseline: float(per_arm[baseline][row]),
                 compared: float(per_arm[compared][row])} for row in rows]

    gained = [row for row in order[:listed] if gain[row] > 0]
    lost = [row for row in order[::-1][:listed] if gain[row] < 0]

    return {"compared": compared, "baseline": baseline, "classes": len(class_text),
            "gaining": int((gain > 0).sum()), "losing": int((gain < 0).sum()), "unchanged": int((gain == 0).sum()),
            "most_gained": entries(gained), "most_lost": entries(lost), "class_text": list(class_text),
            "accuracy": {arm: np.asarray(values).tolist() for arm, values in per_arm.items()}}


def summary_text(report: dict) -> str:
    """The arms' accuracies, each generated arm's gain and the per-class counts, as lines to print."""
    seeds = len(report["seeds"])
    lines = [f"test accuracy over {seeds} seed(s), mean ± sd:"]
    width = max(map(len, report["accuracy"]))
    for arm, value in report["accuracy"].items():
        gain = report["gain_over_baseline"].get(arm)
        extra = f"   gain over {report['baseline']}: {gain['mean']:+.2%} ± {gain['std']:.2%}" if gain else ""
        lines.append(f"  {arm:<{width}} {value['mean']:.2%} ± {value['std']:.2%}{extra}")
    view = report["per_class"]
    lines.append(f"per class, {view['compared']} against {view['baseline']}: {view['gaining']} of {view['classes']} gain, "
                 f"{view['losing']} lose, {view['unchanged']} unchanged")
    for title, key in (("gain most", "most_gained"), ("lose most", "most_lost")):
        if view[key]:
            lines.append(f"  {title}: " + " ".join(f"{entry['class']} {entry['gain']:+.0%}" for entry in view[key]))
    return "\n".join(lines)
