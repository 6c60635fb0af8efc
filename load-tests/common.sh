# Shared by the load scripts: a scratch directory, process cleanup, a Redis of their own (AOF
# everysec, the production setting) and hookd. Source it from the repository root.

BIN=${BIN:-target/release}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_redis PORT
start_redis() {
  redis-server --port "$1" --bind 127.0.0.1 --dir "$WORK" --save "" \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction >"$WORK/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

# start_hookd PORT REDIS_PORT SECRET ADMIN_KEY [VAR=VALUE…]: sets HOOKD_PID, waits until ready.
start_hookd() {
  local port=$1 redis_port=$2 secret=$3 admin=$4
  shift 4
  env HOOKD_REDIS__URL="redis://127.0.0.1:$redis_port" HOOKD_SERVER__LISTEN="127.0.0.1:$port" \
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
