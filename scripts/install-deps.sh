#!/bin/sh
# Installs every Debian package wm needs to build, test and benchmark.
# Idempotent: does nothing when all packages are present; runs
# `apt-get update` only when something is missing.  GNU parallel shards very
# large batches over cores and machines (README.md).  chromium renders
# wm-report's page headless in tests/test_report.sh.  jq and time (GNU
# /usr/bin/time) are used by the shell tests.
# --checks adds the tools of the hardening checks CI runs (.ci/run):
# clang and its libFuzzer/sanitizer runtime (make fuzz), cppcheck and
# clang-tidy (make lint), valgrind (make valgrind).
set -eu

PKGS="build-essential pkg-config
libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
libzmq3-dev libmsgpack-dev libopenblas-dev
python3 python3-msgpack python3-numpy python3-torch
parallel chromium jq time"
[ "${1:-}" = "--checks" ] && PKGS="$PKGS clang libclang-rt-14-dev cppcheck clang-tidy valgrind"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
