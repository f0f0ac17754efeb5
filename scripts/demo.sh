#!/usr/bin/env bash
# make demo: set up, build, and run the main job on the shipped default
# model.  Outputs land in demo-out/ and their paths are printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
make -s all
export PATH="$PWD/bin:$PATH"
out=demo-out
mkdir -p "$out"
footage=$(bash tests/media.sh motion.mov >/dev/null 2>&1 && echo build/media/motion.mov || true)

echo "== 1. real footage -> 64x64 frame stream -> per-clip stats"
if [ -n "$footage" ]; then
    wm-decode -q "$footage" --size 64x64 --fps 25 > "$out/motion.wms"
    wm-cat --stats "$out/motion.wms"
    wm-mux -q -o "$out/motion_64.mp4" < "$out/motion.wms"
fi

if [ -x bin/wm-synth ]; then
    echo "== 2. a physical world: matched possible/impossible pairs"
    wm-synth --pairs 1 --frames 48 --size 128x128 | tee "$out/pairs.wms" | wm-mux -q -o "$out/pair_%03d.mp4"
    wm-cat --kind clip "$out/pairs.wms" | head -n 4
fi

if [ -x bin/wm-encode-latent ] && [ -x bin/wm-decode-frame ] && [ -s models/wm-default.safetensors ]; then
    echo "== 3. the tokenizer of the default model: frames -> latents -> frames"
    src="$out/motion.wms"
    [ -s "$src" ] || src="$out/pairs.wms"
    wm-encode-latent < "$src" | tee "$out/latents.wms" | wm-decode-frame | wm-mux -q -o "$out/reconstructed.mp4"
    wm-cat --stats "$out/latents.wms" | head -n 2
fi

if [ -x bin/wm-step ] && [ -s "$out/pairs.wms" ]; then
    echo "== 4. the world model dreams: 12 real frames of a pair, then 20 imagined"
    if wm-cat --pass "$out/pairs.wms" | wm-encode-latent | wm-step -q --rollout 20 --context 12 |
        wm-decode-frame | wm-mux -q -o "$out/dream.mp4" --clip pair-1-gravity-0-possible 2> "$out/dream.err"; then
        echo "   $out/dream.mp4"
    else
        cat "$out/dream.err"
        echo "   (skipped: the shipped model has no dynamics part yet)"
    fi
fi

if [ -x bin/wm-step ] && [ -x bin/wm-score-coherence ]; then
    echo "== 5. plausibility scores of the pairs"
    wm-encode-latent < "$out/pairs.wms" | wm-step | wm-score-coherence --json | tee "$out/scores.jsonl"
fi

echo
echo "demo outputs in $out/:"
ls -1 "$out" | sed "s|^|  $out/|"
