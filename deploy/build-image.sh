#!/usr/bin/env bash
# Builds the pygmy image (pygmy:latest, or the tag given) from this
# repository alone: a statically linked binary built on the host, put in a
# `FROM scratch` image (deploy/Dockerfile). Prints the image's size.
#
#     deploy/build-image.sh [TAG]
#
# The static build has a target folder of its own (target/static), so it
# does not invalidate the normal build's.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-pygmy:latest}"
target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="$PWD/target/static"
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$target" --bin pygmy
binary="$CARGO_TARGET_DIR/$target/release/pygmy"
# A static binary has no interpreter; refuse a dynamic one (it would not
# start in an empty image).
if file "$binary" 2>/dev/null | grep -q 'dynamically linked'; then
    echo "build-image: $binary is dynamically linked" >&2
    exit 1
fi

context="$PWD/target/image"
rm -rf "$context"
mkdir -p "$context/data"
cp "$binary" "$context/pygmy"
strip "$context/pygmy" 2>/dev/null || true
docker build -q -t "$tag" -f deploy/Dockerfile "$context" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "built $tag: $((size / 1024 / 1024)) MiB ($size bytes)"
