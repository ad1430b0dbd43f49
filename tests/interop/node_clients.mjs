// openid-client (v6) against a running Tessera: discovery through RFC 8414 metadata,
// client_credentials, the password grant through its generic grant, and refresh.
// Run by run.sh; prints one line per check and exits non-zero if any failed.
import * as client from 'openid-client';

const base = process.env.INTEROP_BASE_URL;
let failures = 0;

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok    ${name}`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL  ${name}: ${e?.name}: ${e?.message} ${e?.cause ? JSON.stringify(e.cause) : ''}`);
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

// Plain http is fine here: loopback only.
const options = { execute: [client.allowInsecureRequests], algorithm: 'oauth2' };

await check('openid-client: discovery through /.well-known/oauth-authorization-server', async () => {
  const config = await client.discovery(new URL(base), process.env.CC_CLIENT_ID, process.env.CC_CLIENT_SECRET, undefined, options);
  const meta = config.serverMetadata();
  assert(meta.issuer === base, `issuer ${meta.issuer}`);
  assert(meta.token_endpoint === `${base}/token`, 'token_endpoint');
  assert(meta.code_challenge_methods_supported?.includes('S256'), 'S256');
});

await check('openid-client: client_credentials', async () => {
  const config = await client.discovery(new URL(base), process.env.CC_CLIENT_ID, process.env.CC_CLIENT_SECRET, undefined, options);
  const tokens = await client.clientCredentialsGrant(config, { scope: 'reports:read' });
  assert(tokens.access_token && !tokens.refresh_token, 'an access token only');
  assert(tokens.scope === 'reports:read', `scope ${tokens.scope}`);
});

await check('openid-client: password via genericGrantRequest, then refresh', async () => {
  const config = await client.discovery(new URL(base), process.env.PASSWORD_CLIENT_ID, process.env.PASSWORD_CLIENT_SECRET, undefined, options);
  const tokens = await client.genericGrantRequest(config, 'password', {
    username: 'alice',
    password: process.env.USER_PASSWORD,
    scope: 'read',
  });
  assert(tokens.refresh_token?.startsWith('tsr_'), 'a refresh token');
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert(refreshed.refresh_token !== tokens.refresh_token, 'rotated');
  const info = await client.fetchProtectedResource(config, refreshed.access_token, new URL(`${base}/userinfo`), 'GET');
  assert(info.status === 200, `userinfo ${info.status}`);
});

process.exit(failures ? 1 : 0);
