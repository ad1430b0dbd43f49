// openid-client (v6) against a running Tessera: discovery through RFC 8414 metadata,
// client_credentials, the password grant through its generic grant, and refresh; then OpenID
// Connect: discovery, the code flow with PKCE and a nonce through the real login and consent
// pages, the library's own ID token checks, refresh, userinfo and RP-initiated logout; DPoP,
// through openid-client's handle and through oauth4webapi's directly.
// Run by run.sh; prints one line per check and exits non-zero if any failed.
import * as client from 'openid-client';
import * as oauth from 'oauth4webapi';

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

// A browser for the pages: cookies kept, redirects looked at one by one.
class Browser {
  constructor() { this.cookies = new Map(); }
  async go(url, body) {
    const headers = { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    const init = { headers, redirect: 'manual' };
    if (body) {
      init.method = 'POST';
      init.body = new URLSearchParams(body);
    }
    const res = await fetch(new URL(url, base), init);
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [k, v] = pair.split('=');
      if (v) this.cookies.set(k, v); else this.cookies.delete(k);
    }
    return res;
  }
}

const field = (html, name) => {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!m) throw new Error(`no ${name} field`);
  return m[1].replaceAll('&#38;', '&').replaceAll('&amp;', '&');
};

/// Signs alice in and approves: the URL the browser is sent back to.
async function signInThrough(browser, url) {
  let res = await browser.go(url);
  let html = await res.text();
  res = await browser.go('/login', {
    csrf: field(html, 'csrf'), authorize: field(html, 'authorize'),
    username: 'alice', password: process.env.USER_PASSWORD,
  });
  assert(res.status === 303, `login ${res.status}`);
  res = await browser.go(res.headers.get('location'));
  if (res.status === 200) {
    html = await res.text();
    res = await browser.go('/consent', {
      csrf: field(html, 'csrf'), shown: field(html, 'shown'), authorize: field(html, 'authorize'), decision: 'approve',
    });
  }
  assert(res.status === 303, `consent ${res.status}`);
  return new URL(res.headers.get('location'));
}

await check('openid-client: OpenID Connect code flow with PKCE and nonce, ID token checked, refresh, userinfo, RP-initiated logout', async () => {
  const redirect_uri = process.env.OIDC_REDIRECT_URI;
  const config = await client.discovery(new URL(base), process.env.OIDC_CLIENT_ID, undefined, client.None(), { execute: [client.allowInsecureRequests] });
  assert(config.serverMetadata().end_session_endpoint === `${base}/end_session`, 'end_session_endpoint');
  const code_verifier = client.randomPKCECodeVerifier();
  const code_challenge = await client.calculatePKCECodeChallenge(code_verifier);
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri, scope: 'openid profile email', code_challenge, code_challenge_method: 'S256', nonce, state,
  });
  const browser = new Browser();
  const back = await signInThrough(browser, url);
  const tokens = await client.authorizationCodeGrant(config, back, {
    pkceCodeVerifier: code_verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true,
  });
  const claims = tokens.claims();
  assert(claims.nonce === nonce && claims.auth_time && claims.sid, `claims ${JSON.stringify(claims)}`);
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert(info.email === 'alice@example.com' && info.name === 'Alice Liddell', `userinfo ${JSON.stringify(info)}`);
  const posted = await client.fetchProtectedResource(config, tokens.access_token, new URL(`${base}/userinfo`), 'POST');
  assert(posted.status === 200, `userinfo by POST ${posted.status}`);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert(refreshed.refresh_token !== tokens.refresh_token, 'rotated');
  const again = refreshed.claims();
  assert(again.sub === claims.sub && again.auth_time === claims.auth_time && !again.nonce, 'the refreshed ID token');
  const logout = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token, post_logout_redirect_uri: process.env.OIDC_LOGGED_OUT_URI, state: 'bye',
  });
  const res = await browser.go(logout);
  assert(res.status === 303 && res.headers.get('location') === `${process.env.OIDC_LOGGED_OUT_URI}?state=bye`, `logout ${res.status}`);
  const after = await fetch(`${base}/userinfo`, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
  assert(after.status === 401, `the access token after logout: ${after.status}`);
});

