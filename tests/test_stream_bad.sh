# Hostile streams: each gets exit 2 and one line naming the input and the
# byte offset, and the complete messages before the damage still come out.
source "$(dirname "$0")/lib.sh"
mk() { /usr/bin/python3 "$WM_ROOT/tests/mkstream.py" "$1" > "$T/$1.wms"; }

mk good
wm-cat --pass "$T/good.wms" | cmp - "$T/good.wms" || fail "pass-through is not byte-identical"
[ "$(wm-cat "$T/good.wms" | wc -l)" -eq 7 ] || fail "good stream: wrong line count"
wm-cat "$T/good.wms" | grep -q '"kind":"note","text":"unknown kinds pass through","extra":\[1,{"a":null}\]' ||
    fail "unknown kind not printed whole"
ok "good stream passes through unchanged"

for k in cut badlen huge; do
    mk $k
    expect_exit 2 wm-cat --pass "$T/$k.wms"
    expect_err "^wm-cat: .*$k.wms: .*byte offset [0-9]+"
    cmp -s "$T/out" "$T/good.wms" || fail "$k: complete messages before the damage were not passed through"
    expect_exit 2 wm-cat "$T/$k.wms"
    [ "$(wc -l < "$T/out")" -eq 7 ] || fail "$k: JSON of the complete messages missing"
    ok "$k: exit 2, complete messages kept"
done
grep -q truncated <(wm-cat "$T/cut.wms" 2>&1 >/dev/null) || fail "cut: message does not say truncated"
grep -q "cap" <(wm-cat "$T/huge.wms" 2>&1 >/dev/null) || fail "huge: message does not name the cap"
grep -q "7 bytes" <(wm-cat "$T/badlen.wms" 2>&1 >/dev/null) || fail "badlen: message does not give the length"

for k in garbage notmap nokind deep newer; do
    mk $k
    expect_exit 2 wm-cat "$T/$k.wms"
    expect_err "^wm-cat: .*$k.wms: byte offset [0-9]+"
    ok "$k: exit 2 with one line"
done

# the same through stdin names stdin
expect_exit 2 wm-cat --pass < "$T/cut.wms"
expect_err "^wm-cat: stdin: truncated stream"
# the cap is configurable: the good stream's 24-byte frames exceed a 20-byte cap
expect_exit 2 wm-cat --max-message 40 "$T/good.wms"
expect_err "larger than the size cap"
# an empty stream is a valid empty stream
: > "$T/empty.wms"
expect_exit 0 wm-cat "$T/empty.wms"
# missing and directory inputs
expect_exit 2 wm-cat "$T/missing.wms"
expect_err "missing.wms: No such file"
expect_exit 2 wm-cat "$T"
expect_err "is a directory"
# several inputs are read in order
wm-cat --pass "$T/good.wms" "$T/good.wms" | cmp - <(cat "$T/good.wms" "$T/good.wms") || fail "concatenation"
# a reader that goes away: quiet exit 0
/usr/bin/python3 -c "
import msgpack,sys
f={'kind':'frame','clip':'c','index':0,'pts':0.0,'width':512,'height':512,'format':'rgb24','data':bytes(512*512*3)}
sys.stdout.buffer.write(msgpack.packb(f)*20)" > "$T/big.wms"
set +e; wm-cat --pass "$T/big.wms" 2> "$T/err" | head -c 1 > /dev/null; rc=${PIPESTATUS[0]}; set -e
[ "$rc" -eq 0 ] && [ ! -s "$T/err" ] || fail "EPIPE: exit $rc, stderr: $(cat "$T/err")"
ok "hostile streams handled"
