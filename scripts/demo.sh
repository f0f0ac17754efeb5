#!/usr/bin/env bash
# make demo: set up (installs what is missing), build, and run the main job
# on the shipped default model: score a few sample clips (matched
# possible/impossible wm-synth pairs written as video files, and real
# footage), write the HTML report, a video of where physics broke, and a
# dream (the model's rollout beside the real continuation).  Everything
# lands in demo-out/; the paths are printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
make -s all
export PATH="$PWD/bin:$PWD/pipelines:$PATH"
out=demo-out
rm -rf "$out"
mkdir -p "$out/clips"

echo "== 1. sample clips: one matched pair per category (wm-synth, never trained on) and real footage"
wm-synth -q --pairs 1 --seed 2026 > "$out/pairs.wms"
wm-mux -q -o "$out/clips/pair_%03d.mkv" < "$out/pairs.wms"     # lossless FFV1
# name each file after its clip (possible / impossible, category)
i=0
wm-cat --kind clip "$out/pairs.wms" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | while read -r id; do
    mv "$out/clips/$(printf 'pair_%03d.mkv' "$i")" "$out/clips/$id.mkv"
    i=$((i + 1))
done
for v in motion.mov cityCC0.mpg; do
    bash tests/media.sh "$v" >/dev/null 2>&1 && cp "build/media/$v" "$out/clips/" || true
done
ls "$out/clips" | sed 's/^/   /'

echo "== 2. score them: pipelines/score (decode | encode | world model | score), JSON Lines and an HTML report"
status=0
pipelines/score --report "$out/report.html" "$out/clips" > "$out/scores.jsonl" || status=$?
[ $status -le 2 ] || { echo "demo: scoring failed (exit $status)" >&2; exit $status; }
sed -E 's/"surprise":\[[^]]*\],//; s/"thumbs":"[^"]*",?//' "$out/scores.jsonl" | cut -c1-200 | head -n 4
echo "   ..."

echo "== 3. where physics broke: the surprise heatmap over a teleport"
wm-synth -q --pairs 1 --seed 2026 --category continuity | wm-encode-latent -q --keep-frames | wm-step -q |
    wm-score-coherence -q --heatmap | wm-mux -q -o "$out/where_%03d.mp4"
mv "$out/where_000.mp4" "$out/where-possible.mp4"
mv "$out/where_001.mp4" "$out/where-impossible.mp4"

echo "== 4. the world model dreams: 8 real frames, then 24 imagined, beside the real continuation"
dream_src="$out/clips/motion.mov"
[ -f "$dream_src" ] || dream_src=$(ls "$out"/clips/*gravity*-possible.mkv | head -n 1)
pipelines/dream -q --context 8 --frames 24 -o "$out/dream.mp4" "$dream_src"

echo
echo "demo outputs:"
echo "  $out/report.html       the clips sorted by plausibility, surprise curves, thumbnails (open in a browser)"
echo "  $out/scores.jsonl      one JSON object per clip (docs/scoring.md)"
echo "  $out/where-*.mp4       the surprise heatmap of a matched pair (the teleport lights up)"
echo "  $out/dream.mp4         real (left) and imagined (right) continuation"
echo "  $out/clips/            the scored clips"
