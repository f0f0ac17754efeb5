#!/usr/bin/env bash
# make bench-physics: the plausibility benchmark (docs/benchmarks.md).
# Matched possible/impossible pairs from wm-synth (seed 31337, never used in
# training) and from held-out real footage glitched at its middle
# (bench/physics.py realpairs), scored with pipelines/score's chain and one
# fixed setting for every category (teacher mode over the whole clip,
# wm-score-coherence's defaults), by the trained model (its dynamics and
# object prior, as pipelines/score runs it), by its dynamics alone
# (wm-step --prior none) and by a randomly initialised dynamics model of the
# same architecture (no prior), beside the model-free baselines.  Writes
# bench/out/physics.md.  Last, the same wm-synth pairs as another renderer
# would hand them over: drawn at 128x128, written as H.264 files (crf 23)
# and scored from the files by pipelines/score (wm-decode resizes them to
# 64x64), the way users and the external held-out set are scored; and
# drawn at 96x64 (3:2, lossless files): pipelines/score keeps their shape
# (96x64), beside the middle square cropped (--size 64x64); and drawn with
# 64 frames instead of 32 (2.56 s), and with balls 0.7 and 1.5 times
# their radius (wm-synth --ball-scale), scored as the first table's.
#   MODEL   the model (default models/wm-default.safetensors)
#   PAIRS   pairs per synthetic category (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
MODEL=${MODEL:-models/wm-default.safetensors}
PAIRS=${PAIRS:-20}
SEED=31337
PY=/usr/bin/python3
D=$OUT/physics
mkdir -p "$D"

wm-synth -q --pairs "$PAIRS" --seed "$SEED" > "$D/synth-pairs.wms"
[ -d build/model/heldout ] && ls build/model/heldout/*.wm >/dev/null 2>&1 || scripts/model-data.sh
$PY bench/physics.py realpairs "$D/real-pairs.wms" build/model/heldout/*.wm

# the same architecture, randomly initialised (seed 7), normalised on
# training-style clips so only the learning is missing
cp "$MODEL" "$D/random.safetensors"
wm-synth -q --clips 16 --seed 1 | wm-encode-latent -q --model "$MODEL" > "$D/norm.wms"
wm-train dynamics -q --model "$D/random.safetensors" --checkpoint "$D/random.ckpt" --steps 0 --seed 7 "$D/norm.wms"

score() {   # model, pairs stream, output, wm-step options
    wm-encode-latent -q --keep-frames --batch 16 --model "$1" "$2" | wm-step -q --model "$1" "${@:4}" |
        wm-score-coherence -q --json > "$3"
}
t0=$(date +%s)
for set in synth real; do
    score "$MODEL" "$D/$set-pairs.wms" "$D/$set-trained.jsonl"
    score "$MODEL" "$D/$set-pairs.wms" "$D/$set-dynamics.jsonl" --prior none
    score "$D/random.safetensors" "$D/$set-pairs.wms" "$D/$set-random.jsonl" --prior none
done
t1=$(date +%s)
# the same pairs from files of another size and a lossy codec
rm -rf "$D/files" && mkdir -p "$D/files"
wm-synth -q --pairs "$PAIRS" --seed "$SEED" --size 128x128 > "$D/synth128-pairs.wms"
wm-mux -q --crf 23 -o "$D/files/c_%03d.mp4" "$D/synth128-pairs.wms"
WM_MODEL="$MODEL" pipelines/score -q "$D"/files/c_*.mp4 > "$D/files-scores.jsonl"
$PY bench/physics.py relabel "$D/synth128-pairs.wms" "$D/files-scores.jsonl" > "$D/files-trained.jsonl"
# the same pairs drawn wide
rm -rf "$D/wide" && mkdir -p "$D/wide"
wm-synth -q --pairs "$PAIRS" --seed "$SEED" --size 96x64 > "$D/synth96-pairs.wms"
wm-mux -q -o "$D/wide/c_%03d.mkv" "$D/synth96-pairs.wms"
for how in shape:-4x64 square:64x64; do
    WM_MODEL="$MODEL" pipelines/score -q --size "${how#*:}" "$D"/wide/c_*.mkv > "$D/wide-scores.jsonl"
    $PY bench/physics.py relabel "$D/synth96-pairs.wms" "$D/wide-scores.jsonl" > "$D/wide-${how%:*}.jsonl"
done
# the same seed's pairs drawn twice as long
wm-synth -q --pairs "$PAIRS" --seed "$SEED" --frames 64 > "$D/synth64f-pairs.wms"
score "$MODEL" "$D/synth64f-pairs.wms" "$D/long-trained.jsonl"
# and with smaller and bigger balls
for f in 0.7 1.5; do
    wm-synth -q --pairs "$PAIRS" --seed "$SEED" --ball-scale $f > "$D/synth-r$f-pairs.wms"
    score "$MODEL" "$D/synth-r$f-pairs.wms" "$D/ball$f-trained.jsonl"
done
t2=$(date +%s)
{
    machine
    echo "model: $MODEL; pairs: wm-synth --pairs $PAIRS --seed $SEED (64x64, 32 frames) and real footage pairs"
    echo "scored in $((t1 - t0)) s (three scorings, both sets); the files, the long clips and the ball sizes in $((t2 - t1)) s (six scorings)"
    echo
    echo "Synthetic pairs (wm-synth):"
    echo
    $PY bench/physics.py report --set trained="$D/synth-trained.jsonl" --set dynamics-only="$D/synth-dynamics.jsonl" \
        --set random-init="$D/synth-random.jsonl" \
        --frames "$D/synth-pairs.wms"
    echo
    echo "Real footage pairs (held-out clips, glitched at the middle frame):"
    echo
    $PY bench/physics.py report --set trained="$D/real-trained.jsonl" --set dynamics-only="$D/real-dynamics.jsonl" \
        --set random-init="$D/real-random.jsonl" \
        --frames "$D/real-pairs.wms"
    echo
    echo "The same wm-synth pairs drawn at 128x128, as H.264 files (crf 23), scored by pipelines/score:"
    echo
    $PY bench/physics.py report --set trained="$D/files-trained.jsonl"
    echo
    echo "The same wm-synth pairs drawn at 96x64 (3:2), lossless files, by pipelines/score: its shape kept"
    echo "(the default, --size -4x64: 96x64), and the middle square cropped (--size 64x64):"
    echo
    $PY bench/physics.py report --set shape="$D/wide-shape.jsonl" --set square-crop="$D/wide-square.jsonl"
    echo
    echo "The same seed's wm-synth pairs drawn with 64 frames (2.56 s) instead of 32:"
    echo
    $PY bench/physics.py report --set trained="$D/long-trained.jsonl"
    echo
    echo "The same seed's wm-synth pairs drawn with balls 0.7 and 1.5 times their radius (--ball-scale):"
    echo
    $PY bench/physics.py report --set small-balls="$D/ball0.7-trained.jsonl" --set big-balls="$D/ball1.5-trained.jsonl"
} | tee "$OUT/physics.md"
