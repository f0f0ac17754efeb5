# wm-report: hand-made score JSON Lines (a failed clip, a thumbnail strip
# made by ffmpeg, markup in the names) into a page; rows in order, input
# escaped, bad lines named by file:line; then the page rendered for real in
# headless Chromium: the rows in the DOM, the filter box working, a screenshot.
source "$(dirname "$0")/lib.sh"

# a tiny PNG as a data URI, like wm-score-coherence --thumbs makes
ffmpeg -loglevel error -f lavfi -i testsrc=size=48x16:rate=1 -frames:v 1 "$T/strip.png" ||
    fail "ffmpeg cannot make a PNG"
thumbs="data:image/png;base64,$(base64 -w0 "$T/strip.png")"

synth() { printf '"synth":{"seed":%d,"category":"%s","possible":%s,"violation_frame":%d,"pair":%d,"variant":"%s"}' "$@"; }
{
    printf '{"source":"synth","clip":"gravity-0-possible","frames":6,"size":[64,64],'
    printf '"surprise":[null,0.5,0.6,0.4,0.7,0.5],"surprise_mean":0.54,"surprise_max":0.7,"peak_frame":4,'
    printf '"peak_xy":[10,20],"plausibility":0.81,"flicker":0.01,"smoothness":0.9,"consistency":0.95,%s}\n' \
        "$(synth 1 gravity true -1 0 possible)"
    printf '\n'   # blank lines are skipped
    printf '{"source":"synth","clip":"gravity-0-impossible <b>bold</b>","frames":6,"size":[64,64],'
    printf '"surprise":[null,0.5,0.6,3.4,null,0.5],"surprise_mean":1.25,"surprise_max":3.4,"peak_frame":3,'
    printf '"peak_xy":[30,40],"plausibility":0.2,"flicker":0.02,"smoothness":0.5,"consistency":0.4,%s,' \
        "$(synth 1 gravity false 3 0 impossible)"
    printf '"thumbs":"%s","thumbs_frames":[1,5]}\n' "$thumbs"
    printf '{"source":"broken.mp4","clip":"broken","error":"cannot decode <script>alert(1)</script> & more"}\n'
    printf '{"source":"x \\"quoted\\".mp4","clip":"middle","frames":3,"surprise":[null,1,2],"surprise_mean":1.5,'
    printf '"surprise_max":2,"peak_frame":2,"plausibility":0.5,"flicker":0,"smoothness":1,"consistency":1}\n'
} > "$T/scores.jsonl"

# ---- the page ----
expect_exit 0 wm-report --title 'run <1>' -o "$T/report.html" "$T/scores.jsonl"
[ -s "$T/report.html" ] || fail "no page written"
ls "$T" | grep -q '\.tmp\.' && fail "a temporary file was left behind"
order=$(grep -o 'data-clip="[^"]*"' "$T/report.html" | tr '\n' ' ')
want='data-clip="broken" data-clip="gravity-0-impossible &lt;b&gt;bold&lt;/b&gt;" data-clip="middle" data-clip="gravity-0-possible" '
[ "$order" = "$want" ] || fail "rows out of order: $order"
grep -q '<script>alert' "$T/report.html" && fail "an error message went into the page unescaped"
grep -q '<b>bold' "$T/report.html" && fail "a clip id went into the page unescaped"
grep -qF 'cannot decode &lt;script&gt;alert(1)&lt;/script&gt; &amp; more' "$T/report.html" || fail "error row missing"
grep -qF 'x &quot;quoted&quot;.mp4' "$T/report.html" || fail "source not escaped"
grep -qF '<title>run &lt;1&gt;</title>' "$T/report.html" || fail "title not escaped"
grep -qF "src=\"$thumbs\"" "$T/report.html" || fail "thumbnail strip missing"
grep -q '<line class="violation"' "$T/report.html" || fail "violation frame not marked"
[ "$(grep -c '<line class="violation"' "$T/report.html")" -eq 1 ] || fail "a violation marked where there is none"
grep -q '<dd id="n-clips">4</dd>' "$T/report.html" || fail "summary: clips"
grep -q '<dd id="n-failed">1</dd>' "$T/report.html" || fail "summary: failures"
grep -q '<dd id="mean-plausibility">0.503 ' "$T/report.html" || fail "summary: mean plausibility"
grep -q '<dd id="pairs-right">1 of 1 ' "$T/report.html" || fail "summary: pairs"
grep -qiE '(src|href)="(https?:)?//' "$T/report.html" && fail "the page loads something from the network"
ok "page: rows in order, input escaped, summary"

