#!/bin/sh
# Parses every k6 script as an ES module with node, since k6 itself is not
# installed where `make test` runs. node only parses: k6's own imports
# ("k6/http") are not resolved, so they do not need to exist.
set -eu
if ! command -v node >/dev/null 2>&1; then
  echo "loadtest/check-scripts.sh: node not installed; install it (apt-get install nodejs) and rerun" >&2
  exit 1
fi
dir=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for f in "$dir"/*.js; do
  name=$(basename "$f" .js)
  cp "$f" "$tmp/$name.mjs"
  if node --check "$tmp/$name.mjs"; then
    echo "ok   $f"
  else
    echo "FAIL $f does not parse as an ES module" >&2
    status=1
  fi
done
exit $status
