#!/usr/bin/env bash
# make bench-io: stream I/O against the tools it replaces, in one run.
#  1. wm-decode --size 64x64 vs the ffmpeg CLI (scale=64:64, rawvideo rgb24)
#     on a 1080p H.264 testsrc2 clip of 600 frames: target ratio >= 1.0.
#  2. wm-cat --pass of a ~1 GB stream of 1080p frames vs cat of the same
#     bytes: target >= 0.7 of cat's throughput.
# Each timing is the best of $REPS runs (these 2-core machines are noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
clip=$OUT/testsrc2_1080p_600.mp4
stream=$OUT/frames_1080p.wms
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

[ -s "$clip" ] || ff -f lavfi -i testsrc2=size=1920x1080:rate=30 -frames:v 600 -c:v libx264 -preset veryfast -pix_fmt yuv420p "$clip"
# 165 frames of 1920x1080 rgb24 = 1.03 GB
[ -s "$stream" ] || wm-decode -q --frames 165 "$clip" > "$stream"


run_wm_decode() { wm-decode -q --size 64x64 --fit stretch "$clip" > /dev/null; }
run_ffmpeg() { ffmpeg -nostdin -loglevel error -i "$clip" -vf scale=64:64 -f rawvideo -pix_fmt rgb24 - > /dev/null; }
run_cat_file() { cat < "$stream" > /dev/null; }
run_wmcat_file() { wm-cat --pass < "$stream" > /dev/null; }
run_cat_pipe() { cat "$stream" | cat | cat > /dev/null; }
run_wmcat_pipe() { cat "$stream" | wm-cat --pass | cat > /dev/null; }

frames=600
bytes=$(stat -c %s "$stream")
t_wm=$(best run_wm_decode); t_ff=$(best run_ffmpeg)
t_cf=$(best run_cat_file); t_wf=$(best run_wmcat_file)
t_cp=$(best run_cat_pipe); t_wp=$(best run_wmcat_pipe)

fps() { awk -v n="$frames" -v t="$1" 'BEGIN { printf "%.1f", n / t }'; }
mbs() { awk -v n="$bytes" -v t="$1" 'BEGIN { printf "%.0f", n / t / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
{
machine
echo "decode 1080p H.264 600 frames -> 64x64 rgb24:"
echo "  wm-decode   $t_wm s  $(fps "$t_wm") frames/s"
echo "  ffmpeg CLI  $t_ff s  $(fps "$t_ff") frames/s"
echo "  ratio wm-decode/ffmpeg (throughput) = $(ratio "$t_ff" "$t_wm")  (target >= 1.0)"
echo "pass-through of $bytes bytes of 1080p frames:"
echo "  file -> /dev/null:  cat $t_cf s ($(mbs "$t_cf") MB/s)  wm-cat --pass $t_wf s ($(mbs "$t_wf") MB/s)  ratio $(ratio "$t_cf" "$t_wf")  (target >= 0.7)"
echo "  through pipes:      cat $t_cp s ($(mbs "$t_cp") MB/s)  wm-cat --pass $t_wp s ($(mbs "$t_wp") MB/s)  ratio $(ratio "$t_cp" "$t_wp")  (target >= 0.7)"
} | tee "$OUT/bench-io.txt"
