#!/usr/bin/env bash
# End to end: unique signed Meta bodies into hookd, deliveries out to a local receiver that
# verifies every Standard Webhooks signature and measures latency from hookd's receipt of the
# POST to the delivery's arrival.
#
#   bash load-tests/end_to_end.sh
#   ROUNDS=5 SECONDS_PER_RUN=20 EVENTS_PER_BODY=10 RATE_EVENTS=5000 bash load-tests/end_to_end.sh
#
# For 1 endpoint, then 10 endpoints each subscribed to everything, it runs ROUNDS rounds of
# each phase and prints every round and the median:
#   - sustained delivered events/s: RATE_MAX_EVENTS deliveries/s offered (more than hookd delivers
#     on a small machine), counted at the receiver from the first to the last delivery after
#     the whole backlog drained;
#   - p50/p99 end to end at RATE_EVENTS events/s (open loop);
#   - hookd's RSS after each phase.
# Starts its own redis-server (AOF everysec) on a free port, hookd and the receiver; stops
# them on exit. Needs redis-server and curl on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECONDS_PER_RUN:-15}
CONC=${CONCURRENCY:-32}
EVENTS=${EVENTS_PER_BODY:-10}
RATE_EVENTS=${RATE_EVENTS:-5000}
RATE_MAX_EVENTS=${RATE_MAX_EVENTS:-20000}
ENDPOINT_COUNTS=${ENDPOINT_COUNTS:-"1 10"}
ROUNDS=${ROUNDS:-3}
SECRET=load_test_secret
ADMIN=load-test-admin-key
REDIS_PORT=${REDIS_PORT:-16391}
HOOKD_PORT=${HOOKD_PORT:-18090}
RECV_PORT=${RECV_PORT:-18092}
WHSEC="whsec_$(head -c 32 /dev/urandom | base64)"

cargo build --release --quiet --bin hookd --example e2e-receiver --example loadgen
source load-tests/common.sh
start_delivery_rig
recv() { curl -sf "http://127.0.0.1:$RECV_PORT/stats"; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$HOOKD_PID/status"; }

# Waits until the journal and the deliveries are worked off and the receiver has `expected`
# deliveries (or nothing moves for 10 s).
settle() {
  local expected=$1 last=-1 same=0 n
  while :; do
    n=$(recv | json "['verified']")
    if [ "$(backlog inbound)" = 0 ] && [ "$(backlog deliveries)" = 0 ] && [ "$n" -ge "$expected" ]; then
      return 0
    fi
    if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; fi
    [ "$same" -ge 100 ] && { echo "        stalled at $n of $expected deliveries"; return 0; }
    last=$n; sleep 0.1
  done
}
# Waits for the pipeline to drain, then counts the events stored since `before`.
drained_events() {
  for _ in $(seq 6000); do
    [ "$(backlog inbound)" = 0 ] && break
    sleep 0.1
  done
  echo $(( $(events) - $1 ))
}
events() { api GET /api/v1/stats | json "['events']"; }

for N in $ENDPOINT_COUNTS; do
  IDS=()
  for _ in $(seq "$N"); do
    IDS+=("$(api POST /api/v1/endpoints "{\"url\":\"http://127.0.0.1:$RECV_PORT/hook\",\"event_types\":[\"*\"],\"secret\":\"$WHSEC\"}" | json "['id']")")
  done
  echo "== $N endpoint(s), $EVENTS events per body"

  FULL=(); P50=(); P99=()
  for round in $(seq "$ROUNDS"); do
    curl -sf -X POST "http://127.0.0.1:$RECV_PORT/reset"
    before=$(events)
    "$BIN/examples/loadgen" "http://127.0.0.1:$HOOKD_PORT/webhooks/load" "$SECRET" "$CONC" "$SECS" \
      $((RATE_MAX_EVENTS / EVENTS / N)) "$EVENTS" >/dev/null
    new=$(drained_events "$before")
    settle $((new * N))
    rate=$(recv | python3 -c "import json,sys; s=json.load(sys.stdin); print(int(s['verified'] * 1000 / max(1, s['last_ms'] - s['first_ms'])))")
    FULL+=("$rate")
    echo "    round $round full speed: $((new * N)) deliveries of $new events: $rate delivered/s (hookd RSS $(rss_mb) MB)"

    curl -sf -X POST "http://127.0.0.1:$RECV_PORT/reset"
    before=$(events)
    RATE=$((RATE_EVENTS / EVENTS / N))
    [ "$RATE" -lt 1 ] && RATE=1
    "$BIN/examples/loadgen" "http://127.0.0.1:$HOOKD_PORT/webhooks/load" "$SECRET" "$CONC" "$SECS" "$RATE" "$EVENTS" >/dev/null
    new=$(drained_events "$before")
    settle $((new * N))
    read -r p50 p99 < <(recv | python3 -c "import json,sys; s=json.load(sys.stdin); print(s['p50_ms'], s['p99_ms'])")
    P50+=("$p50"); P99+=("$p99")
    echo "    round $round at $((RATE * EVENTS * N)) deliveries/s offered: end to end p50 $p50 ms p99 $p99 ms (hookd RSS $(rss_mb) MB)"
  done
  median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
  echo "    MEDIAN $N endpoint(s): $(median "${FULL[@]}") delivered/s at full speed; at $((RATE * EVENTS * N))/s p50 $(median "${P50[@]}") ms p99 $(median "${P99[@]}") ms"
  for id in "${IDS[@]}"; do api DELETE "/api/v1/endpoints/$id" >/dev/null; done
done
