# The pipelines on a small mixed batch (good videos, a broken one, a file
# that is not a video): pipelines/score's rows, exit status, --csv and
# --jobs; pipelines/ingest's archives, manifest and resuming after kill -9;
# pipelines/dream's side-by-side video.  Scoring and dreaming need a model
# with a dynamics part: the default one ($WM_MODEL, else the shipped model).
source "$(dirname "$0")/lib.sh"
command -v ffprobe > /dev/null || skip "no ffprobe"
P=$WM_ROOT/pipelines
model=${WM_MODEL:-$WM_ROOT/models/wm-default.safetensors}
# (grep -c reads all of head's output: grep -q could leave head a SIGPIPE, which pipefail reports)
dynamics=0
[ "$(head -c 65536 "$model" | grep -c '"dynamics\.arch"')" -gt 0 ] && dynamics=1

# the batch: in/a.mp4 in/b.mp4 in/broken.mp4 in/notes.mp4 in/sub/c.mkv,
# and in/readme.txt, which a directory search leaves out
mkdir -p "$T/in/sub"
wm-synth -q --clips 3 --frames 10 --seed 7 | wm-mux -q -o "$T/clip_%d.mp4"
mv "$T/clip_0.mp4" "$T/in/a.mp4"; mv "$T/clip_1.mp4" "$T/in/b.mp4"
wm-decode -q "$T/clip_2.mp4" | wm-mux -q -o "$T/in/sub/c.mkv"
head -c 2000 "$T/in/a.mp4" > "$T/in/broken.mp4"
echo "not a video" > "$T/in/notes.mp4"
echo "not a video either" > "$T/in/readme.txt"
order="$T/in/a.mp4 $T/in/b.mp4 $T/in/broken.mp4 $T/in/notes.mp4 $T/in/sub/c.mkv"

