#!/usr/bin/env bash
# What one delivered event costs: Redis commands (calls and µs from INFO commandstats), Redis
# CPU and hookd CPU, per event delivered to one endpoint, at an offered rate both can carry.
#
#   bash load-tests/cost.sh
#   RATE_EVENTS=3000 EVENTS_PER_BODY=10 SECONDS_PER_RUN=30 bash load-tests/cost.sh
#
# Starts its own redis-server (AOF everysec), the verifying receiver and hookd (release build);
# offers RATE_EVENTS events/s for SECONDS_PER_RUN, waits until every event is delivered, and
# divides what Redis and hookd spent from the start of the load to the end of the drain by the
# deliveries the receiver verified. Needs redis-server, redis-cli and curl on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECONDS_PER_RUN:-30}
EVENTS=${EVENTS_PER_BODY:-10}
RATE_EVENTS=${RATE_EVENTS:-3000}
CONC=${CONCURRENCY:-32}
SECRET=load_test_secret
ADMIN=load-test-admin-key
REDIS_PORT=${REDIS_PORT:-16395}
HOOKD_PORT=${HOOKD_PORT:-18095}
RECV_PORT=${RECV_PORT:-18096}
WHSEC="whsec_$(head -c 32 /dev/urandom | base64)"

cargo build --release --quiet --bin hookd --example e2e-receiver --example loadgen
# Redis's own accounting is what this script reads.
BACKEND=redis
source load-tests/common.sh
start_delivery_rig
recv() { curl -sf "http://127.0.0.1:$RECV_PORT/stats"; }

api POST /api/v1/endpoints "{\"url\":\"http://127.0.0.1:$RECV_PORT/hook\",\"event_types\":[\"*\"],\"secret\":\"$WHSEC\"}" >/dev/null
curl -sf -X POST "http://127.0.0.1:$RECV_PORT/reset"
redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
redis0=$(cpu_s "$REDIS_PID"); hookd0=$(cpu_s "$HOOKD_PID")

"$BIN/examples/loadgen" "http://127.0.0.1:$HOOKD_PORT/webhooks/load" "$SECRET" "$CONC" "$SECS" \
  $((RATE_EVENTS / EVENTS)) "$EVENTS" >/dev/null
expected=$(( $(api GET /api/v1/stats | json "['events']") ))
# Every stored event delivered (or nothing moves for 20 s).
last=-1; same=0
while :; do
  n=$(recv | json "['verified']")
  [ "$n" -ge "$expected" ] && break
  if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; fi
  [ "$same" -ge 200 ] && { echo "stalled at $n of $expected deliveries"; break; }
  last=$n; sleep 0.1
done
redis1=$(cpu_s "$REDIS_PID"); hookd1=$(cpu_s "$HOOKD_PID")
delivered=$(recv | json "['verified']")
# Memory per retained event: Redis's dataset (used memory less its own overhead) over the
# events it holds (events, their dedup keys, indexes, delivery states, attempt logs, journal).
dataset=$(redis-cli -p "$REDIS_PORT" MEMORY STATS | awk 'prev=="dataset.bytes" {print $1} {prev=$1}')
retained=$(redis-cli -p "$REDIS_PORT" XLEN hookd:events)

echo "== $delivered events delivered to 1 endpoint ($RATE_EVENTS events/s offered for ${SECS}s, $EVENTS per body)"
python3 - "$delivered" "$redis0" "$redis1" "$hookd0" "$hookd1" "$dataset" "$retained" <<'PY' 3< <(redis-cli -p "$REDIS_PORT" INFO commandstats)
import sys
n, r0, r1, h0, h1, dataset, retained = int(sys.argv[1]), *map(float, sys.argv[2:])
n = max(n, 1)
print(f"Redis CPU  {1e6 * (r1 - r0) / n:7.1f} µs per delivered event")
print(f"hookd CPU  {1e6 * (h1 - h0) / n:7.1f} µs per delivered event")
print(f"Redis memory {dataset / max(retained, 1):7.0f} bytes per retained event ({int(retained)} events held)")
rows = []
with open(3) as f:
    for line in f:
        if not line.startswith("cmdstat_"):
            continue
        name, rest = line.strip()[8:].split(":", 1)
        kv = dict(p.split("=") for p in rest.split(","))
        rows.append((float(kv["usec"]) / n, int(kv["calls"]) / n, name))
total = sum(r[0] for r in rows)
print(f"Redis commands {total:.1f} µs per delivered event (INFO commandstats; Lua's own time is inside EVALSHA)")
for usec, calls, name in sorted(rows, reverse=True):
    print(f"  {name:<14} {calls:6.2f} calls  {usec:6.1f} µs")
PY
