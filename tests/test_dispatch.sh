# wm-dispatch / wm-worker: 200 clips over 4 workers, two killed with SIGKILL
# mid-batch, one joining late: every clip comes out exactly once, equal to
# what a single process gives; unordered mode loses nothing either.
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 "$WM_ROOT/tests/mkclips.py" 200 > "$T/in.wms"
# 50 ms a clip: the batch lasts seconds, so kills and the late join land mid-batch
chain="/usr/bin/python3 $WM_ROOT/tests/slowpass.py 0.05"
# the single-process run of the same chain (without its sleep) is the reference
/usr/bin/python3 "$WM_ROOT/tests/slowpass.py" 0 < "$T/in.wms" > "$T/ref.wms"
ep="ipc://$T/d.sock"

timeout 120 wm-dispatch --workers "@$ep" --ordered --timeout 1 -v "$T/in.wms" > "$T/out.wms" 2> "$T/d.err" &
dpid=$!
pids=()
sleep 0.3   # workers start after the dispatcher
for i in 1 2 3 4; do
    wm-worker -v --dispatcher "$ep" -- "$chain" 2> "$T/w$i.err" &
    pids+=($!)
done
sleep $(awk 'BEGIN { srand(); printf "%.2f", 0.4 + rand() * 0.4 }')
kill -KILL "${pids[0]}"
sleep $(awk 'BEGIN { srand(); printf "%.2f", 0.2 + rand() * 0.4 }')
kill -KILL "${pids[1]}"
wm-worker -v --dispatcher "$ep" -- "$chain" 2> "$T/w5.err" &   # joins mid-batch
late=$!
wait $dpid || { cat "$T/d.err"; fail "dispatcher failed"; }
for p in "${pids[@]:2}" $late; do wait "$p" || fail "a surviving worker failed"; done
cmp "$T/out.wms" "$T/ref.wms" || fail "ordered output differs from the single-process run"
n=$(wm-cat --kind end "$T/out.wms" | wc -l)
u=$(wm-cat --kind end "$T/out.wms" | sort -u | wc -l)
[ "$n" -eq 200 ] && [ "$u" -eq 200 ] || fail "$n results, $u distinct"
grep -q "wm-worker: [1-9][0-9]* clips" "$T/w5.err" || fail "the late worker got no work: $(cat "$T/w5.err")"
# -v: the dispatcher's notes, printed by the filter.  Join notes number
# the workers in the order they connected, 1, 2, 3...; which number the
# late one gets depends on timing (under load a worker may be killed
# before it ever connected).
awk '/^wm-dispatch: worker [0-9]+ joined$/ { if ($3 != ++n) bad = 1 } END { exit bad || n < 1 }' "$T/d.err" &&
    grep -q "^wm-dispatch: 200 clips, 0 failed$" "$T/d.err" || fail "-v notes missing: $(cat "$T/d.err")"
ok "200 clips, 2 workers killed, 1 late: exactly 200 results equal to one process"

# unordered: the same set of clips, each once
timeout 60 wm-dispatch --workers "@$ep" --timeout 1 "$T/in.wms" > "$T/un.wms" &
dpid=$!
for i in 1 2; do timeout 60 wm-worker --dispatcher "$ep" -- "wm-cat --pass" & done
wait $dpid || fail "unordered dispatcher failed"
wait
diff <(wm-cat --kind end "$T/un.wms" | sort) <(wm-cat --kind end "$T/in.wms" | sort) > /dev/null ||
    fail "unordered results differ"
ok "unordered: every clip exactly once"

# dispatch_expect CODE OUT ARGS...: runs wm-dispatch --workers @$ep ARGS > OUT
# (the caller has started its workers in the background), waits for the
# workers, checks the exit status and keeps stderr in $T/err
dispatch_expect() {
    local want=$1 out=$2; shift 2
    set +e; timeout 60 wm-dispatch --workers "@$ep" "$@" > "$out" 2> "$T/err"; local got=$?; set -e
    wait
    [ "$got" -eq "$want" ] || { cat "$T/err" >&2; fail "wm-dispatch $* exited $got, wanted $want"; }
}

