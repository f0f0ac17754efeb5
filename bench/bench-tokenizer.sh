#!/usr/bin/env bash
# make bench-tokenizer: wm-encode-latent + wm-decode-frame frames/s at 64x64
# against PyTorch on the CPU with the same weights and threads, batch 1
# (streaming) and batch 32, in one run (target >= 1.5x PyTorch).
#   ours:  wm-encode-latent --batch B < frames > latents, then
#          wm-decode-frame --batch B < latents > /dev/null; both times summed,
#          so one process and THREADS threads work at a time, stream I/O and
#          msgpack included.
#   peer:  bench/torch_tokenizer_peer.py: the same network and weights,
#          uint8 frames in memory -> encode -> decode -> uint8, no stream I/O;
#          the faster of NCHW and channels_last.
# Also reported: the two filters as a pipeline (two processes at once).
# Each timing is the best of $REPS runs.  MODEL=... picks the model
# (default: the shipped one), THREADS=... the threads (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
MODEL=${MODEL:-models/wm-default.safetensors}
THREADS=${THREADS:-1}
frames=$OUT/tokenizer_frames.wm
lat=$OUT/tokenizer_latents.wm
[ -s "$frames" ] || wm-synth -q --clips 32 --frames 32 --seed 77 > "$frames"   # 1024 frames of 64x64
n=$(( 32 * 32 ))
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "bench-tokenizer: PyTorch is not importable" >&2; exit 1; }

res=$OUT/bench-tokenizer.txt
{
machine
echo "model: $MODEL ($(/usr/bin/python3 -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read(); m = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]
print("C=%s hidden=%s blocks=%s" % (m["tokenizer.latent_channels"], m["tokenizer.hidden"], m["tokenizer.blocks"]))' "$MODEL")), threads $THREADS, $n frames of 64x64"
echo
echo "| batch | wm encode | wm decode | wm encode+decode | PyTorch NCHW | PyTorch channels_last | ratio | wm as a pipeline |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for batch in 1 32; do
    enc() { wm-encode-latent -q --model "$MODEL" --threads "$THREADS" --batch "$batch" < "$frames" > "$lat"; }
    dec() { wm-decode-frame -q --model "$MODEL" --threads "$THREADS" --batch "$batch" < "$lat" > /dev/null; }
    pipe() { wm-encode-latent -q --model "$MODEL" --threads "$THREADS" --batch "$batch" < "$frames" |
             wm-decode-frame -q --model "$MODEL" --threads "$THREADS" --batch "$batch" > /dev/null; }
    t_enc=$(best enc); t_dec=$(best dec); t_pipe=$(best pipe)
    t_nchw=$(/usr/bin/python3 bench/torch_tokenizer_peer.py "$MODEL" "$frames" "$THREADS" "$batch" | cut -d' ' -f2)
    t_cl=$(/usr/bin/python3 bench/torch_tokenizer_peer.py "$MODEL" "$frames" "$THREADS" "$batch" channels_last | cut -d' ' -f2)
    awk -v n="$n" -v b="$batch" -v e="$t_enc" -v d="$t_dec" -v p="$t_pipe" -v t1="$t_nchw" -v t2="$t_cl" 'BEGIN {
        tp = (t1 < t2 ? t1 : t2); ours = e + d
        printf "| %d | %.0f/s | %.0f/s | **%.0f frames/s** | %.0f/s | %.0f/s | **%.2f** | %.0f/s |\n",
            b, n / e, n / d, n / ours, n / t1, n / t2, tp / ours, n / p }'
done
} | tee "$res"
echo "(ratio: wm encode+decode throughput over the faster PyTorch layout; results in $res)"
