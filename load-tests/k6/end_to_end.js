// End to end: unique signed bodies into hookd, deliveries out to load-tests/e2e_receiver.rs,
// which verifies each Standard Webhooks signature and measures Meta's POST → arrival. The
// setup subscribes an endpoint to one account of its own; the teardown waits until every
// event of the run arrived, then removes the endpoint.
//
//   k6 run -e BASE_URL=... -e SECRET=... -e ADMIN_KEY=... \
//     -e RECEIVER_URL=http://127.0.0.1:18092 -e WHSEC=whsec_... load-tests/k6/end_to_end.js
//   RATE (bodies/s, 200), DURATION (1m), EVENTS_PER_BODY (5), E2E_P99_MS (100)
import { check, sleep } from 'k6';
import http from 'k6/http';
import { Rate, Trend } from 'k6/metrics';
import { ALL_AS_EXPECTED, EVENTS_PER_BODY, api, body, constantRate, postWebhook, signature, uniqueId, waitForQuiet } from './lib.js';

const RECEIVER = __ENV.RECEIVER_URL || 'http://127.0.0.1:18092';
const delivered = new Rate('every_event_delivered_verified');
const e2eP50 = new Trend('end_to_end_p50', true);
const e2eP99 = new Trend('end_to_end_p99', true);

export const options = {
  scenarios: {
    e2e: constantRate(),
  },
  // Setup waits for hookd to work off an earlier backlog, so latency is this run's own.
  setupTimeout: '6m',
  teardownTimeout: '6m',
  thresholds: {
    ...ALL_AS_EXPECTED,
    every_event_delivered_verified: ['rate==1'],
    end_to_end_p99: [`max<${__ENV.E2E_P99_MS || 100}`],
  },
};

export function setup() {
  if (!__ENV.WHSEC) throw new Error("WHSEC (the receiver's whsec_ secret) is required");
  waitForQuiet();
  // An account of this run's own: events of earlier runs still in hookd's backlog do not
  // match the endpoint, so the receiver counts exactly this run's events.
  const account = `k6e2e${Date.now()}`;
  const tenant = api('POST', '/api/v1/tenants', { name: `k6-${account}` });
  // A tenant's endpoints receive only the accounts it owns.
  api('POST', `/api/v1/tenants/${tenant.id}/accounts`, { account_ids: [account] });
  const endpoint = api('POST', '/api/v1/endpoints', {
    tenant_id: tenant.id, url: `${RECEIVER}/hook`, secret: __ENV.WHSEC, event_types: ['*'],
    account_ids: [account],
  });
  http.post(`${RECEIVER}/reset`);
  // Other hookd instances see a new endpoint within delivery.route_refresh.
  sleep(1);
  return { account, endpoint: endpoint.id, before: api('GET', '/api/v1/stats') };
}

export default function (data) {
  const raw = body(uniqueId('e2e'), EVENTS_PER_BODY, data.account);
  const res = postWebhook(raw, signature(raw));
  check(res, { 'accepted with 200': (r) => r.status === 200 });
}

function receiverStats() {
  return JSON.parse(http.get(`${RECEIVER}/stats`).body);
}

export function teardown(data) {
  // Every request of the run was unique, so each journaled one brings EVENTS_PER_BODY events.
  const expected = (api('GET', '/api/v1/stats').received - data.before.received) * EVENTS_PER_BODY;
  let r = receiverStats();
  for (let i = 0; i < 1200 && r.verified < expected; i++) {
    sleep(0.25);
    r = receiverStats();
  }
  console.log(`events sent ${expected}, delivered and verified ${r.verified}, bad signatures ${r.bad}, end to end p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms`);
  delivered.add(expected > 0 && r.verified === expected && r.bad === 0);
  e2eP50.add(r.p50_ms || 0);
  e2eP99.add(r.p99_ms === null ? 1e9 : r.p99_ms);
  api('DELETE', `/api/v1/endpoints/${data.endpoint}`);
}
