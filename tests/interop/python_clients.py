"""Python OAuth2 client libraries against a running Tessera: authlib and requests-oauthlib,
and authlib's OpenID Connect client (the code flow through the real pages, its ID token checks).

Run by run.sh, which starts the server and passes its address and clients in the environment.
Prints one line per check and exits non-zero if any failed.
"""

import os
import sys
import time
import warnings

import re

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken
from oauthlib.oauth2 import LegacyApplicationClient
from requests_oauthlib import OAuth2Session as OAuthlibSession

BASE = os.environ["INTEROP_BASE_URL"]
CLIENT_ID = os.environ["PASSWORD_CLIENT_ID"]
CLIENT_SECRET = os.environ["PASSWORD_CLIENT_SECRET"]
RS_ID = os.environ["RS_CLIENT_ID"]
RS_SECRET = os.environ["RS_CLIENT_SECRET"]
USER, PASSWORD = "alice", os.environ["USER_PASSWORD"]
OIDC_CLIENT_ID = os.environ["OIDC_CLIENT_ID"]
OIDC_REDIRECT_URI = os.environ["OIDC_REDIRECT_URI"]
TOKEN_URL = f"{BASE}/token"

failures = 0


def check(name, fn):
    global failures
    try:
        fn()
        print(f"ok    {name}")
    except Exception as e:  # noqa: BLE001 - report every failure, whatever it is
        failures += 1
        print(f"FAIL  {name}: {type(e).__name__}: {e}")


def authlib_password_then_automatic_refresh():
    """The article's story, done by the library: log in once, use the API, and when the
    15-minute token (2 s here) has expired, the library refreshes it by itself."""
    # leeway=0: refresh when the token has expired, not a minute before (authlib's default).
    session = OAuth2Session(CLIENT_ID, CLIENT_SECRET, scope="read", token_endpoint=TOKEN_URL, leeway=0)
    token = session.fetch_token(TOKEN_URL, username=USER, password=PASSWORD)
    assert token["token_type"].lower() == "bearer" and token["refresh_token"].startswith("tsr_")
    first = session.get(f"{BASE}/userinfo")
    assert first.status_code == 200, first.text
    assert first.json()["preferred_username"] == USER
    assert session.token["access_token"] == token["access_token"], "no refresh while valid"
    time.sleep(3.2)  # the access token expires
    second = session.get(f"{BASE}/userinfo")  # authlib notices and refreshes first
    assert second.status_code == 200, second.text
    assert session.token["access_token"] != token["access_token"], "the library refreshed"
    assert session.token["refresh_token"] != token["refresh_token"], "the refresh token rotated"
    # The spent refresh token, replayed after the grace window, is refused.
    time.sleep(10.5)
    replay = requests.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant", replay.text


def authlib_revocation_and_introspection():
    session = OAuth2Session(CLIENT_ID, CLIENT_SECRET, scope="read", token_endpoint=TOKEN_URL, leeway=0)
    token = session.fetch_token(TOKEN_URL, username=USER, password=PASSWORD)
    # A resource server allowed to introspect sees the access token as active.
    rs = OAuth2Session(RS_ID, RS_SECRET)
    seen = rs.introspect_token(f"{BASE}/introspect", token=token["access_token"]).json()
    assert seen["active"] is True and seen["username"] == USER and seen["client_id"] == CLIENT_ID, seen
    # The client revokes its refresh token: the whole family goes.
    revoked = session.revoke_token(f"{BASE}/revoke", token=token["refresh_token"], token_type_hint="refresh_token")
    assert revoked.status_code == 200, revoked.text
    gone = rs.introspect_token(f"{BASE}/introspect", token=token["access_token"]).json()
    assert gone == {"active": False}, gone
    refused = session.get(f"{BASE}/userinfo")
    assert refused.status_code == 401 and "invalid_token" in refused.headers["WWW-Authenticate"]


def requests_oauthlib_password_grant_with_strict_scope():
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http on loopback
    os.environ.pop("OAUTHLIB_RELAX_TOKEN_SCOPE", None)  # strict: a changed scope is an error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        session = OAuthlibSession(client=LegacyApplicationClient(client_id=CLIENT_ID), scope=["read"])
        # The password grant body carries no scope unless given here; strict checking then
        # compares the granted scope with the session's.
        token = session.fetch_token(
            TOKEN_URL,
            username=USER,
            password=PASSWORD,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            scope="read",
        )
    assert token["scope"] == ["read"], token
    assert session.get(f"{BASE}/userinfo").status_code == 200
    refreshed = session.refresh_token(TOKEN_URL, auth=(CLIENT_ID, CLIENT_SECRET))
    assert refreshed["refresh_token"] != token["refresh_token"]


def field(html, name):
    m = re.search(f'name="{name}" value="([^"]*)"', html)
    assert m, f"no {name} field"
    return m.group(1).replace("&#38;", "&").replace("&amp;", "&")


def sign_in_through(browser, url):
    """Signs alice in on the real pages and approves; the URL the browser is sent back to."""
    page = browser.get(url, allow_redirects=False)
    res = browser.post(
        f"{BASE}/login",
        data={"csrf": field(page.text, "csrf"), "authorize": field(page.text, "authorize"), "username": USER, "password": PASSWORD},
        allow_redirects=False,
    )
    assert res.status_code == 303, res.status_code
    res = browser.get(BASE + res.headers["Location"], allow_redirects=False)
    if res.status_code == 200:
        html = res.text
        res = browser.post(
            f"{BASE}/consent",
            data={"csrf": field(html, "csrf"), "shown": field(html, "shown"), "authorize": field(html, "authorize"), "decision": "approve"},
            allow_redirects=False,
        )
    assert res.status_code == 303, res.status_code
    return res.headers["Location"]


def authlib_openid_connect_code_flow():
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http on loopback
    meta = requests.get(f"{BASE}/.well-known/openid-configuration", timeout=10).json()
    jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    session = OAuth2Session(
        OIDC_CLIENT_ID,
        scope="openid profile email",
        redirect_uri=OIDC_REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        token_endpoint=meta["token_endpoint"],
        leeway=0,  # the access token lives 2 s here: refresh only once it has expired
    )
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = session.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    back = sign_in_through(requests.Session(), url)
    token = session.fetch_token(meta["token_endpoint"], authorization_response=back, code_verifier=verifier)
    claims = jwt.decode(
        token["id_token"],
        jwks,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": meta["issuer"]}},
        claims_params={"nonce": nonce, "client_id": OIDC_CLIENT_ID, "access_token": token["access_token"]},
    )
    claims.validate()  # iss, aud, exp, iat, nonce, at_hash
    info = session.get(meta["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"] and info["email"] == "alice@example.com", info


check("authlib: password grant, then automatic refresh when the token expires", authlib_password_then_automatic_refresh)
check("authlib: OpenID Connect code flow with PKCE and nonce, ID token validated", authlib_openid_connect_code_flow)
check("authlib: revocation and introspection", authlib_revocation_and_introspection)
check("requests-oauthlib: password grant and refresh, strict scope", requests_oauthlib_password_grant_with_strict_scope)
sys.exit(1 if failures else 0)
