// spike.js — does a sudden burst knock the gateway over, and does it come
// back?
//
// Idles at a tenth of RATE, jumps to SPIKE_FACTOR x RATE in ten seconds,
// holds, drops back and watches the recovery. The "recovery" phase has its
// own thresholds: after the spike the gateway must be as good as before it.
//
//   k6 run -e BASE_URL=http://flexgate:8080 -e RATE=500 loadtest/spike.js
//
// Environment (all optional):
//   BASE_URL, API_PATH, CLIENT_ID, CLIENT_SECRET, TOKEN, INSECURE  as in smoke.js
//   RATE          normal rate, requests per second    (200)
//   SPIKE_FACTOR  how many times RATE the spike is    (5)
//   HOLD          how long the spike lasts            (1m)
//   MAX_VUS       most concurrent virtual users       (SPIKE_FACTOR x RATE, at least 100)
//   P95_MS        recovery's p95 budget, ms           (200)
//   ERROR_RATE    share of failed requests allowed    (0.05 during the spike, 0.01 after)
import http from 'k6/http';
import { authHeaders } from './lib.js';
import { check } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://localhost:8080';
const API_PATH = __ENV.API_PATH || '/api/products/PRD-42?productId=PRD-42&quantity=2';
const RATE = parseInt(__ENV.RATE || '200', 10);
const FACTOR = parseFloat(__ENV.SPIKE_FACTOR || '5');
const PEAK = Math.ceil(FACTOR * RATE);
const MAX_VUS = parseInt(__ENV.MAX_VUS || String(Math.max(PEAK, 100)), 10);
const BASE = Math.max(1, Math.ceil(RATE / 10));

export const options = {
  insecureSkipTLSVerify: __ENV.INSECURE === 'true',
  discardResponseBodies: true,
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate',
      startRate: BASE,
      timeUnit: '1s',
      preAllocatedVUs: Math.min(MAX_VUS, Math.max(20, Math.ceil(PEAK / 10))),
      maxVUs: MAX_VUS,
      stages: [
        { target: BASE, duration: '30s' },
        { target: PEAK, duration: '10s' },
        { target: PEAK, duration: __ENV.HOLD || '1m' },
        { target: BASE, duration: '10s' },
      ],
      tags: { phase: 'spike' },
    },
    // Runs after the spike: the same light load as before it.
    recovery: {
      executor: 'constant-arrival-rate',
      startTime: `${50 + durationSeconds(__ENV.HOLD || '1m')}s`,
      rate: BASE,
      timeUnit: '1s',
      duration: '1m',
      preAllocatedVUs: Math.max(5, Math.ceil(BASE / 5)),
      maxVUs: Math.max(20, BASE),
      tags: { phase: 'recovery' },
    },
  },
  thresholds: {
    'http_req_failed{phase:spike}': [`rate<${__ENV.ERROR_RATE || 0.05}`],
    'http_req_failed{phase:recovery}': [`rate<${__ENV.ERROR_RATE || 0.01}`],
    'http_req_duration{phase:recovery}': [`p(95)<${__ENV.P95_MS || 200}`],
  },
};

// durationSeconds reads k6 durations such as "90s", "2m" or "1h".
function durationSeconds(d) {
  const m = /^(\d+)(s|m|h)$/.exec(d);
  if (!m) throw new Error(`HOLD=${d}: want a duration such as 30s, 2m or 1h`);
  return parseInt(m[1], 10) * { s: 1, m: 60, h: 3600 }[m[2]];
}

export default function () {
  const res = http.get(`${BASE_URL}${API_PATH}`, { headers: authHeaders(), tags: { name: 'api' } });
  check(res, {
    'status is 2xx': (r) => r.status >= 200 && r.status < 300,
  });
}
