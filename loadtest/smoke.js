// smoke.js — is the gateway up and is the route's contract intact?
//
// One virtual user for a short while: every response must be a 200 with a
// JSON body and the security headers the chain sets. Run it after every
// deploy, before anything heavier.
//
//   k6 run -e BASE_URL=https://gw.example.com loadtest/smoke.js
//
// Environment (all optional):
//   BASE_URL        gateway base URL                  (http://localhost:8080)
//   API_PATH        path and query of the route       (/api/products/PRD-42?productId=PRD-42&quantity=2)
//   CLIENT_ID       client_id header for client-id-enforcement
//   CLIENT_SECRET   client_secret header
//   TOKEN           bearer token for token-introspection
//   DURATION        how long                          (30s)
//   SECURITY_HEADERS  "false" when the route sets no response headers
//   INSECURE        "true" to accept a self-signed certificate
import http from 'k6/http';
import { authHeaders } from './lib.js';
import { check, sleep } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://localhost:8080';
const API_PATH = __ENV.API_PATH || '/api/products/PRD-42?productId=PRD-42&quantity=2';
const WANT_SECURITY_HEADERS = __ENV.SECURITY_HEADERS !== 'false';

export const options = {
  insecureSkipTLSVerify: __ENV.INSECURE === 'true',
  scenarios: {
    smoke: {
      executor: 'constant-vus',
      vus: 1,
      duration: __ENV.DURATION || '30s',
    },
  },
  thresholds: {
    // A smoke test tolerates nothing: one failed check fails the run.
    checks: ['rate==1.0'],
    http_req_failed: ['rate==0'],
    http_req_duration: ['p(95)<500'],
  },
};

export default function () {
  const res = http.get(`${BASE_URL}${API_PATH}`, { headers: authHeaders(), tags: { name: 'api' } });
  check(res, {
    'status is 200': (r) => r.status === 200,
    'body is JSON': (r) => {
      try {
        r.json();
        return true;
      } catch (e) {
        return false;
      }
    },
    'no gateway error header': (r) => !r.headers['X-Flexgate-Error'],
    'HSTS set': (r) => !WANT_SECURITY_HEADERS || (r.headers['Strict-Transport-Security'] || '').startsWith('max-age='),
    'nosniff set': (r) => !WANT_SECURITY_HEADERS || r.headers['X-Content-Type-Options'] === 'nosniff',
  });
  sleep(1);
}
