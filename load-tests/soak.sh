#!/usr/bin/env bash
# Memory under a long run: a steady load, one healthy endpoint and one that is down
# (connection refused), so retries pile up in Redis while hookd keeps delivering.
#
#   bash load-tests/soak.sh                   # 10 minutes at 3000 events/s
#   MINUTES=2 RATE_EVENTS=2000 bash load-tests/soak.sh
#
# Samples hookd's RSS every 5 s and prints the samples of each minute, the retry backlog in
# Redis, and the largest RSS of the last minute against that of the first (after warm-up).
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${MINUTES:-10}
RATE_EVENTS=${RATE_EVENTS:-3000}
EVENTS=${EVENTS_PER_BODY:-10}
SECRET=load_test_secret
ADMIN=load-test-admin-key
REDIS_PORT=${REDIS_PORT:-16392}
HOOKD_PORT=${HOOKD_PORT:-18093}
RECV_PORT=${RECV_PORT:-18094}
DOWN_PORT=${DOWN_PORT:-18095}
WHSEC="whsec_$(head -c 32 /dev/urandom | base64)"

cargo build --release --quiet --bin hookd --example e2e-receiver --example loadgen
source load-tests/common.sh
start_delivery_rig
api POST /api/v1/endpoints "{\"url\":\"http://127.0.0.1:$RECV_PORT/hook\",\"event_types\":[\"*\"],\"secret\":\"$WHSEC\"}" >/dev/null
# Nothing listens there: every attempt fails and is retried on the (default) schedule.
api POST /api/v1/endpoints "{\"url\":\"http://127.0.0.1:$DOWN_PORT/hook\",\"event_types\":[\"*\"]}" >/dev/null

"$BIN/examples/loadgen" "http://127.0.0.1:$HOOKD_PORT/webhooks/load" "$SECRET" 16 $((MINUTES * 60)) \
  $((RATE_EVENTS / EVENTS)) "$EVENTS" >"$WORK/load.txt" &
LOAD=$!
PIDS+=($LOAD)

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$HOOKD_PID/status"; }
retries() {
  curl -sf "http://127.0.0.1:$HOOKD_PORT/metrics" |
    awk '/^hookd_delivery_retry_queue\{state="scheduled"\}/ {print $2 + 0}'
}
FIRST=0; LAST=0
for minute in $(seq "$MINUTES"); do
  samples=()
  for _ in $(seq 12); do samples+=("$(rss_mb)"); sleep 5; done
  peak=$(printf '%s\n' "${samples[@]}" | sort -n | tail -1)
  [ "$minute" = 1 ] && FIRST=$peak
  LAST=$peak
  echo "minute $minute: RSS MB ${samples[*]} (peak $peak); retries waiting: $(retries); delivered: $(curl -sf "http://127.0.0.1:$RECV_PORT/stats" | json "['verified']")"
done
wait "$LOAD" || true
cat "$WORK/load.txt"
awk -v f="$FIRST" -v l="$LAST" 'BEGIN {printf "peak RSS first minute %d MB, last minute %d MB: %+.0f %%\n", f, l, (l - f) * 100 / f}'
