#!/bin/sh
# Installs every Debian package wm needs to build, test and benchmark.
# Idempotent: does nothing when all packages are present; runs
# `apt-get update` only when something is missing.  GNU parallel shards very
# large batches over cores and machines (README.md).  chromium renders
# wm-report's page headless in tests/test_report.sh.
set -eu

PKGS="build-essential pkg-config
libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
libzmq3-dev libmsgpack-dev libopenblas-dev
python3 python3-msgpack python3-numpy python3-torch
parallel chromium"

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
