#!/bin/sh
# Writes a man page (roff) for a wm filter from its --help text.
#   scripts/help2man.sh bin/wm-decode > wm-decode.1
set -eu
bin=$1
name=$(basename "$bin")
help=$("$bin" --help)
summary=$(printf '%s\n' "$help" | head -n 1 | sed "s/^$name - //")
version=$("$bin" --version | awk '{print $2}')
printf '.TH %s 1 "%s" "wm %s" "wm manual"\n' "$(echo "$name" | tr a-z A-Z)" "$(date -u +%Y-%m-%d)" "$version"
printf '.SH NAME\n%s \\- %s\n' "$name" "$summary"
printf '.SH DESCRIPTION\n.nf\n'
printf '%s\n' "$help" | tail -n +3 | sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"
printf '.fi\n.SH SEE ALSO\nThe wm stream protocol: /usr/share/doc/wm/protocol.md\n'
