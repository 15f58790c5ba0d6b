"""Rendering speed: glyphs per second of `render_glyphs`, store write included, as JSON.

Renders the first N GB2312 level-1 characters (default: all 3,755) with Noto Sans SC
(pip `pylopdf-fonts-zh-cn`) into a temporary store, for 1 and 2 worker processes at
sizes 28 and 64, and reports the median of a few runs after one warm-up (which loads
the cmap and hashes the font file, work done once per face in a real run).

    python benchmarks/render.py [--chars N] [--runs R] [--augment K]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import PIL

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_tools.charsets import gb2312_level1  # noqa: E402
from data_tools.fonts import open_font_spec  # noqa: E402
from data_tools.drawing import draw_size  # noqa: E402
from data_tools.render import default_workers, render_glyphs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=3755)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--augment", type=int, default=0)
    args = parser.parse_args()
    import pylopdf_fonts_zh_cn

    face = open_font_spec(pylopdf_fonts_zh_cn.sans_path())
    characters = gb2312_level1()[: args.chars]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "bench.h5"
        render_glyphs(out, characters[:64], [face], workers=1)  # warm-up: cmap, file hash, imports
        for size in (28, 64):
            for workers in (1, 2):
                times = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    report = render_glyphs(out, characters, [face], size=size, augment=args.augment, workers=workers)
                    times.append(time.perf_counter() - start)
                seconds = statistics.median(times)
                results.append({
                    "size": size, "workers": workers, "draw_size": draw_size(size), "glyphs": report.samples,
                    "seconds": round(seconds, 3), "glyphs_per_s": round(report.samples / seconds),
                    "file_bytes": out.stat().st_size,
                })
    print(json.dumps({
        "benchmark": "render", "font": face.name, "characters": len(characters), "augment": args.augment,
        "runs": args.runs, "cpus": default_workers(), "python": sys.version.split()[0], "pillow": PIL.__version__,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
