#!/usr/bin/env bash
# make bench-step: wm-step latents/s on the CPU against PyTorch on the CPU
# running the same dynamics model with the same weights and threads, in
# teacher mode, batch 1 (streaming, one clip at a time) and batch 32 (32
# clips in lock-step), in one run (target >= 2x PyTorch).
#   ours:  wm-step --device cpu --prior none --batch B < latents > /dev/null:
#          the whole filter, stream I/O, msgpack and the pred messages
#          included; the dynamics alone, as the peer runs them (the object
#          prior, on by default, is the tokenizer and detector's cost).
#   peer:  bench/torch_step_peer.py: the same network and weights, latents
#          in memory -> means and variances in memory, no stream I/O; the
#          faster of NCHW and channels_last.
# The latents: 32 wm-synth clips of 32 frames at 64x64 (16x16x16 grids),
# encoded once with the model's tokenizer.  Each timing is the best of
# $REPS runs.  MODEL=... picks the model (default: the shipped one),
# THREADS=... the threads (default 1), COPIES=... how many times the 1024
# latents are repeated (default 4).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
MODEL=${MODEL:-models/wm-default.safetensors}
THREADS=${THREADS:-1}
COPIES=${COPIES:-4}
lat=$OUT/step_latents.wm
[ -s "$lat" ] && [ "$lat" -nt "$MODEL" ] ||
    wm-synth -q --clips 32 --frames 32 --seed 77 | wm-encode-latent -q --model "$MODEL" --batch 32 > "$lat"
all=$OUT/step_latents_x$COPIES.wm
for _ in $(seq "$COPIES"); do cat "$lat"; done > "$all"
n=$(( 32 * 32 * COPIES ))
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "bench-step: PyTorch is not importable" >&2; exit 1; }

res=$OUT/bench-step.txt
{
machine
echo "model: $MODEL ($(/usr/bin/python3 -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read(); m = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]
print("%s C=%s hidden=%s dilation=%s" % (m["dynamics.arch"], m["dynamics.latent_channels"], m["dynamics.hidden"],
                                         m["dynamics.dilation"]))' "$MODEL")), threads $THREADS, $n latents of 16x16x16"
echo
echo "| batch | wm-step (whole filter) | PyTorch NCHW | PyTorch channels_last | ratio |"
echo "|---:|---:|---:|---:|---:|"
for batch in 1 32; do
    ours() { wm-step -q --device cpu --prior none --model "$MODEL" --threads "$THREADS" --batch "$batch" < "$all" > /dev/null; }
    t_ours=$(best ours)
    t_nchw=$(/usr/bin/python3 bench/torch_step_peer.py "$MODEL" "$all" "$THREADS" "$batch" | cut -d' ' -f2)
    t_cl=$(/usr/bin/python3 bench/torch_step_peer.py "$MODEL" "$all" "$THREADS" "$batch" channels_last | cut -d' ' -f2)
    awk -v n="$n" -v b="$batch" -v o="$t_ours" -v t1="$t_nchw" -v t2="$t_cl" 'BEGIN {
        tp = (t1 < t2 ? t1 : t2)
        printf "| %d | **%.0f latents/s** | %.0f/s | %.0f/s | **%.2f** |\n", b, n / o, n / t1, n / t2, tp / o }'
done
} | tee "$res"
echo "(ratio: wm-step throughput over the faster PyTorch layout; results in $res)"
