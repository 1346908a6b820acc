// soak.js — does anything degrade over hours: memory, connection pools,
// caches, file descriptors?
//
// A steady arrival rate for a long time. The thresholds are the same SLO
// as load.js; watch the gateway's /metrics (process_resident_memory_bytes,
// flexgate_* connection gauges) alongside, since a slow leak shows there
// before it shows in latency.
//
//   k6 run -e BASE_URL=http://flexgate:8080 -e RATE=100 -e DURATION=4h loadtest/soak.js
//
// Environment (all optional):
//   BASE_URL, API_PATH, CLIENT_ID, CLIENT_SECRET, TOKEN, INSECURE  as in smoke.js
//   RATE        requests per second                    (100)
//   DURATION    how long                               (2h)
//   MAX_VUS     most concurrent virtual users          (RATE, at least 50)
//   P95_MS, P99_MS, ERROR_RATE  as in load.js          (200, 500, 0.001)
import http from 'k6/http';
import { authHeaders } from './lib.js';
import { check } from 'k6';
import { Trend } from 'k6/metrics';

const BASE_URL = __ENV.BASE_URL || 'http://localhost:8080';
const API_PATH = __ENV.API_PATH || '/api/products/PRD-42?productId=PRD-42&quantity=2';
const RATE = parseInt(__ENV.RATE || '100', 10);
const MAX_VUS = parseInt(__ENV.MAX_VUS || String(Math.max(RATE, 50)), 10);

// Time to first byte alone: a growing queue inside the gateway shows here
// first.
const waiting = new Trend('gateway_waiting', true);

export const options = {
  insecureSkipTLSVerify: __ENV.INSECURE === 'true',
  discardResponseBodies: true,
  scenarios: {
    soak: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION || '2h',
      preAllocatedVUs: Math.min(MAX_VUS, Math.max(10, Math.ceil(RATE / 10))),
      maxVUs: MAX_VUS,
    },
  },
  thresholds: {
    http_req_duration: [`p(95)<${__ENV.P95_MS || 200}`, `p(99)<${__ENV.P99_MS || 500}`],
    http_req_failed: [`rate<${__ENV.ERROR_RATE || 0.001}`],
    gateway_waiting: [`p(99)<${__ENV.P99_MS || 500}`],
    checks: ['rate>0.999'],
  },
};

export default function () {
  const res = http.get(`${BASE_URL}${API_PATH}`, { headers: authHeaders(), tags: { name: 'api' } });
  waiting.add(res.timings.waiting);
  check(res, {
    'status is 2xx': (r) => r.status >= 200 && r.status < 300,
  });
}
