# Shared by the load scripts: a scratch directory, process cleanup, hookd on the storage
# BACKEND chooses (embedded, the default: a data directory under the scratch directory, on
# disk, fsync before each answer; or redis: a Redis of their own, AOF everysec, the production
# setting). Source it from the repository root.

BIN=${BIN:-target/release}
BACKEND=${BACKEND:-embedded}
# The scratch directory holds the embedded data: keep it on a real disk, not a tmpfs.
mkdir -p "${SCRATCH:-$PWD/target}"
WORK=$(mktemp -d -p "${SCRATCH:-$PWD/target}")
REDIS_PID=
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_redis PORT: with BACKEND=redis only; sets REDIS_PID.
start_redis() {
  [ "$BACKEND" = redis ] || return 0
  redis-server --port "$1" --bind 127.0.0.1 --dir "$WORK" --save "" \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction >"$WORK/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.1; done
  REDIS_PID=$(redis-cli -p "$1" INFO server | awk -F: '/^process_id/ {print $2+0}')
}

# start_hookd PORT REDIS_PORT SECRET ADMIN_KEY [VAR=VALUE…]: sets HOOKD_PID, waits until ready.
start_hookd() {
  local port=$1 redis_port=$2 secret=$3 admin=$4
  shift 4
  env HOOKD_STORAGE__BACKEND="$BACKEND" HOOKD_STORAGE__PATH="$WORK/data" \
    HOOKD_SECURITY__KEY_FILE="$WORK/hookd.key" \
    HOOKD_RETENTION__HOUSEKEEPING_INTERVAL=1s \
    HOOKD_REDIS__URL="redis://127.0.0.1:$redis_port" HOOKD_SERVER__LISTEN="127.0.0.1:$port" \
    HOOKD_SOURCES__LOAD__APP_SECRETS="[\"$secret\"]" HOOKD_SOURCES__LOAD__VERIFY_TOKEN=t \
    HOOKD_API__ADMIN_KEY="$admin" HOOKD_LOG__LEVEL=warn "$@" \
    "$BIN/hookd" serve >"$WORK/hookd.log" 2>&1 &
  HOOKD_PID=$!
  PIDS+=($HOOKD_PID)
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && return 0
    sleep 0.1
  done
  cat "$WORK/hookd.log"
  exit 1
}

# start_delivery_rig: Redis, the verifying receiver on RECV_PORT (secret WHSEC) and hookd
# allowed to deliver to 127.0.0.1, for the delivery scripts.
start_delivery_rig() {
  start_redis "$REDIS_PORT"
  "$BIN/examples/e2e-receiver" "127.0.0.1:$RECV_PORT" "$WHSEC" >"$WORK/recv.log" 2>&1 &
  PIDS+=($!)
  start_hookd "$HOOKD_PORT" "$REDIS_PORT" "$SECRET" "$ADMIN" \
    HOOKD_DELIVERY__SSRF__ALLOW='["127.0.0.1/32"]'
}

# api METHOD PATH [JSON]: a management API call with the admin key.
api() { curl -sf -X "$1" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  "http://127.0.0.1:$HOOKD_PORT$2" ${3:+-d "$3"}; }
# json EXPR: reads JSON on stdin and prints EXPR of it, e.g. json "['id']".
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# CPU seconds a process has used (user + system); 0 without a process (no Redis when embedded).
cpu_s() {
  [ -n "$1" ] || { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"
}
# backlog STREAM (inbound or deliveries): entries not yet read plus read and unacknowledged.
# From Redis itself, or from hookd's gauges (sampled every housekeeping interval, 1 s here).
backlog() {
  if [ "$BACKEND" = redis ]; then
    redis-cli -p "$REDIS_PORT" XINFO GROUPS "hookd:$1" |
      awk 'prev=="lag" || prev=="pending" {n += $1} {prev=$1} END {print n + 0}'
  else
    curl -sf "http://127.0.0.1:$HOOKD_PORT/metrics" |
      awk -v s="stream=\"$1\"" '/^hookd_stream_(lag|pending)\{/ && index($0, s) {n += $2} END {print n + 0}'
  fi
}
