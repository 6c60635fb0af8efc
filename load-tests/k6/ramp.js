// Ramp to saturation: the offered rate climbs from START_RATE to MAX_RATE and holds there.
// Past what hookd can journal it must shed load the way Meta understands (503 with
// Retry-After), never fail otherwise, and keep answering accepted requests quickly.
//
//   k6 run -e BASE_URL=... -e SECRET=... load-tests/k6/ramp.js
//   START_RATE (100), MAX_RATE (5000), RAMP (1m), HOLD (30s), ACCEPTED_P99_MS (500)
import { check } from 'k6';
import http from 'k6/http';
import { Rate } from 'k6/metrics';
import { ALL_AS_EXPECTED, body, postWebhook, signature, uniqueId } from './lib.js';

const START = parseInt(__ENV.START_RATE || '100', 10);
const MAX = parseInt(__ENV.MAX_RATE || '5000', 10);
const shed = new Rate('shed_with_503');

http.setResponseCallback(http.expectedStatuses(200, 503));

export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-arrival-rate',
      startRate: START,
      timeUnit: '1s',
      preAllocatedVUs: 32,
      maxVUs: Math.max(64, Math.ceil(MAX / 10)),
      stages: [
        { target: MAX, duration: __ENV.RAMP || '1m' },
        { target: MAX, duration: __ENV.HOLD || '30s' },
      ],
    },
  },
  thresholds: {
    // Every answer is a 200, or a 503 that tells Meta when to retry.
    ...ALL_AS_EXPECTED,
    'http_req_duration{status:200}': [`p(99)<${__ENV.ACCEPTED_P99_MS || 500}`],
  },
};

export default function () {
  const raw = body(uniqueId('ramp'));
  const res = postWebhook(raw, signature(raw));
  shed.add(res.status === 503);
  check(res, {
    '200, or 503 with Retry-After': (r) => r.status === 200 || (r.status === 503 && !!r.headers['Retry-After']),
  });
}
