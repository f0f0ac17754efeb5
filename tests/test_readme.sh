# Every command block of README.md runs, so the README cannot drift from
# the tools.  A block is a fenced ```sh (or bash, shell) block; each runs
# with bash -e -o pipefail in a fresh directory holding the sample inputs
# the README's examples use (a.mp4, b.mov, clip.mp4, clips/), with bin/
# and pipelines/ on PATH (and linked there, for pipelines/NAME).  A block
# that cannot run in a test (make demo, installing packages, several
# machines) has the line <!-- not run by tests: REASON --> right above its
# fence, or "# not run by tests: REASON" as its first line.  Indented code
# blocks are refused: fence them so they are run.
#   tests/test_readme.sh [README]   (README_BLOCK_TIMEOUT: seconds a block, default 60)
source "$(dirname "$0")/lib.sh"
readme=${1:-$WM_ROOT/README.md}
limit=${README_BLOCK_TIMEOUT:-60}
name=$(basename "$readme")
[ -f "$readme" ] || fail "no $readme"
export PATH="$WM_ROOT/bin:$WM_ROOT/pipelines:$PATH"

# the blocks, as files: $T/blocks/NNNN.LINE.sh (LINE: the fence's line), or
# NNNN.LINE.skip holding the reason; indented code blocks listed in $T/indented
mkdir -p "$T/blocks"
awk -v dir="$T/blocks" -v indented="$T/indented" '
    function flush_indented() { if (ind_start) print FILENAME ":" ind_start ": an indented code block; fence it with ```sh so tests/test_readme.sh runs it" > indented; ind_start = 0 }
    fence && /^```[ \t]*$/ { close(out); fence = 0; prev = ""; next }
    fence { if (run && first && $0 ~ /^# not run by tests:/) { close(out); print substr($0, 3) > (base ".skip"); run = 0; out = "/dev/null" }
            first = 0; print > out; next }
    /^```/ { lang = $0; sub(/^```[ \t]*/, "", lang); sub(/[ \t].*$/, "", lang)
             fence = 1; first = 1; n++
             base = sprintf("%s/%04d.%d", dir, n, NR)
             run = (lang == "sh" || lang == "bash" || lang == "shell" || lang == "console")
             if (run && prev ~ /^<!-- not run by tests:.*-->/) { r = prev; sub(/^<!-- /, "", r); sub(/ *-->.*$/, "", r); print r > (base ".skip"); run = 0 }
             out = run ? base ".sh" : "/dev/null"
             flush_indented(); next }
    /^    [^ ]/ && (prev_blank || ind_start) && !in_list { if (!ind_start) ind_start = NR; prev_blank = 0; next }
    { if (ind_start && $0 !~ /^[ \t]*$/) flush_indented()
      if ($0 ~ /^([-*+]|[0-9]+\.) /) in_list = 1; else if ($0 ~ /^[^ \t]/) in_list = 0
      prev_blank = ($0 ~ /^[ \t]*$/); if (!prev_blank) prev = $0 }
    END { flush_indented(); if (fence) print FILENAME ": a code block is not closed" > indented }
' "$readme"
if [ -s "$T/indented" ]; then cat "$T/indented" >&2; fail "README has code blocks the test cannot run"; fi
nblocks=$(ls "$T/blocks" | grep -c '\.sh$' || true)
[ "$nblocks" -gt 0 ] || fail "no sh blocks in $readme"

# the sample inputs of the examples, made once: short 64x64 clips of
# wm-synth scenes (32 frames, enough context for a dream)
S=$T/samples
mkdir -p "$S/clips"
wm-synth -q --clips 4 --frames 32 --seed 5 | wm-mux -q -o "$S/s_%d.mkv"
wm-decode -q "$S/s_0.mkv" | wm-mux -q -o "$S/a.mp4"
wm-decode -q "$S/s_1.mkv" | wm-mux -q -o "$S/b.mov"
wm-decode -q "$S/s_2.mkv" | wm-mux -q -o "$S/clip.mp4"
cp "$S/a.mp4" "$S/clips/one.mp4"; cp "$S/s_3.mkv" "$S/clips/two.mkv"
rm -f "$S"/s_*.mkv

# runs a block in its own process group; anything it leaves running is
# given a moment to finish, then stopped
run_block() {   # block file, directory
    local pid rc start=$SECONDS
    set -m
    ( cd "$2" && exec bash -e -o pipefail "$1" ) > "$2.log" 2>&1 < /dev/null &
    pid=$!
    set +m
    while kill -0 "$pid" 2> /dev/null && [ $((SECONDS - start)) -lt "$limit" ]; do sleep 0.2; done
    if kill -0 "$pid" 2> /dev/null; then
        kill -TERM -- "-$pid" 2> /dev/null; sleep 1; kill -KILL -- "-$pid" 2> /dev/null
        wait "$pid" 2> /dev/null || true
        echo "(stopped after ${limit}s)" >> "$2.log"
        return 124
    fi
    rc=0; wait "$pid" || rc=$?
    for _ in $(seq 25); do kill -0 -- "-$pid" 2> /dev/null || break; sleep 0.2; done
    kill -TERM -- "-$pid" 2> /dev/null || true
    return $rc
}

failed=0 ran=0 skipped=0
for b in "$T"/blocks/*; do
    line=$(basename "$b" | cut -d. -f2)
    if [[ $b == *.skip ]]; then
        skipped=$((skipped + 1)); echo "skip - $name:$line: $(cat "$b")"; continue
    fi
    d=$T/run.$(basename "$b" .sh)
    cp -r "$S" "$d"
    ln -s "$WM_ROOT/pipelines" "$d/pipelines"; ln -s "$WM_ROOT/bin" "$d/bin"
    start=$SECONDS
    rc=0; run_block "$b" "$d" || rc=$?
    ran=$((ran + 1))
    if [ $rc -eq 0 ]; then
        ok "$name:$line ($((SECONDS - start))s): $(grep -v '^ *#' "$b" | grep -m1 . | cut -c1-70)"
    else
        failed=$((failed + 1))
        { echo "FAIL: $name:$line exited $rc:"; sed 's/^/    | /' "$b"; tail -n 15 "$d.log" | sed 's/^/    > /'; } >&2
    fi
done
echo "$ran blocks run, $skipped not run by tests, $failed failed"
[ $failed -eq 0 ] || fail "$failed README blocks failed"
