#!/usr/bin/env bash
# Makes assets/fonts/DejaVuSans-Bold.ttf, the one font the layouts draw text with (src/layout/text.rs),
# from DejaVu Sans Bold 2.37 (Debian's fonts-dejavu-core), cut to the scripts a booth in Uzbekistan
# prints: Latin with its extensions (Uzbek oʻ/gʻ use U+02BB), Cyrillic with the supplement (ў қ ғ ҳ),
# punctuation, currency signs, № and a few symbols. The full font is 709 KB of the binary for Greek,
# Arabic, Armenian, maths and box drawing that no booth screen or print uses; the cut is 121 KB.
#
# Outlines, advances and kerning pairs of every kept glyph are the font's own, unchanged: ab_glyph
# reads `glyf`, `hmtx` and the legacy `kern` table only, so hinting and OpenType layout are dropped.
# A character outside the cut draws as the font's .notdef box.
#
#   pip install fonttools        # pyftsubset
#   scripts/subset-font.sh [/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="${1:-/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf}"
command -v pyftsubset >/dev/null || { echo "pyftsubset not found: pip install fonttools" >&2; exit 1; }

unicodes='U+0020-007E,U+00A0-024F,U+02B0-036F,U+0400-052F,U+1E00-1EFF,U+2000-206F,U+20A0-20CF'
unicodes+=',U+2100-214F,U+2190-2195,U+2212,U+2460-2473,U+25A0-25CF,U+2713-2714,U+FFFD'

pyftsubset "$src" --output-file="$root/assets/fonts/DejaVuSans-Bold.ttf" --unicodes="$unicodes" \
  --legacy-kern --no-hinting --layout-features='' --drop-tables+=FFTM,GDEF,GPOS,GSUB \
  --name-IDs='*' --name-legacy --name-languages='*' --notdef-outline
ls -l "$root/assets/fonts/DejaVuSans-Bold.ttf"