# a chain that fails every clip: each clip comes out with an error, exit 2
/usr/bin/python3 "$WM_ROOT/tests/mkclips.py" 3 > "$T/in3.wms"
timeout 60 wm-worker --dispatcher "$ep" -- "exit 3" 2>/dev/null &
dispatch_expect 2 "$T/bad.wms" --retries 2 "$T/in3.wms"
expect_err "^wm-dispatch: 3 of 3 clips failed; first: clip c0000: failed 2 times, last: "
[ "$(wm-cat --kind end "$T/bad.wms" | grep -c '"error"')" -eq 3 ] || fail "failed clips lack an error"
ok "a failing chain gives each clip an error end, exit 2"

# one clip of ten fails for good (the chain dies on it, every try): the
# batch goes on, every other clip comes out whole, one line names the clip
/usr/bin/python3 "$WM_ROOT/tests/mkclips.py" 10 > "$T/in10.wms"
cat > "$T/die_on_c0003.py" <<'EOF'
import os, sys, msgpack
out = sys.stdout.buffer
unpacker = msgpack.Unpacker(raw=False)
while chunk := os.read(0, 65536):
    unpacker.feed(chunk)
    for m in unpacker:
        if m.get("kind") == "clip" and m.get("id") == "c0003":
            sys.exit(3)
        out.write(msgpack.packb(m, use_bin_type=True))
        if m.get("kind") == "end":
            out.flush()
EOF
for i in 1 2; do timeout 60 wm-worker --dispatcher "$ep" -- "/usr/bin/python3 $T/die_on_c0003.py" 2>/dev/null & done
dispatch_expect 2 "$T/one.wms" --ordered --retries 2 "$T/in10.wms"
expect_err "^wm-dispatch: 1 of 10 clips failed; first: clip c0003: failed 2 times, last: the chain"
diff <(wm-cat --data "$T/one.wms" | grep -v '"c0003"') <(wm-cat --data "$T/in10.wms" | grep -v '"c0003"') > /dev/null ||
    fail "the other clips' results differ from the input"
wm-cat --kind end "$T/one.wms" | grep -q '"clip":"c0003".*"error":"failed 2 times' || fail "clip c0003 lacks its error end"
ok "one clip failing for good: the other 9 whole, exit 2, one line naming it"
# a clip that never ends before the next begins comes out with an error end;
# the next clip is intact
/usr/bin/python3 -c "
import msgpack, sys
o = sys.stdout.buffer
for c in ('a', 'b'):
    o.write(msgpack.packb({'kind': 'clip', 'id': c, 'source': 't', 'fps': [25, 1]}))
    o.write(msgpack.packb({'kind': 'frame', 'clip': c, 'index': 0, 'pts': 0.0, 'width': 1, 'height': 1, 'format': 'gray8', 'data': b'x'}))
o.write(msgpack.packb({'kind': 'end', 'clip': 'b', 'frames': 1}))" > "$T/noend.wms"
timeout 60 wm-worker --dispatcher "$ep" -- "wm-cat --pass" &
dispatch_expect 2 "$T/noend_out.wms" --ordered "$T/noend.wms"
expect_err "^wm-dispatch: 1 of 2 clips failed; first: clip a: the next clip began before this clip's end$"
wm-cat --kind end "$T/noend_out.wms" > "$T/ends"
grep -q '"clip":"a".*"error":"the next clip began' "$T/ends" || fail "clip a: no error end: $(cat "$T/ends")"
grep -q '"clip":"b","frames":1}' "$T/ends" || fail "clip b not intact"
ok "a clip without end is closed with an error, exit 2; the next is intact"
expect_exit 1 wm-dispatch "$T/in.wms"
expect_err "--workers"
