// rate-limit.js — does a rate-limited route refuse what it should, the way
// clients are told it will?
//
// One virtual user (one client address, one budget) sends LIMIT + EXTRA
// requests back to back, faster than the budget refills. The first LIMIT
// must pass with X-RateLimit-Limit = LIMIT and X-RateLimit-Remaining
// counting down; the rest must be 429 with Retry-After (whole seconds, at
// least 1) and X-Flexgate-Error: rate_limited. Then it waits Retry-After and
// checks that the client is let through again.
//
// Run it against one replica (port-forward to a pod) or a gateway whose
// limit is shared between replicas: behind a Service each replica keeps its
// own budget, so the 429s would come later than LIMIT.
//
//   k6 run -e BASE_URL=http://localhost:8080 -e LIMIT=100 loadtest/rate-limit.js
//
// Environment (all optional):
//   BASE_URL, API_PATH, CLIENT_ID, CLIENT_SECRET, TOKEN, INSECURE  as in smoke.js
//   LIMIT       the route's limit per period            (100, the seed's)
//   EXTRA       requests sent past the limit            (10)
//   SLACK       requests the refill may add while the burst runs (2)
import http from 'k6/http';
import { authHeaders } from './lib.js';
import { check, sleep } from 'k6';
import { Counter, Rate } from 'k6/metrics';

const BASE_URL = __ENV.BASE_URL || 'http://localhost:8080';
const API_PATH = __ENV.API_PATH || '/api/products/PRD-42?productId=PRD-42&quantity=2';
const LIMIT = parseInt(__ENV.LIMIT || '100', 10);
const EXTRA = parseInt(__ENV.EXTRA || '10', 10);
const SLACK = parseInt(__ENV.SLACK || '2', 10);

const limited = new Counter('rate_limited_responses');
const contract = new Rate('rate_limit_contract');

// 429s are what this test expects; they are not failures.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 429));

export const options = {
  insecureSkipTLSVerify: __ENV.INSECURE === 'true',
  scenarios: {
    burst: {
      executor: 'per-vu-iterations',
      vus: 1,
      iterations: 1,
      maxDuration: '5m',
    },
  },
  thresholds: {
    rate_limit_contract: ['rate==1.0'],
    rate_limited_responses: [`count>=${Math.max(1, EXTRA - SLACK)}`],
    checks: ['rate==1.0'],
  },
};

function int(v) {
  return v === undefined ? NaN : parseInt(v, 10);
}

export default function () {
  const url = `${BASE_URL}${API_PATH}`;
  const params = { headers: authHeaders(), tags: { name: 'api' } };
  let passed = 0;
  let lastRemaining = Infinity;
  let retryAfter = 0;
  for (let i = 0; i < LIMIT + EXTRA; i++) {
    const r = http.get(url, params);
    if (r.status === 429) {
      limited.add(1);
      retryAfter = int(r.headers['Retry-After']);
      contract.add(check(r, {
        '429 has Retry-After >= 1': () => retryAfter >= 1,
        '429 says rate_limited': (res) => res.headers['X-Flexgate-Error'] === 'rate_limited',
        '429 has a JSON body': (res) => (res.headers['Content-Type'] || '').includes('json'),
        '429 only after the limit is used': () => passed >= LIMIT,
      }));
      continue;
    }
    passed++;
    const remaining = int(r.headers['X-Ratelimit-Remaining']);
    contract.add(check(r, {
      'under the limit: 200': (res) => res.status === 200,
      'X-RateLimit-Limit is the limit': (res) => int(res.headers['X-Ratelimit-Limit']) === LIMIT,
      'X-RateLimit-Remaining counts down': () => remaining < lastRemaining && remaining >= 0,
      'X-RateLimit-Reset is given': (res) => int(res.headers['X-Ratelimit-Reset']) >= 0,
    }));
    lastRemaining = remaining;
  }
  contract.add(check(passed, {
    'no more than LIMIT (+ refill slack) passed': (n) => n <= LIMIT + SLACK,
  }));

  if (retryAfter > 0 && retryAfter <= 120) {
    sleep(retryAfter);
    const again = http.get(url, params);
    contract.add(check(again, { 'let through again after Retry-After': (r) => r.status === 200 }));
  }
}
