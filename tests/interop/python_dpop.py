"""A DPoP client (RFC 9449) built on joserfc's JWS and JWK support, against a running Tessera
that requires server nonces: every check of §4.3 made to fail, one at a time, each answered
with its own `invalid_dpop_proof` (or `use_dpop_nonce`) and spending nothing; every supported
algorithm accepted; the resource side (§7) at /userinfo. And the README's own proof script,
as a reader would copy it.

Run by run.sh, which starts the server and passes its address and clients in the environment.
Prints one line per check and exits non-zero if any failed.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from urllib.parse import urlencode, urlsplit

import requests
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

BASE = os.environ["INTEROP_BASE_URL"]
TOKEN_URL = f"{BASE}/token"
USERINFO_URL = f"{BASE}/userinfo"
PUBLIC_ID = os.environ["PUBLIC_PASSWORD_CLIENT_ID"]
CLIENT_ID = os.environ["PASSWORD_CLIENT_ID"]
CLIENT_SECRET = os.environ["PASSWORD_CLIENT_SECRET"]
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
USER, PASSWORD = "alice", os.environ["USER_PASSWORD"]

# EdDSA is the name RFC 9449 and the server's metadata use; RFC 9864 deprecates it in favour of
# Ed25519, which joserfc reports.
warnings.filterwarnings("ignore", message="EdDSA is deprecated")

failures = 0


def check(name, fn):
    global failures
    try:
        fn()
        print(f"ok    {name}")
    except Exception as e:  # noqa: BLE001 - report every failure, whatever it is
        failures += 1
        print(f"FAIL  {name}: {type(e).__name__}: {e}")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class App:
    """An app's DPoP key, and the last nonce the server handed out."""

    def __init__(self, alg="ES256"):
        self.alg = alg
        self.key = {
            "ES256": lambda: ECKey.generate_key("P-256"),
            "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
            "RS256": lambda: RSAKey.generate_key(2048),
            "PS256": lambda: RSAKey.generate_key(2048),
        }[alg]()
        self.nonce = None

    def claims(self, method="POST", url=TOKEN_URL, **extra):
        claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
        if self.nonce:
            claims["nonce"] = self.nonce
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def header(self, **extra):
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.key.as_dict(private=False)}
        header.update(extra)
        return {k: v for k, v in header.items() if v is not None}

    def sign(self, header, claims):
        payload = json.dumps(claims).encode()
        return jws.serialize_compact(header, payload, self.key, algorithms=[header["alg"]])

    def proof(self, method="POST", url=TOKEN_URL, **extra):
        return self.sign(self.header(), self.claims(method, url, **extra))

    def learn(self, res):
        if "DPoP-Nonce" in res.headers:
            self.nonce = res.headers["DPoP-Nonce"]


def token(proofs, form):
    """POST /token with each of `proofs` as a DPoP header."""
    if isinstance(proofs, str):
        proofs = [proofs]
    if len(proofs) == 1:
        return requests.post(TOKEN_URL, data=form, headers={"DPoP": proofs[0]}, timeout=10)
    # requests folds headers by name: two DPoP headers need the plain client.
    url = urlsplit(TOKEN_URL)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    body = urlencode(form)
    conn.putrequest("POST", url.path)
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(len(body)))
    for p in proofs:
        conn.putheader("DPoP", p)
    conn.endheaders(body.encode())
    res = conn.getresponse()
    return {"status": res.status, "body": res.read(), "headers": res.getheaders()}


def answer(res):
    """(status, JSON body, headers) of a requests or a raw response."""
    if isinstance(res, requests.Response):
        return res.status_code, res.json(), res.headers
    return res["status"], json.loads(res["body"]), requests.structures.CaseInsensitiveDict(res["headers"])


def password_grant(app, client_id=PUBLIC_ID):
    """A password grant with a proof from `app`'s key, retried once on a nonce as clients do."""
    form = {"grant_type": "password", "username": USER, "password": PASSWORD,
            "client_id": client_id, "scope": "read"}
    for _ in range(2):
        res = token(app.proof(), form)
        app.learn(res)
        if res.status_code == 400 and res.json().get("error") == "use_dpop_nonce":
            continue
        assert res.status_code == 200, f"password grant: {res.status_code} {res.text}"
        return res.json()
    raise AssertionError("the nonce was refused twice")


def bound_to(access_token):
    claims = json.loads(unb64(access_token.split(".")[1]))
    return claims.get("cnf", {}).get("jkt")


