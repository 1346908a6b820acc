// lib.js — what the scripts share. k6 resolves './lib.js' next to the
// script; in a cluster the ConfigMap made from this directory carries it.

// authHeaders are the credentials of the seed's secured route; any that
// is not set is left out, so the scripts also run against open routes.
//   CLIENT_ID, CLIENT_SECRET  client_id / client_secret headers
//   TOKEN                     Authorization: Bearer TOKEN
export function authHeaders() {
  const h = {};
  if (__ENV.CLIENT_ID) h.client_id = __ENV.CLIENT_ID;
  if (__ENV.CLIENT_SECRET) h.client_secret = __ENV.CLIENT_SECRET;
  if (__ENV.TOKEN) h.Authorization = `Bearer ${__ENV.TOKEN}`;
  return h;
}
