#!/usr/bin/env bash
# Scale scenario 1: Tessera behind PgBouncer 1.18 in transaction pooling mode, with PgBouncer's
# default max_prepared_statements (0), and `database.pooler = "transaction"`.
#
#  1. Three instances start at the same moment on one empty database through the pooler: the
#     migrations run once (their advisory lock is taken inside their transaction), one signing
#     key is created, all three become ready, and a token from one refreshes on another.
#  2. The API suite's PostgreSQL tests for every CLI command, the throttle, retention (its
#     pg_try_advisory_xact_lock), signing keys, rotation and its races run through the pooler:
#     each test's server and CLI get the pooler's address and the setting.
#
# Usage: tests/scale/pgbouncer.sh   (as root; PostgreSQL on 127.0.0.1:5432)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
trap scale_cleanup EXIT
scale_begin

bouncer=$(free_port)
start_pgbouncer "$bouncer" 5432
echo "== PgBouncer $(pgbouncer --version | head -n1 | awk '{print $2}') on 127.0.0.1:$bouncer, pool_mode = transaction"
db=tessera_scale_pgbouncer
fresh_database "$db"
export TESSERA_DATABASE__URL="postgres://postgres@127.0.0.1:$bouncer/$db"
export TESSERA_DATABASE__POOLER=transaction
export TESSERA_MASTER_KEY_FILE="$scale_work/master.key"
export RUST_LOG=warn

echo "== three instances start at once on an empty database"
shared_master_key "$TESSERA_MASTER_KEY_FILE"
ports=(); instances=()
for i in 1 2 3; do
    port=$(free_port); ports+=("$port")
    TESSERA_SERVER__LISTEN="127.0.0.1:$port" TESSERA_SERVER__ISSUER="http://tessera.scale" \
        spawn "$scale_work/tessera-$i.log" "$tessera_bin"
    instances+=("$spawned")
done
for port in "${ports[@]}"; do
    wait_for "instance on $port ready" 60 curl -sf "http://127.0.0.1:$port/readyz"
done
q() { psql -h 127.0.0.1 -p 5432 -U postgres -d "$db" -Atc "$1"; }
applied=$(q "SELECT count(*) FROM __diesel_schema_migrations")
expected=$(ls "$scale_root/migrations/postgres" | wc -l)
[ "$applied" = "$expected" ] || { echo "FAIL: $applied migrations recorded, $expected expected" >&2; exit 1; }
keys=$(q "SELECT count(*) FROM signing_keys")
[ "$keys" = 1 ] || { echo "FAIL: $keys signing keys after three starts at once" >&2; exit 1; }
echo "   migrations applied once ($applied), one signing key, three instances ready"

admin() { "$admin_bin" "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
c=$(admin client register --name scale --grant password --grant refresh_token --scope read -o json)
id=$(echo "$c" | field client_id); secret=$(echo "$c" | field client_secret)
echo "correct horse battery staple" | admin user create alice --password-stdin >/dev/null
rt=$(curl -sf -u "$id:$secret" "http://127.0.0.1:${ports[0]}/token" \
    -d "grant_type=password&username=alice&password=correct+horse+battery+staple" | field refresh_token)
for port in "${ports[1]}" "${ports[2]}" "${ports[0]}"; do
    rt=$(curl -sf -u "$id:$secret" "http://127.0.0.1:$port/token" \
        -d "grant_type=refresh_token&refresh_token=$rt" | field refresh_token)
done
admin prune >/dev/null
echo "   a token from one instance refreshed on the others; the CLI works through the pooler"
for pid in "${instances[@]}"; do stop_pid "$pid"; done

echo "== the API suite's PostgreSQL tests through the pooler"
export TESSERA_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$bouncer/postgres"
export TESSERA_TEST_POSTGRES_POOLER=transaction
unset TESSERA_DATABASE__URL TESSERA_DATABASE__POOLER TESSERA_MASTER_KEY_FILE RUST_LOG
filter='test(/^(cli|throttle|retention|keys|rotation|story|concurrency|dpop|revocation|metrics)::.*::postgres$/)'
(cd "$scale_root" && cargo nextest run -p tessera --test api --no-fail-fast --status-level fail \
    --final-status-level fail -E "$filter" 2>&1) | tee "$scale_work/suite.log" | grep -E '^\s+(FAIL|SIGSEGV|TIMEOUT)|Summary' || true
grep -qE 'Summary .* [0-9]+ tests run: [0-9]+ passed' "$scale_work/suite.log" \
    && ! grep -qE '[0-9]+ failed' "$scale_work/suite.log" \
    || { echo "FAIL: the suite through PgBouncer" >&2; tail -n 60 "$scale_work/suite.log" >&2; exit 1; }
ran=$(grep -oE '[0-9]+ tests run' "$scale_work/suite.log" | awk '{print $1}')
[ "$ran" -ge 50 ] || { echo "FAIL: only $ran tests ran through PgBouncer" >&2; exit 1; }
drop_database "$db"
echo "PASS pgbouncer: $ran PostgreSQL tests through PgBouncer (transaction mode), $(( $(date +%s) - started )) s"
