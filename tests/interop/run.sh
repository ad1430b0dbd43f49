#!/usr/bin/env bash
# Interoperability suite: real OAuth2 and OpenID Connect client libraries (Python authlib,
# requests-oauthlib and a DPoP client on joserfc; Node openid-client and oauth4webapi) against a
# real Tessera on a temporary database. The
# Rust `oauth2` and `openidconnect` crates run in the cargo test suite
# (tests/api/client_library.rs, tests/api/oidc/).
#
# Usage: tests/interop/run.sh   (from anywhere; needs cargo, python3 with venv, node and npm)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/target/interop"
mkdir -p "$work"

echo "== building tessera"
(cd "$root" && cargo build -q -p tessera --bin tessera && cargo build -q -p tessera-admin)
bin="$root/target/debug"

echo "== installing the client libraries"
if [ ! -x "$work/venv/bin/python" ]; then python3 -m venv "$work/venv"; fi
"$work/venv/bin/pip" install -q -r "$here/requirements.txt"
cp "$here/package.json" "$work/package.json"
(cd "$work" && npm install --silent --no-audit --no-fund >/dev/null)
echo "   $("$work/venv/bin/pip" list 2>/dev/null | grep -iE '^(authlib|joserfc|requests-oauthlib|oauthlib) ' | tr -s ' ' | paste -sd, -)"
for p in openid-client oauth4webapi; do
    echo "   $p $(node -p "require('$work/node_modules/$p/package.json').version")"
done

echo "== starting tessera on a temporary database"
data="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export INTEROP_BASE_URL="http://127.0.0.1:$port"
export TESSERA_SERVER__LISTEN="127.0.0.1:$port" TESSERA_SERVER__ISSUER="$INTEROP_BASE_URL"
export TESSERA_DATABASE__URL="sqlite://$data/tessera.db" TESSERA_MASTER_KEY_FILE="$data/master.key"
export TESSERA_TOKENS__ACCESS_TTL=2s
# DPoP proofs must carry the server's nonce: the libraries' retries are part of what is tested.
export TESSERA_TOKENS__DPOP_NONCE=true
"$bin/tessera" > "$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do curl -sf "$INTEROP_BASE_URL/healthz" >/dev/null && break; sleep 0.1; done

admin() { "$bin/tessera-admin" "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
c=$(admin client register --name "Interop password client" --grant password --grant refresh_token --scope "read write" -o json)
export PASSWORD_CLIENT_ID=$(echo "$c" | field client_id) PASSWORD_CLIENT_SECRET=$(echo "$c" | field client_secret)
c=$(admin client register --name "Interop mobile app" --public --grant password --grant refresh_token --scope read -o json)
export PUBLIC_PASSWORD_CLIENT_ID=$(echo "$c" | field client_id)
c=$(admin client register --name "Interop service" --grant client_credentials --scope "reports:read" -o json)
export CC_CLIENT_ID=$(echo "$c" | field client_id) CC_CLIENT_SECRET=$(echo "$c" | field client_secret)
c=$(admin client register --name "Interop resource server" --grant client_credentials -o json)
export RS_CLIENT_ID=$(echo "$c" | field client_id) RS_CLIENT_SECRET=$(echo "$c" | field client_secret)
admin client update "$RS_CLIENT_ID" --allow-introspection >/dev/null
export OIDC_REDIRECT_URI="http://localhost:9000/callback" OIDC_LOGGED_OUT_URI="http://localhost:9000/logged-out"
c=$(admin client register --name "Interop OpenID Connect app" --public --grant authorization_code \
    --grant refresh_token --scope "openid profile email" --redirect-uri "$OIDC_REDIRECT_URI" \
    --post-logout-redirect-uri "$OIDC_LOGGED_OUT_URI" -o json)
export OIDC_CLIENT_ID=$(echo "$c" | field client_id)
export USER_PASSWORD="correct horse battery staple"
echo "$USER_PASSWORD" | admin user create alice --password-stdin --name "Alice Liddell" \
    --email alice@example.com --email-verified true >/dev/null

status=0
results="$work/results.txt"
echo "== python"
"$work/venv/bin/python" "$here/python_clients.py" | tee "$results" || status=1
"$work/venv/bin/python" "$here/python_dpop.py" | tee -a "$results" || status=1
echo "== node"
# Run from beside its node_modules: ES modules resolve packages from the script's folder.
cp "$here/node_clients.mjs" "$work/node_clients.mjs"
(cd "$work" && node node_clients.mjs) | tee -a "$results" || status=1

passed=$(grep -c '^ok ' "$results" || true)
failed=$(grep -c '^FAIL ' "$results" || true)
if [ $status -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
    status=1
    echo "== server log (last lines)"
    tail -20 "$data/server.log"
fi
echo "interop: $passed passed, $failed failed"
exit $status
