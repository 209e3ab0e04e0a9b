#!/usr/bin/env bash
# The web checks, against a fresh `pygmy up` cluster of its own:
#
# 1. tests/web/pages.py drives the storefront and the operations page in
#    headless chromium (a buy, a replica killed and restarted), and saves
#    screenshots to docs/img/;
# 2. schemathesis (a schema-driven fuzzer) sends requests built from
#    pygmy-net/src/web/openapi.json to the running front end: every answer must match
#    the document (status, headers, body schema) and none may be a 5xx.
#
# Needs: python3 with schemathesis and selenium, chromium, chromedriver
# (.ci/run installs them). Usage: tests/web/run.sh [path/to/pygmy]
set -euo pipefail
cd "$(dirname "$0")/../.."
PYGMY=$(realpath "${1:-target/debug/pygmy}")
PORT=${PYGMY_WEB_PORT:-28410}
EXAMPLES=${PYGMY_WEB_EXAMPLES:-40}
WORK=$(mktemp -d)
"$PYGMY" up --dir "$WORK/data" --base-port "$PORT" >"$WORK/up.log" 2>&1 &
UP=$!
stop() {
    kill -TERM "$UP" 2>/dev/null || true
    wait "$UP" 2>/dev/null || true
    rm -rf "$WORK"
}
trap stop EXIT
for _ in $(seq 1 240); do
    grep -q '^ready' "$WORK/up.log" && break
    kill -0 "$UP" 2>/dev/null || break
    sleep 0.5
done
if ! grep -q '^ready' "$WORK/up.log"; then
    cat "$WORK/up.log"
    echo "web checks: the cluster did not start" >&2
    exit 1
fi
BASE="http://127.0.0.1:$PORT"
ADMIN=$(sed -n 's/^admin_token = "\(.*\)"$/\1/p' "$WORK/data/pygmy.toml")

# The pages first, on the store as `up` made it (the fuzzer adds books
# with arbitrary titles and topics).
python3 tests/web/pages.py --dir "$WORK/data" --pygmy "$PYGMY" --shots docs/img

# Every operation, admin ones with the token, then the admin ones without
# it (their 401 is documented too). --checks all: status codes, content
# types, headers and bodies as documented, and no 5xx.
st() {
    schemathesis --no-color --config-file tests/web/schemathesis.toml run pygmy-net/src/web/openapi.json \
        --url "$BASE" --checks all "$@"
}
st --max-examples "$EXAMPLES" --seed 1 -H "Authorization: Bearer $ADMIN"
st --max-examples 10 --seed 2 --include-tag admin
echo "web checks: passed"
