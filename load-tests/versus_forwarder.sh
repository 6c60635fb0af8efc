#!/usr/bin/env bash
# hookd's delivery against its ceiling: the null forwarder (load-tests/null_forwarder.rs: verify,
# split, sign, POST each event, no storage) under the same load generator and the same
# verifying receiver, in alternating rounds of one run.
#
#   bash load-tests/versus_forwarder.sh
#   ROUNDS=3 SECONDS_PER_RUN=20 RATE_EVENTS=40000 EVENTS_PER_BODY=10 ENDPOINTS=1 \
#     bash load-tests/versus_forwarder.sh
#
# Both sides are offered the same RATE_EVENTS events/s (above both ceilings on a small
# machine) for the same time. Delivered events are counted at the receiver from the first
# delivery to the last, the drain included. Per round it prints delivered events/s and the CPU
# (µs per delivered event) of hookd, Redis and the forwarder; then the medians and the ratio
# hookd / forwarder. Starts its own receiver, hookd (on BACKEND: embedded, or redis with a
# redis-server of its own, AOF everysec) and forwarder.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECONDS_PER_RUN:-20}
EVENTS=${EVENTS_PER_BODY:-10}
RATE_EVENTS=${RATE_EVENTS:-40000}
ENDPOINTS=${ENDPOINTS:-1}
CONC=${CONCURRENCY:-64}
ROUNDS=${ROUNDS:-3}
SECRET=load_test_secret
ADMIN=load-test-admin-key
REDIS_PORT=${REDIS_PORT:-16397}
HOOKD_PORT=${HOOKD_PORT:-18097}
RECV_PORT=${RECV_PORT:-18098}
FWD_PORT=${FWD_PORT:-18099}
WHSEC="whsec_$(head -c 32 /dev/urandom | base64)"

cargo build --release --quiet --bin hookd --example e2e-receiver --example loadgen --example null-forwarder
source load-tests/common.sh
start_delivery_rig
"$BIN/examples/null-forwarder" "127.0.0.1:$FWD_PORT" "$SECRET" "http://127.0.0.1:$RECV_PORT/hook" \
  "$WHSEC" "$ENDPOINTS" >"$WORK/forwarder.log" 2>&1 &
FWD_PID=$!
PIDS+=($FWD_PID)
for _ in $(seq "$ENDPOINTS"); do
  api POST /api/v1/endpoints "{\"url\":\"http://127.0.0.1:$RECV_PORT/hook\",\"event_types\":[\"*\"],\"secret\":\"$WHSEC\"}" >/dev/null
done
sleep 1

recv() { curl -sf "http://127.0.0.1:$RECV_PORT/stats"; }
# Waits until the receiver stops getting deliveries (and, for hookd, its backlog is empty).
settle() {
  local last=-1 same=0 n
  while :; do
    n=$(recv | json "['verified']")
    if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; fi
    if [ "$same" -ge 20 ]; then
      [ "$1" = forwarder ] && return 0
      [ "$(backlog inbound)" = 0 ] && [ "$(backlog deliveries)" = 0 ] && return 0
      [ "$same" -ge 200 ] && { echo "    stalled at $n deliveries"; return 0; }
    fi
    last=$n; sleep 0.1
  done
}
# run SIDE PORT: one round against one side; prints "rate hookd_us redis_us forwarder_us".
run() {
  local side=$1 port=$2
  curl -sf -X POST "http://127.0.0.1:$RECV_PORT/reset"
  local h0 r0 f0 h1 r1 f1
  h0=$(cpu_s "$HOOKD_PID"); r0=$(cpu_s "$REDIS_PID"); f0=$(cpu_s "$FWD_PID")
  "$BIN/examples/loadgen" "http://127.0.0.1:$port/webhooks/load" "$SECRET" "$CONC" "$SECS" \
    $((RATE_EVENTS / EVENTS)) "$EVENTS" >/dev/null
  settle "$side"
  h1=$(cpu_s "$HOOKD_PID"); r1=$(cpu_s "$REDIS_PID"); f1=$(cpu_s "$FWD_PID")
  recv | python3 -c "
import json, sys
s = json.load(sys.stdin)
n = max(1, s['verified'])
rate = int(s['verified'] * 1000 / max(1, s['last_ms'] - s['first_ms']))
us = lambda a, b: round(1e6 * (float(b) - float(a)) / n, 1)
print(rate, us('$h0', '$h1'), us('$r0', '$r1'), us('$f0', '$f1'), s['verified'])"
}

echo "== $BACKEND backend, $ENDPOINTS endpoint(s), $RATE_EVENTS events/s offered for ${SECS}s, $EVENTS events per body"
HOOKD=(); FWD=()
for round in $(seq "$ROUNDS"); do
  read -r rate h r f n < <(run hookd "$HOOKD_PORT")
  HOOKD+=("$rate")
  echo "    round $round hookd:     $rate delivered/s ($n deliveries); CPU per delivery: hookd $h µs, Redis $r µs (0: none)"
  read -r rate h r f n < <(run forwarder "$FWD_PORT")
  FWD+=("$rate")
  echo "    round $round forwarder: $rate delivered/s ($n deliveries); CPU per delivery: forwarder $f µs"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
mh=$(median "${HOOKD[@]}"); mf=$(median "${FWD[@]}")
echo "    MEDIAN hookd $mh/s, forwarder $mf/s, ratio $(python3 -c "print(round($mh / max(1, $mf), 2))")"
if [ "$BACKEND" = embedded ]; then
  bytes=$(stat -c %s "$WORK/data/hookd.redb")
  events=$(api GET /api/v1/stats | json "['events']")
  echo "    data file $((bytes / 1048576)) MiB for $events retained events (with their journal entries, deliveries' states and attempt logs): $((bytes / (events > 0 ? events : 1))) bytes per event"
fi
