#!/usr/bin/env bash
# Gathers the logs of every container of the compose cluster into one
# folder, as the original's script collected every server's log and the
# heartbeat log:
#
#     deploy/collect-logs.sh [DIR]     # default: pygmy-logs/
#
# DIR/NAME.log is each node's log (`docker compose logs`), and
# DIR/heartbeat.log the front end's heartbeat log, copied out of its data
# volume. Set COMPOSE_PROJECT_NAME (or run it where you ran `up`) for a
# project of another name.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-pygmy-logs}"
mkdir -p "$dir"
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    compose=(docker-compose)
fi
for node in frontend catalog-1 catalog-2 order-1 order-2; do
    "${compose[@]}" -f compose.yaml logs --no-color -t "$node" >"$dir/$node.log" 2>&1 || true
done
frontend=$("${compose[@]}" -f compose.yaml ps -q frontend || true)
if [ -n "$frontend" ]; then
    docker cp "$frontend:/data/heartbeat.log" "$dir/heartbeat.log" || true
fi
echo "logs in $dir: $(ls "$dir" | tr '\n' ' ')"
