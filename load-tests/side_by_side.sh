#!/usr/bin/env bash
# hookd's durable ingest against a null receiver, under the same load, in one run.
#
#   bash load-tests/side_by_side.sh            # 3 alternating rounds of 15 s each
#   ROUNDS=5 SECONDS_PER_RUN=20 CONCURRENCY=64 bash load-tests/side_by_side.sh
#
# Starts its own redis-server (AOF, appendfsync everysec: the production setting) on a free
# port, hookd and the null receiver, then runs the load generator against each in turn and
# prints requests/s, p50/p99, the ratio of medians, how fast hookd splits the backlog a full-
# speed run leaves, and hookd's p99 and RSS at half its maximum rate. Every run starts with the
# backlog drained. Everything it starts is stopped on exit. Needs redis-server on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-15}
CONC=${CONCURRENCY:-64}
SECRET=load_test_secret
REDIS_PORT=${REDIS_PORT:-16390}
HOOKD_PORT=${HOOKD_PORT:-18080}
NULL_PORT=${NULL_PORT:-18081}

cargo build --release --quiet --bin hookd --example null-receiver --example loadgen
source load-tests/common.sh
start_redis "$REDIS_PORT"
start_hookd "$HOOKD_PORT" "$REDIS_PORT" "$SECRET" load-test-admin-key
"$BIN/examples/null-receiver" "127.0.0.1:$NULL_PORT" "$SECRET" >"$WORK/null.log" 2>&1 &
PIDS+=($!)

run() { "$BIN/examples/loadgen" "$1" "$SECRET" "$CONC" "$SECS" "${2:-0}"; }
lag() { backlog inbound; }
# hookd splits what it journaled after answering; a run at full speed leaves a backlog that
# the normalizer works off afterwards. Every run starts on a quiet machine, and how fast the
# backlog drains (the sustained split rate) is reported.
drain() {
  local before t0 now
  before=$(lag); t0=$(date +%s.%N)
  for _ in $(seq 1800); do [ "$(lag)" = 0 ] && break; sleep 0.1; done
  now=$(date +%s.%N)
  awk -v n="$before" -v s="$(echo "$now - $t0" | bc)" 'BEGIN { if (n > 0) printf "        drained %d journal entries in %.1f s: %.0f entries/s split\n", n, s, n / s }'
}
field() { sed -E "s/.*$1=([0-9.]+).*/\1/"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "target  round  result"
for r in $(seq "$ROUNDS"); do
  n=$(run "http://127.0.0.1:$NULL_PORT/webhooks/load");  echo "null    $r      $n"; echo "$n" >>"$WORK/null.txt"
  h=$(run "http://127.0.0.1:$HOOKD_PORT/webhooks/load"); echo "hookd   $r      $h"; echo "$h" >>"$WORK/hookd.txt"
  drain | tee -a "$WORK/drain.txt"
done

for t in null hookd; do
  for f in rps p50_ms p99_ms; do
    printf -v "${t}_${f}" '%s' "$(field "$f" <"$WORK/$t.txt" | median)"
  done
done
echo
echo "median null:  rps=$null_rps p50_ms=$null_p50_ms p99_ms=$null_p99_ms"
echo "median hookd: rps=$hookd_rps p50_ms=$hookd_p50_ms p99_ms=$hookd_p99_ms"
awk -v h="$hookd_rps" -v n="$null_rps" 'BEGIN {printf "ratio hookd/null requests/s: %.2f\n", h/n}'

half=$(awk -v h="$hookd_rps" 'BEGIN {printf "%d", h/2}')
peak_rss=0
( while kill -0 "$HOOKD_PID" 2>/dev/null; do grep VmRSS "/proc/$HOOKD_PID/status" | awk '{print $2}'; sleep 0.5; done ) >"$WORK/rss.txt" &
SAMPLER=$!
paced=$(run "http://127.0.0.1:$HOOKD_PORT/webhooks/load" "$half")
kill "$SAMPLER" 2>/dev/null || true
peak_rss=$(sort -n "$WORK/rss.txt" | tail -1)
echo "hookd at half its max rate ($half req/s): $paced"
echo "hookd peak RSS during that run: $((peak_rss / 1024)) MB"
echo "normalizer lag at the end of the paced run: $(lag) journal entries"
drain
