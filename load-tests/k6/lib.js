// Shared by the k6 scripts: settings from the environment, Meta-shaped bodies with unique ids
// for all three platforms, X-Hub-Signature-256 signing, and the management API.
import { sleep } from 'k6';
import crypto from 'k6/crypto';
import http from 'k6/http';

export const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
export const SOURCE = __ENV.SOURCE || 'load';
export const SECRET = __ENV.SECRET || 'load_test_secret';
export const ADMIN_KEY = __ENV.ADMIN_KEY || '';
export const EVENTS_PER_BODY = parseInt(__ENV.EVENTS_PER_BODY || '5', 10);
// Distinguishes this run's ids from earlier runs' against the same Redis (dedup keys live days).
const RUN = __ENV.RUN_ID || `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

// A scenario offering `rate` iterations a second (env RATE, default 200) for env DURATION
// (default 1m), with enough virtual users that a slow answer does not lower the rate.
export const RATE = parseInt(__ENV.RATE || '200', 10);
export function constantRate() {
  return {
    executor: 'constant-arrival-rate',
    rate: RATE,
    timeUnit: '1s',
    duration: __ENV.DURATION || '1m',
    preAllocatedVUs: Math.max(4, Math.ceil(RATE / 20)),
    maxVUs: Math.max(16, RATE),
  };
}

// Every answer was as expected (the checks) and no request failed.
export const ALL_AS_EXPECTED = { checks: ['rate==1'], http_req_failed: ['rate==0'] };

export function uniqueId(tag) {
  return `${tag}.${RUN}.${__VU}.${__ITER}`;
}

function whatsapp(id, n, account = 'PN1') {
  const messages = [];
  for (let i = 0; i < n; i++) {
    messages.push({ from: '15550001111', id: `wamid.${id}.${i}`, timestamp: '1700000000', type: 'text', text: { body: 'hello' } });
  }
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: 'WABA1', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '15550000000', phone_number_id: account },
      messages,
    } }] }],
  };
}

function messenger(id, n, account = 'PAGE1') {
  const messaging = [];
  for (let i = 0; i < n; i++) {
    messaging.push({ sender: { id: 'PSID1' }, recipient: { id: account }, timestamp: 1700000000000, message: { mid: `m_${id}.${i}`, text: 'hello' } });
  }
  return { object: 'page', entry: [{ id: account, time: 1700000000000, messaging }] };
}

function instagram(id, n, account = 'IG1') {
  const changes = [];
  for (let i = 0; i < n; i++) {
    changes.push({ field: 'comments', value: { id: `c_${id}.${i}`, text: 'nice', from: { id: 'IGU1', username: 'someone' }, media: { id: 'MEDIA1' } } });
  }
  return { object: 'instagram', entry: [{ id: account, time: 1700000000, changes }] };
}

const BUILDERS = [whatsapp, messenger, instagram];

// A body of `n` new events; the platform turns with the iteration. `account` (the phone number,
// page or Instagram account id) defaults to one per platform.
export function body(id, n = EVENTS_PER_BODY, account = undefined) {
  return JSON.stringify(BUILDERS[__ITER % BUILDERS.length](id, n, account));
}

export function signature(raw, secret = SECRET) {
  return `sha256=${crypto.hmac('sha256', secret, raw, 'hex')}`;
}

// POSTs `raw` as Meta does, signed with `sig` (or unsigned when null).
export function postWebhook(raw, sig, tags = {}) {
  const headers = { 'Content-Type': 'application/json', 'User-Agent': 'facebookexternalua' };
  if (sig !== null) headers['X-Hub-Signature-256'] = sig;
  return http.post(`${BASE_URL}/webhooks/${SOURCE}`, raw, { headers, tags });
}

export function api(method, path, payload) {
  const params = { headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' }, tags: { name: 'api' } };
  const res = http.request(method, `${BASE_URL}${path}`, payload === undefined ? null : JSON.stringify(payload), params);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.body}`);
  return res.body ? JSON.parse(res.body) : null;
}

// Polls hookd's stats until `done(stats)` holds or `seconds` pass; returns the last stats.
export function waitForStats(done, seconds = 60) {
  let s = api('GET', '/api/v1/stats');
  for (let i = 0; i < seconds * 4 && !done(s); i++) {
    sleep(0.25);
    s = api('GET', '/api/v1/stats');
  }
  return s;
}

// Waits until hookd has split everything journaled so far: its event counters stand still
// for two seconds (an earlier script may have left a backlog). Returns the stats.
export function waitForQuiet(seconds = 300) {
  const key = (s) => `${s.received}/${s.events}/${s.duplicates}/${s.quarantined}`;
  let last = '';
  let still = 0;
  let s = null;
  for (let i = 0; i < seconds * 2 && still < 4; i++) {
    s = api('GET', '/api/v1/stats');
    still = key(s) === last ? still + 1 : 0;
    last = key(s);
    if (still < 4) sleep(0.5);
  }
  return s;
}