# stdin, several files in a row, the same page as -o
expect_exit 0 wm-report --title 'run <1>' < "$T/scores.jsonl"
cmp -s "$T/out" "$T/report.html" || fail "stdout differs from -o"
head -n 1 "$T/scores.jsonl" > "$T/one.jsonl"
expect_exit 0 wm-report "$T/one.jsonl" - < "$T/scores.jsonl"
grep -q '<dd id="n-clips">5</dd>' "$T/out" || fail "two inputs are not read in a row"
expect_exit 0 wm-report < /dev/null
grep -q '<dd id="n-clips">0</dd>' "$T/out" || fail "empty input"
ok "stdin, several inputs, empty input"

# ---- bad input: exit 2, one line naming file:line ----
{ head -n 3 "$T/scores.jsonl"; echo '{"source":"a","clip":"b",'; } > "$T/bad.jsonl"
expect_exit 2 wm-report -o "$T/bad.html" "$T/bad.jsonl"
expect_err "^wm-report: $T/bad.jsonl:4: column 26: expected a string key"
[ -e "$T/bad.html" ] && fail "bad input left a page behind"
ls "$T" | grep -q '\.tmp\.' && fail "bad input left a temporary file"
printf '{"clip":"a"}\n{"clip":"b","plausibility":"high"}\n' | { expect_exit 2 wm-report; }
expect_err '^wm-report: stdin:2: plausibility: expected a number or null$'
printf '{"clip":"a","thumbs":"javascript:alert(1)"}\n' > "$T/js.jsonl"
expect_exit 2 wm-report "$T/js.jsonl"
expect_err "js.jsonl:1: thumbs: expected a data:image/png;base64"
printf '{"clip":"a","clip":"b"}\n' > "$T/dup.jsonl"
expect_exit 2 wm-report "$T/dup.jsonl"
expect_err 'dup.jsonl:1: column 1: duplicate key "clip"'
printf '[1]\n' > "$T/arr.jsonl"
expect_exit 2 wm-report "$T/arr.jsonl"
expect_err 'arr.jsonl:1: expected a JSON object'
printf '%*s{}\n' 70 '' | tr ' ' '[' > "$T/deep.jsonl"
expect_exit 2 wm-report "$T/deep.jsonl"
expect_err 'deep.jsonl:1: column 65: nested deeper than 64 levels'
wm-synth --clips 1 --frames 2 > "$T/stream.wms" 2>/dev/null || fail "wm-synth"
expect_exit 2 wm-report "$T/stream.wms"
expect_err "stream.wms:1: column 1: "
expect_exit 2 wm-report "$T/missing.jsonl"
expect_err "missing.jsonl: No such file"
ok "bad input: exit 2 naming file:line, no page left behind"

# ---- usage and output errors ----
expect_exit 1 wm-report -o tcp://127.0.0.1:5999 "$T/scores.jsonl"
expect_err 'ZeroMQ'
expect_exit 1 wm-report -o "$T/a.html" --out "$T/b.html" "$T/scores.jsonl"
expect_err 'exclude'
expect_exit 3 wm-report -o "$T/no/such/dir/r.html" "$T/scores.jsonl"
expect_err 'no/such/dir/r.html'
if [ -w /dev/full ]; then
    expect_exit 3 sh -c 'wm-report "$1" > /dev/full' sh "$T/scores.jsonl"
    expect_err 'write failed'
fi
ok "usage errors exit 1, output errors exit 3"