def refresh_form(refresh_token):
    return {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": PUBLIC_ID}


def every_algorithm_binds_the_tokens_to_its_key():
    for alg in ["ES256", "EdDSA", "RS256", "PS256"]:
        app = App(alg)
        tokens = password_grant(app)
        assert tokens["token_type"] == "DPoP", f"{alg}: {tokens['token_type']}"
        assert bound_to(tokens["access_token"]) == app.key.thumbprint(), f"{alg}: cnf.jkt"
        res = token(app.proof(), refresh_form(tokens["refresh_token"]))
        assert res.status_code == 200, f"{alg}: refresh {res.status_code} {res.text}"


def every_failed_check_is_refused_and_spends_nothing():
    app = App()
    tokens = password_grant(app)
    form = refresh_form(tokens["refresh_token"])
    other = App()
    other.nonce = app.nonce
    private_jwk = app.key.as_dict(private=True)
    unsigned = lambda header, claims: f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    hs256_input = unsigned({"typ": "dpop+jwt", "alg": "HS256", "jwk": app.key.as_dict(private=False)}, app.claims())
    hs256 = f"{hs256_input}.{b64(hmac.new(b'secret', hs256_input.encode(), hashlib.sha256).digest())}"
    replayed = app.proof()
    # A proof spent once, by a request that then failed for another reason (a scope it may not
    # have): a proof is spent as soon as it is accepted, whatever follows.
    res = token(replayed, {**form, "scope": "admin"})
    assert res.status_code == 400 and res.json()["error"] == "invalid_scope", res.text
    cases = [
        # (what fails, the proof(s), the error, a word of its description)
        ("two DPoP headers", [app.proof(), app.proof()], "invalid_dpop_proof", "more than one"),
        ("not a JWT", "not-a-jwt", "invalid_dpop_proof", "compact JWS"),
        ("typ is JWT", app.sign(app.header(typ="JWT"), app.claims()), "invalid_dpop_proof", "typ"),
        ("alg none", unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": app.key.as_dict(private=False)}, app.claims()) + ".",
         "invalid_dpop_proof", "alg"),
        ("alg HS256 (symmetric)", hs256, "invalid_dpop_proof", "alg"),
        ("no jwk", app.sign(app.header(jwk=None), app.claims()), "invalid_dpop_proof", "jwk"),
        ("a private jwk", app.sign(app.header(jwk=private_jwk), app.claims()), "invalid_dpop_proof", "private"),
        ("signed by another key", app.sign(app.header(jwk=other.key.as_dict(private=False)), app.claims()),
         "invalid_dpop_proof", "signature"),
        ("no jti", app.sign(app.header(), app.claims(jti=None)), "invalid_dpop_proof", "jti"),
        ("no htm", app.sign(app.header(), app.claims(htm=None)), "invalid_dpop_proof", "htm"),
        ("no htu", app.sign(app.header(), app.claims(htu=None)), "invalid_dpop_proof", "htu"),
        ("no iat", app.sign(app.header(), app.claims(iat=None)), "invalid_dpop_proof", "iat"),
        ("htm GET", app.proof("GET"), "invalid_dpop_proof", "htm"),
        ("htu another endpoint", app.proof(url=f"{BASE}/revoke"), "invalid_dpop_proof", "htu"),
        ("htu another host", app.proof(url="http://elsewhere.example/token"), "invalid_dpop_proof", "htu"),
        ("iat ten minutes old", app.sign(app.header(), app.claims(iat=int(time.time()) - 600)),
         "invalid_dpop_proof", "iat"),
        ("iat ten minutes ahead", app.sign(app.header(), app.claims(iat=int(time.time()) + 600)),
         "invalid_dpop_proof", "iat"),
        ("jti seen before", replayed, "invalid_dpop_proof", "used before"),
        ("no nonce", app.sign(app.header(), app.claims(nonce=None)), "use_dpop_nonce", "nonce"),
        ("a nonce the server never made", app.proof(nonce="bm90LWEtbm9uY2U"), "use_dpop_nonce", "nonce"),
        ("a proof from another key than the family's", other.proof(), "invalid_grant", "DPoP key"),
    ]
    for what, proofs, error, word in cases:
        status, body, headers = answer(token(proofs, form))
        assert status == 400, f"{what}: {status} {body}"
        assert body.get("error") == error, f"{what}: {body}"
        assert word in body.get("error_description", ""), f"{what}: {body}"
        if error == "use_dpop_nonce":
            assert headers.get("DPoP-Nonce"), f"{what}: no fresh DPoP-Nonce"
    # Proofs normalised as RFC 3986 says, with a query, are the same endpoint.
    url = urlsplit(TOKEN_URL)
    htu = f"HTTP://{url.hostname.upper()}:{url.port}/./token?ignored=1"
    res = token(app.proof(url=htu), form)
    assert res.status_code == 200, f"after every refusal, the token still refreshes: {res.status_code} {res.text}"
    fresh = res.json()
    assert fresh["token_type"] == "DPoP" and bound_to(fresh["access_token"]) == app.key.thumbprint()


def userinfo_checks_the_binding():
    app = App()
    tokens = password_grant(app)
    access = tokens["access_token"]
    ath = b64(hashlib.sha256(access.encode()).digest())
    other = App()
    other.nonce = app.nonce

    def call(scheme, proof):
        headers = {"Authorization": f"{scheme} {access}"}
        if proof:
            headers["DPoP"] = proof
        return requests.get(USERINFO_URL, headers=headers, timeout=10)

    cases = [
        ("the bound token as a bearer token", "Bearer", None, "invalid_token"),
        ("no proof", "DPoP", None, "invalid_dpop_proof"),
        ("no ath", "DPoP", app.proof("GET", USERINFO_URL), "invalid_dpop_proof"),
        ("ath of another token", "DPoP", app.proof("GET", USERINFO_URL, ath=b64(b"x" * 32)), "invalid_dpop_proof"),
        ("htm POST", "DPoP", app.proof("POST", USERINFO_URL, ath=ath), "invalid_dpop_proof"),
        ("a proof from another key", "DPoP", other.proof("GET", USERINFO_URL, ath=ath), "invalid_dpop_proof"),
    ]
    for what, scheme, proof, error in cases:
        res = call(scheme, proof)
        challenge = res.headers.get("WWW-Authenticate", "")
        assert res.status_code == 401, f"{what}: {res.status_code}"
        # The challenge is in the scheme the request used.
        assert challenge.startswith(f"{scheme} ") and f'error="{error}"' in challenge, f"{what}: {challenge}"
        if scheme == "DPoP":
            assert 'algs="ES256 EdDSA RS256 PS256"' in challenge, f"{what}: {challenge}"
    res = call("DPoP", app.proof("GET", USERINFO_URL, ath=ath))
    assert res.status_code == 200 and res.json()["sub"], f"{res.status_code} {res.text}"


def the_readme_script_gets_a_bound_token():
    text = open(README, encoding="utf-8").read()
    section = text[text.index("A proof from the shell, with Node's WebCrypto"):]
    script = re.search(r"```js\n(.*?)```", section, re.S).group(1)
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "dpop-proof.mjs"), "w", encoding="utf-8") as f:
            f.write(script)
        nonce = {}

        def proof(*args):
            env = {**os.environ, **nonce}
            out = subprocess.run(["node", "dpop-proof.mjs", *args], cwd=folder, env=env,
                                 capture_output=True, text=True, check=True)
            return out.stdout.strip()

        form = {"grant_type": "password", "username": USER, "password": PASSWORD}
        auth = (CLIENT_ID, CLIENT_SECRET)
        # This server requires nonces: the first answer hands one out, as the README says.
        res = requests.post(TOKEN_URL, data=form, auth=auth, headers={"DPoP": proof("POST", TOKEN_URL)}, timeout=10)
        assert res.status_code == 400 and res.json()["error"] == "use_dpop_nonce", res.text
        nonce["DPOP_NONCE"] = res.headers["DPoP-Nonce"]
        res = requests.post(TOKEN_URL, data=form, auth=auth, headers={"DPoP": proof("POST", TOKEN_URL)}, timeout=10)
        assert res.status_code == 200, f"{res.status_code} {res.text}"
        tokens = res.json()
        key = json.load(open(os.path.join(folder, "dpop-key.json"), encoding="utf-8"))
        jkt = ECKey.import_key({k: key[k] for k in ("kty", "crv", "x", "y")}).thumbprint()
        assert tokens["token_type"] == "DPoP" and bound_to(tokens["access_token"]) == jkt, tokens
        access = tokens["access_token"]
        res = requests.get(USERINFO_URL, timeout=10, headers={
            "Authorization": f"DPoP {access}", "DPoP": proof("GET", USERINFO_URL, access)})
        assert res.status_code == 200 and res.json()["preferred_username"] == USER, res.text
        res = requests.get(USERINFO_URL, headers={"Authorization": f"Bearer {access}"}, timeout=10)
        assert res.status_code == 401, res.status_code


check("joserfc DPoP client: ES256, EdDSA, RS256 and PS256 proofs bind the tokens to their key (cnf.jkt)",
      every_algorithm_binds_the_tokens_to_its_key)
check("joserfc DPoP client: every §4.3 check failed in turn is refused on its own and spends nothing",
      every_failed_check_is_refused_and_spends_nothing)
check("joserfc DPoP client: /userinfo takes the bound token only as DPoP with a proof from its key (§7)",
      userinfo_checks_the_binding)
check("README: the DPoP proof script gets a bound token, with the server's nonce, and calls /userinfo",
      the_readme_script_gets_a_bound_token)
sys.exit(1 if failures else 0)
