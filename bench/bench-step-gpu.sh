#!/usr/bin/env bash
# make bench-step-gpu (on a machine with a CUDA device): wm-step --device cuda
# latents/s at batch 1, 64 and 512, the share of device time in cuBLAS GEMMs,
# the achieved FLOP/s against the card's fp32 peak, and PyTorch (eager, CUDA,
# TF32 off, same weights, same batch) in the same run.
#   ours:  wm-step --device cuda --batch B --profile -v < latents > /dev/null:
#          the whole filter (stream I/O, msgpack, preds); -v reports the
#          device time, the GEMM time (CUDA events around each cuBLAS call)
#          and the FLOPs of the convolutions.
#   peer:  bench/torch_step_peer.py ... cuda: the same network in PyTorch,
#          latents copied in and results copied out each step.
# Targets (issue 6): batch 512 at >= 30% of the fp32 peak, the whole wm-step
# within 1.5x of its GEMM time, >= 1.5x PyTorch's throughput.
# PEAK_TFLOPS=... sets the fp32 peak (default: from the card's name: H100 SXM
# 67, H100 PCIe 51, H200 67, A100 19.5).  CLIPS=... (default 512 clips of 32
# latents).  MODEL=... (default the shipped model).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
MODEL=${MODEL:-models/wm-default.safetensors}
CLIPS=${CLIPS:-512}
probe=$(wm-step --device cuda -v --model "$MODEL" < /dev/null 2>&1 >/dev/null | head -1) || {
    echo "bench-step-gpu: no CUDA device ($probe)" >&2; exit 1; }
name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo unknown)
case "$name" in
    *H100*PCIe*) peak=51 ;; *H100*|*H200*) peak=67 ;; *A100*) peak=19.5 ;; *) peak=${PEAK_TFLOPS:-0} ;;
esac
peak=${PEAK_TFLOPS:-$peak}
lat=$OUT/step_gpu_latents.wm
[ -s "$lat" ] && [ "$lat" -nt "$MODEL" ] ||
    wm-synth -q --clips "$CLIPS" --frames 32 --seed 78 | wm-encode-latent -q --model "$MODEL" --batch 64 \
        --threads "$(nproc)" > "$lat"
n=$(( CLIPS * 32 ))
res=$OUT/bench-step-gpu.txt
{
machine
echo "gpu: $name (fp32 peak taken as $peak TFLOP/s); $probe"
echo "model: $MODEL; $n latents (wm-synth 64x64 clips through wm-encode-latent)"
echo
echo "| batch | wm-step latents/s | in the network | GEMM share of device time | device time / GEMM time | achieved | of peak | PyTorch eager | ratio |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for batch in 1 64 512; do
    run() { wm-step --device cuda --prior none --profile -v --model "$MODEL" --batch "$batch" < "$lat" > /dev/null 2> "$OUT/gpu_$batch.err"; }
    t=$(best run)
    tp=$(/usr/bin/python3 bench/torch_step_peer.py "$MODEL" "$lat" 1 "$batch" cuda | cut -d' ' -f2)
    # wm-step: cuda: R ms in runs, F GFLOP; device D ms, cuBLAS GEMMs G ms (P%), X GFLOP/s
    awk -v n="$n" -v b="$batch" -v t="$t" -v tp="$tp" -v peak="$peak" '
        /latents\/s in the network/ { for (i = 1; i <= NF; i++) if ($i == "latents/s") net = $(i - 1) }
        /cuda: / { for (i = 1; i <= NF; i++) { if ($i == "GFLOP;") gf = $(i - 1); if ($i == "device") dev = $(i + 1);
                                              if ($i == "GEMMs") gemm = $(i + 1) } }
        END { fl = gf * 1e9 / (dev / 1e3)
              printf "| %d | **%.0f** | %.0f | %.0f%% | %.2f | %.2f TFLOP/s | **%.0f%%** | %.0f | **%.2f** |\n",
                  b, n / t, net, 100 * gemm / dev, dev / gemm, fl / 1e12, peak > 0 ? 100 * fl / (peak * 1e12) : 0,
                  n / tp, tp / t }' "$OUT/gpu_$batch.err"
done
} | tee "$res"
echo "(results in $res; per-batch logs in $OUT/gpu_*.err)"
