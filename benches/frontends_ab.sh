#!/bin/bash
# Three front ends vs one (issue 17 point 6), alternated rounds on fresh clusters.
# Usage: benches/frontends_ab.sh   (needs target/release/pygmy and the etcd binary)
# Results in /tmp/fe/rR-nN.{loaded,unloaded}; see docs/BENCHMARKS.md.
# Alternated rounds: one front end vs three (local etcd), fresh folders, same load.
P=${PYGMY:-target/release/pygmy}
mkdir -p /tmp/fe
for r in 1 2 3; do
  for n in 1 3; do
    d=/tmp/fe/r$r-n$n; rm -rf $d
    $P up --dir $d --base-port 9300 --frontends $n > $d.up 2>&1 &
    up=$!
    for i in $(seq 1 100); do grep -q "^ready" $d.up 2>/dev/null && break; sleep 0.3; done
    sleep 1
    if [ $n = 1 ]; then urls=127.0.0.1:9300; else urls=127.0.0.1:9300,127.0.0.1:9305,127.0.0.1:9306; fi
    echo "== round $r, $n front end(s), load $(cut -d' ' -f1 /proc/loadavg)"
    $P load --url $urls --clients 16 --duration 10s --mix search=1,lookup=8,buy=1 --api rest > /tmp/fe/r$r-n$n.loaded 2>&1
    $P load --url 127.0.0.1:9300 --clients 1 --duration 4s --mix lookup=1,buy=1 --api rest > /tmp/fe/r$r-n$n.unloaded 2>&1
    kill -INT $up; wait $up 2>/dev/null
    sleep 1
  done
done
# One line per run: total req/s, loaded buy p50, unloaded lookup and buy p50.
cd /tmp/fe
for r in 1 2 3; do for n in 1 3; do
  echo "round $r, $n front end(s): $(awk '$1=="all"{print $4" req/s"; exit}' r$r-n$n.loaded)," \
    "buy p50 $(awk '$1=="buy"{print $5; exit}' r$r-n$n.loaded) ms loaded;" \
    "unloaded lookup $(awk '$1=="lookup"{print $5; exit}' r$r-n$n.unloaded) ms, buy $(awk '$1=="buy"{print $5; exit}' r$r-n$n.unloaded) ms"
done; done
