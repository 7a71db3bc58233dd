// The k6 side of `benches/vs_goose.py`: one SCIM journey per iteration, nothing else.
//
// Each iteration is one journey with the bodies provbench's bench workload sends: POST /Users (the
// create's `id` read from its answer), GET /Users/{id} (provbench reads a created user once
// before its first change: its ownership gate), PATCH replace `title`, PATCH `active` false,
// DELETE /Users/{id}. The bench runs it with a constant-arrival-rate scenario and sets everything in the
// environment:
//
// - BASE: the SCIM base URL; SCIM_TOKEN: the bearer token;
// - JOURNEY_RATE: journeys per second; JOURNEY_DURATION: seconds; JOURNEY_USERS: VUs;
// - JOURNEY_CONNECTION_CLOSE=1: a connection per request (`Connection: close`, and k6's
//   `noConnectionReuse`);
// - JOURNEY_RUN: the marker in user names (default `k6-bench`).
//
// At the end it prints one line, `journey-bench {"journeys": N, "errors": E}`: journeys whose five
// answers were 2xx, and journeys that failed. Not part of provbench: only for loopback targets the
// bench started.
//
//     BASE=http://127.0.0.1:8080/scim/v2 SCIM_TOKEN=t JOURNEY_RATE=200 JOURNEY_DURATION=20 \
//         JOURNEY_USERS=20 k6 run -q benches/k6_journey.js

import http from 'k6/http';
import { Counter } from 'k6/metrics';
import exec from 'k6/execution';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const BASE = __ENV.BASE;
const RUN = __ENV.JOURNEY_RUN || 'k6-bench';
const CLOSE = __ENV.JOURNEY_CONNECTION_CLOSE === '1';
const USERS = parseInt(__ENV.JOURNEY_USERS || '20', 10);

const journeys = new Counter('journeys_done');
const errors = new Counter('journeys_failed');

export const options = {
  noConnectionReuse: CLOSE,
  summaryTrendStats: ['avg'],
  scenarios: {
    journeys: {
      executor: 'constant-arrival-rate',
      rate: parseInt(__ENV.JOURNEY_RATE || '200', 10),
      timeUnit: '1s',
      duration: `${__ENV.JOURNEY_DURATION || '20'}s`,
      preAllocatedVUs: USERS,
      maxVUs: USERS,
      gracefulStop: '5s',
    },
  },
};

const params = {
  headers: {
    Authorization: `Bearer ${__ENV.SCIM_TOKEN || ''}`,
    Accept: 'application/scim+json',
    'Content-Type': 'application/scim+json',
    ...(CLOSE ? { Connection: 'close' } : {}),
  },
  redirects: 0,
};

function send(method, url, body) {
  const r = http.request(method, url, body === undefined ? null : JSON.stringify(body), params);
  if (r.status < 200 || r.status >= 300) {
    throw new Error(`${method} ${url}: HTTP ${r.status} ${r.error || ''}`);
  }
  return r;
}

export default function () {
  // Unique across VUs: the VU's number and its own iteration count.
  const seq = `${exec.vu.idInTest}-${exec.vu.iterationInInstance}`;
  const name = `${RUN}-${seq}@example.test`;
  try {
    const created = send('POST', `${BASE}/Users`, {
      schemas: [USER_SCHEMA], userName: name, externalId: `${RUN}-${seq}`,
      name: { givenName: 'Ada', familyName: 'Lovelace', formatted: 'Ada Lovelace' },
      displayName: 'Ada Lovelace', emails: [{ value: name, type: 'work', primary: true }],
      active: true,
    });
    const path = `${BASE}/Users/${created.json('id')}`;
    send('GET', path);
    send('PATCH', path, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'title', value: `Title ${seq}` }] });
    send('PATCH', path, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] });
    send('DELETE', path);
    journeys.add(1);
  } catch (e) {
    errors.add(1);
  }
}

export function handleSummary(data) {
  const count = (m) => (data.metrics[m] ? data.metrics[m].values.count : 0);
  const dropped = count('dropped_iterations');
  const line = { journeys: count('journeys_done'), errors: count('journeys_failed') + dropped, dropped };
  return { stdout: `journey-bench ${JSON.stringify(line)}\n` };
}
