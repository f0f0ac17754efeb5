#!/usr/bin/env bash
# make bench-zmq: frames/s of frame streams between two processes over a
# pipe, ZeroMQ ipc:// and ZeroMQ tcp:// on loopback, in one run.
# Target: ZeroMQ >= 0.8 of the pipe's throughput.  Best of $REPS runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
mk() {   # mk W H N FILE
    [ -s "$4" ] || /usr/bin/python3 -c "
import msgpack, os, sys
w, h, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
data = os.urandom(w * h * 3)
out = sys.stdout.buffer
for i in range(n):
    out.write(msgpack.packb({'kind': 'frame', 'clip': '0', 'index': i, 'pts': i / 25.0, 'width': w,
                             'height': h, 'format': 'rgb24', 'data': data}, use_bin_type=True))" "$1" "$2" "$3" > "$4"
}
mk 64 64 50000 "$OUT/frames_64.wms"
mk 1920 1080 150 "$OUT/frames_1080.wms"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

pipe_run() { wm-cat --pass < "$1" | wm-cat --pass > /dev/null; }
zmq_run() {   # file endpoint
    wm-cat --pass --in "@$2" > /dev/null &
    local r=$!
    wm-cat --pass --out "$2" < "$1"
    wait $r
}
{
machine
for spec in "64x64 50000 $OUT/frames_64.wms" "1920x1080 150 $OUT/frames_1080.wms"; do
    set -- $spec
    tp=$(best pipe_run "$3")
    ti=$(best zmq_run "$3" "ipc://$OUT/bench.sock")
    tt=$(best zmq_run "$3" "tcp://127.0.0.1:$port")
    awk -v s="$1" -v n="$2" -v p="$tp" -v i="$ti" -v t="$tt" 'BEGIN {
        printf "%s frames (%d): pipe %.0f frames/s | ipc %.0f frames/s (%.2f of pipe) | tcp %.0f frames/s (%.2f of pipe)  (target >= 0.8)\n",
               s, n, n / p, n / i, p / i, n / t, p / t }'
done
} | tee "$OUT/bench-zmq.txt"
