// An independent OAuth 2.0 server for the connection tests: the npm package
// oauth2-mock-server (authorization code with PKCE, refresh and client
// credentials grants), with this test's checks added through its hooks.
//
// Started by tests/support/oauth_server.rs with `node server.js`. It prints
// one JSON line {"issuer": "..."} when ready, then one line per token
// request: {"token": "<grant_type>", "status": <http status>}. Commands on
// standard input, one per line:
//   revoke-all            every refresh token issued so far is refused (invalid_grant)
//   expires-in <seconds>  expires_in of the tokens issued from now on
//   rotate <on|off>       whether a refresh answer carries a new refresh token
//
// Checks the package does not make itself:
// - a code issued with a code_challenge is only exchanged with the matching
//   S256 code_verifier (the package skips the check when no verifier is sent);
// - the client authenticates with CLIENT_ID / CLIENT_SECRET (env);
// - a refresh token is one this server issued and did not revoke.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { OAuth2Server } from 'oauth2-mock-server';

const CLIENT_ID = process.env.CLIENT_ID ?? 'castiel-test-client';
const CLIENT_SECRET = process.env.CLIENT_SECRET ?? 'castiel-test-secret';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');

const challenges = new Map(); // code -> S256 challenge
const issued = new Set(); // refresh tokens issued
const revoked = new Set();
let expiresIn = 3600;
let rotate = true;

server.service.on('beforeAuthorizeRedirect', (redirect, req) => {
  const code = redirect.url.searchParams.get('code');
  if (code && req.query.code_challenge) {
    challenges.set(code, {
      challenge: req.query.code_challenge,
      method: req.query.code_challenge_method,
    });
  }
});

const refuse = (response, status, error) => {
  response.statusCode = status;
  response.body = { error };
};

const b64url = (buf) => buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

server.service.on('beforeResponse', (response, req) => {
  const body = req.body ?? {};
  const grant = body.grant_type;
  if (response.statusCode === 200) {
    if (body.client_id !== CLIENT_ID || body.client_secret !== CLIENT_SECRET) {
      refuse(response, 401, 'invalid_client');
    } else if (grant === 'authorization_code') {
      const saved = challenges.get(body.code);
      challenges.delete(body.code);
      if (saved) {
        const verifier = body.code_verifier ?? '';
        const computed = b64url(createHash('sha256').update(verifier).digest());
        if (saved.method !== 'S256' || computed !== saved.challenge) {
          refuse(response, 400, 'invalid_grant');
        }
      }
    } else if (grant === 'refresh_token') {
      if (!issued.has(body.refresh_token) || revoked.has(body.refresh_token)) {
        refuse(response, 400, 'invalid_grant');
      }
    }
  }
  if (response.statusCode === 200) {
    response.body.expires_in = expiresIn;
    if (grant === 'refresh_token' && !rotate) {
      delete response.body.refresh_token;
    }
    if (response.body.refresh_token) {
      issued.add(response.body.refresh_token);
    }
    if (grant === 'authorization_code') {
      // Salesforce's token answer names the org's API host.
      response.body.instance_url = process.env.INSTANCE_URL ?? 'https://example.my.salesforce.com';
    }
  }
  console.log(JSON.stringify({ token: grant ?? null, status: response.statusCode }));
});

createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, arg] = line.trim().split(/\s+/);
  if (command === 'revoke-all') {
    for (const t of issued) revoked.add(t);
  } else if (command === 'expires-in') {
    expiresIn = Number(arg);
  } else if (command === 'rotate') {
    rotate = arg === 'on';
  }
  console.log(JSON.stringify({ ack: command }));
});
process.stdin.on('end', () => server.stop().then(() => process.exit(0)));

await server.start(0, '127.0.0.1');
console.log(JSON.stringify({ issuer: server.issuer.url }));
