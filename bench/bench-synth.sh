#!/usr/bin/env bash
# make bench-synth: how fast wm-synth makes training data, on one core.
#  1. training clips at 64x64 (64 frames each) written through the real
#     writer to /dev/null: frames/s, target >= 5,000.
#  2. the same at 128x128, and matched pairs at 64x64 (planning included),
#     for scale.
# Each timing is the best of $REPS runs (these 2-core machines are noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
CLIPS=${CLIPS:-400}
one_core=()
command -v taskset > /dev/null && one_core=(taskset -c 0)

clips_64() { "${one_core[@]}" wm-synth -q --clips "$CLIPS" --frames 64 --size 64x64 > /dev/null; }
clips_128() { "${one_core[@]}" wm-synth -q --clips $((CLIPS / 4)) --frames 64 --size 128x128 > /dev/null; }
pairs_64() { "${one_core[@]}" wm-synth -q --pairs 10 --frames 32 --size 64x64 > /dev/null; }

t64=$(best clips_64); t128=$(best clips_128); tp=$(best pairs_64)
fps() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", n / t }'; }
f64=$(fps $((CLIPS * 64)) "$t64")
{
echo "$(machine), one core used"
echo "wm-synth training clips, 64 frames each, to /dev/null:"
echo "  64x64    $((CLIPS * 64)) frames  $t64 s  $f64 frames/s  (target >= 5000: $(awk -v f="$f64" 'BEGIN { print (f >= 5000 ? "met" : "MISSED") }'))"
echo "  128x128  $((CLIPS / 4 * 64)) frames  $t128 s  $(fps $((CLIPS / 4 * 64)) "$t128") frames/s"
echo "wm-synth matched pairs, 64x64, 32 frames: 10 per category = 120 clips"
echo "  $tp s  $(fps $((120 * 32)) "$tp") frames/s (each pair drawn twice more while it is checked)"
} | tee "$OUT/bench-synth.txt"
