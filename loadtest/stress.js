// stress.js — where does the gateway stop keeping up, and does it fail
// cleanly there?
//
// Steps the arrival rate up past the expected peak (RATE) in STEP-long
// stages: 1x, 2x, 3x, 4x, then back down to 1x to see it recover. The run
// aborts early once errors or latency pass the hard limits, so that a
// production cluster is not pushed further than needed; the step at which it
// aborted is the answer.
//
//   k6 run -e BASE_URL=http://flexgate:8080 -e RATE=500 loadtest/stress.js
//
// Environment (all optional):
//   BASE_URL, API_PATH, CLIENT_ID, CLIENT_SECRET, TOKEN, INSECURE  as in smoke.js
//   RATE        expected peak, requests per second     (200)
//   STEP        length of each step                    (2m)
//   MAX_VUS     most concurrent virtual users          (4 x RATE, at least 100)
//   ABORT_ERROR_RATE  stop when more fail than this    (0.05)
//   ABORT_P99_MS      stop when p99 passes this, ms     (2000)
import http from 'k6/http';
import { authHeaders } from './lib.js';
import { check } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://localhost:8080';
const API_PATH = __ENV.API_PATH || '/api/products/PRD-42?productId=PRD-42&quantity=2';
const RATE = parseInt(__ENV.RATE || '200', 10);
const STEP = __ENV.STEP || '2m';
const MAX_VUS = parseInt(__ENV.MAX_VUS || String(Math.max(4 * RATE, 100)), 10);

export const options = {
  insecureSkipTLSVerify: __ENV.INSECURE === 'true',
  discardResponseBodies: true,
  scenarios: {
    stress: {
      executor: 'ramping-arrival-rate',
      startRate: Math.ceil(RATE / 2),
      timeUnit: '1s',
      preAllocatedVUs: Math.min(MAX_VUS, Math.max(20, Math.ceil(RATE / 5))),
      maxVUs: MAX_VUS,
      stages: [
        { target: RATE, duration: '30s' },
        { target: RATE, duration: STEP },
        { target: 2 * RATE, duration: '30s' },
        { target: 2 * RATE, duration: STEP },
        { target: 3 * RATE, duration: '30s' },
        { target: 3 * RATE, duration: STEP },
        { target: 4 * RATE, duration: '30s' },
        { target: 4 * RATE, duration: STEP },
        { target: RATE, duration: '30s' },
        { target: RATE, duration: STEP },
      ],
    },
  },
  thresholds: {
    http_req_failed: [{ threshold: `rate<${__ENV.ABORT_ERROR_RATE || 0.05}`, abortOnFail: true, delayAbortEval: '30s' }],
    http_req_duration: [{ threshold: `p(99)<${__ENV.ABORT_P99_MS || 2000}`, abortOnFail: true, delayAbortEval: '30s' }],
  },
};

export default function () {
  const res = http.get(`${BASE_URL}${API_PATH}`, { headers: authHeaders(), tags: { name: 'api' } });
  check(res, {
    'status is 2xx': (r) => r.status >= 200 && r.status < 300,
    // Overload must surface as the gateway's own JSON errors (503/504 with
    // X-Flexgate-Error), never as resets or hangs.
    'failures are explained': (r) => r.status < 500 || Boolean(r.headers['X-Flexgate-Error']),
  });
}
