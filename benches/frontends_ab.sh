#!/bin/bash
# Three front ends vs one (issue 17 point 6), alternated rounds on fresh clusters.
# Usage: benches/frontends_ab.sh [ROUNDS]   (needs target/release/pygmy and the etcd binary)
#   PYGMY=path/to/pygmy   the binary (default target/release/pygmy)
#   BINS="a=path b=path"  several binaries, alternated within each round
#                         (results named rR-LABEL-nN; default "pygmy=$PYGMY")
#   OUT=/tmp/fe           where the results go
#   SECS=8                seconds of each loaded phase
# Each round runs, on a fresh cluster of one front end and then of three
# (local etcd), four phases with 16 clients at the same mix of front ends
# (three front ends: `--url` names all three): cached reads only
# (search=1,lookup=8), buys only (buy=1), the mix (search=1,lookup=8,buy=1),
# then one client unloaded (lookup=1,buy=1) at the first front end. During
# the mix it records each process's CPU time from /proc and each front
# end's cache counters from /metrics. See docs/BENCHMARKS.md.
BINS=${BINS:-pygmy=${PYGMY:-target/release/pygmy}}
OUT=${OUT:-/tmp/fe}
SECS=${SECS:-8}
ROUNDS=${1:-3}
TICK=$(getconf CLK_TCK)
mkdir -p "$OUT"

# "pid name" of every process `pygmy up` ($1) started, then itself.
procs() {
  for c in $(pgrep -P "$1"); do
    echo "$c $(tr '\0' ' ' < /proc/$c/cmdline | sed -E 's/^(\S*etcd)\s.*/etcd/; s/.*--name (\S+).*/\1/' | cut -c1-30)"
  done
}
# CPU seconds (user + system) of pid $1.
cpu() { awk -v t="$TICK" '{print ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Cache hits and misses of the front end on port $1.
cache() {
  curl -s "127.0.0.1:$1/metrics" | awk '$1=="pygmy_cache_hits_total"||$1=="pygmy_cache_hits"{h=$2} $1=="pygmy_cache_misses_total"||$1=="pygmy_cache_misses"{m=$2} END{print h+0, m+0}'
}

for r in $(seq 1 "$ROUNDS"); do
  for bin in $BINS; do
  L=${bin%%=*}; P=${bin#*=}
  for n in 1 3; do
    b=$OUT/r$r-$L-n$n; d=$b.dir; rm -rf "$d"
    $P up --dir "$d" --base-port 9300 --frontends $n > "$b.up" 2>&1 &
    up=$!
    for i in $(seq 1 100); do grep -q "^ready" "$b.up" 2>/dev/null && break; sleep 0.3; done
    sleep 1
    if [ $n = 1 ]; then urls=127.0.0.1:9300; ports=9300; else urls=127.0.0.1:9300,127.0.0.1:9305,127.0.0.1:9306; ports="9300 9305 9306"; fi
    echo "== round $r, $L, $n front end(s), load $(cut -d' ' -f1 /proc/loadavg)"
    load() { $P load --url "$urls" --clients 16 --duration "${SECS}s" --mix "$1" --api rest; }
    load search=1,lookup=8 > "$b.reads" 2>&1
    load buy=1 > "$b.buys" 2>&1
    procs $up > "$b.procs"
    { while read -r pid name; do echo "$pid $name $(cpu "$pid")"; done < "$b.procs"; } > "$b.cpu0"
    for p in $ports; do echo "$p $(cache $p)"; done > "$b.cache0"
    /usr/bin/time -f "loadgen %U %S" -o "$b.loadgen" $P load --url "$urls" --clients 16 --duration "${SECS}s" --mix search=1,lookup=8,buy=1 --api rest > "$b.loaded" 2>&1
    { while read -r pid name; do echo "$pid $name $(cpu "$pid")"; done < "$b.procs"; } > "$b.cpu1"
    for p in $ports; do echo "$p $(cache $p)"; done > "$b.cache1"
    $P load --url 127.0.0.1:9300 --clients 1 --duration 4s --mix lookup=1,buy=1 --api rest > "$b.unloaded" 2>&1
    kill -INT $up; wait $up 2>/dev/null
    sleep 1
  done
  done
done

# One line per run: req/s of each phase, loaded buy p50, unloaded p50s;
# then the mix's CPU per process and cache hit rate per front end.
cd "$OUT" || exit 1
rate() { awk '$1=="all"{print $4; exit}' "$1"; }
for r in $(seq 1 "$ROUNDS"); do for bin in $BINS; do L=${bin%%=*}; for n in 1 3; do
  b=r$r-$L-n$n
  echo "round $r, $L, $n FE: reads $(rate $b.reads) req/s, buys $(rate $b.buys) req/s, mix $(rate $b.loaded) req/s," \
    "mix buy p50 $(awk '$1=="buy"{print $5; exit}' $b.loaded) ms;" \
    "unloaded lookup $(awk '$1=="lookup"{print $5; exit}' $b.unloaded) ms, buy $(awk '$1=="buy"{print $5; exit}' $b.unloaded) ms"
  echo "  mix CPU s: $(join <(sort $b.cpu0) <(sort $b.cpu1) | awk '{printf "%s %.1f, ", $2, $5-$3; t+=$5-$3} END{printf "total %.1f", t}'); $(cat $b.loadgen)"
  echo "  mix cache hit rate: $(join $b.cache0 $b.cache1 | awk '{h=$4-$2; m=$5-$3; printf "fe:%s %.1f%% of %d, ", $1, (h+m? 100*h/(h+m) : 0), h+m}')"
done; done; done
