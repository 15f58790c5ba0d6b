"""The pictures of `experiment mog` (PIL only): density panels, line charts, the paper's Fig. 7 layout.

Kept apart from mog.py, which trains and measures: these functions only draw what the
experiment wrote (per-seed records and samples.npz files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

PANEL = 132
EXTENT = 1.45  # the panel shows [-EXTENT, EXTENT]²
COLOURS = {"lsgan": (31, 119, 180), "bce": (214, 39, 40)}


def _font(size: int = 12) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def density_panel(points: np.ndarray, centres: np.ndarray, title: str = "", caption: str = "", size: int = PANEL) -> Image.Image:
    """A kernel density picture of 2-D points (a smoothed 2-D histogram), the mode `centres` (M, 2) marked."""
    points = np.asarray(points, dtype=np.float64)
    histogram, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=size, range=[[-EXTENT, EXTENT]] * 2)
    density = torch.from_numpy(histogram[::-1].copy()).float()[None, None]  # y up
    sigma = 1.2
    taps = torch.arange(-4, 5, dtype=torch.float32)
    kernel = torch.exp(-taps**2 / (2 * sigma**2))
    kernel /= kernel.sum()
    density = F.conv2d(density, kernel.view(1, 1, 1, -1), padding=(0, 4))
    density = F.conv2d(density, kernel.view(1, 1, -1, 1), padding=(4, 0))[0, 0].numpy()
    level = np.sqrt(density / max(density.max(), 1e-12))  # square root: faint spread stays visible next to a peak
    # white -> blue -> dark navy
    rgb = np.stack([255 - level * (255 - 8), 255 - level * (255 - 48), 255 - level * (255 - 107)], axis=-1)
    panel = Image.fromarray(rgb.clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(panel)
    scale = size / (2 * EXTENT)
    for x, y in centres:
        cx, cy = (x + EXTENT) * scale, (EXTENT - y) * scale
        r = 0.1 * scale
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(230, 120, 0))
    draw.rectangle([0, 0, size - 1, size - 1], outline=(160, 160, 160))
    font = _font(11)
    full = Image.new("RGB", (size, size + 30), "white")
    full.paste(panel, (0, 0))
    text = ImageDraw.Draw(full)
    text.text((size / 2, size + 2), title, fill="black", font=font, anchor="ma")
    text.text((size / 2, size + 16), caption, fill=(70, 70, 70), font=font, anchor="ma")
    return full


def picture_row(panels: list[Image.Image], gap: int = 4, label: str = "", label_width: int = 0) -> Image.Image:
    width = label_width + sum(p.width for p in panels) + gap * (len(panels) + 1)
    height = max(p.height for p in panels) + 2 * gap
    row = Image.new("RGB", (width, height), "white")
    x = label_width + gap
    for panel in panels:
        row.paste(panel, (x, gap))
        x += panel.width + gap
    if label:
        draw = ImageDraw.Draw(row)
        for index, line in enumerate(label.split("\n")):
            draw.text((6, height / 2 - 10 + 16 * index), line, fill="black", font=_font(13), anchor="lm")
    return row


def _stack(images: list[Image.Image], gap: int = 6) -> Image.Image:
    width = max(i.width for i in images)
    figure = Image.new("RGB", (width, sum(i.height for i in images) + gap * (len(images) + 1)), "white")
    y = gap
    for image in images:
        figure.paste(image, (0, y))
        y += image.height + gap
    return figure


def _chart(results: dict[str, list[dict]], key: str, radius: str, title: str, y_max: float, legend_names: dict[str, str],
           width: int = 520, height: int = 240) -> Image.Image:
    """A line chart over steps: per loss the mean over seeds, with a min-max band."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image, "RGBA")
    left, right, top, bottom = 48, width - 12, 24, height - 34
    font = _font(11)
    draw.text((width / 2, 4), title, fill="black", font=_font(13), anchor="ma")
    draw.rectangle([left, top, right, bottom], outline=(120, 120, 120))
    steps = max((r["steps"] for records in results.values() for r in records), key=len)
    last = max(steps[-1], 1)
    to_x = lambda s: left + (right - left) * s / last
    to_y = lambda v: bottom - (bottom - top) * v / y_max
    for tick in np.linspace(0, y_max, 5):
        draw.line([left - 3, to_y(tick), left, to_y(tick)], fill=(120, 120, 120))
        draw.text((left - 5, to_y(tick)), f"{tick:g}", fill="black", font=font, anchor="rm")
    for step in steps:
        draw.text((to_x(step), bottom + 4), f"{step / 1000:g}k" if step >= 1000 else str(step), fill="black", font=font, anchor="ma")
    draw.text(((left + right) / 2, height - 12), "step", fill="black", font=font, anchor="ma")
    legend_y = top + 6
    for loss, records in results.items():
        records = [r for r in records if r["steps"] == records[0]["steps"]]
        values = np.array([r[key][radius] for r in records], dtype=np.float64)  # (seeds, steps)
        xs = [to_x(s) for s in records[0]["steps"]]
        colour = COLOURS[loss]
        band = [(x, to_y(v)) for x, v in zip(xs, values.max(0))] + [(x, to_y(v)) for x, v in zip(xs[::-1], values.min(0)[::-1])]
        draw.polygon(band, fill=(*colour, 50))
        draw.line([(x, to_y(v)) for x, v in zip(xs, values.mean(0))], fill=colour, width=2)
        draw.line([right - 150, legend_y, right - 130, legend_y], fill=colour, width=2)
        draw.text((right - 125, legend_y), f"{legend_names[loss]} ({len(records)} seeds)", fill="black", font=font, anchor="lm")
        legend_y += 15
    return image


