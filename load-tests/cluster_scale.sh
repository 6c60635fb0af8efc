#!/usr/bin/env bash
# hookd on a Redis Cluster: one instance against two, with the null forwarder
# (load-tests/null_forwarder.rs: verify, split, sign, POST, no storage) as the ceiling, in
# alternating rounds of one run, under the same load generator and the same verifying receiver.
#
#   bash load-tests/cluster_scale.sh
#   ROUNDS=3 SECONDS_PER_RUN=15 RATE_EVENTS=40000 EVENTS_PER_BODY=10 PARTITIONS=6 ACCOUNTS=12 \
#     bash load-tests/cluster_scale.sh
#
# Starts three redis-servers in cluster mode (AOF everysec, as in production) joined by
# `redis-cli --cluster create`, the receiver, the forwarder and hookd instance h1 (and h2 for
# the two-instance rounds only, stopped in between). Bodies take ACCOUNTS business accounts in
# turn, so the PARTITIONS partitions all get traffic. Each round: h1 alone offered RATE_EVENTS
# events/s; h1 and h2 each offered half; the forwarder offered RATE_EVENTS. Delivered events
# are counted at the receiver from the first delivery to the last, the drain included. Prints
# per round the delivered events/s and the CPU (µs per delivered event) of hookd and of the
# three Redis nodes, then the medians and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECONDS_PER_RUN:-15}
EVENTS=${EVENTS_PER_BODY:-10}
RATE_EVENTS=${RATE_EVENTS:-40000}
PARTITIONS=${PARTITIONS:-6}
ACCOUNTS=${ACCOUNTS:-12}
CONC=${CONCURRENCY:-64}
ROUNDS=${ROUNDS:-3}
SECRET=load_test_secret
ADMIN=load-test-admin-key
NODE_PORT=${NODE_PORT:-17301}
H1_PORT=${H1_PORT:-18111}
H2_PORT=${H2_PORT:-18112}
RECV_PORT=${RECV_PORT:-18113}
FWD_PORT=${FWD_PORT:-18114}
WHSEC="whsec_$(head -c 32 /dev/urandom | base64)"

cargo build --release --quiet --bin hookd --example e2e-receiver --example loadgen --example null-forwarder
BACKEND=redis
source load-tests/common.sh

NODES=()
for i in 0 1 2; do
  port=$((NODE_PORT + i))
  mkdir -p "$WORK/node$i"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/node$i" --save "" \
    --cluster-enabled yes --cluster-port $((port + 100)) --cluster-require-full-coverage no \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
    >"$WORK/node$i.log" 2>&1 &
  PIDS+=($!)
  NODES+=("$!")
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
redis-cli --cluster create 127.0.0.1:$NODE_PORT 127.0.0.1:$((NODE_PORT + 1)) \
  127.0.0.1:$((NODE_PORT + 2)) --cluster-replicas 0 --cluster-yes >"$WORK/create.log"
for i in 0 1 2; do
  until redis-cli -p $((NODE_PORT + i)) CLUSTER INFO | grep -q cluster_state:ok; do sleep 0.1; done
done
SEEDS="redis://127.0.0.1:$NODE_PORT,redis://127.0.0.1:$((NODE_PORT + 1)),redis://127.0.0.1:$((NODE_PORT + 2))"

# start_instance NAME PORT: a hookd on the cluster; prints its process id once it is ready.
start_instance() {
  env HOOKD_STORAGE__BACKEND=redis HOOKD_REDIS__URL="$SEEDS" HOOKD_REDIS__CLUSTER=true \
    HOOKD_REDIS__PARTITIONS="$PARTITIONS" HOOKD_SERVER__INSTANCE_ID="$1" \
    HOOKD_SERVER__LISTEN="127.0.0.1:$2" HOOKD_SECURITY__KEY_FILE="$WORK/hookd.key" \
    HOOKD_RETENTION__HOUSEKEEPING_INTERVAL=1s HOOKD_DELIVERY__SSRF__ALLOW='["127.0.0.1/32"]' \
    HOOKD_SOURCES__LOAD__APP_SECRETS="[\"$SECRET\"]" HOOKD_SOURCES__LOAD__VERIFY_TOKEN=t \
    HOOKD_API__ADMIN_KEY="$ADMIN" HOOKD_LOG__LEVEL=warn \
    "$BIN/hookd" serve >>"$WORK/$1.log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$2/health/ready" >/dev/null && { echo "$pid"; return 0; }
    sleep 0.1
  done
  cat "$WORK/$1.log" >&2
  exit 1
}

"$BIN/examples/e2e-receiver" "127.0.0.1:$RECV_PORT" "$WHSEC" >"$WORK/recv.log" 2>&1 &
PIDS+=($!)
"$BIN/examples/null-forwarder" "127.0.0.1:$FWD_PORT" "$SECRET" "http://127.0.0.1:$RECV_PORT/hook" \
  "$WHSEC" 1 >"$WORK/forwarder.log" 2>&1 &
