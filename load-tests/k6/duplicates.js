// Retry storm: every body arrives COPIES times at once, as when Meta retries a batch it thinks
// was lost. All copies must be answered 200 and each event stored exactly once; the
// teardown checks hookd's counters.
//
//   k6 run -e BASE_URL=... -e SECRET=... -e ADMIN_KEY=... load-tests/k6/duplicates.js
//   BODIES (2000), COPIES (4), VUS (20), EVENTS_PER_BODY (5), P99_MS (200)
import { check } from 'k6';
import http from 'k6/http';
import { Rate } from 'k6/metrics';
import { ALL_AS_EXPECTED, BASE_URL, SOURCE, body, signature, uniqueId, waitForQuiet, waitForStats } from './lib.js';

const COPIES = parseInt(__ENV.COPIES || '4', 10);
const exact = new Rate('each_event_stored_once');

export const options = {
  scenarios: {
    storm: {
      executor: 'shared-iterations',
      iterations: parseInt(__ENV.BODIES || '2000', 10),
      vus: parseInt(__ENV.VUS || '20', 10),
      maxDuration: __ENV.MAX_DURATION || '5m',
    },
  },
  // Setup and teardown wait for hookd to work off any backlog.
  setupTimeout: '6m',
  teardownTimeout: '6m',
  thresholds: {
    ...ALL_AS_EXPECTED,
    'http_req_duration{name:webhook}': [`p(99)<${__ENV.P99_MS || 200}`],
    each_event_stored_once: ['rate==1'],
  },
};

export function setup() {
  return { before: waitForQuiet() };
}

export default function () {
  const raw = body(uniqueId('dup'));
  const params = {
    headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': signature(raw) },
    tags: { name: 'webhook' },
  };
  const copies = [];
  for (let i = 0; i < COPIES; i++) copies.push(['POST', `${BASE_URL}/webhooks/${SOURCE}`, raw, params]);
  for (const res of http.batch(copies)) {
    check(res, { 'every copy accepted with 200': (r) => r.status === 200 });
  }
}

export function teardown(data) {
  const b = data.before;
  const perBody = parseInt(__ENV.EVENTS_PER_BODY || '5', 10);
  // Every journaled copy is split once its events count as stored or as duplicates.
  const after = waitForStats((s) => {
    const received = s.received - b.received;
    const seen = s.events + s.duplicates - b.events - b.duplicates;
    return received > 0 && seen >= received * perBody;
  }, 300);
  const received = after.received - b.received;
  const events = after.events - b.events;
  const duplicates = after.duplicates - b.duplicates;
  const unique = (received / COPIES) * perBody;
  console.log(`requests journaled ${received}, events stored ${events} (want ${unique}), duplicates dropped ${duplicates}`);
  exact.add(events === unique && duplicates === unique * (COPIES - 1));
}