// DPoP (RFC 9449) through the library's own handle: proofs, the binding, and the server's
// nonces (run.sh turns them on), which the library retries on by itself.
await check('openid-client: DPoP password grant, refresh and userinfo with the key, nonces retried', async () => {
  const config = await client.discovery(new URL(base), process.env.PASSWORD_CLIENT_ID, process.env.PASSWORD_CLIENT_SECRET, undefined, options);
  assert(config.serverMetadata().dpop_signing_alg_values_supported?.includes('ES256'), 'dpop_signing_alg_values_supported');
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  const tokens = await client.genericGrantRequest(config, 'password', {
    username: 'alice', password: process.env.USER_PASSWORD, scope: 'read',
  }, { DPoP });
  assert(tokens.token_type?.toLowerCase() === 'dpop', `token_type ${tokens.token_type}`);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  assert(refreshed.refresh_token !== tokens.refresh_token && refreshed.token_type?.toLowerCase() === 'dpop', 'rotated, bound');
  const info = await client.fetchProtectedResource(config, refreshed.access_token, new URL(`${base}/userinfo`), 'GET', undefined, undefined, { DPoP });
  assert(info.status === 200, `userinfo with DPoP ${info.status}`);
  const bearer = await fetch(`${base}/userinfo`, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
  assert(bearer.status === 401, `the bound token as a bearer token: ${bearer.status}`);
});

await check('openid-client: DPoP code flow for a public client, a refresh from a second key refused', async () => {
  const redirect_uri = process.env.OIDC_REDIRECT_URI;
  const config = await client.discovery(new URL(base), process.env.OIDC_CLIENT_ID, undefined, client.None(), { execute: [client.allowInsecureRequests] });
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  const code_verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri, scope: 'openid profile', state,
    code_challenge: await client.calculatePKCECodeChallenge(code_verifier), code_challenge_method: 'S256',
  });
  const back = await signInThrough(new Browser(), url);
  const tokens = await client.authorizationCodeGrant(config, back, {
    pkceCodeVerifier: code_verifier, expectedState: state, idTokenExpected: true,
  }, undefined, { DPoP });
  assert(tokens.token_type?.toLowerCase() === 'dpop', `token_type ${tokens.token_type}`);
  const thief = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  let refused;
  try {
    await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: thief });
  } catch (e) {
    refused = e;
  }
  assert(refused?.error === 'invalid_grant', `a second key: ${refused?.error ?? 'accepted'}`);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  assert(refreshed.refresh_token !== tokens.refresh_token, 'the refusal spent nothing; rotated');
});

// oauth4webapi, the protocol layer under openid-client, used directly: its DPoP handle signs
// the proofs and keeps the server's nonces; the retry on `use_dpop_nonce` is the app's, as the
// library's documentation shows it.
await check('oauth4webapi: DPoP password grant, refresh with rotation, a second key refused, userinfo, nonces retried', async () => {
  const issuer = new URL(base);
  const insecure = { [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
  assert(as.dpop_signing_alg_values_supported?.includes('ES256'), 'dpop_signing_alg_values_supported');
  const app = { client_id: process.env.PUBLIC_PASSWORD_CLIENT_ID };
  const auth = oauth.None();
  let nonceRetries = 0;
  const retried = async (request) => {
    try {
      return await request();
    } catch (e) {
      if (!oauth.isDPoPNonceError(e)) throw e;
      nonceRetries += 1;
      return request();
    }
  };
  const password = (DPoP) => retried(async () => oauth.processGenericTokenEndpointResponse(as, app,
    await oauth.genericTokenEndpointRequest(as, app, auth, 'password',
      { username: 'alice', password: process.env.USER_PASSWORD, scope: 'read' }, { DPoP, ...insecure })));
  const refresh = (DPoP, token) => retried(async () => oauth.processRefreshTokenResponse(as, app,
    await oauth.refreshTokenGrantRequest(as, app, auth, token, { DPoP, ...insecure })));

  const DPoP = oauth.DPoP(app, await oauth.generateKeyPair('ES256'));
  const tokens = await password(DPoP);
  assert(nonceRetries === 1, `the first request is asked for a nonce: ${nonceRetries} retries`);
  assert(tokens.token_type === 'dpop', `token_type ${tokens.token_type}`);
  const refreshed = await refresh(DPoP, tokens.refresh_token);
  assert(refreshed.refresh_token !== tokens.refresh_token && refreshed.token_type === 'dpop', 'rotated, bound');

  const thief = oauth.DPoP(app, await oauth.generateKeyPair('ES256'));
  let refused;
  try {
    await refresh(thief, refreshed.refresh_token);
  } catch (e) {
    refused = e;
  }
  assert(refused?.error === 'invalid_grant', `a second key: ${refused?.error ?? 'accepted'}`);
  const again = await refresh(DPoP, refreshed.refresh_token);
  assert(again.refresh_token !== refreshed.refresh_token, 'the refusal spent nothing; rotated');

  const info = await retried(() => oauth.protectedResourceRequest(again.access_token, 'GET', new URL(`${base}/userinfo`),
    undefined, undefined, { DPoP, ...insecure }));
  assert(info.status === 200 && (await info.json()).sub, `userinfo with DPoP ${info.status}`);

  // The rotated token again, from the app's own key: a replay, and the family is revoked.
  let replay;
  try {
    await refresh(DPoP, tokens.refresh_token);
  } catch (e) {
    replay = e;
  }
  assert(replay?.error === 'invalid_grant', `a replay: ${replay?.error ?? 'accepted'}`);
  let revoked;
  try {
    await refresh(DPoP, again.refresh_token);
  } catch (e) {
    revoked = e;
  }
  assert(revoked?.error === 'invalid_grant', `the family after a replay: ${revoked?.error ?? 'accepted'}`);
});

process.exit(failures ? 1 : 0);