# --- score ---
if [ $dynamics = 1 ]; then
    expect_exit 2 "$P/score" "$T/in"
    cp "$T/out" "$T/rows1"
    [ "$(wc -l < "$T/rows1")" -eq 5 ] || fail "score: 5 rows wanted: $(cat "$T/rows1")"
    [ "$(sed 's/.*"source":"\([^"]*\)".*/\1/' "$T/rows1" | xargs)" = "$order" ] || fail "score: rows not in input order"
    [ "$(grep -c '"error":' "$T/rows1")" -eq 2 ] || fail "score: the two bad files carry errors: $(cat "$T/rows1")"
    grep '"error":' "$T/rows1" | grep -q '"source":"[^"]*/broken.mp4"' || fail "score: broken.mp4 has no error"
    grep -v '"error":' "$T/rows1" | grep -c '"plausibility":0\.[0-9]' | grep -qx 3 || fail "score: 3 plausibilities wanted"
    grep -q '2 failed' "$T/err" || fail "score: the summary counts the failures: $(cat "$T/err")"
    ok "score: one row per input in order, errors for the bad ones, exit 2"

    expect_exit 2 "$P/score" --jobs 2 -q "$T/in"
    cmp -s "$T/out" "$T/rows1" || { diff "$T/rows1" "$T/out" >&2; fail "score --jobs 2 differs from --jobs 1"; }
    ok "score --jobs 2: the same rows in the same order as --jobs 1"

    printf '%s\n' $order | expect_exit 2 "$P/score" --csv -q
    [ "$(head -n 1 "$T/out" | cut -d, -f1-3)" = "source,clip,frames" ] || fail "score --csv header: $(head -n 1 "$T/out")"
    [ "$(wc -l < "$T/out")" -eq 6 ] || fail "score --csv: a header and 5 rows wanted"
    [ "$(tail -n +2 "$T/out" | cut -d, -f1 | xargs)" = "$order" ] || fail "score --csv: rows from the stdin list, in order"
    [ "$(tail -n +2 "$T/out" | cut -d, -f2 | xargs)" = "0 1 2 3 4" ] || fail "score --csv: clip ids $(cut -d, -f2 "$T/out" | xargs)"
    printf '%s\n' $order | expect_exit 2 "$P/score" --csv -q --jobs 3
    [ "$(tail -n +2 "$T/out" | cut -d, -f1-2 | xargs)" = "$(printf '%s\n' $order | awk '{printf "%s,%d ", $0, NR - 1}' | xargs)" ] ||
        fail "score --csv --jobs 3: $(cat "$T/out")"
    ok "score --csv from a list on stdin"

    # a 50 frames/s video is scored on every 2nd frame, unless --near-fps 0
    wm-synth -q --clips 1 --frames 12 --fps 50 --seed 8 | wm-mux -q -o "$T/fast.mp4"
    expect_exit 0 "$P/score" -q "$T/fast.mp4"
    grep -q '"frames":6,' "$T/out" || fail "score of a 50 fps video: 6 frames wanted: $(cut -c1-120 "$T/out")"
    expect_exit 0 "$P/score" -q --near-fps 0 "$T/fast.mp4"
    grep -q '"frames":12,' "$T/out" || fail "score --near-fps 0: 12 frames wanted: $(cut -c1-120 "$T/out")"
    ok "score --near-fps: a 50 fps video at 25 by default, every frame with 0"

    # a wide video keeps its shape (64 rows, its columns from its aspect
    # ratio, a multiple of 4: 96x64 stays 96x64), unless --size says otherwise
    wm-synth -q --clips 1 --frames 8 --size 96x64 --seed 8 | wm-mux -q -o "$T/wide.mp4"
    expect_exit 0 "$P/score" -q "$T/wide.mp4"
    grep -q '"size":\[96,64\],"latent":\[16,24,16\]' "$T/out" || fail "score of a 96x64 video: $(cut -c1-120 "$T/out")"
    expect_exit 0 "$P/score" -q --size 64x64 "$T/wide.mp4"
    grep -q '"size":\[64,64\]' "$T/out" || fail "score --size 64x64: $(cut -c1-120 "$T/out")"
    expect_exit 1 "$P/score" -q --size -4x-4 "$T/wide.mp4"
    expect_err "--size: '-4x-4' is not WxH \(one side may be -n\)"
    ok "score keeps a video's shape: 64 rows, its aspect ratio"
else
    fail "$model has no dynamics part: the shipped model must have one"
fi

# --- ingest: archives and manifest, then resuming after kill -9 ---
expect_exit 2 "$P/ingest" -o "$T/lat" "$T/in"
m=$T/lat/manifest.jsonl
[ "$(wc -l < "$m")" -eq 5 ] || fail "ingest: 5 manifest lines wanted: $(cat "$m")"
[ "$(grep -c '"error":' "$m")" -eq 2 ] || fail "ingest: two lines with errors wanted: $(cat "$m")"
grep -q '"source":"[^"]*/in/a.mp4","archive":"a-[0-9a-f]\{8\}.wms","clip":"0","frames":10,"fps":\[25,1\],"size":\[64,64\],"latent_shape":\[16,16,16\],"bytes":[0-9]' "$m" ||
    fail "ingest: the manifest line of a.mp4: $(grep a.mp4 "$m")"
[ "$(ls "$T/lat" | grep -c '\.wms$')" -eq 3 ] || fail "ingest: 3 archives wanted: $(ls "$T/lat")"
for a in "$T"/lat/*.wms; do
    wm-cat --stats "$a" | grep -q '"complete":true,"frames":0,"latents":10,' || fail "ingest: $a: $(wm-cat --stats "$a")"
done
ok "ingest: an archive per good video, a manifest line per input, exit 2"

# --shard 2 and --keep-frames: 3 shards for 5 videos
expect_exit 2 "$P/ingest" -q --shard 2 --keep-frames -o "$T/sh" "$T/in"
[ "$(ls "$T/sh" | grep -c '^shard-00000[0-2]-[0-9a-f]\{8\}\.wms$')" -eq 3 ] || fail "ingest --shard 2: $(ls "$T/sh")"
[ "$(wm-cat --kind frame "$T"/sh/shard-000000-*.wms | wc -l)" -eq 20 ] || fail "ingest --keep-frames keeps no frames"
ok "ingest --shard 2 --keep-frames"

# resuming: 8 more videos, the ingest killed with SIGKILL after its first archive
for i in 1 2; do wm-synth -q --clips 4 --frames 6 --seed $((10 + i)) | wm-mux -q -o "$T/in/more${i}_%d.mp4"; done
"$P/ingest" -q -o "$T/k" "$T/in" 2> /dev/null &
pid=$!
for _ in $(seq 300); do grep -q '"archive":' "$T/k/manifest.jsonl" 2> /dev/null && break; sleep 0.1; done
kill -KILL $pid 2> /dev/null || fail "ingest finished before it could be killed"
wait $pid 2> /dev/null || true
before=$(grep -c '"archive":' "$T/k/manifest.jsonl")
[ "$before" -lt 11 ] || fail "ingest was not stopped mid-run ($before archives)"
expect_exit 2 "$P/ingest" -o "$T/k" "$T/in"
grep -q "already done" "$T/err" || fail "the second run says nothing of resuming: $(cat "$T/err")"
m=$T/k/manifest.jsonl
[ "$(wc -l < "$m")" -eq 13 ] || fail "resumed: 13 manifest lines wanted: $(cat "$m")"
[ "$(sed 's/.*"source":"\([^"]*\)".*/\1/' "$m" | sort | uniq -d)" = "" ] || fail "resumed: a video twice in the manifest"
[ "$(sed 's/.*"source":"\([^"]*\)".*/\1/' "$m" | sort | xargs)" = "$(find "$T/in" -name '*.mp4' -o -name '*.mkv' | sort | xargs)" ] ||
    fail "resumed: not every video in the manifest"
ls "$T/k" | grep -q '\.tmp\.' && fail "resumed: temporary files left: $(ls "$T/k")"
[ "$(ls "$T/k" | grep -c '\.wms$')" -eq 11 ] || fail "resumed: 11 archives wanted: $(ls "$T/k")"
while IFS= read -r line; do
    a=$(printf '%s\n' "$line" | sed -n 's/.*"archive":"\([^"]*\)".*/\1/p')
    [ -n "$a" ] || continue
    n=$(printf '%s\n' "$line" | sed 's/.*"frames":\([0-9]*\).*/\1/')
    wm-cat --stats "$T/k/$a" | grep -q "\"complete\":true,\"frames\":0,\"latents\":$n," ||
        fail "resumed: $a is not a whole archive of $n latents"
    [ "$(stat -c %s "$T/k/$a")" = "$(printf '%s\n' "$line" | sed 's/.*"bytes":\([0-9]*\).*/\1/')" ] || fail "$a: bytes"
done < "$m"
ok "ingest resumes after kill -9 ($before archives done first): every archive whole, each video once"

# a line cut by a crash and a second line for a video are gone after the next run
cp "$m" "$T/m.ok"
{ grep -m1 a.mp4 "$m"; printf '{"source":"%s","archive":"a-' "$T/in/a.mp4"; } >> "$m"
expect_exit 2 "$P/ingest" -q -o "$T/k" "$T/in"
cmp -s <(sort "$m") <(sort "$T/m.ok") || { diff "$T/m.ok" "$m" >&2; fail "the manifest was not rewritten to one whole line per video"; }
expect_exit 1 "$P/ingest" -q --keep-frames -o "$T/k" "$T/in"
expect_err "was made with --size 64x64 --frames all --keep-frames 0 .*this run asks for .*--keep-frames 1"
ok "ingest: the manifest rewritten whole; other settings refused"

# --- dream ---
if [ $dynamics = 1 ]; then
    expect_exit 0 "$P/dream" "$T/in/a.mp4" --context 4 --frames 5 -o "$T/dream.mp4"
    grep -q 'real on the left' "$T/err" || fail "dream: no summary: $(cat "$T/err")"
    [ "$(ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=width,height,nb_read_frames -of csv=p=0 "$T/dream.mp4")" = "128,64,9" ] ||
        fail "dream: 128x64, 9 frames wanted: $(ffprobe -v error -count_frames -show_entries stream=width,height,nb_read_frames -of csv "$T/dream.mp4")"
    expect_exit 2 "$P/dream" "$T/in/notes.mp4" -o "$T/no.mp4"
    [ ! -e "$T/no.mp4" ] || fail "dream of a non-video wrote a file"
    expect_exit 2 "$P/dream" "$T/in/a.mp4" --context 12 -o "$T/no.mp4"
    expect_err "10 frames from 0s, fewer than the 12 of --context"
    ok "dream: real and imagined side by side, 128x64, context + rollout frames; errors"
else
    fail "$model has no dynamics part: the shipped model must have one"
fi
expect_exit 1 "$P/dream" "$T/in/a.mp4"
expect_exit 1 "$P/ingest" "$T/in"
ok "usage errors"
