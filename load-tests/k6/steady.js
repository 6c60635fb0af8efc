// Steady ingest: unique signed bodies (WhatsApp, Messenger, Instagram in turn) at a constant
// rate. Fails when any request is not answered 200 or when latency is out of bounds.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e SECRET=... load-tests/k6/steady.js
//   RATE (requests/s, 200), DURATION (1m), P95_MS (50), P99_MS (100), EVENTS_PER_BODY (5)
import { check } from 'k6';
import { ALL_AS_EXPECTED, RATE, body, constantRate, postWebhook, signature, uniqueId } from './lib.js';

export const options = {
  scenarios: {
    steady: constantRate(),
  },
  thresholds: {
    ...ALL_AS_EXPECTED,
    http_req_duration: [`p(95)<${__ENV.P95_MS || 50}`, `p(99)<${__ENV.P99_MS || 100}`],
    // hookd kept up: fewer than a second's worth of requests could not be started on time.
    dropped_iterations: [`count<${RATE}`],
  },
};

export default function () {
  const raw = body(uniqueId('steady'));
  const res = postWebhook(raw, signature(raw));
  check(res, { 'accepted with 200': (r) => r.status === 200 });
}
