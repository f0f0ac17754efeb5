# Behaviour every filter has: --help with an example, --version, exit 1 with
# the option named on bad usage.
source "$(dirname "$0")/lib.sh"
n=0
for f in "$WM_ROOT"/bin/wm-*; do
    name=$(basename "$f")
    expect_exit 0 "$f" --help
    grep -q "^Usage: $name" "$T/out" || fail "$name --help has no usage line"
    grep -q "^Example" "$T/out" || fail "$name --help has no example"
    expect_exit 0 "$f" --version
    grep -qE "^$name [0-9]+\.[0-9]+\.[0-9]+" "$T/out" || fail "$name --version"
    expect_exit 1 "$f" --no-such-option
    expect_err "^$name: .*--no-such-option"
    n=$((n + 1))
done
[ $n -gt 0 ] || fail "no filters built"
ok "$n filters share --help, --version and usage errors"
