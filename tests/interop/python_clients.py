"""Python OAuth2 client libraries against a running Tessera: authlib and requests-oauthlib.

Run by run.sh, which starts the server and passes its address and clients in the environment.
Prints one line per check and exits non-zero if any failed.
"""

import os
import sys
import time
import warnings

import requests
from authlib.integrations.requests_client import OAuth2Session
from oauthlib.oauth2 import LegacyApplicationClient
from requests_oauthlib import OAuth2Session as OAuthlibSession

BASE = os.environ["INTEROP_BASE_URL"]
CLIENT_ID = os.environ["PASSWORD_CLIENT_ID"]
CLIENT_SECRET = os.environ["PASSWORD_CLIENT_SECRET"]
RS_ID = os.environ["RS_CLIENT_ID"]
RS_SECRET = os.environ["RS_CLIENT_SECRET"]
USER, PASSWORD = "alice", os.environ["USER_PASSWORD"]
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


check("authlib: password grant, then automatic refresh when the token expires", authlib_password_then_automatic_refresh)
check("authlib: revocation and introspection", authlib_revocation_and_introspection)
check("requests-oauthlib: password grant and refresh, strict scope", requests_oauthlib_password_grant_with_strict_scope)
sys.exit(1 if failures else 0)
