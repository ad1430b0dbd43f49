// Photo Sharing browser app: a public OIDC client (authorization code + PKCE)
// built on oidc-client-ts, used by the browser end-to-end test.
//
// The outcome of every step is written as JSON into <pre id="outcome">.
// Tokens themselves are never shown: only whether they are present, and a
// short SHA-256 fingerprint of the refresh token so a rotation can be seen.
(function () {
  "use strict";

  const outcome = {
    signed_in: false,
    access_token: false,
    refresh_token_sha: null,
    id_token: false,
    sub: null,
    userinfo: null,
    renewed: 0,
    signed_out: false,
    errors: [],
  };

  const outcomeEl = document.getElementById("outcome");
  const statusEl = document.getElementById("status");

  function render() {
    outcomeEl.textContent = JSON.stringify(outcome, null, 2);
  }

  function setStatus(text, isError) {
    statusEl.textContent = text;
    statusEl.classList.toggle("error", !!isError);
  }

  function recordError(step, err) {
    const message = err && err.message ? err.message : String(err);
    outcome.errors.push(step + ": " + message);
    setStatus("Error during " + step + ": " + message, true);
    render();
  }

  // First 12 hex chars of SHA-256: enough to compare, useless as a token.
  async function fingerprint(token) {
    if (!token) return null;
    const bytes = new TextEncoder().encode(token);
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    return Array.from(new Uint8Array(digest))
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("")
      .slice(0, 12);
  }

  // Copy what the test needs from the stored user into the outcome.
  async function showUser(user) {
    outcome.signed_in = !!user;
    outcome.access_token = !!(user && user.access_token);
    outcome.id_token = !!(user && user.id_token);
    outcome.sub = (user && user.profile && user.profile.sub) || null;
    outcome.refresh_token_sha = await fingerprint(user && user.refresh_token);
    render();
  }

  function displayName(user) {
    const p = (user && user.profile) || {};
    return p.preferred_username || p.name || p.sub || "unknown user";
  }

  // Runs one button's action; errors go to the outcome instead of escaping.
  async function step(name, fn) {
    outcomeEl.setAttribute("data-busy", "true");
    try {
      await fn();
    } catch (err) {
      recordError(name, err);
    } finally {
      outcomeEl.removeAttribute("data-busy");
      render();
    }
  }

  // data-ready tells the test that the on-load handling has finished.
  function ready() {
    outcomeEl.setAttribute("data-ready", "true");
    render();
  }

  render();

  const config = window.SPA_CONFIG;
  if (!window.oidc) {
    recordError("startup", new Error("oidc-client-ts did not load"));
    ready();
    return;
  }
  if (!config || !config.authority || !config.client_id) {
    recordError("startup", new Error("missing /config.js (window.SPA_CONFIG)"));
    ready();
    return;
  }

  const authority = config.authority.replace(/\/+$/, "");
  oidc.Log.setLogger(console);
  oidc.Log.setLevel(oidc.Log.WARN);

  const userManager = new oidc.UserManager({
    authority: authority,
    client_id: config.client_id,
    redirect_uri: location.origin + "/index.html",
    post_logout_redirect_uri: location.origin + "/index.html?signed_out=1",
    response_type: "code", // PKCE with S256 is on by default
    scope: config.scope || "openid profile",
    loadUserInfo: false,
    automaticSilentRenew: false,
    monitorSession: false,
    userStore: new oidc.WebStorageStateStore({ store: window.sessionStorage }),
    // Sign-out revokes the tokens first (RFC 7009), then ends the session.
    revokeTokensOnSignout: true,
  });

  document.getElementById("signin").addEventListener("click", () =>
    step("signin", async () => {
      setStatus("Redirecting to sign in…");
      await userManager.signinRedirect();
    })
  );

  // Plain fetch with a bearer token, so the browser applies CORS as for any
  // resource request (the library's own loadUserInfo is off).
  document.getElementById("userinfo").addEventListener("click", () =>
    step("userinfo", async () => {
      outcome.userinfo = null;
      const user = await userManager.getUser();
      if (!user || !user.access_token) throw new Error("not signed in");
      const res = await fetch(authority + "/userinfo", {
        headers: { Authorization: "Bearer " + user.access_token },
      });
      const text = await res.text();
      if (!res.ok) throw new Error("HTTP " + res.status + " " + text.slice(0, 200));
      outcome.userinfo = JSON.parse(text);
      setStatus("User info loaded for " + (outcome.userinfo.sub || "unknown subject"));
    })
  );

  // With a stored refresh token, oidc-client-ts 3.x renews through the token
  // endpoint (grant_type=refresh_token). Without one it would fall back to a
  // hidden iframe (prompt=none), so this app refuses instead: the test is
  // about refresh tokens.
  document.getElementById("renew").addEventListener("click", () =>
    step("renew", async () => {
      const current = await userManager.getUser();
      if (!current || !current.refresh_token) throw new Error("no refresh token stored");
      const user = await userManager.signinSilent();
      await showUser(user);
      outcome.renewed += 1;
      setStatus("Tokens renewed");
    })
  );

  // The library adds id_token_hint from the stored user and clears it
  // before leaving for the end_session endpoint.
  document.getElementById("signout").addEventListener("click", () =>
    step("signout", async () => {
      setStatus("Signing out…");
      await userManager.signoutRedirect();
    })
  );

  async function start() {
    const params = new URLSearchParams(location.search);

    if (params.has("state") && (params.has("code") || params.has("error"))) {
      // Back from the authorization endpoint.
      try {
        const user = await userManager.signinCallback();
        await showUser(user);
        setStatus("Signed in as " + displayName(user));
      } catch (err) {
        recordError("callback", err);
      }
      history.replaceState(null, "", "/index.html");
      return;
    }

    if (params.get("signed_out") === "1") {
      outcome.signed_out = true;
    }

    const user = await userManager.getUser();
    await showUser(user);
    if (user) {
      setStatus("Signed in as " + displayName(user));
    } else if (outcome.signed_out) {
      setStatus("Signed out");
    } else {
      setStatus("Not signed in");
    }
  }

  start()
    .catch((err) => recordError("startup", err))
    .finally(ready);
})();
