#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each) with
# libFuzzer, through `cargo fuzz`, starting from the hand-written inputs in
# seeds/TARGET/ and what earlier runs kept in corpus/TARGET/ (not in git). A crash stops the run: its input is
# copied to regressions/TARGET/, where `cargo test` (in this folder) replays
# it from then on, and the script exits 1.
#
#   fuzz/run.sh                 # every target, 60 s each
#   fuzz/run.sh 300 http_request  # one target, 300 s
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`, installed here when
# missing). cargo-fuzz passes nightly-only flags to rustc; the stable
# toolchain accepts them with RUSTC_BOOTSTRAP=1, so no nightly is needed.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^pygmy-fuzz$')
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
status=0
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s"
    mkdir -p "corpus/$target" "artifacts/$target" "regressions/$target" "seeds/$target"
    # -malloc_limit_mb: one allocation over 512 MB is a crash (a length
    # read from the input must be checked before it is allocated);
    # -rss_limit_mb: so must be a process that grows past 2 GB.
    if ! cargo fuzz run "$target" "corpus/$target" "seeds/$target" "regressions/$target" -- \
        -max_total_time="$seconds" -malloc_limit_mb=512 -rss_limit_mb=2048 \
        -timeout=30 -print_final_stats=1; then
        status=1
        mkdir -p "regressions/$target"
        for crash in artifacts/"$target"/*; do
            [ -f "$crash" ] || continue
            cp "$crash" "regressions/$target/"
            echo "saved $crash to regressions/$target/ (replayed by cargo test from now on)"
        done
    fi
done
exit $status
