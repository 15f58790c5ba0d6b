"""`cond-lsgan evaluate generator`: score a checkpoint against real glyphs with a judge.

Conditional models (per requested class and overall):
  readability       share of the generated images of class c that the judge reads as c
                    (the "GAN-test" / classification accuracy score); `real_readability`
                    is the same on the real images, the ceiling the judge allows
  confidence        the judge's mean probability of the requested class
  judge_fid         Fréchet distance of judge features, real vs generated (per class too:
                    biased upward for small sets, so compare per-class values only at
                    equal --per-class and similar real counts)
  diversity         mean pairwise feature distance within the class, generated and real;
                    a class has *collapsed* when its generated diversity is below
                    COLLAPSE_RATIO (0.2) of the real scale (the class's own real diversity,
                    or the median over classes where it has fewer than 2 real images)
  pixel_diversity   the same within-class mean pairwise distance on pixels (RMS difference,
                    0..1 scale) and its ratio to real: speckle or noise inflates feature
                    diversity without any change of style, and this one shows that
  prediction_balance  how the judge's readings spread over classes (each class was asked
                    for equally, so a pile-up on one class means the model ignores labels)
  nearest_real      per generated image, the feature distance to the nearest real image
                    of the class (next to the real images' own leave-one-out distance:
                    generated far below real hints at copying), and the RMS pixel
                    difference to the nearest real image: below COPY_RMS it is a copy
Unconditional models (seed32 on MNIST): the judge's predicted class stands in for the
requested one: readability is the judge's mean confidence in its prediction, the class
balance of the predictions is reported (histogram, entropy, KL to uniform, beside the
same for the real data), and diversity and nearest-real are computed per predicted class.

Classes of checkpoint, judge and data are matched by class text; a requested class the
judge or the data lack is an error naming it. Real images: every image of the compared
classes, at most MAX_REAL (a seeded subset beyond that). The JSON goes to --out; beside
it, <out>.png shows the best and worst classes, generated images next to real ones.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..data_tools_api import InputError, image_grid, read_store, save_png
from ..judge import JudgeOutputs, judge_outputs, load_judge
from ..progress import format_duration
from ..sampling.loaded_generator import LoadedGenerator
from ..selection import class_mapping, select_classes
from .common import picture_path, write_json
from .metrics import (COLLAPSE_RATIO, COPY_RMS, class_balance, frechet_distance_of, mean_pairwise_distance,
                      nearest_distances, pixel_rms)

MAX_REAL = 50_000
CLASS_PROBES = 7  # timings of one class's scoring; the estimate uses their median
SHOWN_CLASSES = 8  # best and worst classes in the picture
SHOWN_IMAGES = 8  # generated (and real) images per shown class


def evaluate_generator(checkpoint: str | Path, judge_path: str | Path, data: str | Path, out: str | Path,
                       per_class: int = 50, n: int = 5000, chars: str | None = None, seed: int = 0,
                       device: str = "auto", weights: str = "ema") -> dict:
    """Write the report JSON (and its picture) for a checkpoint's EMA or raw generator; returns the report."""
    started = time.perf_counter()
    judge = load_judge(judge_path, device)
    loaded = LoadedGenerator(checkpoint, device, weights)
    real = read_store(data)
    for name, size in (("the checkpoint", loaded.image_size), (str(data), real.image_size)):
        if size != judge.image_size:
            raise InputError(f"{name} has {size}x{size} images but the judge was trained on {judge.image_size}x{judge.image_size}")
    if loaded.conditional:
        if per_class < 1:
            raise InputError(f"--per-class must be positive, got {per_class}")
        requested = select_classes(loaded.classes, chars=chars) if chars else list(range(len(loaded.classes)))
        requested = list(dict.fromkeys(requested))
        to_judge = class_mapping(loaded.classes, judge.classes, f"the checkpoint {checkpoint}", f"the judge {judge_path}", requested)
        to_data = class_mapping(loaded.classes, real.classes, f"the checkpoint {checkpoint}", f"the data {data}", requested)
        present = np.bincount(real.labels, minlength=len(real.classes))
        empty = [loaded.classes.text[c] for c in requested if present[to_data[c]] == 0]
        if empty:
            raise InputError(f"{data} has no images of {len(empty)} requested class(es): {' '.join(empty[:20])}")
        labels = np.repeat(requested, per_class)
        print(f"evaluating {checkpoint}: {len(requested):,} classes x {per_class} generated images; estimated run time "
              f"{format_duration(_estimate_seconds(loaded, judge, labels.tolist(), len(labels), len(real), len(requested)))}")
        generated = np.concatenate(list(loaded.images(labels.tolist(), len(labels), seed)))
        generated_classes = to_judge[labels]  # requested classes in judge indices
        keep = np.isin(real.labels, to_data[requested])
    else:
        if chars:
            raise InputError("this model is unconditional: --chars needs a conditional model")
        if n < 2:
            raise InputError(f"--n must be at least 2, got {n}")
        print(f"evaluating {checkpoint}: {n:,} generated images; estimated run time "
              f"{format_duration(_estimate_seconds(loaded, judge, None, n, len(real), judge.num_classes))}")
        generated = np.concatenate(list(loaded.images(None, n, seed)))
        generated_classes = None
        keep = np.ones(len(real), dtype=bool)
    real_to_judge = class_mapping(real.classes, judge.classes, f"the data {data}", f"the judge {judge_path}",
                                  np.unique(real.labels[keep]).tolist())
    real_index = np.flatnonzero(keep)
    if len(real_index) > MAX_REAL:
        real_index = np.sort(np.random.default_rng(seed).choice(real_index, MAX_REAL, replace=False))
    real_images, real_classes = real.images[real_index], real_to_judge[real.labels[real_index]]

    gen_out, real_out = judge_outputs(judge, generated, generated_classes), judge_outputs(judge, real_images)
    report = {
        "checkpoint": str(checkpoint), "weights": weights, "step": loaded.step, "judge": str(judge_path), "data": str(data),
        "judge_held_out_accuracy": judge.info.get("held_out_accuracy"), "seed": seed, "conditional": loaded.conditional,
        "generated_images": len(generated), "real_images": len(real_images),
        "judge_fid": frechet_distance_of(real_out.features, gen_out.features),
    }
    if loaded.conditional:
        groups = generated_classes
        report["readability"] = float((gen_out.predictions == generated_classes).mean())
        report["real_readability"] = float((real_out.predictions == real_classes).mean())
        report["confidence"] = float(gen_out.class_probability.mean())
        # A model that ignores its label draws one character for every class: the judge's
        # predictions then pile up on few classes although each class was asked for equally.
        balance = class_balance(gen_out.predictions, judge.num_classes)
        top = int(np.argmax(balance["counts"]))
        report["prediction_balance"] = {"entropy": balance["entropy"], "kl_to_uniform_over_requested": math.log(len(requested)) - balance["entropy"],
                                        "classes_predicted": balance["classes_predicted"], "most_predicted": judge.classes.text[top],
                                        "most_predicted_share": balance["counts"][top] / len(generated)}
    else:
        groups = gen_out.predictions
        report["readability"] = float(gen_out.top_probability.mean())  # the judge's confidence
        report["real_readability"] = float(real_out.top_probability.mean())
        report["confidence"] = report["readability"]
        report["class_balance"] = {"classes": judge.classes.text,
                                   "generated": class_balance(gen_out.predictions, judge.num_classes),
                                   "real": class_balance(real_out.predictions, judge.num_classes)}
    per_class = _per_class(judge.classes.text, groups, generated, gen_out, real_classes, real_images, real_out,
                           conditional=loaded.conditional)
    report.update(_overall(per_class))
    report["per_class"] = per_class
    report["seconds"] = time.perf_counter() - started
    out = Path(out)
    write_json(report, out)
    picture = picture_path(out)
    save_png(best_and_worst(per_class, groups, generated, real_classes, real_images), picture)
    print(summary_text(report) + f"; wrote {out} and {picture}")
    return report


