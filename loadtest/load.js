// load.js — does the gateway hold the expected traffic within its SLO?
//
// An open model (ramping-arrival-rate): requests arrive at RATE per second
// whether or not earlier ones finished, as real clients do, so a slow
// gateway shows up as latency and dropped iterations instead of quietly
// lowering the load. Ramp up, hold, ramp down; the thresholds are the SLO.
//
//   k6 run -e BASE_URL=http://flexgate:8080 -e RATE=500 -e DURATION=10m loadtest/load.js
//
// Environment (all optional):
//   BASE_URL, API_PATH, CLIENT_ID, CLIENT_SECRET, TOKEN, INSECURE  as in smoke.js
//   RATE        requests per second to hold            (200)
//   RAMP        time to reach RATE                     (1m)
//   DURATION    time to hold RATE                      (5m)
//   MAX_VUS     most concurrent virtual users          (RATE, at least 50)
//   P95_MS      95th percentile latency budget, ms     (200)
//   P99_MS      99th percentile latency budget, ms     (500)
//   ERROR_RATE  share of failed requests allowed       (0.01)
//   ACCEPT_429  "true" when the route's rate limit may refuse some of the load
import http from 'k6/http';
import { authHeaders } from './lib.js';
import { check } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://localhost:8080';
const API_PATH = __ENV.API_PATH || '/api/products/PRD-42?productId=PRD-42&quantity=2';
const RATE = parseInt(__ENV.RATE || '200', 10);
const MAX_VUS = parseInt(__ENV.MAX_VUS || String(Math.max(RATE, 50)), 10);

if (__ENV.ACCEPT_429 === 'true') {
  http.setResponseCallback(http.expectedStatuses({ min: 200, max: 399 }, 429));
}

export const options = {
  insecureSkipTLSVerify: __ENV.INSECURE === 'true',
  discardResponseBodies: true,
  scenarios: {
    load: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      preAllocatedVUs: Math.min(MAX_VUS, Math.max(10, Math.ceil(RATE / 10))),
      maxVUs: MAX_VUS,
      stages: [
        { target: RATE, duration: __ENV.RAMP || '1m' },
        { target: RATE, duration: __ENV.DURATION || '5m' },
        { target: 0, duration: '30s' },
      ],
    },
  },
  thresholds: {
    http_req_duration: [`p(95)<${__ENV.P95_MS || 200}`, `p(99)<${__ENV.P99_MS || 500}`],
    http_req_failed: [`rate<${__ENV.ERROR_RATE || 0.01}`],
    checks: ['rate>0.99'],
    // Iterations k6 could not start in time mean the rate was not reached:
    // the result would flatter the gateway.
    dropped_iterations: [`count<${Math.max(1, Math.floor(RATE))}`],
  },
};

export default function () {
  const res = http.get(`${BASE_URL}${API_PATH}`, { headers: authHeaders(), tags: { name: 'api' } });
  check(res, {
    'status is 2xx': (r) => r.status >= 200 && r.status < 300,
  });
}
