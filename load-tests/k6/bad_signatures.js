// Bad signatures mixed into good traffic: a share BAD_RATIO of requests carries no signature,
// a malformed one, or one made with the wrong secret. Each must be refused with 401 and each
// good one accepted with 200, without the bad ones slowing the good.
//
//   k6 run -e BASE_URL=... -e SECRET=... load-tests/k6/bad_signatures.js
//   RATE (200), DURATION (1m), BAD_RATIO (0.2), P99_MS (100)
import { check } from 'k6';
import http from 'k6/http';
import { ALL_AS_EXPECTED, body, constantRate, postWebhook, signature, uniqueId } from './lib.js';

const BAD_RATIO = parseFloat(__ENV.BAD_RATIO || '0.2');

http.setResponseCallback(http.expectedStatuses(200, 401));

export const options = {
  scenarios: {
    mixed: constantRate(),
  },
  thresholds: {
    ...ALL_AS_EXPECTED,
    'http_req_duration{kind:good}': [`p(99)<${__ENV.P99_MS || 100}`],
    'http_req_duration{kind:bad}': [`p(99)<${__ENV.P99_MS || 100}`],
  },
};

const BAD_KINDS = [
  () => null,
  () => 'sha256=not-hex',
  (raw) => signature(raw, 'not_the_app_secret'),
];

export default function () {
  const raw = body(uniqueId('mixed'));
  if (Math.random() < BAD_RATIO) {
    const sig = BAD_KINDS[__ITER % BAD_KINDS.length](raw);
    const res = postWebhook(raw, sig, { kind: 'bad' });
    check(res, { 'bad signature refused with 401': (r) => r.status === 401 });
  } else {
    const res = postWebhook(raw, signature(raw), { kind: 'good' });
    check(res, { 'good signature accepted with 200': (r) => r.status === 200 });
  }
}
