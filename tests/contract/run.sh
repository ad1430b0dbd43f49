#!/usr/bin/env bash
# The HTTP contract: schemathesis (from PyPI) runs against the real server from the OpenAPI
# document it serves, with its examples, coverage, fuzzing (positive and negative data) and
# stateful phases and every check but those that assume an API without credentials
# (positive_data_acceptance: a well-formed grant with a made-up password is rightly refused).
# It must find no server error and no response the document does not describe.
#
# Usage: tests/contract/run.sh [path/to/tessera]   (default: target/debug/tessera)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/target/debug/tessera}"
admin_bin="$(dirname "$bin")/tessera-admin"
[ -x "$bin" ] && [ -x "$admin_bin" ] || (cd "$root" && cargo build -q -p tessera --bin tessera -p tessera-admin)

venv="$root/target/contract-venv"
[ -x "$venv/bin/st" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q 'schemathesis==4.*'; }

work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export TESSERA_SERVER__LISTEN="127.0.0.1:$port" TESSERA_SERVER__ISSUER="$base"
export TESSERA_DATABASE__URL="sqlite://$work/tessera.db" TESSERA_MASTER_KEY_FILE="$work/master.key"
export TESSERA_PASSWORDS__ARGON2_MEMORY_KIB=4096 TESSERA_PASSWORDS__ARGON2_ITERATIONS=1
export RUST_LOG=warn
"$bin" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done

client=$("$admin_bin" client register --name contract --grant client_credentials --grant refresh_token \
    --scope read -o json)
# A browser app on the origin the document's examples name: preflights from it carry CORS headers.
"$admin_bin" client register --name contract-spa --public --grant authorization_code \
    --redirect-uri https://app.example.com/callback --allowed-origin https://app.example.com >/dev/null
id=$(echo "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
secret=$(echo "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')

status=0
"$venv/bin/st" run "$base/openapi.json" \
    --auth "$id:$secret" \
    --phases examples,coverage,fuzzing,stateful \
    --mode all \
    --checks all --exclude-checks positive_data_acceptance \
    --max-examples "${CONTRACT_EXAMPLES:-100}" \
    --seed 1 --workers 2 --no-color --generation-database none \
    | tee "$work/st.log" || status=$?
if grep -qiE 'panicked|internal server error' "$work/server.log"; then
    echo "the server logged a panic or a 500:" >&2; grep -iE 'panicked|internal server error' "$work/server.log" >&2; status=1
fi
[ "$status" -eq 0 ] || { tail -n 50 "$work/server.log" >&2; exit "$status"; }
echo "contract: schemathesis found nothing ($(grep -E '^ *[0-9]+ generated' "$work/st.log" | xargs))"