FWD_PID=$!
PIDS+=($FWD_PID)
# Started in a subshell: listed here for the cleanup.
H1_PID=$(start_instance h1 "$H1_PORT")
PIDS+=($H1_PID)
HOOKD_PORT=$H1_PORT
api POST /api/v1/endpoints "{\"url\":\"http://127.0.0.1:$RECV_PORT/hook\",\"event_types\":[\"*\"],\"secret\":\"$WHSEC\"}" >/dev/null

recv() { curl -sf "http://127.0.0.1:$RECV_PORT/stats"; }
# hookd's backlog over every partition (journal and deliveries), from h1's gauges.
backlog_all() {
  curl -sf "http://127.0.0.1:$H1_PORT/metrics" |
    awk '/^hookd_stream_(lag|pending)\{/ {n += $2} END {print n + 0}'
}
settle() {
  local last=-1 same=0 n
  while :; do
    n=$(recv | json "['verified']")
    if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; fi
    if [ "$same" -ge 20 ]; then
      [ "$1" = forwarder ] && return 0
      [ "$(backlog_all)" = 0 ] && return 0
      [ "$same" -ge 200 ] && { echo "    stalled at $n deliveries" >&2; return 0; }
    fi
    last=$n; sleep 0.1
  done
}
cpu_of() { local t=0; for p in "$@"; do t=$(python3 -c "print($t + $(cpu_s "$p"))"); done; echo "$t"; }
# load PORT RATE CONC: the generator against one side; its result line goes to $WORK/load.PORT.
load() {
  "$BIN/examples/loadgen" "http://127.0.0.1:$1/webhooks/load" "$SECRET" "$3" "$SECS" \
    $(($2 / EVENTS)) "$EVENTS" "$ACCOUNTS" >"$WORK/load.$1"
}
# Events the generators had answered 200 in the last round (requests × events per body).
accepted() { cat "$WORK"/load.* | sed -n 's/.* ok=\([0-9]*\).*/\1/p' | awk -v e="$EVENTS" '{n += $1} END {print n * e}'; }
# run SIDE: one round; prints "rate hookd_us redis_us deliveries".
run() {
  local side=$1 hookd_pids=()
  curl -sf -X POST "http://127.0.0.1:$RECV_PORT/reset"
  rm -f "$WORK"/load.*
  case $side in
    one) hookd_pids=("$H1_PID") ;;
    two) hookd_pids=("$H1_PID" "$H2_PID") ;;
    forwarder) hookd_pids=("$FWD_PID") ;;
  esac
  local h0 r0 h1 r1
  h0=$(cpu_of "${hookd_pids[@]}"); r0=$(cpu_of "${NODES[@]}")
  case $side in
    one) load "$H1_PORT" "$RATE_EVENTS" "$CONC" ;;
    two) load "$H1_PORT" $((RATE_EVENTS / 2)) $((CONC / 2)) &
         load "$H2_PORT" $((RATE_EVENTS / 2)) $((CONC / 2)); wait $! ;;
    forwarder) load "$FWD_PORT" "$RATE_EVENTS" "$CONC" ;;
  esac
  wait_loads
  settle "$side"
  h1=$(cpu_of "${hookd_pids[@]}"); r1=$(cpu_of "${NODES[@]}")
  recv | python3 -c "
import json, sys
s = json.load(sys.stdin)
n = max(1, s['verified'])
rate = int(s['verified'] * 1000 / max(1, s['last_ms'] - s['first_ms']))
us = lambda a, b: round(1e6 * (float(b) - float(a)) / n, 1)
print(rate, us('$h0', '$h1'), us('$r0', '$r1'), s['verified'], $(accepted))"
}
wait_loads() { while pgrep -f "examples/loadgen" >/dev/null; do sleep 0.1; done; }

echo "== Redis Cluster (3 masters), $PARTITIONS partitions, $ACCOUNTS accounts, $RATE_EVENTS events/s offered for ${SECS}s, $EVENTS events per body"
ONE=(); TWO=(); FWD=()
for round in $(seq "$ROUNDS"); do
  read -r rate h r n a < <(run one)
  ONE+=("$rate")
  echo "    round $round one hookd:  $rate delivered/s ($n delivered of $a answered 200); CPU per delivery: hookd $h µs, Redis $r µs"
  H2_PID=$(start_instance h2 "$H2_PORT")
  PIDS+=($H2_PID)
  # The instances share the partitions once each has seen the other (a normalizer batch).
  sleep 3
  read -r rate h r n a < <(run two)
  TWO+=("$rate")
  echo "    round $round two hookd:  $rate delivered/s ($n delivered of $a answered 200); CPU per delivery: hookd $h µs, Redis $r µs"
  kill -TERM "$H2_PID"
  while kill -0 "$H2_PID" 2>/dev/null; do sleep 0.1; done
  read -r rate h r n a < <(run forwarder)
  FWD+=("$rate")
  echo "    round $round forwarder:  $rate delivered/s ($n delivered); CPU per delivery: forwarder $h µs"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
m1=$(median "${ONE[@]}"); m2=$(median "${TWO[@]}"); mf=$(median "${FWD[@]}")
echo "    MEDIAN one hookd $m1/s, two hookd $m2/s, forwarder $mf/s;" \
  "two/one $(python3 -c "print(round($m2 / max(1, $m1), 2))"), one/forwarder $(python3 -c "print(round($m1 / max(1, $mf), 2))")"
