# ZeroMQ endpoints (--in/--out) carry the same bytes as pipes, over ipc://
# and tcp:// on loopback; a slow consumer bounds the producer's memory; a
# producer that fails tells the consumer so.
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 "$WM_ROOT/tests/mkstream.py" good > "$T/good.wms"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

for ep in "ipc://$T/s.sock" "tcp://127.0.0.1:$port"; do
    timeout 20 wm-cat --pass --in "@$ep" > "$T/z.wms" &
    rpid=$!
    timeout 20 wm-cat --pass --out "$ep" "$T/good.wms" || fail "$ep: sender failed"
    wait $rpid || fail "$ep: receiver failed"
    cmp "$T/z.wms" "$T/good.wms" || fail "$ep: bytes differ from the pipe"
    ok "$ep carries the same bytes"
done

# connect side receiving, bind side sending (the other way round)
timeout 20 wm-cat --pass --out "@ipc://$T/r.sock" "$T/good.wms" &
spid=$!
timeout 20 wm-cat --in ">ipc://$T/r.sock" --pass > "$T/z2.wms" || fail "reverse receiver"
wait $spid || fail "reverse sender"
cmp "$T/z2.wms" "$T/good.wms" || fail "reverse: bytes differ"
ok "bind/connect either way"

# slow consumer: 80 frames of 4 MB; the producer's memory stays bounded by
# the high-water mark (16 messages), far below the 320 MB it sends.  Under
# ASan (make test SANITIZE=1) freed memory sits in a quarantine: keep it small.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
/usr/bin/python3 -c "
import msgpack,sys
f={'kind':'frame','clip':'c','index':0,'pts':0.0,'width':1024,'height':1365,'format':'rgb24','data':bytes(1024*1365*3)}
sys.stdout.buffer.write(msgpack.packb(f)*80)" > "$T/big.wms"
( timeout 60 wm-cat --pass --in "@ipc://$T/slow.sock" | (sleep 3; cat > "$T/slow_out.wms") ) &
cpid=$!
timeout 60 /usr/bin/time -f '%M' -o "$T/rss" wm-cat --pass --out "ipc://$T/slow.sock" "$T/big.wms" || fail "slow: sender"
wait $cpid || fail "slow: consumer"
cmp "$T/slow_out.wms" "$T/big.wms" || fail "slow consumer lost data"
rss_kb=$(tail -n 1 "$T/rss")
[ "$rss_kb" -lt 150000 ] || fail "producer RSS ${rss_kb} kB is not bounded by the high-water mark"
ok "slow consumer: nothing lost, producer peak RSS ${rss_kb} kB for 320 MB sent"

# a producer that dies on bad input ends the ZeroMQ stream with an error eos
/usr/bin/python3 "$WM_ROOT/tests/mkstream.py" cut > "$T/cut.wms"
timeout 20 wm-cat --pass --in "@ipc://$T/e.sock" > "$T/e.wms" 2> "$T/e.err" &
rpid=$!
set +e; timeout 20 wm-cat --pass --out "ipc://$T/e.sock" "$T/cut.wms" 2>/dev/null; src=$?; wait $rpid; rrc=$?; set -e
[ $src -eq 2 ] && [ $rrc -eq 2 ] || fail "error propagation: sender $src receiver $rrc"
grep -q "producer failed" "$T/e.err" || fail "receiver does not say the producer failed"
cmp "$T/e.wms" "$T/good.wms" || fail "complete messages before the damage were lost over ZeroMQ"
ok "a failed producer is reported downstream, complete messages kept"

# a slow reader that binds gets every message even when the writer is done
# long before it (libzmq drops what a reader had not taken when the writer
# hangs up first: the writer now waits until its readers have gone)
/usr/bin/python3 -c "
import msgpack,sys
sys.stdout.buffer.write(b''.join(msgpack.packb({'kind':'frame','clip':'c','index':i,'pts':i/25,'width':64,
    'height':64,'format':'rgb24','data':bytes([i%256])*(64*64*3)}) for i in range(300)))" > "$T/small.wms"
( timeout 60 wm-cat --pass --in "@ipc://$T/late.sock" | /usr/bin/python3 -c "
import sys, time
out = open(sys.argv[1], 'wb')
while True:
    b = sys.stdin.buffer.read(12400)
    if not b: break
    out.write(b); time.sleep(0.005)" "$T/late_out.wms" ) &
lpid=$!
timeout 60 wm-cat --pass --out "ipc://$T/late.sock" "$T/small.wms" || fail "late: sender"
wait $lpid || fail "late: reader"
cmp "$T/late_out.wms" "$T/small.wms" || fail "a slow reader lost messages when the writer finished first"
ok "a slow reader gets every message after the writer is done"
