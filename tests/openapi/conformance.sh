#!/usr/bin/env bash
# The management API against its own OpenAPI description: starts hookd (the embedded backend,
# in a scratch directory), validates the served document, then lets schemathesis generate
# requests for every operation and check that none gets a 5xx and no answer contradicts the
# description (status, content type, headers, body schema; invalid input refused).
#
#   bash tests/openapi/conformance.sh [path/to/hookd] [max examples per operation]
#
# Needs `schemathesis` and `openapi-spec-validator` (pip install schemathesis
# openapi-spec-validator). SEED picks the run (a fixed one by default, so CI repeats itself;
# SEED=random for a new one).
set -euo pipefail
cd "$(dirname "$0")/../.."
hookd="${1:-$PWD/target/debug/hookd}"
examples="${2:-25}"
# A free port, unless one is given.
port="${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
key="conformance-admin-key-0123456789"
scratch=$(mktemp -d)
trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$scratch"' EXIT

# A source to send webhooks to, and limits high enough that the generated traffic is judged
# on its content rather than throttled (the limits have tests of their own).
(cd "$scratch" && \
  HOOKD_SERVER__LISTEN="127.0.0.1:$port" \
  HOOKD_API__ADMIN_KEY="$key" \
  HOOKD_API__REQUESTS_PER_SECOND=1000000 \
  HOOKD_API__AUTH_FAILURES_PER_MINUTE=1000000 \
  HOOKD_API__AUTH_FAILURE_DELAY=0s \
  HOOKD_SOURCES__MAIN__APP_SECRETS='["conformance-app-secret"]' \
  HOOKD_SOURCES__MAIN__VERIFY_TOKEN=conformance-verify-token \
  HOOKD_LOG__LEVEL=warn \
  exec "$hookd" serve) &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/api/v1/openapi.json" -o "$scratch/openapi.json"
openapi-spec-validator "$scratch/openapi.json"

seed=()
if [ "${SEED:-fixed}" = fixed ]; then seed=(--seed 20261205); elif [ "$SEED" != random ]; then seed=(--seed "$SEED"); fi
# Not `positive_data_acceptance`: hookd also refuses what no schema can rule out (a cursor
# naming nothing stored, a relative or private URL, an unconfigured source, 1.0 for an
# integer), with 400 or 422 naming the parameter or field.
schemathesis run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --header "Authorization: Bearer $key" \
  --max-examples "$examples" \
  --exclude-checks positive_data_acceptance \
  --workers 2 \
  "${seed[@]}"
