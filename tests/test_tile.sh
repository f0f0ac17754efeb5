# wm-tile: clips side by side, checked pixel for pixel through lossless
# FFV1 files read back with the ffmpeg CLI.
source "$(dirname "$0")/lib.sh"
command -v ffmpeg > /dev/null || skip "no ffmpeg"
raw() {   # FILE [crop filter]: the frames as rgb24 bytes
    ffmpeg -nostdin -loglevel error -i "$1" ${2:+-vf "$2"} -f rawvideo -pix_fmt rgb24 -
}

wm-synth -q --clips 2 --frames 5 --seed 3 > "$T/two.wms"
wm-mux -q -o "$T/c_%d.mkv" < "$T/two.wms"
wm-tile < "$T/two.wms" > "$T/tiled.wms" || fail "wm-tile"
wm-cat --kind clip,end "$T/tiled.wms" > "$T/meta"
[ "$(grep -c '"kind":"clip"' "$T/meta")" -eq 1 ] || fail "two clips tile into one: $(cat "$T/meta")"
grep -q '"id":"synth-3-0","width":128,"height":64,"tiles":\["synth-3-0","synth-3-1"\],"source":"wm-synth"' "$T/meta" ||
    fail "the tiled clip: the first clip's id and labels, the new size, the tiles: $(head -n 1 "$T/meta")"
grep -q '"kind":"end","clip":"synth-3-0","frames":5}' "$T/meta" || fail "the tiled end: $(tail -n 1 "$T/meta")"
wm-mux -q -o "$T/t.mkv" < "$T/tiled.wms"
cmp -s <(raw "$T/t.mkv" crop=64:64:0:0) <(raw "$T/c_0.mkv") || fail "the left half is not the first clip"
cmp -s <(raw "$T/t.mkv" crop=64:64:64:0) <(raw "$T/c_1.mkv") || fail "the right half is not the second clip"
ok "two clips side by side, exact"

# a shorter clip leaves its place black; gray8 goes onto an rgb24 canvas;
# --across 3; a last group with fewer clips is tiled as it is
{ wm-synth -q --clips 1 --frames 4 --seed 1; wm-synth -q --clips 1 --frames 2 --seed 2 --size 32x48
  wm-synth -q --clips 1 --frames 3 --seed 4 | wm-mux -q -o "$T/g.mkv" && wm-decode -q --gray "$T/g.mkv"
  wm-synth -q --clips 1 --frames 2 --seed 5; } | wm-tile --across 3 > "$T/t3.wms" || fail "wm-tile --across 3"
wm-cat --kind clip,frame,end "$T/t3.wms" | cut -c1-120 > "$T/meta"
[ "$(grep -c '"kind":"clip"' "$T/meta")" -eq 2 ] || fail "4 clips across 3: two tiled clips: $(cat "$T/meta")"
grep -q '"kind":"frame","clip":"synth-1-0","index":3,"pts":0.12,"width":160,"height":64,"format":"rgb24"' "$T/meta" ||
    fail "64 + 32 + 64 wide, as tall as the tallest, as long as the longest: $(cat "$T/meta")"
wm-mux -q -o "$T/t3_%d.mkv" < "$T/t3.wms"
[ "$(raw "$T/t3_0.mkv" 'crop=32:48:64:0,select=eq(n\,3)' | tr -d '\0' | wc -c)" -eq 0 ] ||
    fail "the shorter clip's place is not black once it has ended"
[ "$(raw "$T/t3_0.mkv" 'crop=96:16:0:48,select=eq(n\,0)' | tr -d '\0' | wc -c)" -gt 0 ] || fail "the first clip is cut"
[ "$(raw "$T/t3_0.mkv" 'crop=32:16:64:48,select=eq(n\,0)' | tr -d '\0' | wc -c)" -eq 0 ] ||
    fail "below the shorter picture is not black"
raw "$T/t3_0.mkv" 'crop=64:64:96:0,select=eq(n\,0)' | od -An -tu1 -w3 -v | awk '$1 != $2 || $2 != $3 {bad = 1} END {exit bad}' ||
    fail "a gray8 clip is not gray on the rgb24 canvas"
grep -q '"kind":"end","clip":"synth-5-0","frames":2' "$T/meta" || fail "the last, single clip: $(tail -n 3 "$T/meta")"
ok "shorter clips black, sizes, gray8 on rgb24, --across 3, a short last group"

# messages of the tiled clips pass inside the tiled clip; errors carry over
wm-decode -q --size 64x64 "$(media garbage.bin)" > "$T/bad.wms" 2> /dev/null || true
{ wm-synth -q --clips 1 --frames 2 | wm-encode-latent --keep-frames; cat "$T/bad.wms"; } | wm-tile | wm-cat > "$T/all"
kinds=$(awk -F'"' '{print $4}' "$T/all" | uniq -c | awk '{printf "%s%s ", $2, ($1 > 1 ? "x" $1 : "")}')
[ "$kinds" = "streamx2 clip latentx2 framex2 end " ] || fail "the stream of a tiled clip with latents: $kinds"
grep -q '"kind":"end","clip":"synth-1-0","frames":2,"error":"clip 0: ' "$T/all" || fail "the error of a tile: $(tail -n 1 "$T/all")"
expect_exit 2 bash -c "wm-synth -q --clips 1 --frames 2 | head -c 20000 | wm-tile > /dev/null"
expect_exit 1 wm-tile --across 1
ok "pass-through inside the tiled clip, errors, a cut stream, usage"
