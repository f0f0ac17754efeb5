#!/usr/bin/env bash
# Helpers shared by the wm-mux tests (sourcing it sources lib.sh).  Run on
# its own, it checks that what those tests need is here and that the
# helpers agree with ffprobe on a file made by the ffmpeg CLI.
[ -n "${T:-}" ] || source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PY=/usr/bin/python3
MK="$WM_ROOT/tests/mkframes.py"

# src_stream MEDIA WxH FRAMES [--gray]: a frame stream of a video file, from
# wm-decode when it is built, else from the ffmpeg CLI through mkframes.py
src_stream() {
    if [ -x "$WM_ROOT/bin/wm-decode" ]; then
        wm-decode "$1" --size "$2" --frames "$3" ${4:-}
    else
        $PY "$MK" gen --src "$1" --size "$2" --frames "$3" ${4:-}
    fi
}

# stream_raw STREAM: the pixels of its frames, concatenated
stream_raw() { $PY "$MK" raw "$1"; }

# file_raw FILE [--gray]: the decoded pixels of a video file (rgb24 or gray8)
file_raw() {
    if [ -x "$WM_ROOT/bin/wm-decode" ]; then
        wm-decode "$1" ${2:-} | $PY "$MK" raw /dev/stdin
    else
        local fmt=rgb24; [ "${2:-}" = --gray ] && fmt=gray
        ffmpeg -nostdin -v error -i "$1" -f rawvideo -pix_fmt $fmt -
    fi
}

probe() { ffprobe -v error -select_streams v:0 "$@"; }
frame_count() { probe -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$1"; }
frame_size() { probe -show_entries stream=width,height -of csv=s=x:p=0 "$1"; }
pix_fmt() { probe -show_entries stream=pix_fmt -of csv=p=0 "$1"; }
file_pts() { probe -show_entries packet=pts_time -of csv=p=0 "$1" | sort -g; }

# same_numbers A B TOL: the files hold as many numbers, pairwise within TOL
same_numbers() {
    [ "$(wc -l < "$1")" -eq "$(wc -l < "$2")" ] &&
        paste "$1" "$2" | awk -v t="$3" '{ d = $1 - $2; if (d < 0) d = -d; if (d > t) bad = 1 } END { exit bad }'
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    for tool in ffmpeg ffprobe; do command -v $tool > /dev/null || fail "$tool is missing"; done
    $PY -c 'import msgpack, numpy' || fail "python3-msgpack and python3-numpy are needed"
    [ -x "$WM_ROOT/bin/wm-mux" ] || fail "bin/wm-mux is not built"
    ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=48x32:rate=10 -frames:v 7 -c:v ffv1 "$T/t.mkv"
    [ "$(frame_count "$T/t.mkv")" = 7 ] && [ "$(frame_size "$T/t.mkv")" = 48x32 ] || fail "probe helpers"
    file_pts "$T/t.mkv" > "$T/a"
    seq 0 0.1 0.6 > "$T/b"
    same_numbers "$T/a" "$T/b" 0.0001 || fail "file_pts or same_numbers"
    [ "$(file_raw "$T/t.mkv" | wc -c)" -eq $((48 * 32 * 3 * 7)) ] || fail "file_raw"
    ok "wm-mux test helpers agree with ffprobe"
fi
