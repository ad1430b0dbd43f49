#!/usr/bin/env bash
# Back-channel logout delivery: the time from a revocation to the app's receipt of its logout
# token, on PostgreSQL with the default settings (each instance polls every 1 s), with every
# app answering at once, then with one failed attempt each (retried after the 1 s backoff).
# Prints a table and the server's own /metrics counts.
#
# Usage: bench/backchannel.sh      (BENCH_USERS=50 logouts per run by default)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
. "$here/common.sh"

echo "== building (release)"
(cd "$root" && cargo build -q --release -p tessera --bin tessera && cargo build -q --release -p tessera-admin)
bin="$root/target/release"
work="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS tessera_bc_bench WITH (FORCE)" -c "CREATE DATABASE tessera_bc_bench"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port); metrics_port=$(free_port); receiver_port=$(free_port)
export BENCH_BASE="http://127.0.0.1:$port" BENCH_METRICS="http://127.0.0.1:$metrics_port/metrics"
export BENCH_RECEIVER_PORT="$receiver_port"
export TESSERA_SERVER__LISTEN="127.0.0.1:$port" TESSERA_SERVER__ISSUER="$BENCH_BASE"
export TESSERA_SERVER__METRICS_LISTEN="127.0.0.1:$metrics_port"
export TESSERA_DATABASE__URL="$pg/tessera_bc_bench" TESSERA_MASTER_KEY_FILE="$work/master.key"
export RUST_LOG=${RUST_LOG:-warn}
"$bin/tessera" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 1000); do curl -sf "$BENCH_BASE/healthz" >/dev/null && break; sleep 0.01; done

admin() { "$bin/tessera-admin" "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
c=$(admin client register --name "bench app" --grant password --grant refresh_token --scope openid \
    --backchannel-logout-uri "http://127.0.0.1:$receiver_port/backchannel" -o json)
export BENCH_CLIENT_ID=$(echo "$c" | field client_id) BENCH_CLIENT_SECRET=$(echo "$c" | field client_secret)
users=${BENCH_USERS:-50}
for i in $(seq 0 $((2 * users - 1))); do
    echo "correct horse battery staple" | admin user create "user$i" --password-stdin >/dev/null
done
echo "== $users logouts per run, backchannel.poll_interval 1s (the default)"
python3 "$here/backchannel.py"
