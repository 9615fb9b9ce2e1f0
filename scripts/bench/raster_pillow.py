#!/usr/bin/env python3
"""Pillow doing what benches/raster.rs does, on the same page, for comparison.

Run `cargo bench --bench raster` first: it writes target/raster-bench-page.png (576x1600).
Then: python3 scripts/bench/raster_pillow.py [page.png] [--iters N]

Pillow's convert('1') is Floyd-Steinberg (plain left-to-right scan) and tobytes() packs
1-bit rows MSB-first, padded to whole bytes: the same output format as raster::dither.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, ImageOps, __version__ as pillow_version

WARMUP = 10


def report(label, iterations, run):
    for _ in range(WARMUP):
        run()
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000.0)
    times.sort()
    p90 = times[min(len(times) * 9 // 10, len(times) - 1)]
    print(f"{label:<52} median {statistics.median(times):>7.3f}  min {times[0]:>7.3f}  p90 {p90:>7.3f}")


def main():
    default_page = Path(__file__).resolve().parents[2] / "target" / "raster-bench-page.png"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", nargs="?", default=str(default_page))
    parser.add_argument("--iters", type=int, default=300)
    args = parser.parse_args()

    page = Image.open(args.page).convert("RGB")
    page.load()
    print(f"page: {page.width}x{page.height} from {args.page}; Pillow {pillow_version}, Python {sys.version.split()[0]}")
    print(f"{args.iters} timed runs after {WARMUP} warm-up runs; milliseconds per page\n")

    bits = page.convert("L").convert("1").tobytes()
    black = sum(8 - bin(b).count("1") for b in bits)  # Pillow's '1' packs white as 1
    print(f"plain dither: {black / (page.width * page.height) * 100:.1f}% black, {len(bits)} bytes\n")

    report("gray + dither, plain scan (convert L, 1, tobytes)", args.iters,
           lambda: page.convert("L").convert("1").tobytes())
    report("gray + autocontrast(cutoff=1) + dither + tobytes", args.iters,
           lambda: ImageOps.autocontrast(page.convert("L"), cutoff=1).convert("1").tobytes())


if __name__ == "__main__":
    main()