# ---- the real producer: wm-score-coherence --json --thumbs reads back ----
if command -v wm-score-coherence > /dev/null &&
   wm-synth -q --pairs 1 --category gravity --frames 16 | wm-encode-latent -q --keep-frames |
       wm-step -q 2> /dev/null | wm-score-coherence -q --json --thumbs > "$T/real.jsonl" &&
   [ -s "$T/real.jsonl" ]; then
    expect_exit 0 wm-report -o "$T/real.html" "$T/real.jsonl"
    grep -q '<dd id="n-clips">2</dd>' "$T/real.html" || fail "the pipeline's two clips are not on the page"
    grep -q '<img class="thumbs"' "$T/real.html" || fail "the pipeline's thumbnails are not on the page"
    ok "wm-score-coherence --json --thumbs output reads back"
else
    echo "# no scoring pipeline here (wm-score-coherence, or a model with dynamics, missing): not checked"
fi

# ---- rendered for real ----
command -v chromium > /dev/null || skip "chromium is not installed (scripts/install-deps.sh installs it)"
browse() {   # URL, chromium options...: the DOM or screenshot, after the page's script ran
    local url=$1; shift
    timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$T/chromium" \
        "$@" "$url" 2> "$T/chromium.log"
}
page="file://$T/report.html"
browse "$page" --dump-dom > "$T/dom.html" || { tail -5 "$T/chromium.log" >&2; fail "chromium --dump-dom failed"; }
dom_order=$(grep -o '<tbody class="clip[^"]*" data-rank="[0-9]*" data-clip="[a-z0-9-]*' "$T/dom.html" |
            sed 's/.*data-clip="//' | tr '\n' ' ')
[ "$dom_order" = "broken gravity-0-impossible middle gravity-0-possible " ] ||
    fail "rows in the DOM: '$dom_order'"
grep -qF 'cannot decode &lt;script&gt;alert(1)&lt;/script&gt; &amp; more' "$T/dom.html" ||
    fail "the error row is not text in the DOM"
[ "$(grep -o '<script' "$T/dom.html" | wc -l)" -eq 1 ] || fail "input became a script element"
[ "$(grep -o '<b>bold' "$T/dom.html" | wc -l)" -eq 0 ] || fail "input became markup"
[ "$(grep -o '<svg class="curve"' "$T/dom.html" | wc -l)" -eq 3 ] || fail "surprise curves missing"
grep -q 'id="shown">4 of 4 shown<' "$T/dom.html" || fail "the page's script did not run"
ok "chromium: rows in order in the DOM, input stayed text"

# the filter box, through the address (#q=): every word must occur, -word must not
browse "$page#q=gravity%20-impossible" --dump-dom > "$T/dom.html" || fail "chromium --dump-dom #q="
grep -q 'id="shown">1 of 4 shown<' "$T/dom.html" || fail "filter 'gravity -impossible': $(grep -o 'id="shown">[^<]*' "$T/dom.html")"
[ "$(grep -o '<tbody class="clip[^>]*hidden' "$T/dom.html" | wc -l)" -eq 3 ] || fail "filtered rows not hidden"
grep -q 'data-clip="gravity-0-possible">' "$T/dom.html" || fail "the matching row is hidden"
browse "$page#q=DECODE" --dump-dom > "$T/dom.html" || fail "chromium --dump-dom #q=DECODE"
grep -q 'id="shown">1 of 4 shown<' "$T/dom.html" || fail "filter 'DECODE' (case-insensitive)"
ok "chromium: the filter box hides what does not match"

browse "$page" --screenshot="$T/shot.png" --window-size=1200,900 > /dev/null ||
    { tail -5 "$T/chromium.log" >&2; fail "chromium --screenshot failed"; }
[ "$(head -c 8 "$T/shot.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "the screenshot is not a PNG"
size=$(stat -c %s "$T/shot.png")
[ "$size" -gt 20000 ] || fail "the screenshot is nearly empty ($size bytes)"
ok "chromium: a 1200x900 screenshot ($size bytes)"