def _estimate_seconds(loaded: LoadedGenerator, judge, labels: list[int] | None, generated: int, real: int,
                      classes: int) -> float:
    """Time generating, judging and scoring a probe batch as one class, then scale to the whole job.

    Generating and judging are timed on their second run: the first pays one-off setup
    (kernels chosen, buffers allocated) that the job pays only once. Scoring one class is
    a few milliseconds of small operations whose single timings scatter widely (another
    process on the cores can stall one by a second), so it is timed as the median of
    several runs, on a class of the job's own sizes.
    """
    probe = min(512, generated)  # the judge's batch: smaller batches run at another speed per image
    probe_labels = None if labels is None else labels[:probe]
    images, generate_seconds = _second_run(lambda: next(loaded.images(probe_labels, probe, seed=0, batch_size=probe)))
    as_class = np.zeros(len(images), dtype=np.int64)  # timing only: every probe image scored as class 0
    outputs, judge_seconds = _second_run(lambda: judge_outputs(judge, images, as_class))
    real = min(real, MAX_REAL)
    gen_part = np.arange(max(2, generated // classes)) % probe  # one class's images (repeated if the probe is short)
    real_part = np.arange(max(2, real // classes)) % probe
    def score_one_class() -> None:
        _per_class(judge.classes.text, as_class[gen_part], images[gen_part], outputs[gen_part],
                   as_class[real_part], images[real_part], outputs[real_part], conditional=labels is not None)
    score_one_class()
    class_seconds = float(np.median([_seconds(score_one_class) for _ in range(CLASS_PROBES)]))
    per_image = (generated * (generate_seconds + judge_seconds) + real * judge_seconds) / probe
    return 1.1 * (per_image + classes * class_seconds)


def _seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _second_run(work):
    """(result, seconds) of the second of two calls of `work`."""
    work()
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def _per_class(names: list[str], groups: np.ndarray, generated: np.ndarray, gen_out: JudgeOutputs,
               real_classes: np.ndarray, real_images: np.ndarray, real_out: JudgeOutputs, conditional: bool) -> list[dict]:
    rows = []
    real_diversity = {}
    for c in np.unique(np.concatenate([groups, real_classes])):
        real_diversity[int(c)] = mean_pairwise_distance(real_out.features[real_classes == c])
    known = [v for v in real_diversity.values() if not math.isnan(v)]
    fallback = float(np.median(known)) if known else math.nan
    for c in np.unique(groups):
        c = int(c)
        g, r = groups == c, real_classes == c
        gen_features, real_features = gen_out.features[g], real_out.features[r]
        row = {"class": names[c], "judge_index": c, "generated": int(g.sum()), "real": int(r.sum())}
        if conditional:
            row["readability"] = float((gen_out.predictions[g] == c).mean())
            row["confidence"] = float(gen_out.class_probability[g].mean())  # the class asked for is c
        else:
            row["readability"] = row["confidence"] = float(gen_out.top_probability[g].mean())
        row["real_readability"] = float((real_out.predictions[r] == c).mean()) if r.any() else None
        row["judge_fid"] = frechet_distance_of(real_features, gen_features) if r.sum() >= 2 and g.sum() >= 2 else None
        diversity = mean_pairwise_distance(gen_features)
        scale = real_diversity.get(c, math.nan)
        scale = fallback if math.isnan(scale) else scale
        row["diversity_generated"], row["diversity_real"] = diversity, real_diversity.get(c)
        row["diversity_ratio"] = diversity / scale if scale and not math.isnan(scale) else None
        row["collapsed"] = bool(row["diversity_ratio"] is not None and not math.isnan(diversity) and row["diversity_ratio"] < COLLAPSE_RATIO)
        gen_pixels, real_pixels = pixel_rms(generated[g]), pixel_rms(real_images[r])  # for diversity and copies
        pixel_generated = mean_pairwise_distance(gen_pixels)
        pixel_real = mean_pairwise_distance(real_pixels) if r.sum() >= 2 else math.nan
        row["pixel_diversity_ratio"] = pixel_generated / pixel_real if pixel_real and not math.isnan(pixel_real) else None
        if r.any():
            row["nearest_real"] = float(nearest_distances(gen_features, real_features).mean())
            row["real_nearest_real"] = float(np.nanmean(nearest_distances(real_features, real_features, exclude_self=True))) if r.sum() >= 2 else None
            rms = nearest_distances(gen_pixels, real_pixels)
            row["nearest_real_pixel_rms"] = float(rms.mean())
            row["copies"] = int((rms < COPY_RMS).sum())
        else:
            row.update(nearest_real=None, real_nearest_real=None, nearest_real_pixel_rms=None, copies=0)
        rows.append(row)
    return rows


def _mean(rows: list[dict], key: str, weight: str | None = None) -> float | None:
    pairs = [(row[key], row[weight] if weight else 1) for row in rows if row.get(key) is not None and not math.isnan(row[key])]
    if not pairs:
        return None
    values, weights = zip(*pairs)
    return float(np.average(values, weights=weights))


def _overall(rows: list[dict]) -> dict:
    generated = sum(row["generated"] for row in rows)
    return {
        "classes": len(rows),
        "mean_class_readability": _mean(rows, "readability"),
        "diversity": {"generated": _mean(rows, "diversity_generated", "generated"), "real": _mean(rows, "diversity_real", "real"),
                      "mean_ratio": _mean(rows, "diversity_ratio"), "pixel_mean_ratio": _mean(rows, "pixel_diversity_ratio"),
                      "collapsed_share": float(np.mean([row["collapsed"] for row in rows])) if rows else None,
                      "collapsed_classes": [row["class"] for row in rows if row["collapsed"]][:100]},
        "nearest_real": {"generated": _mean(rows, "nearest_real", "generated"), "real_leave_one_out": _mean(rows, "real_nearest_real", "real"),
                         "pixel_rms": _mean(rows, "nearest_real_pixel_rms", "generated"),
                         "copies": sum(row["copies"] for row in rows),
                         "copy_share": sum(row["copies"] for row in rows) / generated if generated else None},
    }


def summary_text(report: dict) -> str:
    parts = [f"step {report['step']}: judge-FID {report['judge_fid']:.3f}"]
    if report["conditional"]:
        parts.append(f"readability {report['readability']:.1%} (real {report['real_readability']:.1%})")
        balance = report["prediction_balance"]
        parts.append(f"most read as {balance['most_predicted']} ({balance['most_predicted_share']:.0%} of images)")
    else:
        balance = report["class_balance"]["generated"]
        parts.append(f"confidence {report['readability']:.1%} (real {report['real_readability']:.1%})")
        parts.append(f"class balance: entropy {balance['normalised_entropy']:.3f} of uniform, KL {balance['kl_to_uniform']:.4f}")
    diversity = report["diversity"]
    if diversity["mean_ratio"] is not None:
        parts.append(f"diversity {diversity['mean_ratio']:.2f} of real (pixels {math.nan if diversity['pixel_mean_ratio'] is None else diversity['pixel_mean_ratio']:.2f}), "
                     f"{diversity['collapsed_share']:.0%} of classes collapsed")
    parts.append(f"copies {report['nearest_real']['copies']}")
    return ", ".join(parts)


def best_and_worst(rows: list[dict], groups: np.ndarray, generated: np.ndarray, real_classes: np.ndarray,
                   real_images: np.ndarray) -> Image.Image:
    """Rows of classes, best readability first then worst: generated images | real images."""
    ranked = sorted(rows, key=lambda row: (-row["readability"], row["judge_fid"] if row["judge_fid"] is not None else math.inf))
    shown = min(SHOWN_CLASSES, max(1, len(ranked) // 2)) if len(ranked) > 1 else 1
    sections = [("best", ranked[:shown])]
    if len(ranked) > 1:
        sections.append(("worst", ranked[::-1][:shown]))
    size = generated.shape[1]
    blank = np.zeros((size, size), dtype=np.uint8)
    pictures = []
    for title, chosen in sections:
        cells, captions = [], []
        for row in chosen:
            c = row["judge_index"]
            gen = list(generated[groups == c][:SHOWN_IMAGES])
            real = list(real_images[real_classes == c][:SHOWN_IMAGES])
            gen += [blank] * (SHOWN_IMAGES - len(gen))
            real += [blank] * (SHOWN_IMAGES - len(real))
            cells += gen + real
            captions += [f"{row['class']} {row['readability']:.0%}"] + [""] * (SHOWN_IMAGES - 1) + ["real"] + [""] * (SHOWN_IMAGES - 1)
        grid = image_grid(np.stack(cells), captions, columns=2 * SHOWN_IMAGES).convert("RGB")
        header = Image.new("RGB", (grid.width, 20), "white")
        ImageDraw.Draw(header).text((4, 3), f"{title} classes by readability: {SHOWN_IMAGES} generated | {SHOWN_IMAGES} real",
                                    fill="black", font=ImageFont.load_default(size=13))
        pictures += [header, grid]
    figure = Image.new("RGB", (max(p.width for p in pictures), sum(p.height for p in pictures)), "white")
    y = 0
    for picture in pictures:
        figure.paste(picture, (0, y))
        y += picture.height
    return figure