def comparison_figure(out: Path, results: dict[str, list[dict]], names: dict[str, str], legend_names: dict[str, str],
                      title: str, centres: np.ndarray) -> Image.Image:
    """The paper's Fig. 7 layout: per loss, one seed's density over the steps; then every
    seed's final density; then modes covered and high-quality share over the steps.

    `names`: each loss's full name (LSGAN's targets too), `legend_names` its short name;
    `centres` (M, 2): the mixture's modes."""
    modes = len(centres)
    parts = []
    label_width = 110
    for loss, records in results.items():
        first = records[0]
        row_name = names[loss].replace(" a=", "\na=")  # LSGAN's targets on their own line
        with np.load(out / loss / f"seed_{first['seed']}" / "samples.npz") as samples:
            panels = [density_panel(samples[f"step_{s:07d}"], centres, f"step {s}",
                                    f"{first['modes_covered']['0.1'][i]} modes, hq {first['high_quality']['0.1'][i]:.0%}")
                      for i, s in enumerate(first["steps"])]
        parts.append(picture_row(panels, label=f"{row_name}\nseed {first['seed']}", label_width=label_width))
    for loss, records in results.items():
        row_name = names[loss].replace(" a=", "\na=")
        panels = []
        for record in records:
            with np.load(out / loss / f"seed_{record['seed']}" / "samples.npz") as samples:
                final = record["steps"][-1]
                panels.append(density_panel(samples[f"step_{final:07d}"], centres, f"seed {record['seed']}",
                                            f"{record['modes_covered']['0.1'][-1]} modes", size=96))
        parts.append(picture_row(panels, label=f"{row_name}\nfinal, all seeds", label_width=label_width))
    charts = [_chart(results, "modes_covered", "0.1", "modes covered (r = 0.1, >= 20 of 2,500 samples)", modes, legend_names),
              _chart(results, "high_quality", "0.1", "high-quality share (within r = 0.1 of a mode)", 1.0, legend_names),
              _chart(results, "modes_covered", "0.03", "modes covered (r = 0.03 = 3 std)", modes, legend_names)]
    parts.append(picture_row(charts))
    heading = Image.new("RGB", (max(p.width for p in parts), 24), "white")
    ImageDraw.Draw(heading).text((6, 6), title, fill="black", font=_font(14))
    return _stack([heading, *parts])
